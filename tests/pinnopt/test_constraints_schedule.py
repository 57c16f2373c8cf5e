"""The adaptive penalty schedule and the multiplier updates: rules on fixed inputs, properties on random ones."""
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from pinnopt import constraints
from pinnopt.constraints import penalty_schedule
from pinnopt.terms import Constraint


def run_schedule(schedule, violations):
    """mu after each of a sequence of violations of one constraint "c" (eager, no jit)."""
    state = schedule.init({"c": 0.0})
    mus = []
    for v in violations:
        state = schedule.update({"c": jnp.float32(v)}, state)
        mus.append(float(state.mu["c"]))
    return mus, state


def test_constant_violation_raises_mu_from_the_second_check_until_the_cap():
    schedule = penalty_schedule(check_every=2, factor=10.0, mu_init=1.0, mu_max=500.0)
    mus, _ = run_schedule(schedule, [1.0] * 10)
    # The check at step 2 only records the reference EMA; each later check sees no fall.
    assert mus == [1, 1, 1, 10, 10, 100, 100, 500, 500, 500]


def test_violation_falling_fast_enough_keeps_mu():
    schedule = penalty_schedule(decay=0.0, check_every=3, min_improvement=0.1)
    mus, _ = run_schedule(schedule, [0.85**t for t in range(30)])  # falls 39% per window
    assert mus == [1.0] * 30


def test_violation_falling_too_slowly_raises_mu():
    schedule = penalty_schedule(decay=0.0, check_every=3, min_improvement=0.5, factor=2.0)
    mus, _ = run_schedule(schedule, [0.9**t for t in range(9)])  # falls 27% per window, 50% asked
    assert mus == [1, 1, 1, 1, 1, 2, 2, 2, 4]


def test_satisfied_constraints_never_raise_mu():
    schedule = penalty_schedule(check_every=1, tolerance=1e-3)
    assert run_schedule(schedule, [0.0] * 6)[0] == [1.0] * 6  # 0 is never above 0.9 * 0
    assert run_schedule(schedule, [1e-4] * 6)[0] == [1.0] * 6  # within tolerance


def test_fixed_mu_when_not_adaptive():
    schedule = penalty_schedule(check_every=1, adaptive=False, mu_init=3.0)
    mus, state = run_schedule(schedule, [1.0, 2.0, 4.0])
    assert mus == [3.0, 3.0, 3.0]
    np.testing.assert_allclose(float(state.ema["c"]), 0.9 * (0.9 * 1 + 0.1 * 2) + 0.1 * 4, rtol=1e-6)


def test_ema_starts_at_the_first_violation_and_decays():
    values = [2.0, 1.0, 0.5, 4.0]
    _, state = run_schedule(penalty_schedule(decay=0.75), values)
    ema = values[0]
    for v in values[1:]:
        ema = 0.75 * ema + 0.25 * v
    np.testing.assert_allclose(float(state.ema["c"]), ema, rtol=1e-6)
    assert int(state.count) == 4 and float(state.reference["c"]) == np.inf  # no check yet


def test_per_constraint_mu_init_and_mu_max():
    schedule = penalty_schedule(check_every=1, mu_init={"bc": 100.0}, mu_max={"bc": 200.0, "ic": 10.0})
    state = schedule.init({"bc": 0.0, "ic": 0.0, "pde": 0.0})
    assert {k: float(v) for k, v in state.mu.items()} == {"bc": 100.0, "ic": 1.0, "pde": 1.0}
    for _ in range(4):
        state = schedule.update({"bc": 1.0, "ic": 1.0, "pde": 1.0}, state)
    assert {k: float(v) for k, v in state.mu.items()} == {"bc": 200.0, "ic": 10.0, "pde": 1000.0}


# --- properties over random violation sequences ---------------------------------------------

violations = st.lists(st.one_of(st.just(0.0), st.floats(2.0**-20, 1024.0, width=32)), min_size=1, max_size=40)
hyperparameters = st.fixed_dictionaries({
    "decay": st.sampled_from([0.0, 0.5, 0.9]),
    "check_every": st.integers(1, 4),
    "min_improvement": st.sampled_from([0.0, 0.1, 0.5, 0.9]),
    "factor": st.sampled_from([1.5, 10.0]),
    "mu_init": st.sampled_from([0.1, 1.0, 50.0]),
    "mu_max": st.sampled_from([50.0, 1e4]),
})


@settings(max_examples=40, deadline=None)
@given(violations, hyperparameters)
def test_mu_never_decreases_and_never_exceeds_mu_max(values, options):
    schedule = penalty_schedule(**options)
    mus, state = run_schedule(schedule, values)
    mus = np.array([options["mu_init"]] + mus, np.float32)
    assert np.all(np.diff(mus) >= 0)
    assert np.all(mus <= np.float32(options["mu_max"]))
    # mu only takes the values mu_init * factor^k, capped.
    ratios = np.log(mus / np.float32(options["mu_init"])) / np.log(options["factor"])
    capped = mus == np.float32(options["mu_max"])
    assert np.all(capped | (np.abs(ratios - np.round(ratios)) < 1e-4))
    assert state.mu["c"].dtype == jnp.float32 and state.count.dtype == jnp.int32


signed_values = st.lists(st.floats(-100, 100, width=32), min_size=1, max_size=30)


@settings(max_examples=30, deadline=None)
@given(signed_values, st.integers(1, 3), st.sampled_from(["hinge", "phr"]))
def test_inequality_multipliers_stay_non_negative(values, update_every, form):
    method = constraints.get("al", update_every=update_every, check_every=2, inequality=form)
    # PHR enforces the mean, so there the constraint is declared a mean one.
    aggregate = "mean" if form == "phr" else "pointwise"
    state = method.init(None, {"g": Constraint(jnp.zeros(2), "ineq", aggregate=aggregate)})[1]
    for v in values:
        # Two points per constraint: one at v, one at -v / 2, so the mean and the hinge differ.
        con = {"g": Constraint(jnp.array([v, -v / 2], jnp.float32), "ineq", aggregate=aggregate)}
        new = method.update(con, {}, state)
        assert float(new.multipliers["g"]) >= 0.0
        if form == "hinge":  # lam c with c >= 0: the hinge multiplier can only grow
            assert float(new.multipliers["g"]) >= float(state.multipliers["g"])
        state = new


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-100.0, -(2.0**-10), width=32), min_size=1, max_size=20))
def test_equality_multipliers_follow_the_signed_violation(values):
    # All-negative equality residuals push the multiplier below zero: lam = sum mu_k c_k < 0.
    method = constraints.get("al", adaptive=False, mu_init=2.0)
    state = method.init(None, {"h": Constraint(jnp.zeros(()), "eq")})[1]
    for v in values:
        state = method.update({"h": Constraint(jnp.float32(v), "eq")}, {}, state)
    np.testing.assert_allclose(float(state.multipliers["h"]), 2.0 * np.sum(np.float32(values)), rtol=1e-4)
    assert float(state.multipliers["h"]) < 0


def test_phr_inequality_multiplier_comes_back_down():
    method = constraints.get("al", adaptive=False, inequality="phr", lam_init=3.0)
    state = method.init(None, {"g": Constraint(jnp.zeros(()), "ineq")})[1]
    state = method.update({"g": Constraint(jnp.float32(-1.0), "ineq")}, {}, state)
    assert float(state.multipliers["g"]) == 2.0  # max(0, 3 + 1 * (-1))
    state = method.update({"g": Constraint(jnp.float32(-5.0), "ineq")}, {}, state)
    assert float(state.multipliers["g"]) == 0.0
    hinge = constraints.get("al", adaptive=False, lam_init=3.0)
    state = hinge.update({"g": Constraint(jnp.float32(-1.0), "ineq")}, {},
                         hinge.init(None, {"g": Constraint(jnp.zeros(()), "ineq")})[1])
    assert float(state.multipliers["g"]) == 3.0  # c = max(0, -1) = 0


def test_phr_loss_is_smooth_and_matches_the_hinge_when_violated():
    phr = constraints.get("al", inequality="phr", lam_init=2.0, mu_init=4.0)
    hinge = constraints.get("al", lam_init=2.0, mu_init=4.0)
    con = lambda g: {"g": Constraint(jnp.asarray(g, jnp.float32), "ineq")}
    s_phr, s_hinge = phr.init(None, con(0.0))[1], hinge.init(None, con(0.0))[1]
    for g in [0.3, 1.0]:
        np.testing.assert_allclose(float(phr.loss(con(g), {}, s_phr)[0]), float(hinge.loss(con(g), {}, s_hinge)[0]), rtol=1e-6)
    # Just inside: the PHR term still has slope lam (continuous), the hinge term is flat.
    slope = lambda method, state: float(jax.grad(lambda g: method.loss(con(g), {}, state)[0])(jnp.float32(-1e-3)))
    np.testing.assert_allclose(slope(phr, s_phr), 2.0 - 4.0 * 1e-3, rtol=1e-5)
    assert slope(hinge, s_hinge) == 0.0
    # Far inside (lam + mu g < 0) the PHR loss is the constant -lam^2 / (2 mu).
    np.testing.assert_allclose(float(phr.loss(con(-10.0), {}, s_phr)[0]), -0.5, rtol=1e-6)


@pytest.mark.parametrize("name", ["penalty", "al"])
def test_schedule_inside_the_method_raises_mu_on_a_stalled_violation(name):
    method = constraints.get(name, check_every=2, factor=10.0)
    cons = {"c": Constraint(jnp.ones(3), "eq")}
    state, update = method.init(None, cons)[1], jax.jit(method.update)
    for _ in range(4):
        state = update(cons, {}, state)
    assert float(state.penalty.mu["c"]) == 10.0
