"""Checks made once, at the end of a run: exact distances for every supernova, the sky grid
measured against them, and whether every ray stays inside the region where the field
equations are imposed.

Exact distances
    Training reads d_L(n_i, z_i) off the sky grid of :mod:`cosmology.supernovae` (K rays,
    a fit of the harmonics ell <= L, a spline in ln z): it cannot see sky structure of
    ell > L, which aliases into the fit. Here every supernova gets its own exact ray
    (:func:`cosmology.raytrace.plan_rays`: one ray per distinct direction, read at each of its
    redshifts; rays sorted by their farthest source and traced in vmapped batches of
    ``batch_size``, so memory stays bounded), and

        chi^2_exact = |W (mu(d_L^exact) - mu_obs)|^2   (offset marginalised),

    the same whitening as training. An isotropic metric (``metric="flrw"``) needs one ray:
    the problem's own plan already is exact, so the grid and the exact values coincide.

Sky-grid check
    delta mu_i = mu_grid,i - mu_exact,i = 5 log10(d_L,i^grid / d_L,i^exact). The grid is
    accepted (``ok``) when

        max_i |delta mu_i| <= sky_grid_tol   and   |chi^2_grid - chi^2_exact| <= CHI2_TOL = 1.

    Why these bounds: Pantheon+ distance moduli carry 0.1-0.2 mag of error each; a grid error
    of 0.01 mag is a tenth of the best of them, and for N = 1580 such errors spread over the
    sample the chi^2 moves by O(1). Delta chi^2 = 1 is the change that moves one fitted
    parameter by one standard deviation: a grid worse than that changes the answer. Otherwise
    :class:`SkyGridWarning` names ``n_directions``, ``sky_degree`` and ``sky_grid_tol``.

Rays inside the domain
    Collocation points fill t in [t_start, 0] x {|x| <= R} (``problem.windows``: ``start``,
    ``radius``; :func:`cosmology.collocation.domain`). Along each exact ray, up to its farthest
    supernova, t_min is the earliest coordinate time and r_max the largest coordinate radius
    |x| (over the solver's accepted steps and the end point at the farthest redshift). The
    certificate ``rays_inside_domain`` has

        violation = max over rays of max(0, t_start - t_min, r_max - R)   (code units), tol 0,

    and fails (NaN violation) when a ray does not reach its redshift within ``max_ray_steps``.
    Outside the domain nothing imposes the field equations: a distance computed there is not a
    distance of a solution.
"""
from __future__ import annotations

import hashlib
import math
import warnings
import weakref
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from cosmology import raytrace, supernovae
from cosmology.conventions import OBSERVER
from cosmology.ray_geodesic import RayOptions, area_distance, redshift
from cosmology.ray_integration import _integrate, _resolved, _start, _state_at_redshift

CHI2_TOL = 1.0  # |chi^2_grid - chi^2_exact| above this fails the sky-grid check (module docstring)
CERTIFICATE = "rays_inside_domain"


class SkyGridWarning(UserWarning):
    """The sky grid's distances disagree with exact tracing by more than ``sky_grid_tol``."""


# ----------------------------------------------------------------------------- one exact ray


def ray_with_extent(metric_fn: Callable, observer, direction, redshifts, options: RayOptions,
                    observer_velocity=None):
    """One ray towards ``direction`` (3,), read at ``redshifts`` (M,), seen by the observer with
    4-velocity ``observer_velocity`` (None: the comoving one; as in :mod:`cosmology.raytrace`).

    Returns (d_A (M,), NaN where not reached; t_min; r_max; reached), with t_min and r_max the
    earliest time and largest |x| along the ray up to its largest redshift (accepted solver
    steps before it, and the state at it).
    """
    options = _resolved(options, jnp.asarray(observer).dtype)
    y0 = _start(metric_fn, observer, direction, observer_velocity)
    z_far = jnp.max(redshifts)
    sol = _integrate(metric_fn, y0, options, z_stop=z_far)
    z0 = redshift(metric_fn(y0.x), y0.k)
    nan = jnp.full((), jnp.nan, y0.x.dtype)

    def at(z_target):
        state, _, found = _state_at_redshift(metric_fn, sol, z0, z_target, options.newton_iterations)
        d_a = area_distance(metric_fn(state.x), state.k, state.xi)
        return jnp.where(found, d_a, nan), state.x, found

    d_a, ends, found = jax.vmap(at)(redshifts)
    end = ends[jnp.argmax(redshifts)]
    # The accepted steps before the farthest source (the last step overshoots it: its end is
    # replaced by the state at z_far; unused steps are padded with inf).
    steps = jnp.isfinite(sol.ts) & (sol.ys <= z_far)
    xs = jax.vmap(sol.evaluate)(jnp.where(steps, sol.ts, 0.0)).x
    t_min = jnp.minimum(jnp.min(jnp.where(steps, xs[:, 0], jnp.inf)), end[0])
    radius = jnp.linalg.norm(xs[:, 1:], axis=1)
    r_max = jnp.maximum(jnp.max(jnp.where(steps, radius, 0.0)), jnp.linalg.norm(end[1:]))
    return d_a, t_min, r_max, jnp.all(found)


def trace_plan(metric_fn: Callable, observer, directions, redshifts, options: RayOptions, batch_size: int,
               observer_velocity=None):
    """:func:`ray_with_extent` for every ray of a plan ((R, 3) directions, (R, M) redshifts),
    in ``lax.map`` batches of ``batch_size`` (jittable; memory bounded by the batch)."""
    return jax.lax.map(lambda ray: ray_with_extent(metric_fn, observer, ray[0], ray[1], options, observer_velocity),
                       (directions, redshifts), batch_size=batch_size)


# ----------------------------------------------------------------------------- the problem's rays


def exact_plan(problem, max_supernovae: Optional[int] = None, batch_size: int = 64):
    """(plan, rows): the rays of the exact check and which supernovae (indices) they serve.

    All supernovae by default; ``max_supernovae`` keeps that many, evenly spaced in redshift
    order with the nearest and the farthest included (a test of the machinery: the chi^2 of
    a subsample is not the run's). An isotropic problem uses its own one-ray plan.
    """
    n = int(problem.data.z.shape[0])
    if max_supernovae is not None and (isinstance(max_supernovae, bool) or int(max_supernovae) != max_supernovae
                                       or max_supernovae < 2):
        raise ValueError(f"max_supernovae must be an integer >= 2 or None, got {max_supernovae!r}")
    z = np.asarray(problem.data.z, np.float64)
    rows = np.arange(n)
    if max_supernovae is not None and max_supernovae < n:
        order = np.argsort(z, kind="stable")
        rows = np.sort(order[np.unique(np.round(np.linspace(0, n - 1, int(max_supernovae))).astype(int))])
    if problem.isotropic:
        return supernovae.isotropic_plan(z[rows]), rows
    directions = np.asarray(problem.data.directions, np.float64)[rows]
    return raytrace.plan_rays(directions, z[rows], batch_size=min(batch_size, len(rows))), rows


class ExactRays(NamedTuple):
    """What :func:`exact_rays` measured (numpy)."""

    rows: np.ndarray  # (n,) indices of the supernovae checked
    d_l_exact: np.ndarray  # (n,) exact d_L, code units
    d_l_grid: np.ndarray  # (N,) the sky grid's d_L of every supernova (what training sees)
    ray_directions: np.ndarray  # (R,) of the exact rays
    ray_redshift: np.ndarray  # (R,) the farthest redshift of each
    t_min: np.ndarray  # (R,) earliest time along each ray
    r_max: np.ndarray  # (R,) largest |x| along each ray
    reached: np.ndarray  # (R,) every redshift of the ray reached
    seconds: float  # wall time, compilation included


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _digest(params, *extra) -> str:
    h = hashlib.sha1(repr(extra).encode())
    for leaf in jax.tree_util.tree_leaves(jax.device_get(params)):
        a = np.asarray(leaf)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def exact_rays(problem, params, *, max_supernovae: Optional[int] = None, metric_fn: Optional[Callable] = None,
               batch_size: int = 64) -> ExactRays:
    """Exact rays for the supernovae of :func:`exact_plan` and the grid's distances, one jitted
    call. The result for given ``params`` is remembered (the run's certificate and its summary
    both need it); a ``metric_fn`` replaces the problem's network (then ``params`` only feed
    the grid's helpers and nothing is remembered)."""
    import time

    key = None if metric_fn is not None else _digest(params, max_supernovae, batch_size)
    cached = _CACHE.get(problem, {}).get(key) if key is not None else None
    if cached is not None:
        return cached
    plan, rows = exact_plan(problem, max_supernovae, batch_size)
    options = raytrace.RayOptions(max_steps=problem.cfg.max_ray_steps)

    def run(params, directions, redshifts):
        fn = problem.metric_fn(params) if metric_fn is None else metric_fn
        observer = jnp.asarray(OBSERVER)
        d_grid = problem.distances(params, fn)
        velocity = problem.observer_velocity(params, fn) if hasattr(problem, "observer_velocity") else None
        d_a, t_min, r_max, reached = trace_plan(fn, observer, directions.astype(observer.dtype),
                                                redshifts.astype(observer.dtype), options, plan.batch_size,
                                                velocity)
        return d_grid, d_a, t_min, r_max, reached

    start = time.perf_counter()
    out = jax.device_get(jax.jit(run)(params, plan.directions, plan.redshifts))
    d_grid, d_a, t_min, r_max, reached = (np.asarray(x) for x in out)
    z_rows = np.asarray(plan.row_redshift, np.float64)
    d_exact = (1.0 + z_rows) ** 2 * np.asarray(d_a, np.float64)[plan.row_ray, plan.row_slot]
    n_rays = len(np.unique(plan.row_ray))  # the plan pads with copies of its last ray
    result = ExactRays(rows, d_exact, np.asarray(d_grid, np.float64), plan.directions[:n_rays],
                       plan.redshifts[:n_rays].max(axis=1), t_min[:n_rays].astype(np.float64),
                       r_max[:n_rays].astype(np.float64), reached[:n_rays], time.perf_counter() - start)
    if key is not None:
        _CACHE[problem] = {key: result}  # only the latest parameters
    return result


# ----------------------------------------------------------------------------- the checks


def chi2(problem, d_l: np.ndarray) -> float:
    """chi^2 (offset marginalised) of every supernova's d_L (N,): the training's moduli
    mu = 5 log10(d_L (1 + z_hel) / (1 + z)) + 25, whitened in float64 on the host when the
    problem has its ``host_whitening``, else as in training."""
    host = getattr(problem, "host_whitening", None)
    if host is None:
        d_l = jnp.asarray(d_l, problem.data.z.dtype)
        return float(jnp.sum(supernovae.whitened_residuals(d_l, problem.data) ** 2))
    helio = np.asarray(problem.data.helio, np.float64)
    return float(host.chi2(5.0 * np.log10(np.asarray(d_l, np.float64) * helio) + 25.0))


def sky_grid_check(problem, rays: ExactRays, chi2_grid: Optional[float], chi2_exact: Optional[float],
                   warn: bool = True) -> dict:
    """The sky grid against exact tracing (module docstring); warns :class:`SkyGridWarning`
    when it fails. Without chi^2 values (a subsample) only the moduli are compared."""
    cfg = problem.cfg
    delta = 5.0 * np.log10(rays.d_l_grid[rays.rows] / rays.d_l_exact)
    finite = np.isfinite(delta)
    max_dmu = float(np.max(np.abs(delta))) if finite.all() else math.nan
    rms_dmu = float(np.sqrt(np.mean(delta**2))) if finite.all() else math.nan
    dchi2 = None if chi2_grid is None or chi2_exact is None else chi2_grid - chi2_exact
    ok = bool(max_dmu <= cfg.sky_grid_tol and (dchi2 is None or abs(dchi2) <= CHI2_TOL))
    out = {
        "ok": ok, "max_abs_delta_mu_mag": max_dmu, "rms_delta_mu_mag": rms_dmu,
        "mean_delta_mu_mag": float(np.mean(delta)) if finite.all() else math.nan,
        "chi2_difference": dchi2, "tol_mag": cfg.sky_grid_tol, "chi2_tol": CHI2_TOL,
        "n_directions": cfg.n_directions, "sky_degree": cfg.sky_degree,
        "n_redshift_nodes": cfg.n_redshift_nodes, "isotropic_one_ray": bool(problem.isotropic),
        "n_supernovae_checked": int(len(rays.rows)), "n_exact_rays": int(len(rays.t_min)),
        "worst_supernova": int(rays.rows[np.argmax(np.where(finite, np.abs(delta), np.inf))]),
        "seconds": rays.seconds,
    }
    if warn and not ok:
        what = (f"max |delta mu| = {max_dmu:.3g} mag (rms {rms_dmu:.3g})"
                + (f", chi^2 grid - exact = {dchi2:.3g}" if dchi2 is not None else ""))
        warnings.warn(f"the sky grid (n_directions={cfg.n_directions}, sky_degree={cfg.sky_degree}, "
                      f"n_redshift_nodes={cfg.n_redshift_nodes}) disagrees with exact per-supernova tracing: "
                      f"{what}; accepted are sky_grid_tol = {cfg.sky_grid_tol} mag and |delta chi^2| <= "
                      f"{CHI2_TOL}. Raise n_directions (and sky_degree), or set sky_grid_tol to accept it; "
                      f"the summary's chi2 is the exact one", SkyGridWarning, stacklevel=3)
    return out


def domain_certificate(problem, rays: ExactRays) -> dict:
    """The certificate ``rays_inside_domain`` (module docstring), with where the rays go."""
    w = problem.windows
    start, radius = float(w["start"]), float(w["radius"])
    margin = np.maximum(start - rays.t_min, rays.r_max - radius)  # > 0 outside, < 0 inside by that much
    outside = np.where(rays.reached, np.maximum(margin, 0.0), np.nan)
    worst = int(np.argmax(np.where(rays.reached, margin, np.inf)))  # the ray that comes closest to leaving
    violation = float(np.max(outside)) if np.all(rays.reached) else math.nan
    return {
        "aggregate": "over rays", "tol": 0.0, "max_violation": violation,
        "certified": bool(violation <= 0.0), "points_checked": int(len(outside)),
        "earliest_time_code": float(np.min(rays.t_min)), "domain_start_code": start,
        "sn_era_start_code": float(w["sn_start"]),
        "max_radius_code": float(np.max(rays.r_max)), "domain_radius_code": radius,
        "rays_outside": int(np.sum(outside > 0)), "rays_unreached": int(np.sum(~rays.reached)),
        "rays_before_sn_era": int(np.sum(rays.t_min < float(w["sn_start"]))),
        "worst_ray_margin_code": float(margin[worst]),
        "worst_ray_direction": rays.ray_directions[worst].tolist(),
        "worst_ray_redshift": float(rays.ray_redshift[worst]),
    }


def certificates(problem, params, **kwargs) -> dict:
    """``{"rays_inside_domain": certificate}`` for ``problem.extra_certificates``."""
    return {CERTIFICATE: domain_certificate(problem, exact_rays(problem, params, **kwargs))}


def summary_sections(problem, params, *, max_supernovae: Optional[int] = None,
                     metric_fn: Optional[Callable] = None) -> dict:
    """The summary's chi^2 keys and sections: ``chi2`` (exact), ``chi2_sky_grid`` (what training
    sees), ``chi2_grid_error`` (grid - exact), ``chi2_per_dof``, ``chi2_source``,
    ``sky_grid_check`` and ``rays_domain`` (the certificate), both chi^2 from :func:`chi2`. On a
    subsample (``max_supernovae``) ``chi2`` stays the grid's."""
    rays = exact_rays(problem, params, max_supernovae=max_supernovae, metric_fn=metric_fn)
    full = len(rays.rows) == int(problem.data.z.shape[0])
    chi2_grid = chi2(problem, rays.d_l_grid)
    chi2_exact = chi2(problem, rays.d_l_exact) if full else None
    if not full:
        source = f"sky grid (exact tracing on {len(rays.rows)} supernovae only)"
    else:
        source = "one exact ray (isotropic)" if problem.isotropic else "exact rays, one per direction"
    out = {"chi2": chi2_exact if full else chi2_grid, "chi2_sky_grid": chi2_grid,
           "chi2_grid_error": chi2_grid - chi2_exact if full else None, "chi2_source": source}
    out["chi2_per_dof"] = out["chi2"] / problem.dof
    out["sky_grid_check"] = sky_grid_check(problem, rays, chi2_grid if full else None, chi2_exact)
    out["rays_domain"] = domain_certificate(problem, rays)
    return out


__all__ = ["CERTIFICATE", "CHI2_TOL", "ExactRays", "SkyGridWarning", "certificates", "chi2", "domain_certificate",
           "exact_plan", "exact_rays", "ray_with_extent", "sky_grid_check", "summary_sections", "trace_plan"]
