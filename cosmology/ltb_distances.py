"""Distances in the LTB void of :mod:`cosmology.ltb`, integrated with scipy (independent of the
ray tracer), and the classical fit of a GBH void to supernova distance moduli.

Central observer (today at the centre). A radial past-directed light ray obeys

    dt/dr = -A' / sqrt(1 - k),   dz/dr = (1 + z) Adot' / sqrt(1 - k),

so with the redshift as the parameter (Adot' > 0: every shell expands, no shell crossing)

    dr/dz = sqrt(1 - k) / ((1 + z) Adot'),   dt/dz = -A' / ((1 + z) Adot').

Y = A / r is carried along as a third unknown, dY/dz = Y_s ds/dz + (Y_r / r) r dr/dz with
Y_s = t0 H0 E and s = 1 + t/t0, so the right-hand side is closed-form (:func:`cosmology.ltb.fields`)
and needs no root solve. Then d_A = A(r(z), t(z)) = r Y, d_L = (1 + z)^2 d_A and the density
on the light cone is kappa rho(r(z), t(z)). DOP853, rtol 1e-10, from (r, s, Y) = (0, 1, 1).

Off-centre observer (a reference for the ray tracer): comoving, today at distance d from the
centre. By symmetry about the line through the centre and the observer, a ray stays in a plane
containing that line; in the plane's polar coordinates (r, phi) about the centre, observer at
phi = 0, the metric is -dt^2 + X^2 dr^2 + A^2 dphi^2, X = A' / sqrt(1 - k), and the geodesic
equations are

    dk^t = -X Xdot (k^r)^2 - A Adot (k^phi)^2,
    dk^r = -2 (Xdot / X) k^t k^r - (X' / X) (k^r)^2 + (A A' / X^2) (k^phi)^2,
    dk^phi = -2 (Adot / A) k^t k^phi - 2 (A' / A) k^r k^phi       (d = d/dlambda),

with k = (-1, cos psi / X, sin psi / A) at the observer (u.k = 1; psi the angle from the outward
radial direction: 0 away from the centre, pi towards it) and 1 + z = -k^t. The Jacobi map is
diagonal in (in-plane, out-of-plane) by the reflection symmetry of the plane:
  - in the plane, D_1 = |xi_perp|: xi = dx/dpsi, integrated with the geodesic equations'
    linearisation (JAX derivatives of A and X), projected perpendicular to the ray in the
    source frame, |X xi^r d^phi - A xi^phi d^r|, d = (X k^r, A k^phi) / |k^t|;
  - out of it, a rotation by beta about the axis moves the ray's points by beta A sin(phi) and
    turns its direction at the observer by beta sin(psi): D_2 = A |sin phi| / |sin psi|;
  d_A = sqrt(D_1 D_2). On the axis itself (psi = 0, pi) the rays pass the centre in a straight
  line in the signed coordinate r (A odd, X even in r for the smooth profile), the beam is
  shear-free, and the Sachs focusing equation D'' = -R_ab k^a k^b D / 2 = -kappa rho (1 + z)^2 D / 2
  gives d_A = D (D = 0, D' = 1 at the observer). Both use the redshift as the parameter,
  zeta = ln(1 + z), and are integrated with DOP853 (rtol 1e-11).

Fit. mu_model(z) = 5 log10(d_L(z)) + o with d_L in code units (c/H0(0)) and the offset o
(absolute magnitude and 5 log10(c/H0 / 10 pc)) marginalised analytically exactly as in
:mod:`cosmology.likelihood` (its ``Whitening``, ``whitened_residuals``, ``chi2`` and
``best_offset``): chi^2 = |w - (u.w / e) u|^2, w = W r, u = W 1, e = |u|^2. One light cone per
parameter set gives d_L at every supernova redshift (the dense output of the solve), and
scipy's least_squares minimises the whitened residuals over (Omega_in, r0, dr), with
Omega_out = 1 unless freed.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize
from scipy.integrate import solve_ivp

from cosmology import likelihood
from cosmology.ltb import GBHVoid, check_void, fields, ltb_fields, scale_factor, shells

RTOL, ATOL = 1e-10, 1e-13


class LightCone(NamedTuple):
    """The central observer's past light cone at the requested redshifts (numpy float64)."""

    z: np.ndarray
    r: np.ndarray  # comoving radius (the gauge A(r, 0) = r)
    t: np.ndarray  # time of emission (today t = 0)
    y: np.ndarray  # A / r there
    area_distance: np.ndarray  # d_A = A(r, t)
    luminosity_distance: np.ndarray  # (1 + z)^2 d_A
    kappa_rho: np.ndarray  # the dust density on the cone


def _cone_rhs(void: GBHVoid, profile: str):
    def rhs(z, state):
        r, s, y = state
        w = r * r
        sh = shells(void, w, profile, np)
        f = fields(void, w, s, y, profile, np, sh)
        dr = np.sqrt(f.one_minus_k) / ((1.0 + z) * f.adot_prime)
        ds = -f.a_prime / ((1.0 + z) * f.adot_prime) / sh.age
        return [dr, ds, f.y_rate * ds + f.y_slope * r * dr]

    return rhs


def central_light_cone(void: GBHVoid, redshifts, *, profile: str = "smooth", rtol: float = RTOL,
                       atol: float = ATOL) -> LightCone:
    """The light cone of the central observer at ``redshifts`` (any order, >= 0), module docstring."""
    check_void(void, profile)
    void = GBHVoid(*(float(v) for v in void))
    z = np.asarray(redshifts, np.float64)
    if z.ndim != 1 or z.size == 0 or np.any(z < 0) or not np.all(np.isfinite(z)):
        raise ValueError(f"redshifts must be a non-empty 1-D array of finite values >= 0, got shape {z.shape}")
    nodes, inverse = np.unique(z, return_inverse=True)
    sol = solve_ivp(_cone_rhs(void, profile), (0.0, nodes[-1]), [0.0, 1.0, 1.0], method="DOP853",
                    t_eval=nodes, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"the light-cone integration failed: {sol.message}")
    r, s, y = (v[inverse] for v in sol.y)
    age = float(shells(void, 0.0, profile, np).age)
    f = fields(void, r * r, s, y, profile, np)
    d_a = r * y
    return LightCone(z, r, (s - 1.0) * age, y, d_a, (1.0 + z) ** 2 * d_a, np.asarray(f.kappa_rho))


# ----------------------------------------------------------------------------- off-centre observer


@functools.lru_cache(maxsize=8)
def _plane_rhs(void: GBHVoid, profile: str):
    """Jitted state (12,) = (x, k, xi, eta) in (t, r, phi) -> d state / d zeta (cached per void:
    compiling the nested derivatives takes seconds)."""

    def area_and_radial(t, r):  # (A, X) at (t, r)
        sh = shells(void, r * r, profile)
        s = 1.0 + t / sh.age
        f = fields(void, r * r, s, scale_factor(s, sh.q), profile, jnp, sh)
        return jnp.stack([r * f.y, f.a_prime / jnp.sqrt(f.one_minus_k)])

    def acceleration(x, k):
        (a, x_), (a_t, x_t) = jax.jvp(lambda t: area_and_radial(t, x[1]), (x[0],), (jnp.ones_like(x[0]),))
        a_r, x_r = jax.jvp(lambda r: area_and_radial(x[0], r), (x[1],), (jnp.ones_like(x[1]),))[1]
        kt, kr, kp = k
        return jnp.stack([-x_ * x_t * kr**2 - a * a_t * kp**2,
                          -2.0 * x_t / x_ * kt * kr - x_r / x_ * kr**2 + a * a_r / x_**2 * kp**2,
                          -2.0 * a_t / a * kt * kp - 2.0 * a_r / a * kr * kp])

    @jax.jit
    def rhs(state):
        x, k, xi, eta = state[0:3], state[3:6], state[6:9], state[9:12]
        acc, d_acc = jax.jvp(acceleration, (x, k), (xi, eta))
        return jnp.concatenate([k, acc, eta, d_acc]) * (k[0] / acc[0])  # d/dzeta = (k^t / dk^t) d/dlambda

    return rhs


def _radial(void, r, t, profile):
    """(A, X, Xdot, kappa rho) at (r, t), numpy; r may be negative (A odd, the rest even)."""
    f = ltb_fields(void, np.float64(r), np.float64(t), profile, np)
    root = np.sqrt(f.one_minus_k)
    return r * f.y, f.a_prime / root, f.adot_prime / root, f.kappa_rho


def off_centre_luminosity_distance(void: GBHVoid, offset: float, angle: float, redshifts, *,
                                   profile: str = "smooth", rtol: float = 1e-11, atol: float = 1e-13) -> np.ndarray:
    """d_L (M,) at ``redshifts`` (increasing, > 0) seen by the comoving observer at distance
    ``offset`` from the centre, towards the direction at ``angle`` (radians) from the outward
    radial direction (0: away from the centre, pi: towards it), module docstring."""
    check_void(void, profile)
    if profile != "smooth":
        raise ValueError(f"profile={profile!r}: rays through the centre need profile='smooth'")
    void = GBHVoid(*(float(v) for v in void))
    z = np.asarray(redshifts, np.float64)
    if z.ndim != 1 or np.any(z <= 0) or np.any(np.diff(z) <= 0):
        raise ValueError(f"redshifts must be increasing and > 0, got {z}")
    if not offset > 0:
        raise ValueError(f"offset must be > 0 (a central observer: central_light_cone), got {offset}")
    zeta = np.log1p(z)
    sin_psi, cos_psi = np.sin(angle), np.cos(angle)
    _, x_obs, _, _ = _radial(void, offset, 0.0, profile)
    if abs(sin_psi) < 1e-12:  # on the axis: Sachs focusing along the straight radial ray
        sign = 1.0 if cos_psi > 0 else -1.0

        def axial(zeta_, state):
            t, r, d, p = state
            _, x_, x_dot, kappa_rho = _radial(void, r, t, profile)
            opz = np.exp(zeta_)
            return [-x_ / x_dot, sign / x_dot, p * x_ / (opz * x_dot), -0.5 * kappa_rho * opz * x_ * d / x_dot]

        sol = solve_ivp(axial, (0.0, zeta[-1]), [0.0, offset, 0.0, 1.0], method="DOP853", t_eval=zeta,
                        rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"the ray integration failed: {sol.message}")
        d_a = np.abs(sol.y[2])
    else:
        with jax.enable_x64(True):
            rhs = _plane_rhs(void, profile)
            k0 = [-1.0, cos_psi / x_obs, sin_psi / offset]  # A = r today (the gauge)
            eta0 = [0.0, -sin_psi / x_obs, cos_psi / offset]  # dk/dpsi
            state0 = np.array([0.0, offset, 0.0, *k0, 0.0, 0.0, 0.0, *eta0])
            sol = solve_ivp(lambda _, y: np.asarray(rhs(jnp.asarray(y))), (0.0, zeta[-1]), state0,
                            method="DOP853", t_eval=zeta, rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"the ray integration failed: {sol.message}")
        t, r, phi, kt, kr, kp, _, xi_r, xi_p = sol.y[:9]
        area, x_ = np.array([_radial(void, ri, ti, profile)[:2] for ri, ti in zip(r, t)]).T
        d_r, d_p = x_ * kr / np.abs(kt), area * kp / np.abs(kt)
        d_a = np.sqrt(np.abs(x_ * xi_r * d_p - area * xi_p * d_r) * area * np.abs(np.sin(phi)) / abs(sin_psi))
    return (1.0 + z) ** 2 * d_a


# ----------------------------------------------------------------------------- the fit


class GBHFit(NamedTuple):
    void: GBHVoid  # the best fit (code units: lengths in c/H0(0))
    errors: dict  # 1 sigma of each fitted parameter, from (J^T J)^-1 of the whitened residuals
    chi2: float  # at the minimum, offset marginalised (no log term)
    offset: float  # best o in mu = 5 log10(d_L / (c/H0(0))) + o
    n: int
    dof: int  # n - fitted parameters - 1 (the offset)
    success: bool
    nfev: int
    profile: str
    at_bound: tuple  # names of the parameters that ended on a bound (their errors mean little)


def _whitening(mu, errors, covariance, factor) -> likelihood.Whitening:
    """``likelihood.Whitening`` in float64 (call inside jax.enable_x64) from exactly one of
    ``errors`` (N,), ``covariance`` (N, N) or ``factor`` (W = L^-1, (N, N), or 1/sigma (N,))."""
    given = [name for name, v in (("errors", errors), ("covariance", covariance), ("factor", factor)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of errors, covariance or factor, got {given or 'none'}")
    n = mu.shape[0]
    if errors is not None:
        errors = np.asarray(errors, np.float64)
        if errors.shape != (n,) or np.any(errors <= 0):
            raise ValueError(f"errors must be ({n},) and > 0, got shape {errors.shape}")
        factor = 1.0 / errors
    elif covariance is not None:
        covariance = np.asarray(covariance, np.float64)
        if covariance.shape != (n, n):
            raise ValueError(f"covariance must be ({n}, {n}), got {covariance.shape}")
        lower = scipy.linalg.cholesky(covariance, lower=True)
        factor = scipy.linalg.solve_triangular(lower, np.eye(n), lower=True)
    factor = np.asarray(factor, np.float64)
    if factor.shape not in ((n,), (n, n)):
        raise ValueError(f"factor must be ({n},) or ({n}, {n}), got {factor.shape}")
    ones = factor @ np.ones(n) if factor.ndim == 2 else factor
    return likelihood.Whitening(jnp.asarray(mu, jnp.float64), jnp.asarray(factor, jnp.float64),
                                jnp.asarray(ones, jnp.float64), jnp.asarray(ones @ ones, jnp.float64))


def gbh_distance_moduli(void: GBHVoid, z, z_hel=None, *, profile: str = "smooth", rtol: float = RTOL):
    """5 log10(d_L) (code units) of the central observer, d_L = (1 + z_hel)(1 + z) d_A(z)
    (z_hel = z when not given: the heliocentric factor as in ``likelihood.luminosity_distance_flat_lcdm``)."""
    cone = central_light_cone(void, z, profile=profile, rtol=rtol)
    z_obs = cone.z if z_hel is None else np.asarray(z_hel, np.float64)
    return 5.0 * np.log10((1.0 + z_obs) * (1.0 + cone.z) * cone.area_distance)


def fit_gbh_void(z, mu, *, errors=None, covariance=None, factor=None, z_hel=None, omega_out: float = 1.0,
                 free_omega_out: bool = False, start: Optional[GBHVoid] = None, bounds: Optional[dict] = None,
                 profile: str = "smooth", rtol: float = RTOL) -> GBHFit:
    """Best GBH void for distance moduli ``mu`` at redshifts ``z``, the offset marginalised.

    Errors: one of ``errors`` (diagonal), ``covariance`` or ``factor`` (the whitening W of
    ``likelihood.whitening_factor``). Fits (omega_in, r0, dr), and omega_out when
    ``free_omega_out`` (else fixed at ``omega_out``), from ``start`` (default Omega_in 0.3,
    r0 0.5, dr 0.2) within ``bounds`` ({name: (lo, hi)}; defaults omega 0.02..1.5, r0 0.01..5,
    dr 0.01..3). Local optimiser (trust-region least squares): start near the basin you expect.
    """
    z, mu = np.asarray(z, np.float64), np.asarray(mu, np.float64)
    if z.ndim != 1 or mu.shape != z.shape:
        raise ValueError(f"z and mu must be 1-D of the same length, got {z.shape} and {mu.shape}")
    limits = {"omega_in": (0.02, 1.5), "omega_out": (0.02, 1.5), "r0": (0.01, 5.0), "dr": (0.01, 3.0)}
    for name, value in (bounds or {}).items():
        if name not in limits:
            raise ValueError(f"bounds: unknown parameter {name!r}; known: {sorted(limits)}")
        limits[name] = tuple(value)
    names = ["omega_in", "r0", "dr"] + (["omega_out"] if free_omega_out else [])
    start = GBHVoid(0.3, omega_out, 0.5, 0.2) if start is None else GBHVoid(*start)
    check_void(start, profile)
    x0 = np.array([getattr(start, k) for k in names], np.float64)
    lo, hi = np.array([limits[k][0] for k in names]), np.array([limits[k][1] for k in names])
    if np.any(x0 <= lo) or np.any(x0 >= hi):
        raise ValueError(f"start {dict(zip(names, x0))} must lie strictly inside the bounds {limits}")

    def void_of(x):
        values = dict(zip(names, x))
        return GBHVoid(values["omega_in"], values.get("omega_out", omega_out), values["r0"], values["dr"])

    with jax.enable_x64(True):
        wh = _whitening(mu, errors, covariance, factor)

        def model(x):
            return jnp.asarray(gbh_distance_moduli(void_of(x), z, z_hel, profile=profile, rtol=rtol))

        def residuals(x):
            return np.asarray(likelihood.whitened_residuals(wh, model(x)))

        best = scipy.optimize.least_squares(residuals, x0, bounds=(lo, hi), method="trf", x_scale=np.abs(x0),
                                            diff_step=1e-5, xtol=1e-10, ftol=1e-12, gtol=1e-10)
        mu_best = model(best.x)
        chi2 = float(likelihood.chi2(wh, mu_best))
        offset = float(likelihood.best_offset(wh, mu_best))
    fisher = best.jac.T @ best.jac
    errors_ = np.sqrt(np.diag(np.linalg.pinv(fisher))) if np.all(np.isfinite(fisher)) else np.full(len(names), np.nan)
    at_bound = tuple(k for k, v, a, b in zip(names, best.x, lo, hi) if min(v - a, b - v) <= 1e-6 * (b - a))
    return GBHFit(void_of([float(v) for v in best.x]), dict(zip(names, map(float, errors_))), chi2, offset, z.size,
                  z.size - len(names) - 1, bool(best.success), int(best.nfev), profile, at_bound)


def fit_gbh_void_sample(sample, *, observable: str = "mu", heliocentric: bool = True, **options) -> GBHFit:
    """:func:`fit_gbh_void` on a ``cosmology.data.SupernovaSample`` (its covariance, or diagonal
    errors, through ``likelihood.whitening_factor``; z_hd, and z_hel for the (1 + z) factor)."""
    obs, factor = likelihood.whitening_factor(sample, observable)
    return fit_gbh_void(sample.z_hd, obs, factor=factor, z_hel=sample.z_hel if heliocentric else None, **options)


__all__ = ["GBHFit", "LightCone", "central_light_cone", "fit_gbh_void", "fit_gbh_void_sample", "gbh_distance_moduli",
           "off_centre_luminosity_distance"]
