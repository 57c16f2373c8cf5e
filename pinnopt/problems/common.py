"""What the PDE benchmark problems share: option checks, conditions as terms, grids, the network.

A problem built on ``FieldProblem`` holds a one-output network ``net`` on points (N, d) (time,
if any, in column 0), a fixed float32 evaluation grid ``eval_points`` and the reference
solution there, ``eval_exact`` (float64, computed on those float32 points, so a float64 run
compares like with like). It gets

    init(key) -> params              predict(params, points) -> u (N,)
    u_fn(params) -> u(x) of one point    evaluate(params) -> {"rel_l2": ||u - u_ref|| / ||u_ref||}
    reference_solution(points) -> u_ref (N,)   (float64 NumPy, from the problem's ``reference``)
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from pinnopt import pde
from pinnopt.nets import make_net as _make_net
from pinnopt.terms import Constraint, Objective

CONDITION_MODES = ("constraint", "objective")


def check_mode(name: str, mode) -> str:
    """``mode`` if it is one of ``CONDITION_MODES``, else a ValueError naming the option."""
    if mode not in CONDITION_MODES:
        raise ValueError(f"{name} must be one of {CONDITION_MODES}, got {mode!r}")
    return mode


def check_count(name: str, value, low: int = 2) -> int:
    """``value`` as an int if it is an integer >= ``low``, else a ValueError naming the option."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or int(value) != value or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_real(name: str, value, positive: bool = False) -> float:
    """``value`` as a float if it is finite (and > 0 when ``positive``), else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite{' positive' if positive else ''} number, got {value!r}")
    return float(value)


def condition(mode: str, value: jax.Array, coords: jax.Array):
    """An initial or boundary condition value == 0 at ``coords``: a point-wise equality
    ``Constraint`` (mode "constraint") or the squared ``Objective.of_residual`` ("objective")."""
    if mode == "constraint":
        return Constraint(value, "eq", coords=coords)
    return Objective.of_residual(value, coords)


def make_net(options: dict, periods=()):
    """The network of a problem from its options (width, depth, activation, fourier_features,
    fourier_scale; optional harmonics, arch, rwf) and the periodic input columns ``periods``.

    Every PDE problem here builds its network through this function (``pinnopt.nets.make_net``),
    so an architecture option added there reaches them all by one line. arch="mlp" without RWF
    is ``pinnopt.nets.MLP``, the same network and init as ``make_mlp``. Bad options are
    ValueErrors naming them.
    """
    return _make_net(options.get("arch", "mlp"), options["width"], options["depth"], 1, options["activation"],
                     periods, options.get("harmonics", 1), options["fourier_features"], options["fourier_scale"],
                     rwf=options.get("rwf", False))


def tensor_grid(*axes) -> np.ndarray:
    """All combinations of the 1-D ``axes`` (first axis slowest): float32 (prod n_i, len(axes))."""
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack(mesh, axis=-1).reshape(-1, len(axes)).astype(np.float32)


class FieldProblem:
    """Methods shared by the PDE problems (a mixin for frozen dataclasses with ``net``,
    ``eval_points``, ``eval_exact`` and a ``reference(points64) -> (N,)`` method)."""

    def u_fn(self, params) -> Callable[[jax.Array], jax.Array]:
        """The network as a scalar function of one point (d,)."""
        return functools.partial(pde.scalar_field(self.net), params)

    def init(self, key):
        return self.net.init(key, jnp.zeros((1, self.eval_points.shape[1]), jnp.float32))

    def predict(self, params, points) -> jax.Array:
        """u at ``points`` (N, d) -> (N,) (jittable).

        The points are cast to the parameters' dtype first: in a float64 run the float32
        evaluation grid would otherwise go through the input embeddings in float32.
        """
        leaves = [x for x in jax.tree.leaves(params) if jnp.issubdtype(jnp.result_type(x), jnp.floating)]
        dtype = jnp.result_type(*leaves) if leaves else jnp.float32
        return self.net.apply(params, jnp.asarray(points, dtype))[:, 0]

    def reference_solution(self, points) -> np.ndarray:
        """The reference u at ``points`` (N, d) -> (N,), float64 NumPy (not jittable)."""
        points = np.asarray(points, np.float64)
        if points.ndim != 2 or points.shape[1] != self.eval_points.shape[1]:
            raise ValueError(f"points must have shape (N, {self.eval_points.shape[1]}), got {points.shape}")
        return np.asarray(self.reference(points), np.float64)

    def evaluate(self, params):
        """rel_l2 = ||u - u_ref||_2 / ||u_ref||_2 on the fixed evaluation grid."""
        u = self.predict(params, self.eval_points)
        return {"rel_l2": pde.relative_l2(u, jnp.asarray(self.eval_exact, u.dtype))}
