"""Comoving dust and a cosmological constant as the source of Einstein's equations.

Units are those of :mod:`cosmology.conventions` (c = 1, H0 = 1: times in 1/H0, lengths in c/H0)
and kappa = 8 pi G = 8 pi (``conventions.KAPPA``), so kappa rho is a curvature (1/length^2)
and the critical density today is kappa rho_c = 3 H0^2 = 3. Everything here works with
kappa rho and kappa T directly, never with rho alone.

Dust that moves with the spatial coordinates has 4-velocity u^a = delta^a_t / sqrt(-g_tt).
Its rest-mass conservation, nabla_a (rho u^a) = 0, integrates along each worldline to

    rho u^t sqrt(-g) = const   =>   kappa rho = C sqrt(-g_tt) / sqrt(-det g),

which for a vanishing shift (g_0i = 0, g_00 = -N^2) is C / sqrt(det g_ij): the density of the
seeds, inversely proportional to the comoving volume element. One constant C for every
worldline means a uniform density on a slice where sqrt(-det g) / sqrt(-g_tt) is uniform.

C is fixed by the density parameter measured by the observer at ``observer`` (4,),

    Omega_m = kappa rho_O / (3 H_O^2)   =>   C = 3 Omega_m H_O^2 sqrt(-det g_O) / sqrt(-g_tt,O),

with H_O the observer's Hubble rate (theta / 3). Defined this way Omega_m is what the observer
measures, whatever the chart's normalisation of a(t_O) or of the time unit, so a fit of
distances with the absolute magnitude marginalised (which fixes only the shape of d_L(z), not
H0) identifies it. The cosmological constant enters the same way, Lambda = 3 Omega_Lambda H_O^2.

Einstein's equations with this source, residual E_ab = G_ab + Lambda g_ab - kappa rho u_a u_b,
are made dimensionless (see :func:`einstein_residual`) by a local scale, not weighted by
det g_ij: a weight that scales like a^12 would leave the past unconstrained and make the loss
depend on the chart.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

OMEGA_M_BOUNDS = (0.05, 1.0)  # 0.05: the baryon floor; 1: no more than the critical density


class Source(NamedTuple):
    """The physical constants of a source, in code units (H0 = 1) at the observer's scale."""

    omega_m: jax.Array  # the observer's matter density parameter
    omega_lambda: jax.Array  # Lambda / (3 H_O^2)
    hubble: jax.Array  # H_O, the observer's Hubble rate (code units)
    norm: jax.Array  # C in kappa rho = C sqrt(-g_tt) / sqrt(-det g)

    @property
    def cosmological_constant(self) -> jax.Array:
        """Lambda = 3 Omega_Lambda H_O^2 (1/length^2)."""
        return 3.0 * self.omega_lambda * self.hubble**2


# ----------------------------------------------------------------------------- parameters


def bounded(raw: jax.Array, low: float, high: float) -> jax.Array:
    """low + (high - low) sigmoid(raw): any real raw gives a value strictly inside (low, high)."""
    return low + (high - low) * jax.nn.sigmoid(raw)


def unbounded(value: float, low: float, high: float) -> float:
    """The raw parameter of :func:`bounded` for ``value`` (logit); ValueError outside (low, high)."""
    if not low < value < high:
        raise ValueError(f"value must lie strictly inside ({low}, {high}), got {value}")
    s = (value - low) / (high - low)
    return math.log(s / (1.0 - s))


def omega_m_from_raw(raw: jax.Array, bounds=OMEGA_M_BOUNDS) -> jax.Array:
    """Omega_m in ``bounds`` (default [0.05, 1]) from its unconstrained parameter."""
    return bounded(raw, *bounds)


# ----------------------------------------------------------------------------- dust


def comoving_velocity(g: jax.Array) -> jax.Array:
    """u^a = delta^a_t / sqrt(-g_tt): dust at rest in the spatial coordinates, (4,)."""
    return jnp.zeros(4, g.dtype).at[0].set(1.0) / jnp.sqrt(-g[0, 0])


def volume_factor(g: jax.Array) -> jax.Array:
    """sqrt(-g_tt) / sqrt(-det g): kappa rho per unit of C (= 1 / sqrt(det g_ij) without shift)."""
    return jnp.sqrt(-g[0, 0]) / jnp.sqrt(-jnp.linalg.det(g))


def dust_density(g: jax.Array, norm: jax.Array) -> jax.Array:
    """kappa rho = C sqrt(-g_tt) / sqrt(-det g) (rest-mass conservation, module docstring)."""
    return norm * volume_factor(g)


def dust_norm(g_observer: jax.Array, hubble: jax.Array, omega_m: jax.Array) -> jax.Array:
    """C such that kappa rho_O = 3 Omega_m H_O^2 at the observer."""
    return 3.0 * omega_m * hubble**2 / volume_factor(g_observer)


def dust_stress(g: jax.Array, kappa_rho: jax.Array) -> jax.Array:
    """kappa T_ab = kappa rho u_a u_b for comoving dust, lower indices, (4, 4)."""
    u_lower = g @ comoving_velocity(g)
    return kappa_rho * jnp.outer(u_lower, u_lower)


def make_source(g_observer: jax.Array, hubble: jax.Array, omega_m: jax.Array,
                omega_lambda: jax.Array) -> Source:
    """The source normalised at the observer (metric ``g_observer``, Hubble rate ``hubble``)."""
    return Source(omega_m, omega_lambda, hubble, dust_norm(g_observer, hubble, omega_m))


# ----------------------------------------------------------------------------- residual


def einstein_tensor_residual(einstein: jax.Array, g: jax.Array, kappa_rho: jax.Array,
                             cosmological_constant: jax.Array) -> jax.Array:
    """E_ab = G_ab + Lambda g_ab - kappa rho u_a u_b (lower indices)."""
    return einstein + cosmological_constant * g - dust_stress(g, kappa_rho)


def frame_norm(tensor: jax.Array, g: jax.Array, g_inv: jax.Array) -> jax.Array:
    """|E| = (sum_AB E_(AB)^2)^(1/2), the Frobenius norm of the components in the orthonormal
    frame of the gauge observer n (the normal to the t = const slice):

        |E|^2 = h^ac h^bd E_ab E_cd,   h^ab = g^ab + 2 n^a n^b,   n^a = -N g^a0,

    h being the identity in that frame. A scalar under changes of spatial coordinates and of
    the spatial frame; equal to the mixed components' norm for a diagonal metric.
    """
    lapse = 1.0 / jnp.sqrt(-g_inv[0, 0])
    n = -lapse * g_inv[:, 0]
    h = g_inv + 2.0 * jnp.outer(n, n)
    return jnp.sqrt(jnp.maximum(jnp.einsum("ac,bd,ab,cd->", h, h, tensor, tensor), 0.0))


def residual_scale(hubble: jax.Array, kappa_rho: jax.Array) -> jax.Array:
    """The local scale 3 H^2 + kappa rho (1/length^2): |G_ab| of a dust universe is of this size."""
    return 3.0 * hubble**2 + kappa_rho


def einstein_residual(einstein: jax.Array, g: jax.Array, g_inv: jax.Array, kappa_rho: jax.Array,
                      cosmological_constant: jax.Array, hubble: jax.Array) -> jax.Array:
    """The dimensionless residual r = |G_ab + Lambda g_ab - kappa rho u_a u_b| / (3 H^2 + kappa rho).

    The scale is held fixed under differentiation (stop_gradient), so training lowers r by
    solving the equations, not by inflating H or rho. For exact FLRW/LCDM with matching
    Omega_m and Lambda, r = 0 at every point.
    """
    scale = jax.lax.stop_gradient(residual_scale(hubble, kappa_rho))
    return frame_norm(einstein_tensor_residual(einstein, g, kappa_rho, cosmological_constant), g, g_inv) / scale


__all__ = [
    "OMEGA_M_BOUNDS",
    "Source",
    "bounded",
    "comoving_velocity",
    "dust_density",
    "dust_norm",
    "dust_stress",
    "einstein_residual",
    "einstein_tensor_residual",
    "frame_norm",
    "make_source",
    "omega_m_from_raw",
    "residual_scale",
    "unbounded",
    "volume_factor",
]
