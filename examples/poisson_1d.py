"""A 1-D Poisson problem with a Dirichlet constraint, solved with pinnopt's defaults.

    -u''(x) = pi^2 sin(pi x) on (0, 1),   u(0) = u(1) = 0,   exact u = sin(pi x).

The boundary condition is a point-wise equality ``Constraint`` with the tolerance we accept
(``tol``); the run certifies it on held-out points. Run it from the command line::

    pinnopt solve examples/poisson_1d.py:make_problem --steps 1500 --lr 1e-2

or from Python: ``python examples/poisson_1d.py``.
"""
import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp

import pinnopt
from pinnopt import pde


@dataclass(frozen=True)
class Poisson1D:
    n_interior: int = 128
    width: int = 32
    depth: int = 3
    bc_tol: float = 1e-2
    name: str = "poisson_1d"

    @property
    def field(self):
        return pde.mlp_field(1, width=self.width, depth=self.depth)

    def init(self, key):
        return self.field.init(key)

    def sample(self, key, step):
        return {"interior": pde.in_box(key, self.n_interior, [0.0], [1.0]), "boundary": jnp.array([[0.0], [1.0]])}

    def terms(self, params, batch):
        u = functools.partial(self.field.u, params)
        x = batch["interior"]
        residual = -pde.laplacian(u, x) - jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])
        return {"pde": pinnopt.Objective(residual**2, coords=x),
                "bc": pinnopt.Constraint(pde.values(u, batch["boundary"]), "eq", tol=self.bc_tol)}

    def evaluate(self, params):
        x = jnp.linspace(0.0, 1.0, 201)[:, None]
        return {"rel_l2": pde.relative_l2(pde.values(functools.partial(self.field.u, params), x),
                                          jnp.sin(jnp.pi * x[:, 0]))}


def make_problem(n_interior: int = 128, width: int = 32, depth: int = 3, bc_tol: float = 1e-2) -> Poisson1D:
    return Poisson1D(n_interior, width, depth, bc_tol)


if __name__ == "__main__":
    result = pinnopt.solve(make_problem(), optimizer="adam", optimizer_kwargs={"learning_rate": 1e-2}, steps=1500)
    print(f"relative L2 error {result.summary['final']['eval/rel_l2']:.2e}; "
          f"boundary certified: {result.summary['certified']}")
