"""Error measures of a PDE solution against a reference on the same points."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def relative_l2(pred: jax.Array, ref: jax.Array) -> jax.Array:
    """||pred - ref||_2 / ||ref||_2 over all entries (equal weights, e.g. a uniform grid).

    Args:
      pred: the approximation, any shape.
      ref: the reference (exact) values, the same shape as ``pred`` (no broadcasting: an
        (N, 1) network output against an (N,) reference is a ``ValueError``, not an (N, N) error).

    Returns:
      A scalar; inf or nan when ``ref`` is zero.
    """
    pred, ref = jnp.asarray(pred), jnp.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"pred and ref must have the same shape, got {pred.shape} and {ref.shape}")
    # sqrt of the ratio of sums of squares: one square root, and what the PDE problems always reported.
    return jnp.sqrt(jnp.sum((pred - ref) ** 2) / jnp.sum(ref**2))
