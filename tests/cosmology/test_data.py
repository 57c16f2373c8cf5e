"""Pantheon+ loader (download, cache, override, cuts, covariance, bad input) and the likelihood."""
from __future__ import annotations

import hashlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

from cosmology import data, likelihood as lk
from cosmology.data import DiagonalCovarianceWarning, load_pantheon_plus


def load_quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagonalCovarianceWarning)
        return load_pantheon_plus(*args, **kwargs)


@pytest.fixture(scope="module")
def real_sample(pantheon_file):
    return load_quiet(pantheon_file)


# ----------------------------------------------------------------------------------------
# The real table: cuts checked against an independent plain parse


def plain_parse(path):
    with open(path) as f:
        header = f.readline().split()
        body = [line.split() for line in f if line.strip()]
    col = {name: i for i, name in enumerate(header)}
    z = np.array([float(r[col["zHD"]]) for r in body])
    cal = np.array([r[col["IS_CALIBRATOR"]] == "1" for r in body])
    cid = np.array([r[col["CID"]] for r in body])
    return z, cal, cid


@pytest.mark.parametrize("z_min, exclude", [(0.01, True), (0.01, False), (0.0, True), (0.1, True)])
def test_cuts_match_an_independent_count(pantheon_file, z_min, exclude):
    z, cal, cid = plain_parse(pantheon_file)
    keep = (z > z_min) & ~(cal & exclude)
    sample = load_quiet(pantheon_file, z_min=z_min, exclude_calibrators=exclude)
    assert sample.n == sample.report.n_kept == keep.sum()
    assert sample.report.n_rows == len(z)
    assert sample.report.n_below_z_min == np.sum(z <= z_min)
    assert sample.report.n_unique == len(set(cid[keep]))
    np.testing.assert_array_equal(sample.z_hd, z[keep])
    np.testing.assert_array_equal(sample.row, np.flatnonzero(keep))
    assert not exclude or not sample.is_calibrator.any()


def test_real_sample_fields(real_sample, pantheon_file):
    s = real_sample
    assert s.source == str(pantheon_file) and s.cov is None
    assert len({len(getattr(s, f)) for f in s._fields
                if f not in ("cov", "report", "source", "z_cmb", "z_cmb_err", "redshift")}) == 1
    assert s.redshift == "zHD" and s.z is s.z_hd and s.z_cmb is None  # zCMB is read only when chosen
    np.testing.assert_allclose(np.linalg.norm(s.direction, axis=1), 1.0, atol=1e-12)
    # the unit vector gives back the angles
    np.testing.assert_allclose(np.rad2deg(np.arcsin(s.direction[:, 2])), s.dec, atol=1e-9)
    ra = np.rad2deg(np.arctan2(s.direction[:, 1], s.direction[:, 0])) % 360
    np.testing.assert_allclose(ra, s.ra, atol=1e-9)
    # MU_SH0ES = m_b_corr - M with one M for all rows (the release's SH0ES calibration)
    assert np.ptp(s.mu - s.m_b_corr) < 1e-3
    assert s.report.n_unique < s.n  # duplicates across surveys are kept
    assert "light curves kept" in str(s.report)


def test_diagonal_fallback_warns_once_per_process_and_names_the_option(pantheon_file, small_table, monkeypatch):
    from cosmology import covariance

    monkeypatch.setattr(covariance, "_DIAGONAL_WARNED", False)  # as in a fresh process
    path, _, cov = small_table
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # nothing filtered: every warning issued is recorded
        load_pantheon_plus(pantheon_file)
        load_pantheon_plus(pantheon_file, z_min=0.02)  # another call, another call site
        load_pantheon_plus(path, sha256=None)
    diag = [w for w in caught if issubclass(w.category, DiagonalCovarianceWarning)]
    assert len(diag) == 1, [str(w.message) for w in diag]
    message = str(diag[0].message)
    assert "plotting only" in message and "covariance=PATH" in message
    assert "-p covariance=PATH" in message and "Pantheon+SH0ES_STAT+SYS.cov" in message
    # a covariance never warns
    monkeypatch.setattr(covariance, "_DIAGONAL_WARNED", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagonalCovarianceWarning)
        load_pantheon_plus(path, covariance=cov, sha256=None)


# ----------------------------------------------------------------------------------------
# Download, cache, override (no network: `data.fetch` is replaced)


def test_download_to_xdg_cache_verified_and_reused(pantheon_file, no_data_env, monkeypatch, capsys):
    calls = []

    def fake_fetch(url, timeout):
        calls.append((url, timeout))
        return pantheon_file.read_bytes()

    monkeypatch.setattr(data, "fetch", fake_fetch)
    sample = load_quiet()
    target = no_data_env / "pinnopt" / data.PANTHEON_PLUS_FILENAME
    assert sample.source == str(target) and target.is_file()
    assert calls == [(data.PANTHEON_PLUS_URL, data.DOWNLOAD_TIMEOUT_S)]
    assert str(target) in capsys.readouterr().err  # says where it went
    assert data.sha256_file(target) == data.PANTHEON_PLUS_SHA256
    load_quiet()
    assert len(calls) == 1  # served from the cache
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind


def test_download_with_bad_checksum_writes_nothing(no_data_env, monkeypatch):
    monkeypatch.setattr(data, "fetch", lambda url, timeout: b"<html>rate limited</html>")
    with pytest.raises(ValueError, match="checksum"):
        load_quiet()
    folder = no_data_env / "pinnopt"
    assert not folder.exists() or not any(folder.iterdir())


def test_corrupted_cache_is_downloaded_again(pantheon_file, no_data_env, monkeypatch):
    target = no_data_env / "pinnopt" / data.PANTHEON_PLUS_FILENAME
    target.parent.mkdir(parents=True)
    target.write_text("truncated")
    monkeypatch.setattr(data, "fetch", lambda url, timeout: pantheon_file.read_bytes())
    with pytest.warns(UserWarning, match="downloading it again"):
        path = data.pantheon_plus_path()
    assert path == target and data.sha256_file(target) == data.PANTHEON_PLUS_SHA256


def test_download_is_atomic_and_generic(tmp_path, monkeypatch):
    payload = b"0123456789" * 1000
    monkeypatch.setattr(data, "fetch", lambda url, timeout: payload)
    dest = data.download("https://example.invalid/x", tmp_path / "a" / "x.dat",
                         hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload and list(dest.parent.iterdir()) == [dest]


def test_cache_dir_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "pinnopt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "pinnopt"


def test_env_override_used_before_cache(pantheon_dir, no_data_env, monkeypatch):
    monkeypatch.setenv("PINNOPT_DATA_DIR", str(pantheon_dir))
    monkeypatch.setattr(data, "fetch", lambda *a, **k: pytest.fail("must not download"))
    assert data.pantheon_plus_path() == pantheon_dir / data.PANTHEON_PLUS_FILENAME
    monkeypatch.setenv("PINNOPT_DATA_DIR", str(no_data_env))  # a folder without the table
    with pytest.raises(FileNotFoundError, match="PINNOPT_DATA_DIR"):
        data.pantheon_plus_path()


# ----------------------------------------------------------------------------------------
# Bad input: a clear error naming the file and the problem


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        load_quiet(tmp_path / "nope.dat")
    with pytest.raises(FileNotFoundError, match="Pantheon"):
        load_quiet(tmp_path)  # a folder without the table


def test_wrong_checksum(small_table):
    path, _, _ = small_table
    with pytest.raises(ValueError, match=r"table\.dat: sha256 .* does not match"):
        load_quiet(path)  # the default expects the release file
    assert load_quiet(path, sha256=None).n == 6  # 8 rows - 1 below z_min - 1 calibrator


def test_missing_column(tmp_path, tables):
    cols = tuple(c for c in tables.columns if c != "MU_SH0ES")
    path = tables.write(tmp_path / "t.dat", tables.rows(), cols)
    with pytest.raises(ValueError, match=r"t\.dat: missing column\(s\) MU_SH0ES"):
        load_quiet(path, sha256=None)


@pytest.mark.parametrize("value, message", [
    ("abc", r"t\.dat:4: column zHD has non-numeric value 'abc'"),
    ("nan", r"t\.dat:4: column zHD is nan \(NaN"),
    ("inf", r"t\.dat:4: column zHD is inf"),
])
def test_bad_values(tmp_path, tables, value, message):
    rows = tables.rows()
    rows[2]["zHD"] = value  # line 4 of the file (header is line 1)
    path = tables.write(tmp_path / "t.dat", rows)
    with pytest.raises(ValueError, match=message):
        load_quiet(path, sha256=None)


def test_ragged_row_and_bad_flag_and_angles(tmp_path, tables):
    path = tables.write(tmp_path / "t.dat", tables.rows())
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + [lines[3] + " 7"] + lines[4:]) + "\n")
    with pytest.raises(ValueError, match=r"t\.dat:4: 16 fields, the header has 15"):
        load_quiet(path, sha256=None)
    rows = tables.rows()
    rows[1]["IS_CALIBRATOR"] = 0.5
    with pytest.raises(ValueError, match="IS_CALIBRATOR must be an integer"):
        load_quiet(tables.write(path, rows), sha256=None)
    rows = tables.rows()
    rows[4]["DEC"] = 91.0
    with pytest.raises(ValueError, match=r"t\.dat:6: column DEC out of"):
        load_quiet(tables.write(path, rows), sha256=None)


def test_bad_z_min(small_table):
    with pytest.raises(ValueError, match="z_min"):
        load_quiet(small_table[0], z_min=-1, sha256=None)


# ----------------------------------------------------------------------------------------
# Covariance: the release format, the cuts on rows and columns, and its errors


def test_covariance_cut_on_rows_and_columns(small_table, tmp_path, tables):
    path, rows, cov = small_table
    cov_path = tables.write_cov(tmp_path / "c.cov", cov)
    sample = load_pantheon_plus(path, covariance=cov_path, sha256=None)
    kept = [k for k, r in enumerate(rows) if r["zHD"] > 0.01 and not r["IS_CALIBRATOR"]]
    np.testing.assert_array_equal(sample.row, kept)
    np.testing.assert_allclose(sample.cov, cov[np.ix_(kept, kept)], rtol=1e-15)
    from_array = load_pantheon_plus(path, covariance=cov, sha256=None)
    np.testing.assert_array_equal(from_array.cov, sample.cov)


def test_covariance_errors(small_table, tmp_path, tables):
    path, rows, cov = small_table
    n = len(rows)

    def load_with(cov_path):
        return load_pantheon_plus(path, covariance=cov_path, sha256=None)

    with pytest.raises(FileNotFoundError, match="none.cov"):
        load_with(tmp_path / "none.cov")
    with pytest.raises(ValueError, match=r"small\.cov: covariance is 7x7 but the table has 8 rows"):
        load_with(tables.write_cov(tmp_path / "small.cov", cov[:7, :7]))
    with pytest.raises(ValueError, match=r"short\.cov: expected N\*N = 64 values after N = 8, found 63"):
        p = tables.write_cov(tmp_path / "short.cov", cov)
        p.write_text(p.read_text().rsplit("\n", 2)[0] + "\n")
        load_with(p)
    text = tables.write_cov(tmp_path / "x.cov", cov).read_text().replace(repr(float(cov[3, 3])), "x", 1)
    (tmp_path / "word.cov").write_text(text)
    with pytest.raises(ValueError, match=r"word\.cov: non-numeric value 'x'"):
        load_with(tmp_path / "word.cov")
    bad = cov.copy()
    bad[2, 5] = bad[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"nan\.cov: covariance entry \(2, 5\) is nan"):
        load_with(tables.write_cov(tmp_path / "nan.cov", bad))
    bad = cov.copy()
    bad[1, 6] += 0.5
    with pytest.raises(ValueError, match=r"asym\.cov: covariance is not symmetric"):
        load_with(tables.write_cov(tmp_path / "asym.cov", bad))
    bad = cov.copy()
    bad[4, 4] = -1.0  # row 4 survives the cuts
    with pytest.raises(ValueError, match=r"neg\.cov \(after the cuts\): covariance is not positive definite"):
        load_with(tables.write_cov(tmp_path / "neg.cov", bad))
    bad = cov.copy()
    bad[0, 0] = -1.0  # row 0 is cut (z < 0.01): what is fitted stays positive definite
    load_with(tables.write_cov(tmp_path / "cut.cov", bad))
    with pytest.raises(ValueError, match="covariance array: shape"):
        load_with(np.eye(n - 1))


# ----------------------------------------------------------------------------------------
# Distances and the whitened chi^2


def test_distance_modulus_and_units():
    assert float(lk.distance_modulus(1e-5)) == pytest.approx(0.0, abs=1e-12)  # 10 pc
    np.testing.assert_allclose(lk.distance_modulus(np.array([1.0, 100.0])), [25.0, 35.0])
    assert lk.distance_modulus(jnp.float32(10.0)).dtype == jnp.float32
    assert lk.code_to_mpc(1.0, 70.0) == pytest.approx(299792.458 / 70.0)
    d_code = jnp.array([0.1, 1.0], jnp.float32)
    mu = jax.jit(lambda d: lk.distance_modulus(lk.code_to_mpc(d, 70.0)))(d_code)
    np.testing.assert_allclose(mu, 5 * np.log10(np.array([0.1, 1.0]) * 299792.458 / 70.0) + 25, rtol=1e-6)


def synthetic(n, full, seed=0):
    """A small sample whose observable is known, with a full or a diagonal covariance."""
    rng = np.random.default_rng(seed)
    z = np.sort(rng.uniform(0.02, 1.5, n))
    err = rng.uniform(0.1, 0.2, n)
    cov = None
    if full:
        a = rng.normal(size=(n, n)) * 0.03
        cov = np.diag(err**2) + a @ a.T + 0.01  # correlated, with a common offset term
    mu = 5 * np.log10(lk.luminosity_distance_flat_lcdm(z, 0.3)) + 43.0 + rng.normal(0, 0.1, n)
    fields = dict.fromkeys(data.SupernovaSample._fields, np.zeros(n))
    fields.update(z_hd=z, z_hel=z, mu=mu, mu_err=err, m_b_corr=mu - 19.25, m_b_corr_err=err, cov=cov,
                  report=None, source="synthetic", z_cmb=None, z_cmb_err=None, redshift="zHD")
    return data.SupernovaSample(**fields)


def reference_chi2(sample, mu_model):
    """Plain formulas with an explicit inverse, float64."""
    c = sample.cov if sample.cov is not None else np.diag(sample.mu_err**2)
    ci = np.linalg.inv(c)
    r = sample.mu - mu_model
    a, b, e = r @ ci @ r, np.sum(ci @ r), np.sum(ci)
    return a, b, e, ci


@pytest.mark.parametrize("full", [True, False])
def test_chi2_matches_explicit_inverse(full):
    sample = synthetic(40, full)
    mu_model = 5 * np.log10(lk.luminosity_distance_flat_lcdm(sample.z_hd, 0.35)) + 42.0
    a, b, e, _ = reference_chi2(sample, mu_model)
    wh = lk.make_whitening(sample)
    assert wh.factor.dtype == jnp.float32 and wh.factor.ndim == (2 if full else 1)
    m = jnp.asarray(mu_model, jnp.float32)
    np.testing.assert_allclose(lk.chi2(wh, m, offset=0.0), a, rtol=1e-4)
    np.testing.assert_allclose(lk.chi2(wh, m, offset=0.7), a - 2 * 0.7 * b + 0.49 * e, rtol=1e-4)
    np.testing.assert_allclose(lk.chi2(wh, m), a - b**2 / e, rtol=1e-4)
    np.testing.assert_allclose(lk.chi2(wh, m, log_norm=True), a - b**2 / e + np.log(e / (2 * np.pi)), rtol=1e-4)
    np.testing.assert_allclose(lk.best_offset(wh, m), b / e, rtol=1e-4)
    # the marginalised chi^2 is the fixed-offset chi^2 at the best offset, and its residuals
    # are the per-point terms a training objective sums
    np.testing.assert_allclose(lk.chi2(wh, m, lk.best_offset(wh, m)), a - b**2 / e, rtol=1e-4)
    np.testing.assert_allclose(jnp.sum(lk.whitened_residuals(wh, m) ** 2), a - b**2 / e, rtol=1e-5)


def test_marginalised_chi2_ignores_a_large_offset_in_float32():
    sample = synthetic(200, True)
    wh = lk.make_whitening(sample)
    m = jnp.asarray(5 * np.log10(lk.luminosity_distance_flat_lcdm(sample.z_hd, 0.3)), jnp.float32)
    base = lk.chi2(wh, m + 43.0)
    for shift in (0.0, 30.0, -40.0):  # an arbitrary H0 shifts every model modulus
        np.testing.assert_allclose(lk.chi2(wh, m + shift), base, rtol=1e-5)


@pytest.mark.parametrize("full", [True, False])
def test_chi2_gradient_under_jit(full):
    sample = synthetic(30, full, seed=3)
    wh = lk.make_whitening(sample)
    mu_model = 5 * np.log10(lk.luminosity_distance_flat_lcdm(sample.z_hd, 0.25)) + 43.1
    _, b, e, ci = reference_chi2(sample, mu_model)
    r = sample.mu - mu_model
    grad = jax.jit(jax.grad(lambda m, wh: lk.chi2(wh, m)))(jnp.asarray(mu_model, jnp.float32), wh)
    # d/dmu (a - b^2/e) = -2 C^-1 (r - (b/e) 1)
    np.testing.assert_allclose(grad, -2 * ci @ (r - b / e), rtol=2e-3, atol=1e-3)
    grad_fixed = jax.grad(lambda m: lk.chi2(wh, m, 0.0))(jnp.asarray(mu_model, jnp.float32))
    np.testing.assert_allclose(grad_fixed, -2 * ci @ r, rtol=2e-3, atol=1e-3)


def test_bad_offset_and_observable():
    sample = synthetic(5, False)
    with pytest.raises(ValueError, match="offset"):
        lk.chi2(lk.make_whitening(sample), jnp.zeros(5), offset="profile")
    with pytest.raises(ValueError, match="observable"):
        lk.make_whitening(sample, observable="MU")


# ----------------------------------------------------------------------------------------
# The classical flat-LCDM fit


def test_comoving_distance_against_quad():
    z = np.array([0.01, 0.3, 1.0, 2.3])
    for om in (0.05, 0.3, 0.9):
        quad = [scipy.integrate.quad(lambda x: 1 / np.sqrt(om * (1 + x) ** 3 + 1 - om), 0, zi,
                                     epsabs=1e-13, epsrel=1e-13)[0] for zi in z]
        np.testing.assert_allclose(lk.comoving_distance_flat_lcdm(z, om), quad, rtol=1e-10)
        np.testing.assert_allclose(lk.comoving_distance_flat_lcdm(jnp.asarray(z, jnp.float32), om), quad, rtol=1e-5)
    ratio = lk.luminosity_distance_flat_lcdm(z, 0.3, z_hel=z + 0.002) / lk.luminosity_distance_flat_lcdm(z, 0.3)
    np.testing.assert_allclose(ratio, (1 + z + 0.002) / (1 + z), rtol=1e-14)


def test_fit_on_real_data_with_diagonal_errors(real_sample):
    fit = lk.fit_flat_lcdm(real_sample)
    assert 0.2 < fit.omega_m < 0.45
    assert 0.005 < fit.omega_m_err < 0.05
    assert fit.n == real_sample.n and fit.dof == fit.n - 2
    assert 60 < fit.h0 < 85  # MU_SH0ES carries the SH0ES calibration


@pytest.mark.parametrize("omega_m", [0.3, 0.4])
def test_fit_recovers_a_known_cosmology(real_sample, omega_m):
    """Noise-free moduli at the real redshifts (heliocentric correction included)."""
    dl = lk.luminosity_distance_flat_lcdm(real_sample.z_hd, omega_m, real_sample.z_hel)
    fake = real_sample._replace(mu=5 * np.log10(dl) + 43.2)
    fit = lk.fit_flat_lcdm(fake)
    assert abs(fit.omega_m - omega_m) < 1e-3
    assert fit.chi2 < 1e-6 and fit.offset == pytest.approx(43.2, abs=1e-4)


def test_fit_with_full_covariance_and_its_error_bar():
    """Recovery through a correlated covariance, and the error bar against the Fisher matrix."""
    sample = synthetic(300, True, seed=5)
    truth = 5 * np.log10(lk.luminosity_distance_flat_lcdm(sample.z_hd, 0.3)) + 43.0
    sample = sample._replace(mu=truth)
    fit = lk.fit_flat_lcdm(sample)
    assert abs(fit.omega_m - 0.3) < 1e-3
    h = 1e-5
    jac = 5 * np.log10(lk.luminosity_distance_flat_lcdm(sample.z_hd, 0.3 + h) /
                       lk.luminosity_distance_flat_lcdm(sample.z_hd, 0.3 - h)) / (2 * h)
    ci = np.linalg.inv(sample.cov)
    ones = np.ones(sample.n)
    jac_perp = jac - (ones @ ci @ jac) / (ones @ ci @ ones)  # the offset marginalised
    assert fit.omega_m_err == pytest.approx(1 / np.sqrt(jac_perp @ ci @ jac_perp), rel=0.02)
