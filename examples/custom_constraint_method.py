"""A constraint method of one's own: the exact (l1) penalty, mu * max violation, with a growing mu.

    loss = sum_i mu_i * c_i,   c_i = mean|value| (equality) or mean(max(0, value)) (inequality)
    mu_i <- min(mu_max, mu_i * growth) every step while c_i > target

The state (mu per constraint) goes in and out of the compiled step like every pinnopt state,
so the growing mu really reaches the compiled code. Registered by name: once this file is
imported, ``pinnopt.solve(..., constraints="exact_penalty")`` and
``pinnopt.constraints.get("exact_penalty", growth=1.01)`` find it.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

import pinnopt
from pinnopt.constraints import ConstraintMethod, violation


class ExactPenaltyState(NamedTuple):
    mu: dict  # {name: float32 scalar}


@pinnopt.constraints.register("exact_penalty")
def exact_penalty(mu_init: float = 1.0, growth: float = 1.002, mu_max: float = 1e3,
                  target: float = 0.0) -> ConstraintMethod:
    if not (mu_init > 0 and growth >= 1 and mu_max >= mu_init and target >= 0):
        raise ValueError("need mu_init > 0, growth >= 1, mu_max >= mu_init and target >= 0")

    def init(key, constraints):
        return {}, ExactPenaltyState({n: jnp.float32(mu_init) for n in constraints})

    def loss(constraints, params, state):
        c = {n: violation(con) for n, con in constraints.items()}
        total = sum((state.mu[n] * c[n] for n in c), jnp.float32(0.0))
        metrics = {f"violation/{n}": jax.lax.stop_gradient(v) for n, v in c.items()}
        metrics.update({f"mu/{n}": state.mu[n] for n in c})
        return total, metrics

    def update(constraints, params, state):
        mu = {n: jnp.where(violation(con) > target, jnp.minimum(state.mu[n] * growth, mu_max), state.mu[n])
              for n, con in constraints.items()}
        return ExactPenaltyState(mu)

    return ConstraintMethod(init, loss, update)  # diagnose: the default (no warnings)


if __name__ == "__main__":
    import importlib.util
    import os

    spec = importlib.util.spec_from_file_location("poisson_1d", os.path.join(os.path.dirname(__file__), "poisson_1d.py"))
    poisson = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(poisson)
    result = pinnopt.solve(poisson.make_problem(), constraints="exact_penalty", steps=1500,
                           optimizer_kwargs={"learning_rate": 1e-2})
    print(f"relative L2 {result.summary['final']['eval/rel_l2']:.2e}, mu {result.summary['final']['mu/bc']:.3g}, "
          f"certified {result.summary['certified']}")
