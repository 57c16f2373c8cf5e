"""rba: the point weights on a case worked by hand, their bound, the loss and least-squares forms,
the terms option, and the fixed collocation set that solve insists on."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnopt
from pinnopt import balancing
from pinnopt.terms import Objective

KEY = jax.random.PRNGKey(0)


def test_weights_and_loss_by_hand():
    r1 = jnp.array([1.0, -2.0, 4.0])  # |r| / max |r| = 0.25, 0.5, 1
    r2 = jnp.array([2.0, 2.0, -1.0])  # 1, 1, 0.5
    bal = balancing.get("rba", gamma=0.9, eta=0.1)
    objs = {"pde": Objective.of_residual(r1), "data": Objective(jnp.array(0.7))}
    params, state = bal.init(KEY, objs)
    np.testing.assert_array_equal(state.weights["pde"], [0.0, 0.0, 0.0])
    assert set(state.weights) == {"pde"}  # one value: no points to weight, a plain mean
    # Step 0: the loss uses the initial (zero) weights, then the update.
    np.testing.assert_allclose(bal.loss(objs, params, state)[0], 0.7, rtol=1e-6)
    state = jax.jit(bal.update)(objs, params, state)
    lam1 = np.array([0.025, 0.05, 0.1])
    np.testing.assert_allclose(state.weights["pde"], lam1, rtol=1e-6)
    objs2 = {"pde": Objective.of_residual(r2), "data": Objective(jnp.array(0.7))}
    value, metrics = bal.loss(objs2, params, state)
    np.testing.assert_allclose(value, np.mean((lam1 * np.array([2.0, 2.0, -1.0])) ** 2) + 0.7, rtol=1e-6)
    np.testing.assert_allclose(metrics["rba/w_max/pde"], 0.1, rtol=1e-6)
    np.testing.assert_allclose(metrics["rba/w_mean/pde"], lam1.mean(), rtol=1e-6)
    state = bal.update(objs2, params, state)
    np.testing.assert_allclose(state.weights["pde"], 0.9 * lam1 + 0.1 * np.array([1.0, 1.0, 0.5]), rtol=1e-6)
    # sum(R^2) is the loss: lambda_i r_i / sqrt(N), and the scalar term as itself.
    objs3 = {"pde": Objective.of_residual(r2), "data": Objective.of_residual(jnp.array(0.5))}
    R = bal.residuals(objs3, params, state)
    np.testing.assert_allclose(jnp.sum(R ** 2), bal.loss(objs3, params, state)[0], rtol=1e-6)
    with pytest.raises(ValueError, match="carries no residual"):
        bal.residuals(objs2, params, state)


def test_loss_without_residual_uses_sqrt_of_the_loss():
    r = jnp.array([1.0, -2.0, 4.0])
    bal = balancing.get("rba", initial=1.0)
    with_r, without = {"pde": Objective.of_residual(r)}, {"pde": Objective(r ** 2)}
    p, s = bal.init(KEY, with_r)
    a, b = bal.update(with_r, p, s), bal.update(without, p, s)
    np.testing.assert_allclose(a.weights["pde"], b.weights["pde"], rtol=1e-6)
    np.testing.assert_allclose(bal.loss(with_r, p, a)[0], bal.loss(without, p, b)[0], rtol=1e-6)


def test_weights_stay_below_eta_over_one_minus_gamma_and_outside_the_gradient():
    bal = balancing.get("rba")  # gamma 0.999, eta 0.01: bound 10
    r = jnp.array([0.5, 3.0, -1.0, 2.0])
    objs = {"pde": Objective.of_residual(r)}
    params, state = bal.init(KEY, objs)
    state = jax.jit(lambda s: jax.lax.fori_loop(0, 20000, lambda i, s: bal.update(objs, params, s), s))(state)
    w = np.asarray(state.weights["pde"])
    assert np.all(w <= 10.0 + 1e-4) and w[1] > 9.9  # the largest residual approaches the bound
    np.testing.assert_allclose(w, 10.0 * (1 - 0.999 ** 20000) * np.abs(r) / 3.0, rtol=1e-3)
    # d loss / d r_i = 2 lambda_i^2 r_i / N: the weights do not move with r.
    g = jax.grad(lambda r: bal.loss({"pde": Objective.of_residual(r)}, params, state)[0])(r)
    np.testing.assert_allclose(g, 2 * w ** 2 * np.asarray(r) / 4, rtol=1e-5)


def test_all_zero_residuals_only_decay_the_weights():
    bal = balancing.get("rba", gamma=0.5, initial=1.0)
    objs = {"pde": Objective.of_residual(jnp.zeros(3))}
    p, s = bal.init(KEY, objs)
    np.testing.assert_allclose(bal.update(objs, p, s).weights["pde"], [0.5, 0.5, 0.5])


def test_terms_option_and_point_count_check():
    objs = {"pde": Objective(jnp.ones(4)), "ic": Objective(jnp.ones(2)), "c": Objective(jnp.array(1.0))}
    p, s = balancing.get("rba", terms=["ic"]).init(KEY, objs)
    assert set(s.weights) == {"ic"}
    with pytest.raises(ValueError, match="single loss value"):
        balancing.get("rba", terms=["c"]).init(KEY, objs)
    with pytest.raises(ValueError, match="not among the objectives"):
        balancing.get("rba", terms=["bc"]).init(KEY, objs)
    bal = balancing.get("rba")
    p, s = bal.init(KEY, objs)
    with pytest.raises(ValueError, match="resample_every=0"):
        bal.loss({**objs, "pde": Objective(jnp.ones(5))}, p, s)


@pytest.mark.parametrize("options, match", [
    ({"gamma": 1.0}, "gamma must be a finite number in"),
    ({"gamma": -0.5}, "gamma"),
    ({"eta": -1.0}, "eta must be a finite number >= 0"),
    ({"eta": float("inf")}, "eta"),
    ({"initial": -1.0}, "initial"),
    ({"terms": "pde"}, "terms must be a list"),
])
def test_validation(options, match):
    with pytest.raises(ValueError, match=match):
        balancing.get("rba", **options)


@dataclasses.dataclass(frozen=True)
class Points:
    """u = a + b x fitted to 2 x + 1 at points drawn by the collocation policy."""

    name: str = "points"

    def init(self, key):
        return {"a": jnp.float32(0.0), "b": jnp.float32(0.0)}

    def sample(self, key, step):
        return {"x": jax.random.uniform(key, (16,))}

    def terms(self, theta, batch):
        x = batch["x"]
        return {"fit": Objective.of_residual(theta["a"] + theta["b"] * x - (2 * x + 1), coords=x[:, None])}


def test_solve_insists_on_one_fixed_set_of_points(tmp_path):
    assert balancing.get("rba").requires_fixed_points and not balancing.get("sum").requires_fixed_points
    for every in (1, 5):
        with pytest.raises(ValueError, match="rba balancer.*resample_every=0.*got resample_every=" + str(every)):
            pinnopt.solve(Points(), balancing="rba", steps=5, resample_every=every, out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # refused before anything reached the disk
    res = pinnopt.solve(Points(), balancing="rba", constraints="none", steps=300, chunk=100, resample_every=0,
                        optimizer_kwargs={"learning_rate": 0.05})
    assert res.history[-1]["rba/w_max/fit"] > 0
    assert res.history[-1]["raw/fit"] < 1e-2 * res.history[0]["raw/fit"]


def test_the_command_line_stops_before_the_run_directory(tmp_path, capsys):
    from pinnopt.cli import main

    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exc:
        main(["solve", "convection", "-b", "rba", "--runs", str(runs), "--name", "bad", "--no-progress"])
    assert "resample_every=0 (--resample-every 0)" in str(exc.value.code)
    assert "run directory" not in capsys.readouterr().out and not runs.exists()
