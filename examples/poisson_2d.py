"""A 2-D Poisson problem with a Dirichlet constraint on the whole boundary, solved with the defaults.

    -Laplace u = 2 pi^2 sin(pi x) sin(pi y) on (0, 1)^2,   u = 0 on the boundary,
    exact u = sin(pi x) sin(pi y).

    pinnopt solve examples/poisson_2d.py:make_problem --steps 4000 --lr 3e-3
"""
import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp

import pinnopt
from pinnopt import pde


def exact(points):
    return jnp.sin(jnp.pi * points[:, 0]) * jnp.sin(jnp.pi * points[:, 1])


@dataclass(frozen=True)
class Poisson2D:
    n_interior: int = 256
    n_boundary: int = 128
    width: int = 32
    depth: int = 3
    bc_tol: float = 2e-2
    name: str = "poisson_2d"

    @property
    def field(self):
        return pde.mlp_field(2, width=self.width, depth=self.depth)

    def init(self, key):
        return self.field.init(key)

    def sample(self, key, step):
        k_in, k_on = jax.random.split(key)
        return {"interior": pde.in_box(k_in, self.n_interior, [0.0, 0.0], [1.0, 1.0]),
                "boundary": pde.on_box(k_on, self.n_boundary, [0.0, 0.0], [1.0, 1.0])}

    def terms(self, params, batch):
        u = functools.partial(self.field.u, params)
        x = batch["interior"]
        residual = -pde.laplacian(u, x) - 2 * jnp.pi**2 * exact(x)
        return {"pde": pinnopt.Objective(residual**2, coords=x),
                "bc": pinnopt.Constraint(pde.values(u, batch["boundary"]), "eq", coords=batch["boundary"],
                                         tol=self.bc_tol)}

    def evaluate(self, params):
        g = jnp.linspace(0.0, 1.0, 51)
        points = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        return {"rel_l2": pde.relative_l2(pde.values(functools.partial(self.field.u, params), points), exact(points))}


def make_problem(n_interior: int = 256, n_boundary: int = 128, width: int = 32, depth: int = 3,
                 bc_tol: float = 2e-2) -> Poisson2D:
    return Poisson2D(n_interior, n_boundary, width, depth, bc_tol)


if __name__ == "__main__":
    result = pinnopt.solve(make_problem(), optimizer="adam", optimizer_kwargs={"learning_rate": 3e-3}, steps=4000)
    print(f"relative L2 error {result.summary['final']['eval/rel_l2']:.2e}; "
          f"boundary certified: {result.summary['certified']}")
