"""Homoscedastic uncertainty weighting: the formula, its optimum sigma^2 = L, bounds and the run-away guard."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnopt import balancing
from pinnopt.terms import Objective

KEY = jax.random.PRNGKey(0)


def fixed(**means):
    """Objectives with the given mean losses (point-wise values spread around the mean)."""
    return {k: Objective(jnp.array([0.5, 1.5]) * v) for k, v in means.items()}


def with_log_sigma(params, **s):
    return {"log_sigma": {**params["log_sigma"], **{k: jnp.float32(v) for k, v in s.items()}}}


def test_formula_and_sigma_metrics():
    bal = balancing.get("homoscedastic", weights={"bc": 3.0})
    objs = fixed(residual=2.0, bc=0.5)
    params, state = bal.init(KEY, objs)
    np.testing.assert_array_equal(params["log_sigma"]["residual"], 0.0)
    params = with_log_sigma(params, residual=0.3, bc=-1.2)
    value, metrics = bal.loss(objs, params, state)
    expected = (0.5 * np.exp(-0.6) * 2.0 + 0.3) + 3.0 * (0.5 * np.exp(2.4) * 0.5 - 1.2)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    np.testing.assert_allclose(metrics["sigma/residual"], np.exp(0.3), rtol=1e-6)
    np.testing.assert_allclose(metrics["sigma/bc"], np.exp(-1.2), rtol=1e-6)
    np.testing.assert_allclose(metrics["raw/bc"], 0.5, rtol=1e-6)


def test_gradient_vanishes_at_half_log_L():
    bal = balancing.get("homoscedastic")
    objs = fixed(a=4.0, b=0.01)
    params, state = bal.init(KEY, objs)
    grad = jax.grad(lambda p: bal.loss(objs, p, state)[0])
    g = grad(params)["log_sigma"]
    np.testing.assert_allclose(g["a"], 1.0 - 4.0, rtol=1e-6)  # d/ds = 1 - e^{-2s} L at s = 0
    optimum = with_log_sigma(params, a=0.5 * np.log(4.0), b=0.5 * np.log(0.01))
    g = grad(optimum)["log_sigma"]
    np.testing.assert_allclose([g["a"], g["b"]], 0.0, atol=1e-5)


def test_descent_drives_sigma_squared_to_L():
    bal = balancing.get("homoscedastic")
    objs = fixed(a=4.0, b=0.01, c=1e3)
    params, state = bal.init(KEY, objs)
    # A short second-moment memory: the gradient at s = 0 is -1e3 for "c", near the optimum O(1).
    opt = optax.adam(optax.cosine_decay_schedule(0.05, 1500), b2=0.9)

    def body(carry, _):
        p, o = carry
        g = jax.grad(lambda p: bal.loss(objs, p, state)[0])(p)
        u, o = opt.update(g, o, p)
        return (optax.apply_updates(p, u), o), None

    (params, _), _ = jax.lax.scan(body, (params, opt.init(params)), None, length=1500)
    _, metrics = bal.loss(objs, params, state)
    for k, L in (("a", 4.0), ("b", 0.01), ("c", 1e3)):
        np.testing.assert_allclose(metrics[f"sigma/{k}"] ** 2, L, rtol=1e-2)


def test_bounds_clamp_and_stop_the_gradient():
    bal = balancing.get("homoscedastic", min_log_sigma=-1.0, max_log_sigma=0.5)
    objs = fixed(a=1e4, b=1e-6)
    params, state = bal.init(KEY, objs)
    params = with_log_sigma(params, a=3.0, b=-5.0)
    value, metrics = bal.loss(objs, params, state)
    np.testing.assert_allclose(value, (0.5 * np.exp(-1.0) * 1e4 + 0.5) + (0.5 * np.exp(2.0) * 1e-6 - 1.0),
                               rtol=1e-6)
    np.testing.assert_allclose(metrics["sigma/a"], np.exp(0.5), rtol=1e-6)
    g = jax.grad(lambda p: bal.loss(objs, p, state)[0])(params)["log_sigma"]
    assert g["a"] == 0.0 and g["b"] == 0.0


def run_updates(bal, log_sigmas, raws):
    """Feed a constructed history of (log sigma, raw mean loss) per term through ``update`` in a scan."""
    names = list(log_sigmas)
    objs0 = {k: Objective(jnp.full((3,), raws[k][0])) for k in names}
    params, state = bal.init(KEY, objs0)

    def body(state, xs):
        s, L = xs
        objs = {k: Objective(jnp.full((3,), L[k])) for k in names}
        return bal.update(objs, {"log_sigma": s}, state), None

    xs = ({k: jnp.asarray(v, jnp.float32) for k, v in log_sigmas.items()},
          {k: jnp.asarray(v, jnp.float32) for k, v in raws.items()})
    state, _ = jax.jit(lambda st, xs: jax.lax.scan(body, st, xs))(state, xs)
    return state


def test_runaway_is_reported_and_healthy_is_not():
    bal = balancing.get("homoscedastic", check_every=10, patience=3)
    t = np.arange(60, dtype=np.float32)
    L_bad = 1.0 + 0.05 * t  # the model gives up on "bc": its loss grows ...
    L_good = 10.0 * np.exp(-0.05 * t)  # ... while "residual" is being solved
    L_flat = np.full_like(t, 2.0)
    state = run_updates(
        bal,
        log_sigmas={"bc": 0.5 * np.log(L_bad), "residual": 0.5 * np.log(L_good), "data": 0.5 * np.log(L_flat)},
        raws={"bc": L_bad, "residual": L_good, "data": L_flat})
    warnings = bal.diagnose(state)
    assert len(warnings) == 1
    assert "'bc'" in warnings[0] and "running away" in warnings[0]
    assert int(state.strikes["bc"]) == 5  # windows 2..6 each rose against the previous one
    assert int(state.strikes["residual"]) == 0 and int(state.strikes["data"]) == 0
    np.testing.assert_allclose(state.last_raw["bc"], L_bad[50:].mean(), rtol=1e-5)


def test_short_or_interrupted_rise_is_not_a_runaway():
    bal = balancing.get("homoscedastic", check_every=10, patience=3)
    t = np.arange(60, dtype=np.float32)
    # Sigma rises for two windows only, then the loss falls again.
    L = np.where(t < 30, 1.0 + 0.1 * t, 4.0 * np.exp(-0.1 * (t - 30)))
    state = run_updates(bal, {"bc": 0.5 * np.log(L)}, {"bc": L})
    assert bal.diagnose(state) == []
    # Sigma rising while the loss falls is the model improving, not a run-away.
    L = 10.0 * np.exp(-0.05 * t)
    state = run_updates(bal, {"bc": 0.02 * t}, {"bc": L})
    assert bal.diagnose(state) == []


def test_healthy_training_is_not_flagged():
    bal = balancing.get("homoscedastic", check_every=20, patience=2)
    x = jnp.linspace(-1.0, 1.0, 16)

    def terms(theta):
        return {"fit": Objective((theta[0] + theta[1] * x - (0.3 + 2.0 * x)) ** 2),
                "anchor": Objective(jnp.atleast_1d((theta[0] - 0.3) ** 2))}

    theta = jnp.zeros(2)
    bal_params, state = bal.init(KEY, terms(theta))
    params = {"model": theta, "balancer": bal_params}
    opt = optax.adam(0.02)

    def body(carry, _):
        p, o, st = carry
        g = jax.grad(lambda p: bal.loss(terms(p["model"]), p["balancer"], st)[0])(p)
        st = bal.update(terms(p["model"]), p["balancer"], st)
        u, o = opt.update(g, o, p)
        return (optax.apply_updates(p, u), o, st), None

    (params, _, state), _ = jax.jit(lambda c: jax.lax.scan(body, c, None, length=400))(
        (params, opt.init(params), state))
    np.testing.assert_allclose(params["model"], [0.3, 2.0], atol=1e-2)
    assert bal.diagnose(state) == []


def test_bound_reached_is_reported():
    bal = balancing.get("homoscedastic", max_log_sigma=0.5, check_every=5)
    t = np.arange(20, dtype=np.float32)
    state = run_updates(bal, {"bc": np.minimum(0.1 * t, 0.5)}, {"bc": 1.0 + t})
    assert any("max_log_sigma" in w and "'bc'" in w for w in bal.diagnose(state))


def test_unknown_terms_at_loss_time():
    bal = balancing.get("homoscedastic")
    params, state = bal.init(KEY, fixed(a=1.0))
    with pytest.raises(ValueError, match="initialised for terms"):
        bal.loss(fixed(b=1.0), params, state)


@pytest.mark.parametrize("options, match", [
    ({"min_log_sigma": 1.0, "max_log_sigma": 1.0}, "below max_log_sigma"),
    ({"max_log_sigma": float("nan")}, "max_log_sigma"),
    ({"check_every": 0}, "check_every"),
    ({"patience": 1.5}, "patience"),
    ({"rise_tol": -0.1}, "rise_tol"),
    ({"min_improvement": 1.0}, "min_improvement"),
    ({"init_log_sigma": float("inf")}, "init_log_sigma"),
])
def test_validation(options, match):
    with pytest.raises(ValueError, match=match):
        balancing.get("homoscedastic", **options)
