"""The model-comparison table (cosmology.comparison, cosmology.comparison_network, ``pinnopt compare``).

Fast: no training. References are computed here independently of the package: the classical chi^2
by scipy's ODE solver for the comoving distance (not the package's Gauss-Legendre), the profile
interval by a brute-force grid, the effective number of parameters as the trace of the hat matrix.
"""
from __future__ import annotations

import json
import math
import types
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

from cosmology import comparison as cmp
from cosmology import comparison_network as net
from cosmology.covariance import host_whitening

# ----------------------------------------------------------------------------- arithmetic


def test_aic_bic_delta_chi2_by_hand():
    assert cmp.aic(700.0, 3) == 706.0
    assert cmp.bic(700.0, 3, 1000) == pytest.approx(700.0 + 3 * 6.907755278982137, abs=1e-12)
    row = cmp.Row("m", 690.5, k=5, n=100)
    c = cmp.criteria(row, 681.0)
    assert c["dchi2"] == pytest.approx(9.5) and c["k_used"] == 5
    assert c["aic"] == pytest.approx(700.5) and c["bic"] == pytest.approx(690.5 + 5 * 4.605170185988092)
    c = cmp.criteria(row._replace(k=871, k_eff=25.5), 681.0)  # k_eff wins where given
    assert c["k_used"] == 25.5 and c["aic"] == pytest.approx(741.5)
    assert cmp.criteria(row._replace(k=None), 681.0)["aic"] is None


def test_interval_from_points_on_a_parabola():
    x = np.array([0.30, 0.33, 0.36, 0.39])
    y = 4000.0 * (x - 0.345) ** 2 + 680.0  # Delta chi^2 = 1 at +- 1/sqrt(4000) = 0.0158
    iv = cmp.interval_from_points(x, y)
    assert iv.best == pytest.approx(0.345, abs=1e-9) and iv.chi2_min == pytest.approx(680.0, abs=1e-7)
    assert iv.high - iv.best == pytest.approx(1 / math.sqrt(4000.0), rel=1e-7) and iv.note == ""
    two = cmp.interval_from_points(x[:2], y[:2])
    assert math.isnan(two.low) and "needs 3" in two.note and two.best == 0.33


# ----------------------------------------------------------------------------- classical rows, real data


def comoving(z, e_of):
    """D_C(z) by scipy's ODE solver, dD/dz = 1/E (independent of the package's quadrature)."""
    nodes, inverse = np.unique(z, return_inverse=True)
    sol = solve_ivp(lambda x, d: [1.0 / e_of(x)], (0.0, nodes[-1]), [0.0], t_eval=nodes, rtol=1e-11,
                    atol=1e-13, method="DOP853")
    return sol.y[0][inverse]


def chi2_marginalised(mu, err, model):
    w = 1.0 / err**2
    r = mu - model
    return float(np.sum(w * (r - np.sum(w * r) / np.sum(w)) ** 2))


@pytest.fixture(scope="module")
def real(pantheon_dir):
    from cosmology.data import load_pantheon_plus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = load_pantheon_plus(pantheon_dir)
    return sample, host_whitening(sample.mu, sample.mu_err, None)


def flat_chi2(sample, om):
    d = comoving(sample.z, lambda z: math.sqrt(om * (1 + z) ** 3 + 1 - om))
    return chi2_marginalised(sample.mu, sample.mu_err, 5 * np.log10((1 + sample.z_hel) * d))


def open_chi2(sample, om):
    ok = 1.0 - om
    d = comoving(sample.z, lambda z: math.sqrt(om * (1 + z) ** 3 + ok * (1 + z) ** 2))
    s = np.sinh(math.sqrt(ok) * d) / math.sqrt(ok)
    return chi2_marginalised(sample.mu, sample.mu_err, 5 * np.log10((1 + sample.z_hel) * s))


def test_classical_rows_against_scipy_ode(real):
    sample, host = real
    rows, prof = cmp.classical_rows(sample, host, gbh=False)
    flat, open_ = rows
    best = minimize_scalar(lambda om: flat_chi2(sample, om), bounds=(0.25, 0.45), method="bounded",
                           options={"xatol": 1e-6})
    assert prof.best == pytest.approx(best.x, abs=2e-4)
    assert flat.chi2 == pytest.approx(best.fun, abs=2e-3)  # the README's 681.1 at 0.350
    assert 681.0 < flat.chi2 < 681.2 and abs(best.x - 0.350) < 1e-3
    assert (flat.k, flat.n) == (2, sample.n) and flat.label.startswith("flat LCDM (Om = 0.350")
    # open CDM: chi^2 grows with Om from the floor 0.01 of the range
    assert open_chi2(sample, 0.05) > open_chi2(sample, 0.01)
    assert open_.chi2 == pytest.approx(open_chi2(sample, 0.01), abs=2e-2) and open_.k == 2
    assert "floor" in open_.notes[0]


def test_profile_interval_against_brute_force_grid(real):
    sample, host = real
    rows, prof = cmp.classical_rows(sample, host, gbh=False)
    grid = np.arange(0.31, 0.39, 0.0005)
    chi2 = np.array([flat_chi2(sample, om) for om in grid])
    inside = grid[chi2 <= chi2.min() + 1.0]
    assert prof.low == pytest.approx(inside[0], abs=6e-4) and prof.high == pytest.approx(inside[-1], abs=6e-4)
    # and at the ends Delta chi^2 is 1 by the package's own function
    for end in (prof.low, prof.high):
        assert cmp.flat_lcdm_chi2(sample, host, end) - prof.chi2_min == pytest.approx(1.0, abs=1e-6)
    assert prof.note == ""


def test_profile_interval_reaching_a_bound():
    iv = cmp.profile_interval(lambda x: 100.0 * x**2, 0.0, bounds=(-0.05, 1.0))  # Delta = 1 at +-0.1
    assert iv.low == -0.05 and "bound -0.05" in iv.note and iv.high == pytest.approx(0.1, abs=1e-7)


# ----------------------------------------------------------------------------- run directories


def fake_run(path, *, certified=True, einstein=True, seed=0, chi2=700.0, n=1580, covariance="diagonal (plots only)",
             lam=False, problem="lumpy", status="finished", summary_certified=None):
    path.mkdir(parents=True, exist_ok=True)
    certs = {"weak_energy": {"certified": True, "max_violation": 0.0, "tol": 0.0}}
    if einstein:
        certs["einstein"] = {"certified": certified, "max_violation": 0.004 if certified else 0.05, "tol": 0.01}
    summary_certified = bool(certified and einstein) if summary_certified is None else summary_certified
    summary = {"status": status, "certified": summary_certified, "certificates": certs,
               "problem": {"chi2": chi2, "dof": n - 2, "n_supernovae": n, "omega_m": 0.31}}
    config = {"cli": {"problem": problem, "problem_kwargs": {"preset": "quick"}, "seed": seed},
              "problem": {"name": problem, "cosmological_constant": lam, "data": {"covariance": covariance}}}
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


def test_run_rows_say_whether_the_metric_solves_the_field_equations(tmp_path):
    ok = cmp.run_row(fake_run(tmp_path / "ok"), 1580, "diagonal", count_parameters=lambda d: 870)
    assert ok.certified is True and ok.k == 871 and ok.chi2 == 700.0 and ok.comparable
    assert ok.label.startswith("ok (lumpy, Lambda = 0") and ok.notes[0].startswith("certified")
    bad = cmp.run_row(fake_run(tmp_path / "bad", certified=False, lam=True), 1580, "diagonal")
    assert bad.certified is False and "Lambda on" in bad.label and bad.k is None
    assert bad.notes[0] == "NOT CERTIFIED (einstein): not a solution of the field equations"
    # every certificate it has holds, but none is the field equations' (einstein as an objective)
    soft = cmp.run_row(fake_run(tmp_path / "soft", einstein=False, summary_certified=True), 1580, "diagonal")
    assert soft.certified is False and "no certificate of the field equations" in soft.notes[0]
    assert "not a solution of the field equations" in soft.notes[0]
    other_n = cmp.run_row(fake_run(tmp_path / "n", n=1500), 1580, "diagonal")
    assert not other_n.comparable and "N = 1500" in other_n.notes[-1]
    other_cov = cmp.run_row(fake_run(tmp_path / "cov"), 1580, "/data/full.cov")
    assert not other_cov.comparable and "not comparable" in other_cov.notes[-1]
    redone = cmp.run_row(fake_run(tmp_path / "cov2"), 1580, "/data/full.cov", recompute=lambda d: 690.0)
    assert redone.comparable and redone.chi2 == 690.0 and "recomputed" in redone.notes[-1]
    with pytest.raises(FileNotFoundError, match="summary.json"):
        cmp.run_row(str(tmp_path), 1580, "diagonal")


def test_seeds_are_grouped_and_spread_reported(tmp_path):
    dirs = [fake_run(tmp_path / f"s{k}", seed=k, chi2=c) for k, c in enumerate((700.0, 690.0, 710.0))]
    other = fake_run(tmp_path / "other", lam=True)
    groups = cmp.seed_groups(dirs + [other])
    assert [sorted(g) for g in groups] == [sorted(dirs)]
    rows = [cmp.run_row(d, 1580, "diagonal") for d in dirs]
    text = cmp.seed_spread(rows, groups[0])
    assert "median 700.00 [690.00, 710.00] over 3 runs" in text


def test_table_marks_rows_and_names_the_errors(tmp_path, real):
    sample, host = real
    rows, _ = cmp.classical_rows(sample, host, gbh=False)
    rows.append(cmp.run_row(fake_run(tmp_path / "r", certified=False, chi2=675.0), sample.n, "diagonal"))
    text = cmp.format_table(rows, cmp.table_header(sample, "diagonal"))
    assert "errors: DIAGONAL" in text and "k counts every fitted constant, the magnitude offset included" in text
    line = [ln for ln in text.splitlines() if ln.startswith("r (lumpy")][0]
    assert "NOT CERTIFIED" in line and "not a solution of the field equations" in line
    assert f"{675.0 - rows[0].chi2:+.2f}" in line
    assert "FULL covariance /x.cov" in "\n".join(cmp.table_header(sample, "/x.cov"))


# ----------------------------------------------------------------------------- effective parameters


def test_effective_parameters_is_the_trace_of_the_hat_matrix():
    rng = np.random.default_rng(3)
    n, p = 40, 6
    sigma = rng.uniform(0.1, 0.3, n)
    host = host_whitening(rng.normal(size=n), sigma, None)
    jac = rng.normal(size=(n, p)) * np.array([30.0, 3.0, 1.0, 0.3, 0.03, 0.0])  # one direction unseen
    eff = net.effective_parameters(jac, host)
    a = jac / sigma[:, None]
    u = 1.0 / sigma
    a = a - np.outer(u, u @ a) / (u @ u)  # the offset projected out
    hat = a @ np.linalg.solve(a.T @ a + np.eye(p), a.T)
    assert eff.p_eff == pytest.approx(np.trace(hat), rel=1e-10) and eff.k_eff == pytest.approx(eff.p_eff + 1)
    assert eff.rank == 5 and eff.n_params == p and 0 < eff.p_eff < 5
    with pytest.raises(ValueError, match="jacobian must be"):
        net.effective_parameters(jac[:-1], host)


def test_moduli_jacobian_by_reverse_mode_chunks():
    z = jnp.linspace(0.1, 1.0, 7)

    def moduli(params):
        return 5.0 * jnp.log10(z * params["a"] + params["b"]["c"] * z**2)

    params = {"a": jnp.asarray(1.3), "b": {"c": jnp.asarray(0.4)}}
    jac = net.moduli_jacobian(moduli, params, chunk=3)  # 7 rows: chunks of 3, the last one padded
    d = np.asarray(z * 1.3 + 0.4 * z**2, np.float64)
    expect = 5.0 / np.log(10.0) / d[:, None] * np.stack([np.asarray(z), np.asarray(z**2)], axis=1)
    np.testing.assert_allclose(jac, expect, rtol=1e-5)


def test_fixing_lambda_needs_flat_flrw_with_lambda():
    cfg = types.SimpleNamespace(metric="synchronous", cosmological_constant=False, learn_curvature=False,
                                density="constraint")
    with pytest.raises(ValueError, match="profile_grid"):
        net.fix_lambda(types.SimpleNamespace(cfg=cfg), 0.7)
    with pytest.raises(ValueError, match="profile_grid"):
        net.retrain_profile([0.3, 1.2])


# ----------------------------------------------------------------------------- the command line


def test_cli_compare_end_to_end_on_a_fake_run(tmp_path, pantheon_dir, monkeypatch, capsys):
    from pinnopt.cli import main

    monkeypatch.setenv("PINNOPT_DATA_DIR", str(pantheon_dir))
    run = fake_run(tmp_path / "fake", certified=False, chi2=690.0, problem="flrw-control", lam=True)
    out = tmp_path / "table.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["compare", run, "-o", "gbh=False", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_text() == printed
    line = [ln for ln in printed.splitlines() if ln.startswith("fake (flrw-control, Lambda on")][0]
    assert "NOT CERTIFIED" in line and "+8.93" in line  # 690 - 681.07
    tokens = line.split()
    k = int(tokens[tokens.index("+8.93") + 1])  # the network's P + 1, from the problem rebuilt as the run was
    assert k > 100
    assert "flat LCDM profile likelihood" in printed and "errors: DIAGONAL" in printed
    with pytest.raises(SystemExit, match="RUN_DIR .*nowhere"):
        main(["compare", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit, match="--problem NAME"):
        main(["compare"])
    with pytest.raises(SystemExit, match="no_such_option"):
        main(["compare", run, "-o", "no_such_option=1"])


# ----------------------------------------------------------------------------- slow: fits and training


@pytest.mark.slow
def test_gbh_rows_on_the_real_data(real):
    """The two GBH fits (25 s): nested models, so freeing Omega_out cannot fit worse; k = 4 and 5."""
    sample, host = real
    rows, _ = cmp.classical_rows(sample, host)
    fixed, free = rows[2], rows[3]
    assert fixed.label.startswith("GBH void, Omega_out = 1") and (fixed.k, free.k) == (4, 5)
    assert free.chi2 <= fixed.chi2 + 1e-6 and fixed.chi2 < open_chi2(sample, 0.01)  # Om_in free beats open CDM's floor


@pytest.mark.slow
def test_retrained_profile_point_fixes_omega_m(pantheon_dir):
    """One flrw-control retraining (20 steps, ~150 s under load: compilation): Omega_m = 1 - Omega_Lambda."""
    points = net.retrain_profile([0.36], steps=20, data_path=pantheon_dir, log=None)
    (p,) = points
    assert p.omega_m_model == pytest.approx(0.36, abs=1e-5) and p.steps == 20
    assert 600.0 < p.chi2 < 800.0 and math.isfinite(p.residual_rms)
