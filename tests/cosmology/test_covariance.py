"""The standard likelihood end to end with a full covariance of the release's size.

A synthetic positive-definite covariance over all 1701 rows of the real table (the release's
STAT+SYS file is not available here): half of each row's diagonal variance private, half
shared with the other light curves of the same supernova (same CID), plus a low-rank
systematic block (smooth modes in ln z and survey offsets), seeded. It is passed as an array
and as a file in the release's format (first line N, then N*N values). Every reference value
is dense numpy/scipy: LU solves (no Cholesky), explicit inverses, the marginalised offset from the parabola
chi^2(o) fitted through three offsets, open CDM from Mattig's closed form.
"""
from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg

from cosmology import covariance, hubble_plots, likelihood as lk, observables, plots, supernovae
from cosmology.data import DiagonalCovarianceWarning, load_pantheon_plus

N_ROWS = 1701
SMALL = dict(n_points=8, n_redshift_nodes=8, width=8, depth=1)  # flrw-control, the smallest that builds


def plain_table(path):
    """The columns a test needs, parsed without the loader."""
    with open(path) as f:
        header = f.readline().split()
        body = [line.split() for line in f if line.strip()]
    col = {name: i for i, name in enumerate(header)}
    out = {name: np.array([float(r[col[name]]) for r in body])
           for name in ("zHD", "zCMB", "zHEL", "MU_SH0ES", "MU_SH0ES_ERR_DIAG", "IDSURVEY", "IS_CALIBRATOR")}
    out["CID"] = np.array([r[col["CID"]] for r in body])
    return out


def synthetic_covariance(t, seed=16):
    """C = diag(err^2) / 2 + (err err^T o S) / 2 + A A^T, S_ij = 1 for the same CID (positive
    semi-definite: a Schur product of two), A (N, 8) smooth modes in ln z and survey offsets."""
    rng = np.random.default_rng(seed)
    err = t["MU_SH0ES_ERR_DIAG"]
    same = t["CID"][:, None] == t["CID"][None, :]
    x = np.log(t["zHD"])
    x = 2 * (x - x.min()) / (x.max() - x.min()) - 1
    modes = [np.polynomial.legendre.Legendre.basis(k)(x) * rng.uniform(0.01, 0.03) for k in (1, 2, 3, 4)]
    surveys, counts = np.unique(t["IDSURVEY"], return_counts=True)
    for s in surveys[np.argsort(counts)[-4:]]:
        modes.append((t["IDSURVEY"] == s) * rng.uniform(0.01, 0.03))
    a = np.stack(modes, axis=1)
    return 0.5 * np.diag(err**2) + 0.5 * np.outer(err, err) * same + a @ a.T


def write_release_format(path, cov):
    path.write_text(f"{cov.shape[0]}\n" + "\n".join(map(repr, cov.ravel().tolist())) + "\n")
    return path


@pytest.fixture(scope="module")
def release(pantheon_file, tmp_path_factory):
    t = plain_table(pantheon_file)
    assert len(t["CID"]) == N_ROWS
    cov = synthetic_covariance(t)
    path = write_release_format(tmp_path_factory.mktemp("cov") / "synthetic_STAT+SYS.cov", cov)
    keep = (t["zHD"] > 0.01) & (t["IS_CALIBRATOR"] == 0)
    return {"table": t, "cov": cov, "path": path, "keep": keep, "dense": cov[np.ix_(keep, keep)]}


@pytest.fixture(scope="module")
def sample(release, pantheon_file):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagonalCovarianceWarning)  # a covariance never falls back
        return load_pantheon_plus(pantheon_file, covariance=release["cov"])


_LU: dict = {}


def dense_profile(cov, r):
    """chi^2(o) = (r - o)^T C^-1 (r - o) at o = m - 1, m, m + 1 (LU solves; m the plain mean
    of r, so that no large constant cancels), its parabola A (o - m)^2 + B (o - m) + C0, and
    from it the minimum C0 - B^2 / 4A at o* = m - B / 2A."""
    m = float(np.mean(r))
    key = (id(cov), cov.shape)
    if key not in _LU:  # one LU factorisation per matrix (scipy.linalg.lu_factor: no Cholesky)
        _LU.clear()
        _LU[key] = (cov, scipy.linalg.lu_factor(cov))
    lu = _LU[key][1]

    def chi2_at(o):
        d = r - o
        return d @ scipy.linalg.lu_solve(lu, d)

    y = np.array([chi2_at(m + o) for o in (-1.0, 0.0, 1.0)])
    a, b, c0 = 0.5 * (y[0] + y[2]) - y[1], 0.5 * (y[2] - y[0]), y[1]
    return {"chi2": c0 - b * b / (4 * a), "offset": m - b / (2 * a), "curvature": a}


def lcdm_moduli(z, z_hel, om):
    return 5 * np.log10(lk.luminosity_distance_flat_lcdm(z, om, z_hel))


def mattig_moduli(z, z_hel, om):
    """Open CDM (Lambda = 0), Mattig: d_L = 2 [om z + (om - 2)(sqrt(1 + om z) - 1)] / om^2, times (1 + z_hel)/(1 + z)."""
    d = 2 * (om * z + (om - 2) * (np.sqrt(1 + om * z) - 1)) / om**2
    return 5 * np.log10(d * (1 + z_hel) / (1 + z))


# ----------------------------------------------------------------------------- loading


def test_file_and_array_give_the_covariance_of_the_kept_rows(release, sample, pantheon_file):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagonalCovarianceWarning)
        from_file = load_pantheon_plus(pantheon_file, covariance=str(release["path"]))
    np.testing.assert_array_equal(sample.row, np.flatnonzero(release["keep"]))
    np.testing.assert_array_equal(sample.cov, release["dense"])  # rows and columns both cut
    np.testing.assert_array_equal(from_file.cov, sample.cov)  # repr round-trips float64 exactly
    assert sample.report.n_unique < sample.n  # duplicates present, and correlated in C
    dup = np.flatnonzero(sample.cid == sample.cid[np.argmax([np.sum(sample.cid == c) for c in sample.cid])])
    assert sample.cov[dup[0], dup[1]] > 0.3 * np.sqrt(sample.cov[dup[0], dup[0]] * sample.cov[dup[1], dup[1]])


def test_whitening_is_a_float64_cholesky_on_the_host_then_cast(sample):
    host = lk.host_whitening(sample)
    w, c = host.factor, sample.cov
    assert w.dtype == np.float64 and host.full and np.all(np.triu(w, 1) == 0)  # W = L^-1 is lower triangular
    v = np.random.default_rng(0).normal(size=(sample.n, 4))  # W L = I and W C W^T = I, on random vectors
    np.testing.assert_allclose(w @ (np.linalg.cholesky(c) @ v), v, atol=1e-10)
    np.testing.assert_allclose(w @ (c @ (w.T @ v)), v, atol=1e-9)
    np.testing.assert_allclose(host.sigma, np.sqrt(np.diag(c)), rtol=1e-15)
    e = np.sum(np.linalg.solve(c, np.ones(sample.n)))  # 1^T C^-1 1
    assert host.ones_norm == pytest.approx(e, rel=1e-10)
    wh = lk.make_whitening(sample)  # the training copy: the float64 result cast, not recomputed
    assert wh.factor.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(wh.factor), w.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(wh.ones), host.ones.astype(np.float32))
    assert float(wh.ones_norm) == np.float32(host.ones_norm)
    # rebuilt from the cast factor (problems made without the float64 copy), sigma stays close
    rebuilt = covariance.from_factor(host.mu_obs, np.asarray(wh.factor))
    np.testing.assert_allclose(rebuilt.sigma, host.sigma, rtol=1e-4)


# ----------------------------------------------------------------------------- chi^2


def test_chi2_with_the_offset_marginalised_equals_dense_numpy(sample):
    mu_model = lcdm_moduli(sample.z, sample.z_hel, 0.32) + 43.1  # any constant: marginalised
    ref = dense_profile(sample.cov, sample.mu - mu_model)
    host = lk.host_whitening(sample)
    assert host.chi2(mu_model) == pytest.approx(ref["chi2"], rel=1e-10)
    assert host.best_offset(mu_model) == pytest.approx(ref["offset"], abs=1e-10)
    wh = lk.make_whitening(sample)
    m32 = jnp.asarray(mu_model, jnp.float32)
    assert float(lk.chi2(wh, m32)) == pytest.approx(ref["chi2"], rel=2e-4)
    assert float(jnp.sum(lk.whitened_residuals(wh, m32) ** 2)) == pytest.approx(ref["chi2"], rel=2e-4)
    assert float(lk.best_offset(wh, m32)) == pytest.approx(ref["offset"], abs=2e-4)
    # the full marginal: -2 ln int exp(-chi^2(o)/2) do = chi2_min - ln(2 pi / A), by quadrature
    area, _ = scipy.integrate.quad(lambda o: np.exp(-ref["curvature"] * (o - ref["offset"]) ** 2 / 2),
                                   ref["offset"] - 1, ref["offset"] + 1, epsabs=0, epsrel=1e-12)
    marginal = ref["chi2"] - 2 * np.log(area)
    assert float(lk.chi2(wh, m32, log_norm=True)) == pytest.approx(marginal, rel=2e-4)
    # the diagonal of C alone is another chi^2: the correlations matter at this size
    diag = dense_profile(np.diag(np.diag(sample.cov)), sample.mu - mu_model)["chi2"]
    assert abs(diag - ref["chi2"]) > 10


@pytest.fixture(scope="module")
def lcdm_fit(sample):
    return lk.fit_flat_lcdm(sample)


def test_flat_lcdm_fit_is_the_dense_minimum(sample, lcdm_fit):
    fit = lcdm_fit
    chi2 = lambda om: dense_profile(sample.cov, sample.mu - lcdm_moduli(sample.z, sample.z_hel, om))["chi2"]
    assert fit.chi2 == pytest.approx(chi2(fit.omega_m), rel=1e-9)
    assert chi2(fit.omega_m - 0.01) > fit.chi2 and chi2(fit.omega_m + 0.01) > fit.chi2
    assert fit.dof == sample.n - 2


def test_summary_comparisons_use_the_full_covariance(sample):
    """The observables' best flat LCDM and open CDM (the summary's fit section) under C."""
    host = lk.host_whitening(sample)
    helio = (1 + sample.z_hel) / (1 + sample.z)
    for family, moduli in (("flat_lcdm", lcdm_moduli), ("open_cdm", mattig_moduli)):
        om, chi2 = observables.best_reference(host.mu_obs, host.factor, sample.z, helio, family)
        dense = lambda o: dense_profile(sample.cov, sample.mu - moduli(sample.z, sample.z_hel, o))["chi2"]
        assert chi2 == pytest.approx(dense(om), rel=1e-8), family
        if 0.02 < om < 0.99:  # an interior minimum
            assert dense(om - 0.01) > chi2 and dense(om + 0.01) > chi2
        else:
            assert om <= 0.02 and dense(0.05) > chi2  # open CDM runs to the edge


# ----------------------------------------------------------------------------- problems and plots


@pytest.fixture(scope="module")
def flrw(release, pantheon_dir):
    from cosmology.problem import make_flrw_control

    problem = make_flrw_control("quick", data_path=str(pantheon_dir), covariance=str(release["path"]), **SMALL)
    params = problem.init(jax.random.PRNGKey(0))
    return problem, params, np.asarray(jax.jit(problem.distances)(params), np.float64)


def test_a_problem_built_with_the_file_fits_the_dense_chi2(flrw, release):
    problem, params, d_l = flrw
    assert problem.data_info["covariance"] == str(release["path"])
    assert problem.data.whitening.factor.shape == (problem.data.z.shape[0],) * 2 and problem.host.full
    np.testing.assert_array_equal(problem.host.factor.astype(np.float32), np.asarray(problem.data.whitening.factor))
    mu_model = 5 * np.log10(d_l * np.asarray(problem.data.helio, np.float64))
    ref = dense_profile(release["dense"], problem.host.mu_obs - mu_model)
    # the supernova term of training: Objective(w^2) with w these whitened residuals (float32)
    w = supernovae.whitened_residuals(jnp.asarray(d_l, jnp.float32), problem.data)
    assert float(jnp.sum(w**2)) == pytest.approx(ref["chi2"], rel=3e-4)
    assert problem.dof == problem.data.z.shape[0] - 3  # offset, Omega_m, Lambda


def test_summary_fit_section_with_the_full_covariance(flrw, release):
    from cosmology import audit_summary

    problem, _, d_l = flrw
    out = audit_summary.fit_section(problem, {"d_sn": d_l, "omega_m": 0.3})
    mu_obs, z = problem.host.mu_obs, np.asarray(problem.data.z, np.float64)
    z_hel = (1 + z) * np.asarray(problem.data.helio, np.float64) - 1
    dense = lambda mu: dense_profile(release["dense"], mu_obs - mu)["chi2"]
    assert out["chi2_model"] == pytest.approx(dense(5 * np.log10(d_l * (1 + z_hel) / (1 + z))), rel=1e-8)
    assert out["chi2_flat_lcdm_best"] == pytest.approx(dense(lcdm_moduli(z, z_hel, out["omega_m_flat_lcdm_best"])),
                                                       rel=1e-8)
    assert out["chi2_open_cdm_best"] == pytest.approx(dense(mattig_moduli(z, z_hel, out["omega_m_open_cdm_best"])),
                                                      rel=1e-8)
    assert out["chi2_dust_same_omega_m"] == pytest.approx(dense(mattig_moduli(z, z_hel, 0.3)), rel=1e-8)


def test_hubble_diagram_with_the_full_covariance(flrw, release, lcdm_fit, tmp_path):
    problem, params, d_l = flrw
    hd = plots.hubble_diagram_data(problem, params)  # no "diagonal errors only" any more
    c = release["dense"]
    np.testing.assert_allclose(hd["sigma"], np.sqrt(np.diag(c)), rtol=1e-14)  # points: sqrt(C_ii)
    mu_model = 5 * np.log10(d_l * np.asarray(problem.data.helio, np.float64)) + 25  # d_L "in Mpc": any unit
    ref = dense_profile(c, hd["mu_obs"] - mu_model)
    assert hd["offset"] == pytest.approx(ref["offset"], abs=1e-6)  # the GLS offset, not a weighted mean
    assert hd["chi2"] == pytest.approx(ref["chi2"], rel=1e-6)
    np.testing.assert_allclose(hd["residual"], hd["mu_obs"] - mu_model - ref["offset"], atol=1e-6)
    # binned residuals: the GLS step function (X^T C^-1 X)^-1 X^T C^-1 r, by explicit inverse
    z = hd["z"]
    edges = np.geomspace(z.min(), z.max() * 1.0001, hubble_plots.N_BINS + 1)
    x = np.stack([(z >= lo) & (z < hi) for lo, hi in zip(edges[:-1], edges[1:])], axis=1).astype(float)
    ci_x = scipy.linalg.lu_solve(_LU[(id(c), c.shape)][1], x)  # C^-1 X
    normal = x.T @ ci_x
    np.testing.assert_allclose(hd["bin_mean"], np.linalg.solve(normal, ci_x.T @ hd["residual"]), atol=1e-8)
    np.testing.assert_allclose(hd["bin_err"], np.sqrt(np.diag(np.linalg.inv(normal))), rtol=1e-6)
    weighted = (x.T @ (hd["residual"] / hd["sigma"] ** 2)) / (x.T @ hd["sigma"] ** -2)
    assert np.max(np.abs(weighted - hd["bin_mean"])) > 1e-3  # what the plot would show ignoring C
    om, _ = hubble_plots.lcdm_reference(hd, np.asarray(problem.data.helio, np.float64))
    assert om == pytest.approx(lcdm_fit.omega_m, abs=2e-4)  # the same fit as the likelihood's
    for name, fn in (("hd.png", plots.plot_hubble_diagram), ("sky.png", plots.plot_residual_sky)):
        path = fn(problem, params, str(tmp_path / name), hd)
        assert os.path.getsize(path) > 20000


def test_lumpy_builds_with_the_array(release, pantheon_dir):
    from cosmology.problem import make_lumpy

    problem = make_lumpy("quick", data_path=str(pantheon_dir), covariance=release["cov"], width=8, depth=1,
                         n_directions=4, sky_degree=1, n_redshift_nodes=8)
    assert problem.data_info["covariance"] == f"array {release['dense'].shape}"
    np.testing.assert_array_equal(problem.host.sigma, np.sqrt(np.diag(release["dense"])))
    assert problem.dof == int(release["keep"].sum()) - 2


def test_the_command_line_passes_the_covariance_and_the_cuts(release, pantheon_dir, monkeypatch):
    from pinnopt.cli import build_parser
    from pinnopt.cli.solve import build_problem, settings_from_args

    monkeypatch.setenv("PINNOPT_DATA_DIR", str(pantheon_dir))
    args = build_parser().parse_args(
        ["solve", "flrw-control", "--preset", "quick", "-p", f"covariance={release['path']}", "-p", "z_min=0.023",
         "-p", "redshift=zCMB", "-p", "n_points=8", "-p", "n_redshift_nodes=8"])
    settings = settings_from_args(args)
    assert settings["problem_kwargs"]["covariance"] == str(release["path"])
    problem = build_problem(settings["problem"], settings["problem_kwargs"])
    t = release["table"]
    keep = (t["zCMB"] > 0.023) & (t["IS_CALIBRATOR"] == 0)  # the Hubble-flow cut on the chosen column
    assert problem.data_info["covariance"] == str(release["path"]) and problem.data_info["redshift"] == "zCMB"
    np.testing.assert_allclose(np.asarray(problem.data.z), t["zCMB"][keep], rtol=1e-7)
    np.testing.assert_array_equal(problem.host.sigma, np.sqrt(np.diag(release["cov"][np.ix_(keep, keep)])))
    assert problem.cfg.z_min == 0.023 and problem.dof == int(keep.sum()) - 3
