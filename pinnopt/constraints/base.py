"""What every constraint method shares: its state, its three functions, the violation c."""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from pinnopt.constraints.schedule import PenaltyScheduleState
from pinnopt.terms import Constraint


class ConstraintState(NamedTuple):
    """Everything a constraint method changes while training (all jnp arrays, per constraint name).

    penalty:     the penalty schedule's state (``penalty.mu[name]`` is the current mu).
    multipliers: ``{name: lam}`` float32 scalars (empty for methods without multipliers).
    count:       int32, number of ``update`` calls so far.
    """

    penalty: PenaltyScheduleState
    multipliers: dict
    count: jax.Array


class ConstraintMethod(NamedTuple):
    """A constraint method as three pure functions.

    init(constraints) -> state              only the names and kinds of the example are used
    loss(constraints, state) -> (scalar, metrics)
        differentiable scalar added to the objective; metrics are flat ``{key: scalar}``
    update(constraints, state) -> state     jittable, once per step, at the step's params
    """

    init: Callable[[Mapping[str, Constraint]], ConstraintState]
    loss: Callable[[Mapping[str, Constraint], ConstraintState], tuple[jax.Array, dict]]
    update: Callable[[Mapping[str, Constraint], ConstraintState], ConstraintState]


def violation(constraint: Constraint, signed: bool = False) -> jax.Array:
    """The aggregated violation c of one constraint, a scalar.

    ineq (value <= 0):  c = mean(max(0, value))
    eq   (value == 0):  c = mean(value) if ``signed`` else mean(|value|)

    The signed form is what the augmented Lagrangian's equality multiplier needs (it can be
    pushed either way); the absolute form is the reported violation and the penalty's c.
    """
    value = jnp.asarray(constraint.value)
    if constraint.kind == "ineq":
        return jnp.mean(jnp.maximum(value, 0))
    return jnp.mean(value) if signed else jnp.mean(jnp.abs(value))


def check_constraints(constraints: Mapping[str, Constraint], state_names=None) -> None:
    """Constraints are ``Constraint``s and, for loss/update, those the state was built for (static checks)."""
    for name, con in constraints.items():
        if not isinstance(con, Constraint):
            raise TypeError(f"constraint {name!r} is a {type(con).__name__}, expected pinnopt.Constraint")
    if state_names is None:
        return
    names, expected = set(constraints), set(state_names)
    if names != expected:
        raise ValueError(f"constraints {sorted(names)} do not match the method state, "
                         f"built for {sorted(expected)} (missing {sorted(expected - names)}, "
                         f"unexpected {sorted(names - expected)})")


def violation_metrics(constraints: Mapping[str, Constraint]) -> dict[str, jax.Array]:
    """``{"violation/<name>": c}`` with the non-negative c, the same for every method."""
    return {f"violation/{n}": jax.lax.stop_gradient(violation(c)) for n, c in constraints.items()}


def zero_loss() -> jax.Array:
    return jnp.zeros((), jnp.float32)
