"""The audit and the chart-free observables of a trained ``lumpy`` or ``flrw-control`` run, for
its summary (``CosmologyProblem.summary``) and figures (:mod:`cosmology.audit_plots`).

:func:`audit_data` is one compiled evaluation (cached per problem, so the summary and the
figures compile it once): rays along the problem's sky grid (``data.ray_directions`` at the
redshift nodes ``data.z_nodes``) give the light-cone points and the distances; the source audit
(:mod:`cosmology.audit`) runs at the observer, on the light cone and at up to ``max_points``
freshly sampled collocation points (supernova era, deep past and CMB window). The dust density
comes from the problem's own ``fields`` (whatever its dust model is). Everything after that is
numpy on the host (:mod:`cosmology.observables`).

Measures reported (all in :func:`summary_sections`):

- ``dark_energy_like_residual`` (Lambda off only): Omega_X > ``threshold`` with w_X < -1/3, or X's
  share of the local deceleration q_X = (Omega_X + 3 P_X) / 2 < -``threshold``, at the observer or
  on average over the light cone at z <= 1 (sky means of Omega_X and P_X). The second form catches
  a dust fixed by the field equations on the observer's slice (``density="constraint"``), where
  X(u, u) = 0 there by construction and a leaked Lambda shows as pressure, P_X ~ -Omega_Lambda.
  A residual certified at 1e-3 of 3 H^2 + kappa rho allows |Omega_X|, |P_X| of a few 1e-3, so
  0.05 (7% of the measured Omega_Lambda ~ 0.7) is far outside it.
- ``fit_fraction_beyond_dust``: (chi2_dust - chi2_model) / (chi2_dust - chi2_LCDM), with chi2_dust
  the homogeneous dust universe with the model's Omega_m and no Lambda (open, Omega_k = 1 - Omega_m:
  what the model's own dust would give without inhomogeneity or X) and chi2_LCDM the best flat
  LCDM: the share of Lambda's improvement of the fit the model achieves. It counts what
  inhomogeneity achieves as well as what X achieves, so it bounds X's share from above; the
  Raychaudhuri split of q0 at the observer (``audit.observer.q_parts``) separates the two locally.
- ``raychaudhuri``: whether q0 >= Omega_m / 2 - 0.01 at the observer (both local: the comoving
  dust's deceleration and density parameter), the bound every Lambda-free geodesic, irrotational
  dust obeys (q = Omega_m / 2 + 2 sigma^2 / 3 H^2); ``applies`` is False with Lambda on.
"""
from __future__ import annotations

import math
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from cosmology import audit, observables, raytrace, supernovae
from cosmology.conventions import OBSERVER

DARK_ENERGY_THRESHOLD = 0.05  # Omega_X above this, with w_X < -1/3 and Lambda off: flagged
RAYCHAUDHURI_TOL = 0.01  # q0 >= Omega_m / 2 - this (Lambda off): the bound dust obeys
W_FLOOR = 1e-4  # w_X = P_X / Omega_X is reported only where |Omega_X| exceeds this (float32 noise ~1e-6)
MAX_POINTS = 512  # collocation points audited (plus at most 64 of the CMB window)
Z_RHO_EDGES = (-math.inf, 0.1, 0.5, 1.0, 2.5, 10.0, math.inf)  # bins of the dust redshift z_rho
Q_PARTS = ("dust", "x", "lambda", "shear", "vorticity")
_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _compute(problem):
    """The jitted evaluation of :func:`audit_data` for ``problem`` (params, points) -> arrays,
    compiled once per problem (the cache holds the problem weakly: the function only a weak reference)."""
    ref = weakref.ref(problem)

    def compute(params, points):
        problem = ref()  # traced only while the caller holds the problem
        metric_fn = problem.metric_fn(params)
        src = problem.source(params, metric_fn)
        data, observer = problem.data, jnp.asarray(OBSERVER)
        options = raytrace.RayOptions(max_steps=problem.cfg.max_ray_steps)
        velocity = problem.observer_velocity(params, metric_fn) if hasattr(problem, "observer_velocity") else None
        cone, d_nodes = audit.light_cone(metric_fn, observer, data.ray_directions, data.z_nodes, options=options,
                                         observer_velocity=velocity)
        flat = cone.reshape(-1, 4)
        reached = jnp.all(jnp.isfinite(flat), axis=1)
        pts = jnp.concatenate([observer[None], jnp.where(reached[:, None], flat, observer), points])
        kappa_rho = problem.fields(params, pts, metric_fn, src)["kappa_rho"]
        values = audit.audit_points(metric_fn, pts, kappa_rho, src.cosmological_constant)
        mask = jnp.concatenate([jnp.ones(1, bool), reached, jnp.ones(points.shape[0], bool)])
        values = jax.tree_util.tree_map(
            lambda v: jnp.where(mask.reshape((-1,) + (1,) * (v.ndim - 1)), v, jnp.nan), values)
        d_sn = supernovae.supernova_distances(d_nodes, data)
        return {"values": values, "kappa_rho": kappa_rho, "cone": cone, "d_nodes": d_nodes, "d_sn": d_sn,
                "q_local": audit.comoving_deceleration(metric_fn, observer), "omega_m": src.omega_m,
                "hubble": src.hubble, "lambda": src.cosmological_constant,
                "h0": supernovae.hubble_constant(d_sn, data, src.hubble)}

    if problem not in _COMPILED:
        _COMPILED[problem] = jax.jit(compute)
    return _COMPILED[problem]


def audit_data(problem, params, key=None, max_points: int = MAX_POINTS) -> dict:
    """Numpy arrays of the audit: ``values`` (per point, :func:`audit.point_audit`; rows: the
    observer, the K x M light-cone points, the collocation points), ``z_rho``, ``d_nodes`` (K, M),
    ``d_sn`` (N,), ``cone`` (K, M, 4), the scalars, and the sky nodes and redshifts."""
    key = jax.random.PRNGKey(15) if key is None else key
    batch = problem.sample(key, jnp.int32(0))
    points = batch["points"][:max_points]
    if "cmb" in batch:
        points = jnp.concatenate([points, batch["cmb"][:64]])
    out = jax.tree_util.tree_map(np.asarray, _compute(problem)(params, points))
    k, m = out["d_nodes"].shape
    out.update(n_cone=k * m, nodes=np.asarray(problem.data.ray_directions, np.float64),
               z_nodes=np.asarray(problem.data.z_nodes, np.float64),
               z_rho=np.cbrt(out["kappa_rho"] / out["kappa_rho"][0]) - 1.0)
    return out


# ----------------------------------------------------------------------------- sections


def _clean(x):
    """JSON-ready: numpy to lists and floats, NaN and inf to None."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.ndarray, np.generic)) and np.ndim(x):
        return _clean(np.asarray(x).tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def _ratio(p, rho):
    """w = p / rho, undefined (NaN) where |Omega_X| < W_FLOOR: there it is rounding over rounding."""
    return float(p / rho) if abs(rho) > W_FLOOR else math.nan


def _fraction_positive(values) -> float:
    """The share of the finite values that are > 0 (NaN: a light-cone point not reached)."""
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    return float(np.mean(values > 0)) if values.size else math.nan


def _parts(v: dict, rows) -> dict:
    return {k: (np.asarray(v[k])[rows]) for k in v}


def light_cone_section(d: dict) -> dict:
    """Sky means (over the K rays) of Omega_X, P_X, w_X, Omega_dust and the SEC of T_eff at each node."""
    k, m = d["d_nodes"].shape
    cone = {name: np.asarray(val[1:1 + k * m]).reshape((k, m) + np.shape(val)[1:]) for name, val in d["values"].items()}
    mean = lambda name: np.nanmean(cone[name], axis=0)
    rho, p = mean("omega_x"), mean("pressure_x")
    return {"z": d["z_nodes"], "omega_x_sky_mean": rho, "pressure_x_sky_mean": p,
            "w_x": np.where(np.abs(rho) > W_FLOOR, p / np.where(rho == 0, 1.0, rho), np.nan),
            "omega_x_min": np.nanmin(cone["omega_x"], axis=0), "omega_x_max": np.nanmax(cone["omega_x"], axis=0),
            "omega_dust_sky_mean": mean("omega_dust"), "sec_total_sky_mean": mean("sec_total"),
            "fraction_sec_total_violated": _fraction_positive(cone["strong_violation_total"]),
            "fraction_reached": float(np.mean(np.isfinite(cone["omega_x"])))}


def collocation_section(d: dict) -> dict:
    """Omega_X, w_X and the SEC at the collocation points, overall and in bins of z_rho."""
    rows = slice(1 + d["n_cone"], None)
    v, z = _parts(d["values"], rows), d["z_rho"][rows]
    bins = []
    for lo, hi in zip(Z_RHO_EDGES[:-1], Z_RHO_EDGES[1:]):
        sel = (z >= lo) & (z < hi)
        if sel.sum():
            bins.append({"z_rho_low": lo, "z_rho_high": hi, "n": int(sel.sum()),
                         "omega_x_mean": float(np.mean(v["omega_x"][sel])),
                         "omega_x_rms": float(np.sqrt(np.mean(v["omega_x"][sel] ** 2))),
                         "w_x": _ratio(np.mean(v["pressure_x"][sel]), np.mean(v["omega_x"][sel])),
                         "flux_x_rms": float(np.sqrt(np.mean(v["flux_x"][sel] ** 2))),
                         "anisotropic_x_rms": float(np.sqrt(np.mean(v["anisotropic_x"][sel] ** 2))),
                         "fraction_sec_total_violated": float(np.mean(v["strong_violation_total"][sel] > 0))})
    return {"n_points": int(len(z)), "omega_x_rms": float(np.sqrt(np.mean(v["omega_x"] ** 2))),
            "omega_x_max_abs": float(np.max(np.abs(v["omega_x"]))),
            "fraction_sec_x_violated": float(np.mean(v["strong_violation_x"] > 0)),
            "fraction_sec_total_violated": float(np.mean(v["strong_violation_total"] > 0)), "bins": bins}


def _whitening64(problem) -> tuple:
    """(mu_obs, W) in float64 as factored on the host (``problem.host_whitening``: the full
    covariance's W = L^-1, or 1/sigma), not the training copy cast to float32."""
    host = getattr(problem, "host_whitening", None)
    if host is not None:
        return host.mu_obs, host.factor
    wh = problem.data.whitening
    return np.asarray(wh.mu_obs, np.float64), np.asarray(wh.factor, np.float64)


def fit_section(problem, d: dict) -> dict:
    """chi^2 of the model beside the dust-only universe with its Omega_m and the best flat LCDM
    and open CDM (module docstring), from the same rays and the problem's data."""
    data = problem.data
    mu_obs, factor = _whitening64(problem)
    z, helio = np.asarray(data.z, np.float64), np.asarray(data.helio, np.float64)
    chi2_model = observables.chi2_offset_marginalised(mu_obs, factor, 5 * np.log10(d["d_sn"] * helio))
    om = float(d["omega_m"])
    chi2_dust = observables.reference_chi2(mu_obs, factor, z, helio, om, 0.0)
    om_lcdm, chi2_lcdm = observables.best_reference(mu_obs, factor, z, helio, "flat_lcdm")
    om_open, chi2_open = observables.best_reference(mu_obs, factor, z, helio, "open_cdm")
    gain = chi2_dust - chi2_lcdm
    return {"chi2_model": chi2_model, "chi2_dust_same_omega_m": chi2_dust, "chi2_flat_lcdm_best": chi2_lcdm,
            "omega_m_flat_lcdm_best": om_lcdm, "chi2_open_cdm_best": chi2_open, "omega_m_open_cdm_best": om_open,
            "fit_fraction_beyond_dust": (chi2_dust - chi2_model) / gain if gain > 0 else math.nan,
            "measure": "(chi2_dust_same_omega_m - chi2_model) / (chi2_dust_same_omega_m - chi2_flat_lcdm_best): "
                       "the share of Lambda's improvement over homogeneous dust with the model's Omega_m; an upper "
                       "bound on X's share (inhomogeneity counts too)"}


def observables_section(problem, d: dict) -> dict:
    """Local (at the observer) and apparent (fitted to the sky-averaged Hubble diagram) parameters,
    local and global H0, multipoles of the model's d_L(z, n) and of the data residuals."""
    data = problem.data
    coef = observables.sky_coefficients(d["d_nodes"], d["nodes"])  # (n_lm, M)
    parts = observables.multipole_parts(coef)
    mono = parts["monopole"]
    z_sn = np.asarray(data.z, np.float64)
    weights = np.asarray(data.redshift_weights, np.float64)
    d_mono_sn = z_sn * np.exp(weights @ (np.log(mono) - np.log(d["z_nodes"])))  # the spline of supernovae.py
    fit = observables.fit_flrw(z_sn, d_mono_sn)
    h_o, h0_obs = float(d["hubble"]), float(d["h0"])
    h_local, q_cosmo = observables.local_hubble_rate(z_sn, d_mono_sn)
    mu_model = 5 * np.log10(d["d_sn"] * np.asarray(data.helio, np.float64))
    mu_obs, factor = _whitening64(problem)
    ones = observables.whiten(factor, np.ones_like(mu_obs))
    offset = ones @ observables.whiten(factor, mu_obs - mu_model) / (ones @ ones)
    multipoles = {"z": d["z_nodes"], "monopole": mono,
                  "rms_relative": [np.asarray(r) / mono for r in parts["rms"][1:]]}
    if "dipole" in parts:
        multipoles["dipole_relative"] = np.linalg.norm(parts["dipole"], axis=0) / mono
    return {
        "q0_local": float(d["q_local"]), "omega_m_local": float(d["omega_m"]),
        "q0_apparent": fit.q0, "omega_m_apparent": fit.omega_m, "omega_lambda_apparent": fit.omega_lambda,
        "omega_k_apparent": 1.0 - fit.omega_m - fit.omega_lambda, "apparent_fit_rms_mag": fit.rms_mag,
        "h0_observer_km_s_mpc": h0_obs, "h0_local_km_s_mpc": h0_obs * h_local / h_o,
        "h0_global_km_s_mpc": h0_obs * fit.hubble / h_o, "q0_cosmographic_low_z": q_cosmo,
        "distance_multipoles": multipoles,
        "residual_multipoles": observables.residual_multipoles(z_sn, np.asarray(data.directions, np.float64),
                                                               mu_obs - mu_model - offset, factor),
        "definitions": "local: at the observer (its comoving dust); apparent: FLRW fit (H, Omega_m, Omega_Lambda) "
                       "to the sky-averaged d_L at the supernova redshifts; H0 local: d_L/z quadratic fit at z <= 0.1 "
                       "of the sky mean; H0 global: the apparent fit's H; H0 observer: the observer's expansion rate",
    }


def _dark(omega_x: float, pressure_x: float, threshold: float) -> bool:
    """Dark-energy-like: Omega_X > threshold with w_X < -1/3, or X's share of the deceleration
    (Omega_X + 3 P_X) / 2 below -threshold (the only sign left when the dust is fixed by the field
    equations on the observer's slice: there X(u, u) = 0 by construction and X shows as pressure)."""
    w = _ratio(pressure_x, omega_x)
    return bool((omega_x > threshold and w < -1.0 / 3.0) or 0.5 * (omega_x + 3.0 * pressure_x) < -threshold)


def flag(problem, d: dict, light: dict, threshold: float = DARK_ENERGY_THRESHOLD) -> tuple[bool, str]:
    """Whether a Lambda-off run needs a dark-energy-like source (:func:`_dark`) at the observer or
    on average over the light cone at z <= 1, and why."""
    v = d["values"]
    om0, p0 = float(v["omega_x"][0]), float(v["pressure_x"][0])
    near = np.asarray(light["z"]) <= 1.0
    om_c = float(np.nanmean(light["omega_x_sky_mean"][near])) if near.any() else math.nan
    p_c = float(np.nanmean(light["pressure_x_sky_mean"][near])) if near.any() else math.nan
    where = (f"Omega_X = {om0:.3g}, P_X = {p0:.3g}, q_X = {0.5 * (om0 + 3 * p0):.3g} at the observer; "
             f"{om_c:.3g}, {p_c:.3g}, {0.5 * (om_c + 3 * p_c):.3g} on the light cone (z <= 1)")
    if problem.cfg.cosmological_constant:
        return False, f"Lambda is on (not checked); {where}"
    if _dark(om0, p0, threshold) or _dark(om_c, p_c, threshold):
        return True, (f"NOT a solution of the field equations with dust alone: {where}. The metric needs a "
                      f"dark-energy-like source beyond the dust (Omega_X > {threshold} with w_X < -1/3, or "
                      f"q_X = (Omega_X + 3 P_X) / 2 < -{threshold}): dark energy through the residual")
    return False, (f"no dark-energy-like source beyond dust (Omega_X > {threshold} with w_X < -1/3, or "
                   f"q_X < -{threshold}): {where}")


def summary_sections(problem, params, key=None, threshold: float = DARK_ENERGY_THRESHOLD, data=None) -> dict:
    """{"audit": ..., "observables": ..., plus headline scalars} for ``problem.summary``
    (``data``: the output of :func:`audit_data`, when already computed)."""
    d = audit_data(problem, params, key) if data is None else data
    v = d["values"]
    observer = {k: np.asarray(val)[0] for k, val in v.items()}
    q_parts = dict(zip(Q_PARTS, observer.pop("q_parts")))
    q_parts["rest"] = float(d["q_local"]) - sum(q_parts.values())
    observer.update(w_x=_ratio(observer["pressure_x"], observer["omega_x"]), q_local=float(d["q_local"]),
                    q_parts=q_parts)
    light = light_cone_section(d)
    flagged, message = flag(problem, d, light, threshold)
    obs = observables_section(problem, d)
    # Raychaudhuri: Lambda-free geodesic dust without vorticity has q0 >= Omega_m / 2 at every point.
    bound = 0.5 * float(observer["omega_dust"])
    raychaudhuri = {"q0_local": float(d["q_local"]), "omega_m_over_2": bound, "tolerance": RAYCHAUDHURI_TOL,
                    "applies": not problem.cfg.cosmological_constant,
                    "holds": bool(float(d["q_local"]) >= bound - RAYCHAUDHURI_TOL)}
    section = {"observer": observer, "light_cone": light, "collocation": collocation_section(d),
               "supernova_fit": fit_section(problem, d), "raychaudhuri": raychaudhuri,
               "dark_energy_like_residual": flagged, "message": message, "threshold": threshold}
    return _clean({"audit": section, "observables": obs, "dark_energy_like_residual": flagged,
                   "omega_x_observer": observer["omega_x"], "w_x_observer": observer["w_x"],
                   "q0_local_comoving": obs["q0_local"], "q0_apparent": obs["q0_apparent"],
                   "h0_local_km_s_mpc": obs["h0_local_km_s_mpc"], "h0_global_km_s_mpc": obs["h0_global_km_s_mpc"],
                   "raychaudhuri_bound_holds": raychaudhuri["holds"] if raychaudhuri["applies"] else None})


__all__ = ["DARK_ENERGY_THRESHOLD", "MAX_POINTS", "RAYCHAUDHURI_TOL", "audit_data", "collocation_section",
           "fit_section", "flag", "light_cone_section", "observables_section", "summary_sections"]
