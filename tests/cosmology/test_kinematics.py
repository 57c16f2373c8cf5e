"""3+1 kinematics against closed forms: FLRW (also in a chart with shift), Kasner, Bianchi I,
a metric assembled from a chosen lapse and shift, and the ADM formula for K_ij."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import kinematics as kin

TOL = 1e-10


@pytest.fixture(autouse=True, scope="module")
def x64():
    with jax.enable_x64(True):
        yield


def close(a, b, tol=TOL):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b)) <= tol * max(np.max(np.abs(b)), 1.0)


def _all(family, params, x):
    return kin.kinematics(lambda y: family(params, y), x)


kinematics_of = jax.jit(_all, static_argnums=0)


def bianchi_one(params, x):
    """-dt^2 + sum_i a_i(t)^2 dx_i^2 with a_i = t^p_i (Kasner when sum p = sum p^2 = 1)."""
    return jnp.diag(jnp.concatenate([-jnp.ones(1, x.dtype), x[0] ** (2 * params)]))


def test_kasner_directional_rates_mean_rate_and_shear():
    p = np.array([-1 / 3, 2 / 3, 2 / 3])  # sum p = sum p^2 = 1
    t = 1.7
    out = kinematics_of(bianchi_one, jnp.asarray(p), jnp.array([t, 0.2, -0.1, 0.4]))
    assert close(out.hubble_rates, np.sort(p) / t)
    assert close(out.mean_hubble_rate, 1 / (3 * t))
    assert close(out.shear_scalar, 1 / (3 * t**2))  # (sum p^2 - (sum p)^2 / 3) / (2 t^2)


def test_bianchi_one_with_generic_exponents():
    p = np.array([0.9, 0.1, -0.4])
    t = 0.8
    out = kinematics_of(bianchi_one, jnp.asarray(p), jnp.array([t, 0.0, 0.0, 0.0]))
    rates = p / t
    assert close(out.hubble_rates, np.sort(rates))
    assert close(out.mean_hubble_rate, rates.mean())
    assert close(out.shear_scalar, 0.5 * np.sum((rates - rates.mean()) ** 2))
    assert close(out.extrinsic_curvature, -np.diag(p * t ** (2 * p - 1)))  # K_ij = -a_i a_i' delta_ij
    assert close(out.spatial_gradient_norm, 0.0)


def flrw_moving_chart(params, x):
    """FLRW a = t^(2/3), k, seen from coordinates x' = x - v t (so dx = dx' + v dt): shift beta^x = v."""
    k, v = params
    jac = jnp.eye(4, dtype=x.dtype).at[1, 0].set(v)
    old = x + v * x[0] * jnp.array([0.0, 1.0, 0.0, 0.0], x.dtype)
    s = old[0] ** (4 / 3) / (1 + 0.25 * k * (old[1:] @ old[1:])) ** 2
    return jac.T @ jnp.diag(jnp.stack([-jnp.ones_like(s), s, s, s])) @ jac


@pytest.mark.parametrize("k, v", [(0.0, 0.0), (0.0, 0.3), (1.0, 0.0), (-1.0, 0.2)])
def test_flrw_hubble_rate_is_a_dot_over_a_and_shear_vanishes(k, v):
    t = 1.3
    out = kinematics_of(flrw_moving_chart, jnp.array([k, v]), jnp.array([t, 0.2, -0.3, 0.1]))
    hubble = 2 / (3 * t)
    assert close(out.mean_hubble_rate, hubble)
    assert close(out.hubble_rates, np.full(3, hubble))
    assert abs(float(out.shear_scalar)) <= TOL * hubble**2
    assert close(out.lapse, 1.0)
    assert close(out.shift, [v, 0.0, 0.0])  # the slices are FLRW's; the shift only relabels points
    if k == 0.0 and v == 0.0:
        assert close(out.spatial_gradient_norm, 0.0)


def adm_metric(params, x):
    """ds^2 = -N^2 dt^2 + gamma_ij (dx^i + beta^i dt)(dx^j + beta^j dt) with chosen N, beta, gamma."""
    t, y = x[0], x[1:]
    lapse = 1.2 + 0.3 * jnp.sin(t + y[0])
    shift = jnp.array([0.2 * y[1], -0.1 * t, 0.15 * jnp.cos(y[2])])
    a = jnp.array([[1.0, 0.0, 0.0], [0.3, 1.1, 0.0], [-0.2, 0.1, 0.9]]) * (1 + 0.2 * t)
    a = a + 0.05 * jnp.outer(y, jnp.array([1.0, -1.0, 0.5]))
    gamma = a @ a.T
    beta_low = gamma @ shift
    g00 = -(lapse**2) + shift @ beta_low
    top = jnp.concatenate([g00[None], beta_low])
    return jnp.concatenate([top[None], jnp.concatenate([beta_low[:, None], gamma], axis=1)], axis=0)


def test_lapse_shift_and_extrinsic_curvature_of_a_chosen_adm_metric():
    x = jnp.array([0.4, 0.3, -0.5, 0.7])
    metric_fn = lambda y: adm_metric((), y)
    t, y = 0.4, np.array([0.3, -0.5, 0.7])
    assert close(kin.lapse(metric_fn, x), 1.2 + 0.3 * np.sin(t + y[0]))
    assert close(kin.shift(metric_fn, x), [0.2 * y[1], -0.1 * t, 0.15 * np.cos(y[2])])

    # K_ij = -(d_t gamma_ij - D_i beta_j - D_j beta_i) / (2N), with the 3-Christoffels of gamma.
    spatial = lambda z: metric_fn(z)[1:, 1:]
    beta_low = lambda z: metric_fn(z)[0, 1:]
    d_gamma = jax.jit(jax.jacfwd(spatial))(x)  # [i, j, m] = d_m gamma_ij
    gamma_inv = np.linalg.inv(np.asarray(spatial(x)))
    d3 = d_gamma[:, :, 1:]
    christoffel3 = 0.5 * np.einsum("kl,lij->kij", gamma_inv,
                                   np.einsum("lji->lij", d3) + d3 - np.einsum("ijl->lij", d3))
    d_beta = np.asarray(jax.jit(jax.jacfwd(beta_low))(x))[:, 1:]  # [j, i] = d_i beta_j
    cov_beta = d_beta.T - np.einsum("kij,k->ij", christoffel3, np.asarray(beta_low(x)))  # D_i beta_j
    expected = -(np.asarray(d_gamma[:, :, 0]) - cov_beta - cov_beta.T) / (2 * float(kin.lapse(metric_fn, x)))
    assert close(jax.jit(kin.extrinsic_curvature, static_argnums=0)(metric_fn, x), expected)


def test_spatial_gradient_norm_closed_form():
    # g = diag(-1, exp(2 alpha x), 1, 1): |d g| = 2 |alpha| exp(-alpha x).
    alpha, xx = 0.7, 0.4
    metric_fn = lambda y: jnp.diag(jnp.stack([-1.0, jnp.exp(2 * alpha * y[1]), 1.0, 1.0]))
    norm = kin.spatial_gradient_norm(metric_fn, jnp.array([0.0, xx, 0.0, 0.0]))
    assert close(norm, 2 * alpha * np.exp(-alpha * xx))


def test_orthonormal_frame_and_split_of_a_general_metric():
    g = adm_metric((), jnp.array([0.1, -0.2, 0.3, 0.4]))
    frame = kin.orthonormal_frame(g)
    assert close(frame.T @ g @ frame, np.diag([-1.0, 1, 1, 1]))
    split = kin.adm_split(g)
    assert close(split.spatial_inverse, np.linalg.inv(np.asarray(g)[1:, 1:]))
    assert close(jnp.einsum("a,ab,b->", split.normal, g, split.normal), -1.0)


def test_symmetric_eigenvalues_have_finite_gradients_at_degeneracy():
    a = jnp.diag(jnp.array([2.0, 2.0, 5.0]))
    values = kin.symmetric_eigenvalues(a)
    assert close(values, [2.0, 2.0, 5.0])
    grad = jax.grad(lambda m: kin.symmetric_eigenvalues(m)[0])(a)
    assert np.all(np.isfinite(grad))
    assert close(jnp.trace(grad), 1.0)  # d lambda = v^T dA v with a unit v


# ----------------------------------------------------------------------------- the dust's kinematics

comoving_of = jax.jit(lambda family, params, x: kin.comoving_kinematics(lambda y: family(params, y), x),
                      static_argnums=0)


def test_dust_kinematics_equal_the_gauge_observers_in_the_synchronous_gauge():
    # Bianchi I: the dust at rest is the slices' normal, so both give a_i'/a_i and the same shear.
    p = np.array([0.9, 0.1, -0.4])
    x = jnp.array([0.8, 0.3, -0.2, 0.5])
    dust, gauge = comoving_of(bianchi_one, jnp.asarray(p), x), kinematics_of(bianchi_one, jnp.asarray(p), x)
    assert close(dust.hubble_rates, gauge.hubble_rates) and close(dust.hubble_rates, np.sort(p) / 0.8)
    assert close(dust.shear_scalar, gauge.shear_scalar) and close(dust.mean_hubble_rate, gauge.mean_hubble_rate)
    assert close(dust.velocity, [1.0, 0.0, 0.0, 0.0])
    assert close(dust.projector, np.diag([0.0, *(0.8 ** (-2 * p))]))


def test_dust_kinematics_in_a_chart_where_the_dust_moves():
    # FLRW (k = 0, +1, -1): the dust at rest in its chart is the Hubble flow, H_i = a'/a, no shear.
    # Seen from x' = x - v t, the dust at rest in x' is another congruence, x = x' + v t, whose
    # peculiar velocity a v grows: not the Hubble flow, and its expansion is anisotropic.
    for k in (0.0, 1.0, -1.0):
        out = comoving_of(flrw_moving_chart, jnp.array([k, 0.0]), jnp.array([1.3, 0.2, -0.3, 0.1]))
        assert close(out.hubble_rates, np.full(3, 2 / (3 * 1.3)))
        assert abs(float(out.shear_scalar)) <= TOL
    moving = comoving_of(flrw_moving_chart, jnp.array([0.0, 0.3]), jnp.array([1.3, 0.2, -0.3, 0.1]))
    assert float(jnp.max(moving.hubble_rates) - jnp.min(moving.hubble_rates)) > 1e-3  # not the Hubble flow
