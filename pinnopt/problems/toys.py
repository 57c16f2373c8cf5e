"""Test functions with known minima, and a small constrained problem with a known KKT point.

For each, params = the point x (a float32 vector); the single objective term is the function
value, a non-negative scalar (every function here has minimum value 0).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from pinnopt.problems.base import KnownMinimum
from pinnopt.terms import Constraint, Objective


def rastrigin(x: jax.Array, a: float = 10.0) -> jax.Array:
    """f(x) = A d + sum_i (x_i^2 - A cos(2 pi x_i)); minimum 0 at x = 0."""
    return a * x.shape[-1] + jnp.sum(x**2 - a * jnp.cos(2 * jnp.pi * x), axis=-1)


def ackley(x: jax.Array, a: float = 20.0, b: float = 0.2, c: float = 2 * np.pi) -> jax.Array:
    """f(x) = -a exp(-b sqrt(mean x_i^2)) - exp(mean cos(c x_i)) + a + e; minimum 0 at x = 0.

    The BBI paper's variant uses b = 0.02. The square root gets a tiny floor so the gradient
    at x = 0 is finite.
    """
    r = jnp.sqrt(jnp.mean(x**2, axis=-1) + 1e-30)
    return -a * jnp.exp(-b * r) - jnp.exp(jnp.mean(jnp.cos(c * x), axis=-1)) + a + jnp.e


def zakharov(x: jax.Array) -> jax.Array:
    """f(x) = sum x_i^2 + (sum 0.5 i x_i)^2 + (sum 0.5 i x_i)^4, i = 1..d; minimum 0 at x = 0."""
    i = jnp.arange(1, x.shape[-1] + 1, dtype=x.dtype)
    s = jnp.sum(0.5 * i * x, axis=-1)
    return jnp.sum(x**2, axis=-1) + s**2 + s**4


def two_basin(x: jax.Array, x1: jax.Array, x2: jax.Array, eps: float = 2.75e-6) -> jax.Array:
    """V(x) = -exp(-0.4|x-x1|^2) - (1-eps) exp(-0.8|x-x2|^2) + 1e-3 |x-x1|^2 |x-x2|^2 + 1.

    Two basins of almost equal depth (eps tunes the difference) and different widths, the
    setting of the BBI paper's basin-hopping experiment.
    """
    d1 = jnp.sum((x - x1) ** 2, axis=-1)
    d2 = jnp.sum((x - x2) ** 2, axis=-1)
    return -jnp.exp(-0.4 * d1) - (1 - eps) * jnp.exp(-0.8 * d2) + 1e-3 * d1 * d2 + 1.0


@dataclasses.dataclass(frozen=True)
class TestFunction:
    """A test-function problem: params = x, one objective term ``"f"`` = f(x).

    ``x0`` fixes the start; otherwise ``init`` draws x uniformly from ``[-init_scale, init_scale]^dim``.
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    dim: int
    known_minimum: KnownMinimum
    init_scale: float = 4.0
    x0: Optional[Sequence[float]] = None
    options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if int(self.dim) < 1:
            raise ValueError(f"{self.name}: dim must be a positive integer, got {self.dim}")
        if self.x0 is not None and len(self.x0) != self.dim:
            raise ValueError(f"{self.name}: x0 has {len(self.x0)} entries but dim={self.dim}")

    def init(self, key):
        if self.x0 is not None:
            return jnp.asarray(self.x0, jnp.float32)
        return jax.random.uniform(key, (self.dim,), jnp.float32, -self.init_scale, self.init_scale)

    def sample(self, key, step):
        return None

    def terms(self, params, batch):
        return {"f": Objective(loss=self.fn(params))}

    def evaluate(self, params):
        out = {"f": self.fn(params)}
        if self.known_minimum.x is not None:
            out["distance_to_minimum"] = jnp.linalg.norm(params - jnp.asarray(self.known_minimum.x, params.dtype))
        return out

    def config(self):
        return {"name": self.name, "dim": self.dim, "init_scale": self.init_scale,
                "x0": None if self.x0 is None else list(self.x0), **self.options}


def make_rastrigin(dim: int = 2, a: float = 10.0, init_scale: float = 5.12, x0=None,
                   eps8: float = 0.0) -> TestFunction:
    """Rastrigin, plus ``eps8 * sum(x_i^8)`` when ``eps8 > 0``: a confining wall far out that keeps
    energy-conserving optimizers from wandering off (the minimum stays 0 at x = 0)."""
    if not eps8 >= 0:
        raise ValueError(f"rastrigin: eps8 must be non-negative, got {eps8}")
    fn = (lambda x: rastrigin(x, a) + eps8 * jnp.sum(x**8, axis=-1)) if eps8 else (lambda x: rastrigin(x, a))
    return TestFunction("rastrigin", fn, dim, KnownMinimum(np.zeros(dim), 0.0), init_scale, x0,
                        {"a": a, "eps8": eps8})


def make_ackley(dim: int = 2, a: float = 20.0, b: float = 0.2, init_scale: float = 4.0, x0=None) -> TestFunction:
    return TestFunction("ackley", lambda x: ackley(x, a, b), dim, KnownMinimum(np.zeros(dim), 0.0),
                        init_scale, x0, {"a": a, "b": b})


def make_zakharov(dim: int = 2, init_scale: float = 5.0, x0=None) -> TestFunction:
    return TestFunction("zakharov", zakharov, dim, KnownMinimum(np.zeros(dim), 0.0), init_scale, x0)


def make_two_basin(dim: int = 2, eps: float = 2.75e-6, centre1=None, centre2=None,
                   init_scale: float = 10.0, x0=None) -> TestFunction:
    """Basins at ``centre1`` (default (-2, ..., -2)) and ``centre2`` (default (2, ..., 2)).

    The known minimum recorded is the lower of the two centres (evaluated in float64); the
    true minimisers are shifted very slightly by the quartic term.
    """
    c1 = np.full(dim, -2.0) if centre1 is None else np.asarray(centre1, float)
    c2 = np.full(dim, 2.0) if centre2 is None else np.asarray(centre2, float)
    if c1.shape != (dim,) or c2.shape != (dim,):
        raise ValueError(f"two_basin: centre1 and centre2 must have {dim} entries")
    fn = lambda x: two_basin(x, jnp.asarray(c1, x.dtype), jnp.asarray(c2, x.dtype), eps)
    values = [_two_basin_f64(c, c1, c2, eps) for c in (c1, c2)]
    best = int(np.argmin(values))
    return TestFunction("two_basin", fn, dim, KnownMinimum((c1, c2)[best], values[best]), init_scale, x0,
                        {"eps": eps, "centre1": c1.tolist(), "centre2": c2.tolist()})


def _two_basin_f64(x, x1, x2, eps):
    d1, d2 = np.sum((x - x1) ** 2), np.sum((x - x2) ** 2)
    return float(-np.exp(-0.4 * d1) - (1 - eps) * np.exp(-0.8 * d2) + 1e-3 * d1 * d2 + 1.0)


@dataclasses.dataclass(frozen=True)
class ConstrainedQuadratic:
    """min |x - target|^2 subject to linear constraints A_eq x = b_eq and A_in x <= b_in.

    The default is the AL demo: min (x0-2)^2 + (x1-1)^2 s.t. x0 + x1 <= 1, whose KKT point
    is x* = (1, 0) with multiplier lam* = 2. ``kkt()`` solves the KKT system exactly for the
    given data (assuming the listed inequalities are active at the solution).
    """

    target: Sequence[float] = (2.0, 1.0)
    a_eq: Sequence[Sequence[float]] = ()
    b_eq: Sequence[float] = ()
    a_in: Sequence[Sequence[float]] = ((1.0, 1.0),)
    b_in: Sequence[float] = (1.0,)
    name: str = "constrained_quadratic"

    def init(self, key):
        return jnp.zeros(len(self.target), jnp.float32)

    def sample(self, key, step):
        return None

    def terms(self, params, batch):
        out = {"f": Objective(loss=jnp.sum((params - jnp.asarray(self.target, params.dtype)) ** 2))}
        for i, (row, b) in enumerate(zip(self.a_eq, self.b_eq)):
            out[f"eq{i}"] = Constraint(jnp.dot(jnp.asarray(row, params.dtype), params) - b, "eq")
        for i, (row, b) in enumerate(zip(self.a_in, self.b_in)):
            out[f"ineq{i}"] = Constraint(jnp.dot(jnp.asarray(row, params.dtype), params) - b, "ineq")
        return out

    def kkt(self):
        """(x*, multipliers) from the KKT system with all constraints active."""
        t = np.asarray(self.target, float)
        a = np.asarray(list(self.a_eq) + list(self.a_in), float).reshape(-1, len(t))
        b = np.asarray(list(self.b_eq) + list(self.b_in), float)
        n, m = len(t), len(b)
        k = np.block([[2 * np.eye(n), a.T], [a, np.zeros((m, m))]])
        sol = np.linalg.solve(k, np.concatenate([2 * t, b]))
        return sol[:n], sol[n:]

    @property
    def known_minimum(self):
        x, _ = self.kkt()
        return KnownMinimum(x, float(np.sum((x - np.asarray(self.target)) ** 2)))

    def evaluate(self, params):
        return {"distance_to_minimum": jnp.linalg.norm(params - jnp.asarray(self.known_minimum.x, params.dtype))}

    def config(self):
        return dataclasses.asdict(self)
