"""The vmapped benchmark engine behind ``pinnopt bench``: many independent runs as one computation.

A table compares optimizers on one problem. For each optimizer, all runs are a single
compiled ``jax.vmap`` (over runs) of a ``lax.scan`` (over steps): run r starts from
``problem.init(key_r)`` (the same starts for every optimizer) and its optimizer state gets
its own PRNG key, so stochastic optimizers (BBI's bounces, ECDSep's rotations) differ
between runs. Each step calls ``update(grads, state, params, value=, grad=, value_fn=)``,
so optimizers that need the loss run in the same loop as Adam.

Reported per optimizer: the median, min and max over runs of the best loss along each
trajectory, the median final loss, the success rate (best loss within ``success_threshold``
of ``problem.known_minimum.value``), and the speed: steps per second over all runs together
and microseconds per single-run step (compilation excluded, reported apart).

Python API::

    table = run_bench("ackley", ["bbi", "sgd"], runs=20, steps=2000, seed=0,
                      problem_kwargs={"dim": 2, "b": 0.02},
                      optimizer_kwargs={"sgd": {"learning_rate": 0.2, "momentum": 0.56}},
                      out_dir="bench-out")
    print(format_table(table))

``run_batch`` is the single-optimizer building block (explicit starts, stop condition,
loss curves) that the scripts in ``benchmarks/`` use. The command line is ``pinnopt.cli.bench``.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pinnopt import optimizers as _optimizers
from pinnopt import problems as _problems
from pinnopt.experiments.vmapped_report import format_table, plot_table, write_outputs
from pinnopt.terms import split_terms

_KEY_FIELDS = ("key", "rng_key")


# ---------------------------------------------------------------------------------------------
# One optimizer, many runs
@dataclasses.dataclass
class BatchResult:
    """What ``run_batch`` measured; arrays have a leading axis of runs."""

    best: np.ndarray            # best loss along each trajectory (frozen once a run stops)
    final: np.ndarray           # loss at the final (or stopping) point
    curve: np.ndarray           # best-so-far loss at ``record_steps`` (runs, n_records)
    record_steps: np.ndarray    # step numbers of the curve's columns
    params: Any                 # final parameters (batched pytree)
    stopped_at: np.ndarray      # step at which stop_fn first held (-1: never)
    steps: int
    runs: int
    wall_s: float               # execution time of the compiled computation
    compile_s: float

    @property
    def steps_taken(self) -> int:
        """Single-run steps taken, all runs together (a stopped run counts until its stop)."""
        return int(np.sum(np.where(self.stopped_at >= 0, self.stopped_at, self.steps)))

    @property
    def steps_per_s(self) -> float:
        """Single-run steps per second, all runs together."""
        return self.steps_taken / self.wall_s

    @property
    def us_per_step(self) -> float:
        """Microseconds per single-run step (amortised over the vmapped runs)."""
        return 1e6 * self.wall_s / self.steps_taken


def objective_value(terms: dict) -> jax.Array:
    """The scalar a benchmark minimises: the sum over objectives of their mean contribution."""
    objectives, constraints = split_terms(terms)
    if constraints:
        raise ValueError(f"bench: the problem has constraints ({', '.join(constraints)}); the benchmark "
                         "compares unconstrained descent, use `pinnopt solve` for constrained problems")
    if not objectives:
        raise ValueError("bench: the problem returned no objective terms")
    return sum(jnp.mean(t.loss) for t in objectives.values())


def reseed_state(state, key: jax.Array):
    """``state`` with every NamedTuple field called ``key`` or ``rng_key`` replaced by a key
    derived from ``key`` (so vmapped runs of a stochastic optimizer draw independently)."""
    count = [0]

    def is_keyed(node):
        return isinstance(node, tuple) and hasattr(node, "_fields") and any(f in node._fields for f in _KEY_FIELDS)

    def replace(node):
        if not is_keyed(node):
            return node
        new = {}
        for field in _KEY_FIELDS:
            if field in node._fields:
                old = getattr(node, field)
                derived = jax.random.fold_in(key, count[0])
                count[0] += 1
                if jax.dtypes.issubdtype(old.dtype, jax.dtypes.prng_key):
                    derived = jax.random.wrap_key_data(derived)
                new[field] = derived
        return node._replace(**new)

    return jax.tree_util.tree_map(replace, state, is_leaf=is_keyed)


def _default_record_every(steps: int) -> int:
    return max(1, steps // 200)


def run_batch(
    problem,
    tx,
    params0,
    keys: jax.Array,
    steps: int,
    *,
    record_every: Optional[int] = None,
    stop_fn: Optional[Callable[[Any], jax.Array]] = None,
    hparams=None,
) -> BatchResult:
    """Run ``tx`` on ``problem`` from each of the batched starts ``params0`` for ``steps`` steps.

    ``keys`` (runs, 2) seed each run's optimizer state and batches. ``stop_fn(params) -> bool``
    ends a run the first time it holds after a step: from then on its parameters and state stay
    as they were, and the batch ends early once every run has stopped. The whole batch is one
    jitted ``vmap`` of a ``lax.scan`` (a ``lax.while_loop`` of scanned chunks with ``stop_fn``).

    With ``hparams`` (a pytree of arrays with a leading axis of runs), ``tx`` is a function
    ``hparams_of_one_run -> GradientTransformation`` called inside the vmapped run, so runs can
    differ in traced hyperparameters (e.g. ``learning_rate=lambda count: lr``) and a whole
    hyperparameter grid compiles once. The best loss ignores NaN (a run that diverges keeps the
    best value it reached; its final loss shows the divergence).
    """
    if steps < 1:
        raise ValueError(f"bench: steps must be a positive integer, got {steps}")
    if hparams is None:
        fixed_tx = optax.with_extra_args_support(tx)
        make_tx = lambda _: fixed_tx
        hparams = jnp.zeros(keys.shape[0])
    else:
        make_tx = lambda hp: optax.with_extra_args_support(tx(hp))
    record_every = _default_record_every(steps) if record_every is None else int(record_every)
    if record_every < 1:
        raise ValueError(f"bench: record_every must be >= 1, got {record_every}")
    n_records, rest = divmod(steps, record_every)

    def one_run(p0, key, hp):
        tx = make_tx(hp)
        opt_key, data_key = jax.random.split(key)
        state = reseed_state(tx.init(p0), opt_key)

        def loss_at(step):
            """The loss of step ``step`` (its batch drawn from the run's data key)."""
            batch = problem.sample(jax.random.fold_in(data_key, step), step)
            return lambda p: objective_value(problem.terms(p, batch))

        def step_fn(carry, step):
            params, state, best, stopped_at = carry
            loss_fn = loss_at(step)
            value, grad = jax.value_and_grad(loss_fn)(params)
            updates, new_state = tx.update(grad, state, params, value=value, grad=grad, value_fn=loss_fn)
            new_params = optax.apply_updates(params, updates)
            running = stopped_at < 0
            best = jnp.where(running, jnp.fmin(best, value), best)
            if stop_fn is not None:
                new_params = jax.tree_util.tree_map(lambda a, b: jnp.where(running, a, b), new_params, params)
                new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(running, a, b), new_state, state)
                stopped_at = jnp.where(running & stop_fn(new_params), step + 1, stopped_at)
            return (new_params, new_state, best, stopped_at), None

        def chunk(carry, start, length):
            carry, _ = jax.lax.scan(step_fn, carry, start + jnp.arange(length))
            return carry

        value0 = loss_at(0)(p0)
        carry = (p0, state, jnp.full((), jnp.inf, value0.dtype), jnp.full((), -1, jnp.int32))
        if stop_fn is None:
            def record(carry, start):
                carry = chunk(carry, start, record_every)
                return carry, carry[2]

            carry, curve = jax.lax.scan(record, carry, jnp.arange(n_records) * record_every)
        else:
            # A while loop over chunks, so that the batch ends as soon as every run has stopped
            # (under vmap the loop runs while any run goes on; stopped runs stay frozen).
            def more(loop):
                i, carry, _ = loop
                return (i < n_records) & (carry[3] < 0)

            def record(loop):
                i, carry, curve = loop
                carry = chunk(carry, i * record_every, record_every)
                return i + 1, carry, curve.at[i].set(carry[2])

            curve = jnp.full((n_records,), jnp.nan, value0.dtype)
            _, carry, curve = jax.lax.while_loop(more, record, (jnp.zeros((), jnp.int32), carry, curve))
            curve = jnp.where(jnp.isnan(curve), carry[2], curve)  # after a stop the best is frozen
        if rest:
            carry = chunk(carry, n_records * record_every, rest)
            curve = jnp.concatenate([curve, carry[2][None]])
        params, _, best, stopped_at = carry
        final = loss_at(steps)(params)
        return params, jnp.fmin(best, final), final, curve, stopped_at

    compiled_start = time.perf_counter()
    compiled = jax.jit(jax.vmap(one_run)).lower(params0, keys, hparams).compile()
    compile_s = time.perf_counter() - compiled_start
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(params0, keys, hparams))
    wall_s = time.perf_counter() - start
    params, best, final, curve, stopped_at = out
    record_steps = np.arange(1, n_records + 1) * record_every
    if rest:
        record_steps = np.append(record_steps, steps)
    return BatchResult(best=np.asarray(best), final=np.asarray(final), curve=np.asarray(curve),
                       record_steps=record_steps, params=params, stopped_at=np.asarray(stopped_at),
                       steps=steps, runs=int(keys.shape[0]), wall_s=wall_s, compile_s=compile_s)


def initial_params(problem, runs: int, key: jax.Array, dtype=None):
    """``problem.init`` at ``runs`` keys split from ``key``, batched (optionally cast to ``dtype``)."""
    params0 = jax.vmap(problem.init)(jax.random.split(key, runs))
    if dtype is not None:
        params0 = jax.tree_util.tree_map(lambda a: a.astype(dtype), params0)
    return params0


# ---------------------------------------------------------------------------------------------
# A table of optimizers
@dataclasses.dataclass
class BenchRow:
    optimizer: str
    hyperparameters: dict
    best_median: float
    best_min: float
    best_max: float
    final_median: float
    diverged: int               # runs whose final loss is not finite
    successes: Optional[int]
    success_rate: Optional[float]
    steps_per_s: float
    us_per_step: float
    compile_s: float
    wall_s: float


@dataclasses.dataclass
class BenchTable:
    problem: str
    problem_config: dict
    runs: int
    steps: int
    seed: int
    success_threshold: float
    known_minimum: Optional[float]
    rows: list
    results: dict = dataclasses.field(default_factory=dict, repr=False)  # optimizer -> BatchResult

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("results")
        return out


def summarize(name: str, hp: dict, res: BatchResult, known: Optional[float], threshold: float) -> BenchRow:
    """One row of a table: the statistics of ``res`` (success = best - known <= threshold)."""
    best = res.best
    successes = None if known is None else int(np.sum(best - known <= threshold))
    return BenchRow(
        optimizer=name, hyperparameters=hp,
        best_median=float(np.median(best)), best_min=float(np.min(best)), best_max=float(np.max(best)),
        final_median=float(np.median(res.final)), diverged=int(np.sum(~np.isfinite(res.final))),
        successes=successes,
        success_rate=None if successes is None else successes / res.runs,
        steps_per_s=res.steps_per_s, us_per_step=res.us_per_step, compile_s=res.compile_s, wall_s=res.wall_s,
    )


def run_bench(
    problem: str,
    optimizers: Sequence[str],
    runs: int = 10,
    steps: int = 1000,
    seed: int = 0,
    problem_kwargs: Optional[dict] = None,
    optimizer_kwargs: Optional[dict] = None,
    out_dir: Optional[str] = None,
    *,
    success_threshold: float = 1e-3,
    record_every: Optional[int] = None,
    dtype=None,
) -> BenchTable:
    """Compare ``optimizers`` on the problem called ``problem``; see the module docstring.

    ``optimizer_kwargs`` maps an optimizer name to its hyperparameters. ``dtype`` casts the
    starting points (e.g. ``jnp.float64``, which needs x64 enabled). With ``out_dir`` the table,
    a JSON summary and plots are written there.
    """
    if runs < 1:
        raise ValueError(f"bench: runs must be a positive integer, got {runs}")
    if not optimizers:
        raise ValueError("bench: name at least one optimizer")
    optimizer_kwargs = dict(optimizer_kwargs or {})
    unknown = set(optimizer_kwargs) - set(optimizers)
    if unknown:
        raise ValueError(f"bench: optimizer_kwargs for {sorted(unknown)}, which are not among {list(optimizers)}")
    prob = _problems.get(problem, **(problem_kwargs or {}))
    known = getattr(prob, "known_minimum", None)
    known_value = None if known is None else float(known.value)
    key = jax.random.PRNGKey(seed)
    params0 = initial_params(prob, runs, jax.random.fold_in(key, 0), dtype)
    run_keys = jax.random.split(jax.random.fold_in(key, 1), runs)
    rows, results = [], {}
    for name in optimizers:
        hp = dict(optimizer_kwargs.get(name, {}))
        tx = _optimizers.get(name, **hp)
        res = run_batch(prob, tx, params0, run_keys, steps, record_every=record_every)
        results[name] = res
        rows.append(summarize(name, hp, res, known_value, success_threshold))
    config = prob.config() if hasattr(prob, "config") else dict(problem_kwargs or {})
    table = BenchTable(problem=problem, problem_config=config, runs=runs, steps=steps, seed=seed,
                       success_threshold=success_threshold, known_minimum=known_value, rows=rows, results=results)
    if out_dir is not None:
        write_outputs(table, out_dir)
    return table


__all__ = ["BatchResult", "BenchRow", "BenchTable", "run_batch", "run_bench", "format_table",
           "write_outputs", "plot_table", "summarize", "reseed_state", "objective_value", "initial_params"]
