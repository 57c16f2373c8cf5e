"""The source audit: what a metric needs as a source beyond the model's dust.

For any metric, G_ab + Lambda g_ab = kappa T_eff,ab defines the effective stress tensor (the
source the geometry implies; ``cosmology.energy``). What is left after the model's comoving
dust is the missing source X,

    kappa X_ab = G_ab + Lambda g_ab - kappa rho u_a u_b,      u^a = delta^a_t / sqrt(-g_tt),

the un-normalised Einstein residual (``matter.einstein_tensor_residual``): X = 0 exactly when
the metric solves the field equations with dust (and the model's Lambda). In the rest frame of
the dust (the tetrad e_0 = u, e_1..3 of ``ray_geodesic.observer_frame``):

    kappa rho_X = X(u, u),   kappa q_X = |X(u, e_A)| (energy flux),   kappa p_X = tr X_(AB) / 3,
    p_i the eigenvalues of X_(AB) (principal pressures),   |pi_X| = |X_(AB) - p_X delta_AB| (anisotropic stress),

made dimensionless by the expansion of the same observers, H = theta / 3 with theta = nabla_a u^a:
Omega_X = kappa rho_X / (3 H^2), P_X = kappa p_X / (3 H^2), w_X = p_X / rho_X (units: c = H0 = 1,
kappa = 8 pi; :mod:`cosmology.conventions`). For exact LCDM read with Lambda off, kappa X = -Lambda g:
Omega_X = Omega_Lambda(z) = Omega_L / (Omega_m (1+z)^3 + Omega_L), w_X = -1.

Raychaudhuri's equation for the dust (theta' = -theta^2/3 - 2 sigma^2 + 2 omega^2 - R_ab u^a u^b
+ nabla.a, R_ab u^a u^b = kappa (rho + 3 p) / 2 - Lambda) splits the local deceleration
q = -1 - H' / H^2 (' = d/dtau along u) into

    q = Omega_d / 2 + (Omega_X + 3 P_X) / 2 - Omega_Lambda + 2 sigma^2 / (3 H^2) - 2 omega^2 / (3 H^2) + rest,

``rest`` = -nabla.a / (3 H^2) (zero for geodesic dust, as in the synchronous gauge; dust that obeys
the field equations is geodesic) plus rounding.
With dust alone (X = 0, Lambda = 0) every term but the vorticity is >= 0: q >= Omega_d / 2 - (vorticity),
so q0 < Omega_m / 2 at the observer of a synchronous-gauge model is owed to X. The strong energy
condition, violated where the source itself accelerates, is reported for X and for T_eff
(dust + X; the model's Lambda is not part of it): Omega + 3 P < 0 (the combination in
Raychaudhuri) and, with principal pressures, ``energy.strong_violation`` (> 0: violated).

Where: at points of the domain (collocation points; each labelled by the chart-free redshift of
its dust, 1 + z_rho = (rho / rho_O)^(1/3), exactly 1 + z in FLRW) and on the observer's past light
cone (points reached by rays at given redshifts: :func:`light_cone`).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cosmology.energy import strong_violation
from cosmology.geometry import MetricFn, christoffel_from_jet, curvature_from_jet, inverse_metric, metric_jet
from cosmology.ray_geodesic import RayOptions, area_distance, observer_frame, redshift
from cosmology.ray_integration import _integrate, _resolved, _start, _state_at_redshift


class DustKinematics(NamedTuple):
    """The comoving dust congruence u at a point (first derivatives of the metric only)."""

    hubble: jax.Array  # H = theta / 3, theta = nabla_a u^a
    shear: jax.Array  # sigma^2 = sigma_ab sigma^ab / 2
    vorticity: jax.Array  # omega^2 = omega_ab omega^ab / 2
    acceleration: jax.Array  # |a|, a_b = u^c nabla_c u_b


def dust_kinematics(g: jax.Array, dg: jax.Array, g_inv: jax.Array, gamma: jax.Array) -> DustKinematics:
    """Expansion, shear, vorticity and acceleration of u^a = delta^a_t / sqrt(-g_tt):

        nabla_c u_b = d_c u_b - Gamma^d_cb u_d,   d_c u_b = d_c g_bt u^t + g_bt d_c g_tt / (2 (-g_tt)^(3/2)),
        a_b = u^c nabla_c u_b,   P_cb = h_c^e nabla_e u_b (h = g + u u),
        theta = g^cb P_cb,   sigma_cb = P_(cb) - theta h_cb / 3,   omega_cb = P_[cb].
    ``g``, ``dg[a, b, c] = d_c g_ab``, g^ab and Gamma^a_bc at the point.
    """
    s = jnp.sqrt(-g[0, 0])
    u_up = jnp.zeros(4, g.dtype).at[0].set(1.0 / s)
    u_low = g[:, 0] / s
    du = dg[:, 0, :].T / s + jnp.outer(dg[0, 0, :], g[:, 0]) / (2.0 * s**3)  # [c, b] = d_c u_b
    grad = du - jnp.einsum("dcb,d->cb", gamma, u_low)
    accel = u_up @ grad
    proj = jnp.eye(4, dtype=g.dtype) + jnp.outer(u_up, u_low)  # [e, c] = h^e_c
    p = proj.T @ grad
    theta = jnp.einsum("cb,cb->", g_inv, p)
    h_low = g + jnp.outer(u_low, u_low)
    sym, anti = 0.5 * (p + p.T), 0.5 * (p - p.T)
    sigma = sym - theta * h_low / 3.0
    square = lambda t: 0.5 * jnp.einsum("ab,cd,ac,bd->", t, t, g_inv, g_inv)
    a_norm2 = jnp.einsum("a,b,ab->", accel, accel, g_inv)
    return DustKinematics(theta / 3.0, square(sigma), square(anti), jnp.sqrt(jnp.maximum(a_norm2, 0.0)))


def point_audit(metric_fn: MetricFn, x: jax.Array, kappa_rho: jax.Array, cosmological_constant=0.0) -> dict:
    """The missing source at one point x (4,) given the dust density ``kappa_rho`` there
    (module docstring). Dimensionless by 3 H^2 of the dust; returns scalars

    ``hubble``, ``omega_dust``, ``omega_x``, ``pressure_x`` (P_X), ``pressures_x`` (3,) (principal),
    ``flux_x``, ``anisotropic_x``, ``omega_lambda`` (Lambda / 3 H^2), ``shear``, ``vorticity``
    (both / H^2), ``acceleration`` (|a| / H), ``sec_x`` = Omega_X + 3 P_X, ``sec_total`` =
    Omega_d + Omega_X + 3 P_X (of T_eff = dust + X, Lambda not included), ``strong_violation_x``
    and ``strong_violation_total`` (with principal pressures, > 0 violated), ``q_parts`` (5,) =
    (dust, X, Lambda, shear, vorticity) of the Raychaudhuri split.
    """
    jet = metric_jet(metric_fn, x)
    curv = curvature_from_jet(jet)
    kin = dust_kinematics(jet.g, jet.dg, curv.g_inv, curv.christoffel)
    g = jet.g
    lam = jnp.asarray(cosmological_constant, g.dtype)
    frame = observer_frame(g, jnp.zeros(4, g.dtype).at[0].set(1.0 / jnp.sqrt(-g[0, 0])))  # rows e_A
    kappa_t = curv.einstein_tensor + lam * g
    x_frame = frame @ kappa_t @ frame.T
    x_frame = x_frame.at[0, 0].add(-kappa_rho)  # dust at rest in this frame: kappa rho e_0 e_0
    norm = 3.0 * kin.hubble**2
    rho = x_frame[0, 0] / norm
    spatial = x_frame[1:, 1:] / norm
    pressures = jnp.linalg.eigvalsh(0.5 * (spatial + spatial.T))
    p = jnp.trace(spatial) / 3.0
    omega_d, omega_l = kappa_rho / norm, lam / norm
    total_rho = omega_d + rho  # T_eff = dust + X; Lambda is not part of it
    q_parts = jnp.stack([omega_d / 2.0, (rho + 3.0 * p) / 2.0, -omega_l,
                         2.0 * kin.shear / norm, -2.0 * kin.vorticity / norm])
    return {
        "hubble": kin.hubble, "omega_dust": omega_d, "omega_x": rho, "pressure_x": p, "pressures_x": pressures,
        "flux_x": jnp.linalg.norm(x_frame[0, 1:]) / norm,
        "anisotropic_x": jnp.linalg.norm(spatial - p * jnp.eye(3, dtype=g.dtype)),
        "omega_lambda": omega_l, "shear": kin.shear / kin.hubble**2, "vorticity": kin.vorticity / kin.hubble**2,
        "acceleration": kin.acceleration / jnp.abs(kin.hubble),
        "sec_x": rho + 3.0 * p, "sec_total": total_rho + 3.0 * p,
        "strong_violation_x": strong_violation(rho, pressures),
        "strong_violation_total": strong_violation(total_rho, pressures),
        "q_parts": q_parts,
    }


def audit_points(metric_fn: MetricFn, points: jax.Array, kappa_rho: jax.Array, cosmological_constant=0.0) -> dict:
    """:func:`point_audit` at ``points`` (N, 4) with densities ``kappa_rho`` (N,) (vmapped)."""
    return jax.vmap(lambda x, r: point_audit(metric_fn, x, r, cosmological_constant))(points, kappa_rho)


def comoving_deceleration(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """The local q = -1 - (u^t d_t H) / H^2 of the comoving dust at x (H = nabla_a u^a / 3 of
    :func:`dust_kinematics`; the dust moves along t at fixed x^i, so d/dtau = u^t d_t)."""

    def hubble_at(t):
        y = x.at[0].set(t)
        g, dg = metric_fn(y), jax.jacfwd(metric_fn)(y)
        g_inv = inverse_metric(g)
        return dust_kinematics(g, dg, g_inv, christoffel_from_jet(g_inv, dg)).hubble

    h, dh = jax.jvp(hubble_at, (x[0],), (jnp.ones_like(x[0]),))
    u_t = 1.0 / jnp.sqrt(-metric_fn(x)[0, 0])
    return -1.0 - u_t * dh / h**2


# ----------------------------------------------------------------------------- the light cone


def light_cone(metric_fn: MetricFn, observer, directions, redshifts, *,
               options: RayOptions = RayOptions(), observer_velocity=None) -> tuple[jax.Array, jax.Array]:
    """Where the observer's past light cone reaches each redshift: points (R, M, 4) and the
    luminosity distances (R, M) along the rays towards ``directions`` (R, 3) at ``redshifts``
    (M,) (sources comoving with the dust, as in :mod:`cosmology.raytrace`; one adaptive solve
    per ray, each redshift found on its dense output). NaN where a redshift is not reached.
    ``observer_velocity``: as in :func:`cosmology.raytrace.luminosity_distance` (None: comoving)."""
    observer = jnp.asarray(observer)
    redshifts = jnp.asarray(redshifts, observer.dtype)

    def one(direction):
        y0 = _start(metric_fn, observer, direction, observer_velocity)
        opts = _resolved(options, y0.x.dtype)
        sol = _integrate(metric_fn, y0, opts, z_stop=jnp.max(redshifts))
        z0 = redshift(metric_fn(y0.x), y0.k)

        def at(z_target):
            state, _, found = _state_at_redshift(metric_fn, sol, z0, z_target, opts.newton_iterations)
            d_a = area_distance(metric_fn(state.x), state.k, state.xi)
            return jnp.where(found, state.x, jnp.nan), jnp.where(found, d_a, jnp.nan)

        return jax.vmap(at)(redshifts)

    points, d_a = jax.vmap(one)(jnp.asarray(directions, observer.dtype))
    return points, (1.0 + redshifts) ** 2 * d_a


__all__ = ["DustKinematics", "audit_points", "comoving_deceleration", "dust_kinematics", "light_cone",
           "point_audit"]
