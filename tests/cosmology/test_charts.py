"""Exact FLRW universes in non-trivial charts: the field equations and every prior must see the
universe, not the coordinates (issue 15, parts 4 and 5). float64 throughout.

A metric in the chart y is g_y(t, y) = J^T g_x(t, x(y)) J with J = dx/dy (written out, and
checked against jax.jacfwd: nested forward mode through a jacfwd inside the metric costs
twice the compile time), so the curvature engine differentiates the composed function directly. The exact solutions are
closed forms checked here on their own: Einstein-de Sitter, flat LCDM (Omega_m = 0.3, Lambda on)
and open FLRW with k = -1, Omega_m = 0.3, Lambda = 0 (the parametric cycloid-like solution,
checked against a quadrature of the Friedmann equation).
"""
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

from cosmology import kinematics, matter
from cosmology.metric import Background
from cosmology.priors import cmb_prior_values
from cosmology.problem import point_fields

# ----------------------------------------------------------------------------- charts


class Chart(NamedTuple):
    name: str
    x_of_y: Callable  # x(y), (3,) -> (3,)
    jacobian: Callable  # dx/dy, (3,) -> (3, 3)


# x = y (1 + 0.3 |y|^2): a radial stretch (the former construction's counterexample).
STRETCH = Chart("stretch", lambda y: y * (1.0 + 0.3 * (y @ y)),
                lambda y: (1.0 + 0.3 * (y @ y)) * jnp.eye(3, dtype=y.dtype) + 0.6 * jnp.outer(y, y))
# x = y + 0.3 sin(3 y_2) e_1: volume-preserving (det J = 1).
WAVE = Chart("wave", lambda y: y + 0.3 * jnp.sin(3.0 * y[1]) * jnp.eye(3, dtype=y.dtype)[0],
             lambda y: jnp.eye(3, dtype=y.dtype).at[0, 1].set(0.9 * jnp.cos(3.0 * y[1])))
IDENTITY = Chart("identity", lambda y: y, lambda y: jnp.eye(3, dtype=y.dtype))


def in_chart(metric_x, chart: Chart):
    """g_y(t, y) = J^T g_x(t, x(y)) J, J = d(t, x) / d(t, y)."""
    def g(p):
        full = jnp.zeros((4, 4), p.dtype).at[0, 0].set(1.0).at[1:, 1:].set(chart.jacobian(p[1:]))
        return full.T @ metric_x(jnp.concatenate([p[:1], chart.x_of_y(p[1:])])) @ full
    return g


@pytest.mark.parametrize("chart", [STRETCH, WAVE], ids=lambda c: c.name)
def test_the_charts_jacobians(chart):
    y = jnp.array([0.5, -0.7, 0.2])
    np.testing.assert_allclose(chart.jacobian(y), jax.jacfwd(chart.x_of_y)(y), rtol=1e-6)
    if chart is WAVE:
        assert float(jnp.linalg.det(chart.jacobian(y))) == pytest.approx(1.0)


def isotropic_flrw(scale_factor, k=0.0):
    """ds^2 = -dt^2 + a(t)^2 |dx|^2 / (1 + k |x|^2 / 4)^2 (Cartesian when k = 0)."""
    def g(p):
        a = scale_factor(p[0])
        spatial = a**2 / (1.0 + 0.25 * k * (p[1:] @ p[1:])) ** 2
        return jnp.diag(jnp.stack([-jnp.ones_like(a), spatial, spatial, spatial]))
    return g


# ----------------------------------------------------------------------------- open FLRW (k = -1, Lambda = 0)

OPEN_OMEGA_M = 0.3
OPEN_A0 = 1.0 / math.sqrt(1.0 - OPEN_OMEGA_M)  # k = -1 and H0 = 1: a0 H0 = sqrt(-k / Omega_k)
OPEN_AMPLITUDE = 0.5 * OPEN_OMEGA_M * OPEN_A0**3  # A = kappa rho a^3 / 6 = 3 Omega_m H0^2 a0^3 / 6
OPEN_ETA0 = math.acosh(1.0 + OPEN_A0 / OPEN_AMPLITUDE)
OPEN_AGE = OPEN_AMPLITUDE * (math.sinh(OPEN_ETA0) - OPEN_ETA0)


@jax.custom_jvp
def open_conformal_time(t):
    """eta(t) from t + age = A (sinh eta - eta) (Newton, converged in float64)."""
    target = t + OPEN_AGE

    def newton(_, eta):
        return eta - (OPEN_AMPLITUDE * (jnp.sinh(eta) - eta) - target) / (OPEN_AMPLITUDE * (jnp.cosh(eta) - 1.0))

    start = jnp.cbrt(6.0 * target / OPEN_AMPLITUDE)  # small eta: sinh eta - eta ~ eta^3 / 6 (an upper bound)
    return jax.lax.fori_loop(0, 60, newton, start)


@open_conformal_time.defjvp
def _open_conformal_time_jvp(primals, tangents):
    (t,), (dt,) = primals, tangents
    eta = open_conformal_time(t)
    return eta, dt / (OPEN_AMPLITUDE * (jnp.cosh(eta) - 1.0))  # d eta / dt = 1 / a


def open_scale_factor(t):
    """a(t) = A (cosh eta - 1) of open dust, k = -1: a(0) = a0, H(0) = 1, Omega_m(0) = 0.3."""
    return OPEN_AMPLITUDE * (jnp.cosh(open_conformal_time(t)) - 1.0)


def test_the_open_solution_is_the_friedmann_one():
    with jax.enable_x64(True):
        t0 = jnp.zeros((), jnp.float64)
        a0, da0 = jax.jvp(open_scale_factor, (t0,), (jnp.ones_like(t0),))
        assert float(a0) == pytest.approx(OPEN_A0, rel=1e-13) and float(da0 / a0) == pytest.approx(1.0, rel=1e-12)
        # Independent reference: t(a) - t(a0) = int_{a0}^{a} da / (a H(a)), H^2 = Omega_m a0^3 / a^3 + a0^2 (1 - Omega_m) / a^2.
        hubble = lambda a: math.sqrt(OPEN_OMEGA_M * (OPEN_A0 / a) ** 3 + (1 - OPEN_OMEGA_M) * (OPEN_A0 / a) ** 2)
        for t in (-0.2, -0.5, -0.8):
            a = float(open_scale_factor(jnp.float64(t)))
            elapsed = quad(lambda b: 1.0 / (b * hubble(b)), OPEN_A0, a, epsrel=1e-13)[0]
            assert elapsed == pytest.approx(t, rel=1e-10)


# ----------------------------------------------------------------------------- the cases

def open_time_at_redshift(z):
    """t(z) of the open solution: cosh eta = 1 + a / A, t = A (sinh eta - eta) - age."""
    eta = math.acosh(1.0 + OPEN_A0 / (1.0 + z) / OPEN_AMPLITUDE)
    return OPEN_AMPLITUDE * (math.sinh(eta) - eta) - OPEN_AGE


class Universe(NamedTuple):
    name: str
    scale_factor: Callable
    curvature: float  # k of the isotropic chart
    omega_m: float
    omega_lambda: float
    time_at_redshift: Callable


EDS = Universe("eds", Background("matter").scale_factor, 0.0, 1.0, 0.0,
               lambda z: float(Background("matter").time_at_redshift(z)))
LCDM = Universe("lcdm", Background("lcdm", 0.3).scale_factor, 0.0, 0.3, 0.7,
                lambda z: float(Background("lcdm", 0.3).time_at_redshift(z)))
OPEN = Universe("open", open_scale_factor, -1.0, OPEN_OMEGA_M, 0.0, open_time_at_redshift)
# Two non-trivial charts each; open FLRW's own chart is already the isotropic one.
# ~15 s each (compiling fourth derivatives of the chart maps): two by default, the rest slow.
FAST = [(EDS, STRETCH)]  # exact open FLRW through the network path: tests/cosmology/test_open_background.py
SLOW = [(OPEN, IDENTITY), (EDS, WAVE), (LCDM, STRETCH), (LCDM, WAVE), (OPEN, STRETCH), (OPEN, WAVE)]

# Points (t, y): the observer, the supernova era, and the CMB window z in [20, 50] of each universe.
SPATIAL = np.array([[0.0, 0.0, 0.0], [0.5, -0.2, 0.1], [-0.6, 0.35, 0.55]])


def cmb_times(case):
    """Times at z = 20, 35 and 50 (float64)."""
    with jax.enable_x64(True):
        return [case.time_at_redshift(z) for z in (20.0, 35.0, 50.0)]


def universe(case, chart):
    return in_chart(isotropic_flrw(case.scale_factor, case.curvature), chart)


def source(metric_fn, omega_lambda, density="constraint", omega_m=None):
    observer = jnp.zeros(4, jnp.float64)
    hubble = kinematics.comoving_kinematics(metric_fn, observer).mean_hubble_rate
    if density == "uniform":
        return matter.make_source(metric_fn(observer), hubble, omega_m, omega_lambda)
    return matter.constraint_source(metric_fn, observer, hubble, omega_lambda)


def points(times):
    return jnp.asarray([[t, *y] for t in times for y in SPATIAL], jnp.float64)


def check_exact(case, chart):
    """Residual ~0, every prior met, the closed-form density and Omega_m, in one compiled call."""
    early = cmb_times(case)
    with jax.enable_x64(True):
        g = universe(case, chart)

        @jax.jit
        def run():
            src = source(g, case.omega_lambda)
            f = jax.vmap(lambda x: point_fields(g, x, src, "weak"))(points([0.0, -0.2, -0.45] + early))
            e = jax.vmap(lambda x: cmb_prior_values(g, x, src, 0.01, 0.1))(points(early))
            a = jax.vmap(case.scale_factor)(points(early)[:, 0]) / case.scale_factor(jnp.zeros((), jnp.float64))
            return src.omega_m, f, e, a

        omega_m, f, e, a = jax.tree_util.tree_map(np.asarray, run())  # numpy: no float32 outside the x64 block
    assert float(omega_m) == pytest.approx(case.omega_m, rel=1e-12)  # derived, local: what the observer measures
    assert np.max(f["residual"]) < 1e-12, f["residual"]
    assert np.max(f["energy_condition"]) < 0  # dust (+ Lambda) meets the weak energy condition
    assert np.max(e["expansion"]) < 0
    assert np.max(e["shear_ratio"]) < 1e-20 and np.max(e["shear"]) < 0
    assert np.max(e["density_gradient"]) < 1e-12 and np.max(e["homogeneity"]) < 0
    # The density is the closed form's, kappa rho = 3 Omega_m H0^2 (a0 / a)^3, at every window point.
    np.testing.assert_allclose(e["kappa_rho"], 3.0 * case.omega_m / a**3, rtol=1e-11)


@pytest.mark.parametrize("case,chart", FAST, ids=[f"{u.name}-{c.name}" for u, c in FAST])
def test_exact_flrw_solves_the_equations_and_passes_every_prior_in_any_chart(case, chart):
    check_exact(case, chart)


@pytest.mark.slow
@pytest.mark.parametrize("case,chart", SLOW, ids=[f"{u.name}-{c.name}" for u, c in SLOW])
def test_exact_flrw_in_the_other_charts(case, chart):
    check_exact(case, chart)


def test_the_former_uniform_density_fails_the_stretched_chart():
    # One C for every worldline: exact EdS in x = y (1 + 0.3 |y|^2) leaves residuals of order 0.1-1
    # (the issue measured 0.15-0.42), so the test above can fail.
    with jax.enable_x64(True):
        g = universe(EDS, STRETCH)

        @jax.jit
        def residuals(pts):
            src = source(g, 0.0, "uniform", 1.0)
            return jax.vmap(lambda x: point_fields(g, x, src, "weak")["residual"])(pts)

        assert np.max(np.asarray(residuals(points([-0.2, -0.45])))) > 0.1


def test_the_former_uniform_density_puts_a_gradient_into_curved_flrw():
    # FLRW with k = -1 in its isotropic chart: sqrt(det g_ij) varies with r, so one C makes a
    # spurious density gradient that fails the homogeneity prior and the field equations.
    with jax.enable_x64(True):
        g = universe(OPEN, IDENTITY)
        pts = points(cmb_times(OPEN))[1:3]  # off the origin, where the chart is curved

        @jax.jit
        def run(pts):
            src = source(g, 0.0, "uniform", OPEN_OMEGA_M)
            e = jax.vmap(lambda x: cmb_prior_values(g, x, src, 0.01, 0.1))(pts)
            return e["homogeneity"], jax.vmap(lambda x: point_fields(g, x, src, "weak")["residual"])(pts)

        homogeneity, residual = (np.asarray(v) for v in run(pts))
    assert np.min(homogeneity) > 0
    assert np.min(residual) > 1e-3


def test_the_former_homogeneity_measure_fails_a_volume_preserving_chart():
    # |d g| / H (how the metric's components change along the slice) is a property of the chart:
    # 1.7 here (1.67 in the issue), far above its tolerance 0.1, for exact EdS.
    with jax.enable_x64(True):
        g = universe(EDS, WAVE)
        kin = jax.jit(lambda x: kinematics.kinematics(g, x))(jnp.array([-0.6, 0.3, -0.5, 0.4]))
        assert float(kin.spatial_gradient_norm / kin.mean_hubble_rate) > 1.0


@pytest.mark.slow  # 20 s
def test_dust_kinematics_do_not_depend_on_the_slicing():
    # EdS sliced by T = t - f(x): the dust stays at x = const, but the slices tilt (a shift).
    # The dust's H_i, sigma^2, density gradient and the residual stay those of EdS; the slices'
    # normal observers see shear (so the test can fail).
    scale_factor = Background("matter").scale_factor

    def g(p):
        f = lambda y: 0.01 * jnp.sin(3.0 * y[1]) + 0.01 * y[0] ** 2
        t = p[0] + f(p[1:])
        a2 = scale_factor(t) ** 2
        df = jax.grad(f)(p[1:])
        spatial = a2 * jnp.eye(3, dtype=p.dtype) - jnp.outer(df, df)
        return jnp.zeros((4, 4), p.dtype).at[0, 0].set(-1.0).at[0, 1:].set(-df).at[1:, 0].set(-df).at[1:, 1:].set(spatial)

    pts = np.array([[-0.3, 0.5, -0.2, 0.1], [-0.5, -0.4, 0.6, 0.3], [-0.62, 0.2, 0.3, -0.5]])
    hubble = [1.0 / (1.0 + 1.5 * (x[0] + 0.01 * math.sin(3.0 * x[2]) + 0.01 * x[1] ** 2)) for x in pts]  # EdS H(t)
    with jax.enable_x64(True):
        @jax.jit
        def run(pts):
            src = source(g, 0.0)

            def at(x):
                dust = kinematics.comoving_kinematics(g, x)
                e = cmb_prior_values(g, x, src, 0.01, 0.1)
                return (dust.hubble_rates, dust.shear_scalar, kinematics.kinematics(g, x).shear_scalar,
                        point_fields(g, x, src, "weak")["residual"], e["density_gradient"], e["shear"])

            return src.omega_m, jax.vmap(at)(pts)

        omega_m, (rates, shear, gauge_shear, residual, gradient, shear_prior) = jax.tree_util.tree_map(
            np.asarray, run(jnp.asarray(pts)))
    assert float(omega_m) == pytest.approx(1.0, rel=1e-12)
    h = np.asarray(hubble)
    np.testing.assert_allclose(rates, np.repeat(h[:, None], 3, axis=1), rtol=1e-12)
    assert np.all(np.asarray(shear) < 1e-20 * h**2)
    assert np.all(np.asarray(gauge_shear) > 1e-8 * h**2)  # the tilted slices' normals shear
    assert np.max(residual) < 1e-12
    assert np.max(gradient) < 1e-12 and np.max(shear_prior) < 0


def test_the_density_gradient_has_its_closed_form():
    # g = diag(-1, b, b, b), b = e^{2t} (1 + eps sin(kx)), dust with one C (any density works):
    # kappa rho = C / sqrt(b^3), d_x ln rho = -3/2 eps k cos / (1 + eps sin), |D rho| / rho =
    # |d_x ln rho| / sqrt(b), H = 1, so |D rho| / (rho H) = 1.5 eps k |cos| / (e^t (1 + eps sin)^1.5).
    eps, k = 0.4, 3.0

    def g(p):
        b = jnp.exp(2 * p[0]) * (1.0 + eps * jnp.sin(k * p[1]))
        return jnp.diag(jnp.stack([-jnp.ones_like(b), b, b, b]))

    cases = ((-0.3, 0.2), (-1.0, -0.7), (0.0, 1.1))
    with jax.enable_x64(True):
        @jax.jit
        def run(pts):
            src = source(g, 0.0, "uniform", 0.3)
            return jax.vmap(lambda x: cmb_prior_values(g, x, src, 0.01, 0.1))(pts)

        e = jax.tree_util.tree_map(np.asarray, run(jnp.array([[t, x, 0.3, -0.2] for t, x in cases])))
    expected = [1.5 * eps * k * abs(math.cos(k * x)) / (math.exp(t) * (1 + eps * math.sin(k * x)) ** 1.5) for t, x in cases]
    np.testing.assert_allclose(e["density_gradient"], expected, rtol=1e-12)
    np.testing.assert_allclose(e["homogeneity"], np.asarray(expected) - 0.1, rtol=1e-12)


def test_the_constraint_density_catches_a_lumpy_geometry():
    # Spatial curvature that varies along the slice (a conformally flat 3-metric with a bump)
    # gives G_uu, and so the density, a gradient on the reference slice: the prior sees it.
    def g(p):
        b = jnp.exp(2 * p[0]) * (1.0 + 0.3 * jnp.exp(-(p[1:] @ p[1:]) / 0.5))
        return jnp.diag(jnp.stack([-jnp.ones_like(b), b, b, b]))

    with jax.enable_x64(True):
        e = jax.jit(lambda x: cmb_prior_values(g, x, source(g, 0.0), 0.01, 0.1))(jnp.array([-0.5, 0.4, 0.2, -0.1]))
        assert float(e["homogeneity"]) > 0
