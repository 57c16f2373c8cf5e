"""Small problems shared by the solve-loop tests (a plain module: conftest.py names clash across test folders)."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pinnopt.terms import Constraint, Objective


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(8)(x))
        return nn.Dense(1)(x)[..., 0]


@dataclasses.dataclass(frozen=True)
class FitSine:
    """Fit u(x) = sin(pi x) on fresh random points each step, subject to u(x) <= cap point-wise.

    Exercises everything stateful at once: network params, a resampled batch (the PRNG key
    stream), coordinates for the spatial balancer, and an inequality constraint for AL.
    ``nan_fraction`` makes that share of the sampled batches produce a NaN loss.
    """

    n: int = 32
    cap: float = 0.8
    nan_fraction: float = 0.0
    name: str = "fit_sine"

    def init(self, key):
        return _MLP().init(key, jnp.zeros((1, 1)))

    def sample(self, key, step):
        k1, k2 = jax.random.split(key)
        return {"x": jax.random.uniform(k1, (self.n, 1), minval=-1.0, maxval=1.0),
                "u": jax.random.uniform(k2, ())}

    def terms(self, params, batch):
        x = batch["x"]
        u = _MLP().apply(params, x)
        loss = (u - jnp.sin(jnp.pi * x[:, 0])) ** 2
        loss = jnp.where(batch["u"] < self.nan_fraction, jnp.nan, loss)
        return {"fit": Objective(loss, coords=x), "cap": Constraint(u - self.cap, "ineq", coords=x)}

    def evaluate(self, params):
        x = jnp.linspace(-1, 1, 101)[:, None]
        return {"max_u": jnp.max(_MLP().apply(params, x))}


def run_report(res, heldout_prefixes=("heldout",), series=()) -> dict:
    """What the forced-device tests compare, as JSON-ready lists: the logged steps and losses, the
    last row's values whose names start with ``heldout_prefixes``, the ``series`` of named metrics,
    every state leaf, and the ids of the devices that hold the state."""
    leaves = jax.tree_util.tree_leaves(res.state)
    out = {"loss": [r["loss"] for r in res.history], "steps": [r["step"] for r in res.history],
           "heldout": {k: v for k, v in res.history[-1].items() if k.startswith(tuple(heldout_prefixes))},
           "state": [np.asarray(x, np.float64).ravel().tolist() for x in leaves],
           "placement": sorted({d.id for x in leaves for d in x.sharding.device_set})}
    out.update({name: [r[name] for r in res.history] for name in series})
    return out


def cache_compilations(folder: str) -> None:
    """Every solve compiles its step afresh; an on-disk compilation cache under ``folder`` lets a
    resumed run in the same process load the identical program instead."""
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


RTOL, ATOL = 2e-4, 2e-6  # float32, after 50 Adam steps with differently ordered sums


def assert_same_run(a, b, rtol=RTOL, atol=ATOL):
    """Same rows, losses and held-out values point by point; every state leaf equal in norm,
    ``|x - y| <= rtol |y| + atol``, with its non-finite sentinels in the same places (a single
    element near zero may differ by more than ``rtol`` of itself: float32 sums in another order)."""
    assert a["steps"] == b["steps"]
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=rtol, atol=atol)
    assert a["heldout"].keys() == b["heldout"].keys()
    for key in a["heldout"]:
        np.testing.assert_allclose(a["heldout"][key], b["heldout"][key], rtol=rtol, atol=atol, err_msg=key)
    assert len(a["state"]) == len(b["state"])
    for i, (x, y) in enumerate(zip(a["state"], b["state"])):
        x, y = np.asarray(x), np.asarray(y)
        finite = np.isfinite(y)
        np.testing.assert_array_equal(x[~finite], y[~finite], err_msg=f"state leaf {i}")
        gap, size = np.linalg.norm(x[finite] - y[finite]), np.linalg.norm(y[finite])
        assert gap <= rtol * size + atol, f"state leaf {i}: |x - y| = {gap:.3g}, |y| = {size:.3g}"
