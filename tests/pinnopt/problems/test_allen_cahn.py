"""Allen-Cahn: ETDRK4 against scipy on the same semi-discrete system, convergence in dt and in the
grid, the initial condition, interpolation; the problem's terms, periodicity and evaluation."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from pinnopt import problems
from pinnopt.problems import allen_cahn as A
from pinnopt.problems.allen_cahn_reference import allen_cahn_reference, evaluate_reference
from pinnopt.terms import Constraint, Objective

CHEAP = dict(reference_modes=256, reference_dt=1e-2, reference_out_every=1e-2)  # for tests of the terms


def grid_values(ref, n):
    """The snapshots' values on the solver's own grid (n points), every (n / 512)-th point."""
    return np.fft.irfft(ref["coeffs"] * n, n, axis=-1)[:, ::n // 512]


def test_etdrk4_matches_scipy_on_the_same_semi_discrete_system():
    # The spectral ODE system u' = d D2 u + r (u - u^3) on 128 points (not stiff at this size)
    # integrated by DOP853 at tight tolerances: checks the exponential integrator alone.
    n = 128
    ref = allen_cahn_reference(n, 2e-3, 1.0, 0.1)
    x = -1 + 2 * np.arange(n) / n
    k = np.pi * np.arange(n // 2 + 1)
    rhs = lambda t, u: 1e-4 * np.fft.irfft(-k**2 * np.fft.rfft(u), n) + 5.0 * (u - u**3)
    sol = solve_ivp(rhs, (0.0, 1.0), x**2 * np.cos(np.pi * x), method="DOP853", rtol=1e-12, atol=1e-13,
                    t_eval=ref["t"])
    values = np.fft.irfft(ref["coeffs"] * n, n, axis=-1)
    assert np.abs(values - sol.y.T).max() < 1e-8  # measured 2e-7 with dt = 1e-2, fourth order in dt
    np.testing.assert_allclose(ref["t"], np.linspace(0.0, 1.0, 11), atol=1e-15)


def test_etdrk4_is_converged_in_the_time_step():
    coarse = allen_cahn_reference(512, 4e-3, 1.0, 0.02)
    fine = allen_cahn_reference(512, 1e-3, 1.0, 0.02)
    rough = allen_cahn_reference(512, 1e-2, 1.0, 0.02)
    e_coarse = np.abs(grid_values(coarse, 512) - grid_values(fine, 512)).max()
    e_rough = np.abs(grid_values(rough, 512) - grid_values(fine, 512)).max()
    assert e_coarse < 2e-6  # measured 6.8e-7; at dt = 1e-3 (the default) 2.5^-4 of that and less
    assert e_rough > 10 * e_coarse  # and the difference does shrink with the step


def test_fourier_grid_converges_at_second_order_through_the_kink():
    # u(0, .) has a kink at x = +-1 (periodic extension), the error of the grid lives at early
    # times: on t <= 0.1, 1024 -> 2048 -> 4096 points differ by 1.4e-5 then 3.6e-6 (ratio 3.85)
    res = {n: grid_values(allen_cahn_reference(n, 1e-3, 0.1, 5e-3), n) for n in (1024, 2048, 4096)}
    scale = np.linalg.norm(res[4096])
    d1 = np.linalg.norm(res[1024] - res[2048]) / scale
    d2 = np.linalg.norm(res[2048] - res[4096]) / scale
    assert d2 < 5e-6 and 3.0 < d1 / d2 < 5.0


@pytest.mark.slow
def test_default_reference_agrees_with_twice_the_grid_and_half_the_step():
    # measured: relative L2 1.7e-7, max 2.3e-5 (t = 0.005, next to the kink) on the default grid
    prob = A.make_allen_cahn(width=8, depth=1)
    finer = allen_cahn_reference(8192, 5e-4, 1.0, 1e-3)
    other = evaluate_reference(finer["t"], finer["coeffs"], prob.eval_points.astype(np.float64))
    rel = np.linalg.norm(prob.eval_exact - other) / np.linalg.norm(other)
    assert rel < 4e-7 and np.abs(prob.eval_exact - other).max() < 5e-5


def test_default_reference_initial_condition_and_late_plateaus():
    s = A.reference_snapshots(4096, 1e-3, 1e-3, 1e-4, 5.0)  # the default (computed once, then cached)
    x_grid = -1 + 2 * np.arange(4096) / 4096
    at = lambda t, x: evaluate_reference(s["t"], s["coeffs"], np.stack([np.full_like(x, t), x], axis=-1))
    np.testing.assert_allclose(at(0.0, x_grid), x_grid**2 * np.cos(np.pi * x_grid), atol=1e-14)
    # between grid points the interpolant of the kinked u(0, .): 7.5e-7 for |x| <= 0.9, 9e-5 at the kink
    x = np.random.default_rng(0).uniform(-1, 1, 2000)
    err = np.abs(at(0.0, x) - x**2 * np.cos(np.pi * x))
    assert err[np.abs(x) <= 0.9].max() < 2e-6 and err.max() < 2e-4
    u1 = at(1.0, x_grid)  # by t = 1 the solution sits on the wells +-1 away from its fronts
    assert -1.0 - 1e-6 < u1.min() < -0.99 and 0.99 < u1.max() < 1.0 and np.mean(np.abs(np.abs(u1) - 1) < 0.01) > 0.5


def test_interpolation_in_t_and_the_point_path_agree_with_direct_values():
    direct = allen_cahn_reference(256, 5e-4, 1.0, 5e-4)
    sparse = allen_cahn_reference(256, 5e-4, 1.0, 1e-3)
    grid = np.stack(np.meshgrid(direct["t"], -1 + 2 * np.arange(64) / 64, indexing="ij"), -1).reshape(-1, 2)
    exact = evaluate_reference(direct["t"], direct["coeffs"], grid)
    # odd snapshots of `direct` lie between those of `sparse`: cubic in t, measured 3e-11
    assert np.abs(evaluate_reference(sparse["t"], sparse["coeffs"], grid) - exact).max() < 1e-9
    # random points go the chunked path (too many distinct t and x for one product): same values
    pts = np.random.default_rng(1).uniform([0, -1], [1, 1], (2500, 2))
    chunked = evaluate_reference(sparse["t"], sparse["coeffs"], pts)
    one_by_one = np.concatenate([evaluate_reference(sparse["t"], sparse["coeffs"], p[None]) for p in pts[:50]])
    np.testing.assert_allclose(chunked[:50], one_by_one, atol=1e-13)
    # x is periodic
    shifted = evaluate_reference(sparse["t"], sparse["coeffs"], pts[:50] + np.array([0.0, 2.0]))
    np.testing.assert_allclose(shifted, chunked[:50], atol=1e-12)
    with pytest.raises(ValueError, match="t must lie"):
        evaluate_reference(sparse["t"], sparse["coeffs"], np.array([[1.5, 0.0]]))


def test_residual_of_a_manufactured_function_in_float64():
    # u = sin(t) cos(pi x): u_t - d u_xx + r (u^3 - u) written out by hand
    with jax.enable_x64(True):
        pts = jnp.asarray(np.random.default_rng(0).uniform([0, -1], [1, 1], (50, 2)))
        u = lambda p: jnp.sin(p[0]) * jnp.cos(np.pi * p[1])
        t, x = pts[:, 0], pts[:, 1]
        v = jnp.sin(t) * jnp.cos(np.pi * x)
        expect = jnp.cos(t) * jnp.cos(np.pi * x) + 1e-4 * np.pi**2 * v + 5.0 * (v**3 - v)
        np.testing.assert_allclose(jax.jit(A.residual, static_argnums=0)(u, pts), expect, rtol=1e-12, atol=1e-14)


def small(**kwargs):
    base = dict(n_points=128, n_ic=32, n_bc=16, width=8, depth=2, n_eval_t=11, n_eval_x=32, **CHEAP)
    return A.make_allen_cahn(**{**base, **kwargs})


@pytest.mark.parametrize("periodic,ic,bc", [(True, "constraint", "constraint"), (False, "objective", "constraint"),
                                            (False, "constraint", "objective")])
def test_terms_kinds_and_values(periodic, ic, bc):
    prob = small(periodic=periodic, ic=ic, bc=bc)
    params = prob.init(jax.random.key(0))
    batch = prob.sample(jax.random.key(1), 0)
    terms = jax.jit(prob.terms)(params, batch)
    assert set(terms) == ({"pde", "ic"} if periodic else {"pde", "ic", "bc", "bc_x"})
    assert isinstance(terms["pde"], Objective) and terms["pde"].residual.shape == (128,)
    kinds = {"constraint": Constraint, "objective": Objective}
    want = prob.predict(params, batch["initial"]) - batch["initial"][:, 1] ** 2 * jnp.cos(np.pi * batch["initial"][:, 1])
    got = terms["ic"].value if ic == "constraint" else terms["ic"].residual
    assert isinstance(terms["ic"], kinds[ic])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if not periodic:
        tb = batch["t_boundary"]
        gap = prob.predict(params, jnp.stack([tb, -jnp.ones_like(tb)], -1)) - prob.predict(
            params, jnp.stack([tb, jnp.ones_like(tb)], -1))
        for name in ("bc", "bc_x"):
            assert isinstance(terms[name], kinds[bc]) and terms[name].coords.shape == (16, 2)
        got = terms["bc"].value if bc == "constraint" else terms["bc"].residual
        np.testing.assert_allclose(got, gap, rtol=1e-5, atol=1e-6)


def test_periodic_network_is_exactly_periodic_and_the_plain_one_is_not():
    t = jnp.linspace(0, 1, 7)
    prob = small(harmonics=2, fourier_features=8, fourier_scale=2.0)
    gap, gap_x = A.periodicity_residuals(prob.u_fn(prob.init(jax.random.key(0))), t)
    assert float(jnp.max(jnp.abs(gap))) < 1e-5 and float(jnp.max(jnp.abs(gap_x))) < 1e-4
    plain = small(periodic=False)
    gap, _ = A.periodicity_residuals(plain.u_fn(plain.init(jax.random.key(0))), t)
    assert float(jnp.max(jnp.abs(gap))) > 1e-3


def test_sample_and_evaluation_grid():
    prob = small(periodic=False)
    batch = jax.jit(prob.sample)(jax.random.key(0), jnp.int32(2))
    inner = np.asarray(batch["interior"])
    assert inner.shape == (128, 2) and inner[:, 0].min() >= 0 and inner[:, 0].max() <= 1
    assert np.abs(inner[:, 1]).max() <= 1 and np.all(np.asarray(batch["initial"])[:, 0] == 0)
    assert batch["t_boundary"].shape == (16,) and "t_boundary" not in small().sample(jax.random.key(0), 0)
    pts = prob.eval_points
    assert pts.shape == (11 * 32, 2) and pts[:, 1].min() == -1 and pts[:, 1].max() < 1  # x = 1 repeats -1
    np.testing.assert_allclose(prob.eval_exact, prob.reference_solution(pts), atol=1e-13)
    params = prob.init(jax.random.key(0))
    u = np.asarray(prob.predict(params, pts), np.float64)
    expect = np.linalg.norm(u - prob.eval_exact) / np.linalg.norm(prob.eval_exact)
    np.testing.assert_allclose(float(jax.jit(prob.evaluate)(params)["rel_l2"]), expect, rtol=1e-5)


def test_registered_config_and_validation():
    prob = problems.get("allen_cahn", width=8, depth=1, n_eval_t=5, n_eval_x=8, **CHEAP)
    assert prob.name == "allen_cahn" and (prob.diffusion, prob.reaction) == (1e-4, 5.0)
    assert prob.periodic and prob.net.periods == ((1, 2.0),)
    cfg = json.loads(json.dumps(prob.config()))
    assert cfg["reference_modes"] == 256 and cfg["ic"] == "constraint"
    for kwargs, word in [({"diffusion": 0.0}, "diffusion"), ({"reaction": float("nan")}, "reaction"),
                         ({"ic": "x"}, "ic"), ({"bc": "x"}, "bc"), ({"reference_modes": 255}, "reference_modes"),
                         ({"reference_modes": 8}, "reference_modes"), ({"reference_dt": 0.3}, "reference_dt"),
                         ({"reference_dt": 1e-2, "reference_out_every": 1.5e-2}, "reference_out_every"),
                         ({"reference_dt": 1e-2, "reference_out_every": 1e-3}, "reference_out_every"),
                         ({"harmonics": 0}, "harmonics"), ({"n_ic": 1}, "n_ic")]:
        with pytest.raises(ValueError, match=word):
            problems.get("allen_cahn", **{**CHEAP, **kwargs})
