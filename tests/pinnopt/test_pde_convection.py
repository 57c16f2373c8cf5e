"""1D convection: residuals of the exact solution, architecture options, terms, evaluation, training."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnopt import problems
from pinnopt.problems import convection as C
from pinnopt.terms import Constraint, Objective

residual = jax.jit(C.residual, static_argnums=(0, 2))


class FieldNet:
    """apply(params, tx) = field(tx shifted in t by params): u = u*(t + s, x) for a shift s."""

    def __init__(self, field):
        self.field = field

    def apply(self, params, tx):
        return self.field(tx + jnp.stack([params, 0.0 * params]))[..., None]


def small(**kwargs):
    base = dict(n_points=256, n_ic=64, n_bc=32, width=16, depth=2, n_eval_t=21, n_eval_x=32)
    return C.make_convection(**{**base, **kwargs})


@pytest.mark.parametrize("beta", [1.0, 30.0])
def test_exact_solution_has_zero_residual(beta):
    prob = small(beta=beta)
    batch = prob.sample(jax.random.key(0), 0)
    u = lambda tx: C.exact_solution(tx, beta)
    r = residual(u, batch["interior"], beta)
    assert r.dtype == jnp.float32 and r.shape == (256,)
    # u_t and beta u_x are each of size beta; they cancel to float32 rounding
    assert float(jnp.max(jnp.abs(r))) < 1e-5 * beta
    wrong = lambda tx: C.exact_solution(tx, 1.1 * beta)
    assert float(jnp.max(jnp.abs(residual(wrong, batch["interior"], beta)))) > 0.05 * beta
    assert float(jnp.max(jnp.abs(C.ic_residual(u, batch["initial"])))) < 1e-6
    t = batch["interior"][:, 0]
    assert float(jnp.max(jnp.abs(C.periodicity_residual(u, t)))) < 1e-4 * beta


def test_sample_ranges_and_time_is_column_zero():
    prob = small(periodic=False)
    batch = jax.jit(prob.sample)(jax.random.key(3), jnp.int32(11))
    tx = np.asarray(batch["interior"])
    assert tx.dtype == np.float32 and tx.shape == (256, 2)
    assert tx[:, 0].min() >= 0 and tx[:, 0].max() <= 1
    assert tx[:, 1].min() >= 0 and tx[:, 1].max() < 2 * np.pi
    assert tx[:, 1].max() > 1.0  # x spans [0, 2 pi), not [0, 1]
    ic = np.asarray(batch["initial"])
    assert ic.shape == (64, 2) and np.all(ic[:, 0] == 0)
    assert batch["t_boundary"].shape == (32,)
    assert "t_boundary" not in small().sample(jax.random.key(3), 0)


@pytest.mark.parametrize("periodic,ic,bc", [(True, "objective", "objective"), (True, "constraint", "objective"),
                                            (False, "objective", "constraint")])
def test_terms_under_jit_have_the_right_kinds_and_shapes(periodic, ic, bc):
    prob = small(periodic=periodic, ic=ic, bc=bc)
    params = prob.init(jax.random.key(0))
    batch = prob.sample(jax.random.key(1), 0)
    terms = jax.jit(prob.terms)(params, batch)
    assert set(terms) == ({"pde", "ic"} if periodic else {"pde", "ic", "bc"})
    pde = terms["pde"]
    assert isinstance(pde, Objective) and pde.loss.shape == (256,) and pde.coords.shape == (256, 2)
    np.testing.assert_array_equal(pde.coords, batch["interior"])
    kinds = {"objective": Objective, "constraint": Constraint}
    assert isinstance(terms["ic"], kinds[ic]) and terms["ic"].coords.shape == (64, 2)
    u0 = prob.net.apply(params, batch["initial"])[:, 0] - jnp.sin(batch["initial"][:, 1])
    got = terms["ic"].value if ic == "constraint" else terms["ic"].loss
    np.testing.assert_allclose(got, u0 if ic == "constraint" else u0**2, rtol=1e-5, atol=1e-6)
    if not periodic:
        assert isinstance(terms["bc"], kinds[bc]) and terms["bc"].kind == "eq"
        np.testing.assert_array_equal(terms["bc"].coords[:, 0], batch["t_boundary"])


def test_periodic_network_is_exactly_periodic_in_x():
    prob = small(periodic=True, harmonics=2, fourier_features=8, fourier_scale=2.0)
    params = prob.init(jax.random.key(0))
    t = jnp.linspace(0, 1, 7)
    gap = C.periodicity_residual(prob.u_fn(params), t)
    assert float(jnp.max(jnp.abs(gap))) < 1e-5
    plain = small(periodic=False)
    gap = C.periodicity_residual(plain.u_fn(plain.init(jax.random.key(0))), t)
    assert float(jnp.max(jnp.abs(gap))) > 1e-3  # a raw-input net is not periodic


def test_evaluate_of_exact_solution_and_of_a_shifted_one():
    beta = 3.0
    prob = dataclasses.replace(small(beta=beta), net=FieldNet(lambda tx: C.exact_solution(tx, beta)))
    assert float(jax.jit(prob.evaluate)(jnp.float32(0.0))["rel_l2"]) < 1e-6
    # shift in t by s: u = sin(x - beta t - beta s); ||u - u*|| / ||u*|| = 2 |sin(beta s / 2)|
    s = 0.1
    np.testing.assert_allclose(float(prob.evaluate(jnp.float32(s))["rel_l2"]),
                               2 * abs(np.sin(beta * s / 2)), rtol=1e-4)


def test_evaluation_grid_is_fixed():
    a, b = small(), small()
    np.testing.assert_array_equal(a.eval_points, b.eval_points)
    assert a.eval_points.shape == (21 * 32, 2)
    assert a.eval_points[:, 1].max() < 2 * np.pi and a.eval_points[:, 0].max() == 1.0


def _train(prob, steps, lr=1e-2):
    """Adam on the sum of the mean terms (a stand-in for the solve loop)."""
    opt = optax.adam(lr)

    def loss_fn(params, batch):
        return sum(jnp.mean(t.loss) for t in prob.terms(params, batch).values())

    def step(carry, i):
        params, state = carry
        batch = prob.sample(jax.random.fold_in(jax.random.key(1), i), i)
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    params = prob.init(jax.random.key(0))
    (params, _), losses = jax.jit(lambda c: jax.lax.scan(step, c, jnp.arange(steps)))((params, opt.init(params)))
    return params, losses


def test_adam_reduces_loss_and_error_for_small_beta():
    prob = small(beta=1.0, n_points=128, n_ic=32)
    params0 = prob.init(jax.random.key(0))
    err0 = float(prob.evaluate(params0)["rel_l2"])
    params, losses = _train(prob, 300)
    start, end = float(jnp.mean(losses[:10])), float(jnp.mean(losses[-10:]))
    err = float(prob.evaluate(params)["rel_l2"])
    assert np.isfinite(end) and end < 0.1 * start
    assert err < 0.5 * err0 and err < 0.3


def test_registered_config_and_validation():
    prob = problems.get("convection", beta=5.0, width=8, depth=1, fourier_features=4)
    assert prob.name == "convection" and prob.beta == 5.0
    cfg = json.loads(json.dumps(prob.config()))
    assert cfg["beta"] == 5.0 and cfg["periodic"] is True and cfg["fourier_features"] == 4
    assert problems.get("convection").beta == 30.0
    for kwargs, word in [({"ic": "hard"}, "ic"), ({"bc": "x"}, "bc"), ({"beta": float("nan")}, "beta"),
                         ({"n_points": 1}, "n_points"), ({"fourier_scale": 0.0}, "fourier_scale"),
                         ({"width": 0}, "width")]:
        with pytest.raises(ValueError, match=word):
            C.make_convection(**kwargs)


def test_default_network_is_unchanged_and_arch_options_build_other_nets():
    from pinnopt import nets
    assert small().net == nets.make_mlp(16, 2, 1, "tanh", ((1, 2 * np.pi),), 1, 0, 1.0)
    for arch, rwf, period, kind in [("modified_mlp", True, 2.0, nets.ModifiedMLP), ("pirate", False, None, nets.PirateNet),
                                    ("mlp", True, None, nets.PlainMLP)]:
        prob = small(beta=5.0, arch=arch, rwf=rwf, time_period=period, time_trainable=period is not None)
        assert isinstance(prob.net, kind)
        if arch == "modified_mlp":
            params = prob.init(jax.random.key(0))
            terms = jax.jit(prob.terms)(params, prob.sample(jax.random.key(1), 0))
            assert all(np.all(np.isfinite(t.loss)) for t in terms.values())
        cfg = json.loads(json.dumps(prob.config()))
        assert (cfg["arch"], cfg["rwf"], cfg["time_period"]) == (arch, rwf, period)
    # the time embedding makes u exactly periodic in t
    prob = small(arch="modified_mlp", time_period=1.5)
    params = prob.init(jax.random.key(0))
    tx = jnp.array([[0.2, 1.0], [0.9, 4.0]])
    np.testing.assert_allclose(prob.net.apply(params, tx + jnp.array([1.5, 0.0])), prob.net.apply(params, tx), atol=2e-5)
    for kwargs, word in [({"arch": "resnet"}, "arch"), ({"rwf": "yes"}, "rwf"), ({"time_period": -1.0}, "time_period")]:
        with pytest.raises(ValueError, match=word):
            small(**kwargs)
