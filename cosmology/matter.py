"""Comoving dust and a cosmological constant as the source of Einstein's equations.

Units are those of :mod:`cosmology.conventions` (c = 1, H0 = 1: times in 1/H0, lengths in c/H0)
and kappa = 8 pi G = 8 pi (``conventions.KAPPA``), so kappa rho is a curvature (1/length^2)
and the critical density today is kappa rho_c = 3 H0^2 = 3. Everything here works with
kappa rho and kappa T directly, never with rho alone.

Dust that moves with the spatial coordinates has 4-velocity u^a = delta^a_t / sqrt(-g_tt).
Its rest-mass conservation, nabla_a (rho u^a) = 0, integrates along each worldline to

    rho u^t sqrt(-g) = C(x)   =>   kappa rho(t, x) = C(x) V(t, x),   V = sqrt(-g_tt) / sqrt(-det g),

which for a vanishing shift is C(x) / sqrt(det g_ij): the density is inversely proportional to
the comoving volume element, and C(x), the rest mass per unit coordinate volume, is constant
along each worldline but may depend on which worldline. What fixes C(x)?

- ``"constraint"`` (the default, :func:`comoving_density`): the field equations themselves. Their
  component along the dust, G_ab u^a u^b = kappa rho + Lambda (the Hamiltonian constraint when
  u is the slice normal, as in the synchronous gauge), is imposed on one reference slice
  t = t_ref (the observer's, t = 0), which gives

      kappa rho(t_ref, x) = G_uu(t_ref, x) - Lambda,    C(x) = kappa rho(t_ref, x) / V(t_ref, x),

  and rest-mass conservation carries it to every other time. This is how initial data work in
  general relativity: the density on a slice is not free once the slice's geometry (gamma_ij
  and K_ij) is given, so the dust needs no parameters of its own and nothing in it refers to
  the chart. Any exact dust + Lambda solution (FLRW with k = 0, +1, -1, LTB, ...) written in
  any smooth chart in which the dust is at rest has E_ab = 0 to float precision; the residual
  vanishes identically on the reference slice along u, and elsewhere checks all ten equations,
  its u-u component being the Hamiltonian constraint carried forward by conservation.
  Omega_m is then derived, not fitted: Omega_m = kappa rho_O / (3 H_O^2) at the observer O,
  the *local* matter density parameter an observer at O would measure, equal to
  1 - Omega_k - Omega_Lambda - sigma^2 / (3 H^2) there (Omega_k = -R^(3) / (6 H^2)).
  The price: one more metric jet per point (at (t_ref, x)), and kappa rho is not positive by
  construction (a geometry with G_uu < Lambda on the reference slice implies negative mass,
  which the weak energy condition on T_eff catches).
- ``"uniform"`` (the former construction, kept for comparison, :func:`dust_density`): one
  constant C for every worldline, fixed by a trained Omega_m at the observer,
  C = 3 Omega_m H_O^2 / V(O). It fixes a chart: a uniform density on a slice where V is
  uniform, so exact Einstein-de Sitter in the chart x = y (1 + 0.3 |y|^2) has residuals of
  0.15-0.42 and FLRW with k != 0 in its isotropic chart gets a spurious density gradient.

The cosmological constant enters the same way in both, Lambda = 3 Omega_Lambda H_O^2, with H_O
the observer's Hubble rate, so that Omega_m and Omega_Lambda are what the observer measures,
whatever the chart's normalisation of a(t_O) or of the time unit (a fit of distances with the
absolute magnitude marginalised fixes only the shape of d_L(z), not H0).

Einstein's equations with this source, residual E_ab = G_ab + Lambda g_ab - kappa rho u_a u_b,
are made dimensionless (see :func:`einstein_residual`) by a local scale, not weighted by
det g_ij: a weight that scales like a^12 would leave the past unconstrained and make the loss
depend on the chart.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from cosmology.geometry import curvature_from_jet, metric_jet

OMEGA_M_BOUNDS = (0.05, 1.0)  # 0.05: the baryon floor; 1: no more than the critical density
DENSITIES = ("constraint", "uniform")  # what fixes C(x): module docstring


class Source(NamedTuple):
    """The physical constants of a source, in code units (H0 = 1) at the observer's scale."""

    omega_m: jax.Array  # the observer's (local) matter density parameter kappa rho_O / (3 H_O^2)
    omega_lambda: jax.Array  # Lambda / (3 H_O^2)
    hubble: jax.Array  # H_O, the observer's Hubble rate (code units)
    norm: jax.Array  # "uniform": the one C in kappa rho = C V; "constraint": NaN (C depends on x)
    reference_time: Optional[jax.Array] = None  # "constraint": t_ref of the reference slice; None: "uniform"

    @property
    def density(self) -> str:
        """Which construction fixes C(x): "constraint" or "uniform" (module docstring)."""
        return "uniform" if self.reference_time is None else "constraint"

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
    """The "uniform" source normalised at the observer (metric ``g_observer``, Hubble rate ``hubble``)."""
    return Source(omega_m, omega_lambda, hubble, dust_norm(g_observer, hubble, omega_m))


# ----------------------------------------------------------------------------- dust from the field equations


def density_along_dust(einstein: jax.Array, g: jax.Array, cosmological_constant: jax.Array) -> jax.Array:
    """kappa rho = G_ab u^a u^b - Lambda: the field equations' component along the dust."""
    u = comoving_velocity(g)
    return u @ einstein @ u - cosmological_constant


def reference_density(metric_fn, x: jax.Array, reference_time, cosmological_constant: jax.Array):
    """(kappa rho, V) on the reference slice at the worldline of ``x``: the point (t_ref, x^i),
    kappa rho = G_uu - Lambda there (one metric jet), V = sqrt(-g_tt) / sqrt(-det g)."""
    y = x.at[0].set(jnp.asarray(reference_time, x.dtype))
    jet = metric_jet(metric_fn, y)
    curv = curvature_from_jet(jet)
    return density_along_dust(curv.einstein_tensor, jet.g, cosmological_constant), volume_factor(jet.g)


def comoving_density(metric_fn, x: jax.Array, source: Source, g: Optional[jax.Array] = None) -> jax.Array:
    """kappa rho at ``x`` (4,) for ``source`` (``g``: the metric at x, if already computed).

    "constraint": kappa rho(t, x) = [G_uu - Lambda](t_ref, x) V(t, x) / V(t_ref, x), the reference
    slice's density carried along the worldline by rest-mass conservation;
    "uniform": C V(t, x) with the one constant C (module docstring).
    """
    g = metric_fn(x) if g is None else g
    if source.reference_time is None:
        return dust_density(g, source.norm)
    kappa_rho_ref, volume_ref = reference_density(metric_fn, x, source.reference_time, source.cosmological_constant)
    return kappa_rho_ref * volume_factor(g) / volume_ref


def constraint_source(metric_fn, observer: jax.Array, hubble: jax.Array, omega_lambda: jax.Array) -> Source:
    """The "constraint" source with the observer's slice as reference: Omega_m derived,

        Omega_m = (G_uu(O) - Lambda) / (3 H_O^2),   Lambda = 3 Omega_Lambda H_O^2.
    """
    lam = 3.0 * omega_lambda * hubble**2
    jet = metric_jet(metric_fn, observer)
    kappa_rho = density_along_dust(curvature_from_jet(jet).einstein_tensor, jet.g, lam)
    nan = jnp.full((), jnp.nan, kappa_rho.dtype)  # no single C: a stray use of ``norm`` shows up as NaN
    return Source(kappa_rho / (3.0 * hubble**2), omega_lambda, hubble, nan, observer[0])


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
    """The local scale 3 H^2 + |kappa rho| (1/length^2): |G_ab| of a dust universe is of this size.

    |kappa rho|: the "constraint" density can come out negative for a bad geometry, and the
    scale must stay positive then (for rho >= 0 it is 3 H^2 + kappa rho).
    """
    return 3.0 * hubble**2 + jnp.abs(kappa_rho)


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
    "DENSITIES",
    "OMEGA_M_BOUNDS",
    "Source",
    "bounded",
    "comoving_density",
    "comoving_velocity",
    "constraint_source",
    "density_along_dust",
    "dust_density",
    "dust_norm",
    "dust_stress",
    "einstein_residual",
    "einstein_tensor_residual",
    "frame_norm",
    "make_source",
    "omega_m_from_raw",
    "reference_density",
    "residual_scale",
    "unbounded",
    "volume_factor",
]
