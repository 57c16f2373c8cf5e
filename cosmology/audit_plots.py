"""The figure of the source audit and the chart-free observables: ``source_audit.png``.

Six panels, from :func:`cosmology.audit_summary.audit_data` and ``summary_sections``:

- the missing source on the past light cone: Omega_X(z) (sky mean, and its range over the K
  rays) and P_X(z), beside the dust's Omega_d(z);
- its equation of state w_X = P_X / Omega_X on the light cone (ratio of sky means) with -1/3
  (the strong energy condition's edge) and -1 (Lambda);
- Omega_X at the collocation points against the dust's redshift z_rho, coloured by whether the
  strong energy condition of T_eff (dust + X) fails there;
- the Raychaudhuri split of the local q0 at the observer (dust, X, Lambda, shear, vorticity,
  rest), beside Omega_m / 2 (the least q0 of dust alone) and the apparent q0 of the sky-averaged
  Hubble diagram;
- the dipole and quadrupole of the model's d_L(z, n), relative to its monopole;
- the mean and the dipole of the data residuals (mag) in redshift bins.

The title carries the verdict (``dark_energy_like_residual`` and its message).
"""
from __future__ import annotations

import os

import numpy as np

from cosmology import audit_summary


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_x(ax):
    """A log x axis labelled at its decades only (minor labels overlap on short ranges)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())


def _light_cone(ax, light):
    z = np.asarray(light["z"], float)
    rho = np.asarray(light["omega_x_sky_mean"], float)
    ax.fill_between(z, np.asarray(light["omega_x_min"], float), np.asarray(light["omega_x_max"], float), color="C3",
                    alpha=0.2, label="Omega_X, range over the rays")
    ax.plot(z, rho, "C3-", lw=2, label="Omega_X (sky mean)")
    ax.plot(z, np.asarray(light["pressure_x_sky_mean"], float), "C0--", label="P_X = kappa p_X / 3H^2")
    ax.axhline(0.0, color="k", lw=0.6)
    _log_x(ax)
    ax.set_xlabel("z (on the past light cone)")
    ax.set_ylabel("Omega_X, P_X (units of 3 H^2 / kappa)")
    ax.set_title("missing source X = (G + Lambda g)/kappa - dust", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    dust = ax.twinx()  # the dust on its own scale: X may be orders of magnitude smaller
    dust.plot(z, np.asarray(light["omega_dust_sky_mean"], float), "k:", label="Omega_dust (right axis)")
    dust.set_ylabel("Omega_dust")
    dust.legend(fontsize=7, loc="lower right")


def _equation_of_state(ax, light):
    z = np.asarray(light["z"], float)
    w = np.clip(np.asarray(light["w_x"], float), -3.0, 3.0)
    ax.plot(z, w, "C3o-", ms=3, label="w_X (ratio of sky means), clipped to [-3, 3]")
    ax.axhline(-1.0 / 3.0, color="C1", ls="--", label="-1/3: strong energy condition")
    ax.axhline(-1.0, color="C0", ls=":", label="-1: a cosmological constant")
    _log_x(ax)
    ax.set_ylim(-3.2, 3.2)
    ax.set_xlabel("z (on the past light cone)")
    ax.set_title("equation of state of X", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _collocation(ax, d):
    rows = slice(1 + d["n_cone"], None)
    z = d["z_rho"][rows]
    om = np.asarray(d["values"]["omega_x"])[rows]
    bad = np.asarray(d["values"]["strong_violation_total"])[rows] > 0
    ax.scatter(1.0 + z[~bad], om[~bad], s=6, c="C2", label="SEC of dust + X holds")
    ax.scatter(1.0 + z[bad], om[bad], s=6, c="C3", label="SEC of dust + X fails")
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xscale("log")  # 1 + z_rho spans little more than a decade: keep the minor labels
    ax.set_xlabel("1 + z_rho = (rho / rho_O)^(1/3) (collocation points)")
    ax.set_ylabel("Omega_X")
    ax.set_title("X at the collocation points", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _deceleration(ax, section, obs):
    parts = section["observer"]["q_parts"]
    names = list(parts)
    values = [parts[n] if parts[n] is not None else np.nan for n in names]
    ax.bar(names, values, color=["0.5", "C3", "C0", "C2", "C4", "0.8"][:len(names)])
    ax.axhline(obs["q0_local"], color="k", lw=1.5, label=f"q0 local = {obs['q0_local']:.3f}")
    ax.axhline(0.5 * obs["omega_m_local"], color="0.4", ls="--", label="Omega_m / 2 (dust alone: q0 >= this)")
    if obs.get("q0_apparent") is not None:
        ax.axhline(obs["q0_apparent"], color="C1", ls=":", label=f"q0 apparent = {obs['q0_apparent']:.3f}")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_title("Raychaudhuri split of the local q0 at the observer", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)


def _distance_multipoles(ax, obs):
    mp = obs["distance_multipoles"]
    z = np.asarray(mp["z"], float)
    if "dipole_relative" in mp:
        ax.plot(z, np.maximum(np.asarray(mp["dipole_relative"], float), 1e-9), "C0o-", ms=3, label="|D| / M (dipole)")
    labels = ("rms of l = 1", "rms of l = 2")
    for k, r in enumerate(mp.get("rms_relative", [])):
        ax.plot(z, np.maximum(np.asarray(r, float), 1e-9), f"C{k + 1}--", label=f"{labels[k]} / M")
    _log_x(ax)
    ax.set_yscale("log")
    ax.set_xlabel("z")
    ax.set_title("anisotropy of the model's d_L(z, n)", fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _residual_multipoles(ax, obs):
    rows = obs["residual_multipoles"]
    if not rows:
        ax.text(0.5, 0.5, "too few supernovae per bin", ha="center", transform=ax.transAxes)
        return
    z = np.array([r["z_median"] for r in rows])
    ax.errorbar(z, [r["mean_mag"] for r in rows], yerr=[r["mean_err_mag"] for r in rows], fmt="ko-", ms=4,
                label="bin mean (GLS)")
    if "dipole_mag" in rows[0]:
        ax.errorbar(z, [r["dipole_mag"] for r in rows], yerr=[r["dipole_err_mag"] for r in rows], fmt="C0s-", ms=4,
                    label="dipole |D| (the rest of l <= 2 fitted with it)")
    ax.axhline(0.0, color="k", lw=0.5)
    _log_x(ax)
    ax.set_xlabel("z (bin median)")
    ax.set_ylabel("mag")
    ax.set_title("data residuals mu_obs - mu_model: multipoles per bin", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_audit(problem, params, out_dir: str, data=None, sections=None) -> list:
    """``source_audit.png`` into ``out_dir``; returns [its path]. ``data``/``sections``: the
    outputs of ``audit_data`` / ``summary_sections`` when already computed."""
    d = audit_summary.audit_data(problem, params) if data is None else data
    s = audit_summary.summary_sections(problem, params, data=d) if sections is None else sections
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(17, 9), constrained_layout=True)
    _light_cone(axes[0, 0], s["audit"]["light_cone"])
    _equation_of_state(axes[0, 1], s["audit"]["light_cone"])
    _collocation(axes[0, 2], d)
    _deceleration(axes[1, 0], s["audit"], s["observables"])
    _distance_multipoles(axes[1, 1], s["observables"])
    _residual_multipoles(axes[1, 2], s["observables"])
    verdict = "DARK-ENERGY-LIKE RESIDUAL" if s["dark_energy_like_residual"] else "no dark-energy-like residual"
    fig.suptitle(f"source audit: {verdict}\n{s['audit']['message']}", fontsize=8.5)
    path = os.path.join(out_dir, "source_audit.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


__all__ = ["plot_audit"]
