"""The supernova term of the cosmology problems: distance moduli from rays on a sky grid.

Tracing one exact ray per supernova (1580 rays) every training step is too slow on a CPU, so
the distances come from a grid of K rays, each evaluated at M redshift nodes:

1. Redshift: along ray k, f_k(z) = ln(d_L / z) is smooth and tends to 0 as z -> 0; it is
   interpolated by a cubic spline (not-a-knot) in ln z through the M nodes (geometric between
   the smallest and the largest redshift of the sample). The spline is linear in the node
   values, so it is a constant (N, M) matrix applied to them. For flat LCDM the largest
   error this makes in a distance modulus is 3e-4 mag with M = 12 nodes, 1.2e-4 with 16 and
   3e-5 with 32 (``tests/cosmology/test_problem.py``).
2. Direction: a supernova in direction n gets d_L(n, z) = sum_k P(n)_k d_L(n_k, z), where P
   is the least-squares fit, over the K ray directions, of the polynomials of degree <= L
   on the sphere (they span the spherical harmonics up to ell = L). The fit reproduces any
   sky pattern of degree <= L exactly (an anisotropic Bianchi I universe at low redshift is
   a monopole plus a quadrupole, L = 2); finer structure is smoothed. K = 1 with L = 0 is
   the isotropic case (FLRW): one ray serves every supernova.

The model modulus is mu = 5 log10(d_L (1 + z_hel) / (1 + z)) + const, the heliocentric
correction of :func:`cosmology.likelihood.luminosity_distance_flat_lcdm` (rays are traced to
z, the sample's cosmological redshift: zHD by default, or zCMB; the flux dimming uses the
observed z_hel). The constant, the absolute magnitude together with H0, is marginalised
(``cosmology.likelihood``), so the length unit of d_L does not matter.

A moving observer (:func:`moving_observer`): u_O = gamma (u_c + beta^i e_i), beta the velocity
relative to the comoving observer u_c on its orthonormal frame e_i (the frame the supernova
directions are given in), gamma = (1 - |beta|^2)^-1/2. Every ray starts from u_O's own frame,
so aberration and the Doppler shift are in the tracer (:mod:`cosmology.raytrace`): in FLRW,
d_L(n, z) = d_L^FLRW(z_c) / D with D = 1 / (gamma (1 - beta.n)) and 1 + z_c = (1 + z) D.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from cosmology import likelihood, raytrace
from cosmology.conventions import C_KM_S
from cosmology.data import SupernovaSample
from cosmology.ray_geodesic import comoving_velocity, observer_frame


# ----------------------------------------------------------------------------- the sky


def fibonacci_directions(k: int) -> np.ndarray:
    """k nearly uniform unit vectors (the Fibonacci lattice), (k, 3) float64; k = 1 gives +z."""
    if int(k) != k or k < 1:
        raise ValueError(f"the number of ray directions must be a positive integer, got {k!r}")
    if k == 1:
        return np.array([[0.0, 0.0, 1.0]])
    i = np.arange(k) + 0.5
    cos_theta = 1.0 - 2.0 * i / k
    phi = math.pi * (1.0 + math.sqrt(5.0)) * i
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    return np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta], axis=-1)


def sky_polynomials(directions: np.ndarray, degree: int) -> np.ndarray:
    """Monomials x^a y^b z^c, a + b + c <= ``degree``, at unit ``directions`` (n, 3) -> (n, m).

    On the sphere they span the spherical harmonics of ell <= degree ((degree + 1)^2 of them;
    the monomials are dependent there because x^2 + y^2 + z^2 = 1).
    """
    powers = [p for p in itertools.product(range(degree + 1), repeat=3) if sum(p) <= degree]
    d = np.asarray(directions, np.float64)
    return np.stack([d[:, 0] ** a * d[:, 1] ** b * d[:, 2] ** c for a, b, c in powers], axis=-1)


def sky_projection(targets: np.ndarray, rays: np.ndarray, degree: int) -> np.ndarray:
    """P (n, K): values at the K ``rays`` -> least-squares fit of degree ``degree`` -> values at ``targets``.

    ValueError when the ray directions cannot determine every harmonic up to ``degree``
    (too few rays, or a degenerate arrangement).
    """
    if int(degree) != degree or degree < 0:
        raise ValueError(f"sky degree must be a non-negative integer, got {degree!r}")
    basis = sky_polynomials(rays, degree)
    rank = np.linalg.matrix_rank(basis, tol=1e-8 * np.abs(basis).max())
    if rank < (degree + 1) ** 2:
        raise ValueError(f"{len(rays)} ray directions determine only {rank} of the {(degree + 1) ** 2} "
                         f"sky harmonics up to degree {degree}: use more directions or a lower degree")
    return sky_polynomials(targets, degree) @ np.linalg.pinv(basis, rcond=1e-8)


# ----------------------------------------------------------------------------- the data


class SupernovaData(NamedTuple):
    """Constant arrays of the supernova term (a pytree; float32 for training)."""

    whitening: likelihood.Whitening
    z: jax.Array  # (N,) the sample's redshift z (zHD or zCMB), the one rays are traced to
    log_z: jax.Array  # (N,)
    helio: jax.Array  # (N,) (1 + z_hel) / (1 + z)
    directions: jax.Array  # (N, 3) unit vectors towards the supernovae
    ray_directions: jax.Array  # (K, 3)
    projection: jax.Array  # (N, K) sky fit, see sky_projection
    z_nodes: jax.Array  # (M,) redshift nodes of every ray
    log_z_nodes: jax.Array  # (M,)
    redshift_weights: jax.Array  # (N, M) the cubic spline in ln z, node values -> supernova redshifts


def make_supernova_data(sample: SupernovaSample, *, n_directions: int = 1, sky_degree: int = 0,
                        n_redshift_nodes: int = 32, observable: str = "mu",
                        mu_obs: Optional[np.ndarray] = None, dtype=jnp.float32, host=None) -> SupernovaData:
    """The sky grid and the whitened data for ``sample`` (see the module docstring).

    ``mu_obs`` replaces the observed moduli (mock data for injection tests) while keeping the
    sample's errors, redshifts and directions. ``host``: the sample's float64 whitening
    (:func:`cosmology.likelihood.host_whitening`) when already computed; it is cast, not redone.
    """
    if int(n_redshift_nodes) != n_redshift_nodes or n_redshift_nodes < 2:
        raise ValueError(f"n_redshift_nodes must be an integer >= 2, got {n_redshift_nodes!r}")
    whitening = likelihood.make_whitening(sample, observable=observable, dtype=dtype, host=host)
    if mu_obs is not None:
        mu_obs = np.asarray(mu_obs, np.float64)
        if mu_obs.shape != (sample.n,):
            raise ValueError(f"mu_obs must have shape ({sample.n},), got {mu_obs.shape}")
        whitening = whitening._replace(mu_obs=jnp.asarray(mu_obs, dtype))
    rays = fibonacci_directions(n_directions)
    projection = sky_projection(sample.direction, rays, sky_degree)
    z = np.asarray(sample.z, np.float64)
    nodes = np.geomspace(z.min() * (1 - 1e-4), z.max() * (1 + 1e-4), int(n_redshift_nodes))
    weights = spline_weights(np.log(nodes), np.log(z))
    return SupernovaData(
        whitening=whitening,
        z=jnp.asarray(z, dtype), log_z=jnp.asarray(np.log(z), dtype),
        helio=jnp.asarray((1.0 + sample.z_hel) / (1.0 + z), dtype),
        directions=jnp.asarray(sample.direction, dtype),
        ray_directions=jnp.asarray(rays, dtype),
        projection=jnp.asarray(projection, dtype),
        z_nodes=jnp.asarray(nodes, dtype), log_z_nodes=jnp.asarray(np.log(nodes), dtype),
        redshift_weights=jnp.asarray(weights, dtype),
    )


def spline_weights(x_nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """W (len(x), M): the cubic spline (not-a-knot; linear for M = 2, quadratic for M = 3)
    through values at ``x_nodes`` evaluated at ``x`` is W @ values."""
    from scipy.interpolate import CubicSpline

    m = len(x_nodes)
    if m < 4:
        return np.stack([np.interp(x, x_nodes, np.eye(m)[j]) for j in range(m)], axis=1)
    return CubicSpline(x_nodes, np.eye(m), axis=0, bc_type="not-a-knot")(x)


# ----------------------------------------------------------------------------- the model


def grid_plan(directions: np.ndarray, z_nodes: np.ndarray) -> raytrace.RayPlan:
    """One ray per direction (K, 3), each stopping at every redshift node (M,): rows k M + m."""
    k, m = len(directions), len(z_nodes)
    rows = np.repeat(np.asarray(directions, np.float64), m, axis=0)
    return raytrace.plan_rays(rows, np.tile(np.asarray(z_nodes, np.float64), k),
                              groups=np.repeat(np.arange(k), m), batch_size=k)


def isotropic_plan(sample_z: np.ndarray) -> raytrace.RayPlan:
    """One ray (along +z) stopping at every supernova redshift: exact distances when the
    metric is isotropic about the observer (FLRW), no interpolation."""
    z = np.asarray(sample_z, np.float64)
    rows = np.tile(np.array([[0.0, 0.0, 1.0]]), (len(z), 1))
    return raytrace.plan_rays(rows, z, groups=np.zeros(len(z), np.int64), batch_size=1)


def ray_grid_distances(metric_fn: Callable, observer: jax.Array, plan: raytrace.RayPlan, shape: tuple,
                       options: raytrace.RayOptions = raytrace.RayOptions(), observer_velocity=None) -> jax.Array:
    """d_L on the grid of :func:`grid_plan`, reshaped to ``shape`` = (K, M); ``observer_velocity``
    as in :func:`cosmology.raytrace.luminosity_distance` (None: the comoving observer)."""
    return raytrace.luminosity_distance_by_ray(metric_fn, observer, plan, options=options,
                                               observer_velocity=observer_velocity).reshape(shape)


def moving_observer(metric_fn: Callable, observer: jax.Array, beta: jax.Array) -> jax.Array:
    """u_O^a (4,) = gamma (u_c + beta^i e_i): the observer moving with velocity ``beta`` (3,) (units
    of c) relative to the comoving observer u_c, on u_c's orthonormal frame e_i (Gram-Schmidt of
    the coordinate axes, :func:`cosmology.ray_geodesic.observer_frame`); gamma = (1 - |beta|^2)^-1/2.
    Pass it as ``observer_velocity`` to the tracer. The tracer builds u_O's own frame the same way
    (Gram-Schmidt of the axes projected orthogonally to u_O): the pure boost of u_c's frame when
    beta lies along an axis, otherwise that boost rotated by O(|beta|^2) (~5e-7 rad at 300 km/s)."""
    g = metric_fn(observer)
    frame = observer_frame(g, comoving_velocity(g))
    beta = jnp.asarray(beta, g.dtype)
    gamma = 1.0 / jnp.sqrt(1.0 - beta @ beta)
    return gamma * (frame[0] + beta @ frame[1:])


def interpolate_redshift(d_nodes: jax.Array, log_z_nodes: jax.Array, log_z: jax.Array,
                         weights: Optional[jax.Array] = None) -> jax.Array:
    """(K, M) distances at the nodes -> (K, N) at the supernova redshifts: f = ln(d/z) through
    the spline ``weights`` (N, M) (default: built here from the nodes, outside jit only)."""
    if weights is None:
        weights = jnp.asarray(spline_weights(np.asarray(log_z_nodes, np.float64), np.asarray(log_z, np.float64)),
                              d_nodes.dtype)
    f = jnp.log(d_nodes) - log_z_nodes
    return jnp.exp(f @ weights.T + log_z)


def supernova_distances(d_nodes: jax.Array, data: SupernovaData) -> jax.Array:
    """d_L (N,) of every supernova from the ray grid (K, M): redshift, then sky interpolation."""
    per_ray = interpolate_redshift(d_nodes, data.log_z_nodes, data.log_z, data.redshift_weights)  # (K, N)
    return jnp.sum(data.projection * per_ray.T, axis=1)


def model_moduli(d_l: jax.Array, data: SupernovaData) -> jax.Array:
    """mu = 5 log10(d_L (1 + z_hel) / (1 + z_hd)) + 25, d_L in code units (the offset is marginalised)."""
    return likelihood.distance_modulus(d_l * data.helio)


def whitened_residuals(d_l: jax.Array, data: SupernovaData) -> jax.Array:
    """Residuals whose squares sum to chi^2 (offset marginalised), (N,)."""
    return likelihood.whitened_residuals(data.whitening, model_moduli(d_l, data))


def hubble_constant(d_l: jax.Array, data: SupernovaData, hubble_code: jax.Array) -> jax.Array:
    """H0 in km/s/Mpc implied by the best offset, as in ``likelihood.fit_flat_lcdm``.

    With d_L in code units and the observer's Hubble rate ``hubble_code`` (code units),
    d_L H_O is d_L in units of c/H_O, and mu = 5 log10(d_L H_O) + o with o = 5 log10(c/H_O / Mpc) + 25
    (MU_SH0ES carries the SH0ES absolute magnitude).
    """
    offset = likelihood.best_offset(data.whitening, likelihood.distance_modulus(d_l * data.helio * hubble_code) - 25.0)
    return C_KM_S / 10.0 ** ((offset - 25.0) / 5.0)


__all__ = [
    "SupernovaData",
    "fibonacci_directions",
    "hubble_constant",
    "interpolate_redshift",
    "make_supernova_data",
    "model_moduli",
    "grid_plan",
    "isotropic_plan",
    "moving_observer",
    "ray_grid_distances",
    "sky_polynomials",
    "sky_projection",
    "spline_weights",
    "supernova_distances",
    "whitened_residuals",
]
