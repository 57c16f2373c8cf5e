"""The void injection benchmark's machinery (benchmarks/bench_injection_voids.py), without training.

References, independent of the LTB code under test: Mattig's closed form of open (and
Einstein-de Sitter) dust, d_L = 2 [Omega z + (Omega - 2)(sqrt(1 + Omega z) - 1)] / Omega^2
(H0 = 1), which the LTB void must reproduce when Omega_in = Omega_out; the low-redshift
expansion d_L = z [1 + (1 - q0) z / 2 + O(z^2)] with q0 = Omega_in / 2 at the centre of a
smooth void (H0(r) and Omega(r) are even in r, so the centre's shell alone sets the first two
orders); flat LCDM by scipy quadrature. The readings are given the exact LTB light cone (its
own d_L and kappa rho, rescaled to an observer with H = 1.3 in code units) and must return the
void they came from.
"""
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_injection_voids as biv  # noqa: E402
from cosmology import ltb_distances as ld  # noqa: E402
from cosmology.ltb import GBHVoid  # noqa: E402


@pytest.fixture(scope="module")
def sample(pantheon_dir):
    from cosmology.data import load_pantheon_plus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_pantheon_plus(pantheon_dir)


def mattig(z, omega):
    return 2.0 * (omega * z + (omega - 2.0) * (np.sqrt(1.0 + omega * z) - 1.0)) / omega**2


def test_the_void_is_two_gigaparsecs_in_the_ltb_units():
    # 2 Gpc in c/H0(0) with H0(0) = 70 km/s/Mpc: c / H0 = 299792.458 / 70 Mpc.
    assert biv.VOID.r0 == pytest.approx(2000.0 * 70.0 / 299792.458, rel=1e-12)
    assert biv.VOID.dr * 299792.458 / 70.0 == pytest.approx(1000 * biv.VOID_GPC["dr"], rel=0.01)
    assert (biv.VOID.omega_in, biv.VOID.omega_out) == (0.2, 1.0)


@pytest.mark.parametrize("omega", [0.3, 1.0])
def test_the_void_mock_of_a_homogeneous_void_is_mattigs(sample, omega):
    z, zh = sample.z_hd, sample.z_hel
    mu = biv.void_mock(z, zh, GBHVoid(omega, omega, 0.5, 0.15))
    expected = 5 * np.log10(mattig(z, omega) * (1 + zh) / (1 + z)) + 25
    np.testing.assert_allclose(mu, expected, rtol=0, atol=1e-8)


def test_the_void_mock_is_the_central_light_cone_and_starts_with_q0_of_the_centre(sample):
    z, zh = sample.z_hd, sample.z_hel
    cone = ld.central_light_cone(biv.VOID, z)
    np.testing.assert_allclose(biv.void_mock(z, zh), 5 * np.log10(cone.luminosity_distance * (1 + zh) / (1 + z)) + 25,
                               rtol=0, atol=1e-12)
    small = np.array([2e-4, 5e-4, 1e-3])
    d_l = ld.central_light_cone(biv.VOID, small).luminosity_distance
    coefficient = (d_l / small - 1) / (small / 2)  # 1 - q0 + O(z)
    np.testing.assert_allclose(coefficient, 1 - biv.VOID.omega_in / 2, atol=2e-3)
    # ... and the mock is the void's, not EdS's (whose 1 - q0 is 0.5)
    assert np.all(np.abs(coefficient - 0.5) > 0.3)


def test_the_lcdm_mock_is_the_quadrature(sample):
    z, zh = sample.z_hd[::97], sample.z_hel[::97]
    om = biv.OMEGA_M_LCDM
    chi = np.array([quad(lambda x: 1 / math.sqrt(om * (1 + x) ** 3 + 1 - om), 0, zi, epsrel=1e-13)[0] for zi in z])
    np.testing.assert_allclose(biv.lcdm_mock(z, zh), 5 * np.log10((1 + zh) * chi) + 25, rtol=0, atol=1e-10)


def test_cone_from_rays_takes_the_observers_units_and_refuses_unreached_points():
    z = np.array([0.1, 0.5, 1.0])
    d_l = np.array([[1.0, 2.0, 3.0], [1.2, 2.2, 3.2]])
    rho = np.array([[4.0, 5.0, 6.0], [6.0, 5.0, 6.0]])
    cone = biv.cone_from_rays(z, d_l, rho, 2.0, 0.3)
    np.testing.assert_allclose(cone.d_l, [2.2, 4.2, 6.2])
    np.testing.assert_allclose(cone.kappa_rho, [1.25, 1.25, 1.5])
    np.testing.assert_allclose(cone.kappa_rho_spread, [0.4, 0.0, 0.0])
    with pytest.raises(RuntimeError, match="max_ray_steps"):
        biv.cone_from_rays(z, np.where(d_l > 3.1, np.nan, d_l), rho, 2.0, 0.3)
    with pytest.raises(ValueError, match="z_max"):
        biv.fit_density(z, cone.kappa_rho)


def test_the_readings_recover_the_exact_void_from_its_own_light_cone(sample):
    z, zh, err = sample.z_hd, sample.z_hel, sample.mu_err
    nodes = biv.cone_nodes(z)
    exact = ld.central_light_cone(biv.VOID, nodes)
    h = 1.3  # the same cone seen in code units where the observer's H is 1.3, by three identical rays
    cone = biv.cone_from_rays(nodes, np.tile(exact.luminosity_distance / h, (3, 1)),
                              np.tile(exact.kappa_rho * h**2, (3, 1)), h, biv.VOID.omega_in)
    readings = biv.read_void(cone, z, zh, err, starts=biv.STARTS[:1])  # one start, away from the truth
    for name, fit in readings.items():
        for key in ("omega_in", "r0", "dr"):
            assert getattr(fit.void, key) == pytest.approx(getattr(biv.VOID, key), rel=1e-3), (name, key)
        assert biv.verdict(fit.void)["passed"]
    assert readings["distances"].chi2 < 1e-4
    assert biv.density_difference(cone, biv.VOID)[0] < 1e-9
    # a void 12% too wide, or 12% too empty, is told apart
    wider, emptier = biv.VOID._replace(r0=1.12 * biv.VOID.r0), biv.VOID._replace(omega_in=0.176)
    assert not biv.verdict(wider)["passed"] and not biv.verdict(emptier)["passed"]
    assert biv.density_difference(cone, wider)[0] > 0.05 and biv.density_difference(cone, emptier)[0] > 0.1
