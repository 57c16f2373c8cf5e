"""The text, files and figures of a ``vmapped.run_bench`` table (``BenchTable``)."""
from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np


def _fmt(x: Optional[float]) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def format_table(table) -> str:
    """The table as aligned text, with a header line saying what was run."""
    known = "unknown" if table.known_minimum is None else _fmt(table.known_minimum)
    lines = [f"{table.problem} {json.dumps(table.problem_config, default=str)}: {table.runs} runs x "
             f"{table.steps} steps, seed {table.seed}; known minimum {known}; success = best - min <= "
             f"{table.success_threshold:g}"]
    header = ["optimizer", "best median", "best min", "best max", "final median", "diverged", "success",
              "steps/s", "us/step", "compile s"]
    body = []
    for r in table.rows:
        success = "-" if r.successes is None else f"{r.successes}/{table.runs}"
        body.append([r.optimizer, _fmt(r.best_median), _fmt(r.best_min), _fmt(r.best_max), _fmt(r.final_median),
                     str(r.diverged), success, f"{r.steps_per_s:.3g}", f"{r.us_per_step:.3g}", f"{r.compile_s:.2f}"])
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    fmt_row = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
    lines += [fmt_row(header), fmt_row(["-" * w for w in widths])] + [fmt_row(r) for r in body]
    hps = [f"  {r.optimizer}: {json.dumps(r.hyperparameters, default=str)}" for r in table.rows if r.hyperparameters]
    if hps:
        lines += ["hyperparameters:"] + hps
    return "\n".join(lines)


def write_outputs(table, out_dir: str) -> list[str]:
    """Write ``table.txt``, ``summary.json`` and ``plots/*.png`` into ``out_dir``; returns the paths."""
    from pinnopt.io.rundir import to_jsonable

    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    paths = [os.path.join(out_dir, "table.txt"), os.path.join(out_dir, "summary.json")]
    with open(paths[0], "w") as fh:
        fh.write(format_table(table) + "\n")
    summary = table.to_dict()
    summary["best_per_run"] = {k: v.best for k, v in table.results.items()}
    with open(paths[1], "w") as fh:
        json.dump(to_jsonable(summary), fh, indent=2)
    return paths + plot_table(table, os.path.join(out_dir, "plots"))


def plot_table(table, plot_dir: str) -> list[str]:
    """Best-so-far loss against steps (median over runs, band from min to max) and the spread
    of the best losses, one colour per optimizer; PNGs with the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shift = table.known_minimum or 0.0
    floor = 1e-30
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    for name, res in table.results.items():
        gap = np.maximum(res.curve - shift, floor)
        ax.plot(res.record_steps, np.median(gap, axis=0), label=name)
        ax.fill_between(res.record_steps, gap.min(axis=0), gap.max(axis=0), alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("best loss - known minimum" if table.known_minimum is not None else "best loss")
    ax.set_title(f"{table.problem}: {table.runs} runs (median, min-max band)")
    ax.legend()
    written.append(os.path.join(plot_dir, "best_loss.png"))
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    names = list(table.results)
    ax.boxplot([np.maximum(table.results[n].best - shift, floor) for n in names])
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_yscale("log")
    ax.set_ylabel("best loss - known minimum" if table.known_minimum is not None else "best loss")
    ax.set_title(f"{table.problem}: best loss of each run after {table.steps} steps")
    written.append(os.path.join(plot_dir, "best_loss_spread.png"))
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)
    return written


__all__ = ["format_table", "plot_table", "write_outputs"]
