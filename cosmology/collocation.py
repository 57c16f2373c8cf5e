"""Where the ``lumpy`` problem puts its collocation points: the domain (``domain``), the ball
in space (``_ball``), and the deep-past times (``past_times``).

The deep past is spread in time as follows.

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
import numpy as np

from cosmology import open_background
from cosmology.metric_parts import Background
from cosmology.presets import CosmologyConfig


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


def _ball(key, n, radius):
    """n points uniform in the ball of ``radius`` (3-D), (n, 3)."""
    k_dir, k_r = jax.random.split(key)
    direction = jax.random.normal(k_dir, (n, 3), jnp.float32)
    direction = direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    r = radius * jax.random.uniform(k_r, (n, 1), jnp.float32) ** (1.0 / 3.0)
    return direction * r


def _comoving_distance(background: Background, t_start: float, n: int = 4001) -> float:
    """chi = int_{t_start}^0 dt / a(t) of the background (its own units), trapezoid rule."""
    t = np.linspace(t_start, 0.0, n)
    a = np.asarray(background.scale_factor(jnp.asarray(t, jnp.float32)), np.float64)
    return float(np.sum(0.5 * (1.0 / a[1:] + 1.0 / a[:-1]) * np.diff(t)))


def domain(cfg: CosmologyConfig, background: Background, z_max: float) -> dict:
    """The sampling windows in code units: {"start", "sn_start", "cmb": (t0, t1), "radius", ...}.

    Fields the preset leaves unset come from the background (whose time is code time, 0 at
    the observer): the supernova era reaches the background time of ``sn_redshift`` (default
    1.1 z_max), the deep past that of ``past_redshift``, the CMB window spans ``cmb_redshifts``;
    the radius is ``extent_margin`` times the background's comoving distance to the farthest
    supernova (z_max). Fields the preset sets are in its own units (``to_code_time``).
    """
    def t_of(z):
        t = float(background.time_at_redshift(z))
        if not math.isfinite(t):
            raise ValueError(f"background {background.kind!r} has no time for z = {z}")
        return t

    code = cfg.to_code_time
    z_sn = cfg.sn_redshift if cfg.sn_redshift is not None else 1.1 * z_max
    sn_start = code(cfg.sn_era_start) if cfg.sn_era_start is not None else t_of(z_sn)
    if cfg.t_start is not None:
        start = code(cfg.t_start)
    else:
        start = t_of(cfg.past_redshift) if cfg.sn_fraction < 1 else sn_start
    if cfg.cmb_window is not None:
        cmb = (code(cfg.cmb_window[0]), code(cfg.cmb_window[1]))
    else:
        cmb = (t_of(cfg.cmb_redshifts[1]), t_of(cfg.cmb_redshifts[0]))
    if cfg.cmb_priors:  # the priors only where the field equations are imposed
        start = min(start, cmb[0])
    if not start <= sn_start < 0.0:
        raise ValueError(f"the domain must satisfy t_start <= sn_era_start < t_observer, got "
                         f"{start}, {sn_start}, 0 (code units)")
    chi = _comoving_distance(background, t_of(z_max))
    # an open background's isotropic chart: the coordinate radius of that geodesic distance
    reach = open_background.coordinate_radius(chi, background.omega_m) if background.kind == "open" else chi
    radius = cfg.spatial_extent * cfg.code_per_unit if cfg.spatial_extent is not None else cfg.extent_margin * reach
    if background.curvature < 0 and radius >= 2.0 / math.sqrt(-background.curvature):
        raise ValueError(f"spatial_extent: the sampled radius {radius:.3g} (code units) reaches the edge of the open "
                         f"background's isotropic chart, 2 / sqrt(-k) = {2.0 / math.sqrt(-background.curvature):.3g}")
    return {"start": start, "sn_start": sn_start, "cmb": cmb, "radius": radius,
            "background_comoving_distance_code": chi}


__all__ = ["domain", "past_times"]
