"""ENGD: energy natural gradient descent (Mueller & Zeinhofer, ICML 2023), for least-squares PINN losses.

"Achieving High Accuracy with PINNs via Energy Natural Gradient Descent", J. Mueller and
M. Zeinhofer, ICML 2023, arXiv:2302.13163. For a PINN loss that is a quadratic energy of the
network's function, L_paper(theta) = 1/2 |R(theta)|^2 with R the (quadrature-weighted)
residuals of the PDE and the boundary conditions, the energy Gram matrix is G = J^T J, with J
the Jacobian of R with respect to the parameters, and the energy natural gradient is G^+ of
the gradient J^T R. Moved to function space it is the Newton step of the energy, so the
paper's step size is chosen by a line search on a logarithmic grid.

Our loss is L = |R|^2 + const = 2 L_paper + const, with the residuals of the solve loop's
``residual_fn``; the update keeps the paper's normalisation, so step size 1 is the (Gauss-)
Newton step (for a linear PDE the exact minimiser over the network's tangent space).
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from pinnopt.optimizers.least_squares import (DEFAULT_MAX_SIZE, check_max_size, check_non_negative, damped_step,
                                              float_dtype, linearize, require_residual_fn)


class ENGDState(NamedTuple):
    """State of ``engd``.

    step_size: the step size the last line search chose (0: no grid point lowered the loss).
    count: updates so far (int32).
    """

    step_size: jax.Array
    count: jax.Array


def engd(
    damping: float = 1e-8,
    line_search_grid: int = 30,
    max_size: int = DEFAULT_MAX_SIZE,
) -> optax.GradientTransformationExtraArgs:
    """Energy natural gradient descent with a grid line search.

    Update, with R and J (M x P) at the current parameters x::

        G    = J^T J                                           (energy Gram matrix)
        d    = -(G + damping I)^{-1} J^T R  ~  -G^+ J^T R = -1/2 G^+ grad L   (L = |R|^2 + const)
        eta  = argmin over eta in {2^-k : k = 0..K} of L(x + eta d)     (all K + 1 in one vmap)
        update = eta d,  or 0 when no grid point is below L(x)

    The damped inverse is a Tikhonov pseudo-inverse (damping -> 0 gives G^+ J^T R, the
    minimum-norm least-squares step J^+ R). It is solved through the P x P system when P <= M
    and through the M x M Gram system (J J^T + damping I) a = R, d = -J^T a when M < P (the
    same d; ``pinnopt.optimizers.least_squares``). The line search evaluates the solve loop's
    ``value_fn`` at all grid points with ``jax.vmap`` (the paper's grid is 2^-k, k = 0..30);
    the guard that refuses a step that raises the loss is ours.

    Reference: J. Mueller and M. Zeinhofer, "Achieving High Accuracy with PINNs via Energy
    Natural Gradient Descent", ICML 2023 (Algorithm 1).

    Args:
      damping: Tikhonov damping (>= 0) of G, the regularised pseudo-inverse.
      line_search_grid: K (an integer >= 0): the step sizes tried are 2^-k, k = 0..K.
      max_size: the largest number of elements of the min(P, M)^2 system; a larger problem is
        a ValueError at the first update.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose ``update(updates, state, params, *,
      residual_fn, value_fn, value=None)`` needs ``params``, the solve loop's ``residual_fn``
      and ``value_fn`` (``value``, the loss at ``params``, saves one evaluation).
    """
    damping = check_non_negative("engd", "damping", damping)
    if (isinstance(line_search_grid, bool) or not isinstance(line_search_grid, numbers.Integral)
            or not 0 <= line_search_grid <= 1000):
        raise ValueError(f"engd: line_search_grid must be an integer K in [0, 1000] (the step sizes 2^-k, "
                         f"k = 0..K), got {line_search_grid!r}")
    max_size = check_max_size("engd", max_size)
    exponents = jnp.arange(int(line_search_grid) + 1)

    def init_fn(params):
        dtype = float_dtype(ravel_pytree(params)[0])
        return ENGDState(step_size=jnp.zeros((), dtype), count=jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None, *, residual_fn=None, value_fn=None, value=None, **extra):
        del updates, extra
        require_residual_fn("engd", residual_fn)
        if value_fn is None:
            raise ValueError("engd: update needs value_fn= (the loss of a parameter pytree) for its line search")
        if params is None:
            raise ValueError("engd: update needs params (update(grads, state, params, residual_fn=..., value_fn=...))")
        lin = linearize("engd", residual_fn, params, max_size)
        d = damped_step(lin.jacobian, lin.residuals, damping)
        dtype = lin.x.dtype
        grid = jnp.asarray(0.5, dtype) ** exponents.astype(dtype)
        losses = jax.vmap(lambda eta: jnp.asarray(value_fn(lin.unravel(lin.x + eta * d))))(grid)
        losses = jnp.where(jnp.isfinite(losses), losses, jnp.inf)
        best = jnp.argmin(losses)
        current = jnp.asarray(value_fn(params) if value is None else value)
        eta = jnp.where(losses[best] < current, grid[best], 0).astype(dtype)
        new_state = ENGDState(step_size=eta.astype(state.step_size.dtype), count=state.count + 1)
        return lin.unravel((eta * d).astype(dtype)), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["ENGDState", "engd"]
