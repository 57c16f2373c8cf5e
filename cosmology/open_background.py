"""Open dust FLRW (Lambda = 0, 0 < Omega_m <= 1) as a background for the metric networks.

With H0 = 1 and a(0) = 1 (today at t = 0), x = 1 - Omega_m = -k, the Friedmann equation
(da/dt)^2 = Omega_m / a + x has the parametric solution (eta the conformal time scaled by sqrt(x))

    a = Omega_m / (2 x) (cosh eta - 1),      t + t_0 = Omega_m / (2 x^(3/2)) (sinh eta - eta).

Both blow up as x -> 0 (Einstein-de Sitter), so we write them with zeta = eta / sqrt(x), which
stays finite there, and w = sqrt(x) zeta = eta:

    a(zeta)     = Omega_m zeta^2 C(w) / 4,      C(w) = 2 (cosh w - 1) / w^2 = 1 + w^2/12 + ...
    t_bb(zeta)  = Omega_m zeta^3 S(w) / 12,     S(w) = 6 (sinh w - w) / w^3 = 1 + w^2/20 + ...

(x = 0 gives a = (3 t_bb / 2)^(2/3), Einstein-de Sitter). d t_bb / d zeta = a, so a(t) follows
from Newton's method on t_bb(zeta) = t + t_0, started at the Einstein-de Sitter zeta, which is
never below the root (S >= 1): on this convex, increasing function Newton then converges
monotonically. The inverse, t(a), is closed form: cosh w = 1 + 2 x a / Omega_m.

In the isotropic chart the spatial metric is a(t)^2 |dx|^2 / (1 - x |x|^2 / 4)^2 (k = -x), valid
for |x| < 2 / sqrt(x); a comoving geodesic distance chi is the coordinate radius
2 tanh(sqrt(x) chi / 2) / sqrt(x).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

_NEWTON_STEPS = 24  # Omega_m = 0.02 from the Einstein-de Sitter start needs ~10; the rest is margin


def _series_or(w, limit, series, closed):
    """series(w) for |w| < limit, closed(w) elsewhere, with no NaN in either branch's gradient."""
    small = jnp.abs(w) < limit
    w_big = jnp.where(small, 1.0, w)
    return jnp.where(small, series(w), closed(w_big))


def cosh_factor(w):
    """C(w) = 2 (cosh w - 1) / w^2 = (sinh(w/2) / (w/2))^2 (no cancellation)."""
    return _series_or(w, 1e-3, lambda v: 1.0 + v**2 / 12, lambda v: (jnp.sinh(0.5 * v) / (0.5 * v)) ** 2)


def sinh_factor(w):
    """S(w) = 6 (sinh w - w) / w^3 = sum_k 6 w^(2k) / (2k + 3)!: the series below w = 1 (next term
    1.7e-14 w^14: sinh w - w cancels there), the closed form above."""
    series = lambda v: 1.0 + v**2 * (1 / 20 + v**2 * (1 / 840 + v**2 * (1 / 60480 + v**2 * (1 / 6652800 + v**2 * (1 / 1037836800 + v**2 / 217945728000.0)))))
    return _series_or(w, 1.0, series, lambda v: 6.0 * (jnp.sinh(v) - v) / v**3)


def _acosh_factor(y):
    """acosh(1 + y) / sqrt(2 y) = asinh(s) / s with s = sqrt(y / 2) (y >= 0; 1 at y = 0; no 1 + y rounding)."""
    s = jnp.sqrt(0.5 * y)
    return _series_or(s, 1e-3, lambda v: 1.0 - v**2 / 6, lambda v: jnp.arcsinh(v) / v)


def zeta_of_a(a, omega_m):
    """zeta at scale factor a: zeta = sqrt(4 a / Omega_m) acosh(1 + y) / sqrt(2 y), y = 2 x a / Omega_m."""
    x = 1.0 - omega_m
    return jnp.sqrt(4.0 * a / omega_m) * _acosh_factor(2.0 * x * a / omega_m)


def scale_factor_of_zeta(zeta, omega_m):
    return omega_m * zeta**2 * cosh_factor(math.sqrt(1.0 - omega_m) * zeta) / 4.0


def time_since_bang(zeta, omega_m):
    return omega_m * zeta**3 * sinh_factor(math.sqrt(1.0 - omega_m) * zeta) / 12.0


def age(omega_m: float) -> float:
    """t_0, the time since the big bang today (1/H0): 2/3 at Omega_m = 1, -> 1 as Omega_m -> 0 (float64)."""
    x = 1.0 - omega_m
    eta = 2.0 * math.asinh(math.sqrt(x / omega_m))  # = acosh(1 + 2 x / Omega_m)
    if eta < 1e-3:
        return omega_m * (eta / math.sqrt(x)) ** 3 / 12.0 * (1.0 + eta**2 / 20 + eta**4 / 840) if x > 0 else 2.0 / 3.0
    return omega_m / (2.0 * x**1.5) * (math.sinh(eta) - eta)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def scale_factor(t, omega_m: float, t0: float):
    """a(t) (t > -t0) by Newton's method on t_bb(zeta) = t + t0 (module docstring).

    Differentiated by da/dt = sqrt(Omega_m / a + 1 - Omega_m), not through the Newton loop, so the
    ray tracer's and the optimizer's derivatives cost one closed form, not the loop's tape.
    """
    t = jnp.asarray(t)
    target = jnp.maximum(t + t0, 0.0)
    zeta = jnp.cbrt(12.0 * target / omega_m)  # Einstein-de Sitter: never below the root

    def newton(_, z):
        a = jnp.maximum(scale_factor_of_zeta(z, omega_m), jnp.finfo(t.dtype).tiny)
        return z - (time_since_bang(z, omega_m) - target) / a

    zeta = jax.lax.fori_loop(0, _NEWTON_STEPS, newton, zeta)
    a = scale_factor_of_zeta(zeta, omega_m)
    return jnp.where(t + t0 > 0, a, jnp.nan)


@scale_factor.defjvp
def _scale_factor_jvp(omega_m, t0, primals, tangents):
    (t,), (dt,) = primals, tangents
    a = scale_factor(t, omega_m, t0)
    return a, expansion_rate(a, omega_m) * dt


def expansion_rate(a, omega_m: float):
    """da/dt = sqrt(Omega_m / a + 1 - Omega_m)."""
    return jnp.sqrt(omega_m / a + (1.0 - omega_m))


def acceleration(a, omega_m: float):
    """d^2 a / dt^2 = -Omega_m / (2 a^2)."""
    return -0.5 * omega_m / a**2


def time_at_scale_factor(a, omega_m: float, t0: float):
    """t(a), closed form."""
    return time_since_bang(zeta_of_a(a, omega_m), omega_m) - t0


def conformal_factor(r2, omega_m: float):
    """1 / (1 - x r^2 / 4), x = 1 - Omega_m: the isotropic chart's spatial factor (|x| = sqrt(r2))."""
    return 1.0 / (1.0 - 0.25 * (1.0 - omega_m) * r2)


def coordinate_radius(chi: float, omega_m: float) -> float:
    """The isotropic chart's radius of comoving geodesic distance chi: 2 tanh(sqrt(x) chi / 2) / sqrt(x)."""
    x = 1.0 - omega_m
    return chi if x == 0 else 2.0 * math.tanh(math.sqrt(x) * chi / 2.0) / math.sqrt(x)


__all__ = ["acceleration", "age", "conformal_factor", "coordinate_radius", "cosh_factor", "expansion_rate",
           "scale_factor", "sinh_factor", "time_at_scale_factor", "zeta_of_a"]
