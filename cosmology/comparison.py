"""Model comparison on the supernovae: classical fits and trained runs in one table.

Every row is a fit to the same N rows (light curves) with the same errors, the magnitude offset o
(absolute magnitude + 5 log10(c/H0 / 10 pc)) fitted in every model (marginalised analytically: for
a Gaussian likelihood that is its best value, :mod:`cosmology.likelihood`), so -2 ln L_max = chi^2
+ a constant shared by all rows and

    Delta chi^2 = chi^2 - chi^2(flat LCDM),   AIC = chi^2 + 2 k,   BIC = chi^2 + k ln N

(Akaike 1974; Schwarz 1978), k the fitted constants, **the offset included**. Rows:

- flat LCDM: mu = 5 log10((1 + z_hel) D_C(z)) + o, D_C = int_0^z dz'/E, E^2 = Om (1+z)^3 + 1 - Om;
  k = 2 (Om, o) (:func:`cosmology.likelihood.fit_flat_lcdm`);
- open CDM: Lambda = 0, Omega_k = 1 - Om, Om in [0.01, 1]; k = 2 (:func:`cosmology.observables.best_reference`);
- GBH void (exact LTB, central observer, :func:`cosmology.ltb_distances.fit_gbh_void_sample`):
  (Omega_in, r0, dr) with Omega_out = 1, k = 4; Omega_out free, k = 5. A local fit from the default
  start (five starts spread over r0 in [0.3, 2], dr in [0.1, 0.6] reached the same minimum on Pantheon+);
- each run directory: its exact final chi^2 (summary.json ``problem.chi2``, per-supernova rays), with
  Lambda on or off as its config says, and its certification. A run whose certificates do not all
  hold, or that has no certificate of the field equations (``einstein="objective"``), is marked: its
  metric is **not a solution of the field equations**, and its chi^2 says nothing about Einstein's
  theory. Its nominal k = P + 1, P the trainable parameters of the network (all of them, Lambda
  included when on), and k_eff (``effective_params``; :mod:`cosmology.comparison_network`) the
  number of directions the data determine, + 1 for the offset. AIC and BIC use k_eff where it was
  computed, else k (then the network rows carry the full P, which no data set of this size can
  outweigh: read them as bounds).

When the table's covariance (``covariance=PATH``: the full STAT+SYS matrix) is not the one a run
was fitted with, the run's chi^2 is recomputed from its last checkpoint with the table's covariance
(distances through the problem's own ``distances``: the sky grid for an inhomogeneous metric) and
the row says so; if the checkpoint cannot be read, the row is marked not comparable.

Profile likelihood of Omega_m. chi^2_p(Om) = min over the other constants of chi^2 (for flat LCDM only
the offset, so chi^2_p is the function above), and the 1-sigma interval is {Om : chi^2_p(Om) <=
chi^2_min + 1} (Wilks: 2 Delta ln L ~ chi^2_1): its ends are found by Brent's root finder on each side
of the minimum (:func:`profile_interval`). For points (x_i, chi^2_i) on a grid (the retrained
``flrw-control``, :func:`cosmology.comparison_network.retrain_profile`) a parabola a (x - x0)^2 + c
fitted by least squares gives x0 +- 1/sqrt(a) (:func:`interval_from_points`).

Seeds: run directories whose settings differ only in ``seed`` are a group, reported as the median
[min, max] of chi^2.
"""
from __future__ import annotations

import json
import math
import os
from typing import NamedTuple, Optional, Sequence

import numpy as np
import scipy.optimize

from cosmology import likelihood, observables


class Row(NamedTuple):
    """One line of the table; ``k_eff`` None where not computed, ``certified`` None for classical fits."""

    label: str
    chi2: float
    k: Optional[int]
    n: int
    k_eff: Optional[float] = None
    certified: Optional[bool] = None
    notes: tuple = ()
    comparable: bool = True  # same sample and covariance as the table
    run_dir: Optional[str] = None


class Interval(NamedTuple):
    best: float
    low: float
    high: float
    chi2_min: float
    note: str = ""


def aic(chi2: float, k: float) -> float:
    """Akaike's criterion chi^2 + 2 k (-2 ln L_max up to the shared constant)."""
    return chi2 + 2.0 * k


def bic(chi2: float, k: float, n: int) -> float:
    """Schwarz's criterion chi^2 + k ln N."""
    return chi2 + k * math.log(n)


def criteria(row: Row, chi2_reference: float) -> dict:
    """Delta chi^2 against the reference, and AIC, BIC with k_eff where given, else k (None without k)."""
    k = row.k_eff if row.k_eff is not None else row.k
    return {"dchi2": row.chi2 - chi2_reference, "k_used": k,
            "aic": None if k is None else aic(row.chi2, k), "bic": None if k is None else bic(row.chi2, k, row.n)}


# ----------------------------------------------------------------------------- the classical rows


def flat_lcdm_chi2(sample, host, omega_m: float) -> float:
    """chi^2 of flat LCDM at ``omega_m``, offset marginalised (the profile over the offset)."""
    d_l = likelihood.luminosity_distance_flat_lcdm(sample.z, omega_m, sample.z_hel)
    return host.chi2(5.0 * np.log10(d_l))


def profile_interval(chi2_of, best: float, bounds=(0.01, 0.99), level: float = 1.0) -> Interval:
    """{x : chi2_of(x) <= chi2_of(best) + level}: each end by Brent's method, bracketed by steps that
    double away from ``best`` (an end that would leave ``bounds`` is the bound, said in ``note``)."""
    c0 = chi2_of(best)
    ends, note = [], ""
    for sign, limit in ((-1.0, bounds[0]), (1.0, bounds[1])):
        step, inner, end = 1e-3, best, None
        while end is None:
            outer = best + sign * step
            if (outer - limit) * sign >= 0:
                if chi2_of(limit) - c0 - level < 0:
                    end, note = limit, f"{note} the interval reaches the bound {limit}".strip()
                    break
                outer = limit
            if chi2_of(outer) - c0 - level >= 0:
                end = scipy.optimize.brentq(lambda x: chi2_of(x) - c0 - level, min(inner, outer), max(inner, outer),
                                            xtol=1e-8)
            inner, step = outer, 2.0 * step
        ends.append(end)
    return Interval(best, ends[0], ends[1], c0, note)


def interval_from_points(x: Sequence[float], chi2: Sequence[float], level: float = 1.0) -> Interval:
    """x0 +- sqrt(level / a) of the least-squares parabola a (x - x0)^2 + c through >= 3 points."""
    x, y = np.asarray(x, np.float64), np.asarray(chi2, np.float64)
    if x.size < 3:
        i = int(np.argmin(y))
        return Interval(float(x[i]), math.nan, math.nan, float(y[i]), f"{x.size} points: no parabola (needs 3)")
    a2, a1, a0 = np.polyfit(x, y, 2)
    if a2 <= 0:
        i = int(np.argmin(y))
        return Interval(float(x[i]), math.nan, math.nan, float(y[i]), "the points are not convex: no interval")
    x0 = -a1 / (2.0 * a2)
    half = math.sqrt(level / a2)
    note = "" if x.min() <= x0 - half and x0 + half <= x.max() else "extrapolated beyond the grid"
    return Interval(float(x0), x0 - half, x0 + half, float(a0 - a1**2 / (4.0 * a2)), note)


def classical_rows(sample, host, *, gbh: bool = True, gbh_options: Optional[dict] = None) -> tuple[list, Interval]:
    """The classical rows (module docstring) and the flat-LCDM profile interval of Omega_m."""
    fit = likelihood.fit_flat_lcdm(sample)
    prof = profile_interval(lambda om: flat_lcdm_chi2(sample, host, om), fit.omega_m)
    rows = [Row(f"flat LCDM (Om = {fit.omega_m:.3f} +{prof.high - fit.omega_m:.3f}/-{fit.omega_m - prof.low:.3f})",
                fit.chi2, 2, sample.n, k_eff=2.0)]
    helio = (1.0 + sample.z_hel) / (1.0 + sample.z)
    om, chi2 = observables.best_reference(host.mu_obs, host.factor, sample.z, helio, "open_cdm")
    at_floor = ("Om at the floor 0.01 of its range",) if om < 0.0101 else ()
    rows.append(Row(f"open CDM, Lambda = 0 (Om = {om:.3f})", chi2, 2, sample.n, k_eff=2.0, notes=at_floor))
    if gbh:
        from cosmology import ltb_distances

        for free in (False, True):
            g = ltb_distances.fit_gbh_void_sample(sample, free_omega_out=free, **(gbh_options or {}))
            v = g.void
            label = (f"GBH void, Omega_out {'free' if free else '= 1'} (Om_in {v.omega_in:.3f}"
                     + (f", Om_out {v.omega_out:.3f}" if free else "") + f", r0 {v.r0:.3f}, dr {v.dr:.3f} c/H0)")
            notes = tuple(f"{name} at its bound" for name in g.at_bound) + (() if g.success else ("fit not converged",))
            rows.append(Row(label, g.chi2, 5 if free else 4, sample.n, k_eff=5.0 if free else 4.0, notes=notes))
    return rows, prof


# ----------------------------------------------------------------------------- run directories


def read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (a run directory needs config.json and summary.json)")
    with open(path) as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None


def covariance_label(covariance) -> str:
    """"diagonal", or the real path of a covariance file (what a run's config.json records)."""
    if covariance is None or str(covariance).startswith("diagonal"):
        return "diagonal"
    return os.path.realpath(str(covariance))


def certification(summary: dict) -> tuple[bool, str]:
    """(certified, why): certified only when every certificate holds and one of them is the field
    equations' ("einstein"); otherwise the metric is not a solution of the field equations."""
    certs = summary.get("certificates") or {}
    failed = sorted(n for n, c in certs.items() if not c.get("certified"))
    if "einstein" not in certs:
        return False, "NOT CERTIFIED: no certificate of the field equations (einstein as an objective): " \
                      "not a solution of the field equations"
    if failed or summary.get("certified") is not True:
        return False, f"NOT CERTIFIED ({', '.join(failed) or 'summary'}): not a solution of the field equations"
    worst = certs["einstein"].get("max_violation")
    return True, f"certified (max |r| {worst:.2g} <= {certs['einstein'].get('tol')})" if worst is not None else "certified"


def run_row(run_dir: str, n: int, table_covariance: str, *, count_parameters=None, recompute=None) -> Row:
    """The row of one run directory (module docstring). ``count_parameters(run_dir)`` -> P or None and
    ``recompute(run_dir)`` -> chi^2 with the table's covariance (or None) are injected
    (:mod:`cosmology.comparison_network`), so that reading a run needs no JAX."""
    summary = read_json(os.path.join(run_dir, "summary.json"))
    config = read_json(os.path.join(run_dir, "config.json"))
    prob = summary.get("problem") or {}
    if "chi2" not in prob:
        raise ValueError(f"{run_dir}/summary.json has no problem.chi2 (a cosmology run that finished)")
    pconf = config.get("problem") or {}
    name = pconf.get("name") or (config.get("cli") or {}).get("problem", "?")
    lam = "Lambda on" if pconf.get("cosmological_constant") else "Lambda = 0"
    certified, why = certification(summary)
    notes = [why]
    if summary.get("status") not in (None, "finished"):
        notes.append(f"status {summary.get('status')}")
    chi2, comparable = float(prob["chi2"]), True
    n_run = int(prob.get("n_supernovae", n))
    run_cov = covariance_label((pconf.get("data") or {}).get("covariance"))
    if n_run != n:
        comparable = False
        notes.append(f"other sample: N = {n_run}, not {n}: not comparable")
    elif run_cov != table_covariance:
        value = recompute(run_dir) if recompute is not None else None
        if value is None:
            comparable = False
            notes.append(f"fitted with {run_cov}, not {table_covariance}: not comparable")
        else:
            chi2 = value
            notes.append(f"chi2 recomputed from the checkpoint with the table's covariance (run: {run_cov})")
    p = count_parameters(run_dir) if count_parameters is not None else None
    label = f"{os.path.basename(os.path.normpath(run_dir))} ({name}, {lam}, Om {prob.get('omega_m', math.nan):.3f})"
    return Row(label, chi2, None if p is None else p + 1, n, certified=certified, notes=tuple(notes),
               comparable=comparable, run_dir=run_dir)


def seed_groups(run_dirs: Sequence[str]) -> list[list[str]]:
    """Run directories whose config.json differs only in ``seed`` (its own and the CLI's; groups of two or more)."""
    groups: dict = {}
    for run_dir in run_dirs:
        settings = read_json(os.path.join(run_dir, "config.json"))
        settings.pop("seed", None)
        if isinstance(settings.get("cli"), dict):
            settings["cli"] = {k: v for k, v in settings["cli"].items() if k != "seed"}
        groups.setdefault(json.dumps(settings, sort_keys=True, default=str), []).append(run_dir)
    return [g for g in groups.values() if len(g) > 1]


def seed_spread(rows: Sequence[Row], group: Sequence[str]) -> str:
    chi2 = [r.chi2 for r in rows if r.run_dir in group]
    names = ", ".join(os.path.basename(os.path.normpath(d)) for d in group)
    return (f"seeds of one setting ({names}): chi2 median {np.median(chi2):.2f} "
            f"[{min(chi2):.2f}, {max(chi2):.2f}] over {len(chi2)} runs")


# ----------------------------------------------------------------------------- the table


def format_table(rows: Sequence[Row], header: Sequence[str], footer: Sequence[str] = ()) -> str:
    """The table as text: the first row (flat LCDM) is the reference of Delta chi^2."""
    ref = rows[0].chi2
    fmt = lambda v, spec: "-" if v is None else format(v, spec)
    cells = []
    for r in rows:
        c = criteria(r, ref)
        cells.append([r.label, fmt(r.chi2, ".2f"), fmt(c["dchi2"], "+.2f"), fmt(r.k, "d"), fmt(r.k_eff, ".1f"),
                      fmt(c["aic"], ".2f"), fmt(c["bic"], ".2f"), "; ".join(r.notes)])
    titles = ["model", "chi2", "dchi2", "k", "k_eff", "AIC", "BIC", "notes"]
    widths = [max(len(t), *(len(c[i]) for c in cells)) for i, t in enumerate(titles)]
    line = lambda c: "  ".join(v.ljust(w) if i in (0, 7) else v.rjust(w)
                               for i, (v, w) in enumerate(zip(c, widths))).rstrip()
    body = [line(titles), "-" * max(len(line(c)) for c in cells)] + [line(c) for c in cells]
    return "\n".join(list(header) + body + list(footer)).rstrip() + "\n"


def table_header(sample, covariance: str) -> list[str]:
    errors = ("errors: DIAGONAL (MU_SH0ES_ERR_DIAG; the release says plots only: pass --covariance PATH)"
              if covariance == "diagonal" else f"errors: FULL covariance {covariance}")
    return [f"Model comparison on {os.path.basename(str(sample.source))}: {sample.report}; redshift {sample.redshift}",
            errors,
            f"k counts every fitted constant, the magnitude offset included; dchi2 = chi2 - chi2(flat LCDM); "
            f"AIC = chi2 + 2k, BIC = chi2 + k ln N (N = {sample.n}, ln N = {math.log(sample.n):.3f}), "
            "with k_eff where given, else k", ""]


def compare_runs(run_dirs: Sequence[str] = (), *, data_path=None, covariance=None, z_min: float = 0.01,
                 redshift: str = "zHD", effective_params: bool = False, profile_grid: Optional[Sequence[float]] = None,
                 profile_steps: Optional[int] = None, gbh: bool = True, gbh_options: Optional[dict] = None,
                 as_dict: bool = False):
    """The comparison table (text; ``as_dict``: also its rows) of the classical models and ``run_dirs``.

    ``covariance``: the release's STAT+SYS ``.cov`` (None: diagonal errors); ``effective_params``: k_eff
    of every run from its checkpoint (slow: N reverse passes through the distances); ``profile_grid``:
    Omega_m values at which ``flrw-control`` is retrained with Lambda fixed (``profile_steps`` each).
    """
    import warnings

    from cosmology import comparison_network as net
    from cosmology.covariance import DiagonalCovarianceWarning
    from cosmology.data import load_pantheon_plus

    for run_dir in run_dirs:
        if not os.path.isdir(run_dir):
            raise FileNotFoundError(f"{run_dir}: no such run directory")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagonalCovarianceWarning)  # the header says it instead
        sample = load_pantheon_plus(data_path, covariance=covariance, z_min=z_min, redshift=redshift)
    host = likelihood.host_whitening(sample)
    cov = covariance_label(covariance)
    rows, prof = classical_rows(sample, host, gbh=gbh, gbh_options=gbh_options)
    footer = ["", f"flat LCDM profile likelihood (offset marginalised, Delta chi2 = 1): Om = {prof.best:.4f}, "
                  f"68% interval [{prof.low:.4f}, {prof.high:.4f}] {prof.note}".rstrip()]
    cache = net.RunCache(host, sample)
    for run_dir in run_dirs:
        row = run_row(run_dir, sample.n, cov, count_parameters=cache.count_parameters, recompute=cache.chi2)
        if effective_params:
            eff = cache.effective(run_dir)
            row = row._replace(k_eff=eff.k_eff, notes=row.notes + (
                f"k_eff = {eff.k_eff:.1f} (sum s^2/(s^2+1)); numerical rank {eff.rank} of P = {eff.n_params}",))
        rows.append(row)
    for group in seed_groups(list(run_dirs)):
        footer.append(seed_spread(rows, group))
    points = []
    if profile_grid:
        points = net.retrain_profile(profile_grid, steps=profile_steps, data_path=data_path, covariance=covariance,
                                     run_dirs=run_dirs)
        footer.append("flrw-control profile (retrained at fixed Omega_Lambda = 1 - Om, "
                      f"{points[0].steps} steps each; r: rms Einstein residual, a solution needs r << 1): "
                      + ", ".join(f"Om {p.omega_m:.3f}: chi2 {p.chi2:.2f} (r {p.residual_rms:.1g})" for p in points))
        iv = interval_from_points([p.omega_m for p in points], [p.chi2 for p in points])
        footer.append(f"  parabola: Om = {iv.best:.4f} [{iv.low:.4f}, {iv.high:.4f}] {iv.note}".rstrip())
    text = format_table(rows, table_header(sample, cov), footer)
    if as_dict:
        return text, {"rows": [dict(r._asdict(), **criteria(r, rows[0].chi2)) for r in rows],
                      "flat_lcdm_profile": prof._asdict(), "profile_points": [p._asdict() for p in points],
                      "covariance": cov, "n": sample.n}
    return text


__all__ = ["Interval", "Row", "aic", "bic", "certification", "classical_rows", "compare_runs", "covariance_label",
           "criteria", "flat_lcdm_chi2", "format_table", "interval_from_points", "profile_interval", "read_json",
           "run_row", "seed_groups", "seed_spread", "table_header"]
