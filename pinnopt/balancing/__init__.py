"""Loss balancers: objectives ``{name: Objective}`` -> one scalar, chosen by name.

``get(name, **options)`` returns a ``Balancer(init, loss, update, diagnose)`` (the
``pinnopt.methods`` protocol, shared with the constraint methods); ``register`` adds one:

- ``"sum"``: static weights, ``sum_k w_k mean l_k``.
- ``"homoscedastic"``: learned log sigma per term, ``sum_k 0.5 e^{-2 s_k} L_k + s_k``, with a
  guard that reports the sigma -> infinity run-away.
- ``"spatial"``: a small network W(x) per term, ``mean_x 0.5 e^{-2 W(x)} l(x) + W(x)``;
  composes with an inner reduction (``inner="causal"``).
- ``"causal"``: time chunks weighted by ``stop_grad(exp(-eps sum_{k<i} L_k))``; a list of eps
  is the paper's schedule (the next eps once every chunk weight exceeds 0.99).
- ``"grad_norm"``: ``sum_k lambda_k L_k``, ``lambda_k`` a moving average of
  ``sum_j ||grad_theta L_j|| / ||grad_theta L_k||`` (Wang, Teng & Perdikaris 2021).
- ``"ntk"``: the same with the NTK traces ``mean_i ||d r_{k,i} / d theta||^2`` (Wang, Yu &
  Perdikaris 2022).
- ``"rba"``: residual-based attention, a weight per point ``lambda_i <- gamma lambda_i + eta
  |r_i| / max |r|``, loss ``mean (lambda r)^2`` (Anagnostopoulos et al. 2024); fixed points only.

``grad_norm`` and ``ntk`` need the gradients of each term with respect to the model's
parameters: their ``update`` takes ``model_grads=`` (``pinnopt.methods.ModelGrads``), which
the training step supplies.

Every loss reports ``raw/<term>`` (the unbalanced mean) and ``balanced`` (the scalar).
"""
from __future__ import annotations

from pinnopt.balancing.adaptive import AdaptiveState, grad_norm, ntk
from pinnopt.balancing.base import Balancer, PointBalancer
from pinnopt.balancing.causal import CausalState, causal, causal_weights, chunk_ids, chunk_means
from pinnopt.balancing.homoscedastic import HomoscedasticState, homoscedastic
from pinnopt.balancing.spatial import SpatialState, WeightNet, spatial
from pinnopt.balancing.rba import RBAState, rba
from pinnopt.balancing.weighted_sum import SumState, weighted_sum
from pinnopt.balancing.registry import REGISTRY
from pinnopt.methods import stateless as _stateless

REGISTRY.register("sum", weighted_sum)
REGISTRY.register("homoscedastic", homoscedastic)
REGISTRY.register("spatial", spatial)
REGISTRY.register("causal", causal)
REGISTRY.register("grad_norm", grad_norm)
REGISTRY.register("ntk", ntk)
REGISTRY.register("rba", rba)

register = REGISTRY.register
available = REGISTRY.available
get = REGISTRY.get


def stateless(loss_fn) -> Balancer:
    """A balancer without parameters or state from ``loss_fn(objectives) -> (scalar, metrics)``."""
    return _stateless(loss_fn, Balancer)


__all__ = [
    "Balancer", "PointBalancer", "REGISTRY", "available", "get", "register", "stateless",
    "weighted_sum", "homoscedastic", "spatial", "causal", "grad_norm", "ntk", "rba",
    "SumState", "HomoscedasticState", "SpatialState", "CausalState", "AdaptiveState", "RBAState", "WeightNet",
    "chunk_ids", "chunk_means", "causal_weights",
]
