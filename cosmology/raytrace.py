"""Light rays through a metric: null geodesics, covariant redshift, area and luminosity distance.

Conventions: signature (-,+,+,+), c = 1, coordinates (t, x, y, z), the units of
:mod:`cosmology.conventions` (H0 = 1: lengths in c/H0, times in 1/H0, today at t = 0).

Observer and sky
    The observer at the event ``observer`` has 4-velocity u_O, by default the comoving
    observer of the gauge, u = d_t / sqrt(-g_tt) (fixed spatial coordinates; with a vanishing
    shift it is also the normal observer). Its orthonormal frame e_0 = u_O, e_1, e_2, e_3 is
    Gram-Schmidt (in g) of the coordinate axes d_x, d_y, d_z made orthogonal to u_O. A sky
    direction n is a unit 3-vector on e_1, e_2, e_3 pointing *to* the source.

Signs of the ray
    The photon arrives travelling along -n: its momentum is p = E (u_O - n^i e_i). We trace
    it backwards in time, from the observer, with the past-directed tangent

        k = dx/dlambda = -p / E_O = -u_O + n^i e_i,      lambda >= 0 grows into the past,

    so k^t < 0, the spatial part of k points along +n, u_O.k = +1, and g(k, k) = -1 + |n|^2
    = 0 exactly for the full metric (shift included). k obeys the geodesic equation
    dk^a/dlambda = -Gamma^a_{bc} k^b k^c.

Redshift
    A source with 4-velocity u_S measures the photon's energy as -u_S.p, so
    1 + z = (u_S.k)_S / (u_O.k)_O = u_S.k. Sources move with the gauge's comoving observers,
    u_S = d_t / sqrt(-g_tt), hence 1 + z = g_{ta} k^a / sqrt(-g_tt).

Area distance (the Jacobi map)
    Rays from the observer with directions n + dtheta^A s_A (s_1, s_2 orthonormal and
    orthogonal to n) differ by xi_A = dx/dtheta^A, with xi_A(0) = 0, dxi_A/dlambda(0) = s_A^i e_i.
    Differentiating the geodesic equation gives the geodesic deviation equation in
    coordinates (:func:`ray_equations`); it holds the curvature (second derivatives of the
    metric). At the source, xi_A is projected on the screen of u_S (orthogonal to u_S and
    to the ray; a component along k is only a shift of affine parameter),
    P xi = xi + (u.xi) u - (d.xi) d with d = (k + (u.k) u) / (u.k). The Gram matrix
    G_AB = g(P xi_A, P xi_B) is D^T D for the 2x2 Jacobi map D, so the area distance (the
    angular diameter distance: source area per observed solid angle) is

        d_A = |det D|^(1/2) = (det G)^(1/4),        d_L = (1 + z)^2 d_A   (Etherington).

    Both are scalars: they do not change when the coordinates are changed.

Integration and stopping at a redshift
    The ray is integrated (diffrax, adaptive Tsit5 by default) in s with ds = (u_S.k)^2 dlambda,
    strictly increasing along every ray (u_S.k = 1 + z > 0 always); s is the comoving
    distance in FLRW, so the solution varies evenly with redshift and the solver needs about
    half the steps it needs in lambda. Integration stops after the step on which z passes
    the largest requested redshift. Each requested z is found on the dense output: the first
    step where z - z_target changes sign brackets it, safeguarded Newton iterations (no
    gradient) converge on the interpolant, and a last Newton correction with gradient makes
    ds*/dtheta = -(dF/dtheta) / (dF/ds) exact (implicit function theorem). A redshift that is
    never reached gives NaN.

Many sources, one ray
    Rows that share a direction (one supernova seen by several surveys) share a ray:
    :func:`plan_rays` and :func:`luminosity_distance_by_ray`. For a whole catalogue,
    :func:`sky_grid` and :func:`luminosity_distance_sky_grid` trace rays along ~100 sky
    directions and interpolate log d_A (a polyharmonic spline on the sphere, cubic Hermite in
    log z): an approximation whose error is measured in ``benchmarks/bench_raytrace.py``.
"""
from __future__ import annotations

from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

# Re-exported: the public names of the ray equations live in cosmology.ray_geodesic.
from cosmology.ray_geodesic import (  # noqa: F401
    MetricFn,
    RayOptions,
    RaySample,
    RayState,
    area_distance,
    comoving_velocity,
    geodesic_acceleration,
    initial_state,
    normalised_velocity,
    null_violation,
    observer_frame,
    ray_equations,
    redshift,
    screen_vectors,
)
from cosmology.ray_integration import _integrate, _ray_distances, _start


# ----------------------------------------------------------------------------------------
# Exact distances


def trace_ray(metric_fn: MetricFn, observer, direction, affine, *, observer_velocity=None,
              options: RayOptions = RayOptions()) -> RaySample:
    """Quantities along the ray towards ``direction`` (3,) at the affine parameters ``affine``
    (M,), increasing and > 0 (normalised by u_O.k = 1: near the observer lambda is the
    distance in its frame). Needs no redshift to be reached (e.g. Minkowski space)."""
    affine = jnp.asarray(affine)
    if affine.ndim != 1:
        raise ValueError(f"affine must have shape (M,), got {affine.shape}")
    y0 = _start(metric_fn, observer, direction, observer_velocity)
    affine = affine.astype(y0.x.dtype)
    sol = _integrate(metric_fn, y0, options, t1=affine[-1], saveat=diffrax.SaveAt(ts=affine),
                     parameter="affine")
    s = sol.ys
    gs = jax.vmap(metric_fn)(s.x)
    return RaySample(
        affine=affine, x=s.x, k=s.k,
        redshift=jax.vmap(redshift)(gs, s.k),
        area_distance=jax.vmap(area_distance)(gs, s.k, s.xi),
        null_violation=jax.vmap(null_violation)(gs, s.k),
    )


def _check_rows(directions, redshifts):
    directions, redshifts = np.shape(directions), np.shape(redshifts)
    if len(directions) != 2 or directions[-1] != 3:
        raise ValueError(f"directions must have shape (N, 3), got {directions}")
    if redshifts != directions[:1]:
        raise ValueError(f"redshifts must have shape ({directions[0]},) like directions, got {redshifts}")


def luminosity_distance(metric_fn: MetricFn, observer, directions, redshifts, *,
                        observer_velocity=None, options: RayOptions = RayOptions()) -> jax.Array:
    """d_L = (1 + z)^2 d_A, shape (N,), of sources seen in ``directions`` (N, 3) (unit vectors
    on the observer's sky) at ``redshifts`` (N,), in code length units.

    One exact ray per row (module docstring); NaN where a redshift is not reached.
    Differentiable in reverse mode with respect to anything ``metric_fn`` closes over (forward
    mode needs ``options=RayOptions(adjoint=diffrax.ForwardMode())``), e.g.
    ``lambda x: model.apply(params, x)`` or ``cosmology.metric.bind(model, params)`` (faster:
    it brings the network's jet). ``observer_velocity``: None (the comoving observer), a
    4-velocity u^a (4,) or a coordinate velocity dx^i/dt (3,). Rows that share a direction
    can share a ray: :func:`plan_rays`, :func:`luminosity_distance_by_ray`.
    """
    _check_rows(directions, redshifts)
    observer = jnp.asarray(observer)
    redshifts = jnp.asarray(redshifts, observer.dtype)

    def one(direction, z):
        y0 = _start(metric_fn, observer, direction, observer_velocity)
        return _ray_distances(metric_fn, y0, z[None], options)[0]

    d_a = jax.vmap(one)(jnp.asarray(directions, observer.dtype), redshifts)
    return (1.0 + redshifts) ** 2 * d_a


class RayPlan(NamedTuple):
    """Rows grouped into rays (numpy, built once from the data by :func:`plan_rays`).

    Ray r looks along ``directions[r]`` and stops at ``redshifts[r, :]`` (padded by
    repeating its first redshift); row i reads ray ``row_ray[i]`` at slot ``row_slot[i]``.
    Rays are sorted by their largest redshift and padded to a multiple of ``batch_size``,
    so each batch of rays (one vmapped solve) stops as early as its farthest source allows.
    """

    directions: np.ndarray  # (R, 3)
    redshifts: np.ndarray  # (R, M)
    row_ray: np.ndarray  # (N,)
    row_slot: np.ndarray  # (N,)
    row_redshift: np.ndarray  # (N,)
    batch_size: int


def plan_rays(directions, redshifts, *, groups=None, batch_size: int = 128) -> RayPlan:
    """Group rows (N, 3) / (N,) into rays: rows with the same ``groups`` label (e.g. the
    supernova CID), or by default with identical directions, share one ray."""
    directions, redshifts = np.asarray(directions, np.float64), np.asarray(redshifts, np.float64)
    _check_rows(directions, redshifts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    labels = np.asarray(groups) if groups is not None else [tuple(d) for d in np.round(directions, 12)]
    if len(labels) != len(redshifts):
        raise ValueError(f"groups must have one label per row ({len(redshifts)}), got {len(labels)}")
    first, row_group = {}, np.empty(len(redshifts), np.int64)
    for i, label in enumerate(labels):
        row_group[i] = first.setdefault(label, len(first))
    members = [np.flatnonzero(row_group == r) for r in range(len(first))]
    for rows in members:
        if not np.allclose(directions[rows], directions[rows[0]], atol=1e-9):
            raise ValueError(f"groups: rows {rows.tolist()} share a label but not a direction")
    order = np.argsort([redshifts[rows].max() for rows in members], kind="stable")
    n_rays = -(-len(order) // batch_size) * batch_size
    width = max(len(rows) for rows in members)
    ray_dirs = np.empty((n_rays, 3))
    ray_z = np.empty((n_rays, width))
    row_ray, row_slot = np.empty(len(redshifts), np.int64), np.empty(len(redshifts), np.int64)
    for r, g in enumerate(order):
        rows = members[g]
        ray_dirs[r] = directions[rows[0]]
        ray_z[r] = redshifts[rows[0]]
        ray_z[r, : len(rows)] = redshifts[rows]
        row_ray[rows], row_slot[rows] = r, np.arange(len(rows))
    ray_dirs[len(order):], ray_z[len(order):] = ray_dirs[len(order) - 1], ray_z[len(order) - 1]
    return RayPlan(ray_dirs, ray_z, row_ray, row_slot, redshifts, batch_size)


def luminosity_distance_by_ray(metric_fn: MetricFn, observer, plan: RayPlan, *, observer_velocity=None,
                               options: RayOptions = RayOptions()) -> jax.Array:
    """d_L (N,) for the rows of ``plan``, exact, one ray per group of rows (see
    :func:`luminosity_distance`); the rays run in vmapped batches of ``plan.batch_size``."""
    observer = jnp.asarray(observer)

    def one(ray):
        direction, zs = ray
        y0 = _start(metric_fn, observer, direction, observer_velocity)
        return _ray_distances(metric_fn, y0, zs, options)

    rays = (jnp.asarray(plan.directions, observer.dtype), jnp.asarray(plan.redshifts, observer.dtype))
    d_a = jax.lax.map(one, rays, batch_size=plan.batch_size)[plan.row_ray, plan.row_slot]
    return (1.0 + jnp.asarray(plan.row_redshift, observer.dtype)) ** 2 * d_a


def luminosity_distance_along_rays(metric_fn: MetricFn, observer, directions, redshifts, *,
                                   observer_velocity=None, options: RayOptions = RayOptions()) -> jax.Array:
    """d_L (R, M): ray r looks along ``directions[r]`` (R, 3) and is read at every redshift of
    ``redshifts`` (M,) (shared by all rays) or ``redshifts[r]`` (R, M).

    The rays are one ``vmap`` over the leading axis, so with that axis split over devices
    (``pinnopt.sharding``: the problem puts the directions in its sampled batch) each device
    traces its own rays. Same physics and gradients as :func:`luminosity_distance`.
    """
    observer = jnp.asarray(observer)
    directions = jnp.asarray(directions, observer.dtype)
    redshifts = jnp.asarray(redshifts, observer.dtype)
    if directions.ndim != 2 or directions.shape[-1] != 3:
        raise ValueError(f"directions must have shape (R, 3), got {directions.shape}")
    if redshifts.ndim == 1:
        redshifts = jnp.broadcast_to(redshifts, (directions.shape[0],) + redshifts.shape)
    if redshifts.ndim != 2 or redshifts.shape[0] != directions.shape[0]:
        raise ValueError(f"redshifts must have shape (M,) or ({directions.shape[0]}, M), got {redshifts.shape}")

    def one(direction, zs):
        y0 = _start(metric_fn, observer, direction, observer_velocity)
        return _ray_distances(metric_fn, y0, zs, options)

    return (1.0 + redshifts) ** 2 * jax.vmap(one)(directions, redshifts)


# ----------------------------------------------------------------------------------------
# The sky-grid approximation


class SkyGrid(NamedTuple):
    """Rays along a set of sky directions and how each row interpolates them (numpy).

    Nodes: ``nodes`` (R, 3), by default a Fibonacci lattice (near-uniform). Redshift nodes:
    ``redshifts`` (Z,), evenly spaced in log z over the rows' range. Row i:

        log d_A(n_i, z_i) = sum_r W_ir [h00 F_r,k + h10 M_r,k + h01 F_r,k+1 + h11 M_r,k+1]

    with F = log d_A and M = d log d_A / d log z at the nodes (both exact, from the rays),
    k the log-z interval of z_i, h the cubic Hermite basis (slopes scaled by the interval),
    and W (N, R) the weights of a polyharmonic spline on the sphere (phi = r^5 of the chord
    distance) augmented with the 9 real spherical harmonics of degree <= 2: it reproduces
    any monopole + dipole + quadrupole sky pattern exactly (the low-redshift signature of an
    anisotropic expansion rate) and interpolates smoothly in between.
    """

    nodes: np.ndarray  # (R, 3) unit vectors
    redshifts: np.ndarray  # (Z,)
    row_weights: np.ndarray  # (N, R)
    row_interval: np.ndarray  # (N,)
    row_basis: np.ndarray  # (N, 4)
    row_redshift: np.ndarray  # (N,)


def fibonacci_sphere(n: int) -> np.ndarray:
    """n near-uniform unit vectors (n, 3): z_i = 1 - (2 i + 1) / n, azimuth i times the
    golden angle pi (3 - sqrt 5)."""
    i = np.arange(n)
    z = 1.0 - (2.0 * i + 1.0) / n
    phi = i * np.pi * (3.0 - np.sqrt(5.0))
    rho = np.sqrt(1.0 - z**2)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def _harmonics(n: np.ndarray) -> np.ndarray:
    """The 9 real spherical harmonics of degree <= 2 (unnormalised) at unit vectors (N, 3)."""
    x, y, z = n.T
    return np.stack([np.ones_like(x), x, y, z, x * y, y * z, z * x, x * x - y * y, 3 * z * z - 1], axis=1)


def sphere_interpolation_weights(nodes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """W (N, R): f(points) ~= W f(nodes) by the polyharmonic spline of :class:`SkyGrid`.

    Solves [[K, P], [P^T, 0]] [c; d] = [f; 0] with K_rs = |n_r - n_s|^5, P the harmonics
    at the nodes; then f(p) = k(p).c + P(p).d, linear in f.
    """
    kernel = lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=-1) ** 5
    p_nodes = _harmonics(nodes)
    m = p_nodes.shape[1]
    system = np.block([[kernel(nodes, nodes), p_nodes], [p_nodes.T, np.zeros((m, m))]])
    rhs = np.concatenate([kernel(points, nodes), _harmonics(points)], axis=1)
    return np.linalg.solve(system.T, rhs.T).T[:, : len(nodes)]


def sky_grid(directions, redshifts, *, n_rays: int = 100, n_redshifts: int = 24, nodes=None) -> SkyGrid:
    """The grid and each row's interpolation weights for ``directions`` (N, 3) and
    ``redshifts`` (N,); ``nodes`` (R, 3) replaces the Fibonacci lattice of ``n_rays``."""
    directions, redshifts = np.asarray(directions, np.float64), np.asarray(redshifts, np.float64)
    _check_rows(directions, redshifts)
    if n_redshifts < 2:
        raise ValueError(f"n_redshifts must be >= 2, got {n_redshifts}")
    if np.any(redshifts <= 0):
        raise ValueError("redshifts must be > 0 for the sky grid (it interpolates in log z)")
    nodes = fibonacci_sphere(n_rays) if nodes is None else np.asarray(nodes, np.float64)
    if nodes.ndim != 2 or nodes.shape[1] != 3 or nodes.shape[0] < 16:
        raise ValueError(f"the grid needs at least 16 node directions of shape (R, 3), got {nodes.shape}")
    nodes = nodes / np.linalg.norm(nodes, axis=1, keepdims=True)
    directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)

    log_lo, log_hi = np.log(redshifts.min()), np.log(redshifts.max())
    pad = 1e-3 * max(log_hi - log_lo, 1.0)  # keep every row strictly inside the node range
    log_z = np.linspace(log_lo - pad, log_hi + pad, n_redshifts)
    w = np.log(redshifts)
    k = np.clip(np.searchsorted(log_z, w) - 1, 0, n_redshifts - 2)
    h = log_z[k + 1] - log_z[k]
    tau = (w - log_z[k]) / h
    basis = np.stack([2 * tau**3 - 3 * tau**2 + 1, h * (tau**3 - 2 * tau**2 + tau),
                      -2 * tau**3 + 3 * tau**2, h * (tau**3 - tau**2)], axis=1)
    weights = sphere_interpolation_weights(nodes, directions)
    return SkyGrid(nodes, np.exp(log_z), weights, k, basis, redshifts)


def luminosity_distance_sky_grid(metric_fn: MetricFn, observer, grid: SkyGrid, *, observer_velocity=None,
                                 options: RayOptions = RayOptions(), batch_size: int = 0) -> jax.Array:
    """d_L (N,) for the rows of ``grid``: exact rays along the grid nodes, each tabulated at
    the grid's redshifts, interpolated as in :class:`SkyGrid`. An approximation (exact at
    the nodes), differentiable like :func:`luminosity_distance`. ``batch_size`` > 0 runs
    the node rays in batches of that size (less memory); 0 runs them in one vmapped solve."""
    observer = jnp.asarray(observer)
    z_nodes = jnp.asarray(grid.redshifts, observer.dtype)

    def one(direction):
        y0 = _start(metric_fn, observer, direction, observer_velocity)
        d_a, slope = _ray_distances(metric_fn, y0, z_nodes, options, slopes=True)
        return jnp.log(d_a), slope

    log_d, slope = jax.lax.map(one, jnp.asarray(grid.nodes, observer.dtype), batch_size=batch_size)
    k = grid.row_interval
    basis = jnp.asarray(grid.row_basis, observer.dtype)
    # Every node's Hermite interpolant at every row's redshift, (R, N), then the sky weights.
    along_z = (basis[:, 0] * log_d[:, k] + basis[:, 1] * slope[:, k]
               + basis[:, 2] * log_d[:, k + 1] + basis[:, 3] * slope[:, k + 1])
    log_d_rows = jnp.sum(jnp.asarray(grid.row_weights, observer.dtype) * along_z.T, axis=1)
    return (1.0 + jnp.asarray(grid.row_redshift, observer.dtype)) ** 2 * jnp.exp(log_d_rows)
