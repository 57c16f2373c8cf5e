"""The benchmark engine, on tiny sizes: vmapped runs equal single runs, reseeded optimizer
keys, best-loss bookkeeping, stopping, the table, the files, the command line."""
import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnopt import optimizers, problems
from pinnopt.cli import bench as bench_cli
from pinnopt.experiments import vmapped as bench


def test_table_rows_files_and_text(tmp_path):
    table = bench.run_bench("rastrigin", ["bbi", "sgd"], runs=3, steps=20, seed=1,
                            problem_kwargs={"dim": 2},
                            optimizer_kwargs={"bbi": {"learning_rate": 0.01, "delta_energy": 1.0}},
                            out_dir=str(tmp_path), success_threshold=100.0)
    assert [r.optimizer for r in table.rows] == ["bbi", "sgd"]
    for row in table.rows:
        assert row.best_min <= row.best_median <= row.best_max
        assert row.successes == 3 and row.success_rate == 1.0  # everything is within 100 of 0
        assert row.steps_per_s > 0 and row.us_per_step > 0
    text = bench.format_table(table)
    assert "bbi" in text and "sgd" in text and "3 runs x 20 steps" in text and "delta_energy" in text
    assert (tmp_path / "table.txt").read_text().strip() == text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["best_per_run"]["sgd"]) == 3 and summary["rows"][0]["optimizer"] == "bbi"
    assert (tmp_path / "plots" / "best_loss.png").stat().st_size > 0
    assert (tmp_path / "plots" / "best_loss_spread.png").stat().st_size > 0


def test_best_loss_is_the_minimum_along_the_trajectory():
    prob = problems.get("rastrigin", dim=2)
    tx = optimizers.get("sgd", learning_rate=0.002, momentum=0.9)
    x0 = jnp.array([[1.3, -2.1]])
    res = bench.run_batch(prob, tx, x0, jax.random.split(jax.random.PRNGKey(0), 1), 7, record_every=3)
    x, state, losses = x0[0], tx.init(x0[0]), []
    for _ in range(7):
        v, g = jax.value_and_grad(lambda p: prob.terms(p, None)["f"].loss)(x)
        losses.append(float(v))
        u, state = tx.update(g, state, x)
        x = optax.apply_updates(x, u)
    losses.append(float(prob.fn(x)))
    assert res.best[0] == pytest.approx(min(losses), rel=1e-6)
    assert res.final[0] == pytest.approx(losses[-1], rel=1e-6)
    np.testing.assert_array_equal(res.record_steps, [3, 6, 7])
    np.testing.assert_allclose(res.curve[0], [min(losses[:3]), min(losses[:6]), min(losses[:7])], rtol=1e-6)


def test_vmapped_runs_equal_single_runs_and_keys_are_independent():
    prob = problems.get("two_basin", x0=(10.0, -10.0))
    tx = optimizers.get("bbi", learning_rate=0.01, threshold0=5, n_fixed_bounces=3, threshold1=20, v0=1e-3)
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    starts = bench.initial_params(prob, 3, jax.random.PRNGKey(0))  # all (10, -10)
    together = bench.run_batch(prob, tx, starts, keys, 60)
    assert not np.allclose(together.params[0], together.params[1])  # different bounces
    for i in (0, 2):
        alone = bench.run_batch(prob, tx, starts[i:i + 1], keys[i:i + 1], 60)
        np.testing.assert_allclose(alone.params[0], together.params[i], rtol=1e-5, atol=1e-6)
        assert alone.best[0] == pytest.approx(together.best[i], rel=1e-5)


def test_reseed_state_replaces_every_key():
    tx = optax.chain(optimizers.get("bbi", learning_rate=0.1), optax.add_noise(0.1, 0.5, key=0))
    state = tx.init(jnp.ones(2))
    a, b = bench.reseed_state(state, jax.random.PRNGKey(1)), bench.reseed_state(state, jax.random.PRNGKey(2))
    keys = lambda s: [s[0].key, s[1].rng_key]
    assert not np.array_equal(keys(a)[0], keys(a)[1])
    for ka, kb, k0 in zip(keys(a), keys(b), keys(state)):
        assert not np.array_equal(ka, kb) and not np.array_equal(ka, k0)


def test_stop_fn_freezes_a_run_where_it_first_holds():
    prob = problems.get("zakharov", dim=2)
    tx = optimizers.get("sgd", learning_rate=0.01)
    starts = jnp.array([[1.0, 1.0], [0.01, 0.0]])
    stop = lambda x: jnp.sum(x**2) < 0.5
    res = bench.run_batch(prob, tx, starts, jax.random.split(jax.random.PRNGKey(0), 2), 200, stop_fn=stop)
    assert res.stopped_at[1] == 1 and 1 < res.stopped_at[0] < 200
    for i in range(2):
        assert float(jnp.sum(res.params[i] ** 2)) < 0.5
        free = bench.run_batch(prob, tx, starts[i:i + 1], jax.random.split(jax.random.PRNGKey(0), 2)[i:i + 1],
                               int(res.stopped_at[i]))
        np.testing.assert_allclose(free.params[0], res.params[i], rtol=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="constraints"):
        bench.run_bench("constrained_quadratic", ["sgd"], runs=1, steps=2)
    with pytest.raises(ValueError, match="adam"):
        bench.run_bench("rastrigin", ["sgd"], runs=1, steps=2, optimizer_kwargs={"adam": {}})
    with pytest.raises(ValueError, match="unknown optimizer"):
        bench.run_bench("rastrigin", ["nosuch"], runs=1, steps=2)
    with pytest.raises(ValueError, match="runs"):
        bench.run_bench("rastrigin", ["sgd"], runs=0, steps=2)


def test_command_line(capsys, tmp_path):
    parser = argparse.ArgumentParser()
    bench_cli.add_arguments(parser)
    args = parser.parse_args(["rastrigin", "-o", "bbi,sgd", "--runs", "2", "--steps", "5", "--dim", "3",
                              "--opt-arg", "learning_rate=0.001", "--opt-arg", "sgd.momentum=0.9",
                              "--out", str(tmp_path)])
    assert bench_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "2 runs x 5 steps" in out and '"momentum": 0.9' in out and '"dim": 3' in out
    assert (tmp_path / "summary.json").exists()
    bad = parser.parse_args(["rastrigin", "-o", "sgd", "--opt-arg", "adam.learning_rate=1"])
    with pytest.raises(SystemExit, match="adam"):
        bench_cli.run(bad)


def test_traced_hyperparameters_per_run_match_fixed_ones():
    prob = problems.get("zakharov", dim=2)
    starts = jnp.array([[1.0, -1.0]] * 2)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    lrs = jnp.array([1e-3, 1e-2])
    make = lambda lr: optimizers.get("sgd", learning_rate=lambda _: lr, momentum=0.9)
    grid = bench.run_batch(prob, make, starts, keys, 30, hparams=lrs)
    for i, lr in enumerate((1e-3, 1e-2)):
        fixed = bench.run_batch(prob, optimizers.get("sgd", learning_rate=lr, momentum=0.9),
                                starts[i:i + 1], keys[i:i + 1], 30)
        np.testing.assert_allclose(grid.params[i], fixed.params[0], rtol=1e-6)


def test_a_diverging_run_keeps_its_best_and_is_counted():
    table = bench.run_bench("zakharov", ["sgd"], runs=2, steps=40, problem_kwargs={"dim": 2},
                            optimizer_kwargs={"sgd": {"learning_rate": 1.0}})
    row = table.rows[0]
    assert row.diverged == 2 and np.isfinite(row.best_max) and row.best_max > 0
    assert "diverged" in bench.format_table(table)
