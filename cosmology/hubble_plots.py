"""The supernova figures of a run: the Hubble diagram with its residuals, and the residuals on the sky.

Numbers behind them (:func:`hubble_diagram_data`) come from the likelihood the run fitted, in
float64 on the host (``problem.host_whitening``, :mod:`cosmology.covariance`), whatever the
covariance:

- the magnitude offset is the best one of the whitened chi^2, o* = 1^T C^-1 r / 1^T C^-1 1
  (r = mu_obs - mu_model), and ``chi2`` = r^T C^-1 r - (1^T C^-1 r)^2 / 1^T C^-1 1;
- binned residuals are generalised least-squares means over 12 bins in ln z,
  m = (X^T C^-1 X)^-1 X^T C^-1 (r - o*), X the bin indicators, with errors
  sqrt(diag (X^T C^-1 X)^-1): the maximum-likelihood step function of the residuals under C
  (with diagonal errors: inverse-variance means);
- the classical flat-LCDM curve is the best fit under the same C (:func:`lcdm_reference`);
- each point is drawn with sigma_i = sqrt(C_ii), its own error, which ignores the correlations:
  with a full covariance the points' scatter and the binned errors need not agree by eye.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cosmology import covariance, likelihood, observables, supernovae
from cosmology.conventions import OBSERVER

N_BINS = 12  # of the binned residuals


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def hubble_diagram_data(problem, params) -> dict:
    """Observed and model moduli with the best offset applied, residuals, binned residuals (GLS,
    module docstring) and a monopole curve; float64 numpy. Any covariance, diagonal or full."""
    data = problem.data
    if problem.isotropic:
        d_l, nodes = np.asarray(jax.jit(problem.distances)(params), np.float64), None
    else:  # one compiled ray grid gives the per-supernova distances and the monopole curve
        shape = (data.ray_directions.shape[0], data.z_nodes.shape[0])

        def both(p):
            metric_fn = problem.metric_fn(p)
            grid = supernovae.ray_grid_distances(metric_fn, jnp.asarray(OBSERVER), problem.plan, shape,
                                                 observer_velocity=problem.observer_velocity(p, metric_fn))
            return supernovae.supernova_distances(grid, data), grid

        d_l, nodes = (np.asarray(v, np.float64) for v in jax.jit(both)(params))
    host = problem.host_whitening
    helio = np.asarray(data.helio, np.float64)
    mu_model = 5.0 * np.log10(d_l * helio) + 25.0
    offset = host.best_offset(mu_model)
    residual = host.mu_obs - mu_model - offset
    z = np.asarray(data.z, np.float64)
    out = {"z": z, "mu_obs": host.mu_obs, "sigma": host.sigma, "mu_model": mu_model + offset,
           "residual": residual, "offset": offset, "chi2": host.chi2(mu_model), "factor": host.factor,
           "full_covariance": host.full, **binned_residuals(z, residual, host)}
    if nodes is not None:
        out["curve_z"] = np.asarray(data.z_nodes, np.float64)
        out["curve_mu"] = 5 * np.log10(np.mean(nodes, axis=0)) + 25 + offset
    else:
        order = np.argsort(z)
        out["curve_z"], out["curve_mu"] = z[order], (mu_model + offset)[order]
    return out


def binned_residuals(z: np.ndarray, residual: np.ndarray, host: covariance.HostWhitening,
                     n_bins: int = N_BINS) -> dict:
    """GLS means of ``residual`` in ``n_bins`` bins evenly spaced in ln z (module docstring):
    ``bin_z`` (geometric centres), ``bin_mean``, ``bin_err``, ``bin_n`` (points per bin)."""
    edges = np.geomspace(z.min(), z.max() * 1.0001, n_bins + 1)
    labels = covariance.bin_labels(z, edges)
    means, errs = host.binned_means(residual, labels, n_bins)
    return {"bin_z": np.sqrt(edges[:-1] * edges[1:]), "bin_mean": means, "bin_err": errs,
            "bin_n": np.bincount(labels[labels >= 0], minlength=n_bins)}


def _host_of(hd: dict) -> covariance.HostWhitening:
    """The whitening behind ``hd``: its factor W when present, else the diagonal errors ``sigma``."""
    factor = hd.get("factor")
    return covariance.from_factor(hd["mu_obs"], 1.0 / hd["sigma"] if factor is None else factor)


def lcdm_reference(hd: dict, helio: np.ndarray) -> tuple:
    """(Omega_m, offset) of the flat-LCDM fit of the plotted data under its covariance (the whitening
    ``hd["factor"]``; without it the diagonal errors ``hd["sigma"]``), offset marginalised:
    :func:`cosmology.observables.best_reference`, then o* for that Omega_m."""
    host = _host_of(hd)
    om, _ = observables.best_reference(host.mu_obs, host.factor, hd["z"], helio, "flat_lcdm")
    mu = 5 * np.log10(likelihood.luminosity_distance_flat_lcdm(hd["z"], om) * helio)
    return om, host.best_offset(mu)


def plot_hubble_diagram(problem, params, path: str, hd=None) -> str:
    plt = _plt()
    hd = hubble_diagram_data(problem, params) if hd is None else hd
    helio = np.asarray(problem.data.helio, np.float64)
    om_ref, off_ref = lcdm_reference(hd, helio)
    full = bool(hd.get("full_covariance", False))
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]},
                               constrained_layout=True)
    a.errorbar(hd["z"], hd["mu_obs"], yerr=hd["sigma"], fmt=".", ms=2, lw=0.4, color="0.55", alpha=0.6,
               label=f"Pantheon+ ({len(hd['z'])} light curves; error bars "
                     f"{'sqrt(C_ii) of the full covariance' if full else 'diagonal'})")
    a.plot(hd["curve_z"], hd["curve_mu"], "C3-", lw=1.8, label="model (sky mean)")
    zs = np.geomspace(hd["z"].min(), hd["z"].max(), 200)
    mu_ref = 5 * np.log10(likelihood.luminosity_distance_flat_lcdm(zs, om_ref)) + off_ref
    a.plot(zs, mu_ref, "C0--", lw=1.2, label=f"classical flat-LCDM fit, Omega_m = {om_ref:.3f}")
    a.set_xscale("log")
    a.set_ylabel("distance modulus mu (mag)")
    title = "Hubble diagram (offset marginalised" + (", full covariance)" if full else ", diagonal errors)")
    if "chi2" in hd:
        title += f": chi^2 = {hd['chi2']:.1f} for {len(hd['z'])} light curves"
    a.set_title(title, fontsize=9)
    a.grid(alpha=0.3)
    a.legend(fontsize=8)
    b.plot(hd["z"], hd["residual"], ".", ms=2.5, color="0.45", alpha=0.5)
    bins = hd if "bin_mean" in hd else binned_residuals(hd["z"], hd["residual"], _host_of(hd))
    shown = bins["bin_n"] >= 3
    b.errorbar(bins["bin_z"][shown], bins["bin_mean"][shown], yerr=bins["bin_err"][shown], fmt="o", color="C3", ms=4,
               label="binned (GLS mean, full covariance)" if full else "binned (weighted mean)")
    b.axhline(0.0, color="k", lw=0.8)
    model_at = np.interp(np.log(zs), np.log(hd["curve_z"]), hd["curve_mu"])
    b.plot(zs, mu_ref - model_at, "C0--", lw=1.2, label="LCDM fit - model (sky mean)")
    lim = max(0.3, float(np.percentile(np.abs(hd["residual"]), 98)))
    b.set_ylim(-lim, lim)
    b.set_xlabel("redshift z")
    b.set_ylabel("mu_obs - mu_model")
    b.grid(alpha=0.3)
    b.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_residual_sky(problem, params, path: str, hd=None) -> str:
    plt = _plt()
    hd = hubble_diagram_data(problem, params) if hd is None else hd
    d = np.asarray(problem.data.directions, np.float64)
    ra = np.arctan2(d[:, 1], d[:, 0])  # radians in (-pi, pi]
    dec = np.arcsin(np.clip(d[:, 2], -1, 1))
    fig = plt.figure(figsize=(10, 5.5), constrained_layout=True)
    ax = fig.add_subplot(111, projection="mollweide")
    lim = float(np.percentile(np.abs(hd["residual"]), 95))
    sc = ax.scatter(-ra, dec, c=hd["residual"], s=6, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticklabels([f"{int(v)}°" for v in (150, 120, 90, 60, 30, 0, 330, 300, 270, 240, 210)], fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title("Hubble residuals mu_obs - mu_model on the sky (equatorial, RA increasing to the left)", fontsize=9)
    fig.colorbar(sc, ax=ax, orientation="horizontal", shrink=0.6, pad=0.06, label="residual (mag)")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["N_BINS", "binned_residuals", "hubble_diagram_data", "lcdm_reference", "plot_hubble_diagram",
           "plot_residual_sky"]
