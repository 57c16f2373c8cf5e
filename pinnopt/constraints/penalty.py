"""The quadratic penalty method, and ``none`` (constraints reported, not enforced)."""
from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp

from pinnopt.constraints.base import (ConstraintMethod, ConstraintState, check_constraints, squared_violation,
                                      violation, violation_metrics, zero_loss)
from pinnopt.constraints.schedule import PenaltyScheduleState, PerName, penalty_schedule
from pinnopt.methods import flat_residuals
from pinnopt.terms import Constraint


def penalty(
    decay: float = 0.9,
    check_every: int = 500,
    min_improvement: float = 0.1,
    factor: float = 10.0,
    mu_init: PerName = 1.0,
    mu_max: PerName = 1e4,
    adaptive: bool = True,
    tolerance: float = 0.0,
) -> ConstraintMethod:
    """Quadratic penalty: loss = sum_i mu_i / 2 * c_i^2.

    c_i^2 follows the constraint's aggregation (``squared_violation``): for a point-wise
    constraint the mean squared violation, mean(value^2) (equality) or mean(max(0, value)^2)
    (inequality), zero only when every point satisfies it; for a mean one the square of the
    mean's violation. mu_i follows the adaptive ``penalty_schedule`` (all arguments are its
    options; ``adaptive=False`` keeps mu fixed at ``mu_init``), fed the reported violation
    (``violation``: mean|value| for a point-wise equality). At a fixed mu the minimiser violates
    the constraint by O(1/mu): exact satisfaction needs mu -> infinity, which is what the
    augmented Lagrangian avoids.
    """
    schedule = penalty_schedule(decay=decay, check_every=check_every, min_improvement=min_improvement,
                                factor=factor, mu_init=mu_init, mu_max=mu_max, adaptive=adaptive,
                                tolerance=tolerance)

    def init(key, constraints: Mapping[str, Constraint]) -> tuple[dict, ConstraintState]:
        del key
        check_constraints(constraints)
        names = {n: 0.0 for n in constraints}
        return {}, ConstraintState(schedule.init(names), {}, jnp.asarray(0, jnp.int32))

    def loss(constraints, params, state: ConstraintState):
        del params
        check_constraints(constraints, state.penalty.mu)
        total, metrics = zero_loss(), violation_metrics(constraints)
        for name, con in constraints.items():
            c2, mu = squared_violation(con), state.penalty.mu[name]
            total = total + 0.5 * mu * c2
            metrics[f"mu/{name}"] = mu
        return total, metrics

    def update(constraints, params, state: ConstraintState) -> ConstraintState:
        del params
        check_constraints(constraints, state.penalty.mu)
        c = {name: violation(con) for name, con in constraints.items()}
        return ConstraintState(schedule.update(c, state.penalty), state.multipliers, state.count + 1)

    def residuals(constraints, params, state: ConstraintState):
        """R with sum(R^2) = loss: sqrt(mu / (2 N)) times the point-wise violations (or of the mean)."""
        del params
        check_constraints(constraints, state.penalty.mu)
        parts = []
        for name, con in constraints.items():
            v = jnp.asarray(con.value)
            if not con.pointwise:
                v = jnp.mean(v)
            per_point = v if con.kind == "eq" else jnp.maximum(v, 0)
            parts.append(jnp.sqrt(state.penalty.mu[name] / (2 * max(per_point.size, 1))) * per_point)
        return flat_residuals(parts)

    return ConstraintMethod(init, loss, update, residuals=residuals)


def none() -> ConstraintMethod:
    """Ignore the constraints: loss 0, state unchanged but the step count; violations still reported."""

    def init(key, constraints: Mapping[str, Constraint]) -> tuple[dict, ConstraintState]:
        del key
        check_constraints(constraints)
        empty = PenaltyScheduleState({}, {}, {}, jnp.asarray(0, jnp.int32))
        return {}, ConstraintState(empty, {}, jnp.asarray(0, jnp.int32))

    def loss(constraints, params, state: ConstraintState):
        del params, state
        check_constraints(constraints)
        return zero_loss(), violation_metrics(constraints)

    def update(constraints, params, state: ConstraintState) -> ConstraintState:
        del constraints, params
        return state._replace(count=state.count + 1)

    def residuals(constraints, params, state):
        del constraints, params, state
        return flat_residuals([])

    return ConstraintMethod(init, loss, update, residuals=residuals)
