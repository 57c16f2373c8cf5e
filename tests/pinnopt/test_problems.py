"""Test functions, the constrained toy and the problem registry."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pinnopt
from pinnopt.problems import toys
from pinnopt.terms import Constraint, Objective


@pytest.mark.parametrize("name", ["rastrigin", "ackley", "zakharov"])
@pytest.mark.parametrize("dim", [1, 2, 7])
def test_minimum_value_at_known_point(name, dim):
    problem = pinnopt.problems.get(name, dim=dim)
    x = jnp.asarray(problem.known_minimum.x, jnp.float32)
    assert float(problem.terms(x, None)["f"].loss) == pytest.approx(problem.known_minimum.value, abs=1e-5)
    g = jax.grad(lambda x: problem.terms(x, None)["f"].loss)(x)
    assert np.all(np.abs(np.asarray(g)) < 1e-3)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=3, max_size=3))
def test_known_minimum_is_a_lower_bound(xs):
    x = jnp.asarray(xs, jnp.float32)
    for f in (toys.rastrigin, toys.ackley, toys.zakharov):
        assert float(f(x)) >= -1e-5


def test_closed_forms():
    # Rastrigin at x = (1, 0.5): 20 + (1 - 10) + (0.25 + 10)
    assert float(toys.rastrigin(jnp.array([1.0, 0.5]))) == pytest.approx(21.25, rel=1e-6)
    # Zakharov in 2-D at (1, 1): 2 + 1.5^2 + 1.5^4
    assert float(toys.zakharov(jnp.array([1.0, 1.0]))) == pytest.approx(2 + 2.25 + 5.0625, rel=1e-6)
    # Ackley at a lattice point (1, 1): cos terms give e^1, radius 1
    assert float(toys.ackley(jnp.array([1.0, 1.0]))) == pytest.approx(-20 * np.exp(-0.2) - np.e + 20 + np.e, rel=1e-5)


def test_two_basin_has_two_nearly_equal_minima():
    problem = pinnopt.problems.get("two_basin")
    f = lambda x: problem.terms(x, None)["f"].loss
    for centre in ([-2.0, -2.0], [2.0, 2.0]):
        c = jnp.array(centre)
        assert abs(float(f(c))) < 1e-5
        assert float(jnp.linalg.norm(jax.grad(f)(c))) < 1e-3
    assert float(f(jnp.array([0.0, 0.0]))) > 0.5
    assert abs(problem.known_minimum.value) < 1e-5


def test_constrained_quadratic_kkt():
    problem = toys.ConstrainedQuadratic()
    x, lam = problem.kkt()
    np.testing.assert_allclose(x, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(lam, [2.0], atol=1e-12)
    terms = problem.terms(jnp.asarray(x, jnp.float32), None)
    assert isinstance(terms["f"], Objective) and isinstance(terms["ineq0"], Constraint)
    assert terms["ineq0"].kind == "ineq" and abs(float(terms["ineq0"].value)) < 1e-6


def test_init_respects_seed_and_x0():
    p = pinnopt.problems.get("rastrigin", dim=4)
    a, b = p.init(jax.random.PRNGKey(0)), p.init(jax.random.PRNGKey(1))
    assert a.shape == (4,) and a.dtype == jnp.float32 and not np.allclose(a, b)
    np.testing.assert_array_equal(p.init(jax.random.PRNGKey(0)), a)
    q = pinnopt.problems.get("ackley", dim=2, x0=[-4.0, 3.0])
    np.testing.assert_array_equal(q.init(jax.random.PRNGKey(5)), [-4.0, 3.0])


def test_registry_errors_name_the_problem():
    assert {"rastrigin", "ackley", "zakharov", "two_basin", "constrained_quadratic"} <= set(pinnopt.problems.available())
    with pytest.raises(ValueError, match="rastrigin"):
        pinnopt.problems.get("rastrign")
    with pytest.raises(ValueError, match="dim"):
        pinnopt.problems.get("rastrigin", dim=0)
    with pytest.raises(ValueError, match="x0"):
        pinnopt.problems.get("ackley", dim=3, x0=[1.0, 2.0])
    with pytest.raises(ValueError, match="rastrigin"):
        pinnopt.problems.get("rastrigin", nonsense=1)


def test_constraint_kind_validated():
    with pytest.raises(ValueError, match="kind"):
        Constraint(jnp.zeros(3), kind="le")


def test_rastrigin_eps8_wall():
    p = pinnopt.problems.get("rastrigin", dim=5, eps8=1e-4)
    assert float(p.terms(jnp.ones(5), None)["f"].loss) == pytest.approx(5.0 + 5e-4, rel=1e-6)
    assert float(p.terms(jnp.zeros(5), None)["f"].loss) == 0.0
    with pytest.raises(ValueError, match="eps8"):
        pinnopt.problems.get("rastrigin", eps8=-1.0)
