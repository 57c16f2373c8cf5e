"""pinnopt.pde: operators against closed forms and against jax.hessian, fields, relative L2, samplers."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from pinnopt import pde
from pinnopt.nets import make_mlp

PI = np.pi
METHODS = pde.METHODS
# the samplers compiled once each (n static): eager dispatch op by op costs seconds here
in_box, on_box, in_disk, on_circle = (jax.jit(s, static_argnums=1)
                                      for s in (pde.in_box, pde.on_box, pde.in_disk, pde.on_circle))


def grid(d, n=7, low=-0.9, high=0.9, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(low, high, (n, d)), jnp.float32)


def compiled(fn):
    """fn() as one compiled program: op-by-op dispatch of vmapped jvps is what makes eager slow."""
    return jax.jit(fn)()


def close(got, want, tol=2e-5):
    """Equal to float32 rounding relative to the size of ``want``."""
    want = np.asarray(want)
    np.testing.assert_allclose(np.asarray(got), want, rtol=tol, atol=tol * max(1.0, float(np.abs(want).max())))


# ---------------------------------------------------------------------------------------------
# Closed forms, every method
@pytest.mark.parametrize("method", METHODS)
def test_sine_product_in_2d(method):
    f = lambda x: jnp.sin(PI * x[0]) * jnp.sin(PI * x[1])
    X = grid(2)
    x, y = X[:, 0], X[:, 1]
    u = jnp.sin(PI * x) * jnp.sin(PI * y)
    got = compiled(lambda: (pde.gradient(f, X, method), pde.derivative(f, X, 1, method),
                            pde.second_derivative(f, X, 0, method), pde.second_derivative(f, X, -1, method),
                            pde.laplacian(f, X, method=method), pde.laplacian(f, X, axes=(1,), method=method)))
    close(got[0], jnp.stack([PI * jnp.cos(PI * x) * jnp.sin(PI * y), PI * jnp.sin(PI * x) * jnp.cos(PI * y)], -1))
    close(got[1], PI * jnp.sin(PI * x) * jnp.cos(PI * y))
    close(got[2], -PI**2 * u)
    close(got[3], -PI**2 * u)  # negative axes count from the end
    close(got[4], -2 * PI**2 * u)
    close(got[5], -PI**2 * u)


@pytest.mark.parametrize("method", METHODS)
def test_polynomials_in_1d_and_2d(method):
    X1, X = grid(1), grid(2)
    quartic = lambda x: x[0] ** 4
    f = lambda p: p[0] ** 3 * p[1] + 2 * p[1] ** 2
    got = compiled(lambda: (pde.second_derivative(quartic, X1, 0, method), pde.laplacian(quartic, X1, method=method),
                            pde.gradient(f, X, method), pde.second_derivative(f, X, 1, method),
                            pde.laplacian(f, X, method=method)))
    x, y = X[:, 0], X[:, 1]
    close(got[0], 12 * X1[:, 0] ** 2)
    close(got[1], 12 * X1[:, 0] ** 2)
    close(got[2], jnp.stack([3 * x**2 * y, x**3 + 4 * y], -1))
    close(got[3], jnp.full_like(x, 4.0))
    close(got[4], 6 * x * y + 4)


@pytest.mark.parametrize("method", METHODS)
def test_three_dimensions_and_a_subset_of_axes(method):
    f = lambda p: jnp.exp(p[0]) * jnp.sin(p[1]) * p[2] ** 2  # u_xx = u, u_yy = -u, u_zz = 2 e^x sin y
    X = grid(3)
    u = jax.vmap(f)(X)
    base = jnp.exp(X[:, 0]) * jnp.sin(X[:, 1])
    got = compiled(lambda: (pde.laplacian(f, X, method=method), pde.laplacian(f, X, axes=(1, 2), method=method),
                            pde.laplacian(f, X, axes=[2, 0], method=method), pde.derivative(f, X, 2, method)))
    close(got[0], 2 * base)
    close(got[1], -u + 2 * base)
    close(got[2], u + 2 * base)
    close(got[3], 2 * base * X[:, 2])


@pytest.mark.parametrize("method", METHODS)
def test_time_dependent_heat_solutions(method):
    # u = exp(-pi^2 t) sin(pi x) solves u_t = u_xx; in (t, x, y) exp(-2 pi^2 t) sin(pi x) sin(pi y)
    # solves u_t = Laplace_xy(u): time is column 0, the spatial Laplacian skips it.
    f = lambda p: jnp.exp(-PI**2 * p[0]) * jnp.sin(PI * p[1])
    T = jnp.abs(grid(2))
    g = lambda p: jnp.exp(-2 * PI**2 * p[0]) * jnp.sin(PI * p[1]) * jnp.sin(PI * p[2])
    T3 = jnp.abs(grid(3))
    u, ut, uxx, gt, lap_xy, lap = compiled(lambda: (
        pde.values(f, T), pde.time_derivative(f, T, method), pde.second_derivative(f, T, 1, method),
        pde.time_derivative(g, T3, method), pde.laplacian(g, T3, axes=(1, 2), method=method),
        pde.laplacian(g, T3, method=method)))
    close(ut, -PI**2 * u)
    close(ut - uxx, jnp.zeros_like(u), tol=1e-4)
    close(gt, lap_xy)
    assert float(jnp.max(jnp.abs(lap - lap_xy))) > 1.0  # with u_tt it is another operator


# ---------------------------------------------------------------------------------------------
# The fast paths are the jax.hessian reference, values and parameter gradients
@pytest.mark.parametrize("d", [2, 3])  # 1-D: the closed forms above
def test_fast_paths_equal_the_hessian_reference_on_a_random_mlp(d):
    init, u = pde.mlp_field(d, width=8, depth=2)
    params = init(jax.random.key(d))
    X = grid(d, n=8, seed=d)

    @jax.jit
    def ops(params):
        f = functools.partial(u, params)
        out = {}
        for m in METHODS:
            out[m] = (pde.laplacian(f, X, method=m), pde.second_derivative(f, X, d - 1, m),
                      pde.gradient(f, X, m))  # derivative() is a column of gradient() on every path
        # the reference exactly as pde_toy computed it before: the trace of jax.hessian
        out["trace"] = jax.vmap(lambda x: jnp.trace(jax.hessian(f)(x)))(X)
        return out

    out = ops(params)
    close(out["reverse"][0], out["trace"], tol=1e-5)
    for m in ("jvp", "jet"):
        for got, want in zip(out[m], out["reverse"]):
            close(got, want, tol=1e-5)


def test_parameter_gradients_of_a_residual_loss_agree():
    init, u = pde.mlp_field(2, width=8, depth=2)
    params = init(jax.random.key(0))
    X = grid(2, n=8)

    def loss(params, method):
        f = functools.partial(u, params)
        return jnp.mean((pde.laplacian(f, X, method=method) - 1.0) ** 2)

    # jvp, the default, against jax.hessian (jet's gradients run in bench_derivatives.py)
    grads = jax.jit(lambda p: {m: jax.grad(loss)(p, m) for m in ("jvp", "reverse")})(params)
    ref = jax.tree_util.tree_leaves(grads["reverse"])
    for m in ("jvp",):
        for got, want in zip(jax.tree_util.tree_leaves(grads[m]), ref):
            close(got, want, tol=1e-4)


# ---------------------------------------------------------------------------------------------
# Fields and relative L2
def test_scalar_field_values_and_mlp_field():
    module = make_mlp(8, 2, 1, "tanh")
    params = module.init(jax.random.key(0), jnp.zeros((1, 2)))
    u = pde.scalar_field(module)
    X = grid(2)
    assert u(params, X[0]).shape == ()
    np.testing.assert_allclose(jax.jit(lambda p: pde.values(functools.partial(u, p), X))(params),
                               module.apply(params, X)[:, 0], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="x must be one point"):
        u(params, X)
    two = make_mlp(8, 1, 2, "tanh")
    with pytest.raises(ValueError, match="module must map one point to shape"):
        jax.eval_shape(pde.scalar_field(two), jax.eval_shape(two.init, jax.random.key(0), jnp.zeros((1, 2))), X[0])
    with pytest.raises(ValueError, match="module"):
        pde.scalar_field(lambda x: x)

    init, v = pde.mlp_field(3, width=8, depth=1, fourier_features=4, periods=((2, 1.0),))
    p = jax.jit(init)(jax.random.key(1))
    assert jax.tree_util.tree_leaves(p)[0].dtype == jnp.float32
    assert jax.jit(lambda p: pde.values(functools.partial(v, p), grid(3)))(p).shape == (7,)
    assert isinstance(pde.mlp_field(1), pde.Field)
    for kwargs, word in [({"d": 0}, "d must"), ({"d": 2.0}, "d must"), ({"d": 2, "out": 2}, "out"),
                         ({"d": 2, "periods": ((2, 1.0),)}, "periods"), ({"d": 2, "width": 0}, "width"),
                         ({"d": 2, "activation": "cubic"}, "activation")]:
        with pytest.raises(ValueError, match=word):
            pde.mlp_field(**kwargs)


def test_relative_l2():
    ref = jnp.asarray([1.0, -2.0, 3.0])
    assert float(pde.relative_l2(ref, ref)) == 0.0
    np.testing.assert_allclose(float(pde.relative_l2(1.5 * ref, ref)), 0.5, rtol=1e-6)
    np.testing.assert_allclose(float(pde.relative_l2(jnp.zeros(3), ref)), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="pred and ref"):
        pde.relative_l2(ref[:, None], ref)  # would broadcast to (3, 3)


# ---------------------------------------------------------------------------------------------
# Samplers
def test_in_box_is_uniform_in_the_box_and_jittable():
    lower, upper = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.5, 5.0])
    X = np.asarray(in_box(jax.random.key(0), 20000, lower, upper))
    assert X.shape == (20000, 3) and X.dtype == np.float32
    assert np.all(X >= lower) and np.all(X < upper)
    for j in range(3):  # each coordinate uniform on its side
        assert stats.kstest((X[:, j] - lower[j]) / (upper[j] - lower[j]), "uniform").pvalue > 1e-3
    assert not np.allclose(X, in_box(jax.random.key(1), 20000, lower, upper))


@pytest.mark.parametrize("sides", [(1.0, 3.0), (1.0, 2.0, 3.0)])
def test_on_box_lies_on_the_boundary_with_faces_by_area(sides):
    n, sides = 40000, np.asarray(sides)
    lower = -0.5 * np.ones_like(sides)
    upper = lower + sides
    X = np.asarray(on_box(jax.random.key(2), n, lower, upper))
    on_low, on_high = X == lower.astype(np.float32), X == upper.astype(np.float32)
    assert np.all((on_low | on_high).sum(axis=1) >= 1)  # every point on a face, exactly
    assert np.all(X >= lower) and np.all(X <= upper)
    area = np.array([np.prod(np.delete(sides, i)) for i in range(len(sides))])
    for i, p in enumerate(area / area.sum()):
        for hit in (on_low[:, i], on_high[:, i]):  # each face of axis i: p / 2
            assert abs(hit.mean() - p / 2) < 4 * np.sqrt(p / 2 / n)
    # uniform on a face: the free coordinates of the points on x_0 = lower_0
    face = X[on_low[:, 0]]
    for j in range(1, len(sides)):
        assert stats.kstest((face[:, j] - lower[j]) / sides[j], "uniform").pvalue > 1e-3


def test_on_box_in_one_dimension_is_the_two_end_points():
    X = np.asarray(on_box(jax.random.key(3), 4000, np.array([2.0]), np.array([5.0])))
    assert set(np.unique(X)) == {2.0, 5.0}
    assert abs(np.mean(X == 2.0) - 0.5) < 4 * 0.5 / np.sqrt(4000)


def test_in_disk_is_uniform_by_area_and_on_circle_by_arc_length():
    n, center, radius = 20000, np.array([1.0, -2.0]), 3.0
    X = np.asarray(in_disk(jax.random.key(4), n, center, radius)) - center
    r2 = np.sum(X**2, axis=1) / radius**2
    assert r2.max() <= 1.0 + 1e-6
    assert stats.kstest(r2, "uniform").pvalue > 1e-3  # r^2 uniform <=> uniform by area
    assert stats.kstest(np.arctan2(X[:, 1], X[:, 0]) / (2 * PI) + 0.5, "uniform").pvalue > 1e-3
    C = np.asarray(on_circle(jax.random.key(5), n, center, radius)) - center
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), radius, rtol=1e-6)
    assert stats.kstest(np.arctan2(C[:, 1], C[:, 0]) / (2 * PI) + 0.5, "uniform").pvalue > 1e-3
    # traced center and radius are accepted (values unchecked), n is static
    traced = jax.jit(lambda k, c, r: pde.in_disk(k, 8, c, r))(jax.random.key(0), jnp.zeros(2), jnp.float32(2.0))
    assert traced.shape == (8, 2) and float(jnp.max(jnp.linalg.norm(traced, axis=1))) <= 2.0 + 1e-6


# ---------------------------------------------------------------------------------------------
# Bad arguments
def test_operators_reject_bad_arguments_by_name():
    f = lambda x: jnp.sum(x**2)
    X = grid(2)
    with pytest.raises(ValueError, match="method"):
        pde.laplacian(f, X, method="hessian")
    with pytest.raises(ValueError, match="points"):
        pde.gradient(f, X[0])
    with pytest.raises(ValueError, match="points"):
        pde.laplacian(f, jnp.ones((3, 2), jnp.int32))
    with pytest.raises(ValueError, match="axis"):
        pde.derivative(f, X, 2)
    with pytest.raises(ValueError, match="axis"):
        pde.second_derivative(f, X, 0.5)
    for axes in [(), (0, 0), (0, 3), 1]:
        with pytest.raises(ValueError, match="axes"):
            pde.laplacian(f, X, axes=axes)
    with pytest.raises(ValueError, match="f must map one point"):
        pde.laplacian(lambda x: x[:1] ** 2, X)  # a network output (1,) without [0]
    with pytest.raises(ValueError, match="points"):
        pde.values(f, X[0])


def test_samplers_reject_bad_arguments_by_name():
    key = jax.random.key(0)
    cases = [(lambda: pde.in_box(key, 0, [0.0], [1.0]), "n must"),
             (lambda: pde.in_box(key, 2.0, [0.0], [1.0]), "n must"),
             (lambda: pde.in_box(key, 4, [0.0, 0.0], [1.0]), "lower and upper"),
             (lambda: pde.in_box(key, 4, 0.0, 1.0), "lower and upper"),
             (lambda: pde.on_box(key, 4, [0.0, 1.0], [1.0, 1.0]), "lower must be < upper"),
             (lambda: pde.on_box(key, 4, [0.0, -np.inf], [1.0, 1.0]), "lower must be finite"),
             (lambda: pde.in_disk(key, 4, radius=0.0), "radius"),
             (lambda: pde.in_disk(key, 4, radius=[1.0, 2.0]), "radius"),
             (lambda: pde.on_circle(key, 4, center=[0.0, 0.0, 0.0]), "center"),
             (lambda: pde.on_circle(key, 4, center=[np.nan, 0.0]), "center"),
             (lambda: pde.on_circle(key, -1), "n must")]
    for call, word in cases:
        with pytest.raises(ValueError, match=word):
            call()
