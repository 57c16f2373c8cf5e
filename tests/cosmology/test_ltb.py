"""The exact LTB void (cosmology.ltb) and its distances (cosmology.ltb_distances), float64.

References, each independent of what it checks: scipy quadratures of the Friedmann equation
and of G(q); the parametric (eta) solution of open FLRW and the Mattig relation; the field
equations themselves, through the plugin's residual machinery (G_ab = kappa rho u_a u_b with the
closed-form density); the LTB radial null equations (scipy) for the ray tracer with a central
observer, and planar null geodesics with their Jacobi fields in the LTB's own (t, r, phi)
coordinates (scipy) for an off-centre one. Those references share only A(r, t) with the
Cartesian metric (checked on its own above), not its chart, jet, Christoffels or Jacobi map. The
ray tracer's tests share one compiled float64 solve (~50 s to compile) through a module
fixture and are marked slow.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

from cosmology import kinematics, ltb, ltb_distances as ld, matter
from cosmology.geometry import curvature_from_jet, metric_jet
from cosmology.problem import point_fields

VOID = ltb.GBHVoid(0.25, 1.0, 0.5, 0.15)  # Omega_in, Omega_out, r0, dr (code units, c/H0(0))
OPEN = ltb.GBHVoid(0.3, 0.3, 0.5, 0.15)  # Omega_in = Omega_out: open FLRW
QUAD = dict(epsabs=0.0, epsrel=1e-13, limit=200)


# ----------------------------------------------------------------------------- one shell


@pytest.mark.parametrize("q", [-0.9, -0.5, -0.1000001, -0.0999999, -0.03, 0.0, 1e-6, 0.0999999, 0.1000001, 0.5, 4.0, 19.0])
def test_the_age_integral_and_its_slope_match_quadrature(q):
    g, dg = ltb.age_integrals(np.float64(q), np)
    assert g == pytest.approx(quad(lambda v: math.sqrt(v / (1 + q * v)), 0, 1, **QUAD)[0], rel=1e-14)
    assert dg == pytest.approx(quad(lambda v: -0.5 * v**1.5 / (1 + q * v) ** 1.5, 0, 1, **QUAD)[0], rel=1e-13)


def test_the_age_is_gbhs_closed_form_and_continuous_at_omega_one():
    for om in (0.05, 0.25, 0.7, 0.99):
        closed = 1 / (1 - om) - om / (1 - om) ** 1.5 * math.asinh(math.sqrt((1 - om) / om))
        assert ltb.hubble_age(om) == pytest.approx(closed, rel=1e-13)
    assert ltb.hubble_age(1.0) == pytest.approx(2.0 / 3.0, rel=1e-15)
    # Across the series cut |q| = 0.1 (Omega = 1/1.1 and 1/0.9) the two forms agree to round-off.
    for q in (-ltb.SERIES_CUT, ltb.SERIES_CUT):
        below, above = ltb.age_integrals(np.array([q * (1 - 1e-12), q * (1 + 1e-12)]), np)[1]
        assert above == pytest.approx(below, rel=1e-13)


def test_the_scale_factor_solves_the_friedmann_equation():
    for om in (0.05, 0.3, 1.0, 1.4):
        for s in (0.02, 0.3, 0.7, 1.0, 1.1):
            y = float(ltb.scale_factor_np(s, (1 - om) / om))
            elapsed = quad(lambda v: math.sqrt(v / (om + (1 - om) * v)), 0, y, **QUAD)[0]  # H0 t since the bang
            assert elapsed == pytest.approx(s * ltb.hubble_age(om), rel=1e-12)


def test_newton_converges_everywhere_it_is_used():
    om, s = np.meshgrid(np.geomspace(0.02, 2.0, 40), np.geomspace(1e-3, 1.2, 40))
    q = (1 - om) / om
    y = ltb.scale_factor_np(s, q)
    phi = y**1.5 * ltb.age_integral(q * y, np)
    np.testing.assert_allclose(phi, s * ltb.age_integral(q, np), rtol=1e-14)  # 4 steps instead of 16: 2e-10


def test_the_jax_scale_factor_and_its_implicit_derivatives():
    # dY/ds from the Friedmann equation (t0 H0 E = tau0 sqrt(Omega/Y + 1 - Omega)); dY/dq from
    # central differences of the numpy solve; and the second derivative stays finite at q = 0.
    with jax.enable_x64(True):
        value_and_grad = jax.jit(jax.value_and_grad(ltb.scale_factor, argnums=(0, 1)))
        for om, s in ((0.3, 0.4), (1.0, 0.5), (0.93, 0.8), (1.2, 0.6)):
            q = (1 - om) / om
            y, (dy_ds, dy_dq) = value_and_grad(jnp.float64(s), jnp.float64(q))
            assert float(y) == pytest.approx(float(ltb.scale_factor_np(s, q)), rel=1e-15)
            assert float(dy_ds) == pytest.approx(ltb.hubble_age(om) * math.sqrt(om / float(y) + 1 - om), rel=1e-13)
            h = 1e-5
            fd = (ltb.scale_factor_np(s, q + h) - ltb.scale_factor_np(s, q - h)) / (2 * h)
            assert float(dy_dq) == pytest.approx(float(fd), rel=1e-8, abs=1e-12)
        curvature = jax.jit(jax.hessian(ltb.scale_factor, argnums=1))(jnp.float64(0.5), jnp.float64(0.0))
        assert np.isfinite(float(curvature)) and float(curvature) != 0.0


# ----------------------------------------------------------------------------- the profile and the FLRW limit


def test_the_two_profiles():
    r = np.array([0.0, 0.2, 0.5, 0.8, 2.0])
    a = VOID.r0 / VOID.dr
    fermi = lambda x: 1.0 / (1.0 + np.exp((x - VOID.r0) / VOID.dr))
    gbh, gbh_slope = ltb.profile_shape(r * r, VOID.r0, VOID.dr, "gbh", np)
    literal = (1 - np.tanh((r - VOID.r0) / (2 * VOID.dr))) / (1 + np.tanh(VOID.r0 / (2 * VOID.dr)))  # GBH's formula
    np.testing.assert_allclose(gbh, literal, rtol=1e-12)  # the tanh form's own round-off in the tail
    np.testing.assert_allclose(gbh, fermi(r) / fermi(0.0), rtol=1e-14)
    smooth, smooth_slope = ltb.profile_shape(r * r, VOID.r0, VOID.dr, "smooth", np)
    np.testing.assert_allclose(smooth, (fermi(r) + fermi(-r) - 1) / (2 * fermi(0.0) - 1), rtol=1e-13, atol=1e-16)
    assert np.max(np.abs(smooth - gbh)) < 2 * math.exp(-a)  # the two differ by O(exp(-r0/dr))
    assert smooth[0] == gbh[0] == 1.0 and smooth_slope[0] < 0  # even: f_r/r finite at the centre
    r_small = 1e-4  # GBH's slope does not vanish at the centre: the density cusp
    assert abs(float(ltb.profile_shape(r_small**2, VOID.r0, VOID.dr, "gbh", np)[1]) * r_small) > 1e-3
    with pytest.raises(ValueError, match="profile"):
        ltb.ltb_metric(VOID, profile="gbh")
    with pytest.raises(ValueError, match="profile"):
        ltb.ltb_fields(VOID, 0.1, 0.0, profile="tanh", xp=np)
    with pytest.raises(ValueError, match="dr must be > 0"):
        ltb.check_void(ltb.GBHVoid(0.3, 1.0, 0.5, -0.1))


def test_equal_omegas_give_open_flrw_and_eds():
    om = OPEN.omega_in
    age = ltb.hubble_age(om)
    r = np.array([0.0, 0.3, 1.2])
    for t in (0.0, -0.2, -0.5):
        # The parametric solution: Y = Om / (2 (1 - Om)) (cosh eta - 1), H0 t_b = Om / (2 (1 - Om)^1.5) (sinh eta - eta).
        eta = brentq(lambda e: om / (2 * (1 - om) ** 1.5) * (math.sinh(e) - e) - (t + age), 1e-9, 20, xtol=1e-15)
        a = om / (2 * (1 - om)) * (math.cosh(eta) - 1)
        hubble = math.sqrt(om / a**3 + (1 - om) / a**2)
        f = ltb.ltb_fields(OPEN, r, np.full(3, t), xp=np)
        np.testing.assert_allclose(f.y, a, rtol=1e-13)
        np.testing.assert_allclose(f.a_prime, a, rtol=1e-13)  # A = a(t) r
        np.testing.assert_allclose([f.h_perp, f.h_par], hubble, rtol=1e-12)
        np.testing.assert_allclose(f.kappa_rho, 3 * om / a**3, rtol=1e-12)
        np.testing.assert_allclose(f.one_minus_k, 1 + (1 - om) * r**2, rtol=1e-15)  # k = -(1 - Om) r^2 (H0 = 1)
    eds = ltb.ltb_fields(ltb.GBHVoid(1.0, 1.0, 0.5, 0.15), np.array([0.7]), np.array([-0.4]), xp=np)
    assert float(eds.y[0]) == pytest.approx((1 - 0.4 / (2 / 3)) ** (2 / 3), rel=1e-14)  # a = (t_b / t0)^(2/3)
    z = np.array([0.01, 0.5, 1.0, 2.3])
    for om in (0.3, 1.0):  # Mattig: d_L = 2 [Om z + (Om - 2)(sqrt(1 + Om z) - 1)] / Om^2
        cone = ld.central_light_cone(ltb.GBHVoid(om, om, 0.5, 0.15), z)
        mattig = 2 * (om * z + (om - 2) * (np.sqrt(1 + om * z) - 1)) / om**2
        np.testing.assert_allclose(cone.luminosity_distance, mattig, rtol=1e-9)
        np.testing.assert_allclose(cone.kappa_rho, 3 * om * (1 + z) ** 3, rtol=1e-9)


def test_the_light_cone_carries_y_consistently():
    # Y integrated along the cone equals Newton's Y(s, q) at the cone's (r, t): the closed-form
    # right-hand side is consistent with the solution it claims to follow.
    for profile in ltb.PROFILES:
        cone = ld.central_light_cone(VOID, np.array([0.05, 0.4, 1.0, 2.3]), profile=profile)
        np.testing.assert_allclose(cone.y, ltb.ltb_fields(VOID, cone.r, cone.t, profile, np).y, rtol=1e-9)
        assert np.all(np.diff(cone.r) > 0) and np.all(np.diff(cone.t) < 0)


# ----------------------------------------------------------------------------- the field equations


SPATIAL = [0.0, 1e-3, VOID.r0 - VOID.dr, VOID.r0, VOID.r0 + VOID.dr, 3 * VOID.r0]  # distances from the centre
TIMES = [0.0, -0.3, -0.6]  # -0.6: z ~ 2.7 at the centre
CENTRE = np.array([0.03, -0.02, 0.01])  # the observer at the origin is 0.037 off-centre


def _points():
    n = np.array([0.6, 0.0, 0.8])
    return np.array([[0.0, 0.0, 0.0, 0.0]] + [[t, *(CENTRE + r * n)] for t in TIMES for r in SPATIAL])


@pytest.fixture(scope="module")
def einstein():
    """One compiled function, the void's parameters traced, one metric jet per point: the
    residual r = |G - kappa rho u u| / (3 H^2 + kappa rho) (``matter.einstein_residual``) with
    the closed-form density, G_uu (the "constraint" density on a t = 0 slice), the dust's
    Hubble rates, and the chain-rule jet's first derivatives against forward mode."""
    with jax.enable_x64(True):
        @jax.jit
        def run(params, pts):
            g = ltb.ltb_metric(ltb.GBHVoid(*params), jnp.asarray(CENTRE))

            def at(x):
                jet = metric_jet(g, x)
                curv = curvature_from_jet(jet)
                dust = kinematics.comoving_kinematics_from_jet(jet.g, jet.dg, curv.g_inv, curv.christoffel)
                exact = ltb.ltb_density(ltb.GBHVoid(*params), jnp.asarray(CENTRE))(x)
                residual = matter.einstein_residual(curv.einstein_tensor, jet.g, curv.g_inv, exact, 0.0,
                                                    dust.mean_hubble_rate)
                g_uu = matter.density_along_dust(curv.einstein_tensor, jet.g, 0.0)
                jet_error = jnp.max(jnp.abs(jax.jacfwd(g)(x) - jet.dg))
                return residual, exact, g_uu, dust.hubble_rates, jet_error

            return jax.vmap(at)(pts)

    def evaluate(void):
        with jax.enable_x64(True):
            return jax.tree_util.tree_map(np.asarray, run(jnp.asarray(np.array(void, np.float64)), jnp.asarray(_points())))

    return evaluate


def test_the_void_solves_einsteins_equations_at_float_precision(einstein):
    residual, exact, g_uu, rates, jet_error = einstein(VOID)
    assert np.max(residual) < 1e-10, residual  # near the centre, across the wall, far out, to z ~ 2.7
    today = _points()[:, 0] == 0.0
    np.testing.assert_allclose(g_uu[today], exact[today], rtol=1e-10)  # the "constraint" density = the closed form
    assert np.max(jet_error) < 1e-12  # the chain-rule jet's d g against forward mode on the metric
    # The dust's Hubble rates are the LTB ones: H_par = Adot'/A' once, H_perp = Adot/A twice.
    pts = _points()
    f = ltb.ltb_fields(VOID, np.linalg.norm(pts[:, 1:] - CENTRE, axis=1), pts[:, 0], xp=np)
    np.testing.assert_allclose(np.sort(rates, axis=1), np.sort(np.stack([f.h_par, f.h_perp, f.h_perp], 1), axis=1),
                               rtol=1e-11)
    assert rates[1, 0] == pytest.approx(1.0, rel=1e-13)  # the unit: H0 = 1 at the centre today
    assert np.ptp(exact[today]) > 1.0  # the wall is there: kappa rho from 0.75 to ~2 today


def test_equal_omegas_in_the_same_machinery_are_flrw(einstein):
    residual, exact, _, rates, _ = einstein(OPEN)
    assert np.max(residual) < 1e-10
    y = ltb.ltb_fields(OPEN, np.zeros(len(_points())), _points()[:, 0], xp=np).y  # a(t), the same at every r
    np.testing.assert_allclose(exact, 0.9 / y**3, rtol=1e-12)
    np.testing.assert_allclose(rates, np.repeat(rates[:, :1], 3, axis=1), rtol=1e-12)  # isotropic


@pytest.mark.slow  # ~70 s: three metric jets per point compile slowly
def test_the_plugins_constraint_density_carries_the_ltb_dust():
    # point_fields with the "constraint" source: kappa rho from G_uu on the observer's slice,
    # carried along the worldlines by rest-mass conservation, as any PINN metric gets it.
    pts = _points()
    with jax.enable_x64(True):
        g = ltb.ltb_metric(VOID, CENTRE)

        @jax.jit
        def run(pts):
            observer = jnp.zeros(4)
            hubble = kinematics.comoving_kinematics(g, observer).mean_hubble_rate
            src = matter.constraint_source(g, observer, hubble, 0.0)
            return src.omega_m, hubble, jax.vmap(lambda x: point_fields(g, x, src, "weak"))(pts)

        omega_m, hubble, fields = jax.tree_util.tree_map(np.asarray, run(jnp.asarray(pts)))
    assert np.max(fields["residual"]) < 1e-10, fields["residual"]
    assert np.max(fields["energy_condition"]) <= 0  # dust meets the weak energy condition
    r = np.linalg.norm(pts[:, 1:] - CENTRE, axis=1)
    np.testing.assert_allclose(fields["kappa_rho"], ltb.ltb_fields(VOID, r, pts[:, 0], xp=np).kappa_rho, rtol=1e-10)
    # The observer, 0.037 off-centre, measures Omega_m = kappa rho / (3 H^2), H = (H_par + 2 H_perp) / 3.
    o = ltb.ltb_fields(VOID, np.linalg.norm(CENTRE), 0.0, xp=np)
    h_observer = (o.h_par + 2 * o.h_perp) / 3
    assert float(hubble) == pytest.approx(h_observer, rel=1e-12)
    assert float(omega_m) == pytest.approx(o.kappa_rho / (3 * h_observer**2), rel=1e-10)


# ----------------------------------------------------------------------------- the ray tracer (slow)


@pytest.fixture(scope="module")
def tracer():
    from cosmology import raytrace

    with jax.enable_x64(True):
        @jax.jit
        def d_l(params, centre, directions, redshifts):
            g = ltb.ltb_metric(ltb.GBHVoid(*params), centre)
            return raytrace.luminosity_distance(g, jnp.zeros(4), directions, redshifts)

    def trace(void, centre, directions, redshifts):
        with jax.enable_x64(True):
            args = [jnp.asarray(np.asarray(a, np.float64)) for a in (np.array(void), centre, directions, redshifts)]
            return np.asarray(d_l(*args))

    return trace


# 16 rows, like the off-centre test's 4 directions x 4 redshifts: one compiled solve serves both.
SKY = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-0.6, 0.8, 0], [0.3, -0.4, math.sqrt(0.75)], [0, 0, -1],
                [-1, 0, 0], [0.48, 0.6, -0.64]], float).repeat(2, axis=0)
Z = np.resize([0.05, 2.3, 0.3, 1.5, 0.8, 2.0, 0.1, 1.1], 16)


@pytest.mark.slow  # ~50 s: compiling the float64 ray solve through the LTB metric's jet
def test_the_tracer_matches_the_radial_null_equations_for_a_central_observer(tracer):
    d_l = tracer(VOID, np.zeros(3), SKY, Z)
    np.testing.assert_allclose(d_l, ld.central_light_cone(VOID, Z).luminosity_distance, rtol=1e-6)


ANGLES = {"away": 0.0, "perpendicular": math.pi / 2, "oblique": 2.5, "towards": math.pi}  # from the outward radial
OFFSET = 0.05  # 0.1 r0


@pytest.mark.slow  # ~10 s after the test above (the planar reference compiles its own derivatives)
def test_an_off_centre_observer_sees_the_dipole_the_ltb_geodesics_predict(tracer):
    z = np.array([0.05, 0.3, 1.0, 2.3])
    centre = np.array([OFFSET, 0.0, 0.0])  # the outward radial direction at the observer is -x
    reference = {k: ld.off_centre_luminosity_distance(VOID, OFFSET, a, z) for k, a in ANGLES.items()}
    directions = np.concatenate([np.repeat([[-math.cos(a), math.sin(a), 0.0]], z.size, 0) for a in ANGLES.values()])
    traced = tracer(VOID, centre, directions, np.tile(z, len(ANGLES))).reshape(len(ANGLES), z.size)
    for row, name in zip(traced, ANGLES):
        np.testing.assert_allclose(row, reference[name], rtol=1e-6, err_msg=name)
    # The dipole: looking away from the centre the void's faster expansion is seen longer.
    dipole = (reference["away"] - reference["towards"]) / reference["perpendicular"]
    assert dipole[0] > 1e-3, dipole  # 0.7% at z = 0.05, 1e4 times the agreement above
    central = ld.central_light_cone(VOID, z).luminosity_distance
    assert np.min(np.abs(reference["away"] / central - 1)) > 1e-3
    # The planar reference itself reduces to the central cone when the offset vanishes.
    tiny = ld.off_centre_luminosity_distance(VOID, 1e-7, math.pi / 2, z)
    np.testing.assert_allclose(tiny, central, rtol=1e-6)


# ----------------------------------------------------------------------------- the classical fit


def test_the_fit_recovers_a_void_from_noise_free_moduli():
    truth = ltb.GBHVoid(0.25, 1.0, 0.6, 0.2)
    z = np.geomspace(0.01, 2.3, 120)
    mu = ld.gbh_distance_moduli(truth, z) + 43.1  # any offset: marginalised
    fit = ld.fit_gbh_void(z, mu, errors=np.full(z.size, 0.1), start=ltb.GBHVoid(0.35, 1.0, 0.8, 0.3))
    assert fit.success and fit.chi2 < 1e-12 and fit.offset == pytest.approx(43.1, abs=1e-8)
    for name in ("omega_in", "r0", "dr"):
        assert getattr(fit.void, name) == pytest.approx(getattr(truth, name), rel=1e-3), name
    assert fit.void.omega_out == 1.0 and fit.dof == z.size - 4 and fit.at_bound == ()


@pytest.mark.slow  # ~10 s
def test_the_fit_with_a_covariance_and_a_free_outside():
    truth = ltb.GBHVoid(0.3, 0.9, 0.7, 0.25)
    z = np.geomspace(0.01, 2.0, 80)
    rng = np.random.default_rng(1)
    m = rng.normal(size=(z.size, z.size)) * 0.01
    cov = np.diag(np.full(z.size, 0.15**2)) + m @ m.T
    mu = ld.gbh_distance_moduli(truth, z, z * 1.001)
    fit = ld.fit_gbh_void(z, mu, covariance=cov, z_hel=z * 1.001, free_omega_out=True,
                          start=ltb.GBHVoid(0.35, 0.8, 0.8, 0.3))
    assert fit.chi2 < 1e-10
    for name in ltb.GBHVoid._fields:
        assert getattr(fit.void, name) == pytest.approx(getattr(truth, name), rel=1e-2), name


def test_the_fit_names_its_bad_options():
    z, mu = np.array([0.1, 0.5, 1.0]), np.array([38.0, 42.0, 44.0])
    with pytest.raises(ValueError, match="exactly one of errors, covariance or factor"):
        ld.fit_gbh_void(z, mu, errors=np.ones(3), covariance=np.eye(3))
    with pytest.raises(ValueError, match="bounds: unknown parameter 'h0'"):
        ld.fit_gbh_void(z, mu, errors=np.ones(3), bounds={"h0": (60, 80)})
    with pytest.raises(ValueError, match="start"):
        ld.fit_gbh_void(z, mu, errors=np.ones(3), start=ltb.GBHVoid(0.3, 1.0, 9.0, 0.2))
    with pytest.raises(ValueError, match="redshifts"):
        ld.central_light_cone(VOID, np.array([-0.1, 0.5]))
