"""The PDE benchmark: balancers on 1D convection, boundary methods and optimizers on the PDE toy.

A *comparison* is a list of ``Config``s (a label and the arguments of one ``pinnopt.solve``)
run at the same step budget over the same seeds. A cell of its table is a statistic over
the seeds, always written with its count and spread::

    median [min, max] n=N          N = seeds with a finite value (k diverged are said so)

so ``0.703 [0.691, 0.745] n=3`` reads: median 0.703 over 3 seeds, all of them in
[0.691, 0.745]. A categorical result (the solution branch of the PDE toy) is a count per
category over the seeds.

The two comparisons of the benchmark (``convection_configs``, ``pde_toy_configs``):

- ``convection``: ``sum`` against ``causal`` and ``causal`` inside ``spatial``, one network
  and learning-rate schedule for all; relative L2 error and the causal minimum weight over
  training (``causal/min_weight``: 1 when every time chunk counts, 0 when later chunks are
  still switched off).
- ``pde_toy``: the boundary condition as a static 1e5 penalty (the talk's loss: the ``sum``
  balancer with weight 1e5 on the ``bc`` objective) against the augmented Lagrangian on the
  ``bc`` equality constraint, each with Adam and with BBI; relative L2 error, boundary
  violation (RMS of u - g on fixed circle points) and the solution branch.

Python API::

    comp = run_comparison("convection", convection_configs(beta=30.0), steps=4000, seeds=[0, 1, 2])
    print(format_comparison(comp))

``PRESETS`` hold the budgets of the benchmark script and of ``pinnopt bench convection|pde_toy``
(``quick``: a smoke run; ``default``: the CPU benchmark; ``long``: more steps and seeds).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np
import optax

from pinnopt import balancing as balancing_lib
from pinnopt import problems as problems_lib
from pinnopt.training import NonFiniteError, solve
from pinnopt.terms import Constraint

PROBLEMS = ("convection", "pde_toy")


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
    squared: tuple = ()  # equality constraints enforced as c(x)^2 = 0 (see ``SquaredConstraints``)

    def schedule(self) -> optax.Schedule:
        if self.decay_every is None:
            return optax.constant_schedule(self.learning_rate)
        return optax.exponential_decay(self.learning_rate, self.decay_every, self.decay_rate)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, eq=False)
class SquaredConstraints:
    """``problem`` with each named equality constraint c(x) = 0 replaced by c(x)^2 = 0.

    The constraint methods aggregate an equality into one number, and the augmented
    Lagrangian uses the signed mean ``mean c(x)``: zero as soon as positive and negative
    violations cancel, so it does not enforce c(x) = 0 point-wise. With the square the
    aggregated value is the mean square ``mean c(x)^2``, zero only when c vanishes at every
    point; the multiplier then acts as a weight on that mean square that grows while it is
    violated (``lam <- lam + mu mean c^2``). Everything but ``terms`` is the problem's own.
    The library form of the same augmented Lagrangian (same loss and multiplier updates) is
    ``augmented_lagrangian(equality="squared")``; this wrapper stays so that the recorded
    results keep their meaning: here ``violation/<name>`` and ``heldout_violation/<name>`` are
    the mean square ``mean c(x)^2``, where the library form reports ``mean |c(x)|``.
    """

    problem: Any
    names: tuple

    @property
    def name(self) -> str:
        return self.problem.name

    def init(self, key):
        return self.problem.init(key)

    def sample(self, key, step):
        return self.problem.sample(key, step)

    def terms(self, params, batch):
        terms = dict(self.problem.terms(params, batch))
        for name in self.names:
            con = terms.get(name)
            if not isinstance(con, Constraint) or con.kind != "eq":
                raise ValueError(f"squared: {name!r} is not an equality constraint of {self.name!r} "
                                 f"(its terms: {sorted(terms)})")
            terms[name] = Constraint(con.value**2, "eq", coords=con.coords)
        return terms

    def config(self) -> dict:
        base = self.problem.config() if hasattr(self.problem, "config") else {"name": self.name}
        return {**base, "squared_constraints": list(self.names)}

    def __getattr__(self, attr):  # evaluate, branch, known_minimum, ...: the problem's own
        if attr == "problem":
            raise AttributeError(attr)
        return getattr(self.problem, attr)


def build_problem(config: "Config"):
    """The config's problem from the registry, with its ``squared`` constraints squared."""
    problem = problems_lib.get(config.problem, **config.problem_kwargs)
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
    shown = [f"{k.split('/')[-1]} {_num(rec.final[k])}" for k in ("eval/rel_l2", "eval/bc_rms", "causal/min_weight")
             if k in rec.final]
    if rec.branch is not None:
        shown.append(f"branch {rec.branch}")
    return f"[{name}] {rec.label}, seed {rec.seed}: {rec.status}; " + ", ".join(shown) + f" ({rec.wall_s:.0f} s)"


# ---------------------------------------------------------------------------------------------
# Statistics over seeds, and the tables
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


def _num(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.3g}"


def format_spread(s: Spread) -> str:
    """``median [min, max] n=N`` (``n=0`` when no value is finite; ``+k diverged`` when some are not)."""
    tail = f" +{s.missing} diverged" if s.missing else ""
    if s.n == 0:
        return f"- n=0{tail}"
    return f"{_num(s.median)} [{_num(s.low)}, {_num(s.high)}] n={s.n}{tail}"


def metric_spread(records: Sequence[RunRecord], metric: str) -> Spread:
    """The spread over ``records`` of a final metric (a missing metric counts as not finite)."""
    return spread([r.final.get(metric, math.nan) for r in records])


def branch_counts(records: Sequence[RunRecord]) -> str:
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


def _cell(records: Sequence[RunRecord], metric: str) -> str:
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


def format_table(comp: Comparison) -> str:
    """The main table: one row per config, one cell per column, each a spread over the seeds."""
    body = [[c.label] + [_cell(comp.records_of(c.label), m) for _, m in comp.columns] for c in comp.configs]
    return "\n".join(_render(["config"] + [h for h, _ in comp.columns], body))


def trace_at(rec: RunRecord, metric: str, step: int) -> float:
    """The traced ``metric`` of a run at the last logged step <= ``step`` (NaN if none)."""
    points = [v for s, v in rec.traces.get(metric, []) if s <= step]
    return points[-1] if points else math.nan


def trace_steps(records: Sequence[RunRecord], metric: str, fractions: Sequence[float], total: int) -> list:
    """For each fraction of ``total`` steps, the nearest step at which every finished run logged ``metric``."""
    logged = [{s for s, _ in r.traces.get(metric, [])} for r in records if r.status == "finished"]
    common = sorted(set.intersection(*logged)) if logged else []
    if not common:
        return []
    return sorted({min(common, key=lambda s: abs(s - f * total)) for f in fractions})


def format_trace_table(comp: Comparison, metric: str, fractions=(0.125, 0.25, 0.5, 0.75, 1.0)) -> str:
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


def format_comparison(comp: Comparison) -> str:
    """Header line, the main table, the traces over training and the configs."""
    lines = [f"{comp.name}: {len(comp.configs)} configs x {len(comp.seeds)} seeds {comp.seeds} x "
             f"{comp.steps} steps each; cells: median [min, max] n=seeds", "", format_table(comp)]
    for metric, title in (("causal/min_weight", "causal minimum weight over training"),
                          ("eval/rel_l2", "relative L2 error over training")):
        if any(metric in r.traces for r in comp.records):
            lines += ["", f"{title}:", format_trace_table(comp, metric)]
    lines += ["", "configs:"] + [f"  {c.label}: {_describe(c)}" for c in comp.configs]
    return "\n".join(lines)


def _describe(c: Config) -> str:
    lr = f"lr {c.learning_rate:g}" + (f" x{c.decay_rate:g}/{c.decay_every} steps" if c.decay_every else "")
    parts = [f"{c.optimizer} ({lr}" + (f", {json.dumps(c.optimizer_kwargs)})" if c.optimizer_kwargs else ")"),
             f"balancing {c.balancing} {json.dumps(c.balancing_kwargs)}",
             f"constraints {c.constraints}" + (f" {json.dumps(c.constraint_kwargs)}" if c.constraint_kwargs else ""),
             f"problem {json.dumps(c.problem_kwargs)}"]
    return "; ".join(parts)


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


# ---------------------------------------------------------------------------------------------
# The two comparisons, their budgets, and the command line
def convection_configs(beta: float = 30.0, *, width: int = 64, depth: int = 3, n_points: int = 1024,
                       n_ic: int = 256, optimizer: str = "adam", learning_rate: float = 5e-3,
                       decay_every: Optional[int] = 1000, decay_rate: float = 0.9, ic_weight: float = 100.0,
                       eps: float = 0.1, n_chunks: int = 16, spatial_width: int = 16,
                       optimizer_kwargs: Optional[dict] = None, problem: Optional[dict] = None,
                       select: Optional[Sequence[str]] = None) -> list:
    """``sum`` against ``causal`` and ``causal`` inside ``spatial`` on convection at speed ``beta``.

    Shared by all: the periodic network (``width`` x ``depth`` tanh on (t, cos x, sin x)), fresh
    points every step, ``optimizer`` with ``learning_rate`` decayed by ``decay_rate`` every
    ``decay_every`` steps, loss ``mean pde + ic_weight mean ic`` (the initial condition must
    outweigh the residual, whose scale is beta^2, or u = 0 wins). Only the reduction of the
    residual differs: its plain mean (``sum``), the causal mean over ``n_chunks`` time chunks
    with ``eps`` (``causal``), or the causal mean of spatially balanced point values with a
    ``spatial_width`` x 2 weight net on the residual points (``spatial+causal``). The initial
    condition, all at t = 0, is never weighted causally. ``problem`` overrides problem options;
    ``select`` keeps the named labels.
    """
    kwargs = {"beta": float(beta), "width": width, "depth": depth, "n_points": n_points, "n_ic": n_ic,
              "periodic": True, **(problem or {})}
    causal = {"eps": eps, "n_chunks": n_chunks, "terms": ["pde"], "weights": {"ic": ic_weight}}
    balancers = {
        "sum": ("sum", {"weights": {"ic": ic_weight}}),
        "causal": ("causal", causal),
        "spatial+causal": ("spatial", {"terms": ["pde"], "width": spatial_width, "depth": 2,
                                       "inner": {"name": "causal", **causal}}),
    }
    configs = [Config(label, "convection", kwargs, optimizer, learning_rate, decay_every, decay_rate,
                      dict(optimizer_kwargs or {}), "none", {}, name, opts)
               for label, (name, opts) in balancers.items()]
    return _select(configs, select)


def pde_toy_configs(*, width: int = 32, depth: int = 3, fourier_features: int = 32, fourier_scale: float = 2.0,
                    n_interior: int = 256, n_boundary: int = 64, penalty_weight: float = 1e5,
                    adam: Optional[dict] = None, bbi: Optional[dict] = None, al: Optional[dict] = None,
                    problem: Optional[dict] = None, select: Optional[Sequence[str]] = None) -> list:
    """The boundary condition u = g of the PDE toy by a static penalty or the augmented Lagrangian,
    with Adam and with BBI.

    - ``penalty``: the talk's loss ``mean r^2 + penalty_weight mean (u - g)^2`` (``bc`` an
      objective, the ``sum`` balancer with that weight; no constraint method);
    - ``al``: ``bc`` the equality constraint (u - g)^2 = 0 (``SquaredConstraints``), so the
      augmented Lagrangian drives the boundary mean square to zero with a multiplier;
    - ``al-mean``: the augmented Lagrangian on the problem's own constraint u - g = 0, whose
      aggregated value is the signed mean of u - g (only its mean is enforced: see the README).

    ``adam``, ``bbi``: learning-rate settings ``{"learning_rate", "decay_every", "decay_rate"}``
    and other hyperparameters of each optimizer; ``al``: options of the method. Labels are
    ``<method>/<optimizer>``; the default set is penalty/adam, al/adam, al-mean/adam,
    penalty/bbi, al/bbi (``select`` picks others, e.g. al-mean/bbi).
    """
    base = {"width": width, "depth": depth, "fourier_features": fourier_features,
            "fourier_scale": fourier_scale, "n_interior": n_interior, "n_boundary": n_boundary, **(problem or {})}
    opts = {"adam": {"learning_rate": 3e-3, "decay_every": 500, "decay_rate": 0.9, **(adam or {})},
            "bbi": {**BBI_PDE_TOY, **(bbi or {})}}
    al_opts = {**AL_PDE_TOY, **(al or {})}
    methods = {
        "penalty": dict(problem_kwargs={**base, "boundary": "objective"}, constraints="none",
                        balancing_kwargs={"weights": {"bc": penalty_weight}}),
        "al": dict(problem_kwargs={**base, "boundary": "constraint"}, constraints="al",
                   constraint_kwargs=al_opts, squared=("bc",)),
        "al-mean": dict(problem_kwargs={**base, "boundary": "constraint"}, constraints="al",
                        constraint_kwargs=al_opts),
    }
    configs = []
    for optimizer in ("adam", "bbi"):
        o = dict(opts[optimizer])
        lr = dict(learning_rate=o.pop("learning_rate"), decay_every=o.pop("decay_every", None),
                  decay_rate=o.pop("decay_rate", 1.0))
        for method, spec in methods.items():
            configs.append(Config(f"{method}/{optimizer}", "pde_toy", optimizer=optimizer, optimizer_kwargs=o,
                                  **lr, **spec))
    default = ("penalty/adam", "al/adam", "al-mean/adam", "penalty/bbi", "al/bbi")
    return _select(configs, default if select is None else select)


# BBI on the PDE toy (see the README for the search behind these): dt is small because the
# loss starts near 1e6 and BBI's steps grow like dt sqrt(E); delta_energy of the loss's order
# keeps batch-to-batch noise in the loss (fresh points every step) below the energy E.
BBI_PDE_TOY = {"learning_rate": 1e-4, "delta_energy": 1e6, "v0": 0.0, "threshold0": 1000, "threshold1": 3000,
               "energy_guard": True}
# The augmented Lagrangian on the boundary: mu starts at 1e3, not 1, because the residual
# term starts near 1e6; the schedule raises it 10x when the violation stalls for 250 steps.
AL_PDE_TOY = {"mu_init": 1e3, "mu_max": 1e7, "check_every": 250}


def _select(configs: list, select: Optional[Sequence[str]]) -> list:
    if select is None:
        return configs
    labels = [c.label for c in configs]
    unknown = [s for s in select if s not in labels]
    if unknown:
        raise ValueError(f"select: unknown config(s) {unknown}; available: {', '.join(labels)}")
    return [c for c in configs if c.label in select]


PRESETS = {
    "quick": {"convection": {"steps": 500, "seeds": 2}, "pde_toy": {"steps": 200, "seeds": 2}},
    "default": {"convection": {"steps": 4000, "seeds": 3}, "pde_toy": {"steps": 2000, "seeds": 3}},
    "long": {"convection": {"steps": 20000, "seeds": 5}, "pde_toy": {"steps": 10000, "seeds": 5}},
}
CONFIGS: dict = {"convection": convection_configs, "pde_toy": pde_toy_configs}
LR_KEYS = ("learning_rate", "decay_every", "decay_rate")


def comparison_options(name: str, problem_args: dict, opt_args: dict, optimizers: Optional[Sequence[str]],
                       select: Optional[Sequence[str]]) -> dict:
    """Keyword arguments of ``CONFIGS[name]`` from command-line style settings.

    ``problem_args``: keys that are options of the comparison (``eps``, ``ic_weight``,
    ``penalty_weight``, ...) go to it, the others are problem options. ``opt_args``:
    ``{"[optimizer.]key": value}`` hyperparameters (``learning_rate``, ``decay_every`` and
    ``decay_rate`` set the schedule); an unqualified key applies to every optimizer.
    ``optimizers``: convection takes one (default adam), the PDE toy keeps configs with these.
    """
    import inspect

    if name not in CONFIGS:
        raise ValueError(f"the PDE benchmark covers {', '.join(PROBLEMS)}, not {name!r}")
    accepted = set(inspect.signature(CONFIGS[name]).parameters) - {"problem", "select", "adam", "bbi", "al",
                                                                  "optimizer_kwargs", "optimizer"}
    options = {k: v for k, v in problem_args.items() if k in accepted}
    problem = {k: v for k, v in problem_args.items() if k not in accepted}
    names = list(optimizers) if optimizers else (["adam"] if name == "convection" else ["adam", "bbi"])
    per_opt: dict = {n: {} for n in names}
    for key, val in opt_args.items():
        target, _, hp = key.rpartition(".")
        if target and target not in per_opt:
            raise ValueError(f"optimizer hyperparameter {key!r}: {target!r} is not among {names}")
        for n in [target] if target else names:
            per_opt[n][hp] = val
    if name == "convection":
        if len(names) != 1:
            raise ValueError(f"convection compares balancers with one optimizer; got {names}")
        hp = per_opt[names[0]]
        options.update(optimizer=names[0], **{k: hp.pop(k) for k in LR_KEYS if k in hp}, optimizer_kwargs=hp)
    else:
        unknown = sorted(set(names) - {"adam", "bbi"})
        if unknown:
            raise ValueError(f"pde_toy compares adam and bbi; got {unknown}")
        options.update({n: hp for n, hp in per_opt.items() if hp})
        if select is None:
            select = [c.label for c in pde_toy_configs() if c.optimizer in names]
    return {**options, "problem": problem, "select": None if select is None else list(select)}


def add_arguments(parser) -> None:
    """The options ``pinnopt bench convection|pde_toy`` adds to bench's own (see ``cli``)."""
    parser.add_argument("--budget", choices=sorted(PRESETS),
                        help="PDE problems: steps and seeds preset (default: default); --steps and --runs override it")
    parser.add_argument("--configs", help="PDE problems: comma-separated labels of the configs to run "
                                          "(convection: sum,causal,spatial+causal; pde_toy: METHOD/OPTIMIZER "
                                          "with METHOD penalty, al or al-mean)")
    parser.add_argument("--compile-cache", metavar="DIR",
                        help="PDE problems: keep compiled programs in DIR, so seeds after the first skip compilation")


def cli(args) -> int:
    """``pinnopt bench convection|pde_toy``: run the comparison, print its tables, write them with ``--out``.

    Reads from ``args``: ``problem``; ``steps`` and ``runs`` (seeds; None: the ``--budget``
    preset); ``seed`` (the first seed); ``problem_arg`` (``-p KEY=VALUE``: comparison or problem
    options, e.g. ``beta=50``, ``eps=1``, ``penalty_weight=1e4``); ``opt_arg``
    (``[NAME.]KEY=VALUE``); ``optimizers``; ``configs``; ``budget``; ``compile_cache``; ``out``.
    """
    from pinnopt.cli import parse_assignments

    name = args.problem
    preset = PRESETS[getattr(args, "budget", None) or "default"][name] if name in PROBLEMS else {}
    steps = getattr(args, "steps", None) or preset.get("steps")
    runs = getattr(args, "runs", None) or preset.get("seeds")
    first = getattr(args, "seed", None) or 0
    optimizers = [n.strip() for n in (getattr(args, "optimizers", None) or "").split(",") if n.strip()]
    select = [n.strip() for n in (getattr(args, "configs", None) or "").split(",") if n.strip()] or None
    if getattr(args, "compile_cache", None):
        enable_compile_cache(args.compile_cache)
    try:
        options = comparison_options(name, parse_assignments(getattr(args, "problem_arg", None), "--problem-arg"),
                                     parse_assignments(getattr(args, "opt_arg", None), "--opt-arg"),
                                     optimizers or None, select)
        configs = CONFIGS[name](**options)
        comp = run_comparison(name, configs, int(steps), list(range(first, first + int(runs))), log=print)
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    print()
    print(format_comparison(comp))
    out = getattr(args, "out", None)
    if out:
        paths = write_outputs([comp], out)
        print("wrote " + ", ".join(paths))
    return 0


__all__ = ["Config", "SquaredConstraints", "RunRecord", "Comparison", "Spread", "PRESETS", "PROBLEMS", "CONFIGS",
           "build_problem", "build_balancer", "run_config", "run_comparison", "spread", "format_spread",
           "metric_spread", "branch_counts", "format_table", "format_trace_table", "format_comparison",
           "write_outputs", "enable_compile_cache", "convection_configs", "pde_toy_configs", "comparison_options", "add_arguments", "cli"]
