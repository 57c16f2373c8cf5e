"""The open dust background (``Background("open", Omega_m)``): a(t) against a quadrature of the
Friedmann equation, its closed-form jet against automatic differentiation, and the synchronous
metric network at zero output as an exact open universe (residual at float precision, the
observer's derived Omega_m equal to the background's). float64 where precision is tested."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

from cosmology import kinematics, matter, open_background
from cosmology.collocation import domain
from cosmology.geometry import PAIRS, jet_constant
from cosmology.metric import Background, Bounds, _synchronous_jet, synchronous_metric_from_outputs
from cosmology.presets import get_preset
from cosmology.problem import point_fields


def friedmann_time(a, omega_m):
    """t(a) = -int_a^1 db / sqrt(Omega_m / b + 1 - Omega_m) (H0 = 1, today t = 0): independent of the module."""
    return -quad(lambda b: 1.0 / math.sqrt(omega_m / b + 1.0 - omega_m), a, 1.0, epsabs=1e-14, epsrel=1e-13)[0]


@pytest.mark.parametrize("omega_m", [1.0, 0.9999, 0.3, 0.05])
def test_scale_factor_inverts_the_friedmann_integral(omega_m):
    bg = Background("open", omega_m)
    assert bg.age == pytest.approx(-friedmann_time(0.0, omega_m), rel=1e-11)
    a_values = np.array([0.02, 0.2, 0.6, 1.0])
    times = np.array([friedmann_time(a, omega_m) for a in a_values])
    with jax.enable_x64(True):
        a64 = np.asarray(bg.scale_factor(jnp.asarray(times)))
        t64 = np.asarray(bg.time_at_redshift(jnp.asarray(1.0 / a_values - 1.0)))
        h64 = float(bg.hubble_rate(jnp.zeros((), jnp.float64)))
    np.testing.assert_allclose(a64, a_values, rtol=1e-9)
    np.testing.assert_allclose(t64, times, atol=1e-12)
    assert h64 == pytest.approx(1.0, rel=1e-12)
    a32 = np.asarray(bg.scale_factor(jnp.asarray(times, jnp.float32)))  # the training precision
    np.testing.assert_allclose(a32, a_values, rtol=2e-5)


def test_omega_one_is_einstein_de_sitter():
    t = jnp.linspace(-0.6, 0.3, 7)
    np.testing.assert_allclose(Background("open", 1.0).scale_factor(t), Background("matter").scale_factor(t), rtol=1e-6)
    assert Background("open", 1.0).age == pytest.approx(2.0 / 3.0)


@pytest.mark.slow  # 40 s: second derivatives through the Newton loop; the exact-universe test below uses the jet too
def test_the_closed_form_jet_matches_automatic_differentiation():
    bg = Background("open", 0.3)
    with jax.enable_x64(True):
        x = jnp.array([-0.4, 0.3, -0.5, 0.2])
        jet = bg.jet(x)
        grad = jax.jacfwd(bg.spatial_factor)(x)
        hess = jax.hessian(bg.spatial_factor)(x)
        assert float(jet.value) == pytest.approx(float(bg.spatial_factor(x)), rel=1e-14)
        for i in range(4):
            assert float(jet.first[i]) == pytest.approx(float(grad[i]), rel=1e-9)
        for p, (i, j) in enumerate(PAIRS):
            got = 0.0 if jet.second[p] is None else float(jet.second[p])
            assert got == pytest.approx(float(hess[i, j]), rel=1e-8, abs=1e-12)


def test_zero_output_is_an_exact_open_universe():
    omega_m = 0.3
    bg = Background("open", omega_m)
    with jax.enable_x64(True):
        class ZeroOutput:  # the network's path: the metric from the background's closed-form jet
            def __call__(self, x):
                return synchronous_metric_from_outputs(x, jnp.zeros(6, x.dtype), bg, Bounds())

            def jet(self, x):
                return _synchronous_jet(bg.jet(x), jet_constant(jnp.zeros(6, x.dtype)), Bounds())

        metric_fn = ZeroOutput()
        observer = jnp.zeros(4, jnp.float64)

        @jax.jit
        def run(points):
            hubble = kinematics.comoving_kinematics(metric_fn, observer).mean_hubble_rate
            src = matter.constraint_source(metric_fn, observer, hubble, jnp.zeros((), jnp.float64))
            return src.omega_m, hubble, jax.vmap(lambda x: point_fields(metric_fn, x, src, "weak"))(points)

        pts = jnp.array([[0.0, 0.0, 0.0, 0.0], [-0.3, 0.5, -0.2, 0.1], [-0.78, -0.6, 0.35, 0.55], [-0.1, 1.2, 0.0, 0.3]])
        omega, hubble, f = jax.tree_util.tree_map(np.asarray, run(pts))
    assert float(omega) == pytest.approx(omega_m, rel=1e-12) and float(hubble) == pytest.approx(1.0, rel=1e-12)
    assert np.max(f["residual"]) < 1e-12, f["residual"]
    assert np.max(f["energy_condition"]) < 0


def test_the_domain_of_an_open_background_uses_its_chart():
    cfg = get_preset("quick", background="open", background_omega_m=0.3)
    bg = Background("open", 0.3)
    w = domain(cfg, bg, 2.26)
    chi = w["background_comoving_distance_code"]
    # the isotropic chart's radius of the geodesic distance chi, within the chart's edge 2 / sqrt(0.7)
    assert w["radius"] == pytest.approx(cfg.extent_margin * open_background.coordinate_radius(chi, 0.3))
    assert w["radius"] < 2.0 / math.sqrt(0.7)
    assert w["start"] == pytest.approx(float(bg.time_at_redshift(50.0)), rel=1e-5)
    with pytest.raises(ValueError, match="spatial_extent"):
        domain(get_preset("quick", background="open", background_omega_m=0.05, spatial_extent=2.2), Background("open", 0.05), 2.26)
    with pytest.raises(ValueError, match="background_omega_m"):
        get_preset("quick", background="open", background_omega_m=1.5)


def test_an_flrw_metric_on_an_open_background_carries_its_curvature():
    from cosmology.metric import bind, init_params
    from network_helpers import zero_output
    from cosmology.problem import _model

    cfg = get_preset("quick", metric="flrw", cmb_priors=False, energy_condition="none")
    assert cfg.background == "open"
    model = _model(cfg, Background(cfg.background, cfg.background_omega_m))
    params = init_params(model, jax.random.PRNGKey(0))
    metric_fn = bind(model, zero_output(params))  # the last layer zeroed: g is the background
    observer = jnp.zeros(4)
    hubble = kinematics.comoving_kinematics(metric_fn, observer).mean_hubble_rate
    src = matter.constraint_source(metric_fn, observer, hubble, jnp.zeros(()))
    assert float(src.omega_m) == pytest.approx(0.3, rel=1e-4)
    residual = point_fields(metric_fn, jnp.array([-0.4, 0.3, -0.2, 0.5]), src, "none")["residual"]
    assert float(residual) < 1e-4
