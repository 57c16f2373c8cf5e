"""Terms check their shapes when built, and a constraint owns its aggregation and tolerance."""
import jax
import jax.numpy as jnp
import pytest

from pinnopt.terms import Constraint, Objective, split_terms


def test_a_broadcast_loss_is_refused_with_a_hint():
    u, target = jnp.zeros((50, 1)), jnp.zeros(50)
    with pytest.raises(ValueError, match=r"loss must have shape \(N,\).*got \(50, 50\).*\[:, 0\]"):
        Objective((u - target) ** 2)


def test_shapes_checked_on_tracers_too():
    def terms(x):
        return Objective(x[:, None] * x[None, :])

    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        jax.jit(terms)(jnp.ones(4))


@pytest.mark.parametrize("kwargs, match", [
    ({"coords": jnp.zeros((3, 2))}, "5 points but coords has 3 rows"),
    ({"coords": jnp.zeros(5)}, r"coords must have shape \(N, d\)"),
])
def test_coords_must_match_the_points(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Constraint(jnp.zeros(5), "eq", **kwargs)
    with pytest.raises(ValueError, match=match.replace("5 points", "5 points")):
        Objective(jnp.zeros(5), **kwargs)


def test_constraint_options_are_validated():
    with pytest.raises(ValueError, match="aggregate"):
        Constraint(jnp.zeros(3), aggregate="sum")
    with pytest.raises(ValueError, match="tol"):
        Constraint(jnp.zeros(3), tol=-1.0)
    with pytest.raises(ValueError, match="kind"):
        Constraint(jnp.zeros(3), kind="le")
    c = Constraint(jnp.zeros(3), "ineq", tol=1e-3)
    assert c.aggregate == "pointwise" and c.tol == 1e-3 and c.pointwise
    assert not Constraint(jnp.zeros(()), "eq").pointwise  # a single value is its own point
    assert not Constraint(jnp.zeros(3), "eq", aggregate="mean").pointwise


def test_aggregate_and_tol_are_static_and_survive_jit():
    @jax.jit
    def f(v):
        return Constraint(v, "eq", aggregate="mean", tol=0.5)

    out = f(jnp.ones(3))
    assert out.aggregate == "mean" and out.tol == 0.5
    leaves = jax.tree.leaves(out)
    assert len(leaves) == 1  # only the values are traced


def test_split_terms_names_the_bad_term():
    with pytest.raises(TypeError, match="term 'oops' is a ndarray|term 'oops' is a ArrayImpl|term 'oops'"):
        split_terms({"ok": Objective(jnp.zeros(2)), "oops": jnp.zeros(2)})
    objectives, constraints = split_terms({"a": Objective(jnp.zeros(2)), "b": Constraint(jnp.zeros(2))})
    assert list(objectives) == ["a"] and list(constraints) == ["b"]
