"""Two linear elliptic benchmarks on a square with closed-form solutions: poisson2d and helmholtz2d.

Both are  Laplace(u) + k^2 u = q  in the square,  u = u* on its boundary, with

    u*(x, y) = sin(a1 pi x) sin(a2 pi y),    q = (k^2 - (a1 pi)^2 - (a2 pi)^2) u*.

- ``poisson2d``: a1 = a2 = 1, k = 0 on [0, 1]^2, i.e. -Laplace(u) = 2 pi^2 sin(pi x) sin(pi y)
  with u = 0 on the boundary.
- ``helmholtz2d`` (Wang, Teng & Perdikaris 2021, "Understanding and mitigating gradient flow
  pathologies in PINNs", section 4.1): a1 = 1, a2 = 4, k = 1 on [-1, 1]^2. The source is
  large (|q| up to 17 pi^2 - 1 = 167) against u* of size 1: the PDE term dwarfs the boundary
  term, the imbalance their learning-rate annealing (grad-norm weights) was made for.

For integer a1, a2 both boundary values are 0; other values keep u = u* on the boundary.
Points are (x, y). The residual is r = Laplace(u) + k^2 u - q (for poisson2d the negative of
-Laplace(u) - f; the squares agree), from ``pinnopt.pde.laplacian`` (forward mode).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pinnopt import pde
from pinnopt.problems import common
from pinnopt.terms import Objective


def exact_solution(xy, a1: float, a2: float, xp=jnp):
    """u*(x, y) = sin(a1 pi x) sin(a2 pi y); ``xy`` (..., 2) -> (...), with the array module ``xp``."""
    return xp.sin(a1 * np.pi * xy[..., 0]) * xp.sin(a2 * np.pi * xy[..., 1])


def source(xy, a1: float, a2: float, k: float, xp=jnp):
    """q = Laplace(u*) + k^2 u* = (k^2 - (a1 pi)^2 - (a2 pi)^2) u*; ``xy`` (..., 2) -> (...)."""
    return (k**2 - (a1 * np.pi) ** 2 - (a2 * np.pi) ** 2) * exact_solution(xy, a1, a2, xp)


def residual(u_fn: Callable[[jax.Array], jax.Array], points: jax.Array, a1: float, a2: float,
             k: float) -> jax.Array:
    """r = Laplace(u) + k^2 u - q at ``points`` (N, 2) -> (N,); ``u_fn`` maps one (x, y) to a scalar."""
    return pde.laplacian(u_fn, points) + k**2 * pde.values(u_fn, points) - source(points, a1, a2, k)


def boundary_residual(u_fn: Callable[[jax.Array], jax.Array], points: jax.Array, a1: float,
                      a2: float) -> jax.Array:
    """u - u* at boundary ``points`` (N, 2) -> (N,) (u* = 0 there for integer a1, a2)."""
    return pde.values(u_fn, points) - exact_solution(points, a1, a2)


def _net(options: dict) -> nn.Module:
    return common.make_net(options)


@dataclasses.dataclass(frozen=True, eq=False)
class Elliptic2D(common.FieldProblem):
    """Laplace(u) + k^2 u = q on a square, u = u* on the boundary; params = flax params.

    Terms: ``"pde"`` the residual r at interior points, ``Objective.of_residual`` (loss r^2,
    coords (x, y)); ``"bc"`` u - u* at boundary points, a point-wise equality Constraint
    (``bc="constraint"``, the default) or ``Objective.of_residual`` (``"objective"``).
    ``evaluate`` gives rel_l2 on a fixed n_eval x n_eval grid of the closed square.
    """

    net: nn.Module
    name: str
    a1: float
    a2: float
    k: float
    lower: float
    upper: float
    n_interior: int
    n_boundary: int
    bc: str
    eval_points: np.ndarray
    eval_exact: np.ndarray
    options: dict

    def reference(self, points: np.ndarray) -> np.ndarray:
        return exact_solution(points, self.a1, self.a2, np)

    def sample(self, key, step):
        """Fresh points each call (``step`` unused): uniform in the square and on its boundary."""
        k_in, k_on = jax.random.split(key)
        lo, hi = [self.lower] * 2, [self.upper] * 2
        return {"interior": pde.in_box(k_in, self.n_interior, lo, hi),
                "boundary": pde.on_box(k_on, self.n_boundary, lo, hi)}

    def terms(self, params, batch):
        u = self.u_fn(params)
        inner, edge = batch["interior"], batch["boundary"]
        return {"pde": Objective.of_residual(residual(u, inner, self.a1, self.a2, self.k), inner),
                "bc": common.condition(self.bc, boundary_residual(u, edge, self.a1, self.a2), edge)}

    def config(self):
        return {"name": self.name, "a1": self.a1, "a2": self.a2, "k": self.k, "domain": [self.lower, self.upper],
                "n_interior": self.n_interior, "n_boundary": self.n_boundary, "bc": self.bc, **self.options}


def _make(name, a1, a2, k, lower, upper, n_interior, n_boundary, bc, width, depth, activation,
          fourier_features, fourier_scale, n_eval, arch, rwf) -> Elliptic2D:
    a1, a2, k = (common.check_real(n, v) for n, v in (("a1", a1), ("a2", a2), ("k", k)))
    n_interior = common.check_count("n_interior", n_interior)
    n_boundary = common.check_count("n_boundary", n_boundary)
    n_eval = common.check_count("n_eval", n_eval)
    common.check_mode("bc", bc)
    options = {"width": width, "depth": depth, "activation": activation,
               "fourier_features": fourier_features, "fourier_scale": fourier_scale, "n_eval": n_eval,
               "arch": arch, "rwf": rwf}
    net = _net(options)
    side = np.linspace(lower, upper, n_eval)
    points = common.tensor_grid(side, side)
    exact = exact_solution(points.astype(np.float64), a1, a2, np)
    return Elliptic2D(net, name, a1, a2, k, float(lower), float(upper), n_interior, n_boundary, bc,
                      points, exact, options)


def make_poisson2d(n_interior: int = 1024, n_boundary: int = 256, bc: str = "constraint", width: int = 64,
                   depth: int = 4, activation: str = "tanh", fourier_features: int = 0,
                   fourier_scale: float = 1.0, n_eval: int = 101, arch: str = "mlp",
                   rwf: bool = False) -> Elliptic2D:
    """-Laplace(u) = 2 pi^2 sin(pi x) sin(pi y) on [0, 1]^2, u = 0 on the boundary (see the module docstring).

    Args:
      n_interior, n_boundary: points drawn per ``sample`` in the square and on its boundary.
      bc: "constraint" (point-wise equality, enforced by the constraint method) or "objective"
        (squared, weighted by the balancer).
      width, depth, activation: the network (``depth`` hidden layers or blocks of ``width``).
      arch, rwf: "mlp", "modified_mlp" or "pirate", and random weight factorization
        (``pinnopt.nets.make_net``).
      fourier_features, fourier_scale: random Fourier features of (x, y) (0: none).
      n_eval: side of the fixed evaluation grid (corners included).
    """
    return _make("poisson2d", 1.0, 1.0, 0.0, 0.0, 1.0, n_interior, n_boundary, bc, width, depth,
                 activation, fourier_features, fourier_scale, n_eval, arch, rwf)


def make_helmholtz2d(a1: float = 1.0, a2: float = 4.0, k: float = 1.0, n_interior: int = 1024,
                     n_boundary: int = 256, bc: str = "constraint", width: int = 64, depth: int = 4,
                     activation: str = "tanh", fourier_features: int = 0, fourier_scale: float = 1.0,
                     n_eval: int = 101, arch: str = "mlp", rwf: bool = False) -> Elliptic2D:
    """Laplace(u) + k^2 u = q on [-1, 1]^2 with u* = sin(a1 pi x) sin(a2 pi y) (see the module docstring).

    Args:
      a1, a2: the frequencies of u* (1 and 4 in Wang, Teng & Perdikaris 2021).
      k: the Helmholtz wave number (1 there).
      Others as in ``make_poisson2d``.
    """
    return _make("helmholtz2d", a1, a2, k, -1.0, 1.0, n_interior, n_boundary, bc, width, depth,
                 activation, fourier_features, fourier_scale, n_eval, arch, rwf)
