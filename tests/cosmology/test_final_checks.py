"""The end-of-run checks (:mod:`cosmology.final_checks`): exact per-supernova rays against closed
forms, the sky grid against them, and the rays against the sampled domain.

Einstein-de Sitter (the network with its last layer zeroed is exactly its background):
d_L = 2 (1 + z)(1 - (1 + z)^-1/2), and a ray to redshift z ends at comoving radius
chi = 2 (1 - (1 + z)^-1/2) (a(0) = 1) and time t = 2/3 ((1 + z)^-3/2 - 1). The default suite
traces a subsample (``max_supernovae``); the whole catalogue runs under ``-m slow``.
"""
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import final_checks, supernovae
from cosmology.metric import Background
from cosmology.problem import make_flrw_control, make_lumpy
from network_helpers import zero_output

# The quick preset's sky grid (12 directions, degree 2, 16 redshift nodes) on a tiny network.
SMALL = dict(width=8, depth=1, n_points=24, n_cmb=6, max_ray_steps=64, background="matter")  # EdS (the presets start open)
SUBSAMPLE = 200  # evenly spaced in redshift order; the time is mostly compilation (~30 s for all 1580)


def eds_distance(z):
    return 2.0 * (1.0 + z) * (1.0 - (1.0 + z) ** -0.5)


def eds_radius(z):
    return 2.0 * (1.0 - (1.0 + z) ** -0.5)


def eds_time(z):
    return 2.0 / 3.0 * ((1.0 + z) ** -1.5 - 1.0)


def cubic_metric(eps):
    """-dt^2 + a_EdS(t)^2 (1 + 2 eps t Phi) dx^2, Phi = x^3 - 3 x y^2 = Re (x + i y)^3: the local
    expansion rate is H + eps Phi(x) (to first order), and Phi, a harmonic cubic, is a pure ell = 3
    pattern on every sphere about the observer. (A static eps Phi would change d_L(z) only at
    second order: a harmonic conformal factor focuses no light, and fixes no redshift.) With
    eps = 0.5, mu moves by up to 0.25 mag at z = 2.26, 0.05 at z = 1, 0.004 at z = 0.3."""
    background = Background("matter")

    def g(x):
        a2 = background.scale_factor(x[0]) ** 2 * (1.0 + 2.0 * eps * x[0] * (x[1] ** 3 - 3.0 * x[1] * x[2] ** 2))
        return jnp.diag(jnp.stack([-jnp.ones_like(a2), a2, a2, a2]))

    return g


@pytest.fixture(scope="module")
def eds(pantheon_dir):
    problem = make_lumpy("quick", data_path=str(pantheon_dir), **SMALL)
    params = problem.init(jax.random.PRNGKey(0))
    params = {**params, "metric": zero_output(params["metric"])}
    return problem, params, final_checks.exact_rays(problem, params, max_supernovae=SUBSAMPLE)


def test_exact_rays_follow_einstein_de_sitter(eds):
    problem, _, rays = eds
    z = np.asarray(problem.data.z, np.float64)
    assert len(rays.rows) == SUBSAMPLE and len(rays.t_min) <= SUBSAMPLE
    assert z.max() in z[rays.rows] and z.min() in z[rays.rows]  # the extremes are always checked
    # Each supernova reads its own ray at its own redshift (the plan's rows and slots).
    np.testing.assert_allclose(rays.d_l_exact, eds_distance(z[rays.rows]), rtol=1e-4)
    assert rays.reached.all()
    # How far each ray went: its farthest source's comoving radius and time.
    np.testing.assert_allclose(rays.r_max, eds_radius(rays.ray_redshift), rtol=1e-4)
    np.testing.assert_allclose(rays.t_min, eds_time(rays.ray_redshift), rtol=1e-4)
    assert final_checks.exact_rays(problem, eds[1], max_supernovae=SUBSAMPLE) is rays  # remembered


def test_the_sky_grid_agrees_with_exact_rays_on_an_isotropic_metric(eds):
    problem, _, rays = eds
    with warnings.catch_warnings():
        warnings.simplefilter("error", final_checks.SkyGridWarning)
        check = final_checks.sky_grid_check(problem, rays, 1000.0, 1000.1)
    # Only the redshift spline (16 nodes) is left: 4e-5 mag at most (float32 rays: 1e-5 in d_L).
    assert check["ok"] and check["max_abs_delta_mu_mag"] < 2e-4 and check["rms_delta_mu_mag"] < 5e-5
    assert (check["tol_mag"], check["n_directions"], check["sky_degree"]) == (0.01, 12, 2)
    # The same numbers with a chi^2 difference beyond 1 fail: both bounds count.
    with pytest.warns(final_checks.SkyGridWarning, match="chi\\^2 grid - exact = 1.5"):
        assert not final_checks.sky_grid_check(problem, rays, 1001.5, 1000.0)["ok"]


def test_an_ell_3_sky_makes_the_check_warn(eds, pantheon_dir):
    problem, params, _ = eds
    rays = final_checks.exact_rays(problem, params, max_supernovae=SUBSAMPLE, metric_fn=cubic_metric(0.5))
    z = np.asarray(problem.data.z, np.float64)[rays.rows]
    # The lumps move the exact distances off EdS, by more the farther the source (Phi ~ r^3) ...
    shift = np.abs(5 * np.log10(rays.d_l_exact / eds_distance(z)))
    assert shift.max() > 0.03 and shift[z < 0.05].max() < 1e-3
    # ... and a degree-2 fit of 12 rays cannot follow an ell = 3 sky.
    with pytest.warns(final_checks.SkyGridWarning, match="n_directions=12, sky_degree=2.*sky_grid_tol"):
        check = final_checks.sky_grid_check(problem, rays, None, None)
    assert not check["ok"] and check["max_abs_delta_mu_mag"] > 0.03 and check["chi2_difference"] is None
    assert check["worst_supernova"] in rays.rows and z[rays.rows == check["worst_supernova"]] > 0.3
    # A looser stated tolerance accepts it.
    loose = make_lumpy("quick", data_path=str(pantheon_dir), sky_grid_tol=1.0, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", final_checks.SkyGridWarning)
        assert final_checks.sky_grid_check(loose, rays, None, None)["ok"]


@pytest.mark.parametrize("overrides, outside", [
    ({}, None),  # the default ball, 1.25 x the background's distance to the farthest supernova
    ({"spatial_extent": 0.5}, "radius"),  # a ball smaller than the rays reach
    ({"cmb_priors": False, "t_start": -0.3, "sn_era_start": -0.2}, "time"),  # a domain starting too late
])
def test_rays_must_stay_inside_the_domain(eds, pantheon_dir, overrides, outside):
    problem, _, rays = eds
    if overrides:
        problem = make_lumpy("quick", data_path=str(pantheon_dir), **SMALL, **overrides)
    cert = final_checks.domain_certificate(problem, rays)
    z_far = float(np.max(problem.data.z))
    assert cert["max_radius_code"] == pytest.approx(eds_radius(z_far), rel=1e-4)
    assert cert["earliest_time_code"] == pytest.approx(eds_time(z_far), rel=1e-4)
    assert cert["worst_ray_redshift"] == pytest.approx(z_far)
    expected = {None: 0.0, "radius": eds_radius(z_far) - 0.5, "time": -0.3 - eds_time(z_far)}[outside]
    assert cert["max_violation"] == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert cert["certified"] is (outside is None) and cert["tol"] == 0.0
    assert (cert["rays_outside"] > 0) is (outside is not None)
    if outside is None:  # inside by the smaller of the two margins (here the time's: z = 2.26 vs 50)
        w = problem.windows
        margin = max(eds_radius(z_far) - w["radius"], w["start"] - eds_time(z_far))
        assert cert["worst_ray_margin_code"] == pytest.approx(margin, rel=1e-4) and margin < 0


def test_a_ray_that_stops_short_is_not_certified(eds):
    problem, _, rays = eds
    stopped = rays._replace(reached=np.where(np.arange(len(rays.reached)) == 3, False, rays.reached))
    cert = final_checks.domain_certificate(problem, stopped)
    assert math.isnan(cert["max_violation"]) and not cert["certified"] and cert["rays_unreached"] == 1


def test_summary_sections_on_a_subsample_keep_the_grid_chi2(eds):
    problem, params, rays = eds
    with warnings.catch_warnings():
        warnings.simplefilter("error", final_checks.SkyGridWarning)
        out = final_checks.summary_sections(problem, params, max_supernovae=SUBSAMPLE)  # remembered rays
    assert out["chi2"] == out["chi2_sky_grid"] and out["chi2_grid_error"] is None
    assert out["chi2_source"] == f"sky grid (exact tracing on {SUBSAMPLE} supernovae only)"
    assert out["chi2_per_dof"] == pytest.approx(out["chi2"] / problem.dof)
    assert out["sky_grid_check"]["ok"] and out["rays_domain"]["certified"]
    # Whitened on the host in float64, it is the training's chi^2 (float32, on the device).
    training = jnp.sum(supernovae.whitened_residuals(jnp.asarray(rays.d_l_grid, jnp.float32), problem.data) ** 2)
    assert out["chi2_sky_grid"] == pytest.approx(float(training), rel=1e-4)
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="max_supernovae"):
            final_checks.exact_plan(problem, bad)


def test_sky_grid_tol_is_a_validated_preset_field():
    from cosmology.presets import get_preset

    assert get_preset("quick").sky_grid_tol == 0.01
    with pytest.raises(ValueError, match="sky_grid_tol"):
        get_preset("quick", sky_grid_tol=0.0)


@pytest.mark.slow
def test_every_supernova_exactly_at_the_end_of_a_run(eds, pantheon_dir):
    """The whole catalogue (1580 supernovae, 1458 rays): the summary's chi^2 is the exact one,
    and a 2-step solve carries the ray certificate into summary["certified"]."""
    import pinnopt

    problem, params, _ = eds
    out = final_checks.summary_sections(problem, params)
    z = np.asarray(problem.data.z, np.float64)
    assert out["chi2_source"] == "exact rays, one per direction"
    # float32 rays: every d_L within 1.3e-5 of the closed form, chi^2 (1327.4) within 0.06 of its value.
    assert out["chi2"] == pytest.approx(final_checks.chi2(problem, eds_distance(z)), abs=0.15)
    # The isotropic sky grid misses the exact moduli by 4e-5 mag at most (the redshift spline), chi^2 by 0.007.
    assert abs(out["chi2_grid_error"]) < 0.05 and out["sky_grid_check"]["max_abs_delta_mu_mag"] < 2e-4
    assert out["sky_grid_check"]["n_supernovae_checked"] == len(z) > out["sky_grid_check"]["n_exact_rays"]
    assert problem.extra_certificates(params)["rays_inside_domain"] == out["rays_domain"]  # remembered

    # The hook end to end, on the isotropic control (one exact ray; cheap to compile): a ball of
    # radius 0.3 c/H0 cannot hold rays to z = 2.26, and the run is not certified.
    control = make_flrw_control("quick", data_path=str(pantheon_dir), spatial_extent=0.3, width=4)
    res = pinnopt.solve(control, steps=2, chunk=2, constraints="none", optimizer_kwargs={"learning_rate": 1e-6})
    cert = res.summary["certificates"]["rays_inside_domain"]
    assert not cert["certified"] and cert["max_violation"] > 0.5 and res.summary["certified"] is False
    assert cert["points_checked"] == 1  # one ray serves every supernova
    out = final_checks.summary_sections(control, jax.device_get(res.params))  # the rays the certificate traced
    assert {k: v for k, v in cert.items() if k != "kind"} == out["rays_domain"]
    assert out["chi2_source"] == "one exact ray (isotropic)" and out["sky_grid_check"]["isotropic_one_ray"]
    # The same ray, traced by two compiled programs: equal up to float32 rounding.
    assert abs(out["chi2_grid_error"]) < 1e-3 and out["sky_grid_check"]["max_abs_delta_mu_mag"] < 1e-5
