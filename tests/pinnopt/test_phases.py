"""Optimizer phases, the collocation policy and float64 runs of the solve loop."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pinnopt
from pinnopt.training.state import TrainState
from pinnopt.training.step import sample_batch


def load(name):
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Noisy:
    """Points from the key: which batch a step saw is visible in the batch itself."""

    name = "noisy"

    def init(self, key):
        return jnp.zeros(2)

    def sample(self, key, step):
        return jax.random.normal(key, (4, 2))

    def terms(self, x, batch):
        return {"f": pinnopt.Objective(jnp.sum((batch - x) ** 2, axis=1))}


def _state(step):
    return TrainState({}, (), {}, {}, jax.random.PRNGKey(step), jnp.int32(step), 0, 0, 0, 0)


def test_collocation_policy():
    root = jax.random.PRNGKey(7)
    batch = lambda k, step: np.asarray(sample_batch(Noisy(), _state(step), k, root)[1])
    fixed = [batch(0, s) for s in range(5)]
    assert all(np.array_equal(fixed[0], b) for b in fixed)
    blocks = [batch(3, s) for s in range(7)]
    assert np.array_equal(blocks[0], blocks[2]) and np.array_equal(blocks[3], blocks[5])
    assert not np.array_equal(blocks[2], blocks[3]) and not np.array_equal(blocks[5], blocks[6])
    fresh = [batch(1, s) for s in range(3)]
    assert not np.array_equal(fresh[0], fresh[1])
    # resample_every=1 is the old key stream exactly: split the training key, sample at the step.
    _, k = jax.random.split(jax.random.PRNGKey(2))
    np.testing.assert_array_equal(batch(1, 2), np.asarray(Noisy().sample(k, 2)))


def test_fixed_set_reaches_the_mean_of_its_points():
    # On a fixed set the minimiser is the mean of those points exactly; resampled, it wanders.
    res = pinnopt.solve(Noisy(), optimizer="lbfgs", steps=30, chunk=30, resample_every=0)
    root = jax.random.fold_in(jax.random.PRNGKey(0), pinnopt.training.step.COLLOCATION_SALT)
    points = Noisy().sample(jax.random.fold_in(root, 0), 0)
    np.testing.assert_allclose(np.asarray(res.params), np.asarray(points.mean(axis=0)), atol=1e-5)


@pytest.mark.slow  # ~55 s of training
def test_adam_then_lbfgs_on_a_fixed_set_improves_on_adam():
    problem = load("poisson_1d").make_problem(n_interior=64, width=16, depth=2)
    adam = pinnopt.solve(problem, optimizer="adam", optimizer_kwargs={"learning_rate": 1e-2}, steps=300,
                         resample_every=0, chunk=100)
    both = pinnopt.solve(problem, optimizer=[("adam", {"learning_rate": 1e-2}, 300), ("lbfgs", {}, 200)],
                         resample_every=0, chunk=100)
    assert both.summary["steps"] == 500 or "stopped early" in both.summary["phases"][-1]["ended"]
    assert both.summary["final"]["eval/rel_l2"] < 0.5 * adam.summary["final"]["eval/rel_l2"]
    assert [p["optimizer"] for p in both.summary["phases"]] == ["adam", "lbfgs"]
    assert {r["phase"] for r in both.history} == {0, 1}


def test_a_phase_that_stops_moving_ends_early_and_says_why():
    pinnopt.optimizers.register("frozen", lambda: optax.set_to_zero())
    res = pinnopt.solve(pinnopt.problems.get("rastrigin", dim=2),
                        optimizer=[("frozen", {}, 100), ("sgd", {"learning_rate": 1e-3}, 20)], chunk=10)
    first, second = res.summary["phases"]
    assert first["end"] == 10 and "no update for 10 steps" in first["ended"]
    assert second["start"] == 10 and second["end"] == 30 and second["ended"] == "completed its steps"
    assert any("no update" in r.get("phase_end", "") for r in res.history)


def test_phase_options_are_checked():
    with pytest.raises(ValueError, match="add up to 30"):
        pinnopt.solve(Noisy(), optimizer=[("adam", {}, 10), ("sgd", {"learning_rate": 0.1}, 20)], steps=25)
    with pytest.raises(ValueError, match=r"phase 1 steps must be an integer >= 1"):
        pinnopt.solve(Noisy(), optimizer=[("adam", {}, 10), ("sgd", {}, 0)])
    with pytest.raises(ValueError, match="its own hyperparameters"):
        pinnopt.solve(Noisy(), optimizer=[("adam", {}, 10)], optimizer_kwargs={"learning_rate": 0.1})


@pytest.mark.parametrize("interrupt_after", [20, 30])  # inside phase 0, and at the phase boundary
def test_resume_inside_and_across_phases_is_bit_for_bit(tmp_path, interrupt_after):
    phases = [("adam", {"learning_rate": 0.01}, 30), ("sgd", {"learning_rate": 0.01, "momentum": 0.9}, 30)]
    kwargs = dict(optimizer=phases, chunk=10, checkpoint_every=10)
    problem = pinnopt.problems.get("rastrigin", dim=3)
    straight = pinnopt.solve(problem, **kwargs)
    run = str(tmp_path / "run")

    class Interrupted(Exception):
        pass

    def interrupt(row):  # rows come before the chunk's checkpoint: the last one kept is interrupt_after
        if row["step"] > interrupt_after:
            raise Interrupted

    with pytest.raises(Interrupted):
        pinnopt.solve(problem, out=run, callback=interrupt, **kwargs)
    assert max(int(s) for s in os.listdir(os.path.join(run, "checkpoints"))) == interrupt_after
    resumed = pinnopt.solve(problem, resume=run, **kwargs)
    for a, b in zip(jax.tree.leaves(straight.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]


def test_float64_run_changes_nothing_global():
    before = jax.config.jax_enable_x64
    res = pinnopt.solve(Noisy(), optimizer="lbfgs", steps=20, chunk=20, resample_every=0, precision="float64")
    assert jax.config.jax_enable_x64 == before
    assert res.params.dtype == np.float64 and res.summary["precision"] == "float64"
    assert jnp.zeros(1).dtype == jnp.float32
    with pytest.raises(ValueError, match="precision"):
        pinnopt.solve(Noisy(), steps=2, precision="float16")


def test_time_limit_ends_the_run_in_any_phase_and_says_so():
    # Two long phases; the limit falls inside the first, so the second never starts.
    phases = [("sgd", {"learning_rate": 1e-3}, 10**7), ("adam", {"learning_rate": 1e-3}, 10**7)]
    res = pinnopt.solve(Noisy(), optimizer=phases, constraints="none", chunk=50, time_limit=0.5)
    assert 0 < int(res.state.step) < 10**7
    assert res.summary["stopped"] == "time limit of 0.5 s reached"
    assert [p["phase"] for p in res.summary["phases"]] == [0]
    assert res.summary["phases"][0]["ended"] == res.summary["stopped"]
    assert pinnopt.solve(Noisy(), constraints="none", steps=100, chunk=50).summary["stopped"] is None
    with pytest.raises(ValueError, match="time_limit"):
        pinnopt.solve(Noisy(), constraints="none", steps=10, time_limit=0)
