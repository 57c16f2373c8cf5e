"""The BBI talk's PDE: source term, residuals, sampling, evaluation and solution branches."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from pinnopt import problems
from pinnopt.problems import pde_toy as P
from pinnopt.terms import Constraint, Objective

residual = jax.jit(P.residual, static_argnums=0)  # eager vmap-of-hessian dispatches op by op: slow


class FieldNet:
    """A stand-in for the flax net: apply(params, x) = params * field(x), so u = c u* is testable."""

    def __init__(self, field):
        self.field = field

    def init(self, key, x):
        return jnp.float32(1.0)

    def apply(self, params, x):
        return (params * self.field(x))[..., None]


@pytest.fixture(scope="module")
def problem():
    return P.make_pde_toy(n_interior=512, n_boundary=128, width=16, depth=2, n_eval=41)


def test_source_is_minus_laplacian_plus_square_of_exact_solution():
    # Independent of the code: Cartesian second derivatives of u* = sin^2(20 (x^2 + y^2)).
    x, y = sp.symbols("x y", real=True)
    r2 = x**2 + y**2
    u = sp.sin(20 * r2) ** 2
    f = sp.Rational(1, 8) * (3 - 4 * (1 + 6400 * r2) * sp.cos(40 * r2) + sp.cos(80 * r2)
                             - 640 * sp.sin(40 * r2))
    assert sp.expand((-(sp.diff(u, x, 2) + sp.diff(u, y, 2)) + u**2 - f).rewrite(sp.exp)) == 0
    # and the code's f is that formula
    pts = np.random.default_rng(0).uniform(-0.7, 0.7, (20, 2))
    ref = [float(f.subs({x: a, y: b})) for a, b in pts]
    np.testing.assert_allclose(np.asarray(P.source(jnp.asarray(pts, jnp.float32))), ref, rtol=1e-4, atol=1e-3)


def test_exact_solution_has_zero_residual_float32(problem):
    pts = problem.sample(jax.random.key(1), 0)["interior"]
    r = residual(P.exact_solution, pts)
    assert r.dtype == jnp.float32 and r.shape == (512,)
    scale = float(jnp.max(jnp.abs(P.source(pts))))
    assert scale > 100  # f ~ 1e3..1e4: the tolerance below is relative to it
    assert float(jnp.max(jnp.abs(r))) < 1e-6 * scale
    # a wrong solution is not a solution
    assert float(jnp.max(jnp.abs(residual(lambda x: 1.01 * P.exact_solution(x), pts)))) > 1e-3 * scale


def test_exact_solution_has_zero_residual_float64(problem):
    with jax.enable_x64(True):
        pts = jnp.asarray(np.asarray(problem.sample(jax.random.key(2), 0)["interior"]), jnp.float64)
        r = residual(P.exact_solution, pts)
        assert r.dtype == jnp.float64
        assert float(jnp.max(jnp.abs(r))) < 1e-9


def test_exact_solution_meets_the_boundary_condition(problem):
    edge = problem.sample(jax.random.key(3), 0)["boundary"]
    assert float(jnp.max(jnp.abs(P.boundary_residual(P.exact_solution, edge)))) < 1e-5
    assert abs(P.G - np.sin(20.0) ** 2) < 1e-12


def test_sample_is_jittable_with_traced_step_and_uniform_by_area():
    prob = P.make_pde_toy(n_interior=20000, n_boundary=64, width=8, depth=1, n_eval=11)
    batch = jax.jit(prob.sample)(jax.random.key(0), jnp.int32(7))
    inner, edge = batch["interior"], batch["boundary"]
    assert inner.dtype == edge.dtype == jnp.float32
    assert inner.shape == (20000, 2) and edge.shape == (64, 2)
    r = np.linalg.norm(np.asarray(inner), axis=1)
    assert r.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(np.linalg.norm(np.asarray(edge), axis=1), 1.0, atol=1e-6)
    # by area: P(r < 1/2) = 1/4 (uniform in r would give 1/2); 4 sigma ~ 0.012
    assert abs(np.mean(r < 0.5) - 0.25) < 0.015
    other = prob.sample(jax.random.key(1), 7)
    assert not np.allclose(np.asarray(other["interior"]), np.asarray(inner))


@pytest.mark.parametrize("boundary", ["constraint", "objective"])
def test_terms_under_jit_have_the_right_kinds_and_shapes(problem, boundary):
    prob = dataclasses.replace(problem, boundary=boundary)
    params = prob.init(jax.random.key(0))
    batch = prob.sample(jax.random.key(1), 0)
    terms = jax.jit(prob.terms)(params, batch)
    assert set(terms) == {"pde", "bc"}
    assert isinstance(terms["pde"], Objective) and terms["pde"].loss.shape == (512,)
    assert terms["pde"].coords.shape == (512, 2) and terms["pde"].loss.dtype == jnp.float32
    assert bool(jnp.all(terms["pde"].loss >= 0))
    u_edge = prob.net.apply(params, batch["boundary"])[:, 0]
    bc = terms["bc"]
    if boundary == "constraint":
        assert isinstance(bc, Constraint) and bc.kind == "eq"
        np.testing.assert_allclose(bc.value, u_edge - P.G, rtol=1e-5, atol=1e-6)
    else:
        assert isinstance(bc, Objective)
        np.testing.assert_allclose(bc.loss, (u_edge - P.G) ** 2, rtol=1e-5, atol=1e-6)
    assert bc.coords.shape == (128, 2)
    # the network's residual is the same function as the one checked on u*
    net_residual = jax.jit(lambda p, x: P.residual(prob.u_fn(p), x))
    np.testing.assert_allclose(terms["pde"].loss, net_residual(params, batch["interior"]) ** 2, rtol=1e-4)


def test_evaluate_of_exact_solution_and_of_a_scaled_one(problem):
    prob = dataclasses.replace(problem, net=FieldNet(P.exact_solution))
    m = jax.jit(prob.evaluate)(jnp.float32(1.0))
    assert float(m["rel_l2"]) < 1e-6 and abs(float(m["u0"])) < 1e-7 and float(m["bc_rms"]) < 1e-5
    m = prob.evaluate(jnp.float32(1.5))
    np.testing.assert_allclose(float(m["rel_l2"]), 0.5, rtol=1e-5)
    np.testing.assert_allclose(float(m["bc_rms"]), 0.5 * P.G, rtol=1e-4)
    assert prob.branch(jnp.float32(1.0)) == "exact"
    assert prob.branch(jnp.float32(1.5)) == "none"  # u(0) = 0 alone is not the exact branch


def test_evaluation_grid_is_fixed_and_covers_the_disk(problem):
    again = P.make_pde_toy(n_interior=512, n_boundary=128, width=16, depth=2, n_eval=41)
    np.testing.assert_array_equal(problem.eval_points, again.eval_points)
    r = np.linalg.norm(problem.eval_points, axis=1)
    assert r.max() <= 1.0 and r.min() == 0.0  # the centre is on the grid
    # one vertex per grid cell of area (2/40)^2: the count is about pi / (2/40)^2
    assert abs(len(problem.eval_points) * (2 / 40) ** 2 - np.pi) < 0.05


def test_branch_classifier():
    assert P.branch(0.02, 0.01) == "exact"
    assert P.branch(0.02, 0.9) == "none"
    assert P.branch(0.02) == "exact"
    assert P.branch(-10.1) == "second" and P.branch(-10.1, 7.6) == "second"
    assert P.branch(-5.0) == "none"


def test_branches_are_the_roots_of_the_radial_shooting():
    # brackets around the two recorded centre values; a bracket with no root finds none
    roots = P.radial_branches(np.array([-10.5, -10.0, -5.0, -0.5, 0.5]))
    np.testing.assert_allclose(roots, [P.BRANCHES["second"], P.BRANCHES["exact"]], atol=1e-6)
    assert P.shoot(100.0) == float("inf")  # large centre values blow up


@pytest.mark.slow
def test_no_other_radial_branch_on_a_wide_scan():
    roots = P.radial_branches(np.linspace(-200.0, 60.0, 261))
    np.testing.assert_allclose(roots, sorted(P.BRANCHES.values()), atol=1e-6)


def test_registered_config_and_validation():
    prob = problems.get("pde_toy", width=8, depth=1, boundary="objective", n_eval=11)
    assert prob.name == "pde_toy" and prob.boundary == "objective"
    cfg = json.loads(json.dumps(prob.config()))
    assert cfg["boundary"] == "objective" and cfg["width"] == 8
    with pytest.raises(ValueError, match="boundary"):
        P.make_pde_toy(boundary="penalty")
    with pytest.raises(ValueError, match="n_interior"):
        P.make_pde_toy(n_interior=0)
    with pytest.raises(ValueError, match="activation"):
        P.make_pde_toy(activation="cubic")


def test_default_network_is_unchanged_and_arch_options_build_other_nets():
    from pinnopt import nets
    assert P.make_pde_toy(width=8, depth=1, n_eval=11).net == nets.make_mlp(8, 1, 1, "tanh")
    prob = problems.get("pde_toy", width=8, depth=2, n_eval=11, arch="pirate", rwf=True, fourier_features=8)
    assert isinstance(prob.net, nets.PirateNet) and prob.config()["arch"] == "pirate" and prob.config()["rwf"] is True
    params = prob.init(jax.random.key(0))
    assert np.isfinite(float(prob.evaluate(params)["rel_l2"]))
    with pytest.raises(ValueError, match="arch"):
        P.make_pde_toy(arch="resnet")
