"""The static weighted sum: the baseline every other balancer is compared with."""
from __future__ import annotations

from typing import Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp

from pinnopt.balancing.base import (Balancer, check_objectives, check_weight_names, check_weights,
                                    mean, raw_metrics)
from pinnopt.methods import flat_residuals


class SumState(NamedTuple):
    step: jax.Array  # int32, number of updates so far


def weighted_sum(weights: Optional[Mapping[str, float]] = None) -> Balancer:
    """``loss = sum_k w_k mean_x l_k(x)`` with static weights ``w_k`` (default 1).

    Args:
      weights: ``{term: weight}``; terms not named get 1. Naming a term that is not among the
        objectives raises ``ValueError`` at ``init``.

    As the ``inner`` reduction of the spatial balancer, ``loss(..., values=...)`` averages the
    given point-wise values in place of the raw losses.
    """
    weights = check_weights(weights, "sum")

    def init(key, objectives):
        del key
        objectives = check_objectives(objectives, "sum")
        check_weight_names(weights, objectives, "sum")
        return {}, SumState(step=jnp.zeros((), jnp.int32))

    def loss(objectives, params, state, *, values=None):
        del params, state
        objectives = check_objectives(objectives, "sum")
        check_weight_names(weights, objectives, "sum")
        values = values or {}
        total = sum((weights.get(name, 1.0) * mean(values.get(name, obj.loss))
                     for name, obj in objectives.items()), jnp.zeros(()))
        return total, {**raw_metrics(objectives), "balanced": total}

    def update(objectives, params, state):
        del objectives, params
        return SumState(step=state.step + 1)

    def diagnose(state):
        del state
        return []

    def residuals(objectives, params, state):
        """R with sum(R^2) = loss: sqrt(w_k / N_k) r_k for each term's residual r_k."""
        del params, state
        parts = []
        for name, obj in check_objectives(objectives, "sum").items():
            if obj.residual is None:
                raise ValueError(f"sum balancer: term {name!r} carries no residual, so a least-squares optimizer "
                                 "cannot use it: build it with Objective.of_residual(r)")
            r = jnp.asarray(obj.residual)
            parts.append(jnp.sqrt(weights.get(name, 1.0) / max(r.size, 1)) * r)
        return flat_residuals(parts)

    return Balancer(init, loss, update, diagnose, residuals)
