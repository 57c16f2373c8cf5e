"""BBI: the reference semantics (against a plain NumPy transcription), energy conservation,
bounces, the documented departures from the reference, and the optax conformance checks."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

from pinnopt import optimizers
from pinnopt.optimizers.bbi import BBIState, bbi


# ---------------------------------------------------------------------------------------------
# A NumPy transcription of the reference algorithm (the authors' PyTorch BBI.step), written from
# its description: float64, one parameter leaf per list entry, deterministic apart from bounces.
class ReferenceBBI:
    def __init__(self, lr, v0=0.0, delta_energy=0.0, threshold0=1000, threshold1=3000,
                 n_fixed_bounces=1, consistent_energy=True, eps1=1e-10, eps2=1e-40, exact_n_fixed=False):
        self.__dict__.update(locals())
        self.iteration = 0
        self.momentum = None
        self.bounced = []  # one flag per call

    def step(self, params, grads, loss):
        if self.iteration == 0:
            self.v_init = loss - self.v0
            self.energy = self.v_init + self.delta_energy
            self.count_fixed = self.count_progress = self.fixed_done = 0
            self.v_min = math.inf
        v = loss - self.v0
        if not v > self.eps2:
            self.bounced.append(False)
            return params
        e = self.energy
        if self.momentum is None:
            size = math.sqrt(e**2 / self.v_init - self.v_init)
            self.momentum = [-g / np.linalg.norm(g) * size for g in grads]
        p2 = sum(float(np.sum(m**2)) for m in self.momentum)
        target = v * ((e / v) ** 2 - 1)
        if abs(p2 - target) < self.eps1 or target < 0:
            scale = 1.0
        else:
            scale = math.sqrt(target / p2)
        fixed_due = self.count_fixed == self.threshold0
        if self.exact_n_fixed:
            fixed_due = fixed_due and self.fixed_done < self.n_fixed_bounces
        if self.count_progress != self.threshold1 and not fixed_due:
            new = []
            for p, g, i in zip(params, grads, range(len(params))):
                if self.consistent_energy:
                    self.momentum[i] = self.momentum[i] * scale
                self.momentum[i] = self.momentum[i] - 0.5 * self.lr * (v / e + e / v) * g
                new.append(p + self.lr * v / e * self.momentum[i])
            self.count_fixed += 1
            self.count_progress += 1
            self.iteration += 1
            if v < self.v_min:
                self.v_min = v
                self.count_progress = 0
            self.bounced.append(False)
            return new
        if fixed_due:  # a bounce: direction is random, only the schedule is compared
            self.fixed_done += 1
            if self.exact_n_fixed or self.fixed_done < self.n_fixed_bounces:
                self.count_fixed = 0
            else:
                self.count_fixed += 1
        self.count_progress = 0
        self.bounced.append(True)
        return params


def _quartic(x):
    """An anisotropic bowl with a quartic wall, minimum 0 at 0."""
    w = jnp.arange(1, x.size + 1, dtype=x.dtype)
    return jnp.sum(w * x**2) + 0.1 * jnp.sum(x**2) ** 2


def _run_traced(tx, loss_fn, params, steps):
    """Scan ``steps`` optimizer calls; returns final (params, state) and per-call (loss, state)."""
    def body(carry, _):
        p, s = carry
        v, g = jax.value_and_grad(loss_fn)(p)
        u, s = tx.update(g, s, p, value=v, grad=g, value_fn=loss_fn)
        return (optax.apply_updates(p, u), s), (v, s)

    return jax.lax.scan(body, (params, tx.init(params)), None, steps)


def _run(tx, loss_fn, params, steps):
    return jax.jit(lambda p: _run_traced(tx, loss_fn, p, steps))(params)


# ---------------------------------------------------------------------------------------------
# Reference semantics
@pytest.mark.parametrize("consistent_energy", [True, False])
def test_matches_reference_trajectory_float64(consistent_energy):
    hp = dict(v0=1e-3, delta_energy=0.7, threshold0=None, threshold1=None, consistent_energy=consistent_energy)
    x0 = np.array([0.8, -1.3, 0.4])
    with jax.enable_x64(True):
        (_, _), (losses, _) = _run(bbi(0.02, **hp), _quartic, jnp.asarray(x0), 300)
        ref = ReferenceBBI(0.02, **{**hp, "threshold0": -1, "threshold1": -1})
        x, ref_losses = [x0], []
        value_and_grad = jax.jit(jax.value_and_grad(_quartic))
        for _ in range(300):
            v, g = value_and_grad(jnp.asarray(x[0]))
            ref_losses.append(float(v))
            x = ref.step(x, [np.asarray(g)], float(v))
        losses = np.asarray(losses)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-9, atol=1e-15)
    assert losses[-1] < 0.1 * losses[0]


def test_per_leaf_init_matches_reference_on_two_leaves():
    loss_fn = lambda p: _quartic(p["a"]) + 3.0 * jnp.sum(p["b"] ** 2)
    p0 = {"a": np.array([0.5, -0.2]), "b": np.array([1.5])}
    hp = dict(delta_energy=0.3, threshold0=None, threshold1=None, consistent_energy=False)
    with jax.enable_x64(True):
        _, (losses, _) = _run(bbi(0.01, per_leaf_init=True, **hp),
                              loss_fn, jax.tree_util.tree_map(jnp.asarray, p0), 50)
        ref = ReferenceBBI(0.01, **{**hp, "threshold0": -1, "threshold1": -1})
        leaves, ref_losses = [p0["a"], p0["b"]], []
        value_and_grad = jax.jit(jax.value_and_grad(loss_fn))
        for _ in range(50):
            p = {"a": jnp.asarray(leaves[0]), "b": jnp.asarray(leaves[1])}
            v, g = value_and_grad(p)
            ref_losses.append(float(v))
            leaves = ref.step(leaves, [np.asarray(g["a"]), np.asarray(g["b"])], float(v))
        losses = np.asarray(losses)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-9)


def test_global_init_points_along_minus_the_whole_gradient():
    p0 = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([0.0, 0.0, 4.0])}
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([0.0, 0.0, 4.0])}
    tx = bbi(1e-3, delta_energy=1.0, consistent_energy=False)
    _, state = jax.jit(tx.update)(grads, tx.init(p0), p0, value=2.0)
    e, v = 3.0, 2.0
    pi = state.momentum + 0.5e-3 * (v / e + e / v) * jnp.array(
        [3.0, 0.0, 0.0, 0.0, 4.0])
    np.testing.assert_allclose(pi, -math.sqrt(e**2 / v - v) * jnp.array([3.0, 0, 0, 0, 4.0]) / 5.0, rtol=1e-5)


_SCHEDULES = [(1, 1, 0), (2, 3, 1), (3, 8, 2), (5, 2, 4), (4, 6, 0), (6, 4, 3)]


@functools.lru_cache(maxsize=None)
def _bounce_flags_fn(t0, t1, n_fixed):
    """Jitted: the per-call bounce flags of ``bbi`` fed a sequence of loss values."""
    tx = bbi(1e-3, threshold0=t0, threshold1=t1, n_fixed_bounces=n_fixed, delta_energy=1.0)
    x, g = jnp.array([0.3, -0.2]), jnp.array([1.0, 2.0])

    def body(state, val):
        _, new = tx.update(g, state, x, value=val)
        return new, new.bounces > state.bounces

    return jax.jit(lambda values: jax.lax.scan(body, tx.init(x), values)[1])


@pytest.mark.parametrize("t0, t1, n_fixed", _SCHEDULES)
@settings(max_examples=15, deadline=None)
@given(values=st.lists(st.sampled_from([5.0, 4.0, 3.0, 3.0, 2.5, 6.0, 1.0]), min_size=40, max_size=40))
def test_bounce_schedule_matches_reference(t0, t1, n_fixed, values):
    """Fed the same loss sequence, we bounce on exactly the calls the reference bounces on
    (with n_fixed_bounces = 0 meaning none; the reference's extra bounce is checked below)."""
    ours = [bool(b) for b in _bounce_flags_fn(t0, t1, n_fixed)(jnp.asarray(values, jnp.float32))]
    x, g = np.array([0.3, -0.2]), np.array([1.0, 2.0])
    ref = ReferenceBBI(1e-3, threshold0=t0, threshold1=t1, n_fixed_bounces=n_fixed, delta_energy=1.0,
                       exact_n_fixed=True)
    legacy = ReferenceBBI(1e-3, threshold0=t0, threshold1=t1, n_fixed_bounces=n_fixed, delta_energy=1.0)
    for val in values:
        ref.step([x], [g], val)
        legacy.step([x], [g], val)
    assert ours == ref.bounced
    if n_fixed >= 1:  # the two readings of n_fixed_bounces agree except for 0
        assert ours == legacy.bounced


def test_n_fixed_bounces_zero_means_no_fixed_bounce():
    """Documented departure: the reference bounces once even when n_fixed_bounces = 0."""
    x, g = jnp.array([1.0]), jnp.array([1.0])
    values = [5.0 - 0.01 * i for i in range(30)]  # always a new minimum: no progress bounce
    ref = ReferenceBBI(1e-3, threshold0=10, n_fixed_bounces=0)
    for val in values:
        ref.step([np.asarray(x)], [np.asarray(g)], val)
    assert sum(ref.bounced) == 1
    flags = _bounce_flags_fn(10, None, 0)(jnp.asarray(values, jnp.float32))
    assert not bool(jnp.any(flags))
    assert [bool(b) for b in _bounce_flags_fn(10, None, 1)(jnp.asarray(values, jnp.float32))] == ref.bounced


# ---------------------------------------------------------------------------------------------
# Energy conservation and bounces
@functools.lru_cache(maxsize=None)
def _energy_check_fn(lr, delta_energy, dim, steps=40):
    """Jitted: run bbi on 0.5 x^T H x + 0.1 and return, per call, V, the rescaled |pi|^2 and
    whether it was a regular step, plus the energy and the real rescaled momentum at the end
    (one more call with a zero gradient leaves pi = scale * pi)."""
    tx = bbi(lr, delta_energy=delta_energy, threshold0=7, threshold1=None, n_fixed_bounces=2)

    def run(hess, x0):
        loss_fn = lambda x: 0.5 * x @ hess @ x + 0.1
        (x, state), (losses, states) = _run_traced(tx, loss_fn, x0, steps)
        v_now = loss_fn(x)
        _, after = tx.update(jnp.zeros_like(x), state, x, value=v_now)
        regular = jnp.diff(jnp.concatenate([jnp.zeros(1, jnp.int32), states.iteration])) == 1
        return losses, states.kinetic, regular, state.energy, v_now, after

    return jax.jit(run)


@pytest.mark.parametrize("lr, delta_energy, dim", [(1e-3, 0.0, 1), (1e-2, 0.5, 3), (5e-2, 3.0, 5)])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_energy_is_conserved_after_each_rescaling(lr, delta_energy, dim, seed):
    """On a random quadratic, the momentum that the update rescales satisfies
    sqrt(V (V + |pi|^2)) = E to 1e-6 relative, at every step (float32)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    hess = jnp.asarray(a @ a.T + 0.5 * np.eye(dim), jnp.float32)
    x0 = jnp.asarray(rng.uniform(-2, 2, dim), jnp.float32)
    losses, kinetic, regular, e, v_now, after = _energy_check_fn(lr, delta_energy, dim)(hess, x0)
    regular = np.asarray(regular)
    v = np.asarray(losses, np.float64)[regular]
    kinetic = np.asarray(kinetic, np.float64)[regular]
    e = float(e)
    target = e**2 / v - v
    on_shell = np.abs(np.sqrt(v * (v + kinetic)) - e) <= 1e-6 * e
    # (or documented exceptions: within eps1 of the shell, or V > E where no shell exists)
    assert np.all(on_shell | (np.abs(kinetic - target) < 1e-10) | (target < 0))
    v_now = float(v_now)
    p2 = float(np.sum(np.asarray(after.momentum, np.float64) ** 2))
    if int(after.iteration) == int(regular.sum()) + 1 and e**2 / v_now - v_now >= 0 and p2 > 0:
        assert abs(math.sqrt(v_now * (v_now + p2)) - e) <= 1e-6 * e


def test_bounce_keeps_norm_changes_direction_and_does_not_move():
    tx = bbi(1e-2, delta_energy=1.0, threshold0=1, n_fixed_bounces=3, threshold1=None)
    x = {"w": jnp.array([[0.5, -1.0], [2.0, 0.3]]), "b": jnp.array([0.1])}
    g = jax.tree_util.tree_map(lambda a: 2 * a, x)
    state = tx.init(x)
    _, state = jax.jit(tx.update)(g, state, x, value=3.0)  # first call: a regular step
    assert int(state.bounces) == 0
    u, bounced = jax.jit(tx.update)(g, state, x, value=2.9)  # count_fixed == threshold0: a bounce
    assert int(bounced.bounces) == 1 and int(bounced.fixed_bounces) == 1
    assert all(float(jnp.max(jnp.abs(l))) == 0.0 for l in jax.tree_util.tree_leaves(u))
    norm = lambda t: math.sqrt(sum(float(jnp.sum(l**2)) for l in jax.tree_util.tree_leaves(t)))
    assert norm(bounced.momentum) == pytest.approx(norm(state.momentum), rel=1e-6)
    cos = sum(float(jnp.sum(a * b)) for a, b in zip(jax.tree_util.tree_leaves(bounced.momentum),
                                                      jax.tree_util.tree_leaves(state.momentum)))
    assert cos / norm(state.momentum) ** 2 < 0.999
    # Regular steps and bounces alternate until the fixed bounces are used up.
    for _ in range(10):
        _, bounced = jax.jit(tx.update)(g, bounced, x, value=2.0)
    assert int(bounced.fixed_bounces) == 3


def test_progress_bounce_after_threshold1_steps_without_a_new_minimum():
    tx = bbi(1e-3, threshold0=None, threshold1=4)
    x, g = jnp.array([1.0]), jnp.array([1.0])
    state, flags = tx.init(x), []
    for val in [3.0, 2.0, 2.5, 2.5, 2.5, 2.5, 2.5, 1.0]:
        before = int(state.bounces)
        _, state = jax.jit(tx.update)(g, state, x, value=val)
        flags.append(int(state.bounces) - before)
    assert flags == [0, 0, 0, 0, 0, 0, 1, 0]


def test_bounces_differ_between_seeds_and_repeat_with_the_same_seed():
    def momentum_after_bounce(seed):
        tx = bbi(1e-2, delta_energy=1.0, threshold0=1, seed=seed)
        x = jnp.array([1.0, 2.0, 3.0])
        state = tx.init(x)
        for val in (3.0, 2.0):
            _, state = jax.jit(tx.update)(x, state, x, value=val)
        return np.asarray(state.momentum)

    np.testing.assert_array_equal(momentum_after_bounce(1), momentum_after_bounce(1))
    assert not np.allclose(momentum_after_bounce(1), momentum_after_bounce(2))


def test_nothing_moves_at_or_below_eps2():
    tx = bbi(1e-2, v0=1.0, delta_energy=1.0)
    x, g = jnp.array([1.0, 2.0]), jnp.array([1.0, 1.0])
    state = tx.init(x)
    u, same = jax.jit(tx.update)(g, state, x, value=0.5)  # V = -0.5: not started, nothing kept
    assert float(jnp.max(jnp.abs(u))) == 0.0 and int(same.iteration) == 0
    jax.tree_util.tree_map(np.testing.assert_array_equal, same, state)
    _, state = jax.jit(tx.update)(g, state, x, value=3.0)
    assert float(state.energy) == pytest.approx(3.0)  # E = V_0 + delta_energy from the first active call
    u, after = jax.jit(tx.update)(g, state, x, value=1.0)  # V = 0
    assert float(jnp.max(jnp.abs(u))) == 0.0
    jax.tree_util.tree_map(np.testing.assert_array_equal, after, state)


# ---------------------------------------------------------------------------------------------
# Departures from the reference that keep runs finite
def test_zero_gradient_leaf_at_start_stays_finite():
    for per_leaf in (False, True):
        tx = bbi(1e-2, delta_energy=1.0, per_leaf_init=per_leaf)
        x = {"a": jnp.array([1.0]), "b": jnp.array([0.0, 0.0])}
        g = {"a": jnp.array([2.0]), "b": jnp.array([0.0, 0.0])}
        u, state = jax.jit(tx.update)(g, tx.init(x), x, value=1.0)
        for leaf in jax.tree_util.tree_leaves((u, state)):
            assert bool(jnp.all(jnp.isfinite(leaf)))
        assert float(state.momentum[0]) < 0  # downhill (momentum is raveled: leaf "a" first)
    # A zero gradient everywhere: zero momentum, nothing moves, nothing is NaN.
    tx = bbi(1e-2, delta_energy=1.0)
    u, state = jax.jit(tx.update)(jnp.zeros(2), tx.init(jnp.zeros(2)), jnp.zeros(2), value=1.0)
    assert bool(jnp.all(u == 0)) and bool(jnp.all(state.momentum == 0))


def test_energy_guard_keeps_an_overshooting_run_finite():
    """dt = 2 on |x|^2 overshoots into V > E: the reference semantics end in NaN; the guard
    undoes each such move, so every kept point has V <= E and the run stays finite."""
    loss_fn = lambda x: jnp.sum(x**2)
    x0 = jnp.array([1.0, 0.3])
    hp = dict(threshold0=None, threshold1=None)
    _, (losses, _) = _run(bbi(2.0, **hp), loss_fn, x0, 200)
    assert not bool(jnp.all(jnp.isfinite(losses)))
    (x, state), (losses, states) = _run(bbi(2.0, energy_guard=True, **hp), loss_fn, x0, 200)
    assert bool(jnp.all(jnp.isfinite(losses))) and int(state.reflections) > 0
    assert float(loss_fn(x)) <= float(state.energy) * (1 + 1e-6)
    # With a step that never overshoots, the guard changes nothing.
    plain = _run(bbi(0.05, **hp), loss_fn, x0, 100)[1][0]
    guarded = _run(bbi(0.05, energy_guard=True, **hp), loss_fn, x0, 100)[1][0]
    np.testing.assert_allclose(plain, guarded, rtol=1e-5)  # equal up to float rounding


# ---------------------------------------------------------------------------------------------
# Behaviour and optax conformance
def test_descends_a_quadratic_and_reaches_v0():
    (x, _), (losses, _) = _run(bbi(0.05, threshold0=None, threshold1=None), _quartic,
                               jnp.array([1.0, -1.0, 0.5]), 2000)
    assert float(losses[-1]) < 1e-8 * float(losses[0])


def test_update_requires_the_loss_value():
    tx = bbi(1e-2)
    with pytest.raises(ValueError, match="value"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2))


@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(learning_rate=0.1, delta_energy=-1.0), "delta_energy"),
    (dict(learning_rate=0.1, threshold0=0), "threshold0"),
    (dict(learning_rate=0.1, threshold1=2.5), "threshold1"),
    (dict(learning_rate=0.1, n_fixed_bounces=-1), "n_fixed_bounces"),
])
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bbi(**kwargs)


def test_huge_thresholds_mean_never():
    tx = bbi(1e-3, threshold0=1e20, threshold1=1e25, n_fixed_bounces=0)  # the paper's Zakharov setting
    x = jnp.array([1.0, 1.0])
    state = tx.init(x)
    assert isinstance(state, BBIState)
    _, state = jax.jit(tx.update)(x, state, x, value=2.0)
    assert int(state.iteration) == 1


def test_registered_by_name_and_accepts_extra_args():
    tx = optimizers.get("bbi", learning_rate=0.01, delta_energy=1.0)
    x = {"w": jnp.ones((2, 3))}
    u, _ = tx.update(x, tx.init(x), x, value=jnp.float32(1.0), grad=x, value_fn=lambda p: 1.0)
    assert u["w"].shape == (2, 3)


def test_jits_once_scans_vmaps_and_keeps_float32():
    tx = bbi(1e-2, delta_energy=0.5, threshold0=3, threshold1=5)
    traces = []

    @jax.jit
    def step(x, state):
        traces.append(1)
        v, g = jax.value_and_grad(_quartic)(x)
        u, state = tx.update(g, state, x, value=v)
        return optax.apply_updates(x, u), state

    x = jnp.array([1.0, -0.5], jnp.float32)
    state = tx.init(x)
    for _ in range(8):  # covers regular steps and bounces
        x, state = step(x, state)
    assert len(traces) == 1 and int(state.bounces) > 0
    assert x.dtype == jnp.float32 and state.momentum.dtype == jnp.float32
    assert state.energy.dtype == jnp.float32 and state.kinetic.dtype == jnp.float32

    # vmap over runs of a scan: independent keys give independent bounces.
    def run(x0, key):
        s = tx.init(x0)._replace(key=key)
        return _run_state(tx, x0, s, 40)

    xs = jnp.array([[1.0, -0.5]] * 3, jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(0), 3).at[1].set(jax.random.split(jax.random.PRNGKey(0), 3)[0])
    out = jax.jit(jax.vmap(run))(xs, keys)
    assert out.dtype == jnp.float32 and out.shape == (3, 2)
    np.testing.assert_array_equal(out[0], out[1])  # same key, same run
    assert not np.allclose(out[0], out[2])
    single = jax.jit(run)(xs[2], keys[2])
    np.testing.assert_allclose(out[2], single, rtol=1e-6)


def _run_state(tx, x, state, steps):
    def body(carry, _):
        x, s = carry
        v, g = jax.value_and_grad(_quartic)(x)
        u, s = tx.update(g, s, x, value=v)
        return (optax.apply_updates(x, u), s), None

    return jax.lax.scan(body, (x, state), None, steps)[0][0]


def test_learning_rate_schedule():
    sched = optax.linear_schedule(0.05, 0.0, 10)
    (x, state), _ = _run(bbi(sched, threshold0=None, threshold1=None), _quartic, jnp.array([1.0, 1.0]), 30)
    assert bool(jnp.all(jnp.isfinite(x))) and int(state.iteration) == 30


def test_drawing_in_a_branch_or_always_gives_the_same_run():
    """``draw_always`` changes the cost of a bounce, not its result."""
    hp = dict(delta_energy=1.0, threshold0=5, n_fixed_bounces=3, threshold1=8, energy_guard=True)
    x0 = jnp.array([1.0, -0.5, 0.25])
    runs = [_run(bbi(0.05, draw_always=flag, **hp), _quartic, x0, 60) for flag in (False, True)]
    (x_branch, s_branch), _ = runs[0]
    (x_always, s_always), _ = runs[1]
    assert int(s_branch.bounces) == 3
    np.testing.assert_allclose(x_branch, x_always, rtol=1e-6)
    np.testing.assert_allclose(s_branch.momentum, s_always.momentum, rtol=1e-6)
