"""Chart-free observables: FLRW distances and fits, sky multipoles, residual multipoles, and the
observer's past light cone. References: scipy quadrature of the Friedmann integrals, and sky
patterns built from Cartesian directions (not from the harmonics tested)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

from cosmology import audit, observables
from cosmology.metric import Background
from cosmology.raytrace import fibonacci_sphere

Z = np.geomspace(0.01, 2.3, 120)  # a Pantheon-like range


def quad_distance(z, om, ol):
    """d_L (H0 = 1) by scipy quadrature, any curvature."""
    ok = 1.0 - om - ol
    out = []
    for zz in np.atleast_1d(z):
        chi = quad(lambda x: 1.0 / math.sqrt(om * (1 + x) ** 3 + ok * (1 + x) ** 2 + ol), 0.0, zz, epsabs=1e-13,
                   epsrel=1e-13)[0]
        s = chi if abs(ok) < 1e-12 else (math.sinh(math.sqrt(ok) * chi) / math.sqrt(ok) if ok > 0
                                         else math.sin(math.sqrt(-ok) * chi) / math.sqrt(-ok))
        out.append((1 + zz) * s)
    return np.array(out)


@pytest.mark.parametrize("om, ol", [(0.3, 0.7), (0.3, 0.0), (1.2, 0.3), (1.0, 0.0)])
def test_flrw_distance_matches_quadrature(om, ol):
    z = np.array([0.02, 0.5, 1.5, 2.3])
    np.testing.assert_allclose(observables.flrw_luminosity_distance(z, om, ol), quad_distance(z, om, ol), rtol=1e-10)


@pytest.mark.parametrize("om, ol, scale", [(0.3, 0.7, 1.0), (0.3, 0.7, 1.7), (1.0, 0.0, 1.0), (0.3, 0.0, 0.8)])
def test_apparent_parameters_of_exact_flrw(om, ol, scale):
    # Noise-free d_L: the fit must return the model, so the apparent q0 is Om/2 - OL
    # (flat LCDM: -0.55; EdS: 0.5; open CDM: 0.15), and H the inverse of the distance scale.
    fit = observables.fit_flrw(Z, scale * quad_distance(Z, om, ol))
    assert fit.omega_m == pytest.approx(om, abs=1e-6) and fit.omega_lambda == pytest.approx(ol, abs=1e-6)
    assert fit.q0 == pytest.approx(om / 2 - ol, abs=2e-6)
    assert fit.hubble == pytest.approx(1.0 / scale, rel=1e-8) and fit.rms_mag < 1e-8


def test_local_hubble_rate_and_cosmographic_q0():
    z = np.geomspace(0.005, 0.1, 60)
    h, q0 = observables.local_hubble_rate(z, quad_distance(z, 0.3, 0.7) / 1.3)
    assert h == pytest.approx(1.3, rel=1e-4)
    assert q0 == pytest.approx(-0.55, abs=0.02)  # the cubic term left out biases it slightly
    with pytest.raises(ValueError, match="local Hubble rate"):
        observables.local_hubble_rate(np.array([0.5, 1.0]), np.array([0.5, 1.0]))


def test_sky_multipoles_of_a_known_pattern():
    nodes = fibonacci_sphere(32)
    x, y, z = nodes.T
    dipole, quad_amp = np.array([0.1, -0.2, 0.3]), 0.05
    values = 2.0 + nodes @ dipole + quad_amp * (x * x - y * y)
    parts = observables.multipole_parts(observables.sky_coefficients(values, nodes))
    assert parts["monopole"] == pytest.approx(2.0, rel=1e-12)
    np.testing.assert_allclose(parts["dipole"], dipole, rtol=1e-12)
    # The rms over the sky of (x^2 - y^2) is sqrt(<(x^2 - y^2)^2>) = sqrt(4 / 15).
    assert parts["rms"][2] == pytest.approx(quad_amp * math.sqrt(4 / 15), rel=1e-10)
    assert parts["rms"][1] == pytest.approx(np.linalg.norm(dipole) / math.sqrt(3), rel=1e-12)
    assert [observables.max_degree(n) for n in (1, 3, 4, 8, 9, 40)] == [0, 0, 1, 1, 2, 2]
    ra, dec = observables.sky_direction(np.array([0.0, 1.0, 1.0]))
    assert (ra, dec) == (pytest.approx(90.0), pytest.approx(45.0))


@pytest.mark.parametrize("correlated", [False, True])
def test_residual_dipole_is_found_in_its_bin(correlated):
    rng = np.random.default_rng(3)
    n = 600
    z = rng.uniform(0.011, 1.0, n)
    v = rng.normal(size=(n, 3))
    directions = v / np.linalg.norm(v, axis=1, keepdims=True)
    ra, dec = np.radians(120.0), np.radians(30.0)
    axis = np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)])
    residual = np.where(z <= 0.1, 0.05 * directions @ axis, 0.0) + 0.02  # a dipole at low z, an offset
    if correlated:
        a = rng.normal(size=(n, n)) / math.sqrt(n)
        cov = 1e-4 * (a @ a.T + np.eye(n))
        factor = np.linalg.inv(np.linalg.cholesky(cov))
    else:
        factor = 1.0 / rng.uniform(0.01, 0.02, n)
    bins = observables.residual_multipoles(z, directions, residual, factor, edges=(0.0, 0.1, 0.5, 1.0))
    assert [b["n"] for b in bins] == [int(np.sum(z <= 0.1)), int(np.sum((z > 0.1) & (z <= 0.5))),
                                      int(np.sum(z > 0.5))]
    low, high = bins[0], bins[1]
    assert low["dipole_mag"] == pytest.approx(0.05, rel=1e-8)
    assert low["dipole_ra_dec_deg"] == [pytest.approx(120.0), pytest.approx(30.0)]
    assert low["monopole_mag"] == pytest.approx(0.02, abs=1e-10) and high["dipole_mag"] < 1e-10
    # The monopole-only GLS: exact with independent errors; with correlated ones the low bin's
    # unmodelled dipole leaks into the others through the covariance (here ~1e-4 mag).
    assert high["mean_mag"] == pytest.approx(0.02, abs=1e-3 if correlated else 1e-10) and high["mean_err_mag"] > 0
    assert low["dipole_wald_chi2"] > 100 and high["dipole_wald_chi2"] < 1e-12
    # Along D alone the significance can only be lower (Cauchy-Schwarz: (u.D)^2 / u^T C u <= D^T C^-1 D),
    # and nearly as high when the errors are nearly isotropic.
    along = (low["dipole_mag"] / low["dipole_err_mag"]) ** 2
    assert 0.3 * low["dipole_wald_chi2"] < along <= low["dipole_wald_chi2"] * (1 + 1e-9)
    twice = observables.residual_multipoles(z, directions, 2 * residual, factor, edges=(0.0, 0.1, 0.5, 1.0))
    assert twice[0]["dipole_wald_chi2"] == pytest.approx(4 * low["dipole_wald_chi2"], rel=1e-8)


def test_reference_fits_recover_their_mock():
    z = np.geomspace(0.01, 2.0, 200)
    helio = np.ones_like(z)
    factor = np.full_like(z, 10.0)
    for family, om, ol in (("flat_lcdm", 0.32, 0.68), ("open_cdm", 0.25, 0.0)):
        mu = 5 * np.log10(quad_distance(z, om, ol)) + 43.1
        best_om, chi2 = observables.best_reference(mu, factor, z, helio, family)
        assert best_om == pytest.approx(om, abs=1e-5) and chi2 < 1e-8
        assert observables.reference_chi2(mu, factor, z, helio, 0.5, 0.0) > 1.0


@pytest.mark.slow  # one ray compilation (~10 s of CPU)
def test_light_cone_of_flat_lcdm():
    # Radial null rays in flat LCDM: the ray reaches redshift z at t(z) and comoving radius
    # D_C(z) (a0 = 1), with d_L = (1 + z) D_C; there the audit of LCDM read without Lambda
    # gives Omega_X = OL / (Om (1+z)^3 + OL).
    bg = Background("lcdm", 0.3)

    def metric(x):
        return jnp.diag(jnp.stack([-jnp.ones_like(x[0]), *[bg.scale_factor(x[0]) ** 2] * 3]))

    zs = np.array([0.05, 0.5, 1.5])
    directions = np.array([[0.0, 0.0, 1.0], [0.6, 0.0, 0.8]])

    def run(directions):
        pts, d_l = audit.light_cone(metric, jnp.zeros(4), directions, jnp.asarray(zs, jnp.float32))
        flat = pts.reshape(-1, 4)
        rho = 0.9 / jax.vmap(bg.scale_factor)(flat[:, 0]) ** 3
        return pts, d_l, audit.audit_points(metric, flat, rho)["omega_x"]

    pts, d_l, omega_x = (np.asarray(v, np.float64) for v in jax.jit(run)(jnp.asarray(directions, jnp.float32)))
    d_c = quad_distance(zs, 0.3, 0.7) / (1 + zs)
    t = np.asarray(bg.time_at_redshift(jnp.asarray(zs, jnp.float32)), np.float64)
    for r, n in enumerate(directions):
        np.testing.assert_allclose(pts[r, :, 0], t, rtol=2e-4)
        np.testing.assert_allclose(pts[r, :, 1:], d_c[:, None] * n[None], rtol=2e-4, atol=1e-6)
        np.testing.assert_allclose(d_l[r], (1 + zs) * d_c, rtol=2e-4)
    np.testing.assert_allclose(omega_x, np.tile(0.7 / (0.3 * (1 + zs) ** 3 + 0.7), 2), rtol=2e-4)
