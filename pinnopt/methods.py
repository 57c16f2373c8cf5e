"""The one protocol of the two families that turn terms into a loss: balancers and constraint methods.

A balancer reduces the objectives ``{name: Objective}``, a constraint method the constraints
``{name: Constraint}``; both are four pure functions with the same signatures, in the manner
of an optax transformation::

    init(key, terms)            -> (params, state)   trainable params (optimised with the model;
                                                      often {}) and non-gradient state
    loss(terms, params, state)  -> (scalar, metrics) differentiable scalar, flat {key: scalar}
    update(terms, params, state) -> state            jittable, once per step, at the step's params
    diagnose(state)             -> [warning, ...]    Python side, on a concrete state
    residuals(terms, params, state) -> R (M,)        optional: the loss as sum(R^2) + a constant,
                                                      for the least-squares optimizers

Everything that changes while training is ``params`` or ``state``: both go through the
compiled step as arguments and come back from it, so nothing is ever frozen into the
compiled function. ``update`` and ``diagnose`` default to the stateless ones here, and
``stateless(loss_fn)`` makes a whole method from a function of the terms alone (like
``optax.stateless``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp

Terms = Mapping[str, Any]
Metrics = dict


def keep_state(terms: Terms, params: Any, state: Any) -> Any:
    """The default ``update``: nothing changes."""
    del terms, params
    return state


def no_warnings(state: Any) -> list[str]:
    """The default ``diagnose``: nothing to report."""
    del state
    return []


def no_params_no_state(key: jax.Array, terms: Terms) -> tuple[dict, dict]:
    """The default ``init`` of a stateless method."""
    del key, terms
    return {}, {}


class TermMethod(NamedTuple):
    """``init``, ``loss``, ``update``, ``diagnose`` as in the module docstring."""

    init: Callable[[jax.Array, Terms], tuple[Any, Any]]
    loss: Callable[..., tuple[jax.Array, Metrics]]
    update: Callable[[Terms, Any, Any], Any] = keep_state
    diagnose: Callable[[Any], list] = no_warnings
    residuals: Optional[Callable[[Terms, Any, Any], jax.Array]] = None


def no_least_squares_form(name: str) -> Callable:
    """A ``residuals`` that says why there is none (raised when a least-squares optimizer asks)."""

    def residuals(terms, params, state):
        raise ValueError(f"{name} has no least-squares form, so Gauss-Newton, Levenberg-Marquardt and ENGD "
                         "cannot use it: use the 'sum' balancer with the 'penalty' or 'al' method")

    return residuals


def flat_residuals(parts: list, dtype=None) -> jax.Array:
    """Concatenate residual pieces (any shapes) into one vector (M,)."""
    parts = [jnp.ravel(p) for p in parts]
    if not parts:
        return jnp.zeros((0,), dtype or jnp.float32)
    return jnp.concatenate(parts)


def stateless(loss_fn: Callable[[Terms], tuple[jax.Array, Metrics]], method: type = TermMethod) -> TermMethod:
    """A method with no parameters and no state from ``loss_fn(terms) -> (scalar, metrics)``."""

    def loss(terms, params, state, **kwargs):
        del params, state
        return loss_fn(terms, **kwargs)

    return method(no_params_no_state, loss)


__all__ = ["TermMethod", "flat_residuals", "keep_state", "no_least_squares_form", "no_params_no_state",
           "no_warnings", "stateless"]
