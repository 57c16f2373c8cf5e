"""Energy conditions on metrics whose sources are known exactly (FLRW with dust, a cosmological
constant, a stiff and a phantom fluid, negative-mass dust), in comoving and tilted charts."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import energy, metric
from cosmology.conventions import KAPPA
from pinnopt import Constraint
TOL = 1e-10


@pytest.fixture(autouse=True, scope="module")
def x64():
    with jax.enable_x64(True):
        yield


def _conditions(family, params, x, method):
    metric_fn = lambda y: family(params, y)
    return energy.stresses(metric_fn, x, method=method), energy.violations(metric_fn, x)


conditions_of = jax.jit(_conditions, static_argnums=(0, 3))


def flrw_power_law(params, x):
    """Flat FLRW with a = c (s t + t_s)^n: the perfect fluid w = 2/(3n) - 1 (n < 0: phantom, s = -1)."""
    n, s, t_s = params
    a = (s * x[0] + t_s) ** n
    return jnp.diag(jnp.stack([-jnp.ones_like(a), a * a, a * a, a * a]))


def de_sitter(params, x):
    a = jnp.exp(params[0] * x[0])
    return jnp.diag(jnp.stack([-jnp.ones_like(a), a * a, a * a, a * a]))


def negative_mass_dust(params, x):
    """k = -1 FLRW with a'^2 = 1 - m/a, i.e. dust of density rho = -3m/(kappa a^3) < 0.

    In the time coordinate u with a = m cosh^2 u, dt = 2m cosh^2 u du (so the lapse is
    2m cosh^2 u), spatial part in the isotropic chart of k = -1.
    """
    m = params[0]
    a = m * jnp.cosh(x[0]) ** 2
    s = a**2 / (1.0 - 0.25 * (x[1:] @ x[1:])) ** 2
    return jnp.diag(jnp.stack([-(2 * m * jnp.cosh(x[0]) ** 2) ** 2, s, s, s]))


def tilted(params, y):
    """Flat dust FLRW in coordinates x = (t' + eps x', x', y', z'): slices tilted against the
    matter, so the gauge observers see an energy flux."""
    eps = params[0]
    jac = jnp.eye(4, dtype=y.dtype).at[0, 1].set(eps)
    return jac.T @ flrw_power_law(jnp.array([2 / 3, 1.0, 0.0], y.dtype), jac @ y) @ jac


POINT = np.array([0.9, 0.2, -0.1, 0.3])  # numpy: becomes float64 under the x64 fixture


def test_dust_with_positive_density_passes_the_weak_condition():
    t = float(POINT[0])
    stress, v = conditions_of(flrw_power_law, jnp.array([2 / 3, 1.0, 0.0]), POINT, "eigen")
    rho = 4 / (3 * KAPPA * t**2)  # 3 H^2 / kappa, H = 2/(3t)
    assert abs(stress.energy_density - rho) <= TOL * rho
    assert np.max(np.abs(stress.pressures)) <= TOL * rho
    assert bool(stress.type_one)
    assert v["weak"] <= -0.99 * rho and v["null"] <= -0.99 * rho
    assert v["strong"] < 0 and v["dominant"] <= TOL * rho
    assert v["ricci"] < 0  # R = kappa rho > 0


def test_cosmological_constant_passes_weak_and_fails_strong():
    hubble = 1.3
    stress, v = conditions_of(de_sitter, jnp.array([hubble]), POINT, "eigen")
    rho = 3 * hubble**2 / KAPPA
    assert abs(stress.energy_density - rho) <= TOL * rho
    assert np.max(np.abs(stress.pressures + rho)) <= TOL * rho  # p = -rho
    assert v["weak"] <= TOL * rho  # on the boundary rho + p = 0: satisfied
    assert v["null"] <= TOL * rho
    assert abs(v["strong"] - 2 * rho) <= TOL * rho  # rho + 3p = -2 rho < 0


def test_a_lambda_term_in_the_stress_tensor_removes_the_source():
    hubble = 1.3
    metric_fn = lambda y: de_sitter(jnp.array([hubble]), y)
    stress = jax.jit(lambda x: energy.stresses(metric_fn, x, cosmological_constant=3 * hubble**2))(POINT)
    assert abs(stress.energy_density) <= TOL and np.max(np.abs(stress.pressures)) <= TOL


def test_stiff_fluid_passes_weak_while_ricci_scalar_is_negative():
    stress, v = conditions_of(flrw_power_law, jnp.array([1 / 3, 1.0, 0.0]), POINT, "eigen")
    rho = float(stress.energy_density)
    assert rho > 0 and np.max(np.abs(stress.pressures - rho)) <= TOL * rho  # p = rho
    assert v["weak"] < 0 and v["null"] < 0 and v["strong"] < 0
    assert v["ricci"] > 0  # R = -2 kappa rho < 0: the R >= 0 proxy rejects a good source


def test_phantom_fluid_fails_the_null_condition():
    # w = -1.2 needs a = (t_s - t)^(-10/3): 2 / (3 (1 + w)) = -10/3.
    stress, v = conditions_of(flrw_power_law, jnp.array([-10 / 3, -1.0, 2.0]), POINT, "eigen")
    rho = float(stress.energy_density)
    assert rho > 0 and np.max(np.abs(stress.pressures + 1.2 * rho)) <= TOL * rho
    assert abs(v["null"] - 0.2 * rho) <= TOL * rho
    assert v["weak"] > 0 and v["dominant"] > 0


def test_negative_mass_dust_fails_the_weak_condition():
    m, u = 0.7, 0.6
    x = np.array([u, 0.2, 0.1, -0.3])
    stress, v = conditions_of(negative_mass_dust, jnp.array([m]), x, "eigen")
    a = m * np.cosh(u) ** 2
    rho = -3 * m / (KAPPA * a**3)
    assert abs(stress.energy_density - rho) <= TOL * abs(rho)
    assert np.max(np.abs(stress.pressures)) <= TOL * abs(rho)
    assert abs(v["weak"] - abs(rho)) <= TOL * abs(rho)


def test_rest_frame_values_in_a_tilted_chart_and_the_observer_approximation():
    eps = 0.3
    eigen, v = conditions_of(tilted, jnp.array([eps]), POINT, "eigen")
    observer, _ = conditions_of(tilted, jnp.array([eps]), POINT, "observer")
    t = float(POINT[0] + eps * POINT[1])  # the comoving time of this point
    rho = 4 / (3 * KAPPA * t**2)
    assert bool(eigen.type_one)
    assert abs(eigen.energy_density - rho) <= TOL * rho  # a scalar of the matter: chart-independent
    assert np.max(np.abs(eigen.pressures)) <= TOL * rho
    assert abs(v["weak"] + rho) <= TOL * rho
    # The tilted gauge observer moves through the dust: it sees more energy and a pressure.
    assert observer.energy_density > 1.05 * rho
    assert np.max(observer.pressures) > 0.05 * rho


def test_null_dust_is_flagged_not_type_one_and_stays_finite():
    k = jnp.array([-1.0, 1.0, 0.0, 0.0])  # a null covector: T_(AB) = k_A k_B is null dust (type II)
    t_frame = jnp.outer(k, k)
    out = jax.jit(energy.principal_stresses)(t_frame)
    assert not bool(out.type_one)
    assert np.isfinite(out.energy_density) and np.all(np.isfinite(out.pressures))
    grad = jax.jit(jax.grad(lambda m: energy.weak_violation(*energy.principal_stresses(m)[:2])))(t_frame)
    assert np.all(np.isfinite(grad))


def test_violations_of_a_metric_network_are_finite_differentiable_constraints():
    with jax.enable_x64(False):
        model = metric.GeneralMetric(width=8, depth=1, out_scale=0.3)
        params = metric.init_params(model, jax.random.PRNGKey(0))
        points = jax.random.uniform(jax.random.PRNGKey(1), (32, 4), minval=-0.4, maxval=0.0)

        def loss(p):
            metric_fn = metric.bind(model, p)
            values = jax.vmap(lambda x: energy.violations(metric_fn, x))(points)
            terms = {n: Constraint(values[n], "ineq", coords=points) for n in energy.CONDITIONS}
            return sum(jnp.mean(jnp.maximum(t.value, 0.0) + t.value) for t in terms.values()), terms

        (value, terms), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
        for name in energy.CONDITIONS:
            assert terms[name].value.shape == (32,) and np.all(np.isfinite(terms[name].value))
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(grads))
        assert any(np.any(leaf != 0) for leaf in jax.tree.leaves(grads))


def test_gradients_are_finite_where_the_pressures_are_degenerate():
    # FLRW: three equal principal pressures (and for dust rho + p_i ties across i).
    def total(n):
        metric_fn = lambda y: flrw_power_law(jnp.stack([n, 1.0, 0.0]), y)
        return sum(energy.violations(metric_fn, POINT).values())

    grad = jax.jit(jax.grad(total))(2 / 3)
    assert np.isfinite(grad) and grad != 0


def test_bad_names_are_value_errors():
    metric_fn = lambda y: de_sitter(jnp.array([1.0]), y)
    with pytest.raises(ValueError, match="unknown energy condition"):
        energy.violations(metric_fn, POINT, ("weak", "chronology"))
    with pytest.raises(ValueError, match="method"):
        energy.stresses(metric_fn, POINT, method="fluid")
    with pytest.raises(ValueError, match="kappa"):
        energy.violations(metric_fn, POINT, kappa=0.0)
