"""The audit and the observables of a whole problem (``pytest -m slow``: each problem compiles its
rays, ~1 min). The network's output is zeroed, so the metric is exactly its background and
every number has a closed form:

- flat LCDM (Om = 0.3) read with Lambda off and the dust of the true LCDM ("uniform" with
  Omega_m = 0.3): Omega_X = OL / E^2, w_X = -1, E^2 = Om (1+z)^3 + OL, flagged as dark energy;
- the same metric with the dust fixed by the field equations on the observer's slice
  ("constraint"): Omega_m = 1 is derived, Omega_X = 1 - (1+z)^3 / E^2 (zero at the observer),
  P_X = -OL / E^2; flagged through X's share of q0;
- Einstein-de Sitter: nothing missing, not flagged, apparent q0 = 1/2.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import audit_plots, audit_summary, likelihood
from cosmology.problem import make_flrw_control, make_lumpy
from network_helpers import zero_output

pytestmark = pytest.mark.slow

TINY = dict(width=8, depth=1, n_points=24, n_cmb=6, n_directions=4, sky_degree=1, n_redshift_nodes=12,
            max_ray_steps=48)


def background_problem(pantheon_dir, **overrides):
    problem = make_lumpy("quick", data_path=str(pantheon_dir), **TINY, **overrides)
    params = problem.init(jax.random.PRNGKey(0))
    params = {**params, "metric": zero_output(params["metric"])}
    data = audit_summary.audit_data(problem, params)
    return problem, params, data, audit_summary.summary_sections(problem, params, data=data)


def collocation(d):
    rows = slice(1 + d["n_cone"], None)
    return d["z_rho"][rows], {k: np.asarray(v)[rows] for k, v in d["values"].items()}


def e2(z):
    return 0.3 * (1 + z) ** 3 + 0.7


def test_lcdm_read_as_dust_is_flagged_with_omega_lambda_of_z(pantheon_dir, tmp_path):
    problem, params, d, s = background_problem(pantheon_dir, background="lcdm", background_omega_m=0.3,
                                               density="uniform", omega_m_init=0.3)
    a, obs = s["audit"], s["observables"]
    assert s["dark_energy_like_residual"] is True and a["dark_energy_like_residual"] is True
    assert "NOT a solution" in a["message"]
    assert a["observer"]["omega_x"] == pytest.approx(0.7, rel=1e-4) and s["w_x_observer"] == pytest.approx(-1, rel=1e-4)
    light = a["light_cone"]
    z = np.asarray(light["z"])
    np.testing.assert_allclose(light["omega_x_sky_mean"], 0.7 / e2(z), rtol=1e-3)
    np.testing.assert_allclose(light["w_x"], -1.0, rtol=1e-3)
    z_rho, v = collocation(d)
    np.testing.assert_allclose(v["omega_x"], 0.7 / e2(z_rho), rtol=2e-3, atol=1e-5)
    # Local and apparent agree in FLRW: q0 = Om/2 - OL both ways; one Hubble rate at every scale.
    assert obs["q0_local"] == pytest.approx(-0.55, abs=1e-4)
    assert obs["q0_apparent"] == pytest.approx(-0.55, abs=5e-3)
    assert obs["omega_m_apparent"] == pytest.approx(0.3, abs=5e-3)
    assert obs["omega_lambda_apparent"] == pytest.approx(0.7, abs=1e-2)
    for key in ("h0_local_km_s_mpc", "h0_global_km_s_mpc"):
        assert obs[key] == pytest.approx(obs["h0_observer_km_s_mpc"], rel=1e-3)
    assert max(obs["distance_multipoles"]["dipole_relative"]) < 1e-4  # isotropic
    # The rays' chi^2 is the Friedmann integral's for flat LCDM with Om = 0.3.
    data = problem.data
    mu = likelihood.distance_modulus(likelihood.luminosity_distance_flat_lcdm(np.asarray(data.z, np.float64), 0.3)
                                     * np.asarray(data.helio, np.float64))
    chi2 = float(likelihood.chi2(data.whitening, jnp.asarray(mu, jnp.float32)))
    fit = a["supernova_fit"]
    assert fit["chi2_model"] == pytest.approx(chi2, abs=0.5)
    assert fit["chi2_flat_lcdm_best"] <= fit["chi2_model"] + 1e-6 < fit["chi2_dust_same_omega_m"]
    assert 0.9 < fit["fit_fraction_beyond_dust"] <= 1.0
    # The hook: the problem's summary carries the audit, and the figure is written.
    summary = problem.summary(params)
    assert summary["dark_energy_like_residual"] is True and summary["audit"]["observer"]["omega_x"] > 0.69
    (path,) = audit_plots.plot_audit(problem, params, str(tmp_path), data=d, sections=s)
    assert path.endswith("source_audit.png") and (tmp_path / "source_audit.png").stat().st_size > 20000


def test_lcdm_with_dust_from_the_constraint_is_flagged_by_its_pressure(pantheon_dir):
    _, _, d, s = background_problem(pantheon_dir, background="lcdm", background_omega_m=0.3, density="constraint")
    a = s["audit"]
    assert s["observables"]["omega_m_local"] == pytest.approx(1.0, rel=1e-4)  # derived: G_uu / 3H^2 at O
    assert abs(a["observer"]["omega_x"]) < 1e-5 and a["observer"]["pressure_x"] == pytest.approx(-0.7, rel=1e-4)
    assert a["observer"]["q_parts"]["x"] == pytest.approx(-1.05, rel=1e-4)  # (0 + 3 (-0.7)) / 2
    assert s["dark_energy_like_residual"] is True
    z = np.asarray(a["light_cone"]["z"])
    np.testing.assert_allclose(a["light_cone"]["omega_x_sky_mean"], 1 - (1 + z) ** 3 / e2(z), rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(a["light_cone"]["pressure_x_sky_mean"], -0.7 / e2(z), rtol=1e-3)
    z_rho, v = collocation(d)
    np.testing.assert_allclose(v["pressure_x"], -0.7 / e2(z_rho), rtol=2e-3, atol=1e-6)  # float32: 1e-6 of 3 H^2


def test_einstein_de_sitter_needs_nothing(pantheon_dir):
    _, _, d, s = background_problem(pantheon_dir, background="matter", density="constraint")
    a, obs = s["audit"], s["observables"]
    assert s["dark_energy_like_residual"] is False and "no dark-energy-like source" in a["message"]
    _, v = collocation(d)
    assert np.max(np.abs(v["omega_x"])) < 1e-4 and np.max(np.abs(v["pressure_x"])) < 1e-4
    assert obs["q0_local"] == pytest.approx(0.5, abs=1e-4) and obs["q0_apparent"] == pytest.approx(0.5, abs=5e-3)
    assert a["collocation"]["fraction_sec_total_violated"] == 0.0


def test_isotropic_control_runs_the_audit(pantheon_dir):
    problem = make_flrw_control("quick", data_path=str(pantheon_dir), n_points=16)
    params = problem.init(jax.random.PRNGKey(0))
    s = audit_summary.summary_sections(problem, params={**params, "metric": zero_output(params["metric"])})
    assert s["dark_energy_like_residual"] is False and "Lambda is on" in s["audit"]["message"]
    obs = s["observables"]
    # Exact flat LCDM (Om = 0.3, Lambda on): local and apparent q0 agree, -0.55.
    assert obs["q0_local"] == pytest.approx(-0.55, abs=1e-4) and obs["q0_apparent"] == pytest.approx(-0.55, abs=5e-3)
    assert abs(s["audit"]["observer"]["omega_x"]) < 1e-4
    assert "dipole_relative" not in obs["distance_multipoles"]  # one ray: the monopole only
    assert len(obs["residual_multipoles"]) >= 3
