"""The balancer protocol and the small helpers every balancer shares.

A balancer turns the objectives ``{name: Objective}`` into one differentiable scalar. Like an
optax transformation it is a tuple of pure functions; everything that changes while training
is either a trainable parameter (optimised with the model) or a non-gradient state (a
NamedTuple of arrays advanced by ``update`` inside the compiled step).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp

from pinnopt.methods import TermMethod
from pinnopt.terms import Objective

Params = Any
State = Any
Objectives = dict  # {name: Objective}
Metrics = dict  # {name: scalar array}


class Balancer(TermMethod):
    """A balancer: the ``pinnopt.methods`` protocol over ``{name: Objective}``.

    ``init(key, objectives) -> (params, state)``; ``loss(objectives, params, state) -> (scalar, metrics)``;
    ``update(objectives, params, state) -> state`` (jittable, once per step after the loss;
    default: state unchanged); ``diagnose(state) -> [warning, ...]`` (Python side, on a concrete
    state; default: none).

    Balancers that can serve as the ``inner`` reduction of the spatial balancer also accept
    ``loss(..., values={name: (N,) array})``: the point-wise values to reduce in place of the
    raw losses, which they still read for anything they derive their weights from.

    ``requires_fixed_points`` (a class attribute) is True for a balancer whose state belongs
    to the collocation points themselves (a weight per point, as ``rba``): ``pinnopt.solve``
    then refuses any ``resample_every`` but 0 (one fixed set of points for the whole run).
    """

    __slots__ = ()
    requires_fixed_points = False


class PointBalancer(Balancer):
    """A ``Balancer`` whose state holds one value per collocation point: fixed points only."""

    __slots__ = ()
    requires_fixed_points = True


def mean(x: jax.Array) -> jax.Array:
    """Mean of the point-wise losses (a scalar loss is its own mean)."""
    return jnp.mean(x)


def check_objectives(objectives: Mapping, balancer: str) -> dict:
    """The objectives as a dict, after checking every term is an ``Objective``."""
    if not isinstance(objectives, Mapping):
        raise TypeError(f"{balancer} balancer: objectives must be a dict {{name: Objective}}, "
                        f"got {type(objectives).__name__}")
    for name, obj in objectives.items():
        if not isinstance(obj, Objective):
            raise TypeError(f"{balancer} balancer: term {name!r} is a {type(obj).__name__}, expected "
                            "Objective (constraints go to pinnopt.constraints)")
    return dict(objectives)


def check_weights(weights: Optional[Mapping], balancer: str) -> dict[str, float]:
    """Static per-term weights: a mapping ``name -> finite non-negative number`` (default: none)."""
    if weights is None:
        return {}
    if not isinstance(weights, Mapping):
        raise ValueError(f"{balancer} balancer: weights must be a dict {{term: weight}}, "
                         f"got {type(weights).__name__}")
    out = {}
    for name, w in weights.items():
        if not isinstance(name, str):
            raise ValueError(f"{balancer} balancer: weights keys must be term names, got {name!r}")
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{balancer} balancer: weights[{name!r}] must be a finite number >= 0, got {w!r}")
        out[name] = float(w)
    return out


def check_weight_names(weights: dict[str, float], objectives: Mapping, balancer: str) -> None:
    """Unknown names in ``weights`` are a typo, not a no-op."""
    unknown = sorted(set(weights) - set(objectives))
    if unknown:
        raise ValueError(f"{balancer} balancer: weights name unknown terms {unknown}; "
                         f"the objectives are {sorted(objectives)}")


def check_names(names, option: str, balancer: str) -> Optional[tuple[str, ...]]:
    """Validate a ``terms=[...]`` selection option at construction (None means all eligible)."""
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{balancer} balancer: {option} must be a list of term names, got {names!r}")
    return tuple(names)


def raw_metrics(objectives: Mapping) -> Metrics:
    """``raw/<term>``: the unbalanced mean loss of every objective."""
    return {f"raw/{name}": mean(obj.loss) for name, obj in objectives.items()}


def check_coords(name: str, obj: Objective, balancer: str) -> None:
    """Point-wise balancing needs loss (N,) and coords (N, d) for the same N."""
    if obj.coords.ndim != 2 or obj.loss.ndim != 1 or obj.coords.shape[0] != obj.loss.shape[0]:
        raise ValueError(f"{balancer} balancer: term {name!r} needs loss of shape (N,) and coords of "
                         f"shape (N, d); got loss {obj.loss.shape} and coords {obj.coords.shape}")
