"""Ray tracer: redshift, area and luminosity distance against closed forms and invariances.

Every metric here is one family, homogeneous and diagonal in a "physical" chart y, seen in
a chart x linearly skewed by A and moving with velocity v (a shift vector when v != 0):

    ds^2 = -dt^2 + sum_i a_i(t)^2 dy_i^2,   a_i(t) = a_LCDM(t; Om)^w (1 + t)^p_i,   y = A^-1 x + v t

w = 1, p = 0: flat LambdaCDM (H0 = 1, today t = 0, a(0) = 1); w = 0: Bianchi I with power
laws (a_i(0) = 1); w = 0, p = 0: Minkowski. The observer sits at t = 0 at the origin, where
(for v = 0) the y-frame is the coordinate frame. Compiled functions are shared between tests
(the family's parameters are traced), because float64 ODE solves compile slowly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import raytrace as rt
from cosmology.likelihood import luminosity_distance_flat_lcdm

OBSERVER = np.zeros(4)
SKEW = np.array([[1.7, 0.4, 0.0], [-0.3, 0.6, 0.2], [0.5, 0.0, 2.2]])
BIANCHI_P = np.array([0.5, 0.7, 0.9])
N = 6  # rows per call: one compiled shape


def family(om=0.3, w=1.0, p=(0.0, 0.0, 0.0), a=np.eye(3), v=(0.0, 0.0, 0.0)):
    return {"om": om, "w": w, "p": np.asarray(p, float), "A": np.asarray(a, float), "v": np.asarray(v, float)}


def family_metric(params, x):
    om = params["om"]
    ol = 1.0 - om
    age = 2.0 / (3.0 * jnp.sqrt(ol)) * jnp.arcsinh(jnp.sqrt(ol / om))
    a_lcdm = (om / ol) ** (1.0 / 3.0) * jnp.sinh(1.5 * jnp.sqrt(ol) * (x[0] + age)) ** (2.0 / 3.0)
    # w = 0 selects 1 (not a_LCDM^0, which is NaN before the big bang, in Minkowski tests).
    scale = jnp.where(params["w"] == 0, 1.0, a_lcdm ** params["w"]) * (1.0 + x[0]) ** params["p"]
    jac = jnp.zeros((4, 4), x.dtype).at[0, 0].set(1.0)  # d(t, y)/d(t, x)
    jac = jac.at[1:, 0].set(params["v"]).at[1:, 1:].set(jnp.linalg.inv(params["A"]))
    physical = jnp.diag(jnp.concatenate([-jnp.ones(1, x.dtype), scale**2]))
    return jac.T @ physical @ jac


def _metric(params):
    return lambda x: family_metric(params, x)


@jax.jit
def d_lum(params, directions, redshifts):
    return rt.luminosity_distance(_metric(params), jnp.zeros(4, directions.dtype), directions, redshifts)


@jax.jit
def ray(params, direction, affine, velocity=np.array([1.0, 0.0, 0.0, 0.0])):
    """trace_ray with the observer's 4-velocity given (u = d_t, the default, when v = 0)."""
    return rt.trace_ray(_metric(params), jnp.zeros(4, direction.dtype), direction, affine,
                        observer_velocity=velocity)


def chart_direction(params, n_y):
    """The observer-frame direction in chart x of the physical direction n_y (chart y)."""
    g = family_metric(params, jnp.zeros(4))
    frame = rt.observer_frame(g, rt.comoving_velocity(g))
    vector = jnp.concatenate([jnp.zeros(1), jnp.asarray(params["A"]) @ n_y])
    return np.asarray(frame[1:] @ g @ vector)


def bianchi_distance(z, axis, p=BIANCHI_P):
    """Closed-form d_L along principal axis ``axis`` of the power-law Bianchi I metric.

    With tau = 1 + t: 1 + z = tau^-p_a, and the transverse Jacobi map along axis b is
    D_b = a_b(tau) int_tau^1 a_a / a_b^2 dtau' = tau^p_b (1 - tau^(q + 1)) / (q + 1), q = p_a - 2 p_b.
    """
    tau = (1.0 + z) ** (-1.0 / p[axis])
    d = [tau ** p[b] * (1.0 - tau ** (p[axis] - 2 * p[b] + 1)) / (p[axis] - 2 * p[b] + 1)
         for b in range(3) if b != axis]
    return (1.0 + z) ** 2 * np.sqrt(d[0] * d[1])


def unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def test_flat_lcdm_matches_the_friedmann_integral(x64):
    directions = unit(np.random.default_rng(0).normal(size=(N, 3)))
    z = np.array([0.01, 0.1, 0.5, 1.0, 1.7, 2.3])
    out = np.asarray(d_lum(family(), directions, z))
    np.testing.assert_allclose(out, luminosity_distance_flat_lcdm(z, 0.3), rtol=1e-6)


def test_distances_do_not_depend_on_the_spatial_chart(x64):
    rng = np.random.default_rng(1)
    n_y = unit(rng.normal(size=(N, 3)))
    z = np.array([0.02, 0.2, 0.6, 1.1, 1.6, 2.2])
    for base in (family(), family(w=0.0, p=BIANCHI_P)):  # isotropic and anisotropic
        reference = np.asarray(d_lum(base, n_y, z))
        for a in (np.diag([2.0, 0.5, 3.0]), SKEW):
            chart = dict(base, A=a)
            n_x = np.stack([chart_direction(chart, n) for n in n_y])
            np.testing.assert_allclose(np.linalg.norm(n_x, axis=1), 1.0, rtol=1e-12)
            np.testing.assert_allclose(np.asarray(d_lum(chart, n_x, z)), reference, rtol=1e-8)


def test_minkowski_in_a_skewed_chart_has_no_redshift_and_euclidean_area_distance(x64):
    params = family(w=0.0, a=SKEW)
    affine = np.array([0.1, 0.7, 2.0, 5.0])
    for n in unit([[1.0, 2.0, -0.5], [0.0, 0.0, 1.0]]):
        sample = ray(params, n, affine)
        np.testing.assert_allclose(sample.redshift, 0.0, atol=1e-12)
        np.testing.assert_allclose(sample.area_distance, affine, rtol=1e-10)
        assert np.all(np.asarray(sample.null_violation) < 1e-12)
        # The ray is the straight line of physical length lambda, back in time by lambda.
        physical = np.linalg.solve(SKEW, np.asarray(sample.x[:, 1:]).T).T
        np.testing.assert_allclose(np.linalg.norm(physical, axis=1), affine, rtol=1e-10)
        np.testing.assert_allclose(sample.x[:, 0], -affine, rtol=1e-10)


def test_minkowski_with_a_shift_keeps_comoving_observers_at_rest(x64):
    # y = A^-1 x + v t: the comoving observers all move with v, so they are at rest with
    # respect to each other (z = 0) and measure Euclidean distances in their common frame.
    params = family(w=0.0, a=SKEW, v=(0.3, -0.2, 0.4))
    g = family_metric(params, jnp.zeros(4))
    assert np.linalg.norm(g[0, 1:]) > 0.1  # a real shift vector
    u = rt.comoving_velocity(g)
    sample = ray(params, unit([0.2, 1.0, -0.7]), np.array([0.1, 0.7, 2.0, 5.0]), u)
    np.testing.assert_allclose(sample.redshift, 0.0, atol=1e-12)
    np.testing.assert_allclose(sample.area_distance, sample.affine, rtol=1e-10)
    assert np.all(np.asarray(sample.null_violation) < 1e-12)


def test_a_moving_observer_sees_the_doppler_shift(x64):
    # Minkowski, sources at rest, observer moving with speed 0.6 along x:
    # 1 + z = gamma (1 - v n_x) for a source seen in direction n (observer frame).
    gamma = 1.25
    for n, expected in (([1, 0, 0], gamma * 0.4), ([-1, 0, 0], gamma * 1.6), ([0, 1, 0], gamma)):
        sample = ray(family(w=0.0), np.asarray(n, float), np.array([0.5, 1.0]), np.array([1.0, 0.6, 0.0, 0.0]))
        np.testing.assert_allclose(sample.redshift, expected - 1.0, atol=1e-12)


def test_bianchi_principal_axes_match_the_closed_form(x64):
    params = family(w=0.0, p=BIANCHI_P)
    axes = np.repeat(np.eye(3), 2, axis=0)
    signs = np.array([1, -1, 1, -1, 1, -1])[:, None]
    z = np.array([0.3, 1.5, 0.3, 1.5, 0.3, 1.5])
    out = np.asarray(d_lum(params, axes * signs, z))
    expected = np.array([bianchi_distance(z[i], i // 2) for i in range(N)])
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # The anisotropy is visible: the axes differ by far more than the tolerance.
    assert np.ptp(out[::2]) / out[0] > 0.05


def test_unreached_redshifts_give_nan(x64):
    # Minkowski: the comoving sources are never redshifted.
    out = d_lum(family(w=0.0), unit(np.ones((N, 3))), np.full(N, 0.5))
    assert np.all(np.isnan(out))


def test_photon_stays_null_and_past_directed(x64):
    for params in (family(a=SKEW), family(w=0.0, p=BIANCHI_P, a=SKEW)):
        sample = ray(params, unit([0.3, -0.8, 0.5]), np.array([0.05, 0.2, 0.3, 0.4, 0.5]))
        assert np.all(np.asarray(sample.null_violation) < 1e-10)
        assert np.all(np.asarray(sample.k[:, 0]) < 0)
        assert np.all(np.diff(np.asarray(sample.redshift)) > 0)


def test_ray_equations_are_the_geodesic_and_deviation_equations(x64):
    # Against the geometry engine's Christoffel symbols and a jvp of the geodesic acceleration.
    metric = _metric(family(w=0.0, p=BIANCHI_P, a=SKEW, v=(0.1, 0.0, -0.2)))
    rng = np.random.default_rng(5)
    state = rt.RayState(x=np.array([-0.3, 0.2, -0.1, 0.4]), k=rng.normal(size=4),
                        xi=rng.normal(size=(2, 4)), eta=rng.normal(size=(2, 4)))
    rate = rt.ray_equations(metric, "affine")(0.0, state, None)
    acceleration = lambda x, k: rt.geodesic_acceleration(metric, x, k)
    np.testing.assert_allclose(rate.k, acceleration(state.x, state.k), rtol=1e-12)
    for a in range(2):
        deviation = jax.jvp(acceleration, (state.x, state.k), (state.xi[a], state.eta[a]))[1]
        np.testing.assert_allclose(rate.eta[a], deviation, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rate.x, state.k)
    np.testing.assert_allclose(rate.xi, state.eta)
    # In s, every rate is divided by (1 + z)^2 = (u.k)^2.
    scaled = rt.ray_equations(metric, "distance")(0.0, state, None)
    one_plus_z = 1.0 + rt.redshift(metric(state.x), state.k)
    np.testing.assert_allclose(scaled.eta * one_plus_z**2, rate.eta, rtol=1e-12)


@pytest.mark.slow  # 37 s of float64 ray compilation: with -m slow, to keep the default suite near 10 minutes
def test_gradient_through_grouped_rays_matches_finite_differences(x64):
    # Rows 0-2 share a direction (one ray, three redshifts); rows 3-5 have one each.
    directions = unit([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 1], [1, -1, 0], [0, 0, -1]])
    z = np.array([0.05, 0.8, 2.0, 0.4, 1.2, 0.02])
    plan = rt.plan_rays(directions, z, batch_size=2)
    assert plan.directions.shape[0] == 4 and plan.redshifts.shape == (4, 3)

    def total(om):
        d = rt.luminosity_distance_by_ray(_metric(family(om=om)), jnp.zeros(4), plan)
        return jnp.sum(d * jnp.arange(1.0, N + 1.0)), d

    value_and_grad = jax.jit(jax.value_and_grad(total, has_aux=True))
    (_, d), grad = value_and_grad(0.3)
    np.testing.assert_allclose(d, luminosity_distance_flat_lcdm(z, 0.3), rtol=1e-6)
    np.testing.assert_allclose(d, d_lum(family(), directions, z), rtol=1e-9)
    h = 1e-5
    finite = (value_and_grad(0.3 + h)[0][0] - value_and_grad(0.3 - h)[0][0]) / (2 * h)
    friedmann = np.arange(1, N + 1) @ (luminosity_distance_flat_lcdm(z, 0.3 + h)
                                       - luminosity_distance_flat_lcdm(z, 0.3 - h)) / (2 * h)
    assert np.isfinite(grad)
    np.testing.assert_allclose(grad, finite, rtol=1e-6)
    np.testing.assert_allclose(grad, friedmann, rtol=1e-6)


def test_float32_distances():
    directions = unit(np.random.default_rng(3).normal(size=(N, 3))).astype(np.float32)
    z = np.array([0.01, 0.1, 0.5, 1.0, 1.7, 2.3], np.float32)
    lcdm = jax.tree_util.tree_map(np.float32, family())
    out = d_lum(lcdm, directions, z)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, luminosity_distance_flat_lcdm(z.astype(float), 0.3), rtol=1e-4)


@pytest.mark.slow
def test_sky_grid_follows_exact_tracing_on_an_anisotropic_metric():
    directions = unit(np.random.default_rng(3).normal(size=(N, 3))).astype(np.float32)
    z = np.array([0.01, 0.1, 0.5, 1.0, 1.7, 2.3], np.float32)
    # The sky grid on a strongly anisotropic metric (d_L differs by ~10% between axes):
    # ~1e-4 from exact tracing with 100 rays, 6e-4 at z = 2.3 where the pattern is sharpest.
    bianchi = jax.tree_util.tree_map(np.float32, family(w=0.0, p=BIANCHI_P, a=SKEW))
    grid = rt.sky_grid(directions, z, n_rays=100, n_redshifts=12)
    approx = jax.jit(lambda p: rt.luminosity_distance_sky_grid(_metric(p), jnp.zeros(4), grid))(bianchi)
    exact = d_lum(bianchi, directions, z)
    np.testing.assert_allclose(approx, exact, rtol=1e-3)


def test_sky_interpolation_is_exact_for_quadrupoles():
    nodes = rt.fibonacci_sphere(30)
    points = unit(np.random.default_rng(4).normal(size=(50, 3)))
    field = lambda n: 1.0 + 0.3 * n[:, 0] - 0.2 * n[:, 1] * n[:, 2] + 0.5 * n[:, 2] ** 2
    weights = rt.sphere_interpolation_weights(nodes, points)
    np.testing.assert_allclose(weights @ field(nodes), field(points), rtol=1e-10)
    np.testing.assert_allclose(rt.sphere_interpolation_weights(nodes, nodes), np.eye(30), atol=1e-9)


def test_bad_input_raises_value_error():
    metric = lambda x: jnp.diag(jnp.array([-1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="directions"):
        rt.luminosity_distance(metric, OBSERVER, np.ones(3), np.ones(1))
    with pytest.raises(ValueError, match="redshifts"):
        rt.luminosity_distance(metric, OBSERVER, np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="observer"):
        rt.luminosity_distance(metric, np.zeros(3), np.ones((1, 3)), np.ones(1))
    with pytest.raises(ValueError, match="observer_velocity"):
        rt.luminosity_distance(metric, OBSERVER, np.ones((1, 3)), np.ones(1), observer_velocity=np.ones(2))
    with pytest.raises(ValueError, match="parameter"):
        rt.ray_equations(metric, "time")
    with pytest.raises(ValueError, match="redshifts must be > 0"):
        rt.sky_grid(np.ones((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="share a label"):
        rt.plan_rays(np.eye(3)[:2], np.ones(2), groups=["a", "a"])


@pytest.mark.slow
def test_gradient_with_respect_to_network_parameters(x64):
    from cosmology import metric as cm

    model = cm.GeneralMetric(width=8, depth=2, out_scale=0.1, background=cm.Background("lcdm", 0.3))
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), cm.init_params(model, jax.random.PRNGKey(0)))
    directions, z = unit([[1.0, 0.5, 0.0], [0.0, -1.0, 0.3]]), np.array([0.3, 1.2])

    def loss(p, bound=True):
        metric = cm.bind(model, p) if bound else (lambda x: model.apply(p, x))
        return jnp.sum(jnp.log(rt.luminosity_distance(metric, jnp.zeros(4), directions, z)))

    value, grad = jax.jit(jax.value_and_grad(loss))(params)
    # The network's own jet and nested forward mode on the plain function agree.
    np.testing.assert_allclose(jax.jit(lambda p: loss(p, bound=False))(params), value, rtol=1e-10)
    leaves = jax.tree_util.tree_leaves(grad)
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    tangent = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(params),
        [jax.random.normal(k, leaf.shape, jnp.float64) for k, leaf in zip(keys, leaves)])
    h = 1e-5
    shifted = lambda s: jax.tree_util.tree_map(lambda p, t: p + s * t, params, tangent)
    value_fn = jax.jit(loss)
    finite = (value_fn(shifted(h)) - value_fn(shifted(-h))) / (2 * h)
    directional = sum(jnp.vdot(g, t) for g, t in zip(leaves, jax.tree_util.tree_leaves(tangent)))
    np.testing.assert_allclose(directional, finite, rtol=1e-6)
