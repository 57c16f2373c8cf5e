"""Gauss-Newton, Levenberg-Marquardt and ENGD: exact on linear least squares (both systems),
convergence on nonlinear ones, a PINN through ``pinnopt.solve``, and the optax conformance checks."""
import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pinnopt
from pinnopt import optimizers, pde
from pinnopt.optimizers.engd import ENGDState, engd
from pinnopt.optimizers.least_squares import (GaussNewtonState, LevenbergMarquardtState, _spd_solve, damped_step,
                                              gauss_newton, levenberg_marquardt)

NAMES = ("gauss_newton", "levenberg_marquardt", "lm", "engd")


def make_step(tx, residual, jit=True):
    """One optimizer step on the loss sum(residual^2), as the solve loop calls it."""

    def loss(p):
        return jnp.sum(residual(p) ** 2)

    def step(params, state):
        value, grad = jax.value_and_grad(loss)(params)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=loss, residual_fn=residual)
        return optax.apply_updates(params, updates), state

    return (jax.jit(step) if jit else step), loss


def run(tx, residual, params, steps):
    step, loss = make_step(tx, residual)
    state = tx.init(params)
    losses = [float(loss(params))]
    for _ in range(steps):
        params, state = step(params, state)
        losses.append(float(loss(params)))
    return params, state, losses


# ---------------------------------------------------------------------------------------------
# Linear least squares: one Gauss-Newton step is the closed-form solution.

def linear_problem(m, p, seed=0):
    rng = np.random.default_rng(seed)
    a, y = rng.normal(size=(m, p)), rng.normal(size=m)
    split = p // 2

    def residual(params):  # two leaves, so that the raveling is exercised
        return jnp.asarray(a) @ jnp.concatenate([params["u"], params["v"]]) - jnp.asarray(y)

    x0 = rng.normal(size=p)
    return a, y, residual, {"u": jnp.asarray(x0[:split]), "v": jnp.asarray(x0[split:])}


def flat(params):
    return np.concatenate([np.asarray(params["u"]), np.asarray(params["v"])])


def test_one_gauss_newton_step_solves_an_overdetermined_linear_problem(x64):
    a, y, residual, params = linear_problem(m=20, p=6)  # P < M: P x P normal equations, forward-mode J
    new, _, _ = run(gauss_newton(damping=0.0), residual, params, steps=1)
    assert new["u"].dtype == jnp.float64
    np.testing.assert_allclose(flat(new), np.linalg.lstsq(a, y, rcond=None)[0], rtol=0, atol=1e-10)


def test_one_gauss_newton_step_solves_an_underdetermined_linear_problem(x64):
    a, y, residual, params = linear_problem(m=6, p=20)  # M < P: M x M Gram system, reverse-mode J
    new, _, losses = run(gauss_newton(damping=0.0), residual, params, steps=1)
    assert losses[-1] < 1e-20  # an exact fit (the residual is ~0) ...
    # ... and the one closest to the start: x0 + the minimum-norm solution of A d = y - A x0
    x0 = flat(params)
    np.testing.assert_allclose(flat(new) - x0, np.linalg.lstsq(a, y - a @ x0, rcond=None)[0], rtol=0, atol=1e-10)


def test_both_linear_systems_give_the_damped_step(x64):
    rng = np.random.default_rng(1)
    for shape in [(12, 5), (5, 12), (7, 7)]:  # P x P normal equations, M x M Gram system, P = M
        j, r, lam = rng.normal(size=shape), rng.normal(size=shape[0]), 0.3
        expected = -np.linalg.solve(j.T @ j + lam * np.eye(shape[1]), j.T @ r)
        np.testing.assert_allclose(np.asarray(jax.jit(damped_step)(j, r, lam)), expected, rtol=1e-10)


def test_rank_deficient_jacobian(x64):
    rng = np.random.default_rng(2)
    col = rng.normal(size=(10, 1))
    j = np.hstack([col, col, rng.normal(size=(10, 1))])  # two equal columns: J^T J is singular
    r = rng.normal(size=10)
    best = -np.linalg.lstsq(j, r, rcond=None)[0]  # the minimum-norm least-squares step
    # undamped: a finite least-squares step (rounding picks its null-space part) ...
    step = jax.jit(damped_step)
    d = np.asarray(step(j, r, 0.0))
    np.testing.assert_allclose(j @ d, j @ best, rtol=1e-8)
    # ... damped: the damping fixes it, the minimum-norm one
    d = np.asarray(step(j, r, 1e-8))
    np.testing.assert_allclose(d, best, rtol=1e-6)


def test_failed_cholesky_falls_back_to_the_pseudo_inverse(x64):
    a = jnp.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 (along (1, 1)) and -1: Cholesky fails
    x = jax.jit(_spd_solve)(a, jnp.array([1.0, 1.0]), 0.0)
    np.testing.assert_allclose(np.asarray(x), [1 / 3, 1 / 3], rtol=1e-12)


def test_engd_takes_the_full_step_on_a_linear_problem(x64):
    a, y, residual, params = linear_problem(m=20, p=6)
    new, state, _ = run(engd(damping=0.0), residual, params, steps=1)
    assert float(state.step_size) == 1.0  # the paper's normalisation: step 1 is the Newton step
    np.testing.assert_allclose(flat(new), np.linalg.lstsq(a, y, rcond=None)[0], rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Nonlinear least squares with known minimisers.

def rosenbrock(p):
    return jnp.stack([10 * (p["y"] - p["x"] ** 2), 1 - p["x"]])


ROSENBROCK_START = {"x": -1.2, "y": 1.0}

T = np.linspace(0.0, 1.0, 10)


def exponential_fit(p):  # y = a exp(b t) with a = 2, b = -1.5, noise-free
    return p["a"] * jnp.exp(p["b"] * jnp.asarray(T)) - jnp.asarray(2.0 * np.exp(-1.5 * T))


def start(values):
    return {k: jnp.asarray(v, jnp.float64) for k, v in values.items()}


def steps_to(tx, residual, params, target, tol, limit):
    step, _ = make_step(tx, residual)
    state = tx.init(params)
    for k in range(1, limit + 1):
        params, state = step(params, state)
        if max(abs(float(params[n]) - v) for n, v in target.items()) < tol:
            return k, state
    return None, state


def test_levenberg_marquardt_finds_the_rosenbrock_minimum(x64):
    k, state = steps_to(levenberg_marquardt(), rosenbrock, start(ROSENBROCK_START), {"x": 1.0, "y": 1.0}, 1e-8, 50)
    assert k is not None and k < 50
    assert int(state.rejected) > 0  # the first full steps overshoot and are rejected
    assert state.damping.dtype == jnp.float64


def test_levenberg_marquardt_fits_an_exponential(x64):
    k, _ = steps_to(optimizers.get("lm"), exponential_fit, start({"a": 1.0, "b": 0.0}), {"a": 2.0, "b": -1.5},
                    1e-8, 50)
    assert k is not None and k < 50


@pytest.mark.parametrize("residual,init,target", [(rosenbrock, ROSENBROCK_START, {"x": 1.0, "y": 1.0}),
                                                  (exponential_fit, {"a": 1.0, "b": 0.0}, {"a": 2.0, "b": -1.5})])
def test_gauss_newton_converges(x64, residual, init, target):
    k, _ = steps_to(gauss_newton(), residual, start(init), target, 1e-8, 20)
    assert k is not None and k <= 10


def test_engd_decreases_the_rosenbrock_loss(x64):
    _, state, losses = run(engd(), rosenbrock, start(ROSENBROCK_START), steps=20)
    assert all(b <= a for a, b in zip(losses, losses[1:]))  # never up (the line search's guard)
    assert losses[-1] < 1e-12 * losses[0]
    assert float(state.step_size) in {0.0} | {2.0**-k for k in range(31)}  # 0: converged, nothing lowers it


def test_a_rejected_step_is_a_zero_update_and_raises_the_damping(x64):
    tx = levenberg_marquardt(init_damping=1e-6, increase=3.0)
    params = start(ROSENBROCK_START)
    state = tx.init(params)
    update = jax.jit(lambda state: tx.update(None, state, params, residual_fn=rosenbrock))
    updates, state = update(state)  # the Gauss-Newton jump overshoots
    assert all(float(u) == 0.0 for u in jax.tree.leaves(updates))
    assert int(state.rejected) == 1 and float(state.gain) < 0
    assert float(state.damping) == pytest.approx(3e-6) and float(state.factor) == 6.0
    _, state = update(state)
    assert float(state.damping) == pytest.approx(18e-6)  # the factor doubles with each rejection in a row


# ---------------------------------------------------------------------------------------------
# End to end: a PINN through pinnopt.solve (which passes residual_fn).

@dataclass(frozen=True)
class TinyPoisson:
    """-u'' = pi^2 sin(pi x) on (0, 1), u(0) = u(1) = 0, u* = sin(pi x): net 1 -> 8 -> 8 -> 1, 32 points."""

    least_squares: bool = True
    name: str = "tiny_poisson"

    @property
    def field(self):
        return pde.mlp_field(1, width=8, depth=2)

    def init(self, key):
        return self.field.init(key)

    def sample(self, key, step):
        return {"interior": pde.in_box(key, 32, [0.0], [1.0]), "boundary": jnp.array([[0.0], [1.0]])}

    def terms(self, params, batch):
        u = functools.partial(self.field.u, params)
        x = batch["interior"]
        r = -pde.laplacian(u, x) - jnp.pi**2 * jnp.sin(jnp.pi * x[:, 0])
        pde_term = pinnopt.Objective.of_residual(r, coords=x) if self.least_squares else pinnopt.Objective(r**2, x)
        return {"pde": pde_term, "bc": pinnopt.Constraint(pde.values(u, batch["boundary"]), "eq", tol=1e-2)}

    def evaluate(self, params):
        x = jnp.linspace(0.0, 1.0, 201)[:, None]
        u = pde.values(functools.partial(self.field.u, params), x)
        return {"rel_l2": pde.relative_l2(u, jnp.sin(jnp.pi * x[:, 0]))}


PINN_STEPS = 50


def solve_pinn(optimizer, constraints="penalty", **kwargs):
    res = pinnopt.solve(TinyPoisson(**kwargs.pop("problem", {})), optimizer=optimizer, constraints=constraints,
                        steps=PINN_STEPS, chunk=PINN_STEPS, resample_every=0, certify_batches=1, **kwargs)
    return res, float(res.summary["final"]["eval/rel_l2"])


@pytest.fixture(scope="module")
def adam_error():
    return solve_pinn("adam", optimizer_kwargs={"learning_rate": 1e-2})[1]


def test_levenberg_marquardt_solves_a_pinn_far_better_than_adam(adam_error):
    res, err = solve_pinn("lm")
    # measured: LM 1.2e-4, Adam (learning rate 1e-2) 1.5 after 50 steps
    assert err < 1e-2 and err < adam_error / 100
    assert int(res.state.nonfinite_total) == 0
    assert isinstance(res.state.opt_state[0], LevenbergMarquardtState)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer,constraints", [("lm", "al"), ("engd", "penalty")])
def test_other_least_squares_pinns_beat_adam(adam_error, optimizer, constraints):
    _, err = solve_pinn(optimizer, constraints)  # measured: LM with AL 1.3e-4, ENGD 2.5e-5
    assert err < 1e-2 and err < adam_error / 100


def test_a_balancer_without_least_squares_form_is_a_clear_error():
    with pytest.raises(ValueError, match="no least-squares form"):
        solve_pinn("gauss_newton", balancing="homoscedastic")


def test_an_objective_without_residual_is_a_clear_error():
    with pytest.raises(ValueError, match="Objective.of_residual"):
        solve_pinn("lm", problem={"least_squares": False})


# ---------------------------------------------------------------------------------------------
# optax conformance: registration, jit without recompiling, scan carries, dtypes, validation.

def quadratic_residual(p):
    return jnp.concatenate([p["w"] - 1.0, 0.5 * jnp.ravel(p["b"]) ** 2])


def quadratic_params(dtype=jnp.float32):
    return {"w": jnp.zeros(3, dtype), "b": jnp.ones((2, 1), dtype)}


def test_registered_by_name():
    assert set(NAMES) <= set(optimizers.available())
    for name in NAMES:
        assert isinstance(optimizers.get(name), optax.GradientTransformationExtraArgs)
    assert optimizers.get("gauss_newton").init(quadratic_params()).count.dtype == jnp.int32


@pytest.mark.parametrize("name", ["gauss_newton", "lm", "engd"])
def test_jit_without_recompiling_float32_and_scan(name):
    tx = optimizers.get(name)
    traces = []
    step, loss = make_step(tx, quadratic_residual, jit=False)
    jitted = jax.jit(lambda p, s: (traces.append(1), step(p, s))[1])
    params = quadratic_params()
    state = tx.init(params)
    first = float(loss(params))
    for _ in range(4):
        params, state = jitted(params, state)
    assert len(traces) == 1
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
    assert all(x.dtype in (jnp.float32, jnp.int32) for x in jax.tree.leaves(state))
    assert not any(getattr(x, "weak_type", False) for x in jax.tree.leaves(state))
    assert float(loss(params)) < 1e-3 * first
    # a lax.scan carry: scan traces the body and refuses a state whose types change
    carry = (params, tx.init(params))
    out, _ = jax.eval_shape(lambda c: jax.lax.scan(lambda c, _: (step(*c), None), c, None, length=5), carry)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), out) == jax.tree.map(lambda x: (x.shape, x.dtype), carry)


def test_states_follow_x64(x64):
    params = quadratic_params(jnp.float64)
    assert levenberg_marquardt().init(params).damping.dtype == jnp.float64
    assert engd().init(params).step_size.dtype == jnp.float64
    assert isinstance(gauss_newton().init(params), GaussNewtonState)
    assert isinstance(engd().init(params), ENGDState)


@pytest.mark.parametrize("name", NAMES)
def test_update_without_residual_fn_says_what_is_needed(name):
    tx = optimizers.get(name)
    params = quadratic_params()
    with pytest.raises(ValueError, match="residual_fn.*Objective.of_residual"):
        tx.update(params, tx.init(params), params, value_fn=lambda p: 0.0)


@pytest.mark.parametrize("name", ["gauss_newton", "lm", "engd"])
def test_max_size_is_checked_at_the_first_update(name):
    tx = optimizers.get(name, max_size=20)  # P = 5, M = 5: a 5 x 5 system, 25 elements
    params = quadratic_params()
    step, _ = make_step(tx, quadratic_residual, jit=False)
    with pytest.raises(ValueError, match=r"5 x 5 = 25 elements .*max_size = 20"):
        jax.eval_shape(step, params, tx.init(params))
    tx = optimizers.get(name, max_size=25)
    jax.eval_shape(make_step(tx, quadratic_residual, jit=False)[0], params, tx.init(params))


@pytest.mark.parametrize("name,options,option", [
    ("gauss_newton", {"damping": -1.0}, "damping"),
    ("gauss_newton", {"learning_rate": 0.0}, "learning_rate"),
    ("gauss_newton", {"max_size": 0}, "max_size"),
    ("lm", {"init_damping": 0.0}, "init_damping"),
    ("lm", {"increase": 1.0}, "increase"),
    ("lm", {"decrease": 1.0}, "decrease"),
    ("lm", {"min_damping": -1.0}, "min_damping"),
    ("lm", {"init_damping": 1e3, "max_damping": 10.0}, "max_damping"),
    ("levenberg_marquardt", {"max_size": 2.5}, "max_size"),
    ("engd", {"damping": float("nan")}, "damping"),
    ("engd", {"line_search_grid": -1}, "line_search_grid"),
    ("engd", {"line_search_grid": 2.5}, "line_search_grid"),
    ("engd", {"learning_rate": 1.0}, "learning_rate"),
])
def test_invalid_options_name_the_option(name, options, option):
    with pytest.raises(ValueError, match=option):
        optimizers.get(name, **options)
