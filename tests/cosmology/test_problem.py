"""The cosmology problems' parts without the data: presets, point-wise physics, charts, the sky grid."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import likelihood, matter, presets, supernovae, open_background
from cosmology.kinematics import mean_hubble_rate
from cosmology.metric import Background
from cosmology.problem import cmb_prior_values, domain, point_fields


# ----------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name", ["quick", "default", "blog"])
def test_presets_load_and_validate(name):
    cfg = presets.get_preset(name)
    assert cfg.preset == name
    d = cfg.asdict()
    assert d["metric"] in presets.METRICS and isinstance(d["omega_m_bounds"], list)
    windows = domain(cfg, Background(cfg.background, cfg.background_omega_m), 2.26137)
    assert windows["start"] <= windows["sn_start"] < 0.0
    assert windows["cmb"][0] < windows["cmb"][1]
    assert windows["start"] <= windows["cmb"][0] and windows["cmb"][1] <= 0.0  # the priors where the equations hold
    # The sampled ball reaches at least the comoving distance of the farthest supernova (for an open
    # background: the isotropic chart's coordinate radius of that geodesic distance).
    chi = windows["background_comoving_distance_code"]
    reach = open_background.coordinate_radius(chi, cfg.background_omega_m) if cfg.background == "open" else chi
    assert windows["radius"] >= reach * (1 if name == "blog" else 1.25) * (1 - 1e-12)


def test_blog_preset_is_the_seeds_setup():
    cfg = presets.get_preset("blog")
    assert (cfg.metric, cfg.energy_condition, cfg.omega_m_init, cfg.balancing) == ("general", "ricci", 0.3, "spatial")
    assert (cfg.t_start, cfg.t_observer, cfg.cmb_window, cfg.unit_mpc) == (-3.9, 1.0, (-4.0, -3.9), 1000.0)
    assert (cfg.n_points, cfg.n_sn_era()) == (1000, 800)
    assert cfg.to_code_time(1.0) == 0.0
    assert cfg.to_code_time(-3.9) == pytest.approx(-4.9 * 1000.0 / presets.HUBBLE_LENGTH_MPC)
    w = domain(cfg, Background(cfg.background), 2.26137)
    # Its CMB window (-4, -3.9) ended where the seeds' collocation began: the domain now reaches back over it.
    assert w["start"] == pytest.approx(cfg.to_code_time(-4.0)) == pytest.approx(w["cmb"][0])
    assert w["cmb"][1] == pytest.approx(cfg.to_code_time(-3.9))
    assert w["radius"] == pytest.approx(10.0 * 1000.0 / presets.HUBBLE_LENGTH_MPC)
    # Its ball holds the comoving distance to z = 2.26 in flat LCDM (5.3 Gpc) and in its start, de Sitter.
    d_c = likelihood.comoving_distance_flat_lcdm(2.26137, 0.3) * presets.HUBBLE_LENGTH_MPC / 1000.0
    assert cfg.spatial_extent >= d_c


def test_default_preset_is_the_physically_sound_one():
    cfg = presets.get_preset("default")
    assert (cfg.energy_condition, cfg.cosmological_constant, cfg.constraints, cfg.balancing,
            cfg.optimizer, cfg.n_points, cfg.n_sn_era()) == ("weak", False, "al", "sum", "adam", 1000, 800)
    assert cfg.omega_m_bounds == (0.05, 1.0)


def test_bad_preset_and_fields_are_value_errors():
    with pytest.raises(ValueError, match="available presets: blog, default, quick"):
        presets.get_preset("nope")
    with pytest.raises(ValueError, match="no option"):
        presets.get_preset("quick", widht=3)
    with pytest.raises(ValueError, match="energy_condition"):
        presets.get_preset("default", energy_condition="strong-ish")
    with pytest.raises(ValueError, match="omega_m_init"):
        presets.get_preset("default", omega_m_init=0.01)
    with pytest.raises(ValueError, match="cosmological_constant"):
        presets.get_preset("default", omega_lambda_init=0.7)
    with pytest.raises(ValueError, match="flrw"):
        presets.get_preset("default", metric="flrw")
    with pytest.raises(ValueError, match="available presets"):
        presets.get_flrw_control("blog")


def test_lambda_option_starts_from_lcdm():
    assert presets.get_preset("default", cosmological_constant=True).background == "lcdm"
    cfg = presets.get_flrw_control()
    assert (cfg.metric, cfg.cosmological_constant, cfg.n_directions, cfg.sky_degree) == ("flrw", True, 1, 0)


def test_open_control_and_the_density_options():
    cfg = presets.get_open_control()
    assert (cfg.metric, cfg.learn_curvature, cfg.cosmological_constant, cfg.density, cfg.einstein) == (
        "flrw", True, False, "constraint", "constraint")
    assert presets.available("open-control") == ["default", "quick"]
    from cosmology.problem import _model

    model = _model(cfg, Background(cfg.background, cfg.background_omega_m))
    assert model.omega_k_bounds == pytest.approx((-1.0, 0.95))  # Omega_m = 1 - Omega_k in [0.05, 2]
    assert presets.get_preset("default").density == "constraint"
    assert presets.get_preset("default", density="uniform").density == "uniform"
    with pytest.raises(ValueError, match="density"):
        presets.get_preset("default", density="lumpy")
    with pytest.raises(ValueError, match="learn_curvature"):
        presets.get_preset("default", learn_curvature=True)  # synchronous metric
    with pytest.raises(ValueError, match="learn_curvature"):
        presets.get_open_control(density="uniform")  # one C in a curved chart: the spurious gradient
    with pytest.raises(ValueError, match="omega_k_init"):
        presets.get_open_control(omega_k_init=0.97)
    with pytest.raises(ValueError, match="omega_k_init"):
        presets.get_flrw_control(omega_k_init=0.2)
    with pytest.raises(ValueError, match="sn_fraction"):
        presets.get_preset("default", sn_fraction=1.0)  # CMB priors with no field equations there


def test_cli_names_the_presets(tmp_path):
    from pinnopt.cli import main

    with pytest.raises(SystemExit, match="available presets: blog, default, quick"):
        main(["solve", "lumpy", "--preset", "nope", "--runs", str(tmp_path), "--no-progress"])


# ----------------------------------------------------------------------------- point-wise physics


def diagonal_metric(scale_factors):
    """ds^2 = -dt^2 + sum_i a_i(t)^2 dx_i^2 (Bianchi I; FLRW when the a_i agree)."""
    def g(x):
        a = scale_factors(x[0])
        return jnp.diag(jnp.concatenate([-jnp.ones(1, x.dtype), a**2]))
    return g


def source_for(g, omega_m, omega_lambda):
    observer = jnp.zeros(4)
    return matter.make_source(g(observer), mean_hubble_rate(g, observer), omega_m, omega_lambda)


POINTS = jnp.array([[0.0, 0.0, 0.0, 0.0], [-0.3, 0.5, -0.2, 0.1], [-0.55, -0.9, 0.4, 0.8]])


def test_exact_lcdm_meets_every_term():
    bg = Background("lcdm", 0.3)
    g = lambda x: jnp.diag(jnp.stack([-1.0, *[bg.scale_factor(x[0]) ** 2] * 3]))
    src = source_for(g, 0.3, 0.7)
    for condition in ("weak", "ricci"):
        f = jax.vmap(lambda x: point_fields(g, x, src, condition))(POINTS)
        assert np.all(np.asarray(f["residual"]) < 2e-5)
        assert np.all(np.asarray(f["energy_condition"]) < 0)  # dust + Lambda: WEC and R > 0 hold
    early = jax.vmap(lambda x: cmb_prior_values(g, x, src, 0.01, 0.1))(POINTS)
    assert np.all(np.asarray(early["expansion"]) < 0)
    np.testing.assert_allclose(early["shear"], -0.01, atol=1e-6)  # sigma = 0
    np.testing.assert_allclose(early["homogeneity"], -0.1, atol=1e-6)  # no spatial gradient


def test_cmb_priors_catch_a_sheared_bianchi_universe():
    rates = jnp.array([3.0, 0.5, -0.5])  # mean H = 1, sigma^2 = ((2)^2 + 0.5^2 + 1.5^2) / 2 = 3.25
    g = diagonal_metric(lambda t: jnp.exp(rates * t))
    src = source_for(g, 0.3, 0.0)
    early = cmb_prior_values(g, jnp.array([-0.2, 0.1, 0.2, 0.3]), src, 0.01, 0.1)
    assert float(early["shear"]) == pytest.approx(3.25 - 0.01, rel=1e-4)
    assert float(early["expansion"]) > 0  # contraction along z
    np.testing.assert_allclose(np.sort(early["hubble_rates"]), np.sort(rates), rtol=1e-5)
    assert float(early["homogeneity"]) == pytest.approx(-0.1, abs=1e-6)


def test_homogeneity_prior_catches_spatial_gradients():
    def g(x):
        a2 = jnp.exp(2 * x[0]) * (1.0 + 0.5 * jnp.sin(3.0 * x[1]))
        return jnp.diag(jnp.stack([-1.0, a2, a2, a2]))
    src = source_for(g, 0.3, 0.7)
    early = cmb_prior_values(g, jnp.array([-0.1, 0.2, 0.0, 0.0]), src, 0.01, 0.1)
    assert float(early["homogeneity"]) > 0.5


def test_weak_energy_condition_versus_the_ricci_proxy():
    # a = exp(t + t^2): H = 1 + 2t grows (dH/dt = 2 > 0), so rho + p = -2 dH/dt / kappa < 0: the
    # WEC fails, while R = 6 (dH/dt + 2 H^2) > 0 passes the seeds' proxy.
    g = diagonal_metric(lambda t: jnp.broadcast_to(jnp.exp(t + t * t), (3,)))
    src = source_for(g, 0.3, 0.0)
    x = jnp.array([0.0, 0.0, 0.0, 0.0])
    assert float(point_fields(g, x, src, "weak")["energy_condition"]) > 0
    assert float(point_fields(g, x, src, "ricci")["energy_condition"]) < 0
    with pytest.raises(ValueError, match="energy_condition"):
        point_fields(g, x, src, "dominant-ish")


# ----------------------------------------------------------------------------- the sky grid


def test_fibonacci_directions_are_unit_and_spread():
    d = supernovae.fibonacci_directions(32)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-12)
    assert abs(d.mean(axis=0)).max() < 0.05
    with pytest.raises(ValueError):
        supernovae.fibonacci_directions(0)


@pytest.mark.parametrize("k,degree", [(12, 2), (32, 2), (32, 4)])
def test_sky_projection_is_exact_for_low_multipoles(k, degree):
    rays = supernovae.fibonacci_directions(k)
    rng = np.random.default_rng(1)
    targets = rng.normal(size=(50, 3))
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    quadrupole = lambda n: 1.0 + 0.3 * n[:, 0] - 0.2 * n[:, 2] + 0.5 * (3 * n[:, 2] ** 2 - 1) + 0.4 * n[:, 0] * n[:, 1]
    p = supernovae.sky_projection(targets, rays, degree)
    np.testing.assert_allclose(p @ quadrupole(rays), quadrupole(targets), atol=1e-9)


def test_sky_projection_needs_enough_rays():
    with pytest.raises(ValueError, match="sky harmonics"):
        supernovae.sky_projection(np.eye(3), supernovae.fibonacci_directions(6), 2)


@pytest.mark.parametrize("m,tol", [(12, 5e-4), (16, 2e-4), (32, 3e-5)])
def test_redshift_interpolation_error_is_a_fraction_of_a_millimag(m, tol):
    z = np.geomspace(0.0101, 2.26, 300)
    nodes = np.geomspace(z.min(), z.max(), m)
    for om in (0.3, 1.0):
        d_nodes = likelihood.luminosity_distance_flat_lcdm(nodes, om)[None, :]
        got = supernovae.interpolate_redshift(jnp.asarray(d_nodes, jnp.float32), jnp.asarray(np.log(nodes), jnp.float32),
                                              jnp.asarray(np.log(z), jnp.float32))[0]
        exact = likelihood.luminosity_distance_flat_lcdm(z, om)
        assert np.max(np.abs(5 * np.log10(np.asarray(got, np.float64) / exact))) < tol


def test_spline_weights_reproduce_cubics_and_nodes():
    x_nodes = np.linspace(0.0, 2.0, 7)
    x = np.linspace(0.0, 2.0, 33)
    w = supernovae.spline_weights(x_nodes, x)
    cubic = lambda v: 1 - v + 0.5 * v**2 - 0.3 * v**3
    np.testing.assert_allclose(w @ cubic(x_nodes), cubic(x), atol=1e-12)
    np.testing.assert_allclose(supernovae.spline_weights(x_nodes, x_nodes), np.eye(7), atol=1e-12)
