"""The solve loop: training, metrics, resume bit for bit, the non-finite guard, held-out checks."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnopt
from pinnopt.io.checkpoint import Checkpointer
from pinnopt.training import NonFiniteError, TrainState, init_state, make_step
from pinnopt import balancing, constraints, optimizers

from solve_problems import FitSine


@pytest.fixture
def fit_sine():
    return FitSine()


def leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def test_python_api_reduces_rastrigin_loss():
    problem = pinnopt.problems.get("rastrigin", dim=5)
    res = pinnopt.solve(problem, optimizer="adam", steps=600, seed=0, chunk=200,
                        optimizer_kwargs={"learning_rate": 0.05})
    assert res.params.shape == (5,)
    assert len(res.history) == 30 and res.history[-1]["step"] == 600
    start = init_state(problem, optimizers.get("adam"), balancing.get("sum"), constraints.get("al"), 0)
    f0 = float(problem.terms(start.params["model"], None)["f"].loss)
    assert res.history[-1]["raw/f"] < 0.8 * f0
    assert res.summary["best_loss"] <= min(r["loss_min"] for r in res.history)
    assert "eval/distance_to_minimum" in res.history[-1]


def test_al_solves_constrained_quadratic_through_solve():
    problem = pinnopt.problems.get("constrained_quadratic")
    res = pinnopt.solve(problem, optimizer="adam", constraints="al", steps=4000, chunk=1000,
                        optimizer_kwargs={"learning_rate": 0.01},
                        constraint_kwargs={"inequality": "phr", "update_every": 50})
    np.testing.assert_allclose(np.asarray(res.params), [1.0, 0.0], atol=1e-4)
    assert res.history[-1]["lam/ineq0"] == pytest.approx(2.0, abs=1e-3)


@pytest.mark.parametrize("balancer", [pytest.param("spatial", marks=pytest.mark.slow), "homoscedastic"])  # spatial: ~30 s
def test_resume_is_bit_for_bit(tmp_path, balancer):
    problem = FitSine()
    kw = dict(optimizer="adam", constraints="al", balancing=balancer, chunk=25, seed=3,
              optimizer_kwargs={"learning_rate": 0.01})
    straight = pinnopt.solve(problem, steps=100, out=str(tmp_path / "straight"), **kw)
    first = pinnopt.solve(problem, steps=50, out=str(tmp_path / "split"), **kw)
    assert int(first.state.step) == 50
    resumed = pinnopt.solve(problem, steps=100, resume=str(tmp_path / "split"), **kw)
    assert int(resumed.state.step) == 100
    assert leaves_equal(straight.state, resumed.state)
    rows = [json.loads(line) for line in open(tmp_path / "split" / "metrics.jsonl")]
    straight_rows = [json.loads(line) for line in open(tmp_path / "straight" / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [r["step"] for r in straight_rows]
    assert rows[-1]["step"] == 100 and {24, 25, 26, 50} <= {r["step"] for r in rows}
    assert [r["loss"] for r in rows] == [r["loss"] for r in straight_rows]


def test_changing_constraint_state_changes_the_compiled_step():
    fit_sine = FitSine(cap=-1.0)  # violated at the start, so the multiplier matters
    tx = optimizers.get("sgd", learning_rate=0.1)
    method, balancer = constraints.get("al"), balancing.get("sum")
    state = init_state(fit_sine, tx, balancer, method, seed=0)
    traces = []

    def counted(s):
        traces.append(1)
        return make_step(fit_sine, tx, balancer, method)(s)

    step = jax.jit(counted)
    bumped = state._replace(constraint_state=jax.tree.map(
        lambda x: x + 5.0 if jnp.issubdtype(x.dtype, jnp.floating) else x, state.constraint_state))
    (s1, m1), (s2, m2) = step(state), step(bumped)
    assert len(traces) == 1
    assert float(m1["loss"]) != float(m2["loss"])
    assert not leaves_equal(s1.params, s2.params)


def test_nonfinite_steps_are_skipped_and_counted():
    problem = FitSine(nan_fraction=0.3)
    res = pinnopt.solve(problem, steps=200, chunk=50, optimizer_kwargs={"learning_rate": 0.01})
    total = int(res.state.nonfinite_total)
    assert 20 < total < 120  # about 30% of the batches
    assert sum(r["nonfinite"] for r in res.history) == total
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(res.state.params))


def test_persistent_nonfinite_stops_with_clear_message_and_keeps_good_checkpoint(tmp_path):
    problem = pinnopt.problems.get("zakharov", dim=3, x0=[1.0, 1.0, 1.0])
    out = tmp_path / "run"
    with pytest.raises(NonFiniteError, match="non-finite"):
        pinnopt.solve(problem, optimizer="sgd", optimizer_kwargs={"learning_rate": 10.0}, steps=400,
                      chunk=10, checkpoint_every=10, max_nonfinite=20, out=str(out))
    summary = json.load(open(out / "summary.json"))
    assert summary["status"].startswith("stopped")
    ckpt = Checkpointer(str(out / "checkpoints"))
    if ckpt.latest_step() is not None:
        tx = optimizers.get("sgd", learning_rate=10.0)
        template = init_state(problem, tx, balancing.get("sum"), constraints.get("al"), 0)
        restored = ckpt.restore(template)
        assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(restored.params))


def test_heldout_violation_and_evaluation_reported(fit_sine):
    res = pinnopt.solve(fit_sine, steps=100, chunk=50, heldout_every=50)
    ends = [row for row in res.history if row["step"] % 50 == 0]
    assert len(ends) == 2
    for row in ends:
        assert "heldout_violation/cap" in row and row["heldout_violation/cap"] >= 0
        assert "eval/max_u" in row and "violation/cap" in row and "raw/fit" in row


def test_lbfgs_and_bad_arguments(fit_sine):
    res = pinnopt.solve(pinnopt.problems.get("zakharov", dim=4), optimizer="lbfgs", constraints="none",
                        steps=30, chunk=30)
    assert res.summary["best_loss"] < 1e-3
    with pytest.raises(ValueError, match="steps"):
        pinnopt.solve(fit_sine, steps=0)
    with pytest.raises(ValueError, match="adam"):
        pinnopt.solve(fit_sine, optimizer="adma", steps=10)
    with pytest.raises(ValueError, match="chunk"):
        pinnopt.solve(fit_sine, steps=10, chunk=-1)
