"""Running a solve in float64 without flipping anything global.

``solve(..., precision="float64")`` runs inside ``jax.enable_x64(True)`` (a context manager:
the flag is restored on exit), casts every trainable parameter to float64 before the optimizer
states are built, and wraps the problem so that its sampled points are float64 too. The
constraint methods keep their multipliers and penalty weights in float32, as always.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

PRECISIONS = ("float32", "float64")


def _to64(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64)
                        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


class InFloat64:
    """``problem`` with float64 parameters and points; everything else is the problem's own."""

    def __init__(self, problem):
        self._problem = problem

    def init(self, key):
        return _to64(self._problem.init(key))

    def sample(self, key, step):
        return _to64(self._problem.sample(key, step))

    def terms(self, params, batch):
        return self._problem.terms(params, batch)

    def __getattr__(self, attr):  # name, evaluate, config, summary, ...: the problem's own
        if attr == "_problem":
            raise AttributeError(attr)
        return getattr(self._problem, attr)
