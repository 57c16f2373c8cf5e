"""Optimizers by name: every optax optimizer, validation, the extra-args protocol."""
import jax
import jax.numpy as jnp
import optax
import pytest

import pinnopt
from pinnopt import optimizers


def quadratic(p):
    return jnp.sum((p["w"] - 1.0) ** 2)


def run(tx, steps=3):
    params = {"w": jnp.zeros(3, jnp.float32)}
    state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, state):
        traces.append(1)
        value, grad = jax.value_and_grad(quadratic)(params)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=quadratic)
        return optax.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return params, traces


def test_every_optax_optimizer_is_available():
    names = set(optimizers.available())
    assert {"adam", "adamw", "sgd", "lbfgs", "lion", "rmsprop", "adagrad", "adabelief"} <= names


@pytest.mark.parametrize("name", [n for n in ["adam", "adamw", "sgd", "lbfgs", "lion", "rmsprop", "adagrad",
                                              "adabelief", "radam", "yogi", "novograd", "sign_sgd"]])
def test_optimizer_runs_under_jit_without_recompiling_and_keeps_dtype(name):
    tx = optimizers.get(name)
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
    params, traces = run(tx)
    assert len(traces) == 1
    assert params["w"].dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(params["w"])))


def test_lbfgs_uses_value_fn_and_converges_in_same_loop():
    params, _ = run(optimizers.get("lbfgs"), steps=10)
    assert float(quadratic(params)) < 1e-8


def test_default_learning_rate_and_explicit():
    assert float(quadratic(run(optimizers.get("sgd", learning_rate=0.4), steps=20)[0])) < 1e-6


def test_unknown_name_lists_closest():
    with pytest.raises(ValueError, match="adam"):
        optimizers.get("adma")


@pytest.mark.parametrize("kwargs,needle", [
    ({"learning_rate": -0.1}, "learning_rate"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"lr": 0.1}, "lr"),
    ({"b1": 1.5}, "b1"),
    ({"eps": -1.0}, "eps"),
])
def test_invalid_hyperparameter_is_named(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        optimizers.get("adam", **kwargs)


def test_schedule_is_accepted_as_learning_rate():
    tx = optimizers.get("sgd", learning_rate=optax.linear_schedule(0.1, 0.01, 10))
    run(tx)
