"""Constraint methods: KKT points, penalty scaling, the traced-multiplier regression, conformance."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pinnopt
from pinnopt import constraints
from pinnopt.constraints import max_violation, violation
from pinnopt.problems.toys import ConstrainedQuadratic
from pinnopt.terms import Constraint, Objective, split_terms

INEQ = ConstrainedQuadratic()  # min (x0-2)^2 + (x1-1)^2 s.t. x0 + x1 <= 1: x* = (1, 0), lam* = 2
EQ = ConstrainedQuadratic(a_in=(), b_in=(), a_eq=((1.0, 1.0),), b_eq=(4.0,))  # lam* = -1
BOTH = ConstrainedQuadratic(target=(2.0, 1.0, 0.0), a_eq=((1.0, -1.0, 0.0),), b_eq=(0.5,),
                            a_in=((1.0, 1.0, 1.0),), b_in=(1.0,))


def constraints_of(problem, x):
    return split_terms(problem.terms(x, None))[1]


def lagrangian(problem, method):
    """x, state -> (f(x) + method loss, constraints at x)."""

    def fn(x, state):
        objectives, cons = split_terms(problem.terms(x, None))
        return objectives["f"].loss + method.loss(cons, {}, state)[0], cons

    return fn


def minimise(problem, method, learning_rate, steps, x0=None):
    """Plain gradient descent, method.update once per step at the step's params, in one lax.scan."""
    x0 = problem.init(None) if x0 is None else x0
    state0 = method.init(None, constraints_of(problem, x0))[1]
    opt = optax.sgd(learning_rate)
    value_and_grad = jax.value_and_grad(lagrangian(problem, method), has_aux=True)

    def step(carry, _):
        x, state, opt_state = carry
        (_, cons), grad = value_and_grad(x, state)
        state = method.update(cons, {}, state)
        updates, opt_state = opt.update(grad, opt_state, x)
        return (optax.apply_updates(x, updates), state, opt_state), None

    run = jax.jit(lambda carry: jax.lax.scan(step, carry, None, steps)[0])
    x, state, _ = run((x0, state0, opt.init(x0)))
    return x, state


# --- (a) the augmented Lagrangian reaches the KKT point -------------------------------------

def multipliers_of(problem, state):
    names = [f"eq{i}" for i in range(len(problem.b_eq))] + [f"ineq{i}" for i in range(len(problem.b_in))]
    return np.array([float(state.multipliers[n]) for n in names])


def assert_at_kkt_point(problem, x, state, atol=1e-4):
    x_star, lam_star = problem.kkt()
    np.testing.assert_allclose(np.asarray(x), x_star, atol=atol)
    np.testing.assert_allclose(multipliers_of(problem, state), lam_star, atol=atol)


@pytest.mark.parametrize("problem", [INEQ, EQ, BOTH], ids=["ineq", "eq", "eq+ineq"])
def test_al_reaches_kkt_point(problem):
    # Method of multipliers: fixed mu = 1, 20 descent steps per multiplier update (enough to
    # solve each inner problem to float32 precision), 16 updates. The multiplier error
    # shrinks by a constant factor (1 + mu |a|^2 / 2 for these quadratics) at each update.
    # (Not run on: once an inequality multiplier reaches lam* to float32 precision it may
    # land one ulp above, where the hinge form is non-smooth at the solution and fixed-step
    # descent chatters across it; the "phr" form below does not.)
    method = constraints.get("al", mu_init=1.0, adaptive=False, update_every=20)
    x, state = minimise(problem, method, learning_rate=0.1, steps=20 * 16)
    assert_at_kkt_point(problem, x, state)


@pytest.mark.parametrize("problem", [INEQ, EQ, BOTH], ids=["ineq", "eq", "eq+ineq"])
def test_al_phr_form_reaches_and_stays_at_kkt_point(problem):
    method = constraints.get("al", mu_init=1.0, adaptive=False, update_every=20, inequality="phr")
    x, state = minimise(problem, method, learning_rate=0.1, steps=20 * 200)
    assert_at_kkt_point(problem, x, state, atol=1e-6)


def test_al_multiplier_error_contracts_by_one_plus_mu():
    # For INEQ the inner minimiser at multiplier lam has c = (2 - lam) / (1 + mu), so the
    # update lam + mu c leaves the error 2 - lam divided by 1 + mu.
    for mu in [1.0, 3.0]:
        method = constraints.get("al", mu_init=mu, adaptive=False, update_every=40)
        errors = [2 - float(minimise(INEQ, method, 0.5 / (1 + mu), 40 * k)[1].multipliers["ineq0"])
                  for k in (1, 2, 3)]
        np.testing.assert_allclose(errors, [2 / (1 + mu) ** k for k in (1, 2, 3)], rtol=1e-3)


def test_al_with_adaptive_penalty_reaches_kkt_point():
    # The schedule raises mu (the violation does not halve within some 20-step windows) up
    # to its cap, chosen so that the fixed step 0.1 stays stable; the multipliers converge.
    method = constraints.get("al", mu_init=1.0, mu_max=4.0, factor=2.0, check_every=20, min_improvement=0.5,
                             update_every=20, inequality="phr")
    x, state = minimise(BOTH, method, learning_rate=0.1, steps=20 * 100)
    mus = [float(m) for m in state.penalty.mu.values()]
    assert max(mus) > 1.0 and max(mus) <= 4.0
    assert_at_kkt_point(BOTH, x, state, atol=1e-6)


def test_penalty_alone_does_not_reach_kkt_point():
    # The same loop with the penalty method stops short: the multiplier is what closes the gap.
    method = constraints.get("penalty", mu_init=1.0, adaptive=False)
    x, _ = minimise(INEQ, method, learning_rate=0.1, steps=20 * 16)
    assert float(jnp.sum(x) - 1) > 0.9  # violation 2 / (1 + mu) = 1


# --- (b) the penalty's violation falls like 1 / mu ------------------------------------------

def test_penalty_violation_shrinks_like_one_over_mu():
    violations = []
    for mu in [1.0, 10.0, 100.0, 1000.0]:
        method = constraints.get("penalty", mu_init=mu, adaptive=False)
        # From the unconstrained minimiser, with step 1 / L (L = 2 + 2 mu, the curvature across
        # the constraint): converges in a few steps whatever mu, as the violation depends
        # only on the direction across the constraint.
        x0 = jnp.asarray(INEQ.target, jnp.float32)
        x, _ = minimise(INEQ, method, learning_rate=1 / (2 + 2 * mu), steps=50, x0=x0)
        violations.append(float(violation(constraints_of(INEQ, x)["ineq0"])))
    violations = np.array(violations)
    assert np.all(np.diff(violations) < 0), violations
    mus = np.array([1.0, 10.0, 100.0, 1000.0])
    # Stationarity gives c = 2 / (1 + mu) exactly; mu * c tends to lam* = 2.
    np.testing.assert_allclose(violations, 2 / (1 + mus), rtol=1e-3)
    assert np.all((mus * violations > 0.99) & (mus * violations < 2.0))


# --- (c) the multiplier is a traced value of the compiled step ------------------------------

def _step_with_trace_counter(problem, method):
    traces = []

    @jax.jit
    def step(x, state):
        traces.append(None)  # runs only while tracing
        return jax.value_and_grad(lambda x: lagrangian(problem, method)(x, state)[0])(x)

    return step, traces


def test_multiplier_reaches_the_compiled_step_as_a_traced_value():
    method = constraints.get("al")
    x = jnp.array([1.5, 0.5])  # violates x0 + x1 <= 1 by c = 1
    state0 = method.init(None, constraints_of(INEQ, x))[1]
    # A second multiplier state made the way training makes it: by the jitted update.
    state1 = jax.jit(method.update)(constraints_of(INEQ, x), {}, state0)
    assert float(state1.multipliers["ineq0"]) == 1.0  # lam + mu c = 0 + 1 * 1

    step, traces = _step_with_trace_counter(INEQ, method)
    loss0, grad0 = step(x, state0)
    loss1, grad1 = step(x, state1)
    assert len(traces) == 1 and step._cache_size() == 1  # one compiled function served both
    # The multiplier enters as lam * c: the loss moves by 1 * c = 1, the gradient by 1 * dc/dx.
    np.testing.assert_allclose(float(loss1 - loss0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad1 - grad0), [1.0, 1.0], rtol=1e-6)


def test_the_regression_check_catches_a_multiplier_frozen_into_the_closure():
    # The motivating bug, reproduced on purpose: the state is read from an enclosing Python
    # variable, so jit freezes the first multiplier into the compiled function. The checks
    # of the test above fail for it: same loss, same gradient, under one compilation.
    method = constraints.get("al")
    x = jnp.array([1.5, 0.5])
    current = {"state": method.init(None, constraints_of(INEQ, x))[1]}
    buggy = jax.jit(jax.value_and_grad(lambda x: lagrangian(INEQ, method)(x, current["state"])[0]))
    loss0, grad0 = buggy(x)
    current["state"] = method.update(constraints_of(INEQ, x), {}, current["state"])
    loss1, grad1 = buggy(x)
    assert float(current["state"].multipliers["ineq0"]) == 1.0
    assert float(loss1) == float(loss0) and np.array_equal(grad1, grad0)


def _set(state, lam, mu):
    return state._replace(multipliers={n: jnp.float32(v) for n, v in lam.items()},
                          penalty=state.penalty._replace(mu={n: jnp.float32(v) for n, v in mu.items()}))


# e: point-wise equality, i: point-wise inequality, g: a global (mean) equality, s: one value.
MIXED = {"e": Constraint(jnp.array([0.5, -1.5, 2.0]), "eq"), "i": Constraint(jnp.array([2.0, -1.0]), "ineq"),
         "g": Constraint(jnp.array([0.5, -1.5]), "eq", aggregate="mean"), "s": Constraint(jnp.array(-0.5), "eq")}
LAM = {"e": 0.5, "i": 3.0, "g": -2.0, "s": 1.0}
MU = {"e": 4.0, "i": 10.0, "g": 4.0, "s": 2.0}


def test_al_loss_follows_each_constraints_aggregation():
    method = constraints.get("al")
    state = _set(method.init(None, MIXED)[1], LAM, MU)
    loss, metrics = method.loss(MIXED, {}, state)
    c_e = (0.25 + 2.25 + 4.0) / 3  # mean square: the point-wise equality, c and its own penalty mu/2 c
    c_i = 1.0  # mean(max(0, v))
    c_g = -0.5  # signed mean of the global equality
    c_s = -0.5  # one value: the signed form
    expected = ((0.5 + 2.0) * c_e + 3.0 * c_i + 5.0 * c_i**2 - 2.0 * c_g + 2.0 * c_g**2 + 1.0 * c_s + 1.0 * c_s**2)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    assert float(metrics["violation/e"]) == pytest.approx(4.0 / 3)  # reported: mean |value|
    assert float(metrics["violation/g"]) == pytest.approx(0.5)  # reported: |mean value|
    assert float(metrics["lam/g"]) == -2.0 and float(metrics["mu/i"]) == 10.0
    new = method.update(MIXED, {}, state)
    for name, c in (("e", c_e), ("i", c_i), ("g", c_g), ("s", c_s)):
        np.testing.assert_allclose(float(new.multipliers[name]), LAM[name] + MU[name] * c, rtol=1e-6)
    # Point-wise equality: the gradient of (lam + mu/2) mean(v^2) is (lam + mu/2) 2 v / n.
    g = jax.grad(lambda v: method.loss({**MIXED, "e": Constraint(v, "eq")}, {}, state)[0])(MIXED["e"].value)
    np.testing.assert_allclose(np.asarray(g), (0.5 + 2.0) * 2 * np.asarray(MIXED["e"].value) / 3, rtol=1e-6)


def test_al_update_every_holds_multipliers_between_updates():
    method = constraints.get("al", update_every=3, adaptive=False)
    cons = {"e": Constraint(jnp.array(1.0), "eq")}
    state, update = method.init(None, cons)[1], jax.jit(method.update)
    lams = []
    for _ in range(7):
        state = update(cons, {}, state)
        lams.append(float(state.multipliers["e"]))
    assert lams == [0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    assert int(state.count) == 7


def test_penalty_loss_is_the_mean_squared_violation():
    method = constraints.get("penalty", mu_init={"e": 4.0})
    state = method.init(None, MIXED)[1]
    loss, metrics = method.loss(MIXED, {}, state)
    expected = 2.0 * (0.25 + 2.25 + 4.0) / 3 + 0.5 * (4.0 / 2) + 0.5 * 0.5**2 + 0.5 * 0.5**2
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    assert set(metrics) == {f"{k}/{n}" for k in ("violation", "mu") for n in MIXED}


def test_violation_aggregates():
    v = jnp.array([1.0, -3.0, 0.5, -0.5])
    assert float(violation(Constraint(v, "ineq"))) == pytest.approx(1.5 / 4)
    assert float(violation(Constraint(v, "eq"))) == pytest.approx(5.0 / 4)
    assert float(violation(Constraint(v, "eq", aggregate="mean"))) == pytest.approx(2.0 / 4)
    assert float(violation(Constraint(v, "eq", aggregate="mean"), signed=True)) == pytest.approx(-2.0 / 4)
    assert float(violation(Constraint(v, "ineq", aggregate="mean"))) == 0.0  # mean(v) < 0 holds
    assert float(max_violation(Constraint(v, "eq"))) == 3.0
    assert float(max_violation(Constraint(v, "ineq"))) == 1.0
    assert violation(Constraint(jnp.array(-2.0), "eq")).shape == ()
    with pytest.raises(ValueError, match="point-wise equality"):
        violation(Constraint(v, "eq"), signed=True)


@pytest.mark.parametrize("name", ["penalty", "al", "none"])
def test_opposite_signs_are_not_satisfied_pointwise(name):
    # Two points violated by +1 and -1: the signed mean is 0, but the constraint is not met.
    cons = {"e": Constraint(jnp.array([1.0, -1.0]), "eq")}
    method = constraints.get(name)
    state = method.init(None, cons)[1]
    loss, metrics = method.loss(cons, {}, state)
    assert float(metrics["violation/e"]) == 1.0 and float(max_violation(cons["e"])) == 1.0
    if name != "none":  # the methods that enforce it push on it
        assert float(loss) > 0.4
        grad = jax.grad(lambda v: method.loss({"e": Constraint(v, "eq")}, {}, state)[0])(cons["e"].value)
        assert float(grad[0]) > 0 and float(grad[1]) < 0  # each point is pulled towards 0
    # Declared global, the same values satisfy it (that is what "mean" means).
    mean = {"e": Constraint(jnp.array([1.0, -1.0]), "eq", aggregate="mean")}
    assert float(method.loss(mean, {}, method.init(None, mean)[1])[0]) == 0.0


def test_al_equality_option_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="aggregate"):
        as_mean = constraints.get("al", equality="mean")
    with pytest.warns(DeprecationWarning):
        as_squared = constraints.get("al", equality="squared")
    default = constraints.get("al")
    cons = {"e": Constraint(jnp.array([1.0, -1.0]), "eq")}
    state = _set(default.init(None, cons)[1], {"e": 2.0}, {"e": 4.0})
    assert float(as_mean.loss(cons, {}, state)[0]) == 0.0  # the old signed mean: cancels
    assert float(as_squared.loss(cons, {}, state)[0]) == float(default.loss(cons, {}, state)[0]) == 4.0
    with pytest.raises(ValueError, match=r"equality must be one of \('mean', 'squared'\)"):
        constraints.get("al", equality="abs")


def test_al_init_refuses_what_cannot_work():
    # c >= 0 for a point-wise equality: a negative starting multiplier would reward the violation.
    with pytest.raises(ValueError, match=r"lam_init for point-wise equality 'e'"):
        constraints.get("al", lam_init={"e": -1.0}).init(None, MIXED)
    constraints.get("al", lam_init={"g": -1.0, "s": -1.0}).init(None, MIXED)  # signed forms: fine
    # PHR enforces a mean: refused for a point-wise inequality of several points, named.
    with pytest.raises(ValueError, match=r"'i' is point-wise \(2 points\)"):
        constraints.get("al", inequality="phr").init(None, MIXED)
    ok = {"i": Constraint(jnp.array([2.0, -1.0]), "ineq", aggregate="mean"), "s": Constraint(jnp.array(1.0), "ineq")}
    constraints.get("al", inequality="phr").init(None, ok)


@dataclasses.dataclass(frozen=True)
class PinnedLine:
    """u(x) = a + b x with u(-1) = u(1) = 0 (a point-wise equality) and the objective (b - 1)^2.

    The solution is a = b = 0. The signed mean of u over the two points is a alone, so the
    "mean" form is met by a = 0 with b = 1 left free: u = -1, +1 at the two points.
    """

    name: str = "pinned_line"
    aggregate: str = "pointwise"

    def init(self, key):
        return {"a": jnp.float32(0.3), "b": jnp.float32(0.0)}

    def sample(self, key, step):
        return {"x": jnp.array([-1.0, 1.0])}

    def terms(self, params, batch):
        u = params["a"] + params["b"] * batch["x"]
        return {"slope": Objective(jnp.reshape((params["b"] - 1.0) ** 2, (1,))),
                "ends": Constraint(u, "eq", coords=batch["x"][:, None], aggregate=self.aggregate, tol=0.05)}


@pytest.mark.parametrize("aggregate", ["pointwise", "mean"])
def test_solve_enforces_and_certifies_a_pointwise_equality(aggregate):
    result = pinnopt.solve(PinnedLine(aggregate=aggregate), optimizer="adam", constraints="al", steps=2000,
                           chunk=500, optimizer_kwargs={"learning_rate": 1e-2},
                           constraint_kwargs={"mu_init": 100.0, "adaptive": False, "update_every": 20})
    u = result.params["a"] + result.params["b"] * jnp.array([-1.0, 1.0])
    last, cert = result.history[-1], result.summary["certificates"]["ends"]
    if aggregate == "mean":
        assert abs(float(jnp.mean(u))) < 1e-3 and float(jnp.max(jnp.abs(u))) > 0.9  # the mean is met, no point is
        assert cert["certified"] and result.summary["certified"]  # ... which is all a mean constraint asks
        return
    assert float(jnp.max(jnp.abs(u))) < 0.05 and last["heldout_violation/ends"] < 0.05
    assert last["lam/ends"] > 1.0  # the multiplier grew to do it
    assert cert["max_violation"] == pytest.approx(float(jnp.max(jnp.abs(u))), rel=1e-5)
    assert cert["certified"] == (cert["max_violation"] <= 0.05) and cert["tol"] == 0.05
