"""Point-wise physics of the cosmology problems: the fields at one point (Einstein residual, the
energy condition), the field equations as a term (hard or soft), and the deceleration parameter.

Split out of :mod:`cosmology.problem` (which re-exports these names) so that the problem class and
its construction read on their own.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from cosmology import energy, kinematics, matter
from cosmology.geometry import curvature_from_jet, metric_jet
from cosmology.presets import CosmologyConfig
from pinnopt.terms import Constraint, Objective


def point_fields(metric_fn, x, source: matter.Source, energy_condition: str = "weak") -> dict:
    """Everything the field equations need at one point, from one metric jet:

    ``residual`` r = |G + Lambda g - kappa rho u u| / (3 H^2 + kappa rho) (frame norm),
    ``energy_condition`` the signed violation / the same scale ("weak": of T_eff =
    (G + Lambda g) / kappa; "ricci": -R; absent for "none"), and ``hubble`` (H of the gauge
    observer), ``kappa_rho``, ``ricci_scalar``, ``shear`` (sigma^2), ``scale``.
    """
    jet = metric_jet(metric_fn, x)
    curv = curvature_from_jet(jet)
    kin = kinematics.kinematics_from_jet(jet.g, jet.dg, curv.g_inv, curv.christoffel)
    lam = source.cosmological_constant
    kappa_rho = matter.comoving_density(metric_fn, x, source, jet.g)
    hubble = kin.mean_hubble_rate
    scale = jax.lax.stop_gradient(matter.residual_scale(hubble, kappa_rho))
    out = {
        "residual": matter.einstein_residual(curv.einstein_tensor, jet.g, curv.g_inv, kappa_rho, lam, hubble),
        "hubble": hubble, "kappa_rho": kappa_rho, "ricci_scalar": curv.ricci_scalar,
        "shear": kin.shear_scalar, "scale": scale,
    }
    if energy_condition == "weak":
        kappa_t = curv.einstein_tensor + lam * curv.g  # kappa T_eff
        rho, pressures, _ = energy.principal_stresses(energy.frame_components(kappa_t, curv.g))
        out["energy_condition"] = energy.weak_violation(rho, pressures) / scale
    elif energy_condition == "ricci":
        out["energy_condition"] = energy.ricci_violation(curv.ricci_scalar) / scale
    elif energy_condition != "none":
        raise ValueError(f"energy_condition must be 'weak', 'ricci' or 'none', got {energy_condition!r}")
    return out


def einstein_term(residual: jax.Array, points: jax.Array, cfg: CosmologyConfig):
    """The field equations at ``points``: the point-wise equality r(x) = 0 with tolerance
    ``cfg.einstein_tol`` (hard; enforced by the constraint method and certified at held-out
    points), or with ``einstein="objective"`` the soft form r(x)^2 added to the loss."""
    if cfg.einstein == "constraint":
        return Constraint(residual, "eq", coords=points, tol=cfg.einstein_tol)
    return Objective(residual**2, coords=points)


def deceleration(metric_fn, x) -> jax.Array:
    """q = -1 - (dH/dtau) / H^2 of the gauge observer at x (tau its proper time: dtau = N dt)."""

    def h_of(t):
        return kinematics.mean_hubble_rate(metric_fn, x.at[0].set(t))

    h, dh_dt = jax.jvp(h_of, (x[0],), (jnp.ones_like(x[0]),))
    return -1.0 - dh_dt / (kinematics.lapse(metric_fn, x) * h**2)


__all__ = ["deceleration", "einstein_term", "point_fields"]
