"""Metric networks (flax.linen): a general 10-component metric, a synchronous-gauge one, FLRW.

Units and the observer are those of :mod:`cosmology.conventions`: c = H0 = 1 (times in 1/H0,
lengths in c/H0), today at t = 0 with a(0) = 1, the past at t < 0.

Every network maps one point ``x = (t, x, y, z)``, shape (4,), to ``g_ab``, shape (4, 4), so
``metric_fn = lambda x: model.apply(params, x)`` works with every function of
:mod:`cosmology.geometry` (vmap over points). ``bind(model, params)`` gives the same
callable plus a ``jet`` method that propagates first and second coordinate derivatives
through the network in one forward pass; the geometry engine picks it up automatically.

Each network starts near a chosen background FLRW scale factor a(t) (``Background``), and
its outputs pass through smooth bounded maps (``s tanh(u / s)``) into a lapse, a shift and a
Cholesky factor of the spatial metric, so that the signature (-,+,+,+) holds for every
output, however large, with a bounded condition number.

The background, the activations and the SIREN live in :mod:`cosmology.metric_parts` and are
re-exported here.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cosmology.conventions import ETA, H0
from cosmology.geometry import (
    DIM,
    Jet,
    jet_concatenate,
    jet_constant,
    jet_linear,
    jet_map,
    jet_product,
)
from cosmology.metric_parts import Background, SineMLP, _check_point, sincos, soft_clip


# ----------------------------------------------------------------------------- assembly maps
# Written once in jet arithmetic: on constant jets (``jet_constant``) they give the plain
# metric, on the network's jet they give g with its first and second derivatives.


@dataclasses.dataclass(frozen=True)
class Bounds:
    """How far the network may move the metric from its background (soft limits, tanh).

    ``log_lapse``: |log N| <= this. ``shift``: each orthonormal shift component beta_hat_i
    (in units of N) <= this; below 1/sqrt(3) the time coordinate stays timelike.
    ``log_stretch``: |log| of each diagonal entry of the spatial factor. ``shear``: each
    off-diagonal entry of the spatial factor (relative to a(t)).
    """

    log_lapse: float = 1.0
    shift: float = 0.5
    log_stretch: float = 1.0
    shear: float = 0.5

    def __post_init__(self):
        for name in ("log_lapse", "shift", "log_stretch", "shear"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Bounds.{name} must be positive, got {getattr(self, name)}")


def bounded_outputs(u: Jet, bound: jax.Array, exponentiate: jax.Array) -> Jet:
    """Elementwise q = b tanh(u / b), then exp(q) where ``exponentiate``; with derivatives

        q' = 1 - s^2, q'' = -2 s (1 - s^2) / b  (s = tanh(u / b));  (e^q)' = e^q q', (e^q)'' = e^q (q'^2 + q'')
    """
    def parts(v):
        q = soft_clip(v, bound)
        s = q / bound
        dq = 1.0 - s * s
        return q, dq, -2.0 * s * dq / bound

    def f(v):
        q = parts(v)[0]
        return jnp.where(exponentiate, jnp.exp(q), q)

    def df(v):
        q, dq, _ = parts(v)
        return jnp.where(exponentiate, jnp.exp(q) * dq, dq)

    def ddf(v):
        q, dq, ddq = parts(v)
        return jnp.where(exponentiate, jnp.exp(q) * (dq * dq + ddq), ddq)

    return jet_map(u, f, df, ddf)


# Where the entries of the coframe C^A_m go (row-major 4x4 slot 4 A + m): GeneralMetric's
# 10 scaled outputs [N, N b0, N b1, N b2, a d0, a d1, a d2, a s0, a s1, a s2] and
# SynchronousMetric's 7 [1, a d0, a d1, a d2, a s0, a s1, a s2] (d: the diagonal of L_hat,
# s: its entries L10, L20, L21). All other coframe entries are zero.
_GENERAL_SLOTS = (0, 4, 8, 12, 5, 10, 15, 6, 7, 11)
_SYNCHRONOUS_SLOTS = (0, 5, 10, 15, 6, 7, 11)


def _quadratic_form(slots):
    """g_mn = sum_A eta_A C^A_m C^A_n written as sum_k T[k, mn] v[left_k] v[right_k]: the
    constant 0/1 selection matrices of left and right factors and the target matrix T
    (only the products of non-zero coframe entries; each unordered pair once)."""
    entry = {slot: k for k, slot in enumerate(slots)}
    left, right, targets = [], [], []
    for m in range(DIM):
        for n in range(m, DIM):
            for a in range(DIM):
                i, j = entry.get(DIM * a + m), entry.get(DIM * a + n)
                if i is None or j is None:
                    continue
                target = np.zeros((DIM, DIM))
                target[m, n] = target[n, m] = ETA[a]
                left.append(i), right.append(j), targets.append(target.ravel())
    select = lambda idx: np.eye(len(slots))[:, idx]
    return select(left), select(right), np.stack(targets)


_GENERAL_FORM = _quadratic_form(_GENERAL_SLOTS)
_SYNCHRONOUS_FORM = _quadratic_form(_SYNCHRONOUS_SLOTS)


def metric_from_coframe(entries: Jet, form) -> Jet:
    """g_{mn} = eta_{AB} C^A_m C^B_n, as a jet, from the non-zero coframe entries.

    GeneralMetric's coframe is theta^0 = N dt, theta^i = N beta_hat_i dt + (L^T)_{ij} dx^j
    with gamma = L L^T, L = a(t) L_hat lower-triangular with positive diagonal, which gives

        g_00 = -N^2 (1 - |beta_hat|^2) = -N^2 + beta^i beta_i,   g_0i = beta_i = N (L beta_hat)_i,
        g_ij = gamma_ij = (L L^T)_ij.

    Signature (-,+,+,+) for every output: C is invertible (det C = N det L > 0), so g is
    congruent to eta (Sylvester's law of inertia). The products of coframe entries are one
    elementwise jet product of two selections (small matrix products, no reductions).
    """
    left, right, target = (jnp.asarray(m, entries.value.dtype) for m in form)
    products = jet_product(jet_linear(entries, lambda v: v @ left), jet_linear(entries, lambda v: v @ right))
    return jet_linear(products, lambda p: (p @ target).reshape(DIM, DIM))


def _general_jet(a: Jet, u: Jet, bounds: Bounds) -> Jet:
    dtype = u.value.dtype
    bound = jnp.array([bounds.log_lapse] + [bounds.shift] * 3 + [bounds.log_stretch] * 3 + [bounds.shear] * 3, dtype)
    exponentiate = jnp.array([True, False, False, False, True, True, True, False, False, False])
    q = bounded_outputs(u, bound, exponentiate)
    lapse = jet_linear(q, lambda v: v[:1])
    scale = jet_concatenate(
        [jet_constant(jnp.ones((1,), dtype)), jet_linear(lapse, lambda v: jnp.broadcast_to(v, (3,))),
         jet_linear(a, lambda v: jnp.broadcast_to(v, (6,)))]
    )
    return metric_from_coframe(jet_product(q, scale), _GENERAL_FORM)


def _synchronous_jet(a: Jet, u: Jet, bounds: Bounds) -> Jet:
    dtype = u.value.dtype
    bound = jnp.array([bounds.log_stretch] * 3 + [bounds.shear] * 3, dtype)
    exponentiate = jnp.array([True, True, True, False, False, False])
    q = bounded_outputs(u, bound, exponentiate)
    entries = jet_concatenate([jet_constant(jnp.ones((1,), dtype)), jet_product(q, a)])
    return metric_from_coframe(entries, _SYNCHRONOUS_FORM)


def general_metric_from_outputs(x: jax.Array, u: jax.Array, background: Background, bounds: Bounds) -> jax.Array:
    """GeneralMetric's map from 10 raw outputs to g_ab at x.

    u[0] -> log N, u[1:4] -> beta_hat, u[4:7] -> log of the spatial factor's diagonal,
    u[7:10] -> its off-diagonal (all soft-clipped by ``bounds``); the spatial factor is
    multiplied by the background a(t), so u = 0 gives -dt^2 + a(t)^2 dx^2.
    """
    return _general_jet(jet_constant(background.spatial_factor(x)), jet_constant(u), bounds).value


def synchronous_metric_from_outputs(x: jax.Array, u: jax.Array, background: Background, bounds: Bounds) -> jax.Array:
    """SynchronousMetric's map: g_00 = -1, g_0i = 0, g_ij = b(x)^2 (delta_ij + h_ij), delta + h = L L^T, with
    b = ``background.spatial_factor(x)`` (a(t), or a(t) / (1 + k r^2 / 4) for an open background)."""
    return _synchronous_jet(jet_constant(background.spatial_factor(x)), jet_constant(u), bounds).value


class GeneralMetric(nn.Module):
    """All ten components of g from a SIREN, Lorentzian by construction (lapse, shift, Cholesky).

    g_00 = -N^2 + beta_i beta^i, g_0i = beta_i, g_ij = (L L^T)_ij, L = a(t) L_net; at the
    start (small outputs) g is the background -dt^2 + a(t)^2 dx^2. See
    ``general_metric_from_outputs`` and ``Bounds``.
    """

    width: int = 64
    depth: int = 4
    w0: float = 6.0
    out_scale: float = 1e-2
    background: Background = Background()
    bounds: Bounds = Bounds()

    def setup(self):
        self.net = SineMLP(self.width, self.depth, 10, self.w0, self.out_scale)

    def __call__(self, x: jax.Array) -> jax.Array:
        _check_point(x)
        return general_metric_from_outputs(x, self.net(x), self.background, self.bounds)

    def jet(self, x: jax.Array) -> Jet:
        """g with its first and second coordinate derivatives (see ``SineMLP.jet``)."""
        _check_point(x)
        return _general_jet(self.background.jet(x), self.net.jet(x), self.bounds)


class SynchronousMetric(nn.Module):
    """Comoving synchronous gauge: g_00 = -1, g_0i = 0, g_ij = a(t)^2 (delta_ij + h_ij).

    delta + h = L L^T with L lower-triangular with a positive diagonal (six network outputs),
    so the spatial metric is positive definite. Since g_00 and g_0i are constants,
    Gamma^mu_00 = 0 identically: the worldlines of constant (x, y, z) are geodesics, and
    comoving dust is geodesic by construction.
    """

    width: int = 64
    depth: int = 4
    w0: float = 6.0
    out_scale: float = 1e-2
    background: Background = Background()
    bounds: Bounds = Bounds()

    def setup(self):
        self.net = SineMLP(self.width, self.depth, 6, self.w0, self.out_scale)

    def __call__(self, x: jax.Array) -> jax.Array:
        _check_point(x)
        return synchronous_metric_from_outputs(x, self.net(x), self.background, self.bounds)

    def jet(self, x: jax.Array) -> Jet:
        """g with its first and second coordinate derivatives (see ``SineMLP.jet``)."""
        _check_point(x)
        return _synchronous_jet(self.background.jet(x), self.net.jet(x), self.bounds)


class FLRWMetric(nn.Module):
    """Homogeneous and isotropic: ds^2 = -dt^2 + a(t)^2 (dx^2 + dy^2 + dz^2) / (1 + k r^2 / 4)^2.

    a(t) = a_background(t) exp(f(t)) with f a small SIREN of t alone; the spatial curvature
    k (in units of H0^2, isotropic chart, valid for r < 2/sqrt(-k) when k < 0) is the fixed
    ``curvature`` or, with ``learn_curvature``, a trained parameter starting there.

    With ``omega_k_bounds = (lo, hi)`` the trained parameter is instead the observer's curvature
    density parameter Omega_k = lo + (hi - lo) sigmoid(raw) (starting at ``omega_k_init``), and

        k = -Omega_k (a H)^2 at t = 0,   so that Omega_k = -k / (a_0 H_0)^2 exactly,

    whatever the learned a(0) and H(0): bounds on Omega_k are bounds on the observer's
    Omega_m = 1 - Omega_k (Lambda = 0, the Hamiltonian constraint; :mod:`cosmology.matter`).
    """

    width: int = 32
    depth: int = 2
    w0: float = 3.0
    out_scale: float = 1e-2
    background: Background = Background()
    curvature: float = 0.0
    learn_curvature: bool = False
    omega_k_bounds: Optional[tuple] = None
    omega_k_init: float = 0.0

    def setup(self):
        self.net = SineMLP(self.width, self.depth, 1, self.w0, self.out_scale)
        if self.omega_k_bounds is not None:
            lo, hi = self.omega_k_bounds
            if not lo < self.omega_k_init < hi:
                raise ValueError(f"FLRWMetric omega_k_init must lie strictly inside omega_k_bounds "
                                 f"{self.omega_k_bounds}, got {self.omega_k_init}")
            s = (self.omega_k_init - lo) / (hi - lo)
            self.omega_k_raw = self.param("omega_k", nn.initializers.constant(math.log(s / (1.0 - s))), ())
        elif self.learn_curvature:
            self.k = self.param("curvature", nn.initializers.constant(self.curvature), ())
        else:
            self.k = self.curvature

    def omega_k(self) -> jax.Array:
        """Omega_k = -k / (a_0 H_0)^2 at t = 0."""
        if self.omega_k_bounds is not None:
            lo, hi = self.omega_k_bounds
            return lo + (hi - lo) * jax.nn.sigmoid(self.omega_k_raw)
        t0 = jnp.zeros(())
        expansion_rate = jax.jvp(self.scale_factor, (t0,), (jnp.ones_like(t0),))[1]  # a_0 H_0 = da/dt(0)
        return -self.k / expansion_rate**2

    def spatial_curvature(self) -> jax.Array:
        """k (the isotropic chart's constant)."""
        if self.omega_k_bounds is None:
            return jnp.asarray(self.k)
        t0 = jnp.zeros(())
        expansion_rate = jax.jvp(self.scale_factor, (t0,), (jnp.ones_like(t0),))[1]
        return -self.omega_k() * expansion_rate**2

    def scale_factor(self, t: jax.Array) -> jax.Array:
        """a(t) = a_background(t) exp(f(t)) for a scalar t."""
        t = jnp.asarray(t)
        zero = jnp.zeros_like(t)
        return self.background.scale_factor(t) * jnp.exp(self.net(jnp.stack([t, zero, zero, zero]))[0])

    def __call__(self, x: jax.Array) -> jax.Array:
        _check_point(x)
        a = self.scale_factor(x[0])
        r2 = x[1:] @ x[1:]
        spatial = a**2 / (1.0 + 0.25 * self.spatial_curvature().astype(a.dtype) * r2) ** 2
        return jnp.diag(jnp.concatenate([-jnp.ones_like(a)[None], jnp.broadcast_to(spatial, (3,))]))


# ----------------------------------------------------------------------------- binding


class BoundMetric:
    """``model`` with its ``params``: ``self(x) -> g`` and, when the model has one, ``self.jet(x)``.

    Build it inside the jitted function that receives ``params`` (it only closes over them).
    """

    def __init__(self, model: nn.Module, params: Any):
        self.model = model
        self.params = params
        if hasattr(type(model), "jet"):
            self.jet = lambda x: model.apply(params, x, method=type(model).jet)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.model.apply(self.params, x)


def bind(model: nn.Module, params: Any) -> BoundMetric:
    """A metric function of x for the geometry engine, with the network's fast jet if any."""
    return BoundMetric(model, params)


def init_params(model: nn.Module, key: jax.Array, dtype: Optional[Any] = None) -> Any:
    """Parameters of a metric network (initialised at the point t = x = y = z = 0).

    Jitted: flax's eager init would run the whole forward pass op by op (seconds).
    """
    x = jnp.zeros(DIM, dtype or jnp.float32)
    return jax.jit(model.init)(key, x)


__all__ = [
    "H0",
    "Background",
    "Bounds",
    "BoundMetric",
    "FLRWMetric",
    "GeneralMetric",
    "SineMLP",
    "SynchronousMetric",
    "bind",
    "general_metric_from_outputs",
    "init_params",
    "bounded_outputs",
    "metric_from_coframe",
    "sincos",
    "soft_clip",
    "synchronous_metric_from_outputs",
]
