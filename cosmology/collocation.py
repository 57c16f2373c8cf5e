"""How the ``lumpy`` problem spreads its deep-past collocation points in time.

The deep past runs from the earliest time of the domain (z = 50 by default, so that the CMB
window z in [20, 50] lies inside the region where the field equations are imposed) to the start
of the supernova era. In Einstein-de Sitter, cosmic time crowds that span near its recent end:
uniform in t, the window z in [20, 50] would get 5% of the deep-past points and z in [2.5, 5]
75%. Uniform in ln a of the background instead gives every e-fold of expansion the same share
(a third of them to z in [20, 50]): the Einstein residual is a relative one (scaled by
3 H^2 + kappa rho), so each e-fold is as hard to get right as any other.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def past_times(key: jax.Array, n: int, t0: float, t1: float, background) -> jax.Array:
    """n times in [t0, t1] (code units) uniform in ln a of ``background`` (a
    :class:`cosmology.metric.Background`); uniform in t when a(t) gives no usable log range
    (a static background, or a time outside its domain)."""
    # The ends are constants of the problem: evaluate them now, also while sample() is traced.
    with jax.ensure_compile_time_eval():
        lna0 = math.log(float(background.scale_factor(t0))) if background.kind != "static" else math.nan
        lna1 = math.log(float(background.scale_factor(t1))) if background.kind != "static" else math.nan
    if not (math.isfinite(lna0) and math.isfinite(lna1) and lna0 < lna1):
        return jax.random.uniform(key, (n,), jnp.float32, t0, t1)
    lna = jax.random.uniform(key, (n,), jnp.float32, lna0, lna1)
    t = background.time_at_redshift(jnp.expm1(-lna)).astype(jnp.float32)  # 1 + z = 1 / a
    return jnp.clip(t, t0, t1)  # the float32 round trip may step outside by an ulp


__all__ = ["past_times"]
