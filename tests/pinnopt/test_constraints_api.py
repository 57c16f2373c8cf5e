"""Constraint methods as components: the registry, validation, jit/scan/dtype conformance, edge cases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnopt import constraints
from pinnopt.constraints import ConstraintMethod, ConstraintState, penalty_schedule
from pinnopt.terms import Constraint

METHODS = ["penalty", "al", "augmented_lagrangian", "none"]


def example(n=5, dtype=jnp.float32):
    x = jnp.linspace(-1.0, 1.0, n, dtype=dtype)
    return {"bc": Constraint(x - 0.25, "eq"), "wec": Constraint(x**2 - 0.5, "ineq"),
            "total": Constraint(jnp.sum(x).astype(dtype) + 1, "eq")}


def test_registry():
    assert constraints.available() == ["al", "augmented_lagrangian", "none", "penalty"]
    for name in METHODS:
        assert isinstance(constraints.get(name), ConstraintMethod)


@pytest.mark.parametrize("name", METHODS)
def test_update_compiles_once_and_preserves_float32_state(name):
    method, cons = constraints.get(name, **({} if name == "none" else {"check_every": 2})), example()
    traces = []

    @jax.jit
    def update(cons, state):
        traces.append(None)
        return method.update(cons, {}, state)

    state = method.init(None, cons)[1]
    for _ in range(5):
        new = update(cons, state)
        assert jax.tree.structure(new) == jax.tree.structure(state)
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(new)):
            assert a.dtype == b.dtype and a.shape == b.shape == () and not b.weak_type
            assert b.dtype in (jnp.float32, jnp.int32)
        state = new
    assert len(traces) == 1 and update._cache_size() == 1
    assert int(state.count) == 5


@pytest.mark.parametrize("name", METHODS)
def test_state_is_a_scan_carry(name):
    # A carry whose dtype or weak type changed in the body would be refused by lax.scan.
    method, cons = constraints.get(name), example()
    state = method.init(None, cons)[1]
    final, losses = jax.jit(lambda s: jax.lax.scan(lambda s, _: (method.update(cons, {}, s), method.loss(cons, {}, s)[0]),
                                                   s, None, length=7))(state)
    assert isinstance(final, ConstraintState) and int(final.count) == 7 and losses.shape == (7,)
    # Deterministic: the same inputs give the same state bit for bit.
    again = jax.jit(lambda s: jax.lax.scan(lambda s, _: (method.update(cons, {}, s), None), s, None, length=7)[0])(state)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(again)))


@pytest.mark.parametrize("name", ["penalty", "al"])
def test_float64_constraints_leave_the_state_float32(name, x64):
    method, cons = constraints.get(name), example(dtype=jnp.float64)
    state = jax.jit(method.update)(cons, {}, method.init(None, cons)[1])
    assert {leaf.dtype for leaf in jax.tree.leaves(state)} <= {jnp.dtype("float32"), jnp.dtype("int32")}


@pytest.mark.parametrize("name", ["penalty", "al"])
def test_bfloat16_constraints_leave_the_state_float32(name):
    method, cons = constraints.get(name), example(dtype=jnp.bfloat16)
    state = jax.jit(method.update)(cons, {}, method.init(None, cons)[1])
    assert {leaf.dtype for leaf in jax.tree.leaves(state)} <= {jnp.dtype("float32"), jnp.dtype("int32")}


@pytest.mark.parametrize("name", METHODS)
def test_metrics_are_flat_scalars_and_violation_is_the_same_for_every_method(name):
    method, cons = constraints.get(name), example()
    loss, metrics = jax.jit(method.loss)(cons, {}, method.init(None, cons)[1])
    assert loss.shape == () and loss.dtype == jnp.float32
    assert all(v.shape == () for v in metrics.values())
    x = np.linspace(-1.0, 1.0, 5)
    np.testing.assert_allclose(float(metrics["violation/bc"]), np.mean(np.abs(x - 0.25)), rtol=1e-6)
    np.testing.assert_allclose(float(metrics["violation/wec"]), np.mean(np.maximum(x**2 - 0.5, 0)), rtol=1e-6)
    np.testing.assert_allclose(float(metrics["violation/total"]), 1.0, rtol=1e-6)
    keys = {"violation/bc", "violation/wec", "violation/total"}
    if name != "none":
        keys |= {"mu/bc", "mu/wec", "mu/total"}
    if name in ("al", "augmented_lagrangian"):
        keys |= {"lam/bc", "lam/wec", "lam/total"}
    assert set(metrics) == keys


@pytest.mark.parametrize("name", METHODS)
def test_no_constraints(name):
    method = constraints.get(name)
    state = method.init(None, {})[1]
    loss, metrics = jax.jit(method.loss)({}, {}, state)
    assert float(loss) == 0.0 and loss.dtype == jnp.float32 and metrics == {}
    state = jax.jit(method.update)({}, {}, state)
    assert int(state.count) == 1
    assert float(jax.grad(lambda s: method.loss({}, {}, state)[0] + s)(1.0)) == 1.0


def test_none_ignores_constraints_but_reports_them():
    method, cons = constraints.get("none"), example()
    state = method.init(None, cons)[1]
    loss, metrics = method.loss(cons, {}, state)
    assert float(loss) == 0.0 and float(metrics["violation/total"]) == 1.0
    grad = jax.grad(lambda v: method.loss({**cons, "bc": Constraint(v, "eq")}, {}, state)[0])(cons["bc"].value)
    assert not np.any(np.asarray(grad))


def test_gradient_flows_through_the_constraint_values():
    method = constraints.get("penalty", mu_init=4.0)
    grad = jax.grad(lambda v: method.loss({"c": Constraint(v, "ineq")}, {}, method.init(None, {"c": Constraint(v, "ineq")})[1])[0])
    # d/dv of mu/2 mean(max(0, v)^2) = mu max(0, v) / N = 4 * 2 / 2 at the violated point.
    np.testing.assert_allclose(np.asarray(grad(jnp.array([2.0, -1.0]))), [4.0, 0.0], rtol=1e-6)


def test_state_for_other_constraints_is_refused():
    method = constraints.get("al")
    state = method.init(None, example())[1]
    with pytest.raises(ValueError, match="missing.*wec"):
        method.loss({"bc": example()["bc"], "total": example()["total"]}, {}, state)
    with pytest.raises(ValueError, match="unexpected.*extra"):
        method.update({**example(), "extra": example()["bc"]}, {}, state)
    with pytest.raises(TypeError, match="bc"):
        method.init(None, {"bc": jnp.zeros(3)})[1]


@pytest.mark.parametrize("name, options, match", [
    ("al", {"update_every": 0}, "update_every"),
    ("al", {"update_every": 1.5}, "update_every"),
    ("al", {"lam_init": float("nan")}, "lam_init"),
    ("al", {"inequality": "square"}, "inequality"),
    ("penalty", {"decay": 1.0}, "decay"),
    ("penalty", {"decay": -0.1}, "decay"),
    ("penalty", {"check_every": 0}, "check_every"),
    ("penalty", {"min_improvement": 1.0}, "min_improvement"),
    ("penalty", {"factor": 1.0}, "factor"),
    ("penalty", {"factor": -2.0}, "factor"),
    ("penalty", {"mu_init": 0.0}, "mu_init"),
    ("penalty", {"mu_init": {"bc": -1.0}}, "mu_init"),
    ("penalty", {"mu_max": float("inf")}, "mu_max"),
    ("penalty", {"mu_init": 10.0, "mu_max": 5.0}, "mu_max"),
    ("penalty", {"adaptive": "yes"}, "adaptive"),
    ("penalty", {"tolerance": -1.0}, "tolerance"),
    ("penalty", {"update_every": 2}, "update_every"),
    ("none", {"mu_init": 2.0}, "mu_init"),
    ("al", {"mu_int": 2.0}, "mu_int.*mu_init"),
])
def test_bad_options_are_refused_at_construction(name, options, match):
    with pytest.raises(ValueError, match=match):
        constraints.get(name, **options)


def test_unknown_method_names_the_closest():
    with pytest.raises(ValueError, match="Did you mean: penalty"):
        constraints.get("penalti")


@pytest.mark.parametrize("name, options, match", [
    ("penalty", {"mu_init": {"bcc": 10.0}}, r"mu_init.*'bcc'"),
    ("al", {"lam_init": {"nope": 1.0}}, r"lam_init.*'nope'"),
    ("al", {"lam_init": {"wec": -1.0}}, r"lam_init.*'wec'"),
    ("al", {"mu_init": {"bc": 1e5}}, r"mu_max.*mu_init"),
])
def test_bad_per_constraint_options_are_refused_at_init(name, options, match):
    method = constraints.get(name, **options)
    with pytest.raises(ValueError, match=match):
        method.init(None, example())[1]


def test_per_constraint_options_reach_the_state():
    method = constraints.get("al", mu_init={"bc": 100.0}, lam_init={"total": -3.0, "wec": 2.0})
    state = method.init(None, example())[1]
    assert float(state.penalty.mu["bc"]) == 100.0 and float(state.penalty.mu["wec"]) == 1.0
    assert float(state.multipliers["total"]) == -3.0 and float(state.multipliers["bc"]) == 0.0


def test_schedule_validates_its_own_options():
    with pytest.raises(ValueError, match="check_every"):
        penalty_schedule(check_every=-5)
    with pytest.raises(ValueError, match="dict"):
        penalty_schedule(mu_init={"a": 2.0}).init([0.0, 0.0])
