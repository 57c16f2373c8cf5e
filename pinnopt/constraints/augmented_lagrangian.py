"""The augmented Lagrangian method, with the multipliers updated inside the compiled step."""
from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from typing import Mapping, Optional

import jax
import jax.numpy as jnp

from pinnopt.constraints.base import (ConstraintMethod, ConstraintState, check_constraints, violation_metrics,
                                      zero_loss)
from pinnopt.constraints.schedule import PerName, check_count, check_per_name, penalty_schedule, resolve_per_name
from pinnopt.methods import flat_residuals
from pinnopt.terms import Constraint


def _check_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


INEQUALITY_FORMS = ("hinge", "phr")
EQUALITY_FORMS = ("mean", "squared")  # deprecated option, see ``equality``


def augmented_lagrangian(
    update_every: int = 1,
    lam_init: PerName = 0.0,
    inequality: str = "hinge",
    equality: Optional[str] = None,
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

    c_i follows the constraint's aggregation (``Constraint.aggregate``):

    ===========  ==================================  =============================
                 point-wise (default)                mean (global)
    ===========  ==================================  =============================
    equality     c = mean(value^2) >= 0              c = mean(value), signed
    inequality   c = mean(max(0, value)) >= 0        c = max(0, mean(value))
    ===========  ==================================  =============================

    so a point-wise c is zero only when every point satisfies the constraint. The loss term is
    lam_i c_i + mu_i / 2 * c_i^2, except for a point-wise equality, whose c is already quadratic
    in the values: (lam_i + mu_i / 2) c_i, i.e. lam_i mean(value^2) plus the point-wise quadratic
    penalty mu_i / 2 mean(value^2). Every ``update_every`` calls of ``update`` (at calls
    k * update_every), with the c_i of that step and the mu_i in force before the schedule moves:

        eq:   lam_i <- lam_i + mu_i c_i
        ineq: lam_i <- max(0, lam_i + mu_i c_i)

    lam_i lives in the state, so it is a traced value of the compiled step: a multiplier
    frozen into the compiled function as a constant would turn this into a plain penalty.
    mu_i follows the adaptive ``penalty_schedule``, fed |c_i|, the quantity the method drives
    to zero (the other arguments are its options). ``lam_init`` is a number or
    ``{constraint name: number}`` (other names start at 0); the multipliers of constraints
    whose c is >= 0 (inequalities, point-wise equalities) must start non-negative.

    One multiplier for a whole set of points cannot be a Lagrange multiplier of every point:
    c = mean(value^2) >= 0 vanishes with its gradient wherever the constraint holds, so no
    finite lam meets it exactly (the constraint qualification fails). lam is then a weight on
    the mean square that rises while the constraint is violated, on top of the adaptive mu;
    at a stationary point the values are of order (objective gradient) / (lam + mu / 2) and
    fall as it grows. The schedule watches mean(value^2), so ``tolerance`` is in the squared
    units of the values. Measured with ``examples/poisson_1d.py`` (-u'' = pi^2 sin(pi x),
    u(0) = u(1) = 0, a 1-32-32-32-1 tanh MLP, 128 fresh points a step, Adam 1e-2, 1,500 steps):
    ``pinnopt solve examples/poisson_1d.py:make_problem --lr 1e-2 --steps 1500`` ends at a
    relative L2 error of 5.4e-4, and with ``-c penalty`` at 5.3e-3. (Two forms tried while this
    was written and not kept, so no command reproduces them: lam c + mu/2 c^2 on c = mean(value^2)
    ended near 0.05, its quadratic part being quartic in the values; the exact-penalty form on
    c = rms(value) near 0.03, chattering once lam was large.) A single value (shape ()) is its own
    point and uses the signed form, whose multiplier converges.

    ``inequality`` picks the inequality term:

    - ``"hinge"`` (default): as above. lam can only grow, and at lam >= lam* the term lam c
      is an exact, non-smooth penalty: fixed-step first-order descent then chatters across
      the constraint boundary with an amplitude of order learning rate, and a multiplier that
      overshoots lam* stays there.
    - ``"phr"``: the Powell-Hestenes-Rockafellar form for g = mean(value) <= 0, loss
      (max(0, lam + mu g)^2 - lam^2) / (2 mu), update lam <- max(0, lam + mu g). Smooth at the
      solution and lam can come back down. It enforces only the mean, so it applies to
      constraints of one value or declared ``aggregate="mean"``; a point-wise inequality of
      several points under ``"phr"`` is an error at ``init`` that names it.

    ``equality`` is deprecated: aggregation belongs to the constraint. ``"squared"`` is what
    a point-wise equality now does by default; ``"mean"`` treats every equality as declared
    ``aggregate="mean"`` (the former default, whose errors of opposite sign cancel).
    """
    update_every = check_count("update_every", update_every)
    lam_init = check_per_name("lam_init", lam_init, _check_finite)
    if inequality not in INEQUALITY_FORMS:
        raise ValueError(f"inequality must be one of {INEQUALITY_FORMS}, got {inequality!r}")
    if equality is not None:
        if equality not in EQUALITY_FORMS:
            raise ValueError(f"equality must be one of {EQUALITY_FORMS}, got {equality!r}")
        warnings.warn("augmented_lagrangian(equality=...) is deprecated: a Constraint's aggregate "
                      "('pointwise', the default, or 'mean') says how it aggregates", DeprecationWarning,
                      stacklevel=2)
    phr = inequality == "phr"
    mean_equalities = equality == "mean"
    schedule = penalty_schedule(decay=decay, check_every=check_every, min_improvement=min_improvement,
                                factor=factor, mu_init=mu_init, mu_max=mu_max, adaptive=adaptive,
                                tolerance=tolerance)

    def as_declared(con: Constraint) -> Constraint:
        if mean_equalities and con.kind == "eq" and con.aggregate != "mean":
            return dataclasses.replace(con, aggregate="mean")
        return con

    def multiplier_violation(con: Constraint) -> jax.Array:
        """The c that enters lam c + mu/2 c^2 and the multiplier update."""
        value = jnp.asarray(con.value)
        if con.kind == "eq":
            return jnp.mean(jnp.square(value)) if con.pointwise else jnp.mean(value)
        if phr:
            return jnp.mean(value)
        return jnp.mean(jnp.maximum(value, 0)) if con.pointwise else jnp.maximum(jnp.mean(value), 0)

    def term(con: Constraint, c, lam, mu):
        if phr and con.kind == "ineq":
            return (jnp.maximum(lam + mu * c, 0) ** 2 - lam**2) / (2 * mu)
        if con.kind == "eq" and con.pointwise:
            # c = mean(value^2) is already quadratic in the values: its penalty is mu/2 c, the
            # point-wise quadratic penalty, not the quartic mu/2 c^2.
            return (lam + 0.5 * mu) * c
        return lam * c + 0.5 * mu * c**2

    def init(key, constraints: Mapping[str, Constraint]) -> tuple[dict, ConstraintState]:
        del key
        check_constraints(constraints)
        constraints = {n: as_declared(c) for n, c in constraints.items()}
        lam0 = resolve_per_name("lam_init", lam_init, list(constraints), 0.0)
        for name, con in constraints.items():
            if phr and con.kind == "ineq" and con.pointwise:
                raise ValueError(f"inequality='phr' enforces only the mean of a constraint, and {name!r} is "
                                 f"point-wise ({jnp.shape(con.value)[0]} points): use the default 'hinge', "
                                 "or declare it Constraint(..., aggregate='mean') if the mean is what you mean")
            if (con.kind == "ineq" or con.pointwise) and lam0[name] < 0:
                # c >= 0 for these: a negative lam would reward the violation.
                kind = "inequality" if con.kind == "ineq" else "point-wise equality"
                raise ValueError(f"lam_init for {kind} {name!r} must be non-negative, got {lam0[name]}")
        lam = {n: jnp.asarray(v, jnp.float32) for n, v in lam0.items()}
        return {}, ConstraintState(schedule.init(dict.fromkeys(constraints, 0.0)), lam, jnp.asarray(0, jnp.int32))

    def loss(constraints, params, state: ConstraintState):
        del params
        check_constraints(constraints, state.multipliers)
        constraints = {n: as_declared(c) for n, c in constraints.items()}
        total, metrics = zero_loss(), violation_metrics(constraints)
        for name, con in constraints.items():
            c, lam, mu = multiplier_violation(con), state.multipliers[name], state.penalty.mu[name]
            total = total + term(con, c, lam, mu)
            metrics[f"mu/{name}"] = mu
            metrics[f"lam/{name}"] = lam
        return total, metrics

    def update(constraints, params, state: ConstraintState) -> ConstraintState:
        del params
        check_constraints(constraints, state.multipliers)
        constraints = {n: as_declared(c) for n, c in constraints.items()}
        count = state.count + 1
        due = count % update_every == 0
        c = {n: jax.lax.stop_gradient(multiplier_violation(con)) for n, con in constraints.items()}
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

    def residuals(constraints, params, state: ConstraintState):
        """R with sum(R^2) = loss + a constant (the least-squares form, for Gauss-Newton and kin):

        point-wise equality  sqrt((lam + mu/2) / N) value
        otherwise            sqrt(mu / 2) (c + lam / mu)         (lam c + mu/2 c^2 + lam^2 / (2 mu))
        PHR inequality       max(0, lam + mu g) / sqrt(2 mu)
        """
        del params
        check_constraints(constraints, state.multipliers)
        parts = []
        for name, con in {n: as_declared(c) for n, c in constraints.items()}.items():
            lam, mu = state.multipliers[name], state.penalty.mu[name]
            c = multiplier_violation(con)
            if con.kind == "eq" and con.pointwise:
                v = jnp.asarray(con.value)
                parts.append(jnp.sqrt((lam + 0.5 * mu) / v.size) * v)
            elif phr and con.kind == "ineq":
                parts.append(jnp.maximum(lam + mu * c, 0) / jnp.sqrt(2 * mu))
            else:
                parts.append(jnp.sqrt(0.5 * mu) * (c + lam / mu))
        return flat_residuals(parts)

    return ConstraintMethod(init, loss, update, residuals=residuals)
