"""Loss balancers: objectives ``{name: Objective}`` -> one scalar, chosen by name.

``get(name, **options)`` returns a ``Balancer(init, loss, update, diagnose)``:

- ``"sum"``: static weights, ``sum_k w_k mean l_k``.
- ``"homoscedastic"``: learned log sigma per term, ``sum_k 0.5 e^{-2 s_k} L_k + s_k``, with a
  guard that reports the sigma -> infinity run-away.
- ``"spatial"``: a small network W(x) per term, ``mean_x 0.5 e^{-2 W(x)} l(x) + W(x)``;
  composes with an inner reduction (``inner="causal"``).
- ``"causal"``: time chunks weighted by ``stop_grad(exp(-eps sum_{k<i} L_k))``.

Every loss reports ``raw/<term>`` (the unbalanced mean) and ``balanced`` (the scalar).
"""
from __future__ import annotations

import difflib
import inspect
from typing import Callable

from pinnopt.balancing.base import Balancer
from pinnopt.balancing.causal import CausalState, causal, causal_weights, chunk_ids, chunk_means
from pinnopt.balancing.homoscedastic import HomoscedasticState, homoscedastic
from pinnopt.balancing.spatial import SpatialState, WeightNet, spatial
from pinnopt.balancing.weighted_sum import SumState, weighted_sum

_FACTORIES: dict[str, Callable[..., Balancer]] = {
    "sum": weighted_sum,
    "homoscedastic": homoscedastic,
    "spatial": spatial,
    "causal": causal,
}


def register(name: str, factory: Callable[..., Balancer]) -> None:
    """Register a balancer factory ``(**options) -> Balancer`` under ``name``."""
    _FACTORIES[name] = factory


def available() -> list[str]:
    return sorted(_FACTORIES)


def get(name: str, **options) -> Balancer:
    """The balancer ``name`` built with ``options``.

    Raises ``ValueError`` for an unknown name (listing the available ones), an unknown option
    (listing the accepted ones) or an invalid value.
    """
    if name not in _FACTORIES:
        close = difflib.get_close_matches(str(name), available(), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown balancer {name!r}.{hint} Available: {', '.join(available())}")
    factory = _FACTORIES[name]
    params = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for key in options:
            if key not in params:
                raise ValueError(f"balancer {name!r} has no option {key!r}. Accepted: {', '.join(params)}")
    return factory(**options)


__all__ = [
    "Balancer", "available", "get", "register",
    "weighted_sum", "homoscedastic", "spatial", "causal",
    "SumState", "HomoscedasticState", "SpatialState", "CausalState", "WeightNet",
    "chunk_ids", "chunk_means", "causal_weights",
]
