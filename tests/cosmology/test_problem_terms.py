"""The lumpy problem on the real data: terms, their kinds and shapes, and exact values for a
network whose output is zero (the metric is then exactly its FLRW background)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import likelihood
from cosmology.problem import make_lumpy
from pinnopt.terms import Constraint, Objective
from network_helpers import zero_output

TINY = dict(width=8, depth=1, n_points=24, n_cmb=6, n_directions=4, sky_degree=1, n_redshift_nodes=12,
            max_ray_steps=48, background="matter")  # Einstein-de Sitter (the presets start from open FLRW)


@pytest.fixture(scope="module")
def tiny(pantheon_dir):
    problem = make_lumpy("quick", data_path=str(pantheon_dir), omega_m_init=0.9, **TINY)
    params = problem.init(jax.random.PRNGKey(0))
    params = {**params, "metric": zero_output(params["metric"])}
    batch = problem.sample(jax.random.PRNGKey(1), jnp.int32(0))
    terms = jax.jit(problem.terms)(params, batch)
    return problem, params, batch, terms


def test_terms_have_the_right_kinds_and_shapes(tiny):
    problem, _, batch, terms = tiny
    assert set(terms) == {"einstein", "supernovae", "weak_energy", "cmb_expansion", "cmb_shear", "cmb_homogeneity"}
    # The field equations are hard by default: a point-wise equality with the preset's tolerance.
    einstein = terms["einstein"]
    assert isinstance(einstein, Constraint) and einstein.kind == "eq" and einstein.aggregate == "pointwise"
    assert einstein.value.shape == (24,) and einstein.coords.shape == (24, 4)
    assert einstein.tol == problem.cfg.einstein_tol == 1e-2
    assert isinstance(terms["supernovae"], Objective) and terms["supernovae"].loss.shape == (problem.data.z.shape[0],)
    for name in ("weak_energy", "cmb_expansion", "cmb_shear", "cmb_homogeneity"):
        assert isinstance(terms[name], Constraint) and terms[name].kind == "ineq"
    assert terms["cmb_shear"].value.shape == (6,)
    for t in terms.values():
        assert np.all(np.isfinite(np.asarray(getattr(t, "loss", None) if isinstance(t, Objective) else t.value)))


@pytest.mark.slow  # ~25 s
def test_the_soft_form_is_an_option_with_the_same_residual(tiny, pantheon_dir):
    problem, params, batch, terms = tiny
    soft = make_lumpy("quick", data_path=str(pantheon_dir), omega_m_init=0.9, einstein="objective", **TINY)
    out = jax.jit(soft.terms)(params, batch)
    assert isinstance(out["einstein"], Objective)
    np.testing.assert_allclose(np.asarray(out["einstein"].loss), np.asarray(terms["einstein"].value) ** 2, rtol=1e-6)
    with pytest.raises(ValueError, match="einstein"):
        make_lumpy("quick", data_path=str(pantheon_dir), einstein="soft", **TINY)
    with pytest.raises(ValueError, match="einstein_tol"):
        make_lumpy("quick", data_path=str(pantheon_dir), einstein_tol=0.0, **TINY)


def test_sampling_covers_the_eras_and_the_ball(tiny):
    problem, _, batch, _ = tiny
    t = np.asarray(batch["points"][:, 0])
    w = problem.windows
    n_sn = problem.cfg.n_sn_era()
    assert np.all((t[:n_sn] >= w["sn_start"]) & (t[:n_sn] <= 0))
    assert np.all((t[n_sn:] >= w["start"]) & (t[n_sn:] <= w["sn_start"]))
    assert np.all(np.linalg.norm(np.asarray(batch["points"][:, 1:]), axis=1) <= w["radius"] + 1e-6)
    t_cmb = np.asarray(batch["cmb"][:, 0])
    assert np.all((t_cmb >= w["cmb"][0]) & (t_cmb <= w["cmb"][1]))
    assert w["start"] <= w["cmb"][0]  # the CMB window lies where the field equations are imposed


def test_background_metric_is_an_exact_solution_and_meets_the_constraints(tiny):
    # Einstein-de Sitter, the network's background: with the dust fixed by the field equations on
    # the observer's slice (the default density) it solves them, r = 0 up to float32 rounding,
    # and the derived Omega_m is 1, whatever omega_m_init says.
    problem, params, _, terms = tiny
    assert "omega_m" not in params
    assert np.max(np.abs(np.asarray(terms["einstein"].value))) < 1e-5
    assert float(problem.omega_m(params)) == pytest.approx(1.0, rel=1e-5)
    assert np.all(np.asarray(terms["weak_energy"].value) < 0)
    assert np.all(np.asarray(terms["cmb_expansion"].value) < 0)
    np.testing.assert_allclose(terms["cmb_shear"].value, -0.01, atol=1e-5)
    np.testing.assert_allclose(terms["cmb_homogeneity"].value, -0.1, atol=1e-5)


def test_the_uniform_density_keeps_its_trained_omega_m(tiny, pantheon_dir):
    # The former construction: Einstein-de Sitter fitted with a trained Omega_m = 0.9 and no
    # Lambda: G_ab = 3 H^2 u_a u_b exactly, E = 0.3 H^2 u u, |E| = 0.3 H^2, scale 3 H^2 + 2.7 H^2:
    # r = 0.3 / 5.7 at every point.
    _, params, batch, _ = tiny
    old = make_lumpy("quick", data_path=str(pantheon_dir), omega_m_init=0.9, density="uniform", **TINY)
    old_params = {**params, "omega_m": old.init(jax.random.PRNGKey(0))["omega_m"]}
    values = jax.jit(old._pointwise)(old_params, batch)
    np.testing.assert_allclose(np.asarray(values["einstein"]), 0.3 / 5.7, rtol=2e-3)
    assert float(old.omega_m(old_params)) == pytest.approx(0.9, rel=1e-6)


def test_supernova_chi2_matches_the_classical_einstein_de_sitter_value(tiny, pantheon_dir):
    # The rays through exact EdS must give the Friedmann-integral chi^2 of flat LCDM with Omega_m = 1.
    problem, _, _, terms = tiny
    import warnings

    from cosmology.data import DiagonalCovarianceWarning, load_pantheon_plus

    with warnings.catch_warnings():  # the diagonal fallback warns once per process: maybe not here
        warnings.simplefilter("ignore", DiagonalCovarianceWarning)
        sample = load_pantheon_plus(pantheon_dir)
    mu = 5 * np.log10(likelihood.luminosity_distance_flat_lcdm(sample.z_hd, 1.0 - 1e-12, sample.z_hel))
    r = sample.mu - mu
    w = 1 / sample.mu_err**2
    chi2 = np.sum(w * (r - np.sum(w * r) / np.sum(w)) ** 2)
    assert float(jnp.sum(terms["supernovae"].loss)) == pytest.approx(chi2, rel=2e-3)


def test_sampling_traces_under_jit_as_in_the_training_step(tiny):
    problem, _, batch, _ = tiny
    traced = jax.jit(problem.sample)(jax.random.PRNGKey(1), jnp.int32(0))
    for name, value in batch.items():
        np.testing.assert_allclose(np.asarray(traced[name]), np.asarray(value), rtol=1e-5, atol=1e-6)
