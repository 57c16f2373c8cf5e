"""The PINN MLP of pinnopt.nets: embeddings, Fourier features, options."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnopt import nets


def test_periodic_embedding_columns_and_values():
    x = jnp.array([[0.5, 1.0, 2.0]])
    z = nets.periodic_embedding(x, ((1, 2 * np.pi), (2, 4.0)), harmonics=2)
    # kept column 0, then cos/sin of x1 (k = 1, 2), then cos/sin of 2 pi k x2 / 4
    expected = [0.5, np.cos(1.0), np.cos(2.0), np.sin(1.0), np.sin(2.0),
                np.cos(np.pi), np.cos(2 * np.pi), np.sin(np.pi), np.sin(2 * np.pi)]
    np.testing.assert_allclose(z[0], expected, atol=1e-6)
    assert nets.periodic_embedding(x, ()) is x


def test_fourier_matrix_is_fixed_by_its_seed_and_not_a_parameter():
    b1, b2 = nets.fourier_matrix(16, 3, 2.0, seed=0), nets.fourier_matrix(16, 3, 2.0, seed=0)
    np.testing.assert_array_equal(b1, b2)
    assert b1.dtype == np.float32 and abs(b1.std() - 2.0) < 0.7
    assert not np.array_equal(b1, nets.fourier_matrix(16, 3, 2.0, seed=1))
    z = jnp.ones((4, 3))
    f = nets.fourier_features(z, b1)
    assert f.shape == (4, 32)
    np.testing.assert_allclose(f[:, :16] ** 2 + f[:, 16:] ** 2, 1.0, atol=1e-5)
    net = nets.make_mlp(width=8, depth=2, fourier_features=16)
    params = net.init(jax.random.key(0), jnp.zeros((1, 2)))
    shapes = [p.shape for p in jax.tree.leaves(params)]
    # the first Dense layer sees 2 x 16 features; B itself is not among the params
    assert (32, 8) in shapes and all(s != (16, 2) for s in shapes)
    assert sum(int(np.prod(s)) for s in shapes) == 32 * 8 + 8 + 8 * 8 + 8 + 8 + 1


@pytest.mark.parametrize("act", sorted(nets.ACTIVATIONS))
def test_mlp_shapes_for_batches_and_single_points(act):
    net = nets.make_mlp(width=8, depth=3, out=2, activation=act, periods=((1, 1.0),))
    params = net.init(jax.random.key(0), jnp.zeros((1, 2)))
    assert net.apply(params, jnp.ones((5, 2))).shape == (5, 2)
    assert net.apply(params, jnp.ones((2,))).shape == (2,)
    # period 1 in column 1
    a = net.apply(params, jnp.array([0.3, 0.2]))
    b = net.apply(params, jnp.array([0.3, 3.2]))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_depth_zero_is_linear_in_the_embedding():
    net = nets.make_mlp(depth=0)
    params = net.init(jax.random.key(0), jnp.zeros((1, 2)))
    x = jnp.array([[1.0, 2.0], [3.0, -1.0]])
    y = net.apply(params, x)
    np.testing.assert_allclose(y[0] + y[1], net.apply(params, x[0] + x[1]) + net.apply(params, jnp.zeros(2)),
                               rtol=1e-5)


@pytest.mark.parametrize("kwargs,word", [({"width": 0}, "width"), ({"depth": -1}, "depth"),
                                         ({"harmonics": 0}, "harmonics"), ({"activation": "cube"}, "activation"),
                                         ({"fourier_scale": -1.0}, "fourier_scale"),
                                         ({"periods": ((0, 0.0),)}, "periods"), ({"width": 2.5}, "width")])
def test_bad_options_raise_value_errors_naming_them(kwargs, word):
    with pytest.raises(ValueError, match=word):
        nets.make_mlp(**kwargs)
