"""The comparison engine of the PDE benchmark: configs run through ``pinnopt.solve`` over seeds.

A *comparison* is a list of ``Config``s (a label and the arguments of one ``pinnopt.solve``)
run at the same step budget over the same seeds; every (config, seed) run leaves a
``RunRecord`` (final metrics, a few traces over training, the solution branch, the speed). Its
tables (``pinnopt.experiments.comparison_tables``, re-exported here) write every cell as a
statistic over the seeds with its count and spread, ``median [min, max] n=N``.

The two comparisons of the benchmark, their configs and budgets, are in
``pinnopt.experiments.pde_comparisons``. Python API::

    from pinnopt.experiments.pde_comparisons import convection_configs

    comp = run_comparison("convection", convection_configs(beta=30.0), steps=4000, seeds=[0, 1, 2])
    print(format_comparison(comp))

The command line (``pinnopt bench convection|pde_toy``) is ``pinnopt.cli.bench``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np
import optax

from pinnopt import balancing as balancing_lib
from pinnopt import problems as problems_lib
from pinnopt.experiments.comparison_tables import (Spread, branch_counts, default_columns, format_comparison,
                                                   format_number, format_spread, format_table, format_trace_table,
                                                   metric_spread, spread)
from pinnopt.training import NonFiniteError, solve
from pinnopt.terms import Constraint


# ---------------------------------------------------------------------------------------------
# What one run is
@dataclasses.dataclass(frozen=True)
class Config:
    """One line of a comparison: a label and everything ``pinnopt.solve`` is given.

    ``learning_rate`` with ``decay_every`` / ``decay_rate`` is the exponential schedule
    ``lr(k) = learning_rate * decay_rate ** (k / decay_every)`` (``decay_every=None``: constant).
    A ``balancing_kwargs["inner"]`` that is a dict ``{"name": ..., **options}`` is built as a
    balancer first (``build_balancer``), so that options of an inner ``causal`` reach it.
    """

    label: str
    problem: str
    problem_kwargs: dict
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    decay_every: Optional[int] = None
    decay_rate: float = 1.0
    optimizer_kwargs: dict = dataclasses.field(default_factory=dict)
    constraints: str = "none"
    constraint_kwargs: dict = dataclasses.field(default_factory=dict)
    balancing: str = "sum"
    balancing_kwargs: dict = dataclasses.field(default_factory=dict)
    squared: tuple = ()  # deprecated: equality constraints enforced as c(x)^2 = 0 (``SquaredConstraints``)
    aggregate: dict = dataclasses.field(default_factory=dict)  # {constraint: "mean" | "pointwise"} overrides

    def schedule(self) -> optax.Schedule:
        if self.decay_every is None:
            return optax.constant_schedule(self.learning_rate)
        return optax.exponential_decay(self.learning_rate, self.decay_every, self.decay_rate)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, eq=False)
class Redeclared:
    """``problem`` with the named constraints' ``aggregate`` overridden (``{"bc": "mean"}``).

    Used to compare a point-wise constraint with the same constraint enforced only on its mean
    (the ``al-mean`` configurations). Everything but ``terms`` is the problem's own.
    """

    problem: Any
    aggregates: tuple  # ((name, aggregate), ...)

    @property
    def name(self) -> str:
        return self.problem.name

    def init(self, key):
        return self.problem.init(key)

    def sample(self, key, step):
        return self.problem.sample(key, step)

    def _wrap(self, name: str, con) -> Constraint:
        return con

    def terms(self, params, batch):
        terms = dict(self.problem.terms(params, batch))
        for name, aggregate in self.aggregates:
            con = terms.get(name)
            if not isinstance(con, Constraint) or (self._must_be_eq and con.kind != "eq"):
                kind = "an equality constraint" if self._must_be_eq else "a constraint"
                raise ValueError(f"{self._what}: {name!r} is not {kind} of {self.name!r} "
                                 f"(its terms: {sorted(terms)})")
            terms[name] = self._wrap(name, dataclasses.replace(con, aggregate=aggregate))
        return terms

    _must_be_eq = False
    _what = "aggregate"

    def config(self) -> dict:
        base = self.problem.config() if hasattr(self.problem, "config") else {"name": self.name}
        return {**base, "constraint_aggregates": dict(self.aggregates)}

    def __getattr__(self, attr):  # evaluate, branch, known_minimum, ...: the problem's own
        if attr == "problem":
            raise AttributeError(attr)
        return getattr(self.problem, attr)


class SquaredConstraints(Redeclared):
    """Deprecated: ``problem`` with each named equality c(x) = 0 replaced by the global c(x)^2 = 0.

    Before constraints aggregated point-wise by default, this was how the comparisons enforced a
    point-wise equality with the augmented Lagrangian (the signed mean of c^2 is zero only when c
    vanishes everywhere). The library's point-wise default now does it directly; this wrapper
    stays, with the same numbers as before (c^2 declared ``aggregate="mean"``: loss
    lam mean c^2 + mu/2 (mean c^2)^2, and ``violation/<name>`` the mean square), so recorded
    results can be reproduced.
    """

    def __init__(self, problem, names):
        warnings.warn("SquaredConstraints is deprecated: constraints are point-wise by default "
                      "(Constraint.aggregate)", DeprecationWarning, stacklevel=2)
        super().__init__(problem, tuple((n, "mean") for n in names))

    _must_be_eq = True
    _what = "squared"

    @property
    def names(self) -> tuple:
        return tuple(n for n, _ in self.aggregates)

    def _wrap(self, name: str, con) -> Constraint:
        return dataclasses.replace(con, value=con.value ** 2)

    def config(self) -> dict:
        base = self.problem.config() if hasattr(self.problem, "config") else {"name": self.name}
        return {**base, "squared_constraints": list(self.names)}


def build_problem(config: "Config"):
    """The config's problem from the registry, with its ``aggregate`` overrides (and deprecated ``squared``)."""
    problem = problems_lib.get(config.problem, **config.problem_kwargs)
    if config.aggregate:
        problem = Redeclared(problem, tuple(sorted(config.aggregate.items())))
    return SquaredConstraints(problem, tuple(config.squared)) if config.squared else problem


def build_balancer(name: str, kwargs: dict):
    """The balancer ``name`` with ``kwargs``; an ``inner`` given as ``{"name": ..., **options}`` is built first."""
    kwargs = dict(kwargs)
    inner = kwargs.get("inner")
    if isinstance(inner, dict):
        options = dict(inner)
        kwargs["inner"] = balancing_lib.get(options.pop("name"), **options)
    return balancing_lib.get(name, **kwargs)


@dataclasses.dataclass
class RunRecord:
    """What one (config, seed) run left: final metrics, a few traces, its branch and speed."""

    label: str
    seed: int
    status: str                 # "finished" or "diverged"
    final: dict                 # metric -> value at the last step (NaN after a divergence)
    traces: dict                # metric -> [[step, value], ...] over training
    branch: Optional[str]       # solution branch (problems with a ``branch`` method), else None
    steps_per_second: float     # compiled-loop speed (the compiling first chunk left out)
    wall_s: float               # the whole solve, compilation included
    error: Optional[str] = None


# Final metrics kept from the last history row, and the ones traced over training.
FINAL_PREFIXES = ("eval/", "raw/", "heldout_raw/", "heldout_violation/", "violation/", "lam/", "mu/",
                  "causal/min_weight", "spatial/w_mean", "loss", "nonfinite")
TRACED = ("eval/rel_l2", "causal/min_weight", "eval/bc_rms")


def _final_metrics(history: list) -> dict:
    last = dict(history[-1]) if history else {}
    # The held-out evaluation lands on the chunk's last row; take the most recent one.
    for row in reversed(history):
        if any(k.startswith("eval/") for k in row):
            last.update({k: v for k, v in row.items() if k.startswith(("eval/", "heldout_"))})
            break
    return {k: float(v) for k, v in last.items() if k.startswith(FINAL_PREFIXES)}


def _traces(history: list) -> dict:
    return {name: [[int(r["step"]), float(r[name])] for r in history if name in r]
            for name in TRACED if any(name in r for r in history)}


def run_config(config: Config, steps: int, seed: int, *, chunk: int = 250,
               heldout_every: Optional[int] = None) -> RunRecord:
    """One ``pinnopt.solve`` of ``config`` for ``steps`` steps from ``seed``.

    A run stopped by the non-finite guard is recorded as ``"diverged"`` (its metrics NaN),
    not raised: a method that diverges is a result of the comparison.
    """
    problem = build_problem(config)
    optimizer_kwargs = {**config.optimizer_kwargs, "learning_rate": config.schedule()}
    start = time.perf_counter()
    try:
        res = solve(problem, optimizer=config.optimizer, optimizer_kwargs=optimizer_kwargs,
                    constraints=config.constraints, constraint_kwargs=config.constraint_kwargs,
                    balancing=build_balancer(config.balancing, config.balancing_kwargs),
                    steps=steps, seed=seed, chunk=chunk,
                    heldout_every=heldout_every if heldout_every is not None else max(chunk, steps // 8))
    except NonFiniteError as err:
        return RunRecord(config.label, seed, "diverged", {}, {}, None, math.nan,
                         time.perf_counter() - start, str(err))
    wall = time.perf_counter() - start
    branch = problem.branch(res.params) if hasattr(problem, "branch") else None
    return RunRecord(config.label, seed, "finished", _final_metrics(res.history), _traces(res.history), branch,
                     _speed(res.history), wall)


def _speed(history: list) -> float:
    """Steps per second of the compiled loop: the median over chunks, the first (which compiles) left out."""
    speeds = [r["steps_per_second"] for r in history if "steps_per_second" in r]
    per_chunk = [v for i, v in enumerate(speeds) if i == 0 or v != speeds[i - 1]]  # a chunk's rows repeat it
    return float(np.median(per_chunk[1:] if len(per_chunk) > 1 else per_chunk)) if per_chunk else math.nan


@dataclasses.dataclass
class Comparison:
    """Configs run at one step budget over the same seeds, with the records of every run."""

    name: str
    steps: int
    seeds: list
    configs: list               # [Config]
    records: list               # [RunRecord], config-major
    columns: list               # [(header, metric)] of the main table

    def records_of(self, label: str) -> list:
        return [r for r in self.records if r.label == label]

    def to_dict(self) -> dict:
        return {"name": self.name, "steps": self.steps, "seeds": self.seeds,
                "configs": [c.to_dict() for c in self.configs],
                "records": [dataclasses.asdict(r) for r in self.records],
                "columns": self.columns}


def run_comparison(name: str, configs: Sequence[Config], steps: int, seeds: Sequence[int], *,
                   chunk: int = 250, heldout_every: Optional[int] = None,
                   columns: Optional[list] = None, log: Optional[Callable[[str], None]] = None) -> Comparison:
    """Run every config for ``steps`` steps from every seed (config-major); ``log`` gets one line per run."""
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    labels = [c.label for c in configs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"configs: labels must be unique, got {labels}")
    records = []
    for config in configs:
        for seed in seeds:
            rec = run_config(config, steps, int(seed), chunk=min(chunk, steps), heldout_every=heldout_every)
            records.append(rec)
            if log is not None:
                log(_run_line(name, rec))
    return Comparison(name, int(steps), [int(s) for s in seeds], list(configs), records,
                      columns if columns is not None else default_columns(name))


def _run_line(name: str, rec: RunRecord) -> str:
    shown = [f"{k.split('/')[-1]} {format_number(rec.final[k])}" for k in ("eval/rel_l2", "eval/bc_rms", "causal/min_weight")
             if k in rec.final]
    if rec.branch is not None:
        shown.append(f"branch {rec.branch}")
    return f"[{name}] {rec.label}, seed {rec.seed}: {rec.status}; " + ", ".join(shown) + f" ({rec.wall_s:.0f} s)"


# ---------------------------------------------------------------------------------------------
# Files
def enable_compile_cache(path: str) -> None:
    """Keep every compiled program in ``path`` for the rest of the process (jax's persistent cache).

    The seeds of one config compile to the same program (the seed only changes the state that
    enters it), so with the cache every seed after the first skips compilation. Process-wide:
    call it before the first compilation of a benchmark process, not inside a test session.
    """
    import jax

    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def write_outputs(comparisons: Sequence[Comparison], out_dir: str) -> list:
    """``tables.txt`` (every comparison, formatted) and ``summary.json`` (configs and all records)."""
    from pinnopt.io.rundir import to_jsonable

    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, "tables.txt"), os.path.join(out_dir, "summary.json")]
    with open(paths[0], "w") as fh:
        fh.write("\n\n".join(format_comparison(c) for c in comparisons) + "\n")
    with open(paths[1], "w") as fh:
        json.dump(to_jsonable([c.to_dict() for c in comparisons]), fh, indent=2)
    return paths

__all__ = ["Comparison", "Config", "Redeclared", "RunRecord", "Spread", "SquaredConstraints", "branch_counts", "build_balancer",
           "build_problem", "default_columns", "enable_compile_cache", "format_comparison", "format_spread",
           "format_table", "format_trace_table", "metric_spread", "run_comparison", "run_config", "spread",
           "write_outputs"]
