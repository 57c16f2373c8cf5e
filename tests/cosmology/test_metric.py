"""Metric networks: guaranteed signature, synchronous geodesics, backgrounds, fast jets."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import geometry as geo
from cosmology import kinematics as kin
from cosmology import metric

KEY = jax.random.PRNGKey(0)


def signature_counts(g):
    """(number of negative, number of positive) eigenvalues per matrix, in float64."""
    values = np.linalg.eigvalsh(np.asarray(g, np.float64))
    return np.sum(values < 0, axis=-1), np.sum(values > 0, axis=-1)


def domain_points(key, n, dtype=jnp.float32):
    """t in [-0.6, 0.3] (after the matter big bang at -2/3), |x_i| <= 3."""
    return jax.random.uniform(key, (n, 4), dtype, jnp.array([-0.6, -3, -3, -3]), jnp.array([0.3, 3, 3, 3]))


def blow_up(params, factor):
    """Every parameter multiplied: outputs far outside the soft bounds."""
    return jax.tree.map(lambda p: p * factor, params)


LCDM = metric.Background("lcdm", 0.3)
MODELS = {
    "general": metric.GeneralMetric(width=16, depth=2, out_scale=1.0, background=LCDM),
    "synchronous": metric.SynchronousMetric(width=16, depth=2, out_scale=1.0, background=LCDM),
}


@pytest.fixture(scope="module")
def initial():
    """Initial parameters of each shared model (one init compilation per model per session)."""
    return {name: metric.init_params(model, KEY) for name, model in MODELS.items()}


# ----------------------------------------------------------------------------- backgrounds


@pytest.mark.parametrize("kind", ["matter", "lcdm", "de_sitter"])
def test_backgrounds_are_normalised_and_solve_friedmann(kind):
    bg = metric.Background(kind, omega_m=0.3)
    assert abs(float(bg.scale_factor(0.0)) - 1) < 1e-6 and abs(float(bg.hubble_rate(0.0)) - 1) < 1e-6
    omega_m = {"matter": 1.0, "lcdm": 0.3, "de_sitter": 0.0}[kind]
    for z in (0.0, 0.5, 1.0, 2.3):
        t = bg.time_at_redshift(z)
        a = float(bg.scale_factor(t))
        assert abs(a - 1 / (1 + z)) < 1e-5 * a
        h = float(jax.grad(lambda s: jnp.log(bg.scale_factor(s)))(t))
        assert abs(h - float(bg.hubble_rate(t))) < 1e-4 * h
        assert abs(h**2 - (omega_m / a**3 + 1 - omega_m)) < 1e-4 * h**2  # H^2 = Om a^-3 + OL
    if kind != "de_sitter":
        assert float(bg.scale_factor(-bg.age + 1e-6)) < 1e-3  # the big bang


def test_background_and_bounds_validation():
    with pytest.raises(ValueError, match="kind"):
        metric.Background("radiation")
    with pytest.raises(ValueError, match="omega_m"):
        metric.Background("lcdm", omega_m=1.2)
    with pytest.raises(ValueError, match="shift"):
        metric.Bounds(shift=0.0)
    with pytest.raises(ValueError, match="redshift"):
        metric.Background("static").time_at_redshift(1.0)


def test_fast_sincos_matches_sin_and_cos_in_float32():
    z = np.linspace(-200, 200, 400_001).astype(np.float32)
    s, c = jax.jit(metric.sincos)(jnp.asarray(z))
    reference = z.astype(np.float64)
    assert np.max(np.abs(np.asarray(s) - np.sin(reference))) < 1e-6
    assert np.max(np.abs(np.asarray(c) - np.cos(reference))) < 1e-6
    ds = jax.grad(lambda v: metric.sincos(v)[0])(jnp.float32(0.7))
    assert abs(float(ds) - np.cos(0.7)) < 1e-6


# ----------------------------------------------------------------------------- signature


@pytest.mark.parametrize("name", ["general", "synchronous"])
def test_signature_for_1e5_random_points_and_extreme_outputs(name, initial):
    model = MODELS[name]
    params = blow_up(initial[name], 30.0)  # raw outputs of order 1e2..1e4
    points = domain_points(jax.random.PRNGKey(1), 100_000)
    g = jax.jit(jax.vmap(lambda x: model.apply(params, x)))(points)
    assert g.shape == (100_000, 4, 4) and np.all(np.isfinite(g))
    negative, positive = signature_counts(g)
    assert np.all(negative == 1) and np.all(positive == 3)


def test_signature_of_the_output_maps_for_extreme_raw_outputs():
    rng = np.random.default_rng(0)
    n = 100_000
    # Heavy-tailed raw outputs: magnitudes from 1e-3 to 1e30, both signs.
    u = rng.standard_normal((n, 10)) * 10.0 ** rng.uniform(-3, 30, (n, 10))
    t = rng.uniform(-0.6, 0.3, n)
    x = np.stack([t, np.zeros(n), np.zeros(n), np.zeros(n)], axis=1)
    bg, bounds = metric.Background(), metric.Bounds()
    general = jax.jit(jax.vmap(lambda x, u: metric.general_metric_from_outputs(x, u, bg, bounds)))
    synchronous = jax.jit(jax.vmap(lambda x, u: metric.synchronous_metric_from_outputs(x, u[:6], bg, bounds)))
    for fn in (general, synchronous):
        g = fn(jnp.asarray(x, jnp.float32), jnp.asarray(u, jnp.float32))
        assert np.all(np.isfinite(g))
        negative, positive = signature_counts(g)
        assert np.all(negative == 1) and np.all(positive == 3)


# ----------------------------------------------------------------------------- synchronous gauge


def test_comoving_worldlines_of_the_synchronous_metric_are_geodesics(initial):
    # Geodesic residual of u = (1, 0, 0, 0) (unit: g_00 = -1): du^mu/dtau + Gamma^mu_ab u^a u^b = Gamma^mu_00.
    points = domain_points(jax.random.PRNGKey(2), 1000)

    @jax.jit
    def christoffels(sync_params, general_params):
        of = lambda model, p: jax.vmap(lambda x: geo.christoffel(lambda y: model.apply(p, y), x))(points)
        return of(MODELS["synchronous"], sync_params), of(MODELS["general"], general_params)

    sync, general = christoffels(blow_up(initial["synchronous"], 3.0), initial["general"])
    assert np.max(np.abs(sync[:, 1:, 1:, 1:])) > 0.1  # a strongly inhomogeneous spatial metric
    assert np.max(np.abs(sync[:, :, 0, 0])) < 1e-8
    # The general metric's coordinate observers are not geodesic (lapse and shift vary):
    assert np.max(np.abs(general[:, :, 0, 0])) > 1e-3


# ----------------------------------------------------------------------------- jets and backgrounds


@pytest.mark.parametrize("name", ["general", "synchronous"])
def test_network_jet_matches_nested_forward_mode(name, initial):
    model = MODELS[name]
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: (0.5 * p).astype(jnp.float64), initial[name])
        x = jnp.array([-0.3, 0.4, -0.2, 0.7])

        @jax.jit
        def jets(params, x):
            return geo.metric_jet(metric.bind(model, params), x), geo.metric_jet(lambda y: model.apply(params, y), x)

        jet, reference = jets(params, x)
        for label, a, b in zip(("g", "dg", "ddg"), jet, reference):
            assert np.max(np.abs(b)) > 1e-2, label  # genuinely varying
            assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b)), label


@pytest.mark.slow  # implied by the jet test above plus fast == nested in test_geometry; also checked by the benchmark
def test_einstein_tensor_of_a_network_fast_path_equals_nested(initial):
    model = MODELS["general"]
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: (0.5 * p).astype(jnp.float64), initial["general"])
        x = jnp.array([-0.3, 0.4, -0.2, 0.7])
        fast, nested = jax.jit(lambda p, x: (geo.einstein_tensor(metric.bind(model, p), x),
                                             geo.einstein_tensor_nested(lambda y: model.apply(p, y), x)))(params, x)
        assert np.max(np.abs(nested)) > 1e-2  # a genuinely curved metric
        assert np.max(np.abs(fast - nested)) <= 1e-10 * np.max(np.abs(nested))


@pytest.mark.parametrize("name", ["general", "synchronous", "flrw"])
def test_networks_start_at_their_background(name, initial):
    points = domain_points(jax.random.PRNGKey(3), 64)
    a = np.asarray(LCDM.scale_factor(points[:, 0]))
    target = np.zeros((64, 4, 4))
    target[:, 0, 0] = -1
    target[:, 1, 1] = target[:, 2, 2] = target[:, 3, 3] = a**2
    if name == "flrw":
        model = metric.FLRWMetric(out_scale=1.0, background=LCDM)
        params = metric.init_params(model, KEY)
    else:
        model, params = MODELS[name], initial[name]

    def scale_output_layer(factor):  # = initialising with out_scale = factor (the shared models use 1)
        return jax.tree_util.tree_map_with_path(
            lambda path, p: p * factor if "out_kernel" in jax.tree_util.keystr(path) else p, params)

    @jax.jit
    def evaluate(exact_params, near_params):
        return (jax.vmap(lambda x: model.apply(exact_params, x))(points),
                jax.vmap(lambda x: model.apply(near_params, x))(points))

    g_exact, g_near = evaluate(scale_output_layer(0.0), scale_output_layer(1e-2))
    assert np.max(np.abs(g_exact - target)) <= 1e-6 * np.max(np.abs(target))  # zero outputs: the background
    assert 0 < np.max(np.abs(g_near - target)) <= 0.1 * np.max(np.abs(target))


def test_out_scale_scales_the_initial_output_layer():
    net = metric.init_params(metric.GeneralMetric(width=8, depth=1, out_scale=1e-3), KEY)["params"]["net"]
    bound = 1e-3 * np.sqrt(6 / 8)  # SIREN's hidden-layer bound, times out_scale
    assert 0.3 * bound < np.max(np.abs(net["out_kernel"])) <= bound
    assert np.all(net["out_bias"] == 0)
    assert np.max(np.abs(net["kernel_0"])) <= 1 / 4 and np.max(np.abs(net["kernel_0"])) > 0.1  # U(+-1/fan_in)


def test_flrw_network_hubble_rate_curvature_and_learned_k():
    with jax.enable_x64(True):
        model = metric.FLRWMetric(out_scale=0.3, learn_curvature=True, curvature=0.2)
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), metric.init_params(model, KEY))
        assert float(params["params"]["curvature"]) == pytest.approx(0.2)
        x = jnp.array([-0.2, 0.3, 0.1, -0.4])
        a_of = lambda t: model.apply(params, t, method=metric.FLRWMetric.scale_factor)

        @jax.jit
        def quantities(x):
            fn = metric.bind(model, params)
            return kin.kinematics(fn, x), geo.ricci_scalar(fn, x)

        k_out, ricci = quantities(x)
        a, da, dda = jax.jit(lambda t: (a_of(t), jax.grad(a_of)(t), jax.grad(jax.grad(a_of))(t)))(x[0])
        assert abs(k_out.mean_hubble_rate - da / a) <= 1e-10 * abs(da / a)
        assert abs(k_out.shear_scalar) <= 1e-12
        expected = 6 * (dda / a + (da / a) ** 2 + 0.2 / a**2)
        assert abs(ricci - expected) <= 1e-10 * abs(expected)


@pytest.mark.parametrize("omega_k", [0.6, -0.4])
def test_flrw_network_with_a_trained_omega_k(omega_k):
    # k = -Omega_k (a_0 H_0)^2 whatever the learned a(t): the dust fixed by the field equations
    # then has Omega_m = 1 - Omega_k at the observer (Lambda = 0), and Omega_k's bounds bound it.
    from cosmology import matter

    with jax.enable_x64(True):
        model = metric.FLRWMetric(out_scale=0.3, omega_k_bounds=(-1.0, 0.95), omega_k_init=omega_k)
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), metric.init_params(model, KEY))
        assert set(params["params"]) == {"net", "omega_k"}

        @jax.jit
        def quantities(params):
            fn = metric.bind(model, params)
            observer = jnp.zeros(4, jnp.float64)
            hubble = kin.comoving_kinematics(fn, observer).mean_hubble_rate
            a_of = lambda t: model.apply(params, t, method=metric.FLRWMetric.scale_factor)
            a0, da0 = jax.jvp(a_of, (observer[0],), (jnp.ones(()),))
            return (model.apply(params, method=metric.FLRWMetric.omega_k),
                    model.apply(params, method=metric.FLRWMetric.spatial_curvature), a0, da0,
                    matter.constraint_source(fn, observer, hubble, jnp.zeros(())).omega_m)

        got, k, a0, da0, omega_m = quantities(params)
        assert float(got) == pytest.approx(omega_k, rel=1e-12)
        assert abs(float(da0 / a0) - 1.0) > 1e-3  # the network moved a(t): H_0 != 1, a_0 != 1
        assert float(k) == pytest.approx(-omega_k * float(da0) ** 2, rel=1e-12)
        assert float(omega_m) == pytest.approx(1.0 - omega_k, rel=1e-10)
        # Omega_k follows its raw parameter inside the bounds.
        moved = {"params": {**params["params"], "omega_k": params["params"]["omega_k"] + 50.0}}
        assert float(quantities(moved)[0]) == pytest.approx(0.95, rel=1e-12)
    with pytest.raises(ValueError, match="omega_k_init"):
        metric.init_params(metric.FLRWMetric(omega_k_bounds=(0.0, 0.5), omega_k_init=0.7), KEY)


def test_metric_networks_are_metric_functions(initial):
    model, params = MODELS["general"], initial["general"]
    assert hasattr(metric.bind(model, params), "jet")
    assert not hasattr(metric.bind(metric.FLRWMetric(), {}), "jet")
    points = domain_points(KEY, 5)
    assert jax.jit(jax.vmap(lambda x: model.apply(params, x)))(points).shape == (5, 4, 4)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        model.apply(params, points)
    with pytest.raises(ValueError, match="positive"):
        metric.init_params(metric.GeneralMetric(depth=0), KEY)
