"""Causal time weighting: chunking by time rank, the weights, the stopped gradient and the eps schedules."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

from pinnopt import balancing
from pinnopt.balancing import causal_weights, chunk_ids, chunk_means
from pinnopt.terms import Objective

KEY = jax.random.PRNGKey(0)
# N = 10 points in M = 4 chunks: ranks 0-2 | 3-4 | 5-7 | 8-9 (sizes 3, 2, 3, 2).
LAYOUT = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]


def hand_made(eps_chunk_means=(1.0, 2.0, 3.0, 4.0), time_axis=0, seed=0):
    """10 points with shuffled times whose chunk means (in time order) are the given values."""
    rng = np.random.default_rng(seed)
    times = rng.permutation(10).astype(np.float32) / 10.0  # distinct, unsorted
    rank = np.argsort(np.argsort(times))
    # Within each chunk the point values are mean -+ a spread that cancels.
    spread = {0: [-0.5, 0.0, 0.5], 1: [-0.25, 0.25], 2: [-0.5, 0.0, 0.5], 3: [-0.25, 0.25]}
    sorted_l = np.concatenate([eps_chunk_means[c] + np.array(spread[c]) for c in range(4)])
    loss = sorted_l[rank].astype(np.float32)
    coords = np.stack([np.full(10, 7.0), times] if time_axis == 1 else [times, np.full(10, 7.0)], axis=1)
    return Objective(jnp.asarray(loss), jnp.asarray(coords, jnp.float32)), rank


def test_chunk_ids_when_n_is_not_divisible():
    np.testing.assert_array_equal(chunk_ids(10, 4), LAYOUT)
    np.testing.assert_array_equal(chunk_ids(4, 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(chunk_ids(5, 1), [0] * 5)
    with pytest.raises(ValueError, match="exceeds the number of points"):
        chunk_ids(3, 4)


@pytest.mark.parametrize("time_axis", [0, 1])
def test_hand_made_chunks_unsorted_times(time_axis):
    obj, _ = hand_made(time_axis=time_axis)
    np.testing.assert_allclose(chunk_means(obj.loss, obj.coords[:, time_axis], 4), [1, 2, 3, 4], rtol=1e-6)
    eps = 0.3
    bal = balancing.get("causal", eps=eps, n_chunks=4, time_axis=time_axis)
    objs = {"residual": obj, "bc": Objective(jnp.array([2.0, 4.0]))}
    params, state = bal.init(KEY, objs)
    value, metrics = jax.jit(bal.loss)(objs, params, state)
    w = np.exp(-eps * np.array([0.0, 1.0, 3.0, 6.0]))
    np.testing.assert_allclose(value, np.mean(w * [1, 2, 3, 4]) + 3.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["causal/min_weight"], np.exp(-1.8), rtol=1e-6)
    np.testing.assert_allclose(metrics["causal/min_weight/residual"], np.exp(-1.8), rtol=1e-6)
    np.testing.assert_allclose(metrics["causal/eps"], eps)
    np.testing.assert_allclose(metrics["raw/residual"], jnp.mean(obj.loss), rtol=1e-6)


def test_gradient_does_not_flow_through_the_weights():
    obj, rank = hand_made()
    eps = 0.5
    bal = balancing.get("causal", eps=eps, n_chunks=4)
    params, state = bal.init(KEY, {"r": obj})
    grad = jax.grad(lambda l: bal.loss({"r": Objective(l, obj.coords)}, params, state)[0])(obj.loss)
    # d loss / d l_j = w_c / (M n_c) for the chunk c of point j: only the direct path.
    chunk = np.array(LAYOUT)[rank]
    sizes = np.array([3, 2, 3, 2])
    w = np.exp(-eps * np.array([0.0, 1.0, 3.0, 6.0]))
    np.testing.assert_allclose(grad, w[chunk] / (4 * sizes[chunk]), rtol=1e-6)
    # Without the stop the early points would also feel the later chunks: the gradient would differ.
    L = jnp.asarray(chunk_means(obj.loss, obj.coords[:, 0], 4))
    unstopped = jax.grad(lambda L: jnp.mean(jnp.exp(-eps * (jnp.cumsum(L) - L)) * L))(L)
    assert not np.allclose(unstopped, w / 4)
    np.testing.assert_allclose(jax.grad(lambda L: jnp.mean(causal_weights(L, eps) * L))(L), w / 4, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(losses=st.lists(st.floats(0.0, 10.0, width=32), min_size=1, max_size=8),
       eps=st.floats(1e-3, 1.0))
def test_weight_properties(losses, eps):
    w = np.asarray(causal_weights(jnp.asarray(losses, jnp.float32), eps))
    assert w[0] == 1.0
    assert np.all(w > 0) and np.all(w <= 1)
    assert np.all(np.diff(w) <= 0)
    np.testing.assert_allclose(w, np.exp(-eps * (np.cumsum(losses) - losses)), rtol=1e-4)


@settings(max_examples=12, deadline=None)  # every (n, m) compiles anew
@given(n=st.integers(1, 40), m=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_chunk_means_match_a_sort(n, m, seed):
    m = min(m, n)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 5, n).astype(np.float32)
    times = rng.uniform(0, 1, n).astype(np.float32)
    sizes = np.bincount(chunk_ids(n, m), minlength=m)
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 1
    edges = np.concatenate([[0], np.cumsum(sizes)])
    by_time = values[np.argsort(times, kind="stable")]
    expected = [by_time[a:b].mean() for a, b in zip(edges[:-1], edges[1:])]
    got = jax.jit(chunk_means, static_argnums=2)(jnp.asarray(values), jnp.asarray(times), m)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_terms_without_coords_or_not_selected_are_plain_means():
    obj, _ = hand_made()
    ic = Objective(jnp.array([1.0, 3.0, 5.0, 7.0]), jnp.zeros((4, 2)))  # all at t = 0
    objs = {"residual": obj, "ic": ic, "data": Objective(jnp.array(0.5))}
    bal = balancing.get("causal", eps=1.0, n_chunks=4, terms=["residual"], weights={"ic": 2.0})
    params, state = bal.init(KEY, objs)
    value, metrics = bal.loss(objs, params, state)
    w = np.exp(-np.array([0.0, 1.0, 3.0, 6.0]))
    np.testing.assert_allclose(value, np.mean(w * [1, 2, 3, 4]) + 2.0 * 4.0 + 0.5, rtol=1e-6)
    assert "causal/min_weight/ic" not in metrics
    with pytest.raises(ValueError, match="no coords"):
        balancing.get("causal", n_chunks=2, terms=["data"]).init(KEY, objs)
    with pytest.raises(ValueError, match="not among the objectives"):
        balancing.get("causal", n_chunks=2, terms=["pde"]).init(KEY, objs)


def test_eps_list_advances_when_all_chunks_are_fitted():
    bal = balancing.get("causal", eps=[0.01, 0.1, 1.0], n_chunks=4, min_weight_threshold=0.9)
    fitted, _ = hand_made((0.1, 0.1, 0.1, 0.1))  # min weight exp(-0.3 eps)
    unfitted, _ = hand_made()  # min weight exp(-6 eps)
    params, state = bal.init(KEY, {"r": fitted})
    update = jax.jit(bal.update)
    eps_seen = []
    for objs in [fitted, unfitted, fitted, fitted, fitted]:
        eps_seen.append(float(bal.loss({"r": objs}, params, state)[1]["causal/eps"]))
        state = update({"r": objs}, params, state)
    # exp(-6 * 0.1) = 0.55 < 0.9 holds eps at 0.1; at the last eps it stays.
    np.testing.assert_allclose(eps_seen, [0.01, 0.1, 0.1, 1.0, 1.0], rtol=1e-6)
    assert int(state.step) == 5 and int(state.eps_index) == 2


def test_eps_schedule_of_the_step():
    bal = balancing.get("causal", eps_schedule=optax.linear_schedule(0.1, 1.1, transition_steps=10), n_chunks=4)
    obj, _ = hand_made()
    params, state = bal.init(KEY, {"r": obj})

    def body(state, _):
        eps = bal.loss({"r": obj}, params, state)[1]["causal/eps"]
        return bal.update({"r": obj}, params, state), eps

    state, eps = jax.lax.scan(body, state, None, length=12)
    np.testing.assert_allclose(eps, np.minimum(0.1 + 0.1 * np.arange(12), 1.1), rtol=1e-5)


def test_preserves_float32_and_compiles_once_per_shape():
    obj, _ = hand_made()
    bal = balancing.get("causal", n_chunks=4)
    params, state = bal.init(KEY, {"r": obj})
    traces = []

    @jax.jit
    def f(l):
        traces.append(1)
        return bal.loss({"r": Objective(l, obj.coords)}, params, state)[0]

    assert f(obj.loss).dtype == jnp.float32
    f(obj.loss * 2.0)
    assert len(traces) == 1


@pytest.mark.parametrize("options, match", [
    ({"eps": 0.0}, "eps must be finite and > 0"),
    ({"eps": -1.0}, "eps must be finite and > 0"),
    ({"eps": float("nan")}, "eps must be finite"),
    ({"eps": []}, "non-empty"),
    ({"eps": [1.0, 0.1]}, "non-decreasing"),
    ({"eps": 1.0, "eps_schedule": optax.constant_schedule(1.0)}, "not both"),
    ({"eps_schedule": 3.0}, "callable"),
    ({"n_chunks": 0}, "n_chunks"),
    ({"n_chunks": 2.5}, "n_chunks"),
    ({"time_axis": -1}, "time_axis"),
    ({"min_weight_threshold": 0.0}, "min_weight_threshold"),
    ({"terms": "residual"}, "terms"),
])
def test_validation(options, match):
    with pytest.raises(ValueError, match=match):
        balancing.get("causal", **options)


def test_validation_against_the_points():
    obj, _ = hand_made()
    with pytest.raises(ValueError, match="n_chunks \\(16\\) exceeds the number of points \\(10\\)"):
        balancing.get("causal").init(KEY, {"r": obj})
    with pytest.raises(ValueError, match="time_axis 2 is out of range"):
        balancing.get("causal", n_chunks=4, time_axis=2).init(KEY, {"r": obj})
    # Mismatched points and coords are refused when the term is built, before any balancer sees it.
    with pytest.raises(ValueError, match="loss has 5 points but coords has 10 rows"):
        balancing.get("causal", n_chunks=4).init(KEY, {"r": Objective(obj.loss[:5], obj.coords)})


class _Decaying:
    """l_i = c^2 (1 + t_i) on 16 points in time: gradient descent on c fits every chunk in turn."""

    name = "decaying"

    def init(self, key):
        return {"c": jnp.float32(1.0)}

    def sample(self, key, step):
        return {"t": jax.random.uniform(key, (16,))}

    def terms(self, theta, batch):
        t = batch["t"]
        return {"r": Objective(theta["c"] ** 2 * (1.0 + t), coords=t[:, None])}


def test_eps_schedule_advances_inside_the_compiled_step_and_is_reported():
    """The paper's schedule through the jitted scan of training steps: stage s uses eps[s], and
    the stage moves on right after (and only after) a step whose minimum weight exceeded 0.99."""
    from pinnopt import constraints, optimizers
    from pinnopt.training import init_state, make_step

    eps = [0.1, 1.0, 10.0]
    problem, tx = _Decaying(), optimizers.get("sgd", learning_rate=0.05)
    bal, method = balancing.get("causal", eps=eps, n_chunks=4), constraints.get("none")
    state = init_state(problem, tx, bal, method, seed=0)
    step = make_step(problem, tx, bal, method)
    state, m = jax.jit(lambda s: jax.lax.scan(step, s, None, length=60))(state)
    stage = np.asarray(m["causal/stage"]).astype(int)
    np.testing.assert_allclose(m["causal/eps"], np.asarray(eps)[stage], rtol=1e-6)
    assert stage[0] == 0 and stage[-1] == 2 and np.all(np.diff(stage) >= 0)
    fitted = np.asarray(m["causal/min_weight"]) > 0.99
    advanced = np.diff(stage) == 1
    np.testing.assert_array_equal(advanced, fitted[:-1] & (stage[:-1] < 2))
    assert int(state.balancer_state.eps_index) == 2
