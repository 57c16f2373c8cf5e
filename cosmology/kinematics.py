"""3+1 kinematics of the observers of the chosen gauge (the normals n of the t = const slices).

ADM split of the metric (MTW):

    ds^2 = -N^2 dt^2 + gamma_ij (dx^i + beta^i dt)(dx^j + beta^j dt),
    N = 1 / sqrt(-g^00),  beta_i = g_0i,  beta^i = gamma^ij beta_j,  gamma^ij = g^ij - g^0i g^0j / g^00,
    n_a = (-N, 0, 0, 0),  n^a = (1, -beta^i) / N.

Extrinsic curvature, MTW/ADM sign (K < 0 in an expanding universe):

    K_ij = -(1 / 2N) (d_t gamma_ij - D_i beta_j - D_j beta_i) = -nabla_i n_j = -N Gamma^0_ij,

the last form because n_i = 0 for spatial i. The observers' expansion tensor is
Theta_ij = -K_ij with expansion theta = gamma^ij Theta_ij (= 3 a'/a in FLRW), shear
sigma_ij = Theta_ij - theta gamma_ij / 3 and directional Hubble rates the eigenvalues of
Theta^i_j (= a_i'/a_i in Bianchi I). Every function takes ``metric_fn`` and one point ``x``
(vmap over points) and needs only first derivatives of the metric.

The gauge observers n depend on the slicing. The observers the priors are about are the dust's,
u^a = delta^a_t / sqrt(-g_tt) (at rest in the spatial coordinates, :mod:`cosmology.matter`);
:func:`comoving_kinematics` gives their expansion tensor covariantly (Ellis 1971),

    Theta_ab = h_a^c h_b^d nabla_(c u_d),   h_ab = g_ab + u_a u_b,   theta = nabla_a u^a,

whose eigenvalues on the 3-space orthogonal to u (the directional Hubble rates H_i), theta and
sigma^2 = sigma_ab sigma^ab / 2 are scalars: the same in every chart in which the dust is at
rest, whatever the slicing (lapse and shift). In the synchronous comoving gauge u = n and they
equal the gauge observers' quantities above.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from cosmology.geometry import MetricFn, _check_point, christoffel_from_jet, inverse_metric


class ComovingKinematics(NamedTuple):
    """The dust observers' kinematics at one point (module docstring)."""

    velocity: jax.Array  # u^a, (4,)
    expansion_tensor: jax.Array  # Theta_ab, lower indices, (4, 4)
    hubble_rates: jax.Array  # H_i, eigenvalues (ascending) of Theta on the 3-space orthogonal to u, (3,)
    mean_hubble_rate: jax.Array  # H = theta / 3
    shear_scalar: jax.Array  # sigma^2
    projector: jax.Array  # h^ab = g^ab + u^a u^b, upper indices, (4, 4)


class Split(NamedTuple):
    """The ADM pieces of g at a point."""

    lapse: jax.Array  # N
    shift: jax.Array  # beta^i, (3,)
    spatial_metric: jax.Array  # gamma_ij, (3, 3)
    spatial_inverse: jax.Array  # gamma^ij, (3, 3)
    normal: jax.Array  # n^a, (4,)


class Kinematics(NamedTuple):
    """Everything below at one point (see the module docstring for the formulas)."""

    lapse: jax.Array
    shift: jax.Array
    extrinsic_curvature: jax.Array
    hubble_rates: jax.Array
    mean_hubble_rate: jax.Array
    shear_scalar: jax.Array
    spatial_gradient_norm: jax.Array


def adm_split(g: jax.Array, g_inv: jax.Array | None = None) -> Split:
    """N = 1/sqrt(-g^00), beta^i = -g^0i / g^00, gamma_ij = g_ij, gamma^ij = g^ij - g^0i g^0j / g^00, n^a = -N g^a0."""
    g_inv = inverse_metric(g) if g_inv is None else g_inv
    lapse = 1.0 / jnp.sqrt(-g_inv[0, 0])
    gamma_inv = g_inv[1:, 1:] - jnp.outer(g_inv[0, 1:], g_inv[0, 1:]) / g_inv[0, 0]
    return Split(lapse, -g_inv[0, 1:] / g_inv[0, 0], g[1:, 1:], gamma_inv, -lapse * g_inv[:, 0])


def orthonormal_frame(g: jax.Array) -> jax.Array:
    """Columns e_(A)^a of the gauge observer's orthonormal tetrad: e_(0) = n, and
    e_(k) = (0, L^{-T} e_k) with gamma = L L^T (Cholesky), so that e^T g e = diag(-1, 1, 1, 1)."""
    split = adm_split(g)
    factor = jnp.linalg.cholesky(split.spatial_metric)
    triad = solve_triangular(factor, jnp.eye(3, dtype=g.dtype), lower=True, trans=1)  # L^{-T}
    spatial = jnp.concatenate([jnp.zeros((1, 3), g.dtype), triad], axis=0)
    return jnp.concatenate([split.normal[:, None], spatial], axis=1)


def symmetric_eigenvalues(a: jax.Array) -> jax.Array:
    """Eigenvalues (ascending) of a symmetric matrix with finite gradients everywhere.

    lambda_k = v_k^T A v_k with the eigenvectors v_k held fixed (stop_gradient): the value is
    exact and d lambda_k = v_k^T dA v_k (first-order perturbation theory). At a degenerate
    eigenvalue this is one valid element of the (super)differential, where jnp.linalg.eigh's
    own derivative would divide by zero.
    """
    _, vectors = jnp.linalg.eigh(jax.lax.stop_gradient(a))
    return jnp.einsum("ik,ij,jk->k", vectors, a, vectors)


def _first_jet(metric_fn: MetricFn, x: jax.Array):
    _check_point(x)
    g, dg = metric_fn(x), jax.jacfwd(metric_fn)(x)
    g_inv = inverse_metric(g)
    return g, dg, g_inv, christoffel_from_jet(g_inv, dg)


def _expansion(g, g_inv, gamma):
    """Theta_ij = N Gamma^0_ij and the ADM split."""
    split = adm_split(g, g_inv)
    return split.lapse * gamma[0, 1:, 1:], split


def kinematics_from_jet(g: jax.Array, dg: jax.Array, g_inv: jax.Array, gamma: jax.Array) -> Kinematics:
    """All kinematic quantities from g, d_c g_ab (index c last), g^ab and Gamma^a_bc at a point."""
    theta_ij, split = _expansion(g, g_inv, gamma)
    expansion = jnp.einsum("ij,ij->", split.spatial_inverse, theta_ij)
    shear = theta_ij - expansion * split.spatial_metric / 3.0
    sigma2 = 0.5 * jnp.einsum("ij,ik,jl,kl->", shear, split.spatial_inverse, split.spatial_inverse, shear)
    factor = jnp.linalg.cholesky(split.spatial_metric)
    half = solve_triangular(factor, theta_ij, lower=True)  # L^{-1} Theta
    rates = symmetric_eigenvalues(solve_triangular(factor, half.T, lower=True))  # L^{-1} Theta L^{-T}
    euclid = g_inv + 2.0 * jnp.outer(split.normal, split.normal)  # positive definite: delta in the frame
    spatial_dg = dg[:, :, 1:]
    norm2 = jnp.einsum("ij,ac,bd,abi,cdj->", split.spatial_inverse, euclid, euclid, spatial_dg, spatial_dg)
    return Kinematics(
        split.lapse, split.shift, -theta_ij, rates, expansion / 3.0, sigma2, jnp.sqrt(jnp.maximum(norm2, 0.0))
    )


def comoving_kinematics_from_jet(g: jax.Array, dg: jax.Array, g_inv: jax.Array, gamma: jax.Array) -> ComovingKinematics:
    """The dust's kinematics from g, d_c g_ab (index c last), g^ab and Gamma^a_bc at a point.

        u_a = g_at / s,  s = sqrt(-g_tt),  d_c u_a = d_c g_at / s + g_at d_c g_tt / (2 s^3),
        nabla_c u_a = d_c u_a - Gamma^d_ca u_d,   Theta_ab = h_a^c h_b^d nabla_(c u_d).

    The projected coordinate vectors h d_i (i = 1, 2, 3) span the 3-space orthogonal to u with
    metric h_ij = g_ij + u_i u_j = L L^T, on which Theta takes the values Theta_ij; the rates are
    the eigenvalues of M = L^{-1} Theta_ij L^{-T}, theta = tr M and sigma^2 = |M - theta I / 3|^2 / 2.
    """
    s = jnp.sqrt(-g[0, 0])
    u_up = jnp.zeros(4, g.dtype).at[0].set(1.0) / s
    u_low = g[:, 0] / s
    du = dg[:, 0, :] / s + jnp.outer(g[:, 0], dg[0, 0, :]) / (2.0 * s**3)  # [a, c] = d_c u_a
    grad_u = du.T - jnp.einsum("dca,d->ca", gamma, u_low)  # [c, a] = nabla_c u_a
    proj = jnp.eye(4, dtype=g.dtype) + jnp.outer(u_up, u_low)  # [c, a] = h^c_a = delta^c_a + u^c u_a
    sym = 0.5 * (grad_u + grad_u.T)
    theta_ab = proj.T @ sym @ proj
    factor = jnp.linalg.cholesky(g[1:, 1:] + jnp.outer(u_low[1:], u_low[1:]))
    half = solve_triangular(factor, theta_ab[1:, 1:], lower=True)
    m = solve_triangular(factor, half.T, lower=True)  # L^{-1} Theta L^{-T}
    m = 0.5 * (m + m.T)
    expansion = jnp.trace(m)
    deviation = m - expansion / 3.0 * jnp.eye(3, dtype=g.dtype)  # the shear in an orthonormal triad
    sigma2 = 0.5 * jnp.sum(deviation * deviation)
    return ComovingKinematics(u_up, theta_ab, symmetric_eigenvalues(m), expansion / 3.0, sigma2,
                              g_inv + jnp.outer(u_up, u_up))


def comoving_kinematics(metric_fn: MetricFn, x: jax.Array) -> ComovingKinematics:
    """The dust observers' H_i, H, sigma^2 (and Theta_ab, u^a, h^ab) at ``x`` (module docstring)."""
    return comoving_kinematics_from_jet(*_first_jet(metric_fn, x))


def kinematics(metric_fn: MetricFn, x: jax.Array) -> Kinematics:
    """All kinematic quantities of the gauge observers at ``x`` from one first-order jet."""
    return kinematics_from_jet(*_first_jet(metric_fn, x))


def lapse(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """N = 1 / sqrt(-g^00): proper time per coordinate time of the gauge observers."""
    _check_point(x)
    return adm_split(metric_fn(x)).lapse


def shift(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """beta^i = gamma^ij g_0j = -g^0i / g^00, shape (3,)."""
    _check_point(x)
    return adm_split(metric_fn(x)).shift


def extrinsic_curvature(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """K_ij = -(1/2N)(d_t gamma_ij - D_i beta_j - D_j beta_i) = -N Gamma^0_ij, shape (3, 3) (MTW sign)."""
    g, _, g_inv, gamma = _first_jet(metric_fn, x)
    return -_expansion(g, g_inv, gamma)[0]


def hubble_rates(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """Directional Hubble rates: the eigenvalues (ascending) of Theta^i_j = -gamma^ik K_kj, shape (3,).

    Computed as the eigenvalues of the symmetric L^{-1} Theta L^{-T} (gamma = L L^T); for
    Bianchi I, ds^2 = -dt^2 + sum_i a_i(t)^2 dx_i^2, they are a_i'/a_i.
    """
    return kinematics(metric_fn, x).hubble_rates


def mean_hubble_rate(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """H = theta / 3 = -gamma^ij K_ij / 3 (= a'/a in FLRW)."""
    return kinematics(metric_fn, x).mean_hubble_rate


def shear_scalar(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """sigma^2 = sigma_ij sigma^ij / 2, sigma_ij = Theta_ij - theta gamma_ij / 3 (= 0 in FLRW)."""
    return kinematics(metric_fn, x).shear_scalar


def spatial_gradient_norm(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """How much the metric varies along the slice, in the gauge observer's frame:

        |d g|^2 = gamma^ij E^ac E^bd (d_i g_ab)(d_j g_cd),   E^ab = g^ab + 2 n^a n^b,

    E being the positive-definite (Euclidean) inverse metric of the observer's orthonormal
    frame, so each d_i g_ab is measured per unit proper length in frame components. Zero for
    FLRW in comoving Cartesian coordinates (a homogeneous chart); a measure of lumpiness.
    """
    return kinematics(metric_fn, x).spatial_gradient_norm


__all__ = [
    "ComovingKinematics",
    "Kinematics",
    "Split",
    "adm_split",
    "comoving_kinematics",
    "comoving_kinematics_from_jet",
    "extrinsic_curvature",
    "hubble_rates",
    "kinematics",
    "kinematics_from_jet",
    "lapse",
    "mean_hubble_rate",
    "orthonormal_frame",
    "shear_scalar",
    "shift",
    "spatial_gradient_norm",
    "symmetric_eigenvalues",
]
