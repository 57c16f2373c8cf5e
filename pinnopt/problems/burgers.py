"""Viscous Burgers: the PINN benchmark of Raissi, Perdikaris & Karniadakis (2019), with the
Cole-Hopf solution as reference.

    u_t + u u_x = nu u_xx,   t in [0, 1],  x in [-1, 1],   nu = 0.01 / pi,
    u(0, x) = -sin(pi x),    u(t, -1) = u(t, 1) = 0.

A shock forms at x = 0 near t = 1/pi and stays there, of width about nu / |u| ~ 0.005.

Reference (Cole-Hopf). u = -2 nu phi_x / phi turns the equation into the heat equation
phi_t = nu phi_xx with phi(0, y) = f(y) = exp(-cos(pi y) / (2 pi nu)); convolving with the
heat kernel and differentiating under the integral,

    u(t, x) = - int sin(pi (x - eta)) f(x - eta) exp(-eta^2 / (4 nu t)) d eta
                / int f(x - eta) exp(-eta^2 / (4 nu t)) d eta.

(The initial data are 2-periodic and odd, so this whole-line solution is 0 at x = +-1.) With
eta = sqrt(4 nu t) s both integrals have the weight exp(-s^2): Gauss-Hermite quadrature with
``nodes`` nodes s_i, w_i. f spans exp(+-1 / (2 pi nu)) = exp(+-50), so each sum is taken as
sum_i exp(log w_i - cos(pi y_i) / (2 pi nu) - m) with m the largest exponent at that point;
the ratio is unchanged and nothing overflows. At t = 0 every y_i = x and u = -sin(pi x)
exactly. 100 and 200 nodes agree to 2e-15 on the evaluation grid. A method-of-lines
finite-difference solve (second order, 2,000 cells) agrees to 2.4e-6 off the shock; its error
falls as h^2 everywhere, so the Richardson extrapolation of 1,000 and 2,000 cells agrees to
4e-8 off the shock and 1.7e-5 inside it (tests/pinnopt/problems/test_burgers.py).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pinnopt import pde
from pinnopt.problems import common, reference_cache
from pinnopt.terms import Objective

NU = 0.01 / np.pi
MAX_NODES = 300  # numpy's hermgauss overflows (nan weights) well before 400 nodes


def initial_value(x, xp=jnp):
    """u(0, x) = -sin(pi x)."""
    return -xp.sin(np.pi * x)


def cole_hopf(t, x, nu: float = NU, nodes: int = 200) -> np.ndarray:
    """u(t, x) by Gauss-Hermite quadrature of the Cole-Hopf formula (module docstring), float64.

    Args:
      t, x: arrays of the same shape (t >= 0).
      nu: the viscosity (> 0).
      nodes: Gauss-Hermite nodes (2..300).

    Returns:
      u with the shape of ``t``.
    """
    t, x = np.broadcast_arrays(np.asarray(t, np.float64), np.asarray(x, np.float64))
    if np.any(t < 0):
        raise ValueError("t must be >= 0")
    s, w = np.polynomial.hermite.hermgauss(common.check_count("nodes", nodes))
    out = np.empty(t.shape)
    flat_t, flat_x, flat_out = t.ravel(), x.ravel(), out.ravel()
    for start in range(0, flat_t.size, 8192):  # (chunk, nodes) temporaries stay small
        sl = slice(start, start + 8192)
        y = flat_x[sl, None] - np.sqrt(4 * nu * flat_t[sl, None]) * s
        e = np.log(w) - np.cos(np.pi * y) / (2 * np.pi * nu)
        f = np.exp(e - e.max(axis=1, keepdims=True))
        flat_out[sl] = -np.sum(np.sin(np.pi * y) * f, axis=1) / np.sum(f, axis=1)
    return out


@functools.lru_cache(maxsize=8)
def grid_reference(n_t: int, n_x: int, nu: float = NU, nodes: int = 200) -> np.ndarray:
    """Cole-Hopf u on ``space_time_grid(n_t, n_x)`` (its float32 points), (n_t n_x,), disk-cached."""
    points = space_time_grid(n_t, n_x).astype(np.float64)

    def compute():
        return {"u": cole_hopf(points[:, 0], points[:, 1], nu, nodes)}

    key = {"n_t": n_t, "n_x": n_x, "nu": nu, "nodes": nodes}
    return reference_cache.cached_arrays("burgers", key, compute)["u"]


def space_time_grid(n_t: int, n_x: int) -> np.ndarray:
    """(t, x) on t = linspace(0, 1, n_t) x x = linspace(-1, 1, n_x), float32 (n_t n_x, 2)."""
    return common.tensor_grid(np.linspace(0.0, 1.0, n_t), np.linspace(-1.0, 1.0, n_x))


def residual(u_fn: Callable[[jax.Array], jax.Array], points: jax.Array, nu: float = NU) -> jax.Array:
    """r = u_t + u u_x - nu u_xx at ``points`` (N, 2) of (t, x) -> (N,).

    u_t and u_x from one backward pass (``pde.gradient``), u_xx in forward mode.
    """
    grads = pde.gradient(u_fn, points)
    u = pde.values(u_fn, points)
    return grads[:, 0] + u * grads[:, 1] - nu * pde.second_derivative(u_fn, points, 1)


def ic_residual(u_fn: Callable[[jax.Array], jax.Array], points: jax.Array) -> jax.Array:
    """u(0, x) + sin(pi x) at ``points`` (N, 2) on t = 0 -> (N,)."""
    return pde.values(u_fn, points) - initial_value(points[:, 1])


def bc_residual(u_fn: Callable[[jax.Array], jax.Array], points: jax.Array) -> jax.Array:
    """u(t, +-1) at ``points`` (N, 2) on x = +-1 -> (N,)."""
    return pde.values(u_fn, points)


def _net(options: dict) -> nn.Module:
    return common.make_net(options)


@dataclasses.dataclass(frozen=True, eq=False)
class Burgers(common.FieldProblem):
    """u_t + u u_x = nu u_xx with u(0, x) = -sin(pi x), u(t, +-1) = 0; params = flax params.

    Terms: ``"pde"`` the residual at interior points (``Objective.of_residual``, coords (t, x));
    ``"ic"`` u(0, x) + sin(pi x) on t = 0 and ``"bc"`` u(t, +-1) (half the points on each
    side), each a point-wise equality Constraint (the default) or ``Objective.of_residual``
    (options ``ic``, ``bc``). ``evaluate`` gives rel_l2 against Cole-Hopf on a fixed grid.
    """

    net: nn.Module
    nu: float
    nodes: int
    n_points: int
    n_ic: int
    n_bc: int
    ic: str
    bc: str
    eval_points: np.ndarray
    eval_exact: np.ndarray
    options: dict
    name: str = "burgers"

    def reference(self, points: np.ndarray) -> np.ndarray:
        return cole_hopf(points[:, 0], points[:, 1], self.nu, self.nodes)

    def sample(self, key, step):
        """Fresh points each call (``step`` unused): uniform in [0, 1] x [-1, 1], on t = 0, on x = +-1."""
        k_in, k_ic, k_bc = jax.random.split(key, 3)
        inner = pde.in_box(k_in, self.n_points, [0.0, -1.0], [1.0, 1.0])
        x0 = jax.random.uniform(k_ic, (self.n_ic,), jnp.float32, -1.0, 1.0)
        tb = jax.random.uniform(k_bc, (self.n_bc,), jnp.float32)
        side = jnp.where(jnp.arange(self.n_bc) % 2 == 0, -1.0, 1.0).astype(jnp.float32)
        return {"interior": inner, "initial": jnp.stack([jnp.zeros_like(x0), x0], axis=-1),
                "boundary": jnp.stack([tb, side], axis=-1)}

    def terms(self, params, batch):
        u = self.u_fn(params)
        inner, initial, edge = batch["interior"], batch["initial"], batch["boundary"]
        return {"pde": Objective.of_residual(residual(u, inner, self.nu), inner),
                "ic": common.condition(self.ic, ic_residual(u, initial), initial),
                "bc": common.condition(self.bc, bc_residual(u, edge), edge)}

    def config(self):
        return {"name": self.name, "nu": self.nu, "nodes": self.nodes, "n_points": self.n_points,
                "n_ic": self.n_ic, "n_bc": self.n_bc, "ic": self.ic, "bc": self.bc, **self.options}


def make_burgers(nu: float = NU, n_points: int = 2048, n_ic: int = 256, n_bc: int = 256,
                 ic: str = "constraint", bc: str = "constraint", width: int = 64, depth: int = 4,
                 activation: str = "tanh", fourier_features: int = 0, fourier_scale: float = 1.0,
                 n_eval_t: int = 101, n_eval_x: int = 256, nodes: int = 200, arch: str = "mlp",
                 rwf: bool = False) -> Burgers:
    """Viscous Burgers (see the module docstring).

    Args:
      nu: the viscosity (0.01 / pi in the benchmark).
      n_points, n_ic, n_bc: points per ``sample``: interior, on t = 0, on x = +-1.
      ic, bc: "constraint" (point-wise equality, the default) or "objective" (squared, weighted
        by the balancer) for the initial and boundary conditions.
      width, depth, activation: the network (``depth`` hidden layers or blocks of ``width``).
      arch, rwf: "mlp", "modified_mlp" or "pirate", and random weight factorization
        (``pinnopt.nets.make_net``).
      fourier_features, fourier_scale: random Fourier features of (t, x) (0: none).
      n_eval_t, n_eval_x: the fixed evaluation grid, t = linspace(0, 1), x = linspace(-1, 1)
        (101 x 256 as Raissi et al.'s data, whose t has 100 points).
      nodes: Gauss-Hermite nodes of the reference (2..300).
    """
    nu = common.check_real("nu", nu, positive=True)
    counts = {name: common.check_count(name, value) for name, value in
              (("n_points", n_points), ("n_ic", n_ic), ("n_bc", n_bc), ("n_eval_t", n_eval_t),
               ("n_eval_x", n_eval_x), ("nodes", nodes))}
    if counts["nodes"] > MAX_NODES:
        raise ValueError(f"nodes must be at most {MAX_NODES}, got {nodes!r}")
    common.check_mode("ic", ic)
    common.check_mode("bc", bc)
    options = {"width": width, "depth": depth, "activation": activation, "fourier_features": fourier_features,
               "fourier_scale": fourier_scale, "n_eval_t": n_eval_t, "n_eval_x": n_eval_x, "arch": arch,
               "rwf": rwf}
    net = _net(options)
    points = space_time_grid(counts["n_eval_t"], counts["n_eval_x"])
    exact = grid_reference(counts["n_eval_t"], counts["n_eval_x"], nu, counts["nodes"])
    return Burgers(net, nu, counts["nodes"], counts["n_points"], counts["n_ic"], counts["n_bc"], ic, bc,
                   points, exact, options)
