"""The source audit on exact solutions, and the Raychaudhuri check of the local q0.

References are closed forms, independent of the code tested:
- flat LCDM read with Lambda off: X = -Lambda g / kappa, so Omega_X(z) = OL / (Om (1+z)^3 + OL),
  P_X = -Omega_X (w_X = -1), no flux, no anisotropic stress;
- Einstein-de Sitter; open FLRW in conformal time and the isotropic chart, a(eta) =
  Om / (2 Ok) (cosh(sqrt(Ok) eta) - 1), kappa rho = 3 Om / a^3, K = -Ok; the Heckmann-Schucking
  Bianchi I dust, a_i = t^p_i (t + S)^(2/3 - p_i) (Kasner p = (-1/3, 2/3, 2/3)), kappa rho =
  4 / (3 t (t + S)): X = 0, and the local q0 = Omega_m / 2 + 2 sigma^2 / (3 H^2) >= Omega_m / 2
  (Raychaudhuri, with H_i = p_i / t + (2/3 - p_i) / (t + S) differentiated by hand).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import audit
from cosmology.metric import Background
from cosmology.problem import deceleration

POINTS = np.array([[0.0, 0.0, 0.0, 0.0], [-0.3, 0.5, -0.2, 0.1], [-0.55, -0.9, 0.4, 0.8]])


def flrw(background):
    return lambda x: jnp.diag(jnp.stack([-jnp.ones_like(x[0]), *[background.scale_factor(x[0]) ** 2] * 3]))


OM, OK = 0.3, 0.7
_A, _S = OM / (2 * OK), math.sqrt(OK)
_ETA0 = math.acosh(1 + 1 / _A) / _S


def open_scale_factor(t):
    return _A * (jnp.cosh(_S * (t + _ETA0)) - 1.0)


def open_flrw(x):
    """Open dust FLRW (Omega_m = 0.3, H0 = 1) in conformal time (observer at 0), isotropic chart."""
    a = open_scale_factor(x[0])
    spatial = a**2 / (1.0 - 0.25 * OK * (x[1:] @ x[1:])) ** 2
    return jnp.diag(jnp.stack([-a**2, spatial, spatial, spatial]))


KASNER, SHIFT, T0 = np.array([-1 / 3, 2 / 3, 2 / 3]), 1.0, 1.0


def bianchi_dust(x):
    """Heckmann-Schucking dust (observer at t = T0 in the solution's time)."""
    t = x[0] + T0
    a = t**KASNER * (t + SHIFT) ** (2 / 3 - KASNER)
    return jnp.diag(jnp.concatenate([-jnp.ones(1, x.dtype), a**2]))


def bianchi_closed_form(t):
    """(Omega_m, sigma^2 / H^2, q) of the Heckmann-Schucking dust at solution time t."""
    rates = KASNER / t + (2 / 3 - KASNER) / (t + SHIFT)
    d_rates = -KASNER / t**2 - (2 / 3 - KASNER) / (t + SHIFT) ** 2
    h, dh = rates.mean(), d_rates.mean()
    shear = 0.5 * np.sum((rates - h) ** 2)
    return 4 / (3 * t * (t + SHIFT)) / (3 * h**2), shear / h**2, -1 - dh / h**2


def run_audit(metric_fn, kappa_rho_fn, cosmological_constant=0.0):
    """The audit at POINTS, plus the local q0 at the observer of the problem's summary
    (``problem.deceleration``, the gauge observer) and of the dust, in one compiled call."""
    def run(pts):
        out = audit.audit_points(metric_fn, pts, jax.vmap(kappa_rho_fn)(pts), cosmological_constant)
        out["q_gauge"] = deceleration(metric_fn, pts[0])
        out["q_dust"] = audit.comoving_deceleration(metric_fn, pts[0])
        return out

    return jax.jit(run)(jnp.asarray(POINTS))


def test_lcdm_read_without_lambda_needs_omega_lambda_of_z():
    with jax.enable_x64(True):
        bg = Background("lcdm", 0.3)
        g = flrw(bg)
        a = np.asarray(jax.vmap(bg.scale_factor)(jnp.asarray(POINTS[:, 0])))
        z = 1.0 / a - 1.0
        expected = 0.7 / (0.3 * (1 + z) ** 3 + 0.7)

        def run(pts):
            rho = 0.9 / jax.vmap(bg.scale_factor)(pts[:, 0]) ** 3  # kappa rho = 3 Om H0^2 / a^3
            # Lambda off, and the true Lambda = 3 OL H0^2 on (then nothing is missing).
            return audit.audit_points(g, pts, rho, 0.0), audit.audit_points(g, pts, rho, 2.1), deceleration(g, pts[0])

        out, on, q = jax.jit(run)(jnp.asarray(POINTS))
        np.testing.assert_allclose(out["omega_x"], expected, rtol=1e-9)
        np.testing.assert_allclose(out["pressure_x"], -expected, rtol=1e-9)  # w_X = -1
        np.testing.assert_allclose(out["pressures_x"], -np.repeat(expected[:, None], 3, 1), rtol=1e-9)
        np.testing.assert_allclose(out["omega_dust"], 1.0 - expected, rtol=1e-9)
        assert np.max(np.asarray(out["flux_x"])) < 1e-12 and np.max(np.asarray(out["anisotropic_x"])) < 1e-12
        np.testing.assert_allclose(out["sec_x"], -2.0 * expected, rtol=1e-9)
        # X alone breaks the strong energy condition everywhere (rho + sum p = -2 rho_X); dust + X
        # only where Omega_X > 1/3 (rho + sum p = 1 - 3 Omega_X in units of 3 H^2 / kappa).
        np.testing.assert_allclose(out["strong_violation_x"], 2.0 * expected, rtol=1e-9)
        np.testing.assert_allclose(out["strong_violation_total"], 3.0 * expected - 1.0, rtol=1e-9)
        assert np.max(np.abs(np.asarray(on["omega_x"]))) < 1e-12
        np.testing.assert_allclose(on["omega_lambda"], expected, rtol=1e-9)
        # The Raychaudhuri check can fail: read as dust alone, q0 = Om/2 - OL = -0.55 < Om/2, and
        # the audit's X term, (Omega_X + 3 P_X) / 2 = -Omega_Lambda, is why.
        assert float(q) == pytest.approx(0.15 - 0.7, rel=1e-9) and float(q) < 0.3 / 2
        parts = np.asarray(out["q_parts"][0])
        assert parts[1] == pytest.approx(-0.7, rel=1e-9)
        assert parts.sum() == pytest.approx(float(q), rel=1e-9)


@pytest.mark.parametrize("case", ["eds", "open", "bianchi"])
def test_exact_dust_needs_no_source_and_decelerates(case):
    """The Raychaudhuri check: Lambda-free dust has q0 >= Omega_m / 2 (here with X = 0 exactly)."""
    with jax.enable_x64(True):
        if case == "eds":
            g, rho = flrw(Background("matter")), lambda x: 3.0 / (1.0 + 1.5 * x[0]) ** 2
            om, shear, q = 1.0, 0.0, 0.5
        elif case == "open":
            g, rho = open_flrw, lambda x: 3 * OM / open_scale_factor(x[0]) ** 3
            om, shear, q = OM, 0.0, OM / 2
        else:
            g, rho = bianchi_dust, lambda x: 4 / (3 * (x[0] + T0) * (x[0] + T0 + SHIFT))
            om, shear, q = bianchi_closed_form(T0)
        out = run_audit(g, rho)
        for key in ("omega_x", "pressure_x", "flux_x", "anisotropic_x"):
            assert np.max(np.abs(np.asarray(out[key]))) < 1e-10, key
        q_gauge, q_dust = float(out["q_gauge"]), float(out["q_dust"])  # problem's summary's q0; the dust's
        assert q_gauge == pytest.approx(q, rel=1e-9) and q_dust == pytest.approx(q, rel=1e-9)
        assert float(out["omega_dust"][0]) == pytest.approx(om, rel=1e-9)
        assert float(out["shear"][0]) == pytest.approx(shear, abs=1e-12)
        tolerance = 1e-6
        assert q_gauge >= om / 2 - tolerance
        # Raychaudhuri's split adds up to the measured q0 (geodesic, irrotational dust: no rest).
        assert float(jnp.sum(out["q_parts"][0])) == pytest.approx(q_dust, rel=1e-9)


def test_dust_kinematics_sees_shift_vorticity_and_acceleration():
    # Minkowski space in a rotating chart (phi -> phi - w t): the comoving observers rotate with
    # vorticity omega^2 = w^2 (uniform rotation) and feel the centripetal acceleration w^2 r / (1 - w^2 r^2).
    w = 0.3

    def rotating(x):
        t, px, py, pz = x
        v = jnp.stack([-w * py, w * px, 0.0 * pz])  # coordinate velocity of the inertial frame
        g = jnp.zeros((4, 4), x.dtype)
        g = g.at[0, 0].set(-1.0 + v @ v).at[0, 1:].set(v).at[1:, 0].set(v)
        return g.at[1:, 1:].set(jnp.eye(3, dtype=x.dtype))

    with jax.enable_x64(True):
        from cosmology.geometry import christoffel_from_jet, inverse_metric

        def kinematics_at(x):
            g, dg = rotating(x), jax.jacfwd(rotating)(x)
            g_inv = inverse_metric(g)
            return audit.dust_kinematics(g, dg, g_inv, christoffel_from_jet(g_inv, dg))

        kin = jax.jit(kinematics_at)(jnp.array([0.0, 0.5, 0.0, 0.0]))
        r = 0.5
        assert float(kin.hubble) == pytest.approx(0.0, abs=1e-12)
        assert float(kin.shear) == pytest.approx(0.0, abs=1e-12)
        gamma2 = 1.0 / (1.0 - w**2 * r**2)
        assert float(kin.vorticity) == pytest.approx(w**2 * gamma2**2, rel=1e-9)
        assert float(kin.acceleration) == pytest.approx(w**2 * r * gamma2, rel=1e-9)


@pytest.mark.parametrize("omega_x, pressure_x, flagged", [
    (0.7, -0.7, True),  # Lambda leaked through the residual (dust of the true LCDM)
    (0.0, -0.7, True),  # the same with the dust fixed on the observer's slice: X(u, u) = 0, pressure left
    (0.1, 0.0, False),  # missing dust-like matter: not dark energy
    (0.03, -0.03, False),  # w = -1 but below the threshold 0.05 (and q_X = -0.03)
])
def test_dark_energy_flag(omega_x, pressure_x, flagged):
    from types import SimpleNamespace

    from cosmology.audit_summary import flag

    d = {"values": {"omega_x": np.array([omega_x]), "pressure_x": np.array([pressure_x])}}
    light = {"z": np.array([0.1, 2.0]), "omega_x_sky_mean": np.zeros(2), "pressure_x_sky_mean": np.zeros(2)}
    off = SimpleNamespace(cfg=SimpleNamespace(cosmological_constant=False))
    assert flag(off, d, light)[0] is flagged
    on = SimpleNamespace(cfg=SimpleNamespace(cosmological_constant=True))
    assert flag(on, d, light)[0] is False and "Lambda is on" in flag(on, d, light)[1]
    # On the light cone (mean over z <= 1) the same criterion applies.
    cone = {"z": np.array([0.1, 2.0]), "omega_x_sky_mean": np.array([omega_x, 5.0]),
            "pressure_x_sky_mean": np.array([pressure_x, 5.0])}
    zero = {"values": {"omega_x": np.zeros(1), "pressure_x": np.zeros(1)}}
    assert flag(off, zero, cone)[0] is flagged
