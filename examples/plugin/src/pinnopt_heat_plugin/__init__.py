"""The 1-D heat equation as a pinnopt plugin problem.

    u_t = kappa u_xx on t in (0, 0.5), x in (0, 1);  u(0, x) = sin(pi x);  u(t, 0) = u(t, 1) = 0,
    exact u = exp(-kappa pi^2 t) sin(pi x).

The initial and boundary conditions are point-wise equality constraints; the factory is
declared under the entry-point group ``pinnopt.problems`` in this package's pyproject.
"""
import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp

import pinnopt
from pinnopt import pde


@dataclass(frozen=True)
class Heat1D:
    kappa: float = 0.5
    n_points: int = 256
    name: str = "heat_1d"

    @property
    def field(self):
        return pde.mlp_field(2, width=32, depth=3)  # points are (t, x)

    def init(self, key):
        return self.field.init(key)

    def sample(self, key, step):
        k1, k2, k3 = jax.random.split(key, 3)
        t0 = jnp.zeros((self.n_points // 4, 1))
        ends = jnp.where(jax.random.bernoulli(k3, 0.5, (self.n_points // 4, 1)), 1.0, 0.0)
        return {"interior": pde.in_box(k1, self.n_points, [0.0, 0.0], [0.5, 1.0]),
                "initial": jnp.concatenate([t0, jax.random.uniform(k2, t0.shape)], axis=1),
                "edges": jnp.concatenate([jax.random.uniform(k3, ends.shape) * 0.5, ends], axis=1)}

    def terms(self, params, batch):
        u = functools.partial(self.field.u, params)
        x = batch["interior"]
        residual = pde.time_derivative(u, x) - self.kappa * pde.second_derivative(u, x, axis=1)
        ic = pde.values(u, batch["initial"]) - jnp.sin(jnp.pi * batch["initial"][:, 1])
        return {"pde": pinnopt.Objective(residual**2, coords=x),
                "ic": pinnopt.Constraint(ic, "eq", coords=batch["initial"], tol=5e-2),
                "bc": pinnopt.Constraint(pde.values(u, batch["edges"]), "eq", coords=batch["edges"], tol=5e-2)}

    def evaluate(self, params):
        g = jnp.stack(jnp.meshgrid(jnp.linspace(0, 0.5, 21), jnp.linspace(0, 1, 41), indexing="ij"), -1).reshape(-1, 2)
        exact = jnp.exp(-self.kappa * jnp.pi**2 * g[:, 0]) * jnp.sin(jnp.pi * g[:, 1])
        return {"rel_l2": pde.relative_l2(pde.values(functools.partial(self.field.u, params), g), exact)}


def make_heat_1d(kappa: float = 0.5, n_points: int = 256) -> Heat1D:
    if not kappa > 0:
        raise ValueError(f"kappa must be positive, got {kappa!r}")
    return Heat1D(kappa, n_points)
