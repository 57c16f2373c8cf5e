"""pinnopt.nets.make_net: the modified MLP, PirateNet, random weight factorization, the
time-periodic embedding; each checked against a forward pass written here in NumPy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnopt import nets

ARCHS = ("mlp", "modified_mlp", "pirate")
X = np.asarray(jax.random.uniform(jax.random.key(7), (6, 2), jnp.float32, -1.0, 2.0))


def _np_params(params):
    """The params as float64 NumPy, RWF kernels multiplied out (exp(s) v column-wise)."""
    def walk(tree):
        if isinstance(tree, dict) and set(tree) == {"s", "v"}:
            return np.exp(np.asarray(tree["s"], np.float64)) * np.asarray(tree["v"], np.float64)
        if isinstance(tree, dict):
            return {k: walk(v) for k, v in tree.items()}
        return np.asarray(tree, np.float64)
    return walk(params["params"])


def _np_embedding(x, periods, harmonics, b=None):
    """Kept columns, then cos/sin(2 pi k x_j / P) per periodic column; then [cos zB^T, sin zB^T]."""
    cols = [j for j, _ in periods]
    parts = [x[:, [j for j in range(x.shape[1]) if j not in cols]]]
    k = np.arange(1, harmonics + 1)
    for j, p in periods:
        parts += [np.cos(2 * np.pi * x[:, j:j + 1] * k / p), np.sin(2 * np.pi * x[:, j:j + 1] * k / p)]
    z = np.concatenate(parts, axis=1)
    return z if b is None else np.concatenate([np.cos(z @ b.T), np.sin(z @ b.T)], axis=1)


def _dense(p, h):
    return h @ p["kernel"] + p["bias"]


def _np_modified_mlp(p, z, depth):
    u, v = np.tanh(_dense(p["encoder_u"], z)), np.tanh(_dense(p["encoder_v"], z))
    h = z
    for k in range(depth):
        g = np.tanh(_dense(p[f"hidden_{k}"], h))
        h = (1 - g) * u + g * v
    return _dense(p["output"], h)


def _np_pirate(p, z, depth):
    u, v = np.tanh(_dense(p["encoder_u"], z)), np.tanh(_dense(p["encoder_v"], z))
    x = z
    for k in range(depth):
        blk = p[f"block_{k}"]
        f = np.tanh(_dense(blk["dense_1"], x))
        z1 = (1 - f) * u + f * v
        g = np.tanh(_dense(blk["dense_2"], z1))
        z2 = (1 - g) * u + g * v
        h = np.tanh(_dense(blk["dense_3"], z2))
        x = blk["alpha"] * h + (1 - blk["alpha"]) * x
    return _dense(p["output"], x)


def _init(net, d=2, seed=0):
    return net.init(jax.random.key(seed), jnp.zeros((1, d), jnp.float32))


def test_default_is_make_mlp_and_plain_mlp_has_its_params():
    kwargs = dict(width=8, depth=2, periods=((1, 2 * np.pi),), harmonics=2, fourier_features=4, fourier_scale=2.0)
    assert nets.make_net(**kwargs) == nets.make_mlp(**kwargs)
    assert type(nets.make_net(**kwargs)) is nets.MLP
    # PlainMLP (the "mlp" arch once RWF or the time embedding is on) has MLP's params without them
    plain = nets.PlainMLP(8, 2, 1, "tanh", ((1, 2 * np.pi),), 2, 4, 2.0)
    pa, pb = _init(nets.make_mlp(**kwargs)), _init(plain)
    assert jax.tree.structure(pa) == jax.tree.structure(pb)
    for a, b in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("rwf", [False, True])
def test_shapes_for_batches_and_single_points(arch, rwf):
    net = nets.make_net(arch, width=8, depth=2, out=3, rwf=rwf, time_period=3.0, fourier_features=4)
    params = _init(net)
    assert net.apply(params, jnp.asarray(X)).shape == (6, 3)
    assert net.apply(params, jnp.asarray(X[0])).shape == (3,)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("arch", ARCHS)
def test_rwf_at_init_is_the_plain_network_for_the_same_key(arch):
    kwargs = dict(width=32, depth=2, periods=((1, 2.0),), fourier_features=8)
    plain, fact = nets.make_net(arch, **kwargs), nets.make_net(arch, rwf=True, **kwargs)
    pp, pf = _init(plain, seed=3), _init(fact, seed=3)
    y = plain.apply(pp, jnp.asarray(X))
    np.testing.assert_allclose(fact.apply(pf, jnp.asarray(X)), y, rtol=1e-5, atol=1e-6)
    # every kernel: exp(s) v = W0 to one rounding, s ~ N(1, 0.1^2)
    for a, b in zip(jax.tree.leaves(_np_params(pf)), jax.tree.leaves(_np_params(pp)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    s = np.concatenate([np.ravel(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(pf)
                        if jax.tree_util.keystr(path).endswith("['s']")])
    # (at least 2 x 32 scales: mean within 4 standard errors, std within about 3 of its own)
    assert len(s) > 64 and abs(s.mean() - 1.0) < 4 * 0.1 / np.sqrt(len(s)) and 0.07 < s.std() < 0.13
    # a different key gives a different network (the equality above is not a constant)
    assert not np.allclose(fact.apply(_init(fact, seed=4), jnp.asarray(X)), y, atol=1e-3)


def test_rwf_gradients_are_the_chain_rule_of_w_equals_exp_s_v():
    """dL/dv = exp(s) * dL/dW and dL/ds_j = sum_i W_ij dL/dW_ij, with dL/dW from the plain layer."""
    plain, fact = nets.Dense(5, kernel_init="glorot"), nets.Dense(5, kernel_init="glorot", rwf=True, rwf_mu=0.5, rwf_sigma=0.3)
    x = jnp.asarray(X)
    pp, pf = plain.init(jax.random.key(1), x), fact.init(jax.random.key(1), x)
    loss = lambda net: lambda p: jnp.sum(jnp.sin(net.apply(p, x)))
    gw = np.asarray(jax.grad(loss(plain))(pp)["params"]["kernel"], np.float64)
    gf = jax.grad(loss(fact))(pf)["params"]["kernel"]
    s, w = np.asarray(pf["params"]["kernel"]["s"], np.float64), np.asarray(pp["params"]["kernel"], np.float64)
    np.testing.assert_allclose(gf["v"], np.exp(s) * gw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gf["s"], np.sum(w * gw, axis=0), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rwf", [False, True])
def test_modified_mlp_is_its_hand_written_forward_pass(rwf):
    periods, depth = ((1, 1.5),), 3
    net = nets.make_net("modified_mlp", width=16, depth=depth, periods=periods, harmonics=2,
                        fourier_features=8, fourier_scale=1.5, fourier_seed=2, rwf=rwf)
    params = _init(net)
    z = _np_embedding(X.astype(np.float64), periods, 2, nets.fourier_matrix(8, 5, 1.5, 2).astype(np.float64))
    expected = _np_modified_mlp(_np_params(params), z, depth)
    np.testing.assert_allclose(net.apply(params, jnp.asarray(X)), expected, rtol=1e-5, atol=1e-5)
    assert sorted(params["params"]) == ["encoder_u", "encoder_v", "hidden_0", "hidden_1", "hidden_2", "output"]


def test_pirate_net_starts_linear_in_its_embedding_and_is_its_forward_pass():
    depth = 2
    net = nets.make_net("pirate", width=16, depth=depth, fourier_features=8, fourier_scale=2.0)
    params = _init(net)
    p = _np_params(params)
    z = _np_embedding(X.astype(np.float64), (), 1, nets.fourier_matrix(8, 2, 2.0, 0).astype(np.float64))
    linear = z @ p["output"]["kernel"] + p["output"]["bias"]
    y0 = net.apply(params, jnp.asarray(X))
    # alpha = 0 in every block: u = E(x) W + b, whatever the blocks' weights
    assert all(p[f"block_{k}"]["alpha"] == 0.0 for k in range(depth))
    np.testing.assert_allclose(y0, linear, rtol=1e-5, atol=1e-5)
    noisy = jax.tree_util.tree_map_with_path(
        lambda path, a: a + 0.5 if "block_" in jax.tree_util.keystr(path) and "alpha" not in jax.tree_util.keystr(path)
        else a, params)
    np.testing.assert_allclose(net.apply(noisy, jnp.asarray(X)), y0, rtol=1e-6, atol=1e-6)
    # with alpha != 0 the blocks act, as the hand-written pass says
    for k, a in enumerate([0.3, -0.7]):
        noisy["params"][f"block_{k}"]["alpha"] = jnp.float32(a)
    y = net.apply(noisy, jnp.asarray(X))
    np.testing.assert_allclose(y, _np_pirate(_np_params(noisy), z, depth), rtol=1e-5, atol=1e-5)
    assert np.max(np.abs(y - y0)) > 1e-2


@pytest.mark.parametrize("arch", ARCHS)
def test_time_embedding_is_exactly_periodic(arch, x64):
    period = 0.7
    net = nets.make_net(arch, width=16, depth=2, time_period=period, time_column=0, harmonics=2,
                        fourier_features=8)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), _init(net))
    x = jnp.asarray(X, jnp.float64)
    shift = jnp.array([period, 0.0])
    y = net.apply(params, x)
    np.testing.assert_allclose(net.apply(params, x + 3 * shift), y, rtol=0, atol=1e-12)
    # not periodic in the other column, nor with another period in t
    assert np.max(np.abs(net.apply(params, x + jnp.array([0.0, period])) - y)) > 1e-3
    assert np.max(np.abs(net.apply(params, x + jnp.array([0.5 * period, 0.0])) - y)) > 1e-3


@pytest.mark.slow  # ~20 s; periodicity stays tested by default
def test_time_embedding_float32_and_trainable_period():
    net = nets.make_net("modified_mlp", width=16, depth=2, time_period=2.0, time_trainable=True,
                        periods=((1, 2 * np.pi),))
    params = _init(net)
    omega = params["params"]["embedding"]["time_frequency"]
    np.testing.assert_allclose(omega, np.pi, rtol=1e-7)
    x = jnp.asarray(X)
    y = net.apply(params, x)
    np.testing.assert_allclose(net.apply(params, x + jnp.array([2.0, 2 * np.pi])), y, atol=2e-5)
    # the period is learnable: a gradient reaches it, and a new frequency gives a new exact period
    g = jax.grad(lambda p: jnp.sum(net.apply(p, x) ** 2))(params)["params"]["embedding"]["time_frequency"]
    assert np.isfinite(g) and abs(g) > 1e-6
    params["params"]["embedding"]["time_frequency"] = jnp.float32(2 * np.pi / 1.25)
    y2 = net.apply(params, x)
    np.testing.assert_allclose(net.apply(params, x + jnp.array([1.25, 0.0])), y2, atol=2e-5)
    assert np.max(np.abs(net.apply(params, x + jnp.array([2.0, 0.0])) - y2)) > 1e-3
    # fixed period: no parameter
    assert "embedding" not in _init(nets.make_net("pirate", width=8, depth=1, time_period=2.0))["params"]


@pytest.mark.parametrize("kwargs,word", [
    ({"arch": "resnet"}, "arch"), ({"arch": "pirate", "depth": 0}, "depth"),
    ({"arch": "modified_mlp", "depth": 0}, "depth"), ({"width": 0}, "width"), ({"width": True}, "width"),
    ({"activation": "cube"}, "activation"), ({"fourier_scale": 0.0}, "fourier_scale"),
    ({"fourier_seed": 1.5}, "fourier_seed"), ({"rwf": 1}, "rwf"), ({"rwf_mu": float("nan")}, "rwf_mu"),
    ({"rwf_sigma": -0.1}, "rwf_sigma"), ({"rwf_sigma": "0.1"}, "rwf_sigma"), ({"time_period": 0.0}, "time_period"),
    ({"time_period": float("inf")}, "time_period"), ({"time_trainable": True}, "time_trainable"),
    ({"time_period": 1.0, "time_trainable": "yes"}, "time_trainable"), ({"time_column": -1}, "time_column"),
    ({"time_period": 1.0, "periods": ((0, 2.0),)}, "time_column"), ({"periods": ((1, -2.0),)}, "periods"),
])
def test_bad_options_raise_value_errors_naming_them(kwargs, word):
    with pytest.raises(ValueError, match=word):
        nets.make_net(**kwargs)


def test_time_column_beyond_the_points_is_an_error_at_init():
    net = nets.make_net("mlp", width=4, depth=1, time_period=1.0, time_column=2)
    with pytest.raises(ValueError, match="time_column"):
        _init(net, d=2)
