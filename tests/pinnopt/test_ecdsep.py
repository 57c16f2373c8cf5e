"""ECDSep: the reference semantics (against a NumPy transcription, without the random rotation),
energy conservation, the rotation, and the optax conformance checks."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

from pinnopt import optimizers
from pinnopt.optimizers.ecdsep import ECDSepState, ecdsep


class ReferenceECDSep:
    """NumPy transcription of the reference ECDSep.step (float64, nu = 0, one leaf)."""

    def __init__(self, lr, eta=1.0, f0=0.0, delta_energy=0.0, s=1.0, weight_decay=0.0, eps1=1e-10, eps2=1e-40):
        self.__dict__.update(locals())
        self.iteration = 0

    def step(self, q, grad, loss):
        wd = self.weight_decay
        shifted = loss + 0.5 * wd * float(q @ q) - self.f0
        v = shifted**self.eta
        if self.iteration == 0:
            self.energy = v * (self.s + self.delta_energy)
            g = grad + wd * q  # the direction our init uses (the reference omits the decay here)
            self.p = -g * math.sqrt(self.delta_energy / float(g @ g))
            self.p2 = self.delta_energy
        if not v > self.eps2:
            return q
        target = self.energy / v - self.s
        if abs(target - self.p2) < self.eps1 or target < 0 or self.p2 == 0:
            scale = 1.0
        else:
            scale = math.sqrt(target / self.p2)
        self.p = self.p * scale - self.lr * self.eta / shifted * (grad + wd * q)
        self.p2 = float(self.p @ self.p)
        q = q + 2 * self.lr * self.p / (self.s + self.p2)
        self.iteration += 1
        return q


def _bowl(x):
    w = jnp.arange(1, x.size + 1, dtype=x.dtype)
    return jnp.sum(w * x**2) + 0.1 * jnp.sum(x**2) ** 2 + 0.05


def _run_traced(tx, loss_fn, params, steps):
    def body(carry, _):
        p, s = carry
        v, g = jax.value_and_grad(loss_fn)(p)
        u, s = tx.update(g, s, p, value=v, grad=g, value_fn=loss_fn)
        return (optax.apply_updates(p, u), s), (v, s)

    return jax.lax.scan(body, (params, tx.init(params)), None, steps)


def _run(tx, loss_fn, params, steps):
    return jax.jit(lambda p: _run_traced(tx, loss_fn, p, steps))(params)


@pytest.mark.parametrize("hp", [
    dict(eta=1.0),
    dict(eta=2.0, delta_energy=0.5, f0=0.01),
    dict(eta=1.5, weight_decay=0.1, delta_energy=0.2),
    dict(eta=1.0, s=0.0, delta_energy=1.0),
])
def test_matches_reference_trajectory_float64(hp):
    x0 = np.array([0.8, -1.3, 0.4])
    with jax.enable_x64(True):
        _, (losses, _) = _run(ecdsep(0.01, nu=0.0, **hp), _bowl, jnp.asarray(x0), 200)
        losses = np.asarray(losses)
        ref, x, ref_losses = ReferenceECDSep(0.01, **hp), x0, []
        value_and_grad = jax.jit(jax.value_and_grad(_bowl))
        for _ in range(200):
            v, g = value_and_grad(jnp.asarray(x))
            ref_losses.append(float(v))
            x = ref.step(x, np.asarray(g), float(v))
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-9)
    assert losses[-1] < 0.5 * losses[0]


@functools.lru_cache(maxsize=None)
def _shell_fn(lr, eta, dim, steps=30):
    """Jitted: run ecdsep on a quadratic, then one call with a zero gradient (p -> scale p,
    then a norm-keeping rotation); returns V there, the energy and the resulting |p|^2."""
    tx = ecdsep(lr, eta=eta, nu=1e-3)

    def run(hess, x0):
        loss_fn = lambda x: 0.5 * x @ hess @ x + 0.2
        (x, state), _ = _run_traced(tx, loss_fn, x0, steps)
        v = loss_fn(x) ** eta
        _, after = tx.update(jnp.zeros_like(x), state, x, value=loss_fn(x))
        return v, after.energy, jnp.sum(after.momentum**2), after.p2

    return jax.jit(run)


@pytest.mark.parametrize("lr, eta, dim", [(1e-2, 1.0, 2), (5e-2, 2.0, 4)])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_energy_shell_after_rescaling(lr, eta, dim, seed):
    """V (s + |p|^2) = E after the rescaling (the rotation keeps |p|), to 1e-6 relative."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    hess = jnp.asarray(a @ a.T + 0.5 * np.eye(dim), jnp.float32)
    x0 = jnp.asarray(rng.uniform(-2, 2, dim), jnp.float32)
    v, e, p2, p2_state = (float(t) for t in _shell_fn(lr, eta, dim)(hess, x0))
    assert p2 == pytest.approx(p2_state, rel=1e-5)
    if e / v - 1.0 >= 0:  # a shell exists
        assert v * (1.0 + p2) == pytest.approx(e, rel=1e-6)


def test_rotation_keeps_norm_and_turns_by_about_nu():
    x = jnp.array([1.0, -2.0, 0.5, 3.0])
    g = 2 * x
    plain, rotated = ecdsep(0.01, nu=0.0, delta_energy=1.0), ecdsep(0.01, nu=1e-2, delta_energy=1.0)
    u0, s0 = jax.jit(plain.update)(g, plain.init(x), x, value=1.0)
    u1, s1 = jax.jit(rotated.update)(g, rotated.init(x), x, value=1.0)
    np.testing.assert_array_equal(u0, u1)  # the move happens before the rotation
    assert float(jnp.linalg.norm(s1.momentum)) == pytest.approx(float(jnp.linalg.norm(s0.momentum)), rel=1e-6)
    cos = float(s0.momentum @ s1.momentum / jnp.linalg.norm(s0.momentum) ** 2)
    angle = math.acos(min(cos, 1.0))
    assert 1e-4 < angle < 0.1


def test_nothing_moves_below_f0_and_nothing_is_nan():
    tx = ecdsep(0.01, eta=1.5, f0=1.0)
    x = jnp.array([1.0, 1.0])
    state = tx.init(x)
    u, after = jax.jit(tx.update)(x, state, x, value=0.5)  # (F - F_0)^1.5 is NaN: skipped
    assert bool(jnp.all(u == 0))
    jax.tree_util.tree_map(np.testing.assert_array_equal, after, state)


def test_zero_gradient_and_zero_momentum_stay_finite():
    tx = ecdsep(0.01, delta_energy=1.0, nu=1e-3)
    x = jnp.zeros(3)
    u, state = jax.jit(tx.update)(jnp.zeros(3), tx.init(x), x, value=1.0)
    for leaf in jax.tree_util.tree_leaves((u, state)):
        assert bool(jnp.all(jnp.isfinite(leaf)))


def test_descends_a_bowl():
    (x, _), (losses, _) = _run(ecdsep(0.05, eta=2.0), _bowl, jnp.array([1.0, -1.0, 0.5]), 3000)
    assert float(losses[-1]) < 0.06 and float(losses[0]) > 2.0  # the bowl's floor is 0.05


@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(learning_rate=0.1, eta=0.5), "eta"),
    (dict(learning_rate=0.1, nu=-1.0), "nu"),
    (dict(learning_rate=0.1, s=0.0, delta_energy=0.0), "delta_energy"),
    (dict(learning_rate=0.1, weight_decay=-1.0), "weight_decay"),
])
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ecdsep(**kwargs)


def test_needs_value_and_params_for_weight_decay():
    tx = ecdsep(0.1, weight_decay=0.1)
    x = jnp.ones(2)
    with pytest.raises(ValueError, match="value"):
        tx.update(x, tx.init(x), x)
    with pytest.raises(ValueError, match="params"):
        tx.update(x, tx.init(x), None, value=1.0)


def test_registered_jits_once_scans_vmaps_and_keeps_float32():
    tx = optimizers.get("ecdsep", learning_rate=0.02, eta=2.0, nu=1e-4)
    traces = []

    @jax.jit
    def step(x, state):
        traces.append(1)
        v, g = jax.value_and_grad(_bowl)(x)
        u, state = tx.update(g, state, x, value=v, grad=g, value_fn=_bowl)
        return optax.apply_updates(x, u), state

    x = jnp.array([1.0, -0.5], jnp.float32)
    state = tx.init(x)
    assert isinstance(state, ECDSepState)
    for _ in range(5):
        x, state = step(x, state)
    assert len(traces) == 1 and int(state.iteration) == 5
    assert x.dtype == jnp.float32 and state.momentum.dtype == jnp.float32 and state.p2.dtype == jnp.float32

    def run(x0, key):
        s = tx.init(x0)._replace(key=key)

        def body(carry, _):
            x, s = carry
            v, g = jax.value_and_grad(_bowl)(x)
            u, s = tx.update(g, s, x, value=v)
            return (optax.apply_updates(x, u), s), None

        return jax.lax.scan(body, (x0, s), None, 50)[0][0]

    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    out = jax.jit(jax.vmap(run))(jnp.array([[1.0, -0.5]] * 2, jnp.float32), keys)
    assert out.dtype == jnp.float32 and not np.allclose(out[0], out[1])
    np.testing.assert_allclose(out[1], jax.jit(run)(jnp.array([1.0, -0.5]), keys[1]), rtol=1e-6)
