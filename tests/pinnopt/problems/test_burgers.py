"""Burgers: Cole-Hopf against a finite-difference solve, its own conditions and PDE; terms and evaluation."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.sparse import diags_array

from pinnopt import problems
from pinnopt.problems import burgers as B
from pinnopt.terms import Constraint, Objective

NU = 0.01 / np.pi
CHECK_T = np.array([0.25, 0.5, 1.0])
CHECK_X = np.array([-0.75, -0.5, -0.25, -0.1, -0.05, 0.1, 0.5, -0.02, -0.01])  # last two: in the shock


def finite_differences(cells, nu=NU):
    """Method of lines: u on x_j = -1 + 2 j / cells, j = 1..cells-1, u = 0 at +-1; second-order
    central differences with the skew-symmetric form (2 u u_x + (u^2/2)_x) / 3 of u u_x (it
    conserves energy, so the under-resolved shock does not ring); BDF in time."""
    x = np.linspace(-1, 1, cells + 1)
    h = x[1] - x[0]

    def rhs(t, u):
        up = np.concatenate([[0.0], u, [0.0]])
        ux = (up[2:] - up[:-2]) / (2 * h)
        fx = (up[2:] ** 2 - up[:-2] ** 2) / (4 * h)
        return -(2 * u * ux + fx) / 3 + nu * (up[2:] - 2 * u + up[:-2]) / h**2

    n = cells - 1
    sol = solve_ivp(rhs, (0.0, CHECK_T[-1]), -np.sin(np.pi * x[1:-1]), method="BDF", t_eval=CHECK_T,
                    jac_sparsity=diags_array([np.ones(n - 1), np.ones(n), np.ones(n - 1)], offsets=[-1, 0, 1]),
                    rtol=1e-10, atol=1e-12)
    assert sol.status == 0
    return np.stack([np.interp(CHECK_X, x[1:-1], sol.y[:, k]) for k in range(len(CHECK_T))])


def cole_hopf_at_checks(nodes=200):
    tt, xx = np.meshgrid(CHECK_T, CHECK_X, indexing="ij")
    return B.cole_hopf(tt, xx, NU, nodes)


def test_cole_hopf_agrees_with_finite_differences_converging_at_second_order():
    ch = cole_hopf_at_checks()
    coarse, fine = finite_differences(1000), finite_differences(2000)
    err_coarse, err_fine = np.abs(coarse - ch), np.abs(fine - ch)
    # measured: 2.4e-6 at most off the shock (|x| >= 0.05) with 2,000 cells; 1.4e-3 at x = -0.01
    assert err_fine[:, :7].max() < 1e-5
    # the difference is the FD error: it falls as h^2 at every point, the shock's included
    # (measured ratios 3.89-4.04), so Richardson's extrapolation of the two meets Cole-Hopf
    # (measured: 4e-8 at most off the shock, 1.7e-5 in it)
    ratio = err_coarse / err_fine
    assert ratio.min() > 3.8 and ratio.max() < 4.2
    richardson = np.abs((4 * fine - coarse) / 3 - ch)
    assert richardson[:, :7].max() < 2e-7 and richardson.max() < 5e-5


def test_cole_hopf_quadrature_is_converged_in_its_nodes():
    points = B.space_time_grid(101, 256).astype(np.float64)
    a = B.cole_hopf(points[:, 0], points[:, 1], NU, 100)
    b = B.cole_hopf(points[:, 0], points[:, 1], NU, 200)
    assert np.abs(a - b).max() < 1e-12  # measured 2e-15
    assert np.abs(b).max() > 0.9 and np.all(np.isfinite(b))


def test_cole_hopf_meets_initial_and_boundary_conditions():
    x = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(B.cole_hopf(np.zeros_like(x), x), -np.sin(np.pi * x), atol=1e-15)
    t = np.linspace(0.0, 1.0, 21)
    for side in (-1.0, 1.0):
        assert np.abs(B.cole_hopf(t, np.full_like(t, side))).max() < 1e-12
    # odd in x (the shock sits at x = 0)
    tt, xx = np.meshgrid(t, x, indexing="ij")
    np.testing.assert_allclose(B.cole_hopf(tt, -xx), -B.cole_hopf(tt, xx), atol=1e-12)
    with pytest.raises(ValueError, match="t must be"):
        B.cole_hopf(-0.1, 0.0)


def test_cole_hopf_solves_the_pde_by_its_own_finite_differences():
    # u_t + u u_x - nu u_xx of the quadrature itself, by central differences (O(h^2) ~ 1e-6 here)
    t, x, h = np.array([0.2, 0.5, 0.9]), np.array([-0.6, -0.3, 0.4]), 1e-3
    u = lambda dt, dx: B.cole_hopf(t + dt, x + dx, NU)
    u_t = (u(h, 0) - u(-h, 0)) / (2 * h)
    u_x = (u(0, h) - u(0, -h)) / (2 * h)
    u_xx = (u(0, h) - 2 * u(0, 0) + u(0, -h)) / h**2
    r = u_t + u(0, 0) * u_x - NU * u_xx
    assert np.abs(r).max() < 1e-4 * np.abs(u_t).max()


def test_residual_of_a_manufactured_function_in_float64():
    # u = sin(t) cos(x): u_t + u u_x - nu u_xx = cos t cos x - sin^2 t cos x sin x + nu sin t cos x
    with jax.enable_x64(True):
        pts = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (50, 2)))
        u = lambda p: jnp.sin(p[0]) * jnp.cos(p[1])
        t, x = pts[:, 0], pts[:, 1]
        expect = jnp.cos(t) * jnp.cos(x) - jnp.sin(t) ** 2 * jnp.cos(x) * jnp.sin(x) + NU * jnp.sin(t) * jnp.cos(x)
        np.testing.assert_allclose(jax.jit(B.residual, static_argnums=0)(u, pts), expect, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(B.ic_residual(u, pts), u(pts.T) + jnp.sin(np.pi * x), atol=1e-14)


def small(**kwargs):
    base = dict(n_points=128, n_ic=32, n_bc=16, width=8, depth=2, n_eval_t=11, n_eval_x=32)
    return B.make_burgers(**{**base, **kwargs})


def test_sample_ranges():
    batch = jax.jit(small().sample)(jax.random.key(0), jnp.int32(3))
    inner, initial, edge = (np.asarray(batch[k]) for k in ("interior", "initial", "boundary"))
    assert inner.shape == (128, 2) and initial.shape == (32, 2) and edge.shape == (16, 2)
    assert inner[:, 0].min() >= 0 and inner[:, 0].max() <= 1 and np.abs(inner[:, 1]).max() <= 1
    assert inner[:, 1].min() < -0.5 and inner[:, 1].max() > 0.5  # x spans [-1, 1]
    assert np.all(initial[:, 0] == 0) and np.abs(initial[:, 1]).max() <= 1
    assert np.sum(edge[:, 1] == -1.0) == 8 and np.sum(edge[:, 1] == 1.0) == 8


@pytest.mark.parametrize("ic,bc", [("constraint", "constraint"), ("objective", "constraint"),
                                   ("constraint", "objective")])
def test_terms_kinds_and_values(ic, bc):
    prob = small(ic=ic, bc=bc)
    params = prob.init(jax.random.key(0))
    batch = prob.sample(jax.random.key(1), 0)
    terms = jax.jit(prob.terms)(params, batch)
    assert set(terms) == {"pde", "ic", "bc"}
    assert isinstance(terms["pde"], Objective) and terms["pde"].residual.shape == (128,)
    kinds = {"constraint": Constraint, "objective": Objective}
    u0 = prob.predict(params, batch["initial"]) + jnp.sin(np.pi * batch["initial"][:, 1])
    ub = prob.predict(params, batch["boundary"])
    for name, mode, want in (("ic", ic, u0), ("bc", bc, ub)):
        term = terms[name]
        assert isinstance(term, kinds[mode])
        got = term.value if mode == "constraint" else term.residual
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(terms["bc"].coords, batch["boundary"])


def test_evaluation_grid_and_reference():
    prob = small()
    assert prob.eval_points.shape == (11 * 32, 2)
    np.testing.assert_allclose(prob.eval_exact, prob.reference_solution(prob.eval_points), atol=1e-14)
    params = prob.init(jax.random.key(0))
    u = prob.predict(params, prob.eval_points)
    expect = np.linalg.norm(np.asarray(u, np.float64) - prob.eval_exact) / np.linalg.norm(prob.eval_exact)
    np.testing.assert_allclose(float(jax.jit(prob.evaluate)(params)["rel_l2"]), expect, rtol=1e-5)
    # the default grid is Raissi et al.'s: 101 x 256
    assert B.grid_reference(101, 256).shape == (101 * 256,)


def test_registered_config_and_validation():
    prob = problems.get("burgers", width=8, depth=1, n_eval_t=5, n_eval_x=8)
    assert prob.name == "burgers" and prob.nu == NU and (prob.ic, prob.bc) == ("constraint", "constraint")
    cfg = json.loads(json.dumps(prob.config()))
    assert cfg["nu"] == NU and cfg["nodes"] == 200
    for kwargs, word in [({"nu": 0.0}, "nu"), ({"ic": "x"}, "ic"), ({"bc": "hard"}, "bc"), ({"nodes": 1}, "nodes"),
                         ({"nodes": 1000}, "nodes"), ({"n_points": 0}, "n_points"), ({"depth": -1}, "depth")]:
        with pytest.raises(ValueError, match=word):
            problems.get("burgers", **kwargs)
