"""The solve loop: chunks of compiled steps, metrics, checkpoints, resume, guards, held-out checks.

One training step (all inside ``lax.scan``)::

    key, k = split(state.key);  batch = problem.sample(k, step)
    L(params) = balancer.loss(objectives) + method.loss(constraints)
    params <- params + optimizer.update(grad L, value=L, value_fn=L)
    balancer / constraint-method state <- their update (multipliers, penalty schedule, ...)

Every piece of changing state lives in ``TrainState`` and goes through the compiled step as an
argument, so a new multiplier or penalty value always reaches the compiled code.
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pinnopt import balancing as balancing_lib
from pinnopt import constraints as constraints_lib
from pinnopt import optimizers as optimizers_lib
from pinnopt import sharding as sharding_lib
from pinnopt.io.checkpoint import Checkpointer
from pinnopt.io.rundir import RunDir
from pinnopt.terms import split_terms

HELDOUT_SALT = 0x48454C44  # separates the held-out key stream from the training stream


class TrainState(NamedTuple):
    """All state of a run; a checkpoint holds exactly this."""

    params: Any  # {"model": problem params, "balancer": balancer params}
    opt_state: Any
    balancer_state: Any
    constraint_state: Any
    key: jax.Array  # training PRNG key (raw uint32)
    step: jax.Array  # int32, steps taken (including skipped non-finite ones)
    nonfinite_run: jax.Array  # int32, consecutive skipped steps
    nonfinite_total: jax.Array  # int32, all skipped steps


class Result(NamedTuple):
    params: Any  # the problem's (model) parameters
    history: list  # one dict per chunk, as in metrics.jsonl
    state: TrainState
    summary: dict
    run_dir: Optional[str]


class NonFiniteError(RuntimeError):
    """Raised when the loss or the update stays non-finite for ``max_nonfinite`` steps in a row."""


def _resolve(lib, spec, kwargs, kind):
    if isinstance(spec, str):
        return lib.get(spec, **(kwargs or {}))
    if kwargs:
        raise ValueError(f"{kind}_kwargs given but {kind} is not a name")
    return spec


def _tree_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _tree_not_nan(tree) -> jax.Array:
    leaves = [~jnp.any(jnp.isnan(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _uncommitted(x):
    return jnp.asarray(np.asarray(x))


def _select(pred, new, old):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


def make_loss_fn(problem, balancer, method, mesh=None) -> Callable:
    """``loss_fn(params, batch, balancer_state, constraint_state) -> (loss, (objectives, constraints, metrics))``.

    With a ``mesh``, point-wise terms are split over its devices like the batch (see ``pinnopt.sharding``).
    """

    def loss_fn(params, batch, balancer_state, constraint_state):
        terms = sharding_lib.shard_points(problem.terms(params["model"], batch), mesh, "term", uneven="free")
        objectives, constraints = split_terms(terms)
        obj_loss, obj_metrics = balancer.loss(objectives, params["balancer"], balancer_state)
        con_loss, con_metrics = method.loss(constraints, constraint_state)
        metrics = {**obj_metrics, **con_metrics, "objective": obj_loss, "constraint_loss": con_loss}
        return obj_loss + con_loss, (objectives, constraints, metrics)

    return loss_fn


def make_step(problem, tx, balancer, method, mesh=None) -> Callable:
    """The pure training step ``state -> (state, metrics)``.

    With a ``mesh`` the sampled batch is split over its devices along the points (the
    compiler inserts the all-reduces of the means and gradients); without one nothing changes.
    """
    loss_fn = make_loss_fn(problem, balancer, method, mesh)

    def step(state: TrainState, _=None):
        key, k_batch = jax.random.split(state.key)
        batch = sharding_lib.shard_points(problem.sample(k_batch, state.step), mesh)
        (loss, (objectives, constraints, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, state.balancer_state, state.constraint_state)

        def value_fn(p):
            return loss_fn(p, batch, state.balancer_state, state.constraint_state)[0]

        updates, opt_state = tx.update(grads, state.opt_state, state.params,
                                       value=loss, grad=grads, value_fn=value_fn)
        params = optax.apply_updates(state.params, updates)
        balancer_state = balancer.update(objectives, state.params["balancer"], state.balancer_state)
        constraint_state = method.update(constraints, state.constraint_state)

        # Non-finite guard: skip the whole update (the key and step still advance, so a
        # stochastic failure gets a fresh batch), and count the skip.
        ok = jnp.isfinite(loss) & _tree_finite(params) & _tree_finite(opt_state)
        # Method states may hold +inf sentinels ("no reference yet"), so only NaN counts there.
        ok = ok & _tree_not_nan(balancer_state) & _tree_not_nan(constraint_state)
        new = TrainState(
            params=_select(ok, params, state.params),
            opt_state=_select(ok, opt_state, state.opt_state),
            balancer_state=_select(ok, balancer_state, state.balancer_state),
            constraint_state=_select(ok, constraint_state, state.constraint_state),
            key=key,
            step=state.step + 1,
            nonfinite_run=jnp.where(ok, 0, state.nonfinite_run + 1),
            nonfinite_total=state.nonfinite_total + (~ok).astype(jnp.int32),
        )
        extra = {"grad_norm": optax.tree.norm(grads)}
        if hasattr(problem, "step_metrics"):  # cheap problem scalars (e.g. physical parameters)
            extra.update({f"param/{k}": v for k, v in problem.step_metrics(state.params["model"]).items()})
        return new, {"loss": loss, **metrics, **extra, "nonfinite": (~ok).astype(jnp.int32)}

    return step


def make_heldout(problem, method, mesh=None) -> Callable:
    """Violations of every constraint and raw objective means on freshly sampled points."""

    def heldout(params, key, step):
        batch = sharding_lib.shard_points(problem.sample(key, step), mesh)
        terms = sharding_lib.shard_points(problem.terms(params["model"], batch), mesh, "term", uneven="free")
        objectives, constraints = split_terms(terms)
        out = {f"heldout_violation/{n}": constraints_lib.violation(c, signed=False) for n, c in constraints.items()}
        out.update({f"heldout_raw/{n}": jnp.mean(o.loss) for n, o in objectives.items()})
        if hasattr(problem, "evaluate"):
            out.update({f"eval/{k}": v for k, v in problem.evaluate(params["model"]).items()})
        return out

    return heldout


def init_state(problem, tx, balancer, method, seed: int) -> TrainState:
    """A fresh state: model and balancer parameters, optimizer, method states, keys."""
    root = jax.random.PRNGKey(seed)
    k_model, k_balancer, k_example, k_train = jax.random.split(root, 4)
    model = problem.init(k_model)
    # The methods need the terms' names, kinds and shapes, not their values: trace the problem
    # abstractly (eval_shape) instead of running it eagerly, which for a problem with ray
    # tracing costs far more than the trace.
    shapes = jax.eval_shape(problem.terms, model, problem.sample(k_example, jnp.int32(0)))
    objectives, constraints = split_terms(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))
    balancer_params, balancer_state = balancer.init(k_balancer, objectives)
    params = {"model": model, "balancer": balancer_params}
    return TrainState(params, tx.init(params), balancer_state, method.init(constraints), k_train,
                      jnp.int32(0), jnp.int32(0), jnp.int32(0))


@dataclasses.dataclass
class SolveConfig:
    """Everything ``solve`` was asked for, as written to config.json."""

    problem: Optional[dict]
    optimizer: Union[str, None]
    optimizer_kwargs: dict
    constraints: Union[str, None]
    constraint_kwargs: dict
    balancing: Union[str, None]
    balancing_kwargs: dict
    steps: int
    seed: int
    chunk: int
    heldout_every: int
    checkpoint_every: int
    log_every: int
    max_nonfinite: int


def _validate_int(name, value, minimum):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _summarise_chunk(metrics: dict, step: int, heldout: dict, elapsed: float, n: int, log_every: int) -> list:
    """Rows for metrics.jsonl: one at each step that is a multiple of ``log_every``, and one at the chunk's end.

    Each row holds the metrics of its step, ``loss_min`` over the steps since the previous row,
    ``nonfinite`` counted over the same window, and the chunk's speed; the chunk's last row
    also carries the held-out evaluation when one was due.
    """
    metrics = {k: np.asarray(v) for k, v in metrics.items()}
    first = step - n  # steps in this chunk are first + 1 .. step
    ends = sorted({s - first - 1 for s in range(first + 1, step + 1) if s % log_every == 0} | {n - 1})
    rows, begin = [], 0
    for end in ends:
        row = {"step": first + end + 1}
        for k, v in metrics.items():
            row[k] = int(v[begin:end + 1].sum()) if k == "nonfinite" else float(v[end])
        window = metrics["loss"][begin:end + 1]
        row["loss_min"] = float(np.nanmin(window)) if np.isfinite(window).any() else float("nan")
        row["steps_per_second"] = n / max(elapsed, 1e-12)
        rows.append(row)
        begin = end + 1
    rows[-1].update({k: float(v) for k, v in heldout.items()})
    return rows


def _progress(total, initial, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True)


def solve(problem, optimizer="adam", constraints="al", balancing="sum", steps: int = 1000, seed: int = 0,
          chunk: int = 250, out: Optional[str] = None, resume: Optional[str] = None, *,
          optimizer_kwargs: Optional[dict] = None, constraint_kwargs: Optional[dict] = None,
          balancing_kwargs: Optional[dict] = None, heldout_every: Optional[int] = None,
          checkpoint_every: Optional[int] = None, log_every: Optional[int] = None,
          max_nonfinite: int = 50, progress: bool = False,
          problem_config: Optional[dict] = None, callback: Optional[Callable[[dict], None]] = None,
          devices: sharding_lib.Devices = None, extra_config: Optional[dict] = None) -> Result:
    """Train ``problem`` for ``steps`` steps in total; returns ``Result(params, history, state, ...)``.

    ``optimizer``, ``constraints`` and ``balancing`` are names (with their ``*_kwargs``) or
    ready objects. ``out`` is a run directory (config.json, metrics.jsonl, checkpoints/,
    summary.json); without it nothing is written. ``resume`` is a run directory whose latest
    checkpoint is continued (bit for bit on the same machine) up to ``steps`` in total.
    Metrics are logged every ``log_every`` steps (default chunk/10); held-out constraint
    violations on fresh points are computed every ``heldout_every`` steps
    (rounded to chunk ends) and at the end. Non-finite steps are skipped; ``max_nonfinite`` in
    a row stop the run with ``NonFiniteError`` (the last good checkpoint is kept).
    ``devices`` (an int: the first N of ``jax.devices()``, or a list of devices) splits every
    batch over those devices along the points, with all state replicated (``pinnopt.sharding``);
    None runs on the default device. Checkpoints restore onto whatever placement is current.
    ``extra_config`` is merged into config.json when it is written (at the start, so that an
    interrupted run can be resumed from it).
    """
    steps = _validate_int("steps", steps, 1)
    seed = _validate_int("seed", seed, 0)
    chunk = min(_validate_int("chunk", chunk, 1), steps)
    heldout_every = _validate_int("heldout_every", heldout_every if heldout_every is not None else 4 * chunk, 1)
    checkpoint_every = _validate_int("checkpoint_every",
                                     checkpoint_every if checkpoint_every is not None else 4 * chunk, 1)
    max_nonfinite = _validate_int("max_nonfinite", max_nonfinite, 1)
    mesh = sharding_lib.make_mesh(devices)
    # With several processes only the first writes the shared files; all of them checkpoint
    # (orbax coordinates the processes itself).
    primary = mesh is None or sharding_lib.is_primary()
    log_every = _validate_int("log_every", log_every if log_every is not None else max(1, chunk // 10), 1)

    tx = _resolve(optimizers_lib, optimizer, optimizer_kwargs, "optimizer")
    method = _resolve(constraints_lib, constraints, constraint_kwargs, "constraint")
    balancer = _resolve(balancing_lib, balancing, balancing_kwargs, "balancing")

    state = sharding_lib.replicate(init_state(problem, tx, balancer, method, seed), mesh)
    run_dir = RunDir(out) if out is not None else (RunDir(resume) if resume is not None else None)
    history: list = []
    if resume is not None:
        source = RunDir(resume)
        # The template's placement (one device, or replicated on the mesh) is the restored one,
        # whatever placement wrote the checkpoint.
        state = Checkpointer(source.checkpoints).restore(state)
        # On one device: uncommitted arrays like a fresh state's, so the resumed run compiles the
        # same program as a fresh one (and finds it in a persistent compilation cache).
        state = sharding_lib.replicate(state, mesh) if mesh is not None else jax.tree.map(_uncommitted, state)
        history = source.read_metrics(int(state.step))
        if run_dir is not None and run_dir.path == source.path and primary:
            history = run_dir.truncate_metrics(int(state.step))
        elif run_dir is not None and primary:
            run_dir.append_metrics(history)
    checkpointer = Checkpointer(run_dir.checkpoints) if run_dir is not None else None

    config = SolveConfig(
        problem=problem_config if problem_config is not None else
        (problem.config() if hasattr(problem, "config") else {"name": getattr(problem, "name", None)}),
        optimizer=optimizer if isinstance(optimizer, str) else None, optimizer_kwargs=optimizer_kwargs or {},
        constraints=constraints if isinstance(constraints, str) else None,
        constraint_kwargs=constraint_kwargs or {},
        balancing=balancing if isinstance(balancing, str) else None, balancing_kwargs=balancing_kwargs or {},
        steps=steps, seed=seed, chunk=chunk, heldout_every=heldout_every,
        checkpoint_every=checkpoint_every, log_every=log_every, max_nonfinite=max_nonfinite)
    if run_dir is not None and primary:
        run_dir.write_json("config.json", {**dataclasses.asdict(config), **(extra_config or {})})

    step_fn = make_step(problem, tx, balancer, method, mesh)
    # A constant learning rate is logged with the metrics (a schedule is not: it is a function).
    lr = (optimizer_kwargs or {}).get("learning_rate")
    learning_rate = float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None
    chunk_fns: dict[int, Callable] = {}
    # State and metrics stay replicated between chunks; only the batch inside is split.
    placement = {} if mesh is None else {"in_shardings": sharding_lib.replicated(mesh),
                                         "out_shardings": sharding_lib.replicated(mesh)}

    def run_chunk(s, n):
        if n not in chunk_fns:
            chunk_fns[n] = jax.jit(lambda st: jax.lax.scan(step_fn, st, None, length=n), **placement)
        return chunk_fns[n](s)

    heldout_fn = jax.jit(make_heldout(problem, method, mesh),
                         **({} if mesh is None else {"out_shardings": sharding_lib.replicated(mesh)}))
    heldout_root = jax.random.fold_in(jax.random.PRNGKey(seed), HELDOUT_SALT)

    bar = _progress(steps, int(state.step), progress)
    warned: set = set()
    start_step, t_start = int(state.step), time.perf_counter()
    error: Optional[str] = None
    try:
        while int(state.step) < steps:
            n = min(chunk, steps - int(state.step))
            t0 = time.perf_counter()
            state, metrics = run_chunk(state, n)
            if mesh is not None:
                # Every device finishes the chunk before the next program (held-out check, next
                # chunk) starts anywhere: fetching the replicated metrics waits for one device only.
                # XLA's CPU runtime has stalled when a program's all-reduce started on one device
                # while another device was still busy with the previous program.
                state = jax.block_until_ready(state)
            metrics = jax.device_get(metrics)
            elapsed = time.perf_counter() - t0
            step = int(state.step)
            heldout = {}
            if step // heldout_every != (step - n) // heldout_every or step >= steps:
                key = jax.random.fold_in(heldout_root, step)
                heldout = jax.device_get(jax.block_until_ready(heldout_fn(state.params, key, state.step)))
            rows = _summarise_chunk(metrics, step, heldout, elapsed, n, log_every)
            if learning_rate is not None:
                for r in rows:
                    r["learning_rate"] = learning_rate
            row = rows[-1]
            history.extend(rows)
            if run_dir is not None and primary:
                run_dir.append_metrics(rows)
            if callback is not None:
                for r in rows:
                    callback(r)
            for msg in balancer.diagnose(state.balancer_state):
                if msg not in warned:
                    warned.add(msg)
                    warnings.warn(msg, RuntimeWarning, stacklevel=2)
            if bar is not None:
                bar.update(n)
                bar.set_postfix(_postfix(row), refresh=False)
            if int(state.nonfinite_run) >= max_nonfinite:
                error = (f"stopped at step {step}: the loss or the update was non-finite for "
                         f"{int(state.nonfinite_run)} steps in a row (max_nonfinite={max_nonfinite}); "
                         f"{int(state.nonfinite_total)} steps skipped in all. Lower the learning rate or "
                         f"check the problem's terms; the last good checkpoint is kept.")
                break
            if checkpointer is not None and (step // checkpoint_every != (step - n) // checkpoint_every
                                             or step >= steps):
                checkpointer.save(step, state, must_be_finite=(state.params, state.opt_state))
    finally:
        if bar is not None:
            bar.close()

    wall = time.perf_counter() - t_start
    summary = make_summary(problem, history, state, wall, int(state.step) - start_step, error)
    if run_dir is not None and primary:
        run_dir.write_json("summary.json", summary)
    if checkpointer is not None:
        checkpointer.close()
    if error is not None:
        raise NonFiniteError(error)
    return Result(state.params["model"], history, state, summary, run_dir.path if run_dir else None)


def _postfix(row: dict) -> dict:
    post = {"loss": f"{row['loss']:.3e}"}
    viol = [v for k, v in row.items() if k.startswith("violation/")]
    if viol:
        post["viol"] = f"{max(viol):.2e}"
    held = [v for k, v in row.items() if k.startswith("heldout_violation/")]
    if held:
        post["heldout"] = f"{max(held):.2e}"
    return post


def make_summary(problem, history: list, state: TrainState, wall: float, steps_run: int,
                 error: Optional[str]) -> dict:
    last = history[-1] if history else {}
    losses = [r.get("loss_min", math.nan) for r in history]
    finite = [x for x in losses if isinstance(x, float) and math.isfinite(x)]
    summary = {
        "status": "stopped: non-finite" if error else "finished",
        "error": error,
        "steps": int(state.step),
        "steps_this_session": steps_run,
        "wall_seconds": wall,
        "steps_per_second": steps_run / wall if wall > 0 else None,
        "final": {k: v for k, v in last.items() if k != "step"},
        "best_loss": min(finite) if finite else None,
        "nonfinite_total": int(state.nonfinite_total),
    }
    known = getattr(problem, "known_minimum", None)
    if known is not None:
        summary["known_minimum"] = {"value": known.value,
                                    "x": None if known.x is None else np.asarray(known.x).tolist()}
    return summary
