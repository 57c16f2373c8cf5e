"""ssbfgs / ssbroyden: the update against a NumPy transcription of the authors' formulas, quadratic
termination with a near-exact line search, Rosenbrock, the curvature skip, the max_params guard,
jit/scan conformance, float32 and float64, the registry and the solve loop."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pinnopt
from pinnopt import optimizers
from pinnopt.optimizers.quasi_newton import QuasiNewtonState, ssbfgs, ssbroyden


def rosenbrock(x):
    return 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2


def scan_run(tx, f, x0, steps):
    """``steps`` iterations in one compiled ``lax.scan``: (x_final, state_final, x_k for k = 1..steps)."""

    def body(carry, _):
        x, state = carry
        value, grad = jax.value_and_grad(f)(x)
        updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=f)
        x = optax.apply_updates(x, updates)
        return (x, state), x

    run = jax.jit(lambda x: jax.lax.scan(body, (x, tx.init(x)), None, length=steps))
    (x, state), xs = run(x0)
    return x, state, xs


# ---------------------------------------------------------------------------------------------
# The update of H against a NumPy transcription of the authors' reference (SciPy-based) code:
# methods SSBFGS_AB, SSBFGS_OL and SSBroyden2 of jorgeurban/self_scaled_algorithms_pinns.
def reference_update(method, H, s, y, g, alpha):
    n = len(s)
    rho = 1.0 / np.dot(y, s)
    Hy = H @ y
    yHy = y @ Hy
    h = yHy * rho
    b = -alpha * rho * np.dot(s, g)
    if method in ("al_baali", "oren_luenberger"):
        tau = min(1.0, 1.0 / b) if method == "al_baali" else 1.0 / b
        H = H / tau
        Hy = H @ y
        h = (y @ Hy) * rho
        return (H - rho * (np.outer(Hy, s) + np.outer(s, Hy)) + rho * (1 + h) * np.outer(s, s)), tau, 1.0
    a = b * h - 1
    rho_m = min(1.0, h * (1 - np.sqrt(abs(a) / (1 + a))))
    theta_m = (rho_m - 1) / a
    theta_p = 1 / rho_m
    theta = max(theta_m, min(theta_p, (1 - b) / b))
    r = min(1.0, 1.0 / b)
    sigma = 1 + theta * a
    sigma_n = abs(sigma) ** (1.0 / (1 - n))
    tau = min(r * sigma_n, sigma) if theta <= 0 else r * min(sigma_n, 1 / theta)
    v = s * rho - Hy / yHy
    phi = (1 - theta) / (1 + a * theta)
    return (H - np.outer(Hy, Hy) / yHy + phi * yHy * np.outer(v, v)) / tau + np.outer(s, s) * rho, tau, phi


@pytest.mark.parametrize("method", ["al_baali", pytest.param("oren_luenberger", marks=pytest.mark.slow), "ssbroyden"])
def test_one_update_matches_the_authors_formulas(method, x64):
    rng = np.random.default_rng(1)
    n = 6
    m = rng.standard_normal((n, n))
    A = jnp.asarray(m @ m.T + np.eye(n))
    f = lambda x: 0.5 * x @ A @ x + 0.25 * jnp.sum(x**4)  # not quadratic: a != 0, theta in play
    tx = ssbroyden() if method == "ssbroyden" else ssbfgs(scaling=method)
    x = jnp.asarray(rng.standard_normal(n))
    q = rng.standard_normal((n, n))
    H0 = q @ q.T / n + 0.5 * np.eye(n)  # a positive definite H that is not the identity
    state = tx.init(x)._replace(hess_inv=jnp.asarray(H0), restart=jnp.zeros((), jnp.int32))
    value, grad = jax.value_and_grad(f)(x)
    updates, new = jax.jit(lambda s: tx.update(grad, s, x, value=value, grad=grad, value_fn=f))(state)
    alpha = float(new.linesearch.learning_rate)
    s = np.asarray(updates)
    np.testing.assert_allclose(s, -alpha * H0 @ np.asarray(grad), rtol=1e-12)
    y = np.asarray(jax.grad(f)(x + updates) - grad)
    expected, tau, phi = reference_update(method, H0, s, y, np.asarray(grad), alpha)
    assert alpha > 0 and int(new.skipped) == 0 and int(new.resets) == 0
    np.testing.assert_allclose(np.asarray(new.hess_inv), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose([float(new.tau), float(new.phi)], [tau, phi], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(new.hess_inv) @ y, s, rtol=1e-9, atol=1e-12)  # secant condition
    if method == "ssbroyden":
        assert abs(phi - 1) > 1e-3  # really a Broyden member other than BFGS here


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [ssbfgs, ssbroyden], ids=["ssbfgs", "ssbroyden"])
def test_quadratic_terminates_in_n_iterations_with_a_near_exact_line_search(make, x64):
    n = 10
    rng = np.random.default_rng(0)
    m = rng.standard_normal((n, n))
    A = jnp.asarray(m @ m.T + np.diag(np.linspace(0.5, 20, n)))  # condition number 18
    b = jnp.asarray(rng.standard_normal(n))
    x_star = jnp.linalg.solve(A, b)
    f = lambda x: 0.5 * x @ A @ x - b @ x
    _, state, xs = scan_run(make(slope_rtol=1e-10, curv_rtol=1e-8), f, jnp.zeros(n), n)
    errors = np.max(np.abs(np.asarray(xs) - np.asarray(x_star)), axis=1) / np.max(np.abs(np.asarray(x_star)))
    assert errors[n - 1] < 1e-10, errors  # measured: 1e-3 after 9 iterations, 6e-15 (ssbfgs) and 1e-14 (ssbroyden) after 10
    assert errors[n // 2] > 1e-6  # and not before: it is the n-step termination, not luck
    assert int(state.skipped) == 0 and int(state.resets) == 0
    assert state.hess_inv.dtype == jnp.float64


@pytest.mark.parametrize("make", [ssbfgs, ssbroyden], ids=["ssbfgs", "ssbroyden"])
def test_rosenbrock_reaches_the_minimum(make, x64):
    _, state, xs = scan_run(make(), rosenbrock, jnp.array([-1.2, 1.0]), 200)
    errors = np.max(np.abs(np.asarray(xs) - 1.0), axis=1)
    reached = int(np.argmax(errors < 1e-6)) + 1
    assert errors[-1] < 1e-10 and np.all(errors[reached - 1:] < 1e-6)
    assert reached <= 60, reached  # measured: 33 (ssbfgs), 36 (ssbroyden) iterations (1e-12: 37, 40)
    assert xs.dtype == jnp.float64


def test_a_failed_curvature_condition_skips_the_update(x64):
    c = jnp.array([1.0, -2.0, 0.5])
    f = lambda x: c @ x  # linear: y = 0, so s^T y = 0 whatever the step
    tx = ssbfgs()
    x = jnp.zeros(3)
    state = tx.init(x)
    value, grad = jax.value_and_grad(f)(x)
    updates, state = jax.jit(lambda s: tx.update(grad, s, x, value=value, grad=grad, value_fn=f))(state)
    assert int(state.skipped) == 1 and float(state.tau) == 1.0
    gamma = 1.0 / float(jnp.linalg.norm(c))  # the first call's scaled identity is kept
    np.testing.assert_allclose(np.asarray(state.hess_inv), gamma * np.eye(3), rtol=1e-14)
    assert float(f(updates)) < float(value)  # the line search still moved downhill


def test_max_params_is_enforced_at_init_with_the_memory_named():
    tx = ssbfgs(max_params=100)
    tx.init({"w": jnp.zeros((10, 10))})  # exactly at the limit
    with pytest.raises(ValueError, match=r"101 parameters.*101 x 101.*float32.*max_params=100"):
        tx.init({"w": jnp.zeros((10, 10)), "b": jnp.zeros(1)})
    with pytest.raises(ValueError, match=r"ssbroyden: 20001 parameters.*1\.60 GB.*max_params=20000"):
        ssbroyden().init(jax.ShapeDtypeStruct((20_001,), jnp.float32))


@pytest.mark.parametrize("kwargs,needle", [
    ({"scaling": "oren"}, "scaling"),
    ({"max_params": 0}, "max_params"),
    ({"max_params": 1.5}, "max_params"),
    ({"curvature_eps": -1.0}, "curvature_eps"),
    ({"max_linesearch_steps": 0}, "max_linesearch_steps"),
    ({"curv_rtol": 1e-5}, "curv_rtol"),
    ({"slope_rtol": 0.0}, "slope_rtol"),
])
def test_invalid_options_are_named(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        ssbfgs(**kwargs)
    with pytest.raises(ValueError, match=needle):
        optimizers.get("ssbfgs", **kwargs)


def test_update_without_the_loss_is_a_clear_error():
    tx = ssbfgs()
    x = jnp.zeros(2)
    with pytest.raises(ValueError, match="value_fn"):
        tx.update(x, tx.init(x), x, value=0.0)


# ---------------------------------------------------------------------------------------------
def test_pytree_params_float32_jit_once():
    """A dict of leaves (matrix + vector) in float32: 4 jitted steps, one compilation, the state's
    dtypes, shapes and weak types unchanged (the scan carries are tested by ``scan_run`` above)."""
    rng = np.random.default_rng(2)
    X = jnp.asarray(rng.standard_normal((20, 3)), jnp.float32)
    Y = jnp.asarray(rng.standard_normal((20, 2)), jnp.float32)

    def loss(p, batch=None):
        return jnp.mean((jnp.tanh(X @ p["w"] + p["b"]) - Y) ** 2)

    params = {"w": jnp.full((3, 2), 0.1, jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    tx = optimizers.get("ssbroyden")

    @jax.jit
    def step(p, s):
        value, grad = jax.value_and_grad(loss)(p)
        # residual_fn: an extra that value_fn does not take (the loop passes it); batch: one it does.
        u, s = tx.update(grad, s, p, value=value, grad=grad, value_fn=loss, residual_fn=lambda q: q, batch=None)
        return optax.apply_updates(p, u), s

    p, s = params, tx.init(params)
    first = jax.tree.map(lambda x: (x.dtype, x.shape, x.weak_type), s)
    for _ in range(4):
        p, s = step(p, s)
    assert step._cache_size() == 1
    assert jax.tree.map(lambda x: (x.dtype, x.shape, x.weak_type), s) == first
    assert isinstance(s, QuasiNewtonState) and s.hess_inv.shape == (8, 8) and int(s.count) == 4
    assert float(loss(p)) < 0.8 * float(loss(params))
    assert all(leaf.dtype in (jnp.float32, jnp.int32) for leaf in jax.tree.leaves(s))


def test_registry_and_solve_loop_on_zakharov():
    assert {"ssbfgs", "ssbroyden"} <= set(optimizers.available())
    assert isinstance(optimizers.get("ssbfgs"), optax.GradientTransformationExtraArgs)
    problem = pinnopt.problems.get("zakharov", dim=4)
    res = pinnopt.solve(problem, optimizer="ssbfgs", steps=50)
    first, last = res.history[0]["loss"], res.history[-1]["loss"]
    assert first > 10 and last < 1e-6 * first, (first, last)  # measured: 411 -> 0 (float32)
    assert res.summary["nonfinite_total"] == 0
