"""Residual-based attention (Anagnostopoulos, Toscano, Stergiopulos & Karniadakis 2024,
"Residual-based attention in physics-informed neural networks", Comput. Methods Appl. Mech.
Engrg. 421, 116805): a weight per collocation point that accumulates the point's relative
residual, so the points that stay hard get the most attention.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

from pinnopt.balancing.base import PointBalancer, check_names, check_objectives, mean, raw_metrics
from pinnopt.methods import flat_residuals


class RBAState(NamedTuple):
    step: jax.Array  # int32, number of updates so far
    weights: dict  # {term: (N_k,) lambda_{k,i}}, one per collocation point of the weighted terms


def magnitudes(obj) -> jax.Array:
    """|r_i|: of the residual when the term carries one, else sqrt(l_i) (the same for l = r^2)."""
    if obj.residual is not None:
        return jnp.abs(obj.residual)
    return jnp.sqrt(jnp.maximum(obj.loss, 0.0))


def attention_step(weights: jax.Array, r_abs: jax.Array, gamma: float, eta: float) -> jax.Array:
    """``lambda_i <- gamma lambda_i + eta |r_i| / max_j |r_j|`` (no change of the sum where every r_j is 0)."""
    r_abs = jax.lax.stop_gradient(r_abs)
    top = jnp.max(r_abs)
    relative = jnp.where(top > 0, r_abs / jnp.where(top > 0, top, 1.0), 0.0)
    return (gamma * weights + eta * relative).astype(weights.dtype)


def _positive(name, value, upper=None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0 \
            or (upper is not None and value >= upper):
        bound = f"in [0, {upper})" if upper is not None else ">= 0"
        raise ValueError(f"rba balancer: {name} must be a finite number {bound}, got {value!r}")
    return float(value)


def rba(*, gamma: float = 0.999, eta: float = 0.01, initial: float = 0.0,
        terms: Optional[Sequence[str]] = None) -> PointBalancer:
    """Residual-based attention: per point i of a weighted term k,

        lambda_i <- gamma lambda_i + eta |r_i| / max_j |r_j|        (once per step, after the loss)
        L_k = mean_i (lambda_i r_i)^2 = mean_i lambda_i^2 l_i,       loss = sum_k L_k

    and ``L_k = mean_i l_i`` for the terms not weighted. The weights are bounded by
    ``eta / (1 - gamma)`` (10 with the defaults, the paper's gamma = 0.999 and eta = 0.01) and
    stay outside the gradient. The squared form ``(lambda r)^2`` and the start at 0 are those
    of the authors' code (github.com/soanagno/rba-pinns); ``|r|`` is the residual's when the
    term carries one, else ``sqrt(l)`` (the same for ``l = r^2``).

    One difference in order: the authors update the weights from the current residuals and
    then take the loss; here the loss of step k uses the weights up to step k-1 (so, from
    ``initial = 0``, the first step has no attention loss) and the update follows. The loss is
    then one fixed function within a step, which the line searches and the least-squares
    optimizers need.

    The weights belong to the points: the run must keep one collocation set (``solve(...,
    resample_every=0)``, ``--resample-every 0``); ``solve`` refuses any other value
    (``requires_fixed_points``), and a term whose number of points changes is an error.

    Args:
      gamma: decay in [0, 1).
      eta: the attention's learning rate, >= 0.
      initial: the weights' starting value, >= 0 (0 as the authors).
      terms: names of the terms to weight (default: every term with a loss per point, shape (N,)).

    Metrics: ``rba/w_mean/<term>``, ``rba/w_max/<term>``. Least-squares form ``lambda_i r_i /
    sqrt(N_k)`` (and ``r_i / sqrt(N_k)`` for the others), for terms that carry residuals.
    """
    gamma = _positive("gamma", gamma, upper=1.0)
    eta = _positive("eta", eta)
    initial = _positive("initial", initial)
    selected = check_names(terms, "terms", "rba")

    def weighted(objectives) -> list:
        if selected is None:
            return [k for k, o in objectives.items() if jnp.ndim(o.loss) == 1]
        missing = sorted(set(selected) - set(objectives))
        if missing:
            raise ValueError(f"rba balancer: terms {missing} are not among the objectives {sorted(objectives)}")
        for k in selected:
            if jnp.ndim(objectives[k].loss) != 1:
                raise ValueError(f"rba balancer: term {k!r} has a single loss value (shape ()), so no points to "
                                 "weight: leave it out of terms")
        return list(selected)

    def check(objectives, state=None):
        objectives = check_objectives(objectives, "rba")
        if state is not None:
            for k, w in state.weights.items():
                if k not in objectives:
                    raise ValueError(f"rba balancer: initialised for terms {sorted(state.weights)}, "
                                     f"got terms {sorted(objectives)}")
                n = jnp.shape(objectives[k].loss)
                if n != w.shape:
                    raise ValueError(f"rba balancer: term {k!r} has {n} points but its weights {w.shape}: the "
                                     "weights belong to the points, so keep one collocation set (resample_every=0)")
        return objectives

    def init(key, objectives):
        del key
        objectives = check(objectives)
        w = {k: jnp.full(jnp.shape(objectives[k].loss), initial, jnp.float32) for k in weighted(objectives)}
        return {}, RBAState(jnp.zeros((), jnp.int32), w)

    def loss(objectives, params, state):
        del params
        objectives = check(objectives, state)
        w = {k: jax.lax.stop_gradient(v) for k, v in state.weights.items()}
        total = jnp.zeros(())
        for k, o in objectives.items():
            total = total + (mean(jnp.square(w[k]) * o.loss) if k in w else mean(o.loss))
        metrics = {**raw_metrics(objectives), "balanced": total}
        metrics.update({f"rba/w_mean/{k}": jnp.mean(v) for k, v in w.items()})
        metrics.update({f"rba/w_max/{k}": jnp.max(v) for k, v in w.items()})
        return total, metrics

    def update(objectives, params, state):
        del params
        objectives = check(objectives, state)
        w = {k: attention_step(v, magnitudes(objectives[k]), gamma, eta) for k, v in state.weights.items()}
        return RBAState(state.step + 1, w)

    def residuals(objectives, params, state):
        """R with sum(R^2) = loss: lambda_i r_i / sqrt(N_k) (r_i / sqrt(N_k) for the terms not weighted)."""
        del params
        objectives = check(objectives, state)
        parts = []
        for k, o in objectives.items():
            if o.residual is None:
                raise ValueError(f"rba balancer: term {k!r} carries no residual, so a least-squares optimizer "
                                 "cannot use it: build it with Objective.of_residual(r)")
            r = jnp.asarray(o.residual)
            scale = jax.lax.stop_gradient(state.weights[k]).astype(r.dtype) if k in state.weights else 1.0
            parts.append(scale * r / math.sqrt(max(r.size, 1)))
        return flat_residuals(parts)

    return PointBalancer(init, loss, update, residuals=residuals)
