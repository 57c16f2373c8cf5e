"""Scalar fields: a network as u(params, x) -> () for one point x (d,), and batched values.

``pinnopt.nets.MLP`` maps a point (d,) to (1,), so a PDE written with it is full of ``[0]``
(and an (N, 1) output minus an (N,) target broadcasts to (N, N) without a word). Here

    u = scalar_field(module)          u(params, x) = module.apply(params, x)[0]
    init, u = mlp_field(d, ...)       the same for a fresh ``MLP`` on R^d, with its init

and every operator of ``pinnopt.pde`` takes a function of one point, f(x) = u(params, x),
written ``functools.partial(u, params)``::

    f = functools.partial(u, params)
    residual = -pde.laplacian(f, interior) - source(interior)      # (N,)
    boundary = pde.values(f, edge) - g(edge)                       # (M,)
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from pinnopt.nets import make_mlp


class Field(NamedTuple):
    """``init(key) -> params`` and ``u(params, x) -> ()`` for one point x (d,)."""

    init: Callable[[jax.Array], Any]
    u: Callable[[Any, jax.Array], jax.Array]


def scalar_field(module) -> Callable[[Any, jax.Array], jax.Array]:
    """u(params, x) = module.apply(params, x)[0]: a one-output network as a scalar of one point.

    Args:
      module: anything with ``apply(params, x)`` mapping a point (d,) to shape (1,) (a flax
        module such as ``pinnopt.nets.make_mlp(..., out=1)``).

    Returns:
      u(params, x) -> () for x of shape (d,); ``ValueError`` (at trace time) for a batch of
      points or a module with more than one output.
    """
    if not callable(getattr(module, "apply", None)):
        raise ValueError(f"module must have an apply(params, x) method, got {type(module).__name__}")

    def u(params, x):
        if jnp.ndim(x) != 1:
            raise ValueError(f"x must be one point of shape (d,), got shape {jnp.shape(x)} "
                             "(for a batch use pinnopt.pde.values)")
        out = module.apply(params, x)
        if jnp.shape(out) != (1,):
            raise ValueError(f"module must map one point to shape (1,), got output shape {jnp.shape(out)}")
        return out[0]

    return u


def mlp_field(d: int, width: int = 64, depth: int = 4, activation: str = "tanh", **mlp_options) -> Field:
    """A fresh one-output ``pinnopt.nets.MLP`` on R^d as ``Field(init, u)``.

    Args:
      d: input dimension (points are (d,); time, if any, is column 0).
      width, depth, activation: the MLP (``depth`` hidden layers of ``width`` units).
      **mlp_options: the other options of ``pinnopt.nets.make_mlp`` (``periods``,
        ``harmonics``, ``fourier_features``, ``fourier_scale``, ``fourier_seed``).

    Returns:
      ``Field(init, u)``: ``init(key)`` gives float32 params, ``u(params, x)`` a scalar.
    """
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be an integer >= 1, got {d!r}")
    if "out" in mlp_options:
        raise ValueError("out: a scalar field has one output; mlp_field takes no 'out' option")
    module = make_mlp(width, depth, 1, activation, **mlp_options)
    if any(j >= d for j, _ in module.periods):
        raise ValueError(f"periods name a column >= d = {d}: {module.periods!r}")

    def init(key):
        return module.init(key, jnp.zeros((1, d), jnp.float32))

    return Field(init, scalar_field(module))


def values(f: Callable[[jax.Array], jax.Array], points: jax.Array) -> jax.Array:
    """f at each of ``points``: (N, d) -> (N,), for f a scalar function of one point (d,).

    For a field u(params, x): ``values(functools.partial(u, params), points)``.
    """
    shape = getattr(points, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"points must be an array of shape (N, d), got shape {shape}")
    out = jax.vmap(f)(points)
    if out.shape != shape[:1]:
        raise ValueError(f"f must map one point to a scalar, got shape {out.shape[1:]} per point")
    return out
