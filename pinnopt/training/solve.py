"""``solve``: resolve the parts by name, build the state, run the loop, write the run directory, certify.

The pure step lives in ``step``, the chunk loop in ``loop``, certificates in ``certify``;
this module wires them to the registries and to the files of a run (``pinnopt.io``).
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from typing import Callable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from pinnopt import balancing as balancing_lib
from pinnopt import constraints as constraints_lib
from pinnopt import sharding as sharding_lib
from pinnopt.io.checkpoint import Checkpointer
from pinnopt.io.rundir import RunDir, jsonable_or_none
from pinnopt.registry import spec_of
from pinnopt.training.certify import all_certified, certify, extra_certificates
from pinnopt.training.loop import LoopOptions, run_chunks
from pinnopt.training.phases import record as record_phases
from pinnopt.training.phases import resolve_phases, stagnation
from pinnopt.training.precision import PRECISIONS, InFloat64
from pinnopt.training.state import (NonFiniteError, Result, TrainState, check_evaluate, constraint_specs,
                                    init_state_and_constraints)
from pinnopt.training.step import COLLOCATION_SALT, make_heldout, make_step

HELDOUT_SALT = 0x48454C44  # separates the held-out key stream from the training stream


@dataclasses.dataclass
class SolveConfig:
    """Everything ``solve`` was asked for, as written to config.json (enough to rebuild every part)."""

    problem: Optional[dict]
    problem_spec: Optional[dict]  # {"name", "options"} when the problem came from a registry's get
    optimizer: Union[str, list, None]  # a name, or a list of phases {name, options, steps}
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
    certify_batches: int
    resample_every: int
    precision: str


def _resolve(lib, spec, kwargs, kind):
    if isinstance(spec, str):
        return lib.get(spec, **(kwargs or {}))
    if kwargs:
        raise ValueError(f"{kind}_kwargs given but {kind} is not a name")
    return spec


def _recorded(name_or_object, kwargs, kind: str) -> tuple[Optional[str], dict]:
    """(name, options) to write to config.json: from the name given, or from the object's ``Spec``."""
    if isinstance(name_or_object, str):
        return name_or_object, dict(kwargs or {})
    spec = spec_of(name_or_object)
    if spec is None:
        warnings.warn(f"the {kind} passed to solve was not built by pinnopt.{kind}.get (it carries no "
                      "name), so config.json cannot record it and a resumed run cannot rebuild it",
                      UserWarning, stacklevel=3)
        return None, {}
    return spec.name, dict(spec.options)


def _validate_int(name, value, minimum):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_collocation(balancer, resample_every: int) -> None:
    """A balancer with a weight per collocation point (``requires_fixed_points``) needs one fixed set."""
    if getattr(balancer, "requires_fixed_points", False) and resample_every != 0:
        name = spec_of(balancer).name if spec_of(balancer) is not None else type(balancer).__name__
        raise ValueError(f"the {name} balancer keeps a weight per collocation point, so it needs one fixed set of "
                         f"points: use resample_every=0 (--resample-every 0), got resample_every={resample_every}")


def _uncommitted(x):
    return jnp.asarray(np.asarray(x))


def _problem_description(problem, problem_config) -> dict:
    if problem_config is not None:
        return problem_config
    if hasattr(problem, "config"):
        return problem.config()
    spec = spec_of(problem)
    if spec is not None:
        return {"name": spec.name, **spec.options}
    return {"name": getattr(problem, "name", None)}


def solve(problem, optimizer="adam", constraints="al", balancing="sum", steps: Optional[int] = None,
          seed: int = 0, chunk: int = 250, out: Optional[str] = None, resume: Optional[str] = None, *,
          optimizer_kwargs: Optional[dict] = None, constraint_kwargs: Optional[dict] = None,
          balancing_kwargs: Optional[dict] = None, resample_every: int = 1, precision: str = "float32",
          heldout_every: Optional[int] = None, checkpoint_every: Optional[int] = None,
          log_every: Optional[int] = None, max_nonfinite: int = 50, certify_batches: int = 4,
          progress: bool = False, problem_config: Optional[dict] = None,
          callback: Optional[Callable[[dict], None]] = None, devices: sharding_lib.Devices = None,
          extra_config: Optional[dict] = None, time_limit: Optional[float] = None) -> Result:
    """Train ``problem`` for ``steps`` steps in total; returns ``Result(params, history, state, summary, run_dir)``.

    ``optimizer``, ``constraints`` and ``balancing`` are names (with their ``*_kwargs``) or
    objects built by the registries' ``get`` (which carry their name and options, so
    config.json records them either way). ``optimizer`` may also be a list of phases,
    ``[(name or transformation, hyperparameters, steps), ...]``, run one after the other on the
    same parameters (``steps`` is then their sum; see ``phases``); a single optimizer runs
    ``steps`` steps (default 1000).

    ``resample_every`` is the collocation policy: 1 draws fresh points every step, K > 1 keeps
    each set for K steps, 0 draws one set from the seed and keeps it (full batch; held-out
    checks still use fresh points). ``precision="float64"`` runs the whole solve (parameters,
    points, optimizer, checkpoints) in double precision, inside a ``jax.enable_x64`` context:
    nothing global changes. ``out`` is a run directory (config.json,
    metrics.jsonl, checkpoints/, summary.json), created only once every option has been
    validated; without it nothing is written. ``resume`` is a run directory whose latest
    readable checkpoint is continued (bit for bit on the same machine) up to ``steps`` in
    total; an unreadable newer checkpoint is skipped with a warning that says which and why.

    Metrics are logged every ``log_every`` steps (default chunk/10); held-out violations on
    fresh points every ``heldout_every`` steps (rounded to chunk ends) and at the end. At the
    end every constraint is certified on ``certify_batches`` fresh batches: the summary's
    ``certificates`` give each one's largest held-out violation against its ``tol`` and
    ``certified`` says whether all hold (None without constraints or extra certificates). A
    problem with a method ``extra_certificates(params) -> {name: {"max_violation", "tol", ...}}``
    adds certificates of its own, computed once here from the final parameters (conditions that
    are no term of the loss; ``pinnopt.training.certify.extra_certificates``): they count in
    ``certified`` like the constraints'.

    Non-finite steps are skipped; ``max_nonfinite`` in a row stop the run with
    ``NonFiniteError`` (the last good checkpoint is kept). ``devices`` (an int: the first N of
    ``jax.devices()``, or a list of devices) splits every batch over those devices along the
    points, with all state replicated (``pinnopt.sharding``); None runs on the default device.
    ``extra_config`` is merged into config.json when it is written (at the start, so that an
    interrupted run can be resumed from it). ``time_limit`` (seconds of wall time, compilation
    included) ends the run at the first chunk end past it, in whatever phase, and says so in
    the phase log (``ended``) and in ``summary["stopped"]``; the run is certified as usual.
    """
    phases = resolve_phases(optimizer, optimizer_kwargs, steps)
    steps = sum(p.steps for p in phases)
    seed = _validate_int("seed", seed, 0)
    chunk = min(_validate_int("chunk", chunk, 1), steps)
    heldout_every = _validate_int("heldout_every", heldout_every if heldout_every is not None else 4 * chunk, 1)
    checkpoint_every = _validate_int("checkpoint_every",
                                     checkpoint_every if checkpoint_every is not None else 4 * chunk, 1)
    max_nonfinite = _validate_int("max_nonfinite", max_nonfinite, 1)
    resample_every = _validate_int("resample_every", resample_every, 0)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    certify_batches = _validate_int("certify_batches", certify_batches, 1)
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    log_every = _validate_int("log_every", log_every if log_every is not None else max(1, chunk // 10), 1)
    if resume is not None and not RunDir.exists(resume):
        raise FileNotFoundError(f"resume={resume!r} is not a run directory")
    with jax.enable_x64(precision == "float64"):
        return _solve(problem, phases, constraints, balancing, seed, chunk, out, resume, constraint_kwargs,
                      balancing_kwargs, resample_every, precision, heldout_every, checkpoint_every, log_every,
                      max_nonfinite, certify_batches, progress, problem_config, callback, devices, extra_config,
                      time_limit)


def _solve(problem, phases, constraints, balancing, seed, chunk, out, resume, constraint_kwargs, balancing_kwargs,
           resample_every, precision, heldout_every, checkpoint_every, log_every, max_nonfinite, certify_batches,
           progress, problem_config, callback, devices, extra_config, time_limit=None) -> Result:
    steps = sum(p.steps for p in phases)
    if precision == "float64":
        problem = InFloat64(problem)
    method = _resolve(constraints_lib, constraints, constraint_kwargs, "constraints")
    balancer = _resolve(balancing_lib, balancing, balancing_kwargs, "balancing")
    check_collocation(balancer, resample_every)
    mesh = sharding_lib.make_mesh(devices)
    # With several processes only the first writes the shared files; all of them checkpoint
    # (orbax coordinates the processes itself).
    primary = mesh is None or sharding_lib.is_primary()

    txs = tuple(p.tx for p in phases)
    fresh, example_constraints = init_state_and_constraints(
        problem, txs, balancer, method, seed, param_dtype=jnp.float64 if precision == "float64" else None)
    check_evaluate(problem, fresh.params["model"])
    specs = constraint_specs(example_constraints)
    state = sharding_lib.replicate(fresh, mesh)

    # Every option is valid: only now does anything reach the disk.
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

    names = {kind: _recorded(obj, kw, kind) for kind, obj, kw in (
        ("constraints", constraints, constraint_kwargs), ("balancing", balancing, balancing_kwargs))}
    names["optimizers"] = record_phases(phases)
    config = SolveConfig(
        problem=_problem_description(problem, problem_config),
        problem_spec=spec_of(problem).to_config() if spec_of(problem) is not None else None,
        optimizer=names["optimizers"][0], optimizer_kwargs=names["optimizers"][1],
        constraints=names["constraints"][0], constraint_kwargs=names["constraints"][1],
        balancing=names["balancing"][0], balancing_kwargs=names["balancing"][1],
        steps=steps, seed=seed, chunk=chunk, heldout_every=heldout_every, checkpoint_every=checkpoint_every,
        log_every=log_every, max_nonfinite=max_nonfinite, certify_batches=certify_batches,
        resample_every=resample_every, precision=precision)
    if run_dir is not None and primary:
        run_dir.write_json("config.json", jsonable_or_none({**dataclasses.asdict(config), **(extra_config or {})}))

    collocation_key = jax.random.fold_in(jax.random.PRNGKey(seed), COLLOCATION_SALT)
    step_fns = [make_step(problem, p.tx, balancer, method, mesh, phase=i, resample_every=resample_every,
                          collocation_key=collocation_key) for i, p in enumerate(phases)]
    chunk_fns: dict[tuple, Callable] = {}
    # State and metrics stay replicated between chunks; only the batch inside is split.
    placement = {} if mesh is None else {"in_shardings": sharding_lib.replicated(mesh),
                                         "out_shardings": sharding_lib.replicated(mesh)}

    heldout_fn = jax.jit(make_heldout(problem, mesh),
                         **({} if mesh is None else {"out_shardings": sharding_lib.replicated(mesh)}))
    heldout_root = jax.random.fold_in(jax.random.PRNGKey(seed), HELDOUT_SALT)

    def heldout(s, step):
        key = jax.random.fold_in(heldout_root, step)
        return jax.device_get(jax.block_until_ready(heldout_fn(s.params, key, s.step)))

    def on_rows(rows):
        history.extend(rows)
        if run_dir is not None and primary:
            run_dir.append_metrics(rows)
        if callback is not None:
            for r in rows:
                callback(r)

    def save(step, s):
        checkpointer.save(step, s, must_be_finite=(s.params, s.opt_state[int(s.phase)]))

    start_step, t_start = int(state.step), time.perf_counter()
    error, phase_log = None, []
    out_of_time = f"time limit of {time_limit:g} s reached" if time_limit is not None else None

    def should_stop(metrics):
        reason = stagnation(metrics)
        if reason is None and time_limit is not None and time.perf_counter() - t_start > time_limit:
            reason = out_of_time
        return reason

    while True:
        p = int(state.phase)
        phase = phases[p]

        def run_chunk(s, n, p=p):
            if (p, n) not in chunk_fns:
                chunk_fns[(p, n)] = jax.jit(lambda st: jax.lax.scan(step_fns[p], st, None, length=n), **placement)
            return chunk_fns[(p, n)](s)

        # A constant learning rate is logged with the metrics (a schedule is not: it is a function).
        lr = phase.options.get("learning_rate")
        options = LoopOptions(steps=int(state.phase_start) + phase.steps, chunk=chunk, log_every=log_every,
                              heldout_every=heldout_every, checkpoint_every=checkpoint_every,
                              max_nonfinite=max_nonfinite, progress=progress,
                              learning_rate=float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool)
                              else None, wait_for_devices=mesh is not None)
        state, error, stopped = run_chunks(state, options, run_chunk=run_chunk, heldout=heldout, on_rows=on_rows,
                                           diagnose=lambda s: balancer.diagnose(s.balancer_state),
                                           save=save if checkpointer is not None else None,
                                           should_stop=should_stop)
        phase_log.append({"phase": p, "optimizer": phase.name, "start": int(state.phase_start),
                          "end": int(state.step), "planned_steps": phase.steps,
                          "ended": "error" if error else (stopped or "completed its steps")})
        if error is not None or p == len(phases) - 1 or (time_limit is not None and stopped == out_of_time):
            break
        # The next phase starts from the current parameters with a fresh optimizer state.
        following = list(state.opt_state)
        following[p + 1] = phases[p + 1].tx.init(state.params)
        state = sharding_lib.replicate(state._replace(opt_state=tuple(following), phase=jnp.int32(p + 1),
                                                      phase_start=jnp.int32(int(state.step))), mesh) \
            if mesh is not None else state._replace(opt_state=tuple(following), phase=jnp.int32(p + 1),
                                                    phase_start=jnp.int32(int(state.step)))
    wall = time.perf_counter() - t_start

    certificates = certify(heldout_fn, state.params, heldout_root, state.step, specs, certify_batches)
    # The problem's own end-of-run checks (optional ``problem.extra_certificates``), on a host copy.
    certificates.update(extra_certificates(problem, jax.device_get(state.params["model"]), taken=certificates))
    summary = make_summary(problem, history, state, wall, int(state.step) - start_step, error, certificates)
    summary["phases"] = phase_log  # this session's phases (a resumed run lists those it ran)
    summary["precision"] = precision
    summary["stopped"] = out_of_time if time_limit is not None and phase_log and phase_log[-1]["ended"] == out_of_time \
        else None
    if run_dir is not None and primary:
        run_dir.write_json("summary.json", summary)
    if checkpointer is not None:
        checkpointer.close()
    if error is not None:
        raise NonFiniteError(error)
    return Result(state.params["model"], history, state, summary, run_dir.path if run_dir else None)


def make_summary(problem, history: list, state: TrainState, wall: float, steps_run: int,
                 error: Optional[str], certificates: Optional[dict] = None) -> dict:
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
        "certificates": certificates or {},
        "certified": all_certified(certificates or {}),
    }
    known = getattr(problem, "known_minimum", None)
    if known is not None:
        summary["known_minimum"] = {"value": known.value,
                                    "x": None if known.x is None else np.asarray(known.x).tolist()}
    return summary
