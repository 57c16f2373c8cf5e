"""Spatial weighting: W = 0 at start, per-term networks, the point-wise optimum and causal inside spatial."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnopt import balancing
from pinnopt.balancing import WeightNet
from pinnopt.terms import Objective

KEY = jax.random.PRNGKey(0)


def objectives():
    k1, k2, k3, k4 = jax.random.split(KEY, 4)
    return {"residual": Objective(jax.random.uniform(k1, (12,)) * 2.0, jax.random.uniform(k2, (12, 2))),
            "boundary": Objective(jax.random.uniform(k3, (5,)), jax.random.uniform(k4, (5, 4))),
            "data": Objective(jnp.array([0.2, 0.4]))}


def test_zero_initialised_net_halves_the_mean():
    objs = objectives()
    bal = balancing.get("spatial", width=8, depth=2)
    params, state = bal.init(KEY, objs)
    assert sorted(params["W"]) == ["boundary", "residual"]  # one net per term with coords
    # Each net takes its own coordinate dimension.
    assert params["W"]["residual"]["params"]["Dense_0"]["kernel"].shape == (2, 8)
    assert params["W"]["boundary"]["params"]["Dense_0"]["kernel"].shape == (4, 8)
    value, metrics = jax.jit(bal.loss)(objs, params, state)
    expected = 0.5 * jnp.mean(objs["residual"].loss) + 0.5 * jnp.mean(objs["boundary"].loss) + 0.3
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert metrics["spatial/w_mean"] == 1.0 and metrics["spatial/w_max"] == 1.0
    # W = 0 but it learns: the output layer gets a gradient through the hidden features.
    g = jax.jit(jax.grad(lambda p: bal.loss(objs, p, state)[0]))(params)
    assert jnp.any(g["W"]["residual"]["params"]["Dense_2"]["kernel"] != 0)


def test_terms_selects_the_weighted_terms():
    objs = objectives()
    bal = balancing.get("spatial", width=4, depth=1, terms=["boundary"], weights={"residual": 3.0})
    params, state = bal.init(KEY, objs)
    assert list(params["W"]) == ["boundary"]
    value, _ = bal.loss(objs, params, state)
    expected = 3.0 * jnp.mean(objs["residual"].loss) + 0.5 * jnp.mean(objs["boundary"].loss) + 0.3
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="no coords"):
        balancing.get("spatial", terms=["data"]).init(KEY, objs)
    with pytest.raises(ValueError, match="not among the objectives"):
        balancing.get("spatial", terms=["pde"]).init(KEY, objs)


def test_learns_the_pointwise_optimum():
    """For fixed l(x) = exp(2 (a.x + b)) the optimum W = 0.5 log l is affine: depth 0 represents it."""
    x = jax.random.uniform(KEY, (64, 2), minval=-1.0, maxval=1.0)
    a, b = jnp.array([0.7, -0.4]), 0.3
    objs = {"r": Objective(jnp.exp(2.0 * (x @ a + b)), x)}
    bal = balancing.get("spatial", depth=0)
    params, state = bal.init(KEY, objs)
    opt = optax.adam(optax.cosine_decay_schedule(0.05, 800))

    def body(carry, _):
        p, o = carry
        g = jax.grad(lambda p: bal.loss(objs, p, state)[0])(p)
        u, o = opt.update(g, o, p)
        return (optax.apply_updates(p, u), o), None

    (params, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, None, length=800))((params, opt.init(params)))
    dense = params["W"]["r"]["params"]["Dense_0"]
    np.testing.assert_allclose(dense["kernel"][:, 0], a, atol=2e-2)
    np.testing.assert_allclose(dense["bias"][0], b, atol=2e-2)
    _, metrics = bal.loss(objs, params, state)
    np.testing.assert_allclose(metrics["spatial/w_mean"], jnp.mean(1.0 / objs["r"].loss), rtol=5e-2)


def perturbed(params, scale=0.3):
    """Move the zero output layer so that W(x) varies from point to point."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(7), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [l + scale * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)])


def sorted_chunk_means(values, times, m):
    """Chunk means in numpy, by sorting: time rank r of N belongs to chunk floor(r M / N)."""
    by_time = np.asarray(values)[np.argsort(np.asarray(times), kind="stable")]
    chunk = np.floor(np.arange(len(by_time)) * m / len(by_time))
    return np.array([by_time[chunk == i].mean() for i in range(m)])


def past(chunk_losses):
    return np.cumsum(chunk_losses) - chunk_losses


@pytest.mark.parametrize("form", ["name", "balancer"])
def test_causal_inside_spatial(form):
    objs = objectives()
    eps, m = 0.7, 3
    if form == "name":
        bal = balancing.get("spatial", width=4, depth=1, inner="causal", eps=eps, n_chunks=m)
    else:
        bal = balancing.get("spatial", width=4, depth=1, inner=balancing.get("causal", eps=eps, n_chunks=m))
    params, state = bal.init(KEY, objs)
    params = perturbed(params)
    value, metrics = jax.jit(bal.loss)(objs, params, state)

    net = WeightNet(width=4, depth=1)
    expected = 0.3  # "data" has no coords: plain mean
    for name in ("residual", "boundary"):
        obj = objs[name]
        W = np.asarray(net.apply(params["W"][name], obj.coords))
        v = 0.5 * np.exp(-2.0 * W) * obj.loss + W
        t = obj.coords[:, 0]
        w = np.exp(-eps * past(sorted_chunk_means(obj.loss, t, m)))  # from the raw losses ...
        expected += np.mean(w * sorted_chunk_means(v, t, m))  # ... applied to the balanced values
        w_from_v = np.exp(-eps * past(sorted_chunk_means(v, t, m)))
        assert not np.allclose(w, w_from_v)  # the test tells the two designs apart
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    assert "causal/min_weight" in metrics and "spatial/w_max" in metrics
    assert metrics["balanced"] == value
    state = bal.update(objs, params, state)
    assert int(state.step) == 1 and int(state.inner.step) == 1
    assert bal.diagnose(state) == []


@pytest.mark.parametrize("options, match", [
    ({"width": 0}, "width"),
    ({"depth": -1}, "depth"),
    ({"activation": "relu6"}, "unknown activation"),
    ({"activation": 3}, "activation"),
    ({"inner": "homoscedastic"}, "inner must be"),
    ({"inner": balancing.get("homoscedastic")}, "does not accept values"),
    ({"inner": balancing.get("causal"), "eps": 1.0}, "give weights and options"),
    ({"inner": "causal", "n_chunks": 0}, "n_chunks"),
    ({"inner": "sum", "eps": 1.0}, "has no option 'eps'"),
    ({"terms": "residual"}, "terms"),
])
def test_validation(options, match):
    with pytest.raises(ValueError, match=match):
        balancing.get("spatial", **options)


# --- the floor w_min ---------------------------------------------------------------------------

def test_no_floor_is_the_unfloored_form():
    """w_min=None (default or explicit) gives exactly v = 0.5 exp(-2 W) l + W with W the raw net."""
    objs = objectives()
    plain, explicit = balancing.get("spatial", width=4, depth=1), balancing.get("spatial", width=4, depth=1, w_min=None)
    params, state = plain.init(KEY, objs)
    params = perturbed(params, scale=1.0)  # W well below 0 at some points, where a floor would act
    net = WeightNet(width=4, depth=1)
    expected = 0.3
    for name in ("residual", "boundary"):
        W = net.apply(params["W"][name], objs[name].coords)
        expected += jnp.mean(0.5 * jnp.exp(-2.0 * W) * objs[name].loss + W)
    assert float(jnp.max(net.apply(params["W"]["boundary"], objs["boundary"].coords))) < -1.0
    value, metrics = plain.loss(objs, params, state)
    value2, metrics2 = explicit.loss(objs, params, state)
    assert float(value) == float(value2) and metrics == metrics2
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    # The same parameters with a floor give a different loss: the comparison above can fail.
    floored, _ = balancing.get("spatial", width=4, depth=1, w_min=-1.0).loss(objs, params, state)
    assert not np.isclose(float(floored), float(value), rtol=1e-3)


def test_floored_is_bounded_identity_above_zero_and_c1_at_zero():
    from pinnopt.balancing.spatial import floored

    w = jnp.array([-1e4, -50.0, -2.0, -1e-3, 0.0, 1e-3, 0.5, 30.0])
    out = floored(w, -2.0)
    assert bool(jnp.all(out >= -2.0)) and float(out[0]) == -2.0
    np.testing.assert_array_equal(out[4:], w[4:])  # identity for W >= 0, W_eff(0) = 0 exactly
    np.testing.assert_allclose(out[:4], 2.0 * np.expm1(np.asarray(w[:4]) / 2.0), rtol=1e-6)
    slope = jax.vmap(jax.grad(lambda x: floored(x, -2.0)))(w)
    assert bool(jnp.all(jnp.isfinite(slope)))  # no nan from the discarded branch at W = -1e4
    np.testing.assert_allclose(slope[3:6], 1.0, atol=1e-3)  # slope 1 on both sides of 0
    assert floored(w, None) is w


def test_floor_keeps_the_initial_loss_and_gradient():
    objs = objectives()
    plain, floor = balancing.get("spatial", width=8), balancing.get("spatial", width=8, w_min=-2.0)
    params, state = plain.init(KEY, objs)
    (v0, m0), g0 = jax.value_and_grad(plain.loss, argnums=1, has_aux=True)(objs, params, state)
    (v1, m1), g1 = jax.value_and_grad(floor.loss, argnums=1, has_aux=True)(objs, params, state)
    assert float(v0) == float(v1) and float(m1["spatial/w_mean"]) == 1.0  # W_eff(0) = 0
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8), g0, g1)


def train_w(bal, objs, steps=300, lr=0.05):
    params, state = bal.init(KEY, objs)
    opt = optax.adam(lr)

    def body(carry, _):
        p, o = carry
        value, g = jax.value_and_grad(lambda p: bal.loss(objs, p, state)[0])(p)
        u, o = opt.update(g, o, p)
        return (optax.apply_updates(p, u), o), value

    (params, _), values = jax.jit(lambda c: jax.lax.scan(body, c, None, length=steps))((params, opt.init(params)))
    return params, state, values


def test_floor_bounds_the_loss_of_a_fitted_term():
    """l(x) = 0 everywhere: without the floor v = W runs to -inf; with w_min = -2 the loss stays >= -2."""
    x = jax.random.uniform(KEY, (32, 2), minval=-1.0, maxval=1.0)
    objs = {"r": Objective(jnp.zeros(32), x)}
    # (Not longer or faster: once W < -44 or so, exp(-2 W) overflows and inf * 0 makes the
    # unfloored loss nan; the floored weights stay below exp(-2 w_min).)
    _, _, free = train_w(balancing.get("spatial", width=8, depth=1), objs, steps=200, lr=0.01)
    assert float(free[-1]) < -5.0 and float(free[-1]) < float(free[len(free) // 2]) - 2.0  # still falling

    bal = balancing.get("spatial", width=8, depth=1, w_min=-2.0)
    params, state, values = train_w(bal, objs, steps=200, lr=0.01)
    assert float(jnp.min(values)) >= -2.0
    assert float(values[-1]) < -1.9  # it does approach the floor
    value, metrics = bal.loss(objs, params, state)
    assert float(value) >= -2.0 and float(metrics["spatial/w_max"]) <= float(np.exp(4.0)) * (1 + 1e-6)

    # Two weighted terms, both fitted: the bound is w_min per term (the "sum" inner).
    objs2 = {**objs, "b": Objective(jnp.zeros(8), jax.random.uniform(KEY, (8, 1)))}
    _, _, values2 = train_w(balancing.get("spatial", width=8, depth=1, w_min=-2.0), objs2, steps=200, lr=0.01)
    assert float(jnp.min(values2)) >= -4.0 and float(values2[-1]) < -3.8


def test_floor_keeps_the_optimum_above_it():
    """l(x) = exp(2 (a.x + b)) with 0.5 log l in [-1.4, 1.4]: w_min = -3 still learns W_eff = 0.5 log l."""
    x = jax.random.uniform(KEY, (64, 2), minval=-1.0, maxval=1.0)
    a, b = jnp.array([0.7, -0.4]), 0.3
    objs = {"r": Objective(jnp.exp(2.0 * (x @ a + b)), x)}
    bal = balancing.get("spatial", width=16, depth=1, w_min=-3.0)
    params, state, _ = train_w(bal, objs, steps=800, lr=0.02)
    _, metrics = bal.loss(objs, params, state)
    np.testing.assert_allclose(metrics["spatial/w_mean"], jnp.mean(1.0 / objs["r"].loss), rtol=5e-2)


@pytest.mark.parametrize("w_min", [0.0, 0.5, float("nan"), float("-inf"), True, "-2", 0])
def test_bad_floor_names_w_min(w_min):
    with pytest.raises(ValueError, match="w_min"):
        balancing.get("spatial", w_min=w_min)


def test_floor_through_the_registry_with_an_inner_causal():
    bal = balancing.get("spatial", w_min=-3.0, width=4, depth=1, inner="causal", eps=1.0, n_chunks=2)
    objs = objectives()
    params, state = bal.init(KEY, objs)
    value, metrics = bal.loss(objs, params, state)
    assert np.isfinite(float(value)) and "causal/min_weight" in metrics
