"""Differential operators of a scalar field at a batch of points, forward mode by default.

For f: R^d -> R (one point (d,) to a scalar) and points X (N, d), with e_i the unit vector
of axis i:

    derivative(f, X, i)         = d f / d x_i                 (N,)
    gradient(f, X)              = (d f / d x_0, ..., d f / d x_{d-1})   (N, d)
    time_derivative(f, X)       = d f / d x_0                 (time is column 0 by convention)
    second_derivative(f, X, i)  = d^2 f / d x_i^2             (N,)
    laplacian(f, X, axes)       = sum_{i in axes} d^2 f / d x_i^2     (all axes by default)

Each is computed per point and mapped over the points with ``jax.vmap``. ``method`` chooses
how a derivative along e_i is taken:

- ``"jvp"`` (the default of every operator but ``gradient``): forward mode.
  d f/d x_i = jvp(f, x, e_i); d^2 f/d x_i^2 is a jvp of that jvp along e_i again, one forward
  pass carrying the value, the first and the second directional derivative. A Laplacian costs
  d such passes, one per axis, written as a Python loop (XLA merges the shared primal; a
  ``vmap`` over the directions measured slower). Nothing of size d x d is formed.
- ``"jet"``: Taylor mode, ``jax.experimental.jet`` with the input series (e_i, 0): the same
  numbers from one second-order Taylor pass per axis.
- ``"reverse"``: ``jax.grad`` for first derivatives (the default of ``gradient``) and
  ``jax.hessian`` (forward over reverse, the full d x d Hessian per point) for second ones,
  the Laplacian being ``jnp.trace(jax.hessian(f)(x))``: the reference. In a training step the
  loss gradient then runs reverse mode over a reverse pass, which is what makes it slow.

Why these defaults. ``benchmarks/bench_derivatives.py`` times a compiled Adam step of a
d -> 32 x 3 -> 1 tanh PINN on 1,000 interior + 200 boundary fixed points (best of 5 scans of
100 steps, compile excluded, a shared 2-core CPU), in ms per step, reverse / jvp / jet:

    Laplacian, 1-D        4.3 / 2.5 / 2.9
    Laplacian, 2-D       22.3 / 2.6 / 2.7     jvp 8.5x faster (6.0x and 12.5x in two other runs)
    Laplacian, 3-D       60.7 / 5.3 / 6.4
    u_t - u_xx           25.2 / 2.7 / 3.3
    |grad u|^2, 2-D       1.5 / 2.5 / 2.3

Second derivatives: forward and Taylor mode tie within the noise of a shared CPU; ``"jvp"``
is the default because it is core JAX and differentiates every activation, where ``jet``
(experimental) fails, even without ``jax.grad``, on networks with the ``custom_jvp``
activations ``softplus`` and ``relu`` (UnexpectedTracerError, jax 0.10.2). The gradient: one backward pass gives all d components,
forward mode needs d jvps, so ``jax.grad`` wins (best of 4 scans of 300 steps: 0.90 against
1.48 ms for d = 2, 1.13 against 2.80 ms for d = 3). One first derivative (u_t): jvp and
``jax.grad`` tie (1.18 and 1.26 ms); ``derivative`` uses jvp.
"""
from __future__ import annotations

import operator
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp

METHODS = ("jvp", "jet", "reverse")

Field = Callable[[jax.Array], jax.Array]  # one point (d,) -> a scalar ()


# ---------------------------------------------------------------------------------------------
# Checks
def _check(f: Field, points: jax.Array, method: str) -> int:
    """The dimension d of ``points`` (N, d), after checking ``points``, ``method`` and f's output."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    shape = getattr(points, "shape", None)
    if shape is None or len(shape) != 2 or shape[1] < 1:
        raise ValueError(f"points must be an array of shape (N, d), got shape {shape}")
    if not jnp.issubdtype(points.dtype, jnp.floating):
        raise ValueError(f"points must be floating point, got dtype {points.dtype}")
    # Catches the usual slip, a network output (1,) for a scalar, before it broadcasts silently.
    out = jax.eval_shape(f, jax.ShapeDtypeStruct(shape[1:], points.dtype))
    if getattr(out, "shape", None) != ():
        raise ValueError(f"f must map one point of shape {shape[1:]} to a scalar, got output shape "
                         f"{getattr(out, 'shape', None)} (pinnopt.pde.scalar_field drops a network's "
                         "output axis)")
    return shape[1]


def _axis(axis, d: int, name: str = "axis") -> int:
    try:
        i = operator.index(axis)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {axis!r}") from None
    if not -d <= i < d:
        raise ValueError(f"{name} must be in [{-d}, {d}) for points of dimension {d}, got {axis!r}")
    return i % d


def _axes(axes: Optional[Sequence[int]], d: int) -> tuple:
    if axes is None:
        return tuple(range(d))
    if isinstance(axes, (int, bool)) or not hasattr(axes, "__iter__"):
        raise ValueError(f"axes must be None or a sequence of integers, got {axes!r}")
    out = tuple(_axis(a, d, "axes") for a in axes)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"axes must be non-empty and without repeats, got {axes!r}")
    return out


# ---------------------------------------------------------------------------------------------
# One point, one axis
def _unit(x: jax.Array, i: int) -> jax.Array:
    return jnp.zeros_like(x).at[i].set(1)


def _first(f: Field, x: jax.Array, i: int, method: str) -> jax.Array:
    """d f / d x_i at one point x."""
    e = _unit(x, i)
    if method == "jvp":
        return jax.jvp(f, (x,), (e,))[1]
    if method == "jet":
        from jax.experimental.jet import jet
        return jet(f, (x,), ((e,),))[1][0]
    return jax.grad(f)(x)[i]


def _second(f: Field, x: jax.Array, i: int, method: str) -> jax.Array:
    """d^2 f / d x_i^2 at one point x."""
    e = _unit(x, i)
    if method == "jvp":
        return jax.jvp(lambda y: jax.jvp(f, (y,), (e,))[1], (x,), (e,))[1]
    if method == "jet":
        from jax.experimental.jet import jet
        # Input series x + e t (zero second coefficient): the output's second coefficient is
        # e^T H e = d^2 f / d x_i^2 (jet's coefficients are derivatives, not divided by 2).
        return jet(f, (x,), ((e, jnp.zeros_like(x)),))[1][1]
    return jax.hessian(f)(x)[i, i]


# ---------------------------------------------------------------------------------------------
# Batches of points
def derivative(f: Field, points: jax.Array, axis: int, method: str = "jvp") -> jax.Array:
    """d f / d x_axis at each of ``points``.

    Args:
      f: a scalar function of one point (d,) (for a network field u(params, x):
        ``functools.partial(u, params)``).
      points: (N, d).
      axis: the input column to differentiate along.
      method: "jvp" (forward mode, default), "jet" (Taylor mode) or "reverse" (``jax.grad``).

    Returns:
      (N,).
    """
    i = _axis(axis, _check(f, points, method))
    return jax.vmap(lambda x: _first(f, x, i, method))(points)


def time_derivative(f: Field, points: jax.Array, method: str = "jvp") -> jax.Array:
    """u_t = d f / d x_0 at each of ``points`` (N, d) -> (N,): time is column 0 by convention."""
    return derivative(f, points, 0, method)


def gradient(f: Field, points: jax.Array, method: str = "reverse") -> jax.Array:
    """grad f = (d f / d x_0, ..., d f / d x_{d-1}) at each of ``points`` (N, d) -> (N, d).

    The default here is "reverse" (``jax.grad``): one backward pass gives all d components,
    where forward mode needs one jvp per axis; inside a training step that measured about 2x
    faster already for d = 2 (see the module docstring). Args as in ``derivative``.
    """
    d = _check(f, points, method)
    if method == "reverse":
        return jax.vmap(jax.grad(f))(points)
    return jax.vmap(lambda x: jnp.stack([_first(f, x, i, method) for i in range(d)]))(points)


def second_derivative(f: Field, points: jax.Array, axis: int, method: str = "jvp") -> jax.Array:
    """d^2 f / d x_axis^2 (e.g. u_xx) at each of ``points`` (N, d) -> (N,).

    Args as in ``derivative``; "reverse" takes the diagonal entry of ``jax.hessian``.
    """
    i = _axis(axis, _check(f, points, method))
    return jax.vmap(lambda x: _second(f, x, i, method))(points)


def laplacian(f: Field, points: jax.Array, axes: Optional[Sequence[int]] = None,
              method: str = "jvp") -> jax.Array:
    """Laplace(f) = sum_{i in axes} d^2 f / d x_i^2 at each of ``points`` (N, d) -> (N,).

    Args:
      f: a scalar function of one point (d,).
      points: (N, d).
      axes: the input columns to sum over (None: all). For points (t, x, y) with time in
        column 0, the spatial Laplacian is ``axes=(1, 2)``.
      method: "jvp" (default: one forward-over-forward pass per axis), "jet" or "reverse"
        (the trace of ``jax.hessian`` over ``axes``).
    """
    axes = _axes(axes, _check(f, points, method))
    if method == "reverse":
        index = jnp.asarray(axes)
        return jax.vmap(lambda x: jnp.sum(jnp.diagonal(jax.hessian(f)(x))[index]))(points)
    return jax.vmap(lambda x: sum(_second(f, x, i, method) for i in axes))(points)
