"""The training state pytree, a fresh one, and the checks a problem passes before anything compiles."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from pinnopt.terms import Constraint, split_terms


class TrainState(NamedTuple):
    """All state of a run; a checkpoint holds exactly this.

    ``params`` is ``{"model": problem params, "balancer": balancer params, "constraints":
    constraint-method params}``: everything the optimizer moves. ``opt_state`` holds one
    optimizer state per phase (a single optimizer is one phase); only the current phase's
    changes, and a phase's state is initialised afresh from the parameters when it begins,
    so the structure is the same at every step and any checkpoint restores into it.
    """

    params: Any
    opt_state: tuple
    balancer_state: Any
    constraint_state: Any
    key: jax.Array  # training PRNG key (raw uint32)
    step: jax.Array  # int32, steps taken (including skipped non-finite ones)
    nonfinite_run: jax.Array  # int32, consecutive skipped steps
    nonfinite_total: jax.Array  # int32, all skipped steps
    phase: jax.Array  # int32, index of the current optimizer phase
    phase_start: jax.Array  # int32, the step at which the current phase began


class Result(NamedTuple):
    params: Any  # the problem's (model) parameters
    history: list  # one dict per logged step, as in metrics.jsonl
    state: TrainState
    summary: dict
    run_dir: Optional[str]


class NonFiniteError(RuntimeError):
    """Raised when the loss or the update stays non-finite for ``max_nonfinite`` steps in a row."""


def example_terms(problem, model, key: jax.Array) -> tuple[dict, dict]:
    """(objectives, constraints) of one sampled batch, as zeros of the right shapes and dtypes.

    The methods need the terms' names, kinds and shapes, not their values: the problem is
    traced abstractly (``eval_shape``) instead of run eagerly, which for a problem with ray
    tracing costs far more than the trace. Shape errors surface here, naming the term.
    """
    shapes = jax.eval_shape(problem.terms, model, problem.sample(key, jnp.int32(0)))
    return split_terms(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))


def check_evaluate(problem, model) -> None:
    """``problem.evaluate(params)`` returns ``{name: scalar}``: checked abstractly, before compiling."""
    if not hasattr(problem, "evaluate"):
        return
    out = jax.eval_shape(problem.evaluate, model)
    if not isinstance(out, dict):
        raise TypeError(f"problem.evaluate(params) must return a dict {{name: scalar}}, got {type(out).__name__}")
    for name, value in out.items():
        shape = getattr(value, "shape", None)
        if shape != ():
            raise ValueError(f"problem.evaluate(params)[{name!r}] must be a scalar (shape ()), got shape "
                             f"{shape}: reduce it (e.g. jnp.mean, or [0] of a (1,) array)")


def constraint_specs(constraints: dict) -> dict:
    """``{name: {"kind", "aggregate", "tol", "points"}}``: the static facts a certificate reports."""
    out = {}
    for name, con in constraints.items():
        assert isinstance(con, Constraint)
        out[name] = {"kind": con.kind, "aggregate": con.aggregate if con.pointwise else "mean",
                     "tol": con.tol, "points": int(jnp.size(con.value))}
    return out


def init_state(problem, tx, balancer, method, seed: int) -> TrainState:
    """A fresh state: model, balancer and constraint-method parameters, optimizer and method states, keys.

    ``tx`` is one optax transformation or a sequence of them, one per phase.
    """
    return init_state_and_constraints(problem, tx, balancer, method, seed)[0]


def cast_floating(tree, dtype):
    """Every floating leaf of ``tree`` as ``dtype`` (integers, keys and the rest unchanged)."""
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x,
                        tree)


def init_state_and_constraints(problem, tx, balancer, method, seed: int,
                               param_dtype=None) -> tuple[TrainState, dict]:
    """``init_state`` and the example constraints it was built from (their static facts feed the certificates).

    ``param_dtype`` (e.g. float64 for a run in double precision) casts every trainable
    parameter before the optimizer states are built from them.
    """
    root = jax.random.PRNGKey(seed)
    k_model, k_balancer, k_example, k_train = jax.random.split(root, 4)
    k_constraints = jax.random.fold_in(k_balancer, 1)
    model = problem.init(k_model)
    if param_dtype is not None:
        model = cast_floating(model, param_dtype)
    objectives, constraints = example_terms(problem, model, k_example)
    balancer_params, balancer_state = balancer.init(k_balancer, objectives)
    constraint_params, constraint_state = method.init(k_constraints, constraints)
    params = {"model": model, "balancer": balancer_params, "constraints": constraint_params}
    if param_dtype is not None:
        params = cast_floating(params, param_dtype)
    txs = (tx,) if hasattr(tx, "init") else tuple(tx)  # a transformation is itself a (named) tuple
    state = TrainState(params, tuple(t.init(params) for t in txs), balancer_state, constraint_state, k_train,
                       jnp.int32(0), jnp.int32(0), jnp.int32(0), jnp.int32(0), jnp.int32(0))
    return state, constraints
