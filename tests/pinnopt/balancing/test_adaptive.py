"""grad_norm and ntk: weights on cases worked by hand, the interval, the moving average, the guards,
the least-squares form, and the step that hands them the model's gradients."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnopt
from pinnopt import balancing, constraints, optimizers
from pinnopt.methods import ModelGrads
from pinnopt.terms import Constraint, Objective
from pinnopt.training import init_state, make_step

KEY = jax.random.PRNGKey(0)
FLOOR = 1e-5  # the documented guard lambda_hat = S / (s + 1e-5 S)


def two_terms(theta):
    """L_u = (2 w0 - 1)^2 (on 2 points), L_r = (w0 + 3 w1)^2 (a residual on 1 point).

    At theta = (1, 1): grad L_u = 2 (2 - 1) (2, 0) = (4, 0), norm 4;
    grad L_r = 2 (1 + 3) (1, 3) = (8, 24), norm 8 sqrt(10).
    """
    w0, w1 = theta["w"][0], theta["w"][1]
    return {"u": Objective((2 * w0 - 1) ** 2 * jnp.ones(2)),
            "r": Objective.of_residual(jnp.stack([w0 + 3 * w1]))}


THETA = {"w": jnp.array([1.0, 1.0])}
NORMS = {"u": 4.0, "r": 8.0 * math.sqrt(10.0)}


def hat(stats, reduction="sum"):
    total = sum(stats.values()) / (1 if reduction == "sum" else len(stats))
    return {k: total / (s + FLOOR * total) for k, s in stats.items()}


def test_model_grads_norms_by_hand():
    norms = ModelGrads(two_terms, THETA).norms()
    assert set(norms) == {"u", "r"}
    for k in NORMS:
        np.testing.assert_allclose(norms[k], NORMS[k], rtol=1e-6)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_grad_norm_weights_by_hand(reduction):
    bal = balancing.get("grad_norm", alpha=0.9, update_every=1, reduction=reduction, weights={"u": 2.0})
    objs = two_terms(THETA)
    params, state = bal.init(KEY, objs)
    state = jax.jit(lambda s: bal.update(objs, params, s, model_grads=ModelGrads(two_terms, THETA)))(state)
    target = hat(NORMS, reduction)
    # S = 4 + 8 sqrt(10) = 29.30: lambda_hat_u = 7.32, lambda_hat_r = 1.158 (sum form)
    np.testing.assert_allclose(state.weights["u"], 0.9 * 2.0 + 0.1 * target["u"], rtol=1e-6)
    np.testing.assert_allclose(state.weights["r"], 0.9 * 1.0 + 0.1 * target["r"], rtol=1e-6)
    value, metrics = bal.loss(objs, params, state)
    # L_u = 1, L_r = 16 at theta = (1, 1)
    np.testing.assert_allclose(value, state.weights["u"] * 1.0 + state.weights["r"] * 16.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["grad_norm/norm/r"], NORMS["r"], rtol=1e-6)
    np.testing.assert_allclose(metrics["grad_norm/weight/u"], state.weights["u"])
    # After the jump (alpha = 0) both terms pull equally: lambda_k ||grad L_k|| = S for every k.
    jump = balancing.get("grad_norm", alpha=0.0, update_every=1)
    _, s0 = jump.init(KEY, objs)
    s1 = jump.update(objs, {}, s0, model_grads=ModelGrads(two_terms, THETA))
    pulls = [float(s1.weights[k]) * NORMS[k] for k in NORMS]
    np.testing.assert_allclose(pulls, sum(NORMS.values()), rtol=1e-4)


def test_recomputed_every_k_steps_only():
    """update_every = 3: the statistics are computed on steps 0 and 3 of 6, and the weights
    change only then; the off steps do not run the gradient computation at all."""
    calls = []

    class Counted(ModelGrads):
        def norms(self):
            jax.debug.callback(lambda: calls.append(1))
            return super().norms()

    bal = balancing.get("grad_norm", alpha=0.5, update_every=3)
    thetas = [{"w": jnp.array([1.0 + 0.1 * i, 1.0])} for i in range(6)]
    params, state = bal.init(KEY, two_terms(thetas[0]))
    update = jax.jit(lambda s, th: bal.update(two_terms(th), params, s, model_grads=Counted(two_terms, th)))
    seen = []
    for th in thetas:
        state = update(state, th)
        seen.append(float(state.weights["u"]))
    jax.effects_barrier()
    assert len(calls) == 2
    assert seen[0] == seen[1] == seen[2] != seen[3] == seen[4] == seen[5]
    # Step 3 moved from the step-0 weights towards the target at theta_3.
    norms3 = {k: float(v) for k, v in ModelGrads(two_terms, thetas[3]).norms().items()}
    np.testing.assert_allclose(seen[3], 0.5 * seen[0] + 0.5 * hat(norms3)["u"], rtol=1e-5)
    assert int(state.step) == 6


def test_vanishing_gradients_are_guarded():
    def flat(theta):
        return {"a": Objective(jnp.ones(3) + 0.0 * theta["w"][0]), "b": Objective((theta["w"][0] - 2.0) ** 2)}

    bal = balancing.get("grad_norm", alpha=0.0, update_every=1)
    _, state = bal.init(KEY, flat(THETA))
    state = bal.update(flat(THETA), {}, state, model_grads=ModelGrads(flat, THETA))
    # grad a = 0: lambda_hat_a = S / (1e-5 S) = 1e5 (bounded, finite); grad b = 2, lambda_hat_b = 1 / (1 + 1e-5).
    np.testing.assert_allclose(state.weights["a"], 1e5, rtol=1e-5)
    np.testing.assert_allclose(state.weights["b"], 1 / (1 + FLOOR), rtol=1e-6)
    at_min = {"w": jnp.array([2.0, 0.0])}  # every gradient zero: the weights stay
    state2 = bal.update(flat(at_min), {}, state, model_grads=ModelGrads(flat, at_min))
    assert all(np.isfinite(float(w)) for w in state2.weights.values())
    np.testing.assert_array_equal(state2.weights["b"], state.weights["b"])


def line(theta, xs_ic=(0.0, 1.0), xs_pde=(0.5, 2.0, 3.0), with_residual=True):
    """u(x) = a + b x. ic: r = u(x) at xs_ic, grad_(a, b) r = (1, x), ||.||^2 = 1 + x^2.
    pde: r = u_x - 1 = b - 1, grad r = (0, 1), ||.||^2 = 1 at every point."""
    a, b = theta["a"], theta["b"]
    r_ic = a + b * jnp.asarray(xs_ic)
    r_pde = (b - 1.0) * jnp.ones(len(xs_pde))
    make = Objective.of_residual if with_residual else (lambda r: Objective(r ** 2))
    return {"ic": make(r_ic), "pde": make(r_pde)}


LINE = {"a": jnp.array(0.3), "b": jnp.array(2.0)}


@pytest.mark.parametrize("with_residual", [True, False])
def test_ntk_weights_by_hand(with_residual):
    fn = lambda th: line(th, with_residual=with_residual)  # noqa: E731
    sq = ModelGrads(fn, LINE).point_sq_norms()
    # sqrt(l) stands in for r when the term carries no residual: the same ||grad r||^2 (r != 0 here).
    np.testing.assert_allclose(sq["ic"], [1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(sq["pde"], [1.0, 1.0, 1.0], rtol=1e-6)
    bal = balancing.get("ntk", alpha=0.0, update_every=1, max_points=None)
    _, state = bal.init(KEY, fn(LINE))
    state = bal.update(fn(LINE), {}, state, model_grads=ModelGrads(fn, LINE))
    # T_ic = (1 + 2) / 2 = 1.5, T_pde = 1: lambda_ic = 2.5 / 1.5, lambda_pde = 2.5 (with the guard).
    target = hat({"ic": 1.5, "pde": 1.0})
    np.testing.assert_allclose(state.weights["ic"], target["ic"], rtol=1e-6)
    np.testing.assert_allclose(state.weights["pde"], target["pde"], rtol=1e-6)
    metrics = bal.loss(fn(LINE), {}, state)[1]
    np.testing.assert_allclose(metrics["ntk/trace/ic"], 1.5, rtol=1e-6)


def test_loss_only_point_at_zero_counts_zero():
    fn = lambda th: {"ic": Objective((th["a"] + th["b"] * jnp.array([0.0, 1.0])) ** 2)}  # noqa: E731
    sq = ModelGrads(fn, {"a": jnp.array(0.0), "b": jnp.array(2.0)}).point_sq_norms()
    np.testing.assert_allclose(sq["ic"], [0.0, 2.0], rtol=1e-6)  # r_0 = 0: no sqrt(l) gradient, 0 not NaN


def test_ntk_subset_moves_with_each_recomputation():
    """x_ic = 0, 1, 2, 3 and max_points 2: indices {0, 2} then {1, 3}: T = (1 + 5)/2 = 3, then (2 + 10)/2 = 6."""
    fn = lambda th: line(th, xs_ic=(0.0, 1.0, 2.0, 3.0))  # noqa: E731
    np.testing.assert_allclose(ModelGrads(fn, LINE).point_sq_norms(2, 0)["ic"], [1.0, 5.0], rtol=1e-6)
    bal = balancing.get("ntk", alpha=0.5, update_every=1, max_points=2)
    _, state = bal.init(KEY, fn(LINE))
    traces = []
    for _ in range(2):
        state = bal.update(fn(LINE), {}, state, model_grads=ModelGrads(fn, LINE))
        traces.append(float(bal.loss(fn(LINE), {}, state)[1]["ntk/trace/ic"]))
    np.testing.assert_allclose(traces, [3.0, 6.0], rtol=1e-6)


def test_least_squares_form_matches_the_loss():
    for name in ("grad_norm", "ntk"):
        bal = balancing.get(name, alpha=0.3, update_every=1)
        objs = line(LINE)
        _, state = bal.init(KEY, objs)
        state = bal.update(objs, {}, state, model_grads=ModelGrads(line, LINE))
        R = bal.residuals(objs, {}, state)
        assert R.shape == (5,)
        np.testing.assert_allclose(jnp.sum(R ** 2), bal.loss(objs, {}, state)[0], rtol=1e-6)
        with pytest.raises(ValueError, match="carries no residual"):
            bal.residuals(line(LINE, with_residual=False), {}, state)


@pytest.mark.parametrize("name, options, match", [
    ("grad_norm", {"alpha": 1.0}, "alpha must lie in"),
    ("grad_norm", {"alpha": -0.1}, "alpha must lie in"),
    ("grad_norm", {"alpha": float("nan")}, "alpha must lie in"),
    ("grad_norm", {"update_every": 0}, "update_every must be an integer >= 1"),
    ("ntk", {"update_every": 2.5}, "update_every"),
    ("grad_norm", {"weights": {"u": 0.0}}, r"weights\['u'\].*> 0"),
    ("grad_norm", {"weights": {"u": -1.0}}, r"weights\['u'\]"),
    ("ntk", {"reduction": "max"}, "reduction must be one of"),
    ("ntk", {"max_points": 0}, "max_points must be an integer >= 1"),
])
def test_validation(name, options, match):
    with pytest.raises(ValueError, match=match):
        balancing.get(name, **options)


def test_unknown_weight_names_and_missing_model_grads():
    with pytest.raises(ValueError, match=r"unknown terms \['uu'\]"):
        balancing.get("grad_norm", weights={"uu": 2.0}).init(KEY, two_terms(THETA))
    bal = balancing.get("grad_norm")
    _, state = bal.init(KEY, two_terms(THETA))
    with pytest.raises(ValueError, match="model_grads"):
        bal.update(two_terms(THETA), {}, state)


@dataclasses.dataclass(frozen=True)
class Line:
    """The two-term line problem for the step: u = a + b x with ic points and pde points, and a
    point-wise equality constraint u(2) = 4.3 (b = 2 fits both) for the constraint methods."""

    name: str = "line"

    def init(self, key):
        return {"a": jnp.float32(0.3), "b": jnp.float32(2.0)}  # not weakly typed: the step keeps its types

    def sample(self, key, step):
        return {"x": jax.random.uniform(key, (4,), minval=0.0, maxval=1.0)}

    def terms(self, theta, batch):
        out = line(theta, xs_ic=batch["x"])
        out["pin"] = Constraint(jnp.stack([theta["a"] + 2.0 * theta["b"] - 4.3]))
        return out


def test_the_step_hands_over_model_gradients_and_reads_the_weights_from_the_state():
    """Project rule: the weights are state; new weights reach the compiled step without a retrace."""
    problem = Line()
    tx = optimizers.get("sgd", learning_rate=0.01)
    bal = balancing.get("grad_norm", alpha=0.5, update_every=2)
    method = constraints.get("penalty")
    state = init_state(problem, tx, bal, method, seed=0)
    traces = []

    def counted(s):
        traces.append(1)
        return make_step(problem, tx, bal, method)(s)

    step = jax.jit(counted)
    s1, m1 = step(state)
    # The weights after step 0: the moving average towards S / ||grad L_k||, with the norms
    # taken here term by term by jax.grad at the step's parameters and batch.
    from pinnopt.training.step import sample_batch, COLLOCATION_SALT
    _, batch = sample_batch(problem, state, 1, jax.random.PRNGKey(COLLOCATION_SALT))
    theta = state.params["model"]
    norms = {}
    for k in ("ic", "pde"):
        g = jax.grad(lambda th: jnp.mean(problem.terms(th, batch)[k].loss))(theta)
        norms[k] = float(jnp.sqrt(g["a"] ** 2 + g["b"] ** 2))
    target = hat(norms)
    for k in norms:
        np.testing.assert_allclose(s1.balancer_state.weights[k], 0.5 + 0.5 * target[k], rtol=1e-5)
        np.testing.assert_allclose(m1[f"grad_norm/weight/{k}"], 1.0)  # step 0's loss used the initial weights
    # Bumping a weight in the state changes the compiled step's loss by exactly that weight's share.
    bumped = s1._replace(balancer_state=s1.balancer_state._replace(
        weights={**s1.balancer_state.weights, "pde": s1.balancer_state.weights["pde"] + 3.0}))
    (_, m2), (_, m3) = step(s1), step(bumped)
    assert len(traces) == 1
    np.testing.assert_allclose(m3["loss"] - m2["loss"], 3.0 * m2["raw/pde"], rtol=1e-4)
    assert set(s1.balancer_state.weights) == {"ic", "pde"}  # the constraint went to the penalty method


def test_solve_runs_grad_norm_and_ntk_with_the_augmented_lagrangian():
    for name in ("grad_norm", "ntk"):
        res = pinnopt.solve(Line(), "adam", constraints="al", balancing=name, steps=12, chunk=6,
                            optimizer_kwargs={"learning_rate": 1e-2},
                            balancing_kwargs={"update_every": 5})
        rows = res.history
        assert all(np.isfinite(r["loss"]) for r in rows)
        w = [r[f"{name}/weight/ic"] for r in rows]
        assert w[0] == 1.0 and w[-1] != 1.0  # updated at steps 0, 5 and 10
        assert int(res.state.balancer_state.step) == 12


@pytest.mark.parametrize("name", ["ntk", "rba"])
def test_gauss_newton_runs_on_the_weighted_residuals(name):
    """The least-squares path: Gauss-Newton minimises sum(R^2) of the balancer's residuals (and the
    penalty's), on one fixed set of points (rba needs it), in float64 (the weights stay float32
    state). rba starts from weights 1 here: from 0 its loss would grow with the weights."""
    options = {"update_every": 1} if name == "ntk" else {"initial": 1.0}
    res = pinnopt.solve(Line(), "gauss_newton", constraints="penalty", balancing=name, steps=6, chunk=3,
                        resample_every=0, log_every=1, balancing_kwargs=options, precision="float64")
    losses = [r["loss"] for r in res.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
