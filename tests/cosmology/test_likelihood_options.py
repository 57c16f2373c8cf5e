"""Options of the supernova likelihood: the redshift column, the Hubble-flow cut, a trainable
observer velocity (aberration and Doppler in the tracer, against the boosted-FLRW closed form),
the degrees of freedom with duplicated light curves, and the diagonal fallback's warning in a build."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import covariance, data, presets, raytrace, supernovae
from cosmology import likelihood as lk
from cosmology.data import DiagonalCovarianceWarning, load_pantheon_plus
from network_helpers import zero_output

TINY_FLRW = dict(n_points=8, n_redshift_nodes=12, width=8, depth=1)


def load_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagonalCovarianceWarning)
        return load_pantheon_plus(*args, **kwargs)


def plain_columns(path, *names):
    with open(path) as f:
        header = f.readline().split()
        body = [line.split() for line in f if line.strip()]
    return [np.array([float(r[header.index(n)]) for r in body]) for n in names]


# ----------------------------------------------------------------------------- redshift and cuts


def test_the_redshift_column_is_an_option(pantheon_file, small_table):
    z_hd, z_cmb, z_cmb_err, cal = plain_columns(pantheon_file, "zHD", "zCMB", "zCMBERR", "IS_CALIBRATOR")
    s = load_quiet(pantheon_file, redshift="zCMB")
    keep = (z_cmb > 0.01) & (cal == 0)  # the cut applies to the chosen column
    assert s.redshift == "zCMB" and s.n == keep.sum() and "zCMB <= z_min" in str(s.report)
    np.testing.assert_array_equal(s.z, z_cmb[keep])
    np.testing.assert_array_equal(s.z_err, z_cmb_err[keep])
    np.testing.assert_array_equal(s.z_hd, z_hd[keep])  # zHD stays available
    default = load_quiet(pantheon_file)
    assert default.redshift == "zHD" and default.z is default.z_hd
    assert np.max(np.abs(s.z - s.z_hd)) > 1e-3  # the two columns differ (peculiar-velocity corrections)
    with pytest.raises(ValueError, match=r"redshift must be one of \('zHD', 'zCMB'\), got 'zhd'"):
        load_quiet(pantheon_file, redshift="zhd")
    with pytest.raises(ValueError, match=r"redshift must be one of .* got 'z_cmb'"):
        presets.get_preset("quick", redshift="z_cmb")
    # a table without zCMBERR serves zHD fits, and names the missing column for zCMB
    path = small_table[0]
    load_quiet(path, sha256=None)
    with pytest.raises(ValueError, match=r"table\.dat: missing column\(s\) zCMBERR"):
        load_quiet(path, sha256=None, redshift="zCMB")


def test_the_hubble_flow_cut(pantheon_file):
    z_hd, cal = plain_columns(pantheon_file, "zHD", "IS_CALIBRATOR")
    s = load_quiet(pantheon_file, z_min=data.HUBBLE_FLOW_Z_MIN)
    assert data.HUBBLE_FLOW_Z_MIN == 0.023
    assert s.n == np.sum((z_hd > 0.023) & (cal == 0)) and s.z.min() > 0.023
    assert s.report.n_below_z_min == np.sum(z_hd <= 0.023)
    for bad in (-0.1, "0.023", True):
        with pytest.raises(ValueError, match="z_min must be a number >= 0"):
            presets.get_preset("quick", z_min=bad)
        with pytest.raises(ValueError, match="z_min must be a number >= 0"):
            load_quiet(pantheon_file, z_min=bad)


# ----------------------------------------------------------------------------- the moving observer


def lcdm_scale_factor(t, om=0.3):
    """Flat LCDM with H0 = 1, a(0) = 1 (t = 0 today)."""
    ol = 1.0 - om
    age = 2.0 / (3.0 * jnp.sqrt(ol)) * jnp.arcsinh(jnp.sqrt(ol / om))
    return (om / ol) ** (1.0 / 3.0) * jnp.sinh(1.5 * jnp.sqrt(ol) * (t + age)) ** (2.0 / 3.0)


def lcdm_metric(x):
    a = lcdm_scale_factor(x[0])
    return jnp.diag(jnp.stack([-jnp.ones_like(a), a**2, a**2, a**2]))


def boosted_flrw_distance(z, n, beta, om=0.3):
    """d_L seen by an observer moving with beta (3,) through flat LCDM, towards n (its own frame),
    at its redshift z: D = 1 / (gamma (1 - beta.n)) (Doppler factor, from aberration
    cos th_c = (cos th - b) / (1 - b cos th)), 1 + z_c = (1 + z) D, d_A = D d_A^FLRW(z_c)
    (d Omega nu^2 is invariant), so d_L = (1 + z)^2 d_A = d_L^FLRW(z_c) / D."""
    beta = np.asarray(beta, float)
    gamma = 1.0 / np.sqrt(1.0 - beta @ beta)
    doppler = 1.0 / (gamma * (1.0 - np.asarray(n) @ beta))
    z_c = (1.0 + z) * doppler - 1.0
    return lk.luminosity_distance_flat_lcdm(z_c, om) / doppler


def test_the_tracer_has_aberration_and_doppler_for_a_moving_observer():
    beta = np.array([0.3, 0.0, 0.0])  # along x: the tracer's frame is then the pure boost
    n = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.0, 0.8], [-0.48, 0.6, -0.64]])
    z = np.array([0.05, 0.6, 0.8, 1.2, 0.6])  # behind (-x) only z > 0.44 is reached: z_c > 0
    with jax.enable_x64(True):
        observer = jnp.zeros(4)
        u = supernovae.moving_observer(lcdm_metric, observer, jnp.asarray(beta))
        np.testing.assert_allclose(u, np.concatenate([[1.0], beta]) / np.sqrt(1 - 0.09), rtol=1e-14)
        d = jax.jit(lambda u: raytrace.luminosity_distance(lcdm_metric, observer, n, z, observer_velocity=u))(u)
        rest = jax.jit(lambda: raytrace.luminosity_distance(lcdm_metric, observer, n, z))()
    expected = np.array([boosted_flrw_distance(zi, ni, beta) for zi, ni in zip(z, n)])
    np.testing.assert_allclose(np.asarray(d), expected, rtol=1e-7)
    np.testing.assert_allclose(np.asarray(rest), lk.luminosity_distance_flat_lcdm(z, 0.3), rtol=1e-7)
    assert np.min(np.abs(np.asarray(d) / np.asarray(rest) - 1)) > 0.05  # the effect is large at beta = 0.3


@pytest.fixture(scope="module")
def moving(pantheon_dir):
    from cosmology.problem import make_flrw_control

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagonalCovarianceWarning)
        problem = make_flrw_control("quick", data_path=str(pantheon_dir), observer_velocity="trainable",
                                    n_directions=12, sky_degree=2, **TINY_FLRW)
    params = problem.init(jax.random.PRNGKey(0))
    return problem, {**params, "metric": zero_output(params["metric"])}  # exactly the LCDM background


def test_trainable_observer_velocity_is_a_parameter_and_three_dof(moving):
    problem, params = moving
    assert params["observer_velocity"].shape == (3,) and np.all(np.asarray(params["observer_velocity"]) == 0)
    assert not problem.isotropic and problem.plan.directions.shape[0] == 12  # the sky grid, not one ray
    n = problem.data.z.shape[0]
    assert problem.dof == n - 2 - 1 - 3  # offset, Omega_m, Lambda, beta
    metrics = jax.jit(problem.step_metrics)({**params, "observer_velocity": jnp.array([1e-3, 0.0, -2e-3])})
    assert float(metrics["observer_vx_km_s"]) == pytest.approx(299.792458, rel=1e-6)
    assert float(metrics["observer_vz_km_s"]) == pytest.approx(-599.584916, rel=1e-6)
    with pytest.raises(ValueError, match="observer_velocity must be one of"):
        presets.get_flrw_control("quick", observer_velocity="free")
    with pytest.raises(ValueError, match="observer_velocity='trainable' needs sky_degree >= 1"):
        presets.get_flrw_control("quick", observer_velocity="trainable")  # one ray, degree 0
    fixed = presets.get_flrw_control("quick")
    assert fixed.observer_velocity == "fixed"


@pytest.mark.slow  # ~40 s; the tracer's closed-form aberration test stays default
def test_the_problem_passes_the_velocity_to_the_rays(moving):
    """problem.distances with beta equals the boosted closed form at the grid's nodes, carried to
    the supernovae by the same interpolation; and the chi^2 has a gradient in beta."""
    problem, params = moving
    data = problem.data
    beta = np.array([4e-4, -7e-4, 9e-4])  # |beta| c = 360 km/s, about the CMB dipole
    rays = np.asarray(data.ray_directions, np.float64)
    z_nodes = np.asarray(data.z_nodes, np.float64)
    closed = np.array([[boosted_flrw_distance(z, n, beta) for z in z_nodes] for n in rays])  # (K, M)
    expected = np.asarray(supernovae.supernova_distances(jnp.asarray(closed, jnp.float32), data))
    distances = jax.jit(problem.distances)
    moved = np.asarray(distances({**params, "observer_velocity": jnp.asarray(beta, jnp.float32)}))
    still = np.asarray(distances(params))
    np.testing.assert_allclose(moved, expected, rtol=5e-5)
    assert np.max(np.abs(moved / still - 1)) > 0.02  # 360 km/s moves the nearest distances by several %

    def chi2(v):
        d_l = problem.distances({**params, "observer_velocity": v})
        return jnp.sum(supernovae.whitened_residuals(d_l, data) ** 2)

    grad = np.asarray(jax.jit(jax.grad(chi2))(jnp.zeros(3, jnp.float32)))
    assert np.all(np.isfinite(grad)) and np.linalg.norm(grad) > 0


# ----------------------------------------------------------------------------- duplicates and dof


def test_dof_counts_rows_not_supernovae_with_correlated_duplicates():
    """With the covariance C of all rows, duplicates strongly correlated (rho = 0.9), the
    marginalised chi^2 of r ~ N(0, C) has mean N - 1 (rows), not N_unique - 1 (supernovae)."""
    rng = np.random.default_rng(3)
    n_unique, n = 30, 60  # every supernova seen twice
    cid = np.repeat(np.arange(n_unique), 2)
    err = rng.uniform(0.1, 0.2, n)
    same = cid[:, None] == cid[None, :]
    cov = np.outer(err, err) * np.where(same, 0.9, 0.0) + np.diag(0.1 * err**2)
    host = covariance.host_whitening(np.zeros(n), err, cov)
    draws = np.linalg.cholesky(cov) @ rng.normal(size=(n, 6000))
    chi2 = np.array([host.chi2(-r) for r in draws.T])  # mu_obs = 0, mu_model = -r: residual r
    assert abs(np.mean(chi2) - (n - 1)) < 0.6  # standard error 0.14
    assert abs(np.var(chi2) - 2 * (n - 1)) < 0.1 * 2 * (n - 1)  # and chi^2-distributed
    # the diagonal errors alone keep the mean (sigma_i^2 = C_ii) but not the chi^2 spread
    diag = covariance.host_whitening(np.zeros(n), np.sqrt(np.diag(cov)), None)
    chi2_diag = np.array([diag.chi2(-r) for r in draws.T])
    assert np.var(chi2_diag) > 1.5 * 2 * (n - 1)


def test_problem_dof_and_the_diagonal_warning_once_per_build(pantheon_dir, monkeypatch):
    from cosmology.problem import make_flrw_control

    monkeypatch.setattr(covariance, "_DIAGONAL_WARNED", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = make_flrw_control("quick", data_path=str(pantheon_dir), **TINY_FLRW)
        make_flrw_control("quick", data_path=str(pantheon_dir), **TINY_FLRW)
    diag = [w for w in caught if issubclass(w.category, DiagonalCovarianceWarning)]
    assert len(diag) == 1 and "-p covariance=PATH" in str(diag[0].message)
    info = first.data_info
    assert info["covariance"].startswith("diagonal") and info["n_unique"] < info["n"]
    assert first.dof == info["n"] - 3  # rows, not distinct supernovae (test above)
    assert lk.fit_flat_lcdm(load_quiet(pantheon_dir)).dof == info["n"] - 2
