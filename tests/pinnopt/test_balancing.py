"""The balancer registry, the static sum, and the contract every balancer keeps (jit, scan, dtypes, metrics)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnopt import balancing
from pinnopt.terms import Constraint, Objective

KEY = jax.random.PRNGKey(0)
ALL = {
    "sum": {"weights": {"bc": 2.0}},
    "homoscedastic": {"check_every": 3},
    "causal": {"n_chunks": 3, "eps": [0.1, 1.0]},
    "spatial": {"width": 4, "depth": 1},
    "spatial+causal": {"width": 4, "depth": 1, "inner": "causal", "n_chunks": 3},
    "rba": {"initial": 0.5},
}


def build(kind):
    return balancing.get(kind.split("+")[0], **ALL[kind])


def objectives(key=KEY, n=10):
    """A point-wise residual on (t, x) points and a scalar-free boundary term without coords."""
    k1, k2, k3 = jax.random.split(key, 3)
    coords = jax.random.uniform(k1, (n, 2))
    return {"residual": Objective(jax.random.uniform(k2, (n,)) * 3.0, coords),
            "bc": Objective(jax.random.uniform(k3, (4,)))}


def test_available_and_unknown_name():
    assert balancing.available() == ["causal", "grad_norm", "homoscedastic", "ntk", "rba", "spatial", "sum"]
    with pytest.raises(ValueError, match="Available: causal, grad_norm, homoscedastic, ntk, rba, spatial, sum"):
        balancing.get("homoskedastic")
    with pytest.raises(ValueError, match="has no option 'eps'.*Accepted: weights"):
        balancing.get("sum", eps=1.0)


def test_sum_known_values():
    objs = {"residual": Objective(jnp.array([1.0, 2.0, 3.0])), "bc": Objective(jnp.array([1e-5, 3e-5])),
            "data": Objective(jnp.array(0.25))}
    bal = balancing.get("sum", weights={"residual": 1.0, "bc": 1e5})
    params, state = bal.init(KEY, objs)
    assert params == {}
    value, metrics = bal.loss(objs, params, state)
    np.testing.assert_allclose(value, 2.0 + 1e5 * 2e-5 + 0.25, rtol=1e-6)
    np.testing.assert_allclose(metrics["raw/bc"], 2e-5, rtol=1e-6)
    np.testing.assert_allclose(metrics["raw/data"], 0.25)
    assert metrics["balanced"] == value
    assert int(bal.update(objs, params, state).step) == 1


def test_sum_weight_validation():
    objs = {"residual": Objective(jnp.ones(3))}
    with pytest.raises(ValueError, match=r"unknown terms \['bd'\]"):
        balancing.get("sum", weights={"bd": 1.0}).init(KEY, objs)
    for bad in (-1.0, float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match=r"weights\['residual'\]"):
            balancing.get("sum", weights={"residual": bad})
    with pytest.raises(ValueError, match="weights must be a dict"):
        balancing.get("sum", weights=[1.0])


@pytest.mark.parametrize("kind", list(ALL))
def test_constraints_are_rejected(kind):
    bal = build(kind)
    with pytest.raises(TypeError, match="Constraint"):
        bal.init(KEY, {"c": Constraint(jnp.ones(3))})


@pytest.mark.parametrize("kind", list(ALL))
def test_metrics_dtypes_and_state_leaves(kind):
    bal = build(kind)
    objs = objectives()
    params, state = bal.init(KEY, objs)
    value, metrics = jax.jit(bal.loss)(objs, params, state)
    assert value.shape == () and value.dtype == jnp.float32
    assert metrics["balanced"] == value
    for name, obj in objs.items():
        np.testing.assert_allclose(metrics[f"raw/{name}"], jnp.mean(obj.loss), rtol=1e-6)
    for name, m in metrics.items():
        assert m.shape == (), name
        assert m.dtype == jnp.float32, name
    for leaf in jax.tree_util.tree_leaves((params, state)):
        assert isinstance(leaf, jax.Array)
        assert leaf.dtype in (jnp.float32, jnp.int32)
    # The state after an update has the structure of the initial one (a scan carry).
    new = jax.jit(bal.update)(objs, params, state)
    assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(state)


@pytest.mark.parametrize("kind", list(ALL))
def test_jit_does_not_recompile(kind):
    bal = build(kind)
    traces = []

    def step(objs, params, state):
        traces.append(1)
        (value, metrics), grads = jax.value_and_grad(bal.loss, argnums=1, has_aux=True)(objs, params, state)
        return value, grads, bal.update(objs, params, state)

    step = jax.jit(step)
    params, state = bal.init(KEY, objectives())
    v1, _, state = step(objectives(jax.random.PRNGKey(1)), params, state)
    v2, _, state = step(objectives(jax.random.PRNGKey(2)), params, state)
    assert len(traces) == 1
    assert v1 != v2


@pytest.mark.parametrize("kind", list(ALL))
def test_trains_inside_scan(kind):
    """Model and balancer params trained together by one optimizer inside lax.scan."""
    bal = build(kind)
    coords = jax.random.uniform(KEY, (12, 2))
    target = jnp.sin(3.0 * coords[:, 0]) + coords[:, 1]

    def terms(theta):
        pred = theta["a"] * jnp.sin(3.0 * coords[:, 0]) + theta["b"] * coords[:, 1]
        return {"residual": Objective((pred - target) ** 2, coords),
                "bc": Objective((theta["b"] - 1.0) ** 2 * jnp.ones(3))}

    theta = {"a": jnp.array(0.0), "b": jnp.array(0.0)}
    bal_params, state = bal.init(KEY, terms(theta))
    params = {"model": theta, "balancer": bal_params}
    opt = optax.adam(0.05)

    def total(p, state):
        return bal.loss(terms(p["model"]), p["balancer"], state)

    def body(carry, _):
        p, opt_state, state = carry
        (value, metrics), g = jax.value_and_grad(total, has_aux=True)(p, state)
        state = bal.update(terms(p["model"]), p["balancer"], state)
        updates, opt_state = opt.update(g, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state, state), metrics["raw/residual"]

    (params, _, state), raw = jax.jit(lambda c: jax.lax.scan(body, c, None, length=300))(
        (params, opt.init(params), state))
    assert int(state.step) == 300
    assert raw[-1] < 1e-2 * raw[0]
    assert bal.diagnose(state) == []


@pytest.mark.parametrize("kind", ["homoscedastic", "spatial+causal", "sum"])
def test_state_round_trips_through_orbax(kind, tmp_path):
    """Params and state restore bit for bit, and the run goes on exactly as without the restore."""
    import orbax.checkpoint as ocp

    bal = build(kind)
    objs = objectives()
    params, state = bal.init(KEY, objs)
    update = jax.jit(bal.update)
    for _ in range(4):
        state = update(objs, params, state)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "ckpt", {"params": params, "state": state})
    with ocp.StandardCheckpointer() as ckpt:
        restored = ckpt.restore(tmp_path / "ckpt", {"params": params, "state": state})
    assert type(restored["state"]) is type(state)
    r_params, r_state = restored["params"], restored["state"]
    later = objectives(jax.random.PRNGKey(3))
    a = jax.tree_util.tree_leaves((bal.loss(later, params, update(later, params, state)),
                                   update(later, params, state)))
    b = jax.tree_util.tree_leaves((bal.loss(later, r_params, update(later, r_params, r_state)),
                                   update(later, r_params, r_state)))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
