"""What every constraint method shares: its state, the protocol, and how a constraint aggregates.

A constraint owns its aggregation (``Constraint.aggregate``); the methods read it through the
functions here, so every method agrees on what "satisfied" means:

=====================  ===============================  ===============================
                       point-wise (default)             mean (one global condition)
=====================  ===============================  ===============================
reported ``violation``  eq: mean|v|  ineq: mean max(0,v)  eq: |mean v|  ineq: max(0, mean v)
penalty's ``c^2``       eq: mean v^2 ineq: mean max(0,v)^2  eq: (mean v)^2 ineq: max(0, mean v)^2
certificate (max)       eq: max|v|   ineq: max max(0,v)    as the reported violation
=====================  ===============================  ===============================

Every point-wise quantity is zero only when every point satisfies the constraint: errors of
opposite sign at two points never cancel. A constraint of a single value (shape ()) is its
own point, and both columns agree.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp

from pinnopt.constraints.schedule import PenaltyScheduleState
from pinnopt.methods import TermMethod
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


class ConstraintMethod(TermMethod):
    """A constraint method: the ``pinnopt.methods`` protocol over ``{name: Constraint}``.

    init(key, constraints) -> (params, state)      only names, kinds and shapes are read
    loss(constraints, params, state) -> (scalar, metrics)
    update(constraints, params, state) -> state    jittable, once per step
    diagnose(state) -> [warning, ...]
    """

    __slots__ = ()


def _values(constraint: Constraint) -> jax.Array:
    return jnp.asarray(constraint.value)


def violation(constraint: Constraint, signed: bool = False) -> jax.Array:
    """The reported aggregated violation of one constraint, a scalar >= 0 (see the module table).

    ``signed=True`` gives mean(value) for a mean-aggregated equality (what a multiplier of a
    global equality pushes on); it is refused for a point-wise one, whose signed mean means
    nothing.
    """
    value = _values(constraint)
    if constraint.pointwise:
        if signed and constraint.kind == "eq":
            raise ValueError("a signed violation of a point-wise equality is meaningless: its errors "
                             "of opposite sign would cancel (use aggregate='mean' for a global one)")
        return jnp.mean(jnp.abs(value) if constraint.kind == "eq" else jnp.maximum(value, 0))
    m = jnp.mean(value)
    if constraint.kind == "ineq":
        return jnp.maximum(m, 0)
    return m if signed else jnp.abs(m)


def squared_violation(constraint: Constraint) -> jax.Array:
    """The quadratic penalty's c^2: the mean squared point-wise violation, or the squared mean."""
    value = _values(constraint)
    if constraint.pointwise:
        per_point = value if constraint.kind == "eq" else jnp.maximum(value, 0)
        return jnp.mean(jnp.square(per_point))
    m = jnp.mean(value)
    return jnp.square(m if constraint.kind == "eq" else jnp.maximum(m, 0))


def max_violation(constraint: Constraint) -> jax.Array:
    """The certificate's quantity: the largest violation at any point (or of the mean), >= 0."""
    value = _values(constraint)
    if not constraint.pointwise:
        return violation(constraint)
    return jnp.max(jnp.abs(value) if constraint.kind == "eq" else jnp.maximum(value, 0))


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
    """``{"violation/<name>": c}`` with the non-negative reported c, the same for every method."""
    return {f"violation/{n}": jax.lax.stop_gradient(violation(c)) for n, c in constraints.items()}


def zero_loss() -> jax.Array:
    return jnp.zeros((), jnp.float32)
