"""Statistics over seeds and the tables of a comparison (``pinnopt.experiments.comparison``).

A cell of a table is a statistic over the seeds, always written with its count and spread::

    median [min, max] n=N          N = seeds with a finite value (k diverged are said so)

so ``0.703 [0.691, 0.745] n=3`` reads: median 0.703 over 3 seeds, all of them in
[0.691, 0.745]. A categorical result (the solution branch of the PDE toy) is a count per
category over the seeds.

Everything here reads a ``Comparison``, its ``Config``s and ``RunRecord``s by their fields
only, so this module does not import the engine (which imports it to format its tables).
"""
from __future__ import annotations

import json
import math
from typing import NamedTuple, Sequence

import numpy as np


class Spread(NamedTuple):
    """A statistic over seeds: median, min and max of the finite values, their count n, and how
    many values were not finite (diverged runs)."""

    median: float
    low: float
    high: float
    n: int
    missing: int


def spread(values: Sequence[float]) -> Spread:
    """Median [min, max] of the finite ``values``, with their count and the count of the others."""
    arr = np.asarray(list(values), dtype=float)
    finite = arr[np.isfinite(arr)]
    missing = int(arr.size - finite.size)
    if finite.size == 0:
        return Spread(math.nan, math.nan, math.nan, 0, missing)
    return Spread(float(np.median(finite)), float(finite.min()), float(finite.max()), int(finite.size), missing)


def format_number(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.3g}"


def format_spread(s: Spread) -> str:
    """``median [min, max] n=N`` (``n=0`` when no value is finite; ``+k diverged`` when some are not)."""
    tail = f" +{s.missing} diverged" if s.missing else ""
    if s.n == 0:
        return f"- n=0{tail}"
    return f"{format_number(s.median)} [{format_number(s.low)}, {format_number(s.high)}] n={s.n}{tail}"


def metric_spread(records: Sequence, metric: str) -> Spread:
    """The spread over ``records`` of a final metric (a missing metric counts as not finite)."""
    return spread([r.final.get(metric, math.nan) for r in records])


def branch_counts(records: Sequence) -> str:
    """``exact a, second b, none c (n=N)`` over the seeds (diverged runs counted apart)."""
    from pinnopt.problems.pde_toy import BRANCHES

    found = [r.branch for r in records if r.branch is not None]
    parts = [f"{name} {found.count(name)}" for name in (*BRANCHES, "none")]
    diverged = sum(r.status != "finished" for r in records)
    return ", ".join(parts) + f" (n={len(found)}" + (f", {diverged} diverged)" if diverged else ")")


def default_columns(name: str) -> list:
    """The main table's ``(header, metric)`` columns for a problem; ``"branch"`` is the branch count."""
    if name == "convection":
        return [("rel L2", "eval/rel_l2"), ("min causal weight (end)", "causal/min_weight"),
                ("PDE residual^2", "heldout_raw/pde"), ("IC residual^2", "heldout_raw/ic"),
                ("steps/s", "steps_per_second")]
    if name == "pde_toy":
        return [("rel L2", "eval/rel_l2"), ("boundary RMS |u-g|", "eval/bc_rms"), ("PDE residual^2", "heldout_raw/pde"),
                ("u(0)", "eval/u0"), ("branch", "branch"), ("steps/s", "steps_per_second")]
    return [("rel L2", "eval/rel_l2"), ("steps/s", "steps_per_second")]


def _cell(records: Sequence, metric: str) -> str:
    if metric == "branch":
        return branch_counts(records)
    if metric == "steps_per_second":
        return format_spread(spread([r.steps_per_second for r in records]))
    if metric == "causal/min_weight" and not any(metric in r.final for r in records):
        return "(no causal weights)"
    return format_spread(metric_spread(records, metric))


def _render(header: list, body: list) -> list:
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in body]


def format_table(comp) -> str:
    """The main table: one row per config, one cell per column, each a spread over the seeds."""
    body = [[c.label] + [_cell(comp.records_of(c.label), m) for _, m in comp.columns] for c in comp.configs]
    return "\n".join(_render(["config"] + [h for h, _ in comp.columns], body))


def trace_at(rec, metric: str, step: int) -> float:
    """The traced ``metric`` of a run at the last logged step <= ``step`` (NaN if none)."""
    points = [v for s, v in rec.traces.get(metric, []) if s <= step]
    return points[-1] if points else math.nan


def trace_steps(records: Sequence, metric: str, fractions: Sequence[float], total: int) -> list:
    """For each fraction of ``total`` steps, the nearest step at which every finished run logged ``metric``."""
    logged = [{s for s, _ in r.traces.get(metric, [])} for r in records if r.status == "finished"]
    common = sorted(set.intersection(*logged)) if logged else []
    if not common:
        return []
    return sorted({min(common, key=lambda s: abs(s - f * total)) for f in fractions})


def format_trace_table(comp, metric: str, fractions=(0.125, 0.25, 0.5, 0.75, 1.0)) -> str:
    """``metric`` over training: one column per fraction of the budget (at the nearest logged
    step), spreads over the seeds. Only configs that log ``metric`` appear (e.g. the causal
    ones for ``causal/min_weight``).
    """
    logging = [c for c in comp.configs if any(metric in r.traces for r in comp.records_of(c.label))]
    steps = trace_steps([r for c in logging for r in comp.records_of(c.label)], metric, fractions, comp.steps)
    if not steps:
        return f"({metric}: not logged by any config)"
    body = [[c.label] + [format_spread(spread([trace_at(r, metric, s) for r in comp.records_of(c.label)]))
                         for s in steps] for c in logging]
    return "\n".join(_render(["config"] + [f"step {s}" for s in steps], body))


def format_comparison(comp) -> str:
    """Header line, the main table, the traces over training and the configs."""
    lines = [f"{comp.name}: {len(comp.configs)} configs x {len(comp.seeds)} seeds {comp.seeds} x "
             f"{comp.steps} steps each; cells: median [min, max] n=seeds", "", format_table(comp)]
    for metric, title in (("causal/min_weight", "causal minimum weight over training"),
                          ("eval/rel_l2", "relative L2 error over training")):
        if any(metric in r.traces for r in comp.records):
            lines += ["", f"{title}:", format_trace_table(comp, metric)]
    lines += ["", "configs:"] + [f"  {c.label}: {_describe(c)}" for c in comp.configs]
    return "\n".join(lines)


def _describe(c) -> str:
    lr = f"lr {c.learning_rate:g}" + (f" x{c.decay_rate:g}/{c.decay_every} steps" if c.decay_every else "")
    parts = [f"{c.optimizer} ({lr}" + (f", {json.dumps(c.optimizer_kwargs)})" if c.optimizer_kwargs else ")"),
             f"balancing {c.balancing} {json.dumps(c.balancing_kwargs)}",
             f"constraints {c.constraints}" + (f" {json.dumps(c.constraint_kwargs)}" if c.constraint_kwargs else ""),
             f"problem {json.dumps(c.problem_kwargs)}"]
    return "; ".join(parts)


__all__ = ["Spread", "branch_counts", "default_columns", "format_comparison", "format_number", "format_spread", "format_table",
           "format_trace_table", "metric_spread", "spread", "trace_at", "trace_steps"]
