"""Collocation samplers: uniform points in and on a box, in a disk and on a circle.

    in_box(key, n, lower, upper)      uniform in prod_i [lower_i, upper_i)          (n, d)
    on_box(key, n, lower, upper)      uniform over the box's boundary, by area     (n, d)
    in_disk(key, n, center, radius)   uniform by area in |x - c| <= R               (n, 2)
    on_circle(key, n, center, radius) uniform by arc length on |x - c| = R         (n, 2)

All are key-first and jittable (``n`` is a static Python int). Shapes are checked always;
values (lower < upper, radius > 0, finite) whenever they are concrete, so a traced box is
accepted and a bad literal one is a ``ValueError`` naming the argument.

On the boundary of a box, a face normal to axis i has area prod_{j != i} (upper_j - lower_j);
a face is drawn with probability proportional to its area (both faces of an axis alike), then
a point uniform on it. In 1-D the two end points have probability 1/2 each.
In a disk, r = R sqrt(U) with U uniform: P(r < s) = (s / R)^2, the area fraction.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _count(n) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n must be a Python integer >= 1 (static under jit), got {n!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    return int(n)


def _concrete(x):
    """``x`` as a NumPy array if its value is known now, else None (a tracer under jit)."""
    return None if isinstance(x, jax.core.Tracer) else np.asarray(x, np.float64)


def _box(lower, upper, dtype):
    lower, upper = jnp.asarray(lower, dtype), jnp.asarray(upper, dtype)
    if lower.ndim != 1 or lower.shape[0] < 1 or lower.shape != upper.shape:
        raise ValueError(f"lower and upper must be 1-D of the same length d >= 1, got shapes "
                         f"{lower.shape} and {upper.shape}")
    lo, hi = _concrete(lower), _concrete(upper)
    if lo is not None and not np.all(np.isfinite(lo)):
        raise ValueError(f"lower must be finite, got {lo}")
    if hi is not None and not np.all(np.isfinite(hi)):
        raise ValueError(f"upper must be finite, got {hi}")
    if lo is not None and hi is not None and not np.all(lo < hi):
        raise ValueError(f"lower must be < upper on every axis, got lower {lo} and upper {hi}")
    return lower, upper


def _disk(center, radius, dtype):
    center, radius = jnp.asarray(center, dtype), jnp.asarray(radius, dtype)
    if center.shape != (2,):
        raise ValueError(f"center must have shape (2,), got {center.shape}")
    if radius.shape != ():
        raise ValueError(f"radius must be a scalar, got shape {radius.shape}")
    c, r = _concrete(center), _concrete(radius)
    if c is not None and not np.all(np.isfinite(c)):
        raise ValueError(f"center must be finite, got {c}")
    if r is not None and not (np.isfinite(r) and r > 0):
        raise ValueError(f"radius must be positive and finite, got {float(r)!r}")
    return center, radius


def in_box(key, n: int, lower, upper, dtype=jnp.float32) -> jax.Array:
    """n points uniform in the box prod_i [lower_i, upper_i): (n, d).

    Args:
      key: a PRNG key.
      n: the number of points (static).
      lower, upper: (d,) corners, lower < upper on every axis.
      dtype: of the points (float32 by default).
    """
    n = _count(n)
    lower, upper = _box(lower, upper, dtype)
    return jax.random.uniform(key, (n, lower.shape[0]), dtype, lower, upper)


def on_box(key, n: int, lower, upper, dtype=jnp.float32) -> jax.Array:
    """n points uniform over the boundary of the box prod_i [lower_i, upper_i]: (n, d).

    A face is chosen with probability proportional to its area (the (d-1)-volume), so the
    points are uniform over the whole boundary (see the module docstring). Args as in ``in_box``.
    """
    n = _count(n)
    lower, upper = _box(lower, upper, dtype)
    d = lower.shape[0]
    k_face, k_point = jax.random.split(key)
    sides = upper - lower
    # Area of a face normal to axis i: the product of the other sides (1 in 1-D).
    area = jnp.prod(jnp.where(jnp.eye(d, dtype=bool), 1, sides), axis=1)
    face = jax.random.categorical(k_face, jnp.log(jnp.repeat(area, 2)), shape=(n,))
    axis, high = face // 2, face % 2 == 1
    points = jax.random.uniform(k_point, (n, d), dtype, lower, upper)
    wall = jnp.where(high, upper[axis], lower[axis])
    return jnp.where(jax.nn.one_hot(axis, d, dtype=bool), wall[:, None], points)


def in_disk(key, n: int, center=(0.0, 0.0), radius=1.0, dtype=jnp.float32) -> jax.Array:
    """n points uniform by area in the disk |x - center| <= radius: (n, 2).

    r = radius sqrt(U), angle uniform in [0, 2 pi): uniform in r would crowd the centre.

    Args:
      key: a PRNG key.
      n: the number of points (static).
      center: (2,); radius: a positive scalar.
      dtype: of the points (float32 by default).
    """
    n = _count(n)
    center, radius = _disk(center, radius, dtype)
    k_r, k_t = jax.random.split(key)
    r = radius * jnp.sqrt(jax.random.uniform(k_r, (n,), dtype))
    t = jax.random.uniform(k_t, (n,), dtype, 0.0, 2 * np.pi)
    return center + jnp.stack([r * jnp.cos(t), r * jnp.sin(t)], axis=-1)


def on_circle(key, n: int, center=(0.0, 0.0), radius=1.0, dtype=jnp.float32) -> jax.Array:
    """n points uniform by arc length on the circle |x - center| = radius: (n, 2).

    Args as in ``in_disk``.
    """
    n = _count(n)
    center, radius = _disk(center, radius, dtype)
    t = jax.random.uniform(key, (n,), dtype, 0.0, 2 * np.pi)
    return center + radius * jnp.stack([jnp.cos(t), jnp.sin(t)], axis=-1)
