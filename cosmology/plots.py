"""The figures a cosmologist expects from a run of ``lumpy`` or ``flrw-control``.

``plot_problem(problem, params, run_dir)`` writes into ``run_dir/plots``:

- ``training.png``: raw loss terms, constraint violations (training and held-out points),
  Omega_m (and Omega_Lambda), multipliers and penalties, the spatial weights' range, the
  gradient norm, over the steps (from metrics.jsonl);
- ``hubble_rates.png``: directional Hubble rates H_x, H_y, H_z (the expansion tensor on the
  observer's frame axes) and the mean H against time along the observer's worldline, and
  their anisotropy H_i / H - 1;
- ``shear.png``: sigma^2 / H^2 against time at the observer and its largest value over
  points of the sampled ball;
- ``maps_today.png``: the Ricci scalar R / (3 H_O^2) and the dust density
  kappa rho / (3 H_O^2) (= Omega_m at the observer) on the x-y, y-z and x-z planes at t = 0;
- ``surfaces_today.png``: the same Ricci scalar maps as 3-D surfaces;
- ``hubble_diagram.png``: distance modulus against redshift, data (error bars sqrt(C_ii)) and the
  model (per supernova, and the monopole curve), with the residuals below; the magnitude
  offset, the binned residuals and the flat-LCDM reference follow the fitted likelihood, full
  covariance included (:mod:`cosmology.hubble_plots`);
- ``residual_sky.png``: the residuals mu_obs - mu_model on the sky (Mollweide, RA/DEC);
- ``source_audit.png``: the source the metric needs beyond dust and the chart-free observables
  (:mod:`cosmology.audit_plots`).

Times on the axes are in the preset's units (the observer at ``t_observer``); rates and
densities in units of the observer's Hubble rate H_O.
"""
from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from cosmology import kinematics
from cosmology.hubble_plots import (  # noqa: F401  (re-exported: the supernova figures)
    hubble_diagram_data,
    lcdm_reference,
    plot_hubble_diagram,
    plot_residual_sky,
)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------- training curves


def _series(rows, key):
    xs, ys = [], []
    for row in rows:
        v = row.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            xs.append(row["step"])
            ys.append(v)
    return np.asarray(xs), np.asarray(ys)


def _panel(ax, rows, keys, title, log=True, floor=None):
    drawn = False
    for key in keys:
        x, y = _series(rows, key)
        if not len(x):
            continue
        if log:
            y = np.abs(y) if floor is None else np.maximum(np.abs(y), floor)
        ax.plot(x, y, label=key, marker="." if len(x) < 20 else None, lw=1.2)
        drawn = True
    if drawn:
        values = np.concatenate([np.abs(_series(rows, k)[1]) for k in keys if len(_series(rows, k)[1])])
        positive = values[values > 0]
        if log and positive.size and positive.max() / positive.min() > 10:
            ax.set_yscale("log")
        ax.legend(fontsize=6.5, ncol=1 if len(keys) < 5 else 2)
    else:
        ax.text(0.5, 0.5, "not logged in this run", ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.grid(alpha=0.3)


def plot_training(rows: list, path: str) -> str:
    """The six panels of ``training.png`` from metrics rows."""
    plt = _plt()
    keys = sorted({k for r in rows for k in r})
    pick = lambda *prefixes: [k for k in keys if any(k.startswith(p) for p in prefixes)]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    _panel(axes[0, 0], rows, pick("raw/", "heldout_raw/"), "loss terms (raw means; supernovae = chi^2 / N)")
    _panel(axes[0, 1], rows, pick("violation/", "heldout_violation/"),
           "constraint violations mean(max(0, value)) (train, held-out)", floor=1e-12)
    _panel(axes[0, 2], rows, pick("param/", "eval/omega"), "Omega_m, Omega_Lambda", log=False)
    _panel(axes[1, 0], rows, pick("lam/", "mu/"), "multipliers lam and penalties mu")
    _panel(axes[1, 1], rows, pick("spatial/w_min", "spatial/w_max", "spatial/w_mean"),
           "spatial weights exp(-2 W(x)): range")
    _panel(axes[1, 2], rows, pick("grad_norm", "learning_rate"), "gradient norm, learning rate")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- the metric


def _unit(problem) -> str:
    """The preset's length unit, e.g. "4283 Mpc" (c/H0 for H0 = 70) or "1000 Mpc"."""
    return f"{problem.cfg.unit_mpc:.0f} Mpc"


def _time_label(problem) -> str:
    return f"t [{_unit(problem)} / c; observer at t = {problem.cfg.t_observer:g}]"


def _frame_rates(metric_fn, x):
    """(H_x, H_y, H_z, H): the expansion tensor Theta_ij on the observer's orthonormal frame
    axes (Gram-Schmidt of d_x, d_y, d_z), and the mean rate."""
    kin = kinematics.kinematics(metric_fn, x)
    g = metric_fn(x)
    frame = kinematics.orthonormal_frame(g)[1:, 1:]  # columns e_(k)^i
    theta = -kin.extrinsic_curvature
    diag = jnp.einsum("ik,ij,jk->k", frame, theta, frame)
    return jnp.concatenate([diag, kin.mean_hubble_rate[None]]), kin.shear_scalar


def worldlines(problem, params, positions, n: int = 160) -> dict:
    """Frame rates (P, n, 4) and shear (P, n) along the worldlines at ``positions`` (P, 3)
    (code units) over the whole time domain; one compiled evaluation for all of them."""
    metric_fn = problem.metric_fn(params)
    t = np.linspace(problem.windows["start"], 0.0, n).astype(np.float32)
    positions = np.asarray(positions, np.float32).reshape(-1, 3)
    pts = np.concatenate([np.broadcast_to(t[None, :, None], (len(positions), n, 1)),
                          np.broadcast_to(positions[:, None, :], (len(positions), n, 3))], axis=2).reshape(-1, 4)
    rates, shear = jax.jit(jax.vmap(lambda x: _frame_rates(metric_fn, x)))(jnp.asarray(pts))
    return {"t_code": t, "t": np.array([problem.cfg.to_preset_time(float(v)) for v in t]),
            "rates": np.asarray(rates).reshape(len(positions), n, 4),
            "shear": np.asarray(shear).reshape(len(positions), n)}


def _positions(problem, n_positions: int = 16) -> np.ndarray:
    """The observer's position and ``n_positions`` random ones in the sampled ball (fixed seed)."""
    rng = np.random.default_rng(7)
    v = rng.normal(size=(n_positions, 3))
    v = v / np.linalg.norm(v, axis=1, keepdims=True) * problem.windows["radius"] * rng.uniform(size=(n_positions, 1)) ** (1 / 3)
    return np.concatenate([np.zeros((1, 3)), v])


def worldline(problem, params, n: int = 160) -> dict:
    """Rates and shear at the observer's position (index 0) and at 16 other positions."""
    return worldlines(problem, params, _positions(problem), n)


def plot_hubble_rates(problem, params, path: str, line=None) -> str:
    plt = _plt()
    line = worldline(problem, params) if line is None else line
    rates = line["rates"][0]
    h_obs = float(rates[-1, 3])
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    labels = ("H_x", "H_y", "H_z", "mean H")
    for k, lab in enumerate(labels):
        a.plot(line["t"], rates[:, k] / h_obs, label=lab, lw=2.2 if k == 3 else 1.2,
               ls="-" if k == 3 else "--", color="k" if k == 3 else None)
    positive = np.all(rates > 0)
    if positive and rates.max() / max(rates.min(), 1e-30) > 10:
        a.set_yscale("log")
    a.set_xlabel(_time_label(problem))
    a.set_ylabel("H / H_O")
    a.set_title("Hubble rates at the observer's position")
    a.grid(alpha=0.3)
    a.legend()
    for k in range(3):
        b.plot(line["t"], rates[:, k] / rates[:, 3] - 1.0, label=labels[k])
    b.axhline(0.0, color="k", lw=0.8)
    spread = np.max(np.abs(rates[:, :3] / rates[:, 3:4] - 1.0))
    lim = max(1e-3, 1.1 * float(spread))  # float32 noise (1e-7) must not look like a signal
    b.set_ylim(-lim, lim)
    b.set_xlabel(_time_label(problem))
    b.set_ylabel("H_i / H - 1")
    b.set_title("anisotropy of the expansion")
    b.grid(alpha=0.3)
    b.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_shear(problem, params, path: str, line=None) -> str:
    plt = _plt()
    line = worldline(problem, params) if line is None else line
    ratios = line["shear"] / np.maximum(line["rates"][:, :, 3] ** 2, 1e-30)
    ratio, others = ratios[0], ratios[1:]
    n_positions = len(others)
    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    ax.plot(line["t"], np.maximum(ratio, 1e-16), label="at the observer's position", lw=2)
    ax.plot(line["t"], np.maximum(np.max(others, axis=0), 1e-16), label=f"max over {n_positions} positions in the ball",
            lw=1.2, ls="--")
    if problem.cfg.cmb_priors:
        t0, t1 = (problem.cfg.to_preset_time(v) for v in problem.windows["cmb"])
        ax.axvspan(min(t0, t1), max(t0, t1), color="orange", alpha=0.2, label="CMB window")
        ax.axhline(problem.cfg.shear_tolerance, color="orange", ls=":", label="shear tolerance")
    ax.set_yscale("log")
    ax.set_xlabel(_time_label(problem))
    ax.set_ylabel("sigma^2 / H^2")
    ax.set_title("shear")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


PLANES = (("x", "y", 1, 2), ("y", "z", 2, 3), ("x", "z", 1, 3))


def plane_fields(problem, params, n: int = 41) -> dict:
    """R / (3 H_O^2) and kappa rho / (3 H_O^2) on the three coordinate planes at t = 0."""
    radius = problem.windows["radius"]
    s = np.linspace(-radius, radius, n).astype(np.float32)
    u, v = np.meshgrid(s, s, indexing="xy")
    metric_fn = problem.metric_fn(params)
    src = problem.source(params, metric_fn)
    out = {"axis": s}
    fields = jax.jit(lambda p, pts: problem.fields(p, pts))
    for a, b, i, j in PLANES:
        pts = np.zeros((n * n, 4), np.float32)
        pts[:, i], pts[:, j] = u.ravel(), v.ravel()
        f = fields(params, jnp.asarray(pts))
        h2 = 3.0 * float(src.hubble) ** 2
        out[a + b] = {"ricci": np.asarray(f["ricci_scalar"]).reshape(n, n) / h2,
                      "density": np.asarray(f["kappa_rho"]).reshape(n, n) / h2}
    return out


def plot_maps(problem, params, path: str, fields=None) -> str:
    plt = _plt()
    fields = plane_fields(problem, params) if fields is None else fields
    s = fields["axis"] / problem.cfg.code_per_unit
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5), constrained_layout=True)
    for col, (a, b, _, _) in enumerate(PLANES):
        for row, (key, title, cmap) in enumerate((("ricci", "Ricci scalar R / (3 H_O^2)", "magma"),
                                                  ("density", "dust density kappa rho / (3 H_O^2)", "viridis"))):
            ax = axes[row, col]
            data = fields[a + b][key]
            # One colour scale per field across the three planes; diverging around 0 when it changes sign.
            lo = min(float(fields[p + q][key].min()) for p, q, _, _ in PLANES)
            hi = max(float(fields[p + q][key].max()) for p, q, _, _ in PLANES)
            if lo < 0 < hi:
                lim = max(-lo, hi)
                cmap, lo, hi = "RdBu_r", -lim, lim
            im = ax.imshow(data, origin="lower", extent=(s[0], s[-1], s[0], s[-1]), cmap=cmap, vmin=lo, vmax=hi)
            fig.colorbar(im, ax=ax, shrink=0.85)
            ax.plot(0, 0, "k*", ms=9)
            ax.set_xlabel(f"{a} [{_unit(problem)}]")
            ax.set_ylabel(f"{b} [{_unit(problem)}]")
            ax.set_title(f"{title}, {a}-{b} plane, today", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_surfaces(problem, params, path: str, fields=None) -> str:
    plt = _plt()
    fields = plane_fields(problem, params) if fields is None else fields
    s = fields["axis"] / problem.cfg.code_per_unit
    u, v = np.meshgrid(s, s, indexing="xy")
    fig = plt.figure(figsize=(16, 6))
    for col, (a, b, _, _) in enumerate(PLANES):
        ax = fig.add_subplot(1, 3, col + 1, projection="3d")
        ax.plot_surface(u, v, fields[a + b]["ricci"], cmap="magma", linewidth=0, antialiased=True)
        ax.set_box_aspect(None, zoom=0.82)
        ax.set_xlabel(f"{a} [{_unit(problem)}]", fontsize=8)
        ax.set_ylabel(f"{b} [{_unit(problem)}]", fontsize=8)
        ax.set_zlabel("R / (3 H_O^2)", fontsize=8)
        ax.set_title(f"Ricci scalar today, {a}-{b} plane", fontsize=10, pad=2)
    fig.subplots_adjust(left=0.02, right=0.97, top=0.93, bottom=0.04, wspace=0.1)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- all of them


def plot_problem(problem, params, run_dir: str) -> list:
    """Every figure of the module docstring into ``run_dir/plots``; returns the paths."""
    from pinnopt.io.rundir import read_metrics

    out = os.path.join(run_dir, "plots")
    os.makedirs(out, exist_ok=True)
    paths = []
    rows = read_metrics(os.path.join(run_dir, "metrics.jsonl"))
    if rows:
        paths.append(plot_training(rows, os.path.join(out, "training.png")))
    line = worldline(problem, params)
    paths.append(plot_hubble_rates(problem, params, os.path.join(out, "hubble_rates.png"), line))
    paths.append(plot_shear(problem, params, os.path.join(out, "shear.png"), line))
    if not problem.isotropic:
        fields = plane_fields(problem, params)
        paths.append(plot_maps(problem, params, os.path.join(out, "maps_today.png"), fields))
        paths.append(plot_surfaces(problem, params, os.path.join(out, "surfaces_today.png"), fields))
    hd = hubble_diagram_data(problem, params)
    paths.append(plot_hubble_diagram(problem, params, os.path.join(out, "hubble_diagram.png"), hd))
    paths.append(plot_residual_sky(problem, params, os.path.join(out, "residual_sky.png"), hd))
    from cosmology import audit_plots  # source_audit.png: the missing source and the observables

    return paths + audit_plots.plot_audit(problem, params, out)


__all__ = ["hubble_diagram_data", "plane_fields", "plot_hubble_diagram", "plot_hubble_rates", "plot_maps",
           "plot_problem", "plot_residual_sky", "plot_shear", "plot_surfaces", "plot_training", "worldline"]
