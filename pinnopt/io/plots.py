"""PNG figures of a run directory, from its metrics.jsonl (no training state needed)."""
from __future__ import annotations

import math
import os

from pinnopt.io.rundir import read_metrics

# Figures: (file name, title, metric-name prefixes, log scale)
FIGURES = (
    ("loss.png", "loss and raw terms", ("loss", "objective", "raw/", "heldout_raw/"), True),
    ("constraints.png", "constraint violations (training and held-out points)",
     ("violation/", "heldout_violation/"), True),
    ("multipliers.png", "multipliers and penalties", ("lam/", "mu/"), False),
    ("balancing.png", "balancing", ("sigma/", "causal/", "spatial/"), False),
    ("evaluation.png", "evaluation", ("eval/",), True),
)


def _series(rows, key):
    xs, ys = [], []
    for row in rows:
        val = row.get(key)
        if isinstance(val, (int, float)) and math.isfinite(val):
            xs.append(row["step"])
            ys.append(val)
    return xs, ys


def _matches(key, prefixes):
    return any(key == p or (p.endswith("/") and key.startswith(p)) for p in prefixes)


def plot_run(run_dir: str) -> list[str]:
    """Write the figures that the run's metrics allow into ``run_dir/plots``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir}: no metrics.jsonl (not a run directory, or the run wrote nothing yet)")
    rows = read_metrics(path)
    if not rows:
        raise ValueError(f"{path} is empty")
    out_dir = os.path.join(run_dir, "plots")
    os.makedirs(out_dir, exist_ok=True)
    keys = sorted({k for row in rows for k in row})
    written = []
    for name, title, prefixes, log in FIGURES:
        chosen = [k for k in keys if _matches(k, prefixes)]
        series = [(k, *_series(rows, k)) for k in chosen]
        series = [s for s in series if s[1]]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
        for key, xs, ys in series:
            positive = all(y > 0 for y in ys)
            ax.plot(xs, ys if (not log or positive) else [abs(y) for y in ys], marker="." if len(xs) < 30 else None,
                    label=key if (not log or positive) else f"|{key}|")
        values = [abs(y) for _, _, ys in series for y in ys]
        # Log scale only when the values span more than a decade; otherwise its labels are unreadable.
        if log and min(values) > 0 and max(values) / min(values) > 10:
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        target = os.path.join(out_dir, name)
        fig.savefig(target, dpi=110)
        plt.close(fig)
        written.append(target)
    return written
