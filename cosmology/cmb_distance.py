"""The CMB distance priors (R, l_A) of Planck 2018 as an optional data term, computed through an
FLRW continuation of the learned metric beyond the edge of its domain.

Observables (code units of :mod:`cosmology.conventions`, c = 1; D_M = (1 + z) D_A)

    R = sqrt(Omega_m) H0 D_M(z*),        l_A = pi D_M(z*) / r_s(z*),

with Omega_m = kappa rho_O / (3 H_O^2) and H0 = H_O the observer's (``problem.source``).

The model's part. The metric is a solution only where the field equations are imposed: up to the
edge redshift z_e (:func:`edge_redshift`: ``past_redshift``, unless the past light cone of the
background leaves the sampled ball earlier, as it does at z = 4.1 in the presets' domains, with
Einstein-de Sitter or open Omega_m = 0.3 backgrounds; or ``cmb_edge_redshift``). Rays from the
comoving observer to the observed z_e, along the 6 directions +-x, +-y, +-z (a spherical 3-design:
their mean is the sky mean of any pattern of degree <= 3; one ray for an isotropic problem), give
the means over the rays of

    D_M,e = (1 + z_e) d_A,   dD_M/dz = d_A + (1 + z_e) d d_A/dz  (the ray's equations at its end),
    H_e = theta / 3 of the dust,   kappa rho_e (``matter.comoving_density``)   at the rays' end points.

The continuation (a = 1 / (1 + z), a = 1 at the observer), for z >= z_e:

    H^2(a) = kappa rho_e (a_e / a)^3 / 3 + kappa rho_r / (3 a^4) + Lambda / 3 - K / a^2,
    K = a_e^2 (kappa rho_e / 3 + Lambda / 3 - H_e^2),  i.e. Omega_k,e = 1 - Omega_m,e - Omega_Lambda,e,
    kappa rho_r = 3 H_O^2 omega_r / h^2,   omega_m = kappa rho_e a_e^3 h^2 / (3 H_O^2),
    D_M(z*) = D_M,e C_K(dchi) + D_M,e' S_K(dchi),   dchi = int_{a*}^{a_e} da / (a^2 H),   D_M,e' = H_e dD_M/dz,
    r_s(z*) = int_0^{a*} c_s da / (a^2 H),   c_s = 1 / sqrt(3 (1 + 3 omega_b a / (4 omega_gamma))),
    z* = 1048 (1 + 0.00124 omega_b^-0.738) (1 + g1 omega_m^g2)   (Hu & Sugiyama 1996, ApJ 471, 542),
    g1 = 0.0783 omega_b^-0.238 / (1 + 39.5 omega_b^0.763),   g2 = 0.560 / (1 + 21.1 omega_b^1.81),

S_K(x) = sin(sqrt(K) x) / sqrt(K) (sinh for K < 0), C_K = dS_K/dx: FLRW's Jacobi field in comoving
distance obeys D_M'' = -K D_M for any a(t), so it continues from the model's value and slope; for an
exact FLRW metric D_M(z*) = S_K(chi(z*)). The integrals: Gauss-Legendre in sqrt(a) (smooth at a = 0).

Why the curvature is the model's own and radiation is added on top. The model is dust (+ Lambda):
at z_e its H_e has no radiation in it. Taking radiation out of the curvature instead
(Omega_k,e = 1 - Omega_m,e - Omega_r,e) keeps H continuous but gives exactly flat LCDM (Omega_m
= 0.3, h = 0.7, z_e = 50) a closed K = 0.22 H0^2 (Omega_r,e = 1.4% at z = 50, grown by
(a_e H_e)^2 = 15 back to today) and moves D_M(z*) by -1.5%; here H jumps by sqrt(1 + Omega_r,e)
at z_e and K, a property of the geometry, is kept.

Approximations. (1) Radiation is absent from the model below z_e: for flat LCDM (0.3, h = 0.7)
D_M(z*) comes out long by 1.5e-4 (z_e = 4.1), 5.2e-4 (20), 9.4e-4 (50) (l_A's error is 3.0e-4).
(2) Beyond z_e: homogeneous, pressureless matter (its density the light cone's mean at z_e),
massless neutrinos, baryons only in the sound speed. (3) h, the observer's H_O in units of
100 km/s/Mpc, is fixed (``cmb_distance_h``, default 0.7; the supernovae marginalise it): it sets
omega_m (z*), omega_r / omega_m (r_s) and the radiation in H, so R depends on h only through the
radiation and l_A also through z* and r_s. (4) z* is the fitting formula, as in the likelihood.
(5) The rays start from the comoving observer (``observer_velocity`` is ignored: a sky mean).
(6) float32: the edge rays run at rtol 1e-6 (not the tracer's 1e-5), which puts R and l_A within
1e-5 of float64 (tested: 2e-5) (at 1e-5 the slope D_M,e' errs by 1.4e-4 and l_A by 5e-5, a sixth of its sigma).

Data: Chen, Huang & Wang, "Distance Priors from Planck Final Release", JCAP 02 (2019) 028,
arXiv:1808.05724, table of distance priors, LCDM, Planck TT,TE,EE+lowE: R = 1.7502 +- 0.0046,
l_A = 301.471 +0.089 -0.090, omega_b = 0.02236 +- 0.00015, correlations r(R, l_A) = 0.46,
r(R, omega_b) = -0.66, r(l_A, omega_b) = -0.33. Used: the means and inverse covariance of the
paper's CosmoMC files (``distance.ini``: 1.750235, 301.4707, 0.02235976; ``Distance_invcov.txt``,
``INVERSE_COVARIANCE``); their inverse has sigma (0.00462, 0.0889, 0.000149) and correlations
(0.463, -0.660, -0.327), the table to its rounding (tested). Verified how: not against the paper
itself (not readable here) but against three independent public codes quoting these numbers, one of
which checks them verbatim against the paper's TeX source, and by reproducing the mean with the
paper's own conventions (my scipy computation): flat LCDM, Omega_m = 0.3163, h = 0.6744,
omega_b = 0.02236 gives R = 1.75026, l_A = 301.470.

Radiation (``cmb_distance_radiation``). "chen2019" (default): the paper's Omega_r = Omega_m /
(1 + z_eq), z_eq = 2.5e4 omega_m (T_CMB / 2.7 K)^-4 (omega_r = 4.15e-5). "neff": omega_r =
omega_gamma (1 + (7/8)(4/11)^(4/3) N_eff), T_CMB = 2.7255 K, N_eff = 3.046 (4.18e-5). At the point
above "neff" gives l_A = 302.027, 6 sigma away: the compressed likelihood is a summary in its own
conventions, so "chen2019" is the consistent choice. omega_gamma = 2.4730e-5 (CODATA 2018).

chi^2 = x^T C^-1 x, x = (R, l_A, omega_b) - mean, omega_b the prior's (by default the mean: the
chi^2 of (R, l_A) given omega_b). The term ``cmb_distance``: an Objective whose loss is
chi^2_CMB / N_SN (residual U x sqrt(3 / N_SN), U^T U = C^-1), N_SN the supernova rows, so that with
the ``sum`` balancer the data part of the loss is (chi^2_SN + chi^2_CMB) / N_SN.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from cosmology import kinematics, matter
from cosmology.conventions import OBSERVER
from cosmology.presets import CMB_RADIATIONS
from cosmology.ray_geodesic import RayOptions, area_distance, ray_equations, redshift
from cosmology.ray_integration import _integrate, _resolved, _start, _state_at_redshift

PLANCK2018_MEAN = np.array([1.750235, 301.4707, 0.02235976])  # (R, l_A, omega_b): distance.ini
INVERSE_COVARIANCE = np.array([[94392.3971, -1360.4913, 1664517.2916],  # Distance_invcov.txt
                               [-1360.4913, 161.4349, 3671.6180],
                               [1664517.2916, 3671.6180, 79719182.5162]])
_WHITEN = np.linalg.cholesky(INVERSE_COVARIANCE).T  # U with U^T U = C^-1
T_CMB = 2.7255  # K (Fixsen 2009)
N_EFF = 3.046
RADIATIONS = CMB_RADIATIONS  # "chen2019", "neff"
EDGE_DIRECTIONS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float64)
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)


def photon_density(t_cmb: float = T_CMB) -> float:
    """omega_gamma = Omega_gamma h^2 = (pi^2 / 15) (k T)^4 / (hbar^3 c^5) / (3 H_100^2 / 8 pi G)."""
    k_b, hbar, c, g, mpc = 1.380649e-23, 1.054571817e-34, 299792458.0, 6.67430e-11, 3.0856775814913673e22
    rho = math.pi**2 / 15.0 * (k_b * t_cmb) ** 4 / (hbar**3 * c**5)
    return rho / (3.0 * (1e5 / mpc) ** 2 / (8.0 * math.pi * g))


class CMBDistancePrior(NamedTuple):
    """The prior's fixed parameters (module docstring): the observer's h, omega_b, the radiation."""

    h: float = 0.7
    omega_b: float = float(PLANCK2018_MEAN[2])
    radiation: str = "chen2019"
    t_cmb: float = T_CMB
    n_eff: float = N_EFF

    def check(self) -> "CMBDistancePrior":
        if self.radiation not in RADIATIONS:
            raise ValueError(f"cmb_distance_radiation must be one of {RADIATIONS}, got {self.radiation!r}")
        for name, value in (("cmb_distance_h", self.h), ("omega_b", self.omega_b), ("t_cmb", self.t_cmb)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not 0.2 <= self.h <= 2.0:
            raise ValueError(f"cmb_distance_h (H_O / 100 km/s/Mpc) must lie in [0.2, 2], got {self.h!r}")
        if not self.n_eff >= 0:
            raise ValueError(f"n_eff must be >= 0, got {self.n_eff!r}")
        return self


# ----------------------------------------------------------------------------- early FLRW


def z_star(omega_b, omega_m):
    """The redshift of last scattering, Hu & Sugiyama (1996) fitting formula (module docstring)."""
    g1 = 0.0783 * omega_b**-0.238 / (1.0 + 39.5 * omega_b**0.763)
    g2 = 0.560 / (1.0 + 21.1 * omega_b**1.81)
    return 1048.0 * (1.0 + 0.00124 * omega_b**-0.738) * (1.0 + g1 * omega_m**g2)


def radiation_density(omega_m, prior: CMBDistancePrior):
    """omega_r = Omega_r h^2 for the ``prior.radiation`` convention (module docstring)."""
    if prior.radiation == "chen2019":
        z_eq = 2.5e4 * omega_m * (prior.t_cmb / 2.7) ** -4
        return omega_m / (1.0 + z_eq)
    return photon_density(prior.t_cmb) * (1.0 + 7.0 / 8.0 * (4.0 / 11.0) ** (4.0 / 3.0) * prior.n_eff)


def sin_k(x, curvature):
    """(S_K(x), C_K(x)): sin(sqrt(K) x) / sqrt(K) and cos(sqrt(K) x) (sinh, cosh for K < 0; x, 1 at 0)."""
    u = curvature * x**2
    small = jnp.abs(u) < 0.5
    s_series, c_series = 1.0, 1.0
    for n in range(9, 0, -1):  # Horner: sum_n (-u)^n / (2n+1)!, (-u)^n / (2n)!; |u| < 0.5: next term < 1e-19
        s_series = 1.0 - u * s_series / ((2 * n) * (2 * n + 1))
        c_series = 1.0 - u * c_series / ((2 * n - 1) * (2 * n))
    r = jnp.sqrt(jnp.abs(jnp.where(small, 1.0, u)))  # no NaN in the unused branch's gradient
    s_closed = jnp.where(u > 0, jnp.sin(r), jnp.sinh(r)) / r
    c_closed = jnp.where(u > 0, jnp.cos(r), jnp.cosh(r))
    return x * jnp.where(small, s_series, s_closed), jnp.where(small, c_series, c_closed)


def _gauss(f, u0, u1):
    """int_{u0}^{u1} f(u) du by 48-point Gauss-Legendre."""
    nodes = jnp.asarray(_NODES, jnp.result_type(u0, u1))
    half, mid = 0.5 * (u1 - u0), 0.5 * (u1 + u0)
    return half * jnp.sum(jnp.asarray(_WEIGHTS, nodes.dtype) * f(mid + half * nodes))


class Edge(NamedTuple):
    """The model at the edge z_e (means over the rays) and at the observer (module docstring)."""

    z_edge: jax.Array
    d_m: jax.Array  # D_M,e = (1 + z_e) d_A
    d_m_dz: jax.Array  # dD_M/dz at z_e
    hubble: jax.Array  # H_e of the dust
    kappa_rho: jax.Array  # kappa rho_e of the dust
    cosmological_constant: jax.Array  # Lambda
    observer_hubble: jax.Array  # H_O
    observer_omega_m: jax.Array  # Omega_m at the observer


def continued_distances(edge: Edge, prior: CMBDistancePrior) -> dict:
    """R, l_A, z*, D_M(z*), r_s(z*) (code units) and the continuation's K, Omega_m,e, Omega_k,e,
    omega_m, omega_r, from the model's values at the edge (module docstring)."""
    h_o, h_e, lam = edge.observer_hubble, edge.hubble, edge.cosmological_constant
    a_e = 1.0 / (1.0 + edge.z_edge)
    omega_m = edge.kappa_rho * a_e**3 * prior.h**2 / (3.0 * h_o**2)
    omega_r = radiation_density(omega_m, prior)
    kappa_rho_r = 3.0 * h_o**2 * omega_r / prior.h**2  # today's, x a^-4
    curvature = a_e**2 * (edge.kappa_rho / 3.0 + lam / 3.0 - h_e**2)
    matter_today = edge.kappa_rho * a_e**3 / 3.0

    def dchi_du(u):  # dchi = da / (a^2 H) = 2 u du / sqrt(a^4 H^2), a = u^2
        a = u * u
        a4h2 = matter_today * a + kappa_rho_r / 3.0 + lam * a**4 / 3.0 - curvature * a**2
        return 2.0 * u / jnp.sqrt(a4h2)

    sound = 3.0 * prior.omega_b / (4.0 * photon_density(prior.t_cmb))
    zs = z_star(prior.omega_b, omega_m)
    u_star, u_e = jnp.sqrt(1.0 / (1.0 + zs)), jnp.sqrt(a_e)
    dchi = _gauss(dchi_du, u_star, u_e)
    r_s = _gauss(lambda u: dchi_du(u) / jnp.sqrt(3.0 * (1.0 + sound * u * u)), jnp.zeros_like(u_e), u_star)
    s, c = sin_k(dchi, curvature)
    d_m = edge.d_m * c + h_e * edge.d_m_dz * s
    return {
        "R": jnp.sqrt(edge.observer_omega_m) * h_o * d_m, "l_A": math.pi * d_m / r_s, "z_star": zs,
        "d_m_star": d_m, "r_s": r_s, "curvature": curvature, "omega_m_edge": edge.kappa_rho / (3.0 * h_e**2),
        "omega_k_edge": -curvature / (a_e * h_e) ** 2, "omega_m_h2": omega_m, "omega_r_h2": omega_r,
    }


def chi2(r, l_a, omega_b):
    """x^T C^-1 x (module docstring) and the whitened residuals U x (3,)."""
    mean = PLANCK2018_MEAN
    x = jnp.stack([r - mean[0], l_a - mean[1], jnp.zeros_like(r) + (omega_b - mean[2])])
    w = jnp.asarray(_WHITEN, x.dtype) @ x
    return jnp.sum(w**2), w


# ----------------------------------------------------------------------------- the model's edge


def ray_to_edge(metric_fn, observer, direction, z_edge, options: RayOptions = RayOptions()):
    """One ray from the comoving observer towards ``direction`` to the observed ``z_edge``:
    (end point x (4,), d_A, d d_A / dz, reached)."""
    observer = jnp.asarray(observer)
    options = _resolved(options, observer.dtype)
    y0 = _start(metric_fn, observer, direction, None)
    z_edge = jnp.asarray(z_edge, observer.dtype)
    sol = _integrate(metric_fn, y0, options, z_stop=z_edge)
    z0 = redshift(metric_fn(y0.x), y0.k)
    state, _, found = _state_at_redshift(metric_fn, sol, z0, z_edge, options.newton_iterations)
    rate = ray_equations(metric_fn, options.parameter)(None, state, None)  # exact d state/ds, not the interpolant's

    def z_and_distance(s):
        g = metric_fn(s.x)
        return redshift(g, s.k), area_distance(g, s.k, s.xi)

    (_, d_a), (dz, dd_a) = jax.jvp(z_and_distance, (state,), (rate,))
    return state.x, d_a, dd_a / dz, found


def edge_of(metric_fn, source: matter.Source, directions, z_edge, options: RayOptions = RayOptions()):
    """(:class:`Edge`, end points (K, 4), reached (K,)) from rays along ``directions`` (K, 3)."""
    observer = jnp.asarray(OBSERVER, jnp.result_type(float))
    directions = jnp.asarray(directions, observer.dtype)
    if options.rtol is None and observer.dtype == jnp.float32:  # the slope D_M,e' (module docstring)
        options = options._replace(rtol=1e-6, atol=1e-8)
    x, d_a, dd_a, found = jax.vmap(lambda n: ray_to_edge(metric_fn, observer, n, z_edge, options))(directions)
    hubble = jax.vmap(lambda p: kinematics.comoving_kinematics(metric_fn, p).mean_hubble_rate)(x)
    kappa_rho = jax.vmap(lambda p: matter.comoving_density(metric_fn, p, source))(x)
    z = jnp.asarray(z_edge, observer.dtype)
    edge = Edge(z, jnp.mean((1.0 + z) * d_a), jnp.mean(d_a + (1.0 + z) * dd_a), jnp.mean(hubble), jnp.mean(kappa_rho),
                source.cosmological_constant, source.hubble, source.omega_m)
    return edge, x, found


def prior_values(metric_fn, source: matter.Source, directions, z_edge, prior: CMBDistancePrior,
                 options: RayOptions = RayOptions()) -> dict:
    """:func:`continued_distances` of the metric's edge, with ``chi2``, ``residual`` (3,),
    ``edge_points`` (K, 4) and ``reached`` (all rays reached z_e; NaN values otherwise)."""
    edge, x, found = edge_of(metric_fn, source, directions, z_edge, options)
    out = continued_distances(edge, prior)
    out["chi2"], out["residual"] = chi2(out["R"], out["l_A"], prior.omega_b)
    out.update(edge_points=x, reached=jnp.all(found), d_m_edge=edge.d_m, hubble_edge=edge.hubble)
    return out


# ----------------------------------------------------------------------------- the domain's edge


def edge_redshift(background, windows: dict, requested: Optional[float] = None) -> float:
    """z_e (host, at build time): ``requested`` (``cmb_edge_redshift``), checked to lie in the domain,
    or the largest background redshift whose past light cone stays inside the domain: in time
    (t >= windows["start"]) and in space (coordinate radius <= windows["radius"])."""
    from cosmology import open_background
    from cosmology.collocation import _comoving_distance

    z_time = 1.0 / float(background.scale_factor(windows["start"])) - 1.0

    def reach(z):
        chi = _comoving_distance(background, float(background.time_at_redshift(z)))
        return open_background.coordinate_radius(chi, background.omega_m) if background.kind == "open" else chi

    radius = float(windows["radius"])
    if reach(z_time) <= radius:
        z_max = z_time
    else:  # bisection in ln(1 + z) on the light cone's coordinate radius
        lo, hi = 0.0, math.log1p(z_time)
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if reach(math.expm1(mid)) <= radius else (lo, mid)
        z_max = math.expm1(lo)
    if requested is None:
        return z_max
    if not 0 < requested <= z_max * (1 + 1e-9):
        raise ValueError(f"cmb_edge_redshift must lie in (0, {z_max:.4g}]: beyond it the background's past light "
                         f"cone leaves the sampled domain (radius {radius:.4g}, start {windows['start']:.4g} in code "
                         f"units); got {requested!r}")
    return float(requested)


# ----------------------------------------------------------------------------- the problem's term


def prior_of(cfg) -> CMBDistancePrior:
    """The prior of a :class:`cosmology.presets.CosmologyConfig` (its ``cmb_distance_*`` fields)."""
    return CMBDistancePrior(h=cfg.cmb_distance_h, radiation=cfg.cmb_distance_radiation).check()


def problem_values(problem, metric_fn, source: matter.Source) -> dict:
    """:func:`prior_values` for ``problem`` (its edge z_e in ``windows``, one ray if isotropic)."""
    directions = EDGE_DIRECTIONS[4:5] if problem.isotropic else EDGE_DIRECTIONS
    options = RayOptions(max_steps=problem.cfg.max_ray_steps)
    return prior_values(metric_fn, source, directions, problem.windows["cmb_edge_redshift"], prior_of(problem.cfg),
                        options)


def objective(problem, metric_fn, source: matter.Source):
    """The term ``cmb_distance``: loss chi^2_CMB / N_SN (module docstring)."""
    from pinnopt.terms import Objective

    n_sn = int(problem.data.z.shape[0])
    return Objective.of_residual(problem_values(problem, metric_fn, source)["residual"] * math.sqrt(3.0 / n_sn))


def evaluate(problem, metric_fn, source: matter.Source) -> dict:
    """Scalars for ``problem.evaluate`` (jittable): cmb_R, cmb_l_A, chi2_cmb, and the continuation's
    z*, Omega_m and Omega_k at the edge, and the rays' largest end radius over the domain's."""
    v = problem_values(problem, metric_fn, source)
    radius = jnp.max(jnp.linalg.norm(v["edge_points"][:, 1:], axis=1)) / problem.windows["radius"]
    return {"cmb_R": v["R"], "cmb_l_A": v["l_A"], "chi2_cmb": v["chi2"], "cmb_z_star": v["z_star"],
            "cmb_omega_m_edge": v["omega_m_edge"], "cmb_omega_k_edge": v["omega_k_edge"],
            "cmb_edge_radius_ratio": jnp.where(v["reached"], radius, jnp.nan)}


def summary_section(problem, ev: dict) -> dict:
    """``summary["cmb_distance_prior"]`` from the evaluated scalars ``ev``."""
    prior = prior_of(problem.cfg)
    keys = ("cmb_R", "cmb_l_A", "chi2_cmb", "cmb_z_star", "cmb_omega_m_edge", "cmb_omega_k_edge",
            "cmb_edge_radius_ratio")
    return {**{k[4:] if k.startswith("cmb_") else k: float(ev[k]) for k in keys},
            "edge_redshift": float(problem.windows["cmb_edge_redshift"]), "h": prior.h, "omega_b": prior.omega_b,
            "radiation": prior.radiation, "data_mean_R_lA_omega_b": PLANCK2018_MEAN.tolist(),
            "source": "Chen, Huang & Wang 2019, JCAP 02 (2019) 028, arXiv:1808.05724 (Planck 2018 TT,TE,EE+lowE, LCDM)"}


__all__ = ["CMBDistancePrior", "EDGE_DIRECTIONS", "Edge", "INVERSE_COVARIANCE", "PLANCK2018_MEAN", "RADIATIONS",
           "chi2", "continued_distances", "edge_of", "edge_redshift", "evaluate", "objective", "photon_density",
           "prior_of", "prior_values", "problem_values", "radiation_density", "ray_to_edge", "sin_k", "summary_section",
           "z_star"]
