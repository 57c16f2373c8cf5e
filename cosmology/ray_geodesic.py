"""Null geodesics and the Jacobi map: the ray's state, the observer's frame and sky, the
ray equations (geodesic and geodesic deviation), covariant redshift and area distance.

Conventions and signs are those of :mod:`cosmology.raytrace`, the public module, which
re-exports every public name defined here.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import diffrax
import jax
import jax.numpy as jnp

from cosmology.geometry import (
    christoffel,
    christoffel_derivative_from_jet,
    christoffel_from_jet,
    inverse_metric,
    metric_jet,
)

MetricFn = Callable[[jax.Array], jax.Array]


class RayOptions(NamedTuple):
    """How rays are integrated. Left as None, tolerances and the step budget follow the
    dtype of the observer: rtol 1e-11, atol 1e-13, 256 steps in float64; rtol 1e-5,
    atol 1e-7, 64 steps in float32 (d_L to ~1e-5, the float32 floor; rtol 1e-4 gives ~2e-5)."""

    rtol: Optional[float] = None
    atol: Optional[float] = None
    max_steps: Optional[int] = None  # kept for the dense output and the adjoint checkpoints
    max_parameter: float = 1e3  # s (or lambda) at which a ray stops when no redshift stops it
    newton_iterations: int = 8  # safeguarded Newton on the dense output, per redshift
    parameter: str = "distance"  # "distance": ds = (1 + z)^2 dlambda; or "affine"
    solver: Optional[diffrax.AbstractAdaptiveSolver] = None  # default diffrax.Tsit5()
    adjoint: Optional[diffrax.AbstractAdjoint] = None  # default: checkpoint every step


class RayState(NamedTuple):
    """The integrated state of one ray: position, tangent, and the two Jacobi fields."""

    x: jax.Array  # (4,) x^a
    k: jax.Array  # (4,) k^a = dx^a/dlambda, past-directed null
    xi: jax.Array  # (2, 4) xi_A = dx/dtheta^A
    eta: jax.Array  # (2, 4) d xi_A / dlambda


class RaySample(NamedTuple):
    """Quantities along a ray at given affine parameters (see :func:`trace_ray`)."""

    affine: jax.Array  # (M,)
    x: jax.Array  # (M, 4)
    k: jax.Array  # (M, 4)
    redshift: jax.Array  # (M,)
    area_distance: jax.Array  # (M,)
    null_violation: jax.Array  # (M,) |g(k, k)| / (k^t)^2


# ----------------------------------------------------------------------------------------
# Observers and frames


def _dot(g, a, b):
    return a @ g @ b


def comoving_velocity(g: jax.Array) -> jax.Array:
    """u^a = delta^a_t / sqrt(-g_tt): the observer at rest in the spatial coordinates."""
    return jnp.zeros(4, g.dtype).at[0].set(1.0) / jnp.sqrt(-g[0, 0])


def normalised_velocity(g: jax.Array, velocity: jax.Array) -> jax.Array:
    """A 4-velocity from ``velocity``: u^a (4,) rescaled to g(u, u) = -1, or the coordinate
    3-velocity v^i = dx^i/dt (3,), u = (1, v) / sqrt(-g((1, v), (1, v)))."""
    velocity = jnp.asarray(velocity, g.dtype)
    if velocity.shape == (3,):
        velocity = jnp.concatenate([jnp.ones(1, g.dtype), velocity])
    elif velocity.shape != (4,):
        raise ValueError(f"observer_velocity must have shape (3,) or (4,), got {velocity.shape}")
    return velocity / jnp.sqrt(-_dot(g, velocity, velocity))


def observer_frame(g: jax.Array, u: jax.Array) -> jax.Array:
    """The tetrad (4, 4), rows e_0 = u, e_1, e_2, e_3: Gram-Schmidt in g of d_x, d_y, d_z,
    each first made orthogonal to u (v -> v + (u.v) u, as u.u = -1)."""
    axes = [u]
    for i in (1, 2, 3):
        v = jnp.zeros(4, g.dtype).at[i].set(1.0)
        v = v + _dot(g, u, v) * u
        for e in axes[1:]:
            v = v - _dot(g, e, v) * e
        axes.append(v / jnp.sqrt(_dot(g, v, v)))
    return jnp.stack(axes)


def screen_vectors(n: jax.Array) -> jax.Array:
    """Two orthonormal 3-vectors s_1, s_2 orthogonal to the unit vector n, (2, 3).

    Built from the coordinate axis least aligned with n, so the construction never
    degenerates; the area distance does not depend on the choice (a rotation of the screen).
    """
    helper = jnp.eye(3, dtype=n.dtype)[jnp.argmin(jnp.abs(n))]
    s1 = jnp.cross(n, helper)
    s1 = s1 / jnp.linalg.norm(s1)
    return jnp.stack([s1, jnp.cross(n, s1)])


def initial_state(observer: jax.Array, frame: jax.Array, direction: jax.Array) -> RayState:
    """The ray leaving the observer towards the sky direction n (module docstring):
    x = observer, k = -e_0 + n^i e_i, xi_A = 0, eta_A = s_A^i e_i."""
    n = direction / jnp.linalg.norm(direction)
    k = -frame[0] + n @ frame[1:]
    eta = screen_vectors(n) @ frame[1:]
    return RayState(x=observer, k=k, xi=jnp.zeros_like(eta), eta=eta)


# ----------------------------------------------------------------------------------------
# Along the ray


def geodesic_acceleration(metric_fn: MetricFn, x: jax.Array, k: jax.Array) -> jax.Array:
    """dk^a/dlambda = -Gamma^a_{bc}(x) k^b k^c (with :func:`cosmology.geometry.christoffel`)."""
    return -jnp.einsum("abc,b,c->a", christoffel(metric_fn, x), k, k)


def ray_equations(metric_fn: MetricFn, parameter: str = "affine") -> Callable:
    """The vector field (s, RayState, args) -> d RayState / ds of the ray and its Jacobi fields.

    In the affine parameter: the geodesic equation and its linearisation along each Jacobi
    field (geodesic deviation),

        dx/dlambda = k,   dk^a/dlambda = -Gamma^a_{bc} k^b k^c,   dxi_A/dlambda = eta_A,
        deta_A^a/dlambda = -d_m Gamma^a_{bc} xi_A^m k^b k^c - 2 Gamma^a_{bc} k^b eta_A^c.

    ``parameter="distance"``: the same curves in s, ds = (u_S.k)^2 dlambda, every right-hand
    side divided by (1 + z)^2. The Jacobi fields keep their meaning (dx/dtheta at fixed
    lambda, evaluated along the central ray).

    Gamma and d Gamma come from the metric's jet (g, dg, ddg) at x
    (:func:`cosmology.geometry.metric_jet`: one Taylor-mode pass for the metric networks,
    whose backward pass is far cheaper than that of nested jvps; nested forward mode for
    other metric functions), assembled in closed form by the geometry engine.
    """
    if parameter not in ("affine", "distance"):
        raise ValueError(f"parameter must be 'affine' or 'distance', got {parameter!r}")

    def field(s, state: RayState, args) -> RayState:
        del s, args
        jet = metric_jet(metric_fn, state.x)
        g_inv = inverse_metric(jet.g)
        gamma = christoffel_from_jet(g_inv, jet.dg)
        d_gamma = christoffel_derivative_from_jet(g_inv, jet.dg, jet.ddg)  # [a, b, c, m]
        gamma_k = jnp.einsum("abc,b->ac", gamma, state.k)
        acc = -gamma_k @ state.k
        d_acc = -jnp.einsum("abcm,Am,b,c->Aa", d_gamma, state.xi, state.k, state.k) - 2.0 * state.eta @ gamma_k.T
        rate = RayState(x=state.k, k=acc, xi=state.eta, eta=d_acc)
        if parameter == "affine":
            return rate
        scale = 1.0 / _dot(jet.g, comoving_velocity(jet.g), state.k) ** 2
        return jax.tree_util.tree_map(lambda r: r * scale, rate)

    return field


def redshift(g: jax.Array, k: jax.Array) -> jax.Array:
    """1 + z = u_S.k with u_S the comoving observer and k normalised by (u_O.k)_O = 1."""
    return _dot(g, comoving_velocity(g), k) - 1.0


def area_distance(g: jax.Array, k: jax.Array, xi: jax.Array) -> jax.Array:
    """d_A = (det G)^(1/4), G_AB = g(P xi_A, P xi_B), P the screen projector of the comoving
    source (module docstring)."""
    u = comoving_velocity(g)
    uk = _dot(g, u, k)
    d = (k + uk * u) / uk

    def project(v):
        return v + _dot(g, u, v) * u - _dot(g, d, v) * d

    p = jax.vmap(project)(xi)
    gram = p @ g @ p.T
    return jnp.abs(gram[0, 0] * gram[1, 1] - gram[0, 1] * gram[1, 0]) ** 0.25


def null_violation(g: jax.Array, k: jax.Array) -> jax.Array:
    """|g(k, k)| / (k^t)^2: zero for an exactly null tangent."""
    return jnp.abs(_dot(g, k, k)) / k[0] ** 2
