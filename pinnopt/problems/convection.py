"""1D convection, the classic PINN failure mode (Krishnapriyan et al., NeurIPS 2021).

    u_t + beta u_x = 0,   t in [0, 1],  x in [0, 2 pi) periodic,   u(0, x) = sin x,
    u*(t, x) = sin(x - beta t).

Points are (t, x): column 0 is time (the causal balancer ranks by it). With a fixed point set
and L-BFGS, a plain MLP on raw (t, x) reaches a relative L2 error of order 1 for beta >= 30 (the
paper). In our runs (128 x 4 tanh, fresh points every step, 1e5 Adam steps, lr 1e-3 decayed
0.9 per 2000 steps, loss = mean pde + w mean ic [+ w mean bc]), beta = 30 was solved by every
variant except periodic-only with w = 1 (rel L2 0.015-0.03; periodic w = 1: 0.52) and
beta = 50 by none (0.65-0.76). The factory's architecture options are the usual remedies: ``periodic=True`` feeds (cos x, sin x, ...) instead of x, which makes the
network exactly 2 pi-periodic (no boundary term needed) and the initial condition one linear
read-out away; ``fourier_features`` adds random Fourier features of the embedded input, to
reach the beta/(2 pi) oscillations in t; width/depth/activation size the network; ``arch``
(modified MLP, PirateNet), ``rwf`` and ``time_period`` choose the frontier's architectures
(``pinnopt.nets.make_net``).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pinnopt import pde
from pinnopt.nets import make_net
from pinnopt.terms import Constraint, Objective

TERM_MODES = ("objective", "constraint")


def exact_solution(tx: jax.Array, beta: float) -> jax.Array:
    """u*(t, x) = sin(x - beta t); ``tx`` (..., 2) -> (...)."""
    return jnp.sin(tx[..., 1] - beta * tx[..., 0])


def initial_value(x: jax.Array) -> jax.Array:
    """u(0, x) = sin x."""
    return jnp.sin(x)


def residual(u_fn: Callable[[jax.Array], jax.Array], points: jax.Array, beta: float) -> jax.Array:
    """r(t, x) = u_t + beta u_x at ``points`` (N, 2) -> (N,); ``u_fn`` maps one (t, x) to a scalar.

    Both derivatives come from ``pinnopt.pde.gradient`` (``jax.grad`` per point, its default:
    one backward pass gives both columns, faster here than a jvp per column).
    """
    grads = pde.gradient(u_fn, points)
    return grads[:, 0] + beta * grads[:, 1]


def ic_residual(u_fn: Callable[[jax.Array], jax.Array], points: jax.Array) -> jax.Array:
    """u(0, x) - sin x at ``points`` (N, 2) whose column 0 is t = 0 -> (N,)."""
    return pde.values(u_fn, points) - initial_value(points[:, 1])


def periodicity_residual(u_fn: Callable[[jax.Array], jax.Array], t: jax.Array) -> jax.Array:
    """u(t, 0) - u(t, 2 pi) at times ``t`` (N,) -> (N,)."""
    zero = jnp.stack([t, jnp.zeros_like(t)], axis=-1)
    period = jnp.stack([t, jnp.full_like(t, 2 * np.pi)], axis=-1)
    return pde.values(u_fn, zero) - pde.values(u_fn, period)


def space_time_grid(n_t: int, n_x: int) -> np.ndarray:
    """(t, x) on t = linspace(0, 1, n_t) x x = 2 pi k / n_x, float32 (n_t n_x, 2)."""
    t = np.linspace(0.0, 1.0, n_t)
    x = 2 * np.pi * np.arange(n_x) / n_x
    return np.stack(np.meshgrid(t, x, indexing="ij"), axis=-1).reshape(-1, 2).astype(np.float32)


def _term(mode: str, value: jax.Array, coords: jax.Array):
    return Constraint(value, "eq", coords=coords) if mode == "constraint" else Objective(value**2, coords=coords)


@dataclasses.dataclass(frozen=True, eq=False)
class Convection:
    """u_t + beta u_x = 0 with u(0, x) = sin x, periodic in x; params = flax params.

    Terms: ``"pde"`` Objective, loss (u_t + beta u_x)^2 at interior points (coords (t, x));
    ``"ic"`` u(0, x) - sin x at t = 0 points, an Objective (squared) or an equality Constraint
    (option ``ic``); ``"bc"`` u(t, 0) - u(t, 2 pi), only when the network is not periodic by
    construction, as an Objective or Constraint (option ``bc``), coords (t, 0).
    ``evaluate`` gives rel_l2 on a fixed (t, x) grid.
    """

    net: nn.Module
    beta: float
    n_points: int
    n_ic: int
    n_bc: int
    periodic: bool
    ic: str
    bc: str
    eval_points: np.ndarray
    options: dict
    name: str = "convection"

    def u_fn(self, params) -> Callable[[jax.Array], jax.Array]:
        """The network as a scalar function of one point (t, x)."""
        return functools.partial(pde.scalar_field(self.net), params)

    def init(self, key):
        return self.net.init(key, jnp.zeros((1, 2), jnp.float32))

    def predict(self, params, points) -> jax.Array:
        """u at ``points`` (N, 2) of (t, x) -> (N,) (jittable; what ``evaluate`` compares)."""
        return self.net.apply(params, jnp.asarray(points))[:, 0]

    def reference_solution(self, points) -> np.ndarray:
        """u*(t, x) = sin(x - beta t) at ``points`` (N, 2) -> (N,), float64 NumPy."""
        points = np.asarray(points, np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points must have shape (N, 2), got {points.shape}")
        return np.sin(points[:, 1] - self.beta * points[:, 0])

    def sample(self, key, step):
        """Fresh points each call (``step`` unused): uniform in [0, 1] x [0, 2 pi), on t = 0, on x = 0."""
        # Not pinnopt.pde.in_box: its keys differ, and these are the draws recorded runs made.
        k_t, k_x, k_ic, k_bc = jax.random.split(key, 4)
        t = jax.random.uniform(k_t, (self.n_points,), jnp.float32)
        x = jax.random.uniform(k_x, (self.n_points,), jnp.float32, 0.0, 2 * np.pi)
        x0 = jax.random.uniform(k_ic, (self.n_ic,), jnp.float32, 0.0, 2 * np.pi)
        batch = {"interior": jnp.stack([t, x], axis=-1),
                 "initial": jnp.stack([jnp.zeros_like(x0), x0], axis=-1)}
        if not self.periodic:
            batch["t_boundary"] = jax.random.uniform(k_bc, (self.n_bc,), jnp.float32)
        return batch

    def terms(self, params, batch):
        u = self.u_fn(params)
        inner, initial = batch["interior"], batch["initial"]
        out = {"pde": Objective(residual(u, inner, self.beta) ** 2, coords=inner),
               "ic": _term(self.ic, ic_residual(u, initial), initial)}
        if not self.periodic:
            tb = batch["t_boundary"]
            out["bc"] = _term(self.bc, periodicity_residual(u, tb),
                              jnp.stack([tb, jnp.zeros_like(tb)], axis=-1))
        return out

    def evaluate(self, params):
        points = jnp.asarray(self.eval_points)
        u = self.predict(params, points)
        return {"rel_l2": pde.relative_l2(u, exact_solution(points, self.beta))}

    def config(self):
        return {"name": self.name, "beta": self.beta, "n_points": self.n_points, "n_ic": self.n_ic,
                "n_bc": self.n_bc, "periodic": self.periodic, "ic": self.ic, "bc": self.bc, **self.options}


def make_convection(beta: float = 30.0, n_points: int = 2048, n_ic: int = 256, n_bc: int = 256,
                    periodic: bool = True, harmonics: int = 1, fourier_features: int = 0,
                    fourier_scale: float = 1.0, width: int = 128, depth: int = 4,
                    activation: str = "tanh", ic: str = "objective", bc: str = "objective",
                    n_eval_t: int = 101, n_eval_x: int = 128, arch: str = "mlp", rwf: bool = False,
                    time_period: Optional[float] = None, time_trainable: bool = False) -> Convection:
    """1D convection with speed ``beta`` (see the module docstring).

    Args:
      beta: convection speed (the problem gets hard for beta >= 30).
      n_points, n_ic, n_bc: points per ``sample``: interior, on t = 0, and times of the
        periodicity term (used only when ``periodic=False``).
      periodic: embed x as cos(k x), sin(k x), k = 1..``harmonics`` (exact periodicity, no "bc"
        term); ``False`` is the vanilla PINN on raw (t, x) with a "bc" term u(t, 0) = u(t, 2 pi).
      fourier_features, fourier_scale: random Fourier features [cos Bz, sin Bz] of the
        (embedded) input z, B ~ N(0, fourier_scale^2) fixed (0: none).
      width, depth, activation: the network (``pinnopt.nets.make_net``).
      ic, bc: "objective" (squared, weighted by the balancer) or "constraint" (equality,
        enforced by the constraint method) for the initial and periodicity conditions.
      n_eval_t, n_eval_x: the fixed evaluation grid (x excludes 2 pi, which repeats 0).
      arch: "mlp" (default: the same network and init as before this option), "modified_mlp"
        or "pirate" (see ``pinnopt.nets``).
      rwf: random weight factorization of every Dense kernel (mu = 1, sigma = 0.1).
      time_period, time_trainable: embed t as cos(2 pi k t / P), sin(2 pi k t / P) (exactly
        P-periodic in t; None: raw t), P fixed or learnt. P <= 1 forces u(t) = u(t + P) inside
        [0, 1] unless trainable; jaxpi's advection starts a trainable P at 1.
    """
    if not np.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta!r}")
    for name, mode in (("ic", ic), ("bc", bc)):
        if mode not in TERM_MODES:
            raise ValueError(f"{name} must be one of {TERM_MODES}, got {mode!r}")
    for name, value in (("n_points", n_points), ("n_ic", n_ic), ("n_bc", n_bc),
                        ("n_eval_t", n_eval_t), ("n_eval_x", n_eval_x)):
        if int(value) != value or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    periods = ((1, 2 * np.pi),) if periodic else ()
    net = make_net(arch, width, depth, 1, activation, periods, harmonics, fourier_features, fourier_scale,
                   rwf=rwf, time_period=time_period, time_column=0, time_trainable=time_trainable)
    options = {"harmonics": harmonics, "fourier_features": fourier_features,
               "fourier_scale": fourier_scale, "width": width, "depth": depth,
               "activation": activation, "n_eval_t": n_eval_t, "n_eval_x": n_eval_x, "arch": arch,
               "rwf": rwf, "time_period": time_period, "time_trainable": time_trainable}
    return Convection(net, float(beta), int(n_points), int(n_ic), int(n_bc), bool(periodic), ic, bc,
                      space_time_grid(int(n_eval_t), int(n_eval_x)), options)
