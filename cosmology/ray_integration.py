"""Integrating rays and finding redshifts on them: the adaptive solve (diffrax), the
safeguarded Newton search on its dense output, and area distances at given redshifts.

Private helpers of :mod:`cosmology.raytrace`; the method is described there.
"""
from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp

from cosmology.ray_geodesic import (
    RayOptions,
    RayState,
    area_distance,
    comoving_velocity,
    initial_state,
    normalised_velocity,
    observer_frame,
    ray_equations,
    redshift,
)


# ----------------------------------------------------------------------------------------
# Integration


def _resolved(options: RayOptions, dtype) -> RayOptions:
    wide = jnp.dtype(dtype) == jnp.float64
    return options._replace(
        rtol=options.rtol if options.rtol is not None else (1e-11 if wide else 1e-5),
        atol=options.atol if options.atol is not None else (1e-13 if wide else 1e-7),
        max_steps=options.max_steps if options.max_steps is not None else (256 if wide else 64),
    )


def _start(metric_fn, observer, direction, observer_velocity):
    observer = jnp.asarray(observer)
    if observer.shape != (4,):
        raise ValueError(f"observer must have shape (4,), got {observer.shape}")
    g0 = metric_fn(observer)
    u0 = comoving_velocity(g0) if observer_velocity is None else normalised_velocity(g0, observer_velocity)
    return initial_state(observer, observer_frame(g0, u0), jnp.asarray(direction, observer.dtype))


def _integrate(metric_fn, y0: RayState, options: RayOptions, *, z_stop=None, t1=None, saveat=None,
               parameter=None):
    """Adaptive solve from 0 to t1 (default ``options.max_parameter``) in ``parameter``.

    Default output: dense, plus s and z at every step. With ``z_stop`` it stops after the
    step on which z >= z_stop.
    """
    options = _resolved(options, y0.x.dtype)

    def z_of(state):
        return redshift(metric_fn(state.x), state.k)

    event = None
    if z_stop is not None:
        event = diffrax.Event(lambda t, y, args, **kwargs: z_of(y) >= z_stop)
    return diffrax.diffeqsolve(
        diffrax.ODETerm(ray_equations(metric_fn, parameter or options.parameter)),
        options.solver if options.solver is not None else diffrax.Tsit5(),
        t0=0.0,
        t1=options.max_parameter if t1 is None else t1,
        dt0=None,
        y0=y0,
        saveat=saveat or diffrax.SaveAt(steps=True, dense=True, fn=lambda t, y, args: z_of(y)),
        stepsize_controller=diffrax.PIDController(rtol=options.rtol, atol=options.atol),
        event=event,
        max_steps=options.max_steps,
        adjoint=options.adjoint or diffrax.RecursiveCheckpointAdjoint(checkpoints=options.max_steps),
        throw=False,
    )


def _redshift_rate(metric_fn, state: RayState, rate: RayState):
    """(z, dz/ds) at ``state`` moving with d state/ds = ``rate``."""

    def z_of(x, k):
        return redshift(metric_fn(x), k)

    return jax.jvp(z_of, (state.x, state.k), (rate.x, rate.k))


def _state_at_redshift(metric_fn, sol, z0, z_target, iterations):
    """The state where the ray first reaches z_target, found on the dense output.

    Bracket: the first saved step where z - z_target has left the sign it had at s = 0.
    Safeguarded Newton on the interpolant (bisection when a step leaves the bracket), without
    gradient, gives s_0. Then, with F(s) = z(s) - z_target, s* = s_0 - F / F' and the state
    y(s_0) + y'(s_0) (s* - s_0) carry the exact first derivatives (implicit function
    theorem: ds*/dp = -F_p / F'). Returns (state, d state/ds, found).
    """

    def residual(s):
        z, dz = _redshift_rate(metric_fn, sol.evaluate(s), sol.derivative(s))
        return z - z_target, dz

    sign = jnp.sign(z0 - z_target)
    ss = jnp.concatenate([jnp.zeros(1, sol.ts.dtype), sol.ts])
    zs = jnp.concatenate([jnp.reshape(z0, (1,)), sol.ys])
    # Steps not taken (the step budget ran out first) are padded with inf: never a crossing.
    crossed = ((zs - z_target) * sign <= 0) & jnp.isfinite(ss) & jnp.isfinite(zs)
    found = jnp.any(crossed) & (sign != 0)
    i = jnp.maximum(jnp.argmax(crossed), 1)
    ss, zs = jax.lax.stop_gradient((ss, zs))
    lo, hi = jnp.where(found, ss[i - 1], 0.0), jnp.where(found, ss[i], ss[1])
    # Secant guess on the bracketing step, then Newton kept inside [lo, hi].
    guess = lo + (hi - lo) * jnp.clip((z_target - zs[i - 1]) / (zs[i] - zs[i - 1]), 0.0, 1.0)

    def newton(carry, _):
        lo, hi, s = carry
        f, df = residual(s)
        before = f * sign > 0  # still on the observer's side of the crossing
        lo, hi = jnp.where(before, s, lo), jnp.where(before, hi, s)
        step = s - f / df
        inside = (step >= lo) & (step <= hi) & jnp.isfinite(step)
        return (lo, hi, jnp.where(inside, step, 0.5 * (lo + hi))), None

    (_, _, s0), _ = jax.lax.scan(newton, (lo, hi, guess), None, length=iterations)
    # Unreached targets are evaluated at the end of the first step (s > 0, d_A > 0) so that
    # no NaN or infinity enters the gradient of the others through jnp.where.
    s0 = jax.lax.stop_gradient(jnp.where(found, s0, ss[1]))
    state, rate = sol.evaluate(s0), sol.derivative(s0)
    frozen = jax.lax.stop_gradient(rate)
    f, df = _redshift_rate(metric_fn, state, frozen)
    shift = jnp.where(found, -(f - z_target) / jax.lax.stop_gradient(df), 0.0)  # s* - s_0, ~0
    state = jax.tree_util.tree_map(lambda y, dy: y + dy * shift, state, frozen)
    return state, rate, found


def _ray_distances(metric_fn, y0: RayState, redshifts: jax.Array, options: RayOptions, *,
                   slopes: bool = False):
    """d_A (M,) at each requested redshift along the ray from y0 (NaN where not reached);
    with ``slopes`` also d ln d_A / d ln z there (from the dense output's derivative)."""
    options = _resolved(options, y0.x.dtype)
    sol = _integrate(metric_fn, y0, options, z_stop=jnp.max(redshifts))
    z0 = redshift(metric_fn(y0.x), y0.k)

    def z_and_distance(state):
        g = metric_fn(state.x)
        return redshift(g, state.k), area_distance(g, state.k, state.xi)

    def at(z_target):
        state, rate, found = _state_at_redshift(metric_fn, sol, z0, z_target, options.newton_iterations)
        nan = jnp.full((), jnp.nan, y0.x.dtype)
        if not slopes:
            return jnp.where(found, z_and_distance(state)[1], nan)
        (z, d_a), (dz, dd_a) = jax.jvp(z_and_distance, (state,), (rate,))
        return jnp.where(found, d_a, nan), jnp.where(found, dd_a / dz * z / d_a, nan)

    return jax.vmap(at)(redshifts)
