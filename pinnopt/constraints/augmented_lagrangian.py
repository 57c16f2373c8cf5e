"""The augmented Lagrangian method, with the multipliers updated inside the compiled step."""
from __future__ import annotations

import math
import numbers
from typing import Mapping

import jax
import jax.numpy as jnp

from pinnopt.constraints.base import (ConstraintMethod, ConstraintState, check_constraints, violation,
                                      violation_metrics, zero_loss)
from pinnopt.constraints.schedule import PerName, check_count, check_per_name, penalty_schedule, resolve_per_name
from pinnopt.terms import Constraint


def _check_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


INEQUALITY_FORMS = ("hinge", "phr")
EQUALITY_FORMS = ("mean", "squared")


def augmented_lagrangian(
    update_every: int = 1,
    lam_init: PerName = 0.0,
    inequality: str = "hinge",
    equality: str = "mean",
    decay: float = 0.9,
    check_every: int = 500,
    min_improvement: float = 0.1,
    factor: float = 10.0,
    mu_init: PerName = 1.0,
    mu_max: PerName = 1e4,
    adaptive: bool = True,
    tolerance: float = 0.0,
) -> ConstraintMethod:
    """Augmented Lagrangian: loss = sum_i lam_i c_i + mu_i / 2 * c_i^2.

    c_i is mean(max(0, value)) for an inequality and, for an equality, the signed mean of the
    values (``equality="mean"``) or their mean square (``equality="squared"``). Every
    ``update_every`` calls of ``update`` (at calls k * update_every), with the c_i of that
    step and the mu_i in force before the schedule moves:

        eq:   lam_i <- lam_i + mu_i c_i
        ineq: lam_i <- max(0, lam_i + mu_i c_i)

    lam_i lives in the state, so it is a traced value of the compiled step: a multiplier
    frozen into the compiled function as a constant would turn this into a plain penalty.
    mu_i follows the adaptive ``penalty_schedule``, fed |c_i|, the quantity the method drives
    to zero (the other arguments are its options). ``lam_init`` is a number or
    ``{constraint name: number}`` (other names start at 0); inequality multipliers, and
    equality ones with ``equality="squared"``, must start non-negative.

    ``inequality`` picks the inequality term:

    - ``"hinge"`` (default): as above with c = mean(max(0, value)) >= 0, right for point-wise
      constraints (a mean of the values <= 0 does not mean every value is). lam can only
      grow, and at lam >= lam* the term lam c is an exact, non-smooth penalty: fixed-step
      first-order descent then chatters across the constraint boundary with an amplitude
      of order learning rate, and a multiplier that overshoots lam* stays there.
    - ``"phr"``: the Powell-Hestenes-Rockafellar form for a constraint g = mean(value) <= 0,
      loss (max(0, lam + mu g)^2 - lam^2) / (2 mu), update lam <- max(0, lam + mu g).
      Smooth at the solution and lam can come back down; meant for scalar (global)
      constraints, since it only enforces the mean. For a scalar constraint it equals the
      hinge form whenever g >= 0.

    ``equality`` picks the equality's c:

    - ``"mean"`` (default): c = mean(value), signed, so the multiplier can push either way.
      It is one aggregate constraint on the whole set of points: errors of opposite sign at
      different points cancel, and c = 0 does not mean value = 0 anywhere. Right for a scalar
      (global) equality, or when only the mean is meant.
    - ``"squared"``: c = mean(value^2), the point-wise form: zero only when every value is.
      The update lam <- lam + mu c stays, and as c >= 0 the multiplier only grows, like the
      hinge form: lam acts as a weight on the mean square that rises while it is violated.
      The gradient of c vanishes at c = 0, so no finite lam meets it exactly: at a
      stationary point the values are of order (objective gradient) / lam and fall as lam
      grows. The adaptive schedule then watches mean(value^2), so ``tolerance`` is in the
      squared units of the values. Also ``get("al", equality="squared")``, or on the command
      line ``-c al --constraint-arg equality=squared``.

    The reported ``violation/<name>`` is mean|value| for an equality whichever form, the same
    for every method.
    """
    update_every = check_count("update_every", update_every)
    lam_init = check_per_name("lam_init", lam_init, _check_finite)
    if inequality not in INEQUALITY_FORMS:
        raise ValueError(f"inequality must be one of {INEQUALITY_FORMS}, got {inequality!r}")
    if equality not in EQUALITY_FORMS:
        raise ValueError(f"equality must be one of {EQUALITY_FORMS}, got {equality!r}")
    phr = inequality == "phr"
    squared = equality == "squared"
    schedule = penalty_schedule(decay=decay, check_every=check_every, min_improvement=min_improvement,
                                factor=factor, mu_init=mu_init, mu_max=mu_max, adaptive=adaptive,
                                tolerance=tolerance)

    def signed_violation(con: Constraint) -> jax.Array:
        """The c that enters lam c and the multiplier update."""
        if phr and con.kind == "ineq":
            return jnp.mean(jnp.asarray(con.value))
        if squared and con.kind == "eq":
            return jnp.mean(jnp.square(jnp.asarray(con.value)))
        return violation(con, signed=True)

    def term(con: Constraint, c, lam, mu):
        if phr and con.kind == "ineq":
            return (jnp.maximum(lam + mu * c, 0) ** 2 - lam**2) / (2 * mu)
        return lam * c + 0.5 * mu * c**2

    def init(constraints: Mapping[str, Constraint]) -> ConstraintState:
        check_constraints(constraints)
        lam0 = resolve_per_name("lam_init", lam_init, list(constraints), 0.0)
        for name, con in constraints.items():
            if (con.kind == "ineq" or squared) and lam0[name] < 0:
                # c >= 0 for these: a negative lam would reward the violation.
                kind = "inequality" if con.kind == "ineq" else "squared equality"
                raise ValueError(f"lam_init for {kind} {name!r} must be non-negative, got {lam0[name]}")
        lam = {n: jnp.asarray(v, jnp.float32) for n, v in lam0.items()}
        return ConstraintState(schedule.init(dict.fromkeys(constraints, 0.0)), lam, jnp.asarray(0, jnp.int32))

    def loss(constraints, state: ConstraintState):
        check_constraints(constraints, state.multipliers)
        total, metrics = zero_loss(), violation_metrics(constraints)
        for name, con in constraints.items():
            c, lam, mu = signed_violation(con), state.multipliers[name], state.penalty.mu[name]
            total = total + term(con, c, lam, mu)
            metrics[f"mu/{name}"] = mu
            metrics[f"lam/{name}"] = lam
        return total, metrics

    def update(constraints, state: ConstraintState) -> ConstraintState:
        check_constraints(constraints, state.multipliers)
        count = state.count + 1
        due = count % update_every == 0
        c = {n: jax.lax.stop_gradient(signed_violation(con)) for n, con in constraints.items()}
        multipliers = {}
        for name, con in constraints.items():
            lam, mu = state.multipliers[name], state.penalty.mu[name]
            stepped = lam + mu * c[name].astype(lam.dtype)
            if con.kind == "ineq":
                stepped = jnp.maximum(stepped, 0)
            multipliers[name] = jnp.where(due, stepped, lam)
        # The schedule watches how far each c is from satisfied (a PHR g < 0 counts as 0).
        progress = {n: jnp.maximum(v, 0) if phr and constraints[n].kind == "ineq" else jnp.abs(v)
                    for n, v in c.items()}
        penalty = schedule.update(progress, state.penalty)
        return ConstraintState(penalty, multipliers, count)

    return ConstraintMethod(init, loss, update)
