"""The early-time (CMB) priors as scalars of the dust, so that they judge the universe, not the chart.

The CMB says that at last scattering the universe was homogeneous and isotropic to 1e-5. The
``lumpy`` problem cannot reach z = 1100, so it asks for near-FLRW at a window of early times
(z in [20, 50] by default, inside the domain where the field equations are imposed:
:func:`cosmology.collocation.domain`). Three conditions, each a value that is <= 0 when met, all
built from the dust observers u^a = delta^a_t / sqrt(-g_tt) (:func:`kinematics.comoving_kinematics`)
and the dust density (:func:`matter.comoving_density`):

    expansion    -min_i H_i / H_s,                   H_s^2 = H^2 + kappa |rho| / 3
    shear        sigma^2 / H^2 - shear_tolerance
    homogeneity  |D rho| / (rho H) - homogeneity_tolerance,   |D rho|^2 = h^ab d_a rho d_b rho

(H_i the directional Hubble rates, H = theta / 3, sigma^2 = sigma_ab sigma^ab / 2 of the dust,
h^ab = g^ab + u^a u^b; the denominators are held fixed under differentiation, so training meets
a prior by changing the universe, not by inflating H or rho). Each is a scalar: invariant under
any change of the spatial chart and of the slicing in which the dust stays at rest, and zero
(shear, homogeneity) for exact FLRW in every such chart. The first two were always about the
dust observers; the third replaces the former |d g| / H, which measured how the *components*
of the metric change along the slice, so that exact Einstein-de Sitter in the volume-preserving
chart x = y + 0.3 sin(3 y_2) e_1 (residual 4e-16) got 1.67 and failed.

Why the density gradient and not the electric Weyl tensor E_ab / H^2: the density contrast is
what the CMB bounds (Sachs-Wolfe: delta T / T ~ Phi / 3), and D_a rho is its covariant,
gauge-invariant measure (Ellis & Bruni 1989, their D_a = a h_a^b nabla_b rho / rho; here per
Hubble length instead of per unit of a, so the value does not depend on how a is normalised).
With the shear prior it characterises FLRW: for irrotational dust (the synchronous gauge's)
that solves the field equations, sigma_ab = 0 and D_a rho = 0 give D_a theta = 0 (momentum
constraint) and E_ab = 0 (shear propagation), i.e. FLRW; a Weyl prior would add nothing the
two do not bound. The cost: with the "constraint" density D_a rho reaches the metric's third
derivatives on the reference slice (forward mode over one jet in 3 spatial directions, at the
window points only).

What the tolerances mean.

- ``shear_tolerance`` (0.01): sigma / H <= 0.1, the shear's share of the expansion's energy
  budget Omega_sigma = sigma^2 / (3 H^2) <= 0.0033.
- ``homogeneity_tolerance`` (0.1): across one Hubble length c/H of that time the density changes
  by at most 10%. For one linear growing mode of comoving wavenumber k in a matter-dominated
  universe, |D rho| / (rho H) = (k / aH) |delta| and delta = (2/3) (k / aH)^2 Phi, so the value is
  (2/3) (k / aH)^3 Phi. With the CMB's Phi ~ 3e-5 the observed universe stays below 0.1 for
  k / aH < 17 (estimate, no transfer function, which only lowers small-scale power): at z = 35
  (comoving Hubble length 714 Mpc for h = 0.7) scales above 2 pi / k ~ 260 Mpc. The metric
  networks resolve scales of the order of c/H0, far above that, so 0.1 admits the real
  universe and forbids Hubble-scale inhomogeneity of order one at z = 20-50.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from cosmology import matter
from cosmology.geometry import MetricFn, christoffel_from_jet, inverse_metric
from cosmology.kinematics import comoving_kinematics_from_jet


def density_and_gradient(metric_fn: MetricFn, x: jax.Array, source: matter.Source, g: jax.Array,
                         dg: jax.Array, g_inv: jax.Array):
    """(kappa rho, d_a kappa rho (4,)) at ``x`` from the metric's first jet there (g, dg, g^ab).

    kappa rho = C(x^i) V(t, x) (:mod:`cosmology.matter`), so

        d_a (kappa rho) = V d_a C + kappa rho d_a ln V,   d_a ln V = d_a g_tt / (2 g_tt) - g^bc d_a g_bc / 2,

    with d_t C = 0. Only C's three spatial derivatives need forward mode (over the reference
    slice's jet: the metric's third derivatives, for the "constraint" density); the uniform C
    has none.
    """
    volume = matter.volume_factor(g)
    d_log_volume = dg[0, 0, :] / (2.0 * g[0, 0]) - 0.5 * jnp.einsum("bc,bca->a", g_inv, dg)
    if source.reference_time is None:
        norm, d_norm = source.norm, jnp.zeros(4, g.dtype)
    else:
        def norm_of(spatial):
            rho_ref, volume_ref = matter.reference_density(metric_fn, x.at[1:].set(spatial), source.reference_time,
                                                           source.cosmological_constant)
            return rho_ref / volume_ref, rho_ref / volume_ref

        d_spatial, norm = jax.jacfwd(norm_of, has_aux=True)(x[1:])
        d_norm = jnp.concatenate([jnp.zeros(1, g.dtype), d_spatial])
    kappa_rho = norm * volume
    return kappa_rho, volume * d_norm + kappa_rho * d_log_volume


def density_gradient_ratio(g: jax.Array, g_inv: jax.Array, kappa_rho: jax.Array, gradient: jax.Array,
                           hubble: jax.Array) -> jax.Array:
    """|D rho| / (rho H), the denominator not differentiated, with D_a rho = h_a^b d_b rho.

    D_a u^a = 0 and u^a = delta^a_t / s (s = sqrt(-g_tt)) make D_t = 0 exactly, so

        D_i = d_i rho + u_i u^t d_t rho,   |D rho|^2 = g^ij D_i D_j   (i, j spatial).

    Written so, not as h^ab d_a rho d_b rho: there h^tt = g^tt + u^t u^t vanishes only up to
    rounding and multiplies (d_t rho)^2 = (3 H rho)^2, which leaves 3 sqrt(eps) ~ 1e-3 in float32.
    """
    s = jnp.sqrt(-g[0, 0])
    spatial = gradient[1:] + (g[1:, 0] / s) * (gradient[0] / s)
    norm2 = jnp.einsum("ij,i,j->", g_inv[1:, 1:], spatial, spatial)
    scale = jax.lax.stop_gradient(jnp.abs(kappa_rho) * jnp.abs(hubble))
    return jnp.sqrt(jnp.maximum(norm2, 0.0)) / scale


def cmb_prior_values(metric_fn: MetricFn, x: jax.Array, source: matter.Source, shear_tolerance: float,
                     homogeneity_tolerance: float) -> dict:
    """The three CMB priors at one point (module docstring), values <= 0 when met, plus the
    dust's ``hubble_rates`` (3,), ``mean_hubble_rate``, ``shear_ratio`` sigma^2 / H^2,
    ``density_gradient`` |D rho| / (rho H) and ``kappa_rho``."""
    g = metric_fn(x)
    dg = jax.jacfwd(metric_fn)(x)
    g_inv = inverse_metric(g)
    kin = comoving_kinematics_from_jet(g, dg, g_inv, christoffel_from_jet(g_inv, dg))
    kappa_rho, gradient = density_and_gradient(metric_fn, x, source, g, dg, g_inv)
    h2 = jax.lax.stop_gradient(kin.mean_hubble_rate**2)
    h_scale = jax.lax.stop_gradient(jnp.sqrt(h2 + jnp.abs(kappa_rho) / 3.0))
    shear_ratio = kin.shear_scalar / h2
    gradient_ratio = density_gradient_ratio(g, g_inv, kappa_rho, gradient, kin.mean_hubble_rate)
    return {
        "expansion": -jnp.min(kin.hubble_rates) / h_scale,
        "shear": shear_ratio - shear_tolerance,
        "homogeneity": gradient_ratio - homogeneity_tolerance,
        "hubble_rates": kin.hubble_rates,
        "mean_hubble_rate": kin.mean_hubble_rate,
        "shear_ratio": shear_ratio,
        "density_gradient": gradient_ratio,
        "kappa_rho": kappa_rho,
    }


__all__ = ["cmb_prior_values", "density_and_gradient", "density_gradient_ratio"]
