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

A balancer whose ``update`` takes the keyword ``model_grads`` (``update(terms, params, state,
*, model_grads)``) gets a ``ModelGrads``: statistics of each objective's gradient with respect
to the *model* parameters at the step's parameters and batch (what gradient-norm and NTK
weighting need and the terms alone cannot give). Nothing is computed until the balancer asks,
so an ``update`` that asks only every K steps (under ``lax.cond``) pays only then, and a
balancer without the keyword pays nothing.

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
import numpy as np

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


class ModelGrads:
    """Per-objective gradient statistics w.r.t. the model parameters theta, computed on request.

    Built by the training step from ``objectives_fn(theta) -> {name: Objective}`` (the
    problem's objectives at the step's batch) and the step's ``theta``; handed to a
    balancer's ``update`` as ``model_grads=``. Every method is traceable (call it inside the
    compiled step, e.g. in a ``lax.cond`` branch) and costs what it says:

    - ``of_means()``: ``{k: grad_theta mean_i l_k(x_i)}`` (pytrees like theta), one reverse
      pass per objective (``jax.jacrev`` over the K means);
    - ``norms()``: ``{k: ||grad_theta L_k||_2}`` over all leaves of theta;
    - ``point_sq_norms(max_points, offset)``: ``{k: ||d r_{k,i} / d theta||^2}`` for at most
      ``max_points`` points i of each objective, the diagonal of its neural tangent kernel.
      One reverse pass per point (a Jacobian row), so the points are a subset: the evenly
      spread indices ``(floor(j N / m) + offset) mod N``, j < m. ``r`` is the objective's
      ``residual`` when it carries one; otherwise sqrt(l), whose squared gradient norm is
      ``||grad l_i||^2 / (4 l_i)`` (0 where l_i = 0): exactly ``||grad r_i||^2`` when
      ``l = r^2``, with no derivative of a square root.
    """

    def __init__(self, objectives_fn: Callable[[Any], Terms], theta: Any):
        self._objectives_fn = objectives_fn
        self._theta = theta

    def of_means(self) -> dict:
        def means(theta):
            return {k: jnp.mean(o.loss) for k, o in self._objectives_fn(theta).items()}

        return jax.jacrev(means)(self._theta)

    def norms(self) -> dict:
        return {k: _tree_norm(g) for k, g in self.of_means().items()}

    def point_sq_norms(self, max_points: Optional[int] = None, offset: Any = 0) -> dict:
        def rows(theta):
            values, from_loss = {}, {}
            for k, o in self._objectives_fn(theta).items():
                v = jnp.ravel(o.residual if o.residual is not None else o.loss)
                values[k], from_loss[k] = v[_subset(v.shape[0], max_points, offset)], o.residual is None
            return values, (values, from_loss)

        jac, (values, from_loss) = jax.jacrev(rows, has_aux=True)(self._theta)
        out = {}
        for k, tree in jac.items():
            sq = sum(jnp.sum(jnp.reshape(leaf, (leaf.shape[0], -1)) ** 2, axis=1)
                     for leaf in jax.tree_util.tree_leaves(tree))
            if from_loss[k]:
                l = values[k]
                sq = jnp.where(l > 0, sq / (4.0 * jnp.where(l > 0, l, 1.0)), 0.0)
            out[k] = sq
        return out


def _subset(n: int, max_points: Optional[int], offset) -> jax.Array:
    """Indices ``(floor(j n / m) + offset) mod n``, j < m = min(max_points, n): evenly spread over n."""
    m = n if max_points is None else min(int(max_points), n)
    base = jnp.asarray((np.arange(m) * n) // m, jnp.int32)
    return (base + jnp.asarray(offset, jnp.int32)) % n


def _tree_norm(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves)) if leaves else jnp.zeros(())


def stateless(loss_fn: Callable[[Terms], tuple[jax.Array, Metrics]], method: type = TermMethod) -> TermMethod:
    """A method with no parameters and no state from ``loss_fn(terms) -> (scalar, metrics)``."""

    def loss(terms, params, state, **kwargs):
        del params, state
        return loss_fn(terms, **kwargs)

    return method(no_params_no_state, loss)


__all__ = ["ModelGrads", "TermMethod", "flat_residuals", "keep_state", "no_least_squares_form", "no_params_no_state",
           "no_warnings", "stateless"]
