"""poisson2d and helmholtz2d: the source against sympy, the exact solutions' residuals, terms, evaluation."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from pinnopt import problems
from pinnopt.problems import elliptic as E
from pinnopt.terms import Constraint, Objective

residual = jax.jit(E.residual, static_argnums=(0, 2, 3, 4))

CASES = {"poisson2d": (1.0, 1.0, 0.0, 0.0, 1.0), "helmholtz2d": (1.0, 4.0, 1.0, -1.0, 1.0)}  # a1 a2 k lo hi


class FieldNet:
    """apply(params, x) = params * field(x): the network replaced by c u*."""

    def __init__(self, field):
        self.field = field

    def apply(self, params, x):
        return (params * self.field(x))[..., None]


def small(name, **kwargs):
    return problems.get(name, **{**dict(n_interior=128, n_boundary=64, width=8, depth=2, n_eval=21), **kwargs})


def test_source_against_sympy():
    # Independent of the code: -Laplace(u) for poisson2d as the issue writes it, and
    # Laplace(u) + k^2 u for helmholtz2d, both from sympy's derivatives of u*.
    x, y = sp.symbols("x y", real=True)
    pts = np.random.default_rng(0).uniform(-1, 1, (10, 2))
    for name, (a1, a2, k, _, _) in CASES.items():
        u = sp.sin(a1 * sp.pi * x) * sp.sin(a2 * sp.pi * y)
        lap = sp.diff(u, x, 2) + sp.diff(u, y, 2)
        q = lap + k**2 * u
        ref = [float(q.subs({x: a, y: b})) for a, b in pts]
        np.testing.assert_allclose(E.source(pts, a1, a2, k, np), ref, rtol=1e-12, atol=1e-12)
    poisson = [float((2 * sp.pi**2 * sp.sin(sp.pi * x) * sp.sin(sp.pi * y)).subs({x: a, y: b})) for a, b in pts]
    np.testing.assert_allclose(-E.source(pts, 1.0, 1.0, 0.0, np), poisson, rtol=1e-12)  # -Laplace u = f


@pytest.mark.parametrize("name", list(CASES))
def test_exact_solution_has_zero_residual_in_float64(name):
    a1, a2, k, lo, hi = CASES[name]
    prob = small(name)
    with jax.enable_x64(True):
        pts = jnp.asarray(np.random.default_rng(1).uniform(lo, hi, (200, 2)))
        exact = lambda p: E.exact_solution(p, a1, a2)
        r = residual(exact, pts, a1, a2, k)
        assert r.dtype == jnp.float64
        scale = float(jnp.max(jnp.abs(E.source(pts, a1, a2, k))))
        assert float(jnp.max(jnp.abs(r))) < 1e-12 * scale
        # a wrong function is not a solution: the residual sees the error
        wrong = lambda p: E.exact_solution(p, a1, a2) * (1 + 0.01 * p[0])
        assert float(jnp.max(jnp.abs(residual(wrong, pts, a1, a2, k)))) > 1e-3 * scale
        edge = jnp.asarray(np.asarray(prob.sample(jax.random.key(0), 0)["boundary"]), jnp.float64)
        assert float(jnp.max(jnp.abs(E.boundary_residual(exact, edge, a1, a2)))) < 1e-12


@pytest.mark.parametrize("name", list(CASES))
def test_sample_in_and_on_the_square(name):
    _, _, _, lo, hi = CASES[name]
    batch = jax.jit(small(name).sample)(jax.random.key(2), jnp.int32(5))
    inner, edge = np.asarray(batch["interior"]), np.asarray(batch["boundary"])
    assert inner.shape == (128, 2) and edge.shape == (64, 2) and inner.dtype == np.float32
    assert inner.min() >= lo and inner.max() <= hi
    on_edge = np.isclose(edge, lo) | np.isclose(edge, hi)
    assert np.all(on_edge.any(axis=1))
    again = small(name).sample(jax.random.key(3), 5)
    assert not np.allclose(np.asarray(again["interior"]), inner)  # fresh points per key


@pytest.mark.parametrize("bc", ["constraint", "objective"])
def test_terms_kinds_shapes_and_least_squares_form(bc):
    prob = small("helmholtz2d", bc=bc)
    params = prob.init(jax.random.key(0))
    batch = prob.sample(jax.random.key(1), 0)
    terms = jax.jit(prob.terms)(params, batch)
    assert set(terms) == {"pde", "bc"}
    pde_term = terms["pde"]
    assert isinstance(pde_term, Objective) and pde_term.residual.shape == (128,)
    np.testing.assert_allclose(pde_term.loss, pde_term.residual**2, rtol=1e-6)
    u_edge = prob.predict(params, batch["boundary"])
    if bc == "constraint":
        assert isinstance(terms["bc"], Constraint) and terms["bc"].kind == "eq"
        np.testing.assert_allclose(terms["bc"].value, u_edge, rtol=1e-5, atol=1e-6)
    else:
        assert isinstance(terms["bc"], Objective)
        np.testing.assert_allclose(terms["bc"].residual, u_edge, rtol=1e-5, atol=1e-6)
    net_residual = jax.jit(lambda p, x: E.residual(prob.u_fn(p), x, 1.0, 4.0, 1.0))
    np.testing.assert_allclose(pde_term.residual, net_residual(params, batch["interior"]), rtol=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_evaluate_predict_and_reference(name):
    a1, a2, _, lo, hi = CASES[name]
    prob = small(name)
    assert prob.eval_points.shape == (21 * 21, 2) and prob.eval_points.dtype == np.float32
    assert prob.eval_points.min() == lo and prob.eval_points.max() == hi
    np.testing.assert_array_equal(prob.eval_exact, prob.reference_solution(prob.eval_points))
    pts = np.random.default_rng(0).uniform(lo, hi, (5, 2))
    np.testing.assert_allclose(prob.reference_solution(pts),
                               np.sin(a1 * np.pi * pts[:, 0]) * np.sin(a2 * np.pi * pts[:, 1]), rtol=1e-14)
    exact = dataclasses.replace(prob, net=FieldNet(lambda x: E.exact_solution(x, a1, a2)))
    assert float(jax.jit(exact.evaluate)(jnp.float32(1.0))["rel_l2"]) < 1e-6
    np.testing.assert_allclose(float(exact.evaluate(jnp.float32(1.5))["rel_l2"]), 0.5, rtol=1e-5)
    params = prob.init(jax.random.key(0))
    assert prob.predict(params, prob.eval_points[:7]).shape == (7,)
    with pytest.raises(ValueError, match="shape"):
        prob.reference_solution(np.zeros((3, 3)))


def test_registered_defaults_config_and_validation():
    assert {"poisson2d", "helmholtz2d"} <= set(problems.available())
    h = problems.get("helmholtz2d")
    assert (h.a1, h.a2, h.k, h.lower, h.upper, h.bc) == (1.0, 4.0, 1.0, -1.0, 1.0, "constraint")
    p = problems.get("poisson2d")
    assert (p.a1, p.a2, p.k, p.lower, p.upper) == (1.0, 1.0, 0.0, 0.0, 1.0)
    cfg = json.loads(json.dumps(small("helmholtz2d", fourier_features=4).config()))
    assert cfg["name"] == "helmholtz2d" and cfg["fourier_features"] == 4 and cfg["a2"] == 4.0
    for name, kwargs, word in [("poisson2d", {"bc": "hard"}, "bc"), ("poisson2d", {"n_interior": 1}, "n_interior"),
                               ("poisson2d", {"n_eval": 2.5}, "n_eval"), ("poisson2d", {"width": 0}, "width"),
                               ("helmholtz2d", {"k": float("inf")}, "k"), ("helmholtz2d", {"a1": float("nan")}, "a1"),
                               ("helmholtz2d", {"fourier_scale": -1.0}, "fourier_scale"),
                               ("helmholtz2d", {"activation": "cube"}, "activation")]:
        with pytest.raises(ValueError, match=word):
            problems.get(name, **kwargs)
