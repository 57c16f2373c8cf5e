"""Loss balancers: objectives ``{name: Objective}`` -> one scalar, chosen by name.

``get(name, **options)`` returns a ``Balancer(init, loss, update, diagnose)`` (the
``pinnopt.methods`` protocol, shared with the constraint methods); ``register`` adds one:

- ``"sum"``: static weights, ``sum_k w_k mean l_k``.
- ``"homoscedastic"``: learned log sigma per term, ``sum_k 0.5 e^{-2 s_k} L_k + s_k``, with a
  guard that reports the sigma -> infinity run-away.
- ``"spatial"``: a small network W(x) per term, ``mean_x 0.5 e^{-2 W(x)} l(x) + W(x)``;
  composes with an inner reduction (``inner="causal"``).
- ``"causal"``: time chunks weighted by ``stop_grad(exp(-eps sum_{k<i} L_k))``.

Every loss reports ``raw/<term>`` (the unbalanced mean) and ``balanced`` (the scalar).
"""
from __future__ import annotations

from pinnopt.balancing.base import Balancer
from pinnopt.balancing.causal import CausalState, causal, causal_weights, chunk_ids, chunk_means
from pinnopt.balancing.homoscedastic import HomoscedasticState, homoscedastic
from pinnopt.balancing.spatial import SpatialState, WeightNet, spatial
from pinnopt.balancing.weighted_sum import SumState, weighted_sum
from pinnopt.balancing.registry import REGISTRY
from pinnopt.methods import stateless as _stateless

REGISTRY.register("sum", weighted_sum)
REGISTRY.register("homoscedastic", homoscedastic)
REGISTRY.register("spatial", spatial)
REGISTRY.register("causal", causal)

register = REGISTRY.register
available = REGISTRY.available
get = REGISTRY.get


def stateless(loss_fn) -> Balancer:
    """A balancer without parameters or state from ``loss_fn(objectives) -> (scalar, metrics)``."""
    return _stateless(loss_fn, Balancer)


__all__ = [
    "Balancer", "REGISTRY", "available", "get", "register", "stateless",
    "weighted_sum", "homoscedastic", "spatial", "causal",
    "SumState", "HomoscedasticState", "SpatialState", "CausalState", "WeightNet",
    "chunk_ids", "chunk_means", "causal_weights",
]
