"""Dust and Lambda as the source of Einstein's equations: exact FLRW solutions have zero residual."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import matter
from cosmology.geometry import curvature
from cosmology.kinematics import mean_hubble_rate
from cosmology.metric import Background


def flrw(background: Background):
    """ds^2 = -dt^2 + a(t)^2 dx^2 of a closed-form background."""
    def g(x):
        a = background.scale_factor(x[0])
        return jnp.diag(jnp.stack([-jnp.ones_like(a), a**2, a**2, a**2]))
    return g


def residual_at(metric_fn, x, omega_m, omega_lambda):
    observer = jnp.zeros(4)
    src = matter.make_source(metric_fn(observer), mean_hubble_rate(metric_fn, observer), omega_m, omega_lambda)
    curv = curvature(metric_fn, x)
    kappa_rho = matter.dust_density(curv.g, src.norm)
    return matter.einstein_residual(curv.einstein_tensor, curv.g, curv.g_inv, kappa_rho,
                                    src.cosmological_constant, mean_hubble_rate(metric_fn, x))


POINTS = np.array([[0.0, 0.0, 0.0, 0.0], [-0.3, 0.4, -0.2, 0.1], [-0.6, -1.0, 0.5, 0.9]], np.float32)


@pytest.mark.parametrize("omega_m", [0.3, 0.5])
def test_lcdm_residual_vanishes_with_matching_parameters(omega_m):
    g = flrw(Background("lcdm", omega_m))
    r = jax.vmap(lambda x: residual_at(g, x, omega_m, 1.0 - omega_m))(jnp.asarray(POINTS))
    assert np.all(np.asarray(r) < 2e-5), r


def test_einstein_de_sitter_is_omega_one_without_lambda():
    g = flrw(Background("matter"))
    r = jax.vmap(lambda x: residual_at(g, x, 1.0, 0.0))(jnp.asarray(POINTS))
    assert np.all(np.asarray(r) < 2e-5), r


def test_mismatched_parameters_leave_a_residual_of_the_expected_size():
    # Exact LCDM(0.3) has G_ab = kappa rho u_a u_b - Lambda g_ab with Lambda = 2.1. Fitted with
    # Omega_m = 0.3 and no Lambda, E = -Lambda g, whose frame norm is 2 Lambda = 4.2, over the
    # scale 3 H^2 + kappa rho = 3.9 at the observer.
    g = flrw(Background("lcdm", 0.3))
    r = float(residual_at(g, jnp.zeros(4), 0.3, 0.0))
    assert r == pytest.approx(4.2 / (3.0 + 0.9), rel=1e-4)


def test_density_follows_the_comoving_volume():
    g = flrw(Background("matter"))
    observer = jnp.zeros(4)
    src = matter.make_source(g(observer), mean_hubble_rate(g, observer), 0.3, 0.0)
    assert float(matter.dust_density(g(observer), src.norm)) == pytest.approx(0.9, rel=1e-6)
    x = jnp.array([-0.4, 0.1, 0.2, 0.3])
    a = float(Background("matter").scale_factor(-0.4))
    assert float(matter.dust_density(g(x), src.norm)) == pytest.approx(0.9 / a**3, rel=1e-5)


def test_density_with_a_shift_is_rest_mass_conservation():
    # A boosted chart of Minkowski space has a shift; kappa rho = C sqrt(-g_tt)/sqrt(-det g)
    # must equal C / (u^t sqrt(-g)) with u^t = 1/sqrt(-g_tt).
    g = jnp.array([[-0.8, 0.3, 0.0, 0.0], [0.3, 1.2, 0.1, 0.0], [0.0, 0.1, 1.0, 0.0], [0.0, 0.0, 0.0, 1.5]])
    u_t = 1.0 / math.sqrt(0.8)
    expected = 2.0 / (u_t * math.sqrt(-float(jnp.linalg.det(g))))
    assert float(matter.dust_density(g, 2.0)) == pytest.approx(expected, rel=1e-5)
    u = matter.comoving_velocity(g)
    assert float(u @ g @ u) == pytest.approx(-1.0, rel=1e-6)


def test_frame_norm_is_the_orthonormal_frobenius_norm():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(4, 4))
    e = e + e.T
    g = np.diag([-4.0, 2.0, 3.0, 0.5])  # lapse 2
    scale = np.sqrt(np.abs(np.diag(g)))
    frame = e / np.outer(scale, scale)
    got = float(matter.frame_norm(jnp.asarray(e), jnp.asarray(g), jnp.linalg.inv(jnp.asarray(g))))
    assert got == pytest.approx(np.linalg.norm(frame), rel=1e-5)


def test_omega_m_bounds():
    raw = jnp.array([-50.0, 0.0, 50.0])
    om = np.asarray(matter.omega_m_from_raw(raw))
    assert om[0] == pytest.approx(0.05) and om[2] == pytest.approx(1.0) and 0.05 < om[1] < 1.0
    assert float(matter.omega_m_from_raw(matter.unbounded(0.3, 0.05, 1.0))) == pytest.approx(0.3, rel=1e-6)
    with pytest.raises(ValueError, match="inside"):
        matter.unbounded(1.2, 0.05, 1.0)


def test_residual_scale_is_not_differentiated():
    # The loss must fall by solving the equations, not by inflating H or rho in the denominator.
    g = flrw(Background("lcdm", 0.3))
    def r_of(h):
        curv = curvature(g, jnp.zeros(4))
        return matter.einstein_residual(curv.einstein_tensor, curv.g, curv.g_inv, 0.9, 0.0, h)
    assert float(jax.grad(r_of)(1.0)) == 0.0


# ----------------------------------------------------------------------------- the density from the field equations


@pytest.mark.parametrize("kind,omega_m,omega_lambda", [("matter", 1.0, 0.0), ("lcdm", 0.3, 0.7), ("lcdm", 0.5, 0.5)])
def test_constraint_density_is_derived_from_the_geometry_and_conserved(kind, omega_m, omega_lambda):
    # kappa rho(t_ref) = G_uu - Lambda on the observer's slice, carried by rest-mass conservation:
    # Omega_m comes out of the geometry, kappa rho a^3 stays 3 Omega_m, and the residual vanishes.
    bg = Background(kind, omega_m)
    g = flrw(bg)
    observer = jnp.zeros(4)

    @jax.jit
    def run(points):
        src = matter.constraint_source(g, observer, mean_hubble_rate(g, observer), jnp.float32(omega_lambda))
        def at(x):
            curv = curvature(g, x)
            rho = matter.comoving_density(g, x, src, curv.g)
            return rho, matter.einstein_residual(curv.einstein_tensor, curv.g, curv.g_inv, rho,
                                                 src.cosmological_constant, mean_hubble_rate(g, x))
        return src, jax.vmap(at)(points)

    src, (rho, r) = run(jnp.asarray(POINTS))
    assert src.density == "constraint" and np.isnan(float(src.norm))  # no single C to misuse
    assert float(src.omega_m) == pytest.approx(omega_m, rel=2e-5)
    a = np.asarray(jax.vmap(bg.scale_factor)(jnp.asarray(POINTS[:, 0])))
    np.testing.assert_allclose(np.asarray(rho) * a**3, 3.0 * omega_m, rtol=5e-5)
    assert np.all(np.asarray(r) < 2e-5), r


def test_uniform_source_is_labelled_and_keeps_its_constant():
    g = flrw(Background("matter"))
    observer = jnp.zeros(4)
    src = matter.make_source(g(observer), mean_hubble_rate(g, observer), 0.3, 0.0)
    assert src.density == "uniform" and src.reference_time is None
    x = jnp.array([-0.4, 0.1, 0.2, 0.3])
    assert float(matter.comoving_density(g, x, src)) == float(matter.dust_density(g(x), src.norm))


def test_residual_scale_stays_positive_for_negative_density():
    # The "constraint" density of a bad geometry can be negative; the scale must not vanish then.
    assert float(matter.residual_scale(1.0, -2.9)) == pytest.approx(5.9)
    assert float(matter.residual_scale(1.0, 0.9)) == pytest.approx(3.9)
