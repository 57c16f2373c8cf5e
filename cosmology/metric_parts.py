"""Building blocks of the metric networks of :mod:`cosmology.metric`: the background scale
factor ``Background``, the activations (``soft_clip``, ``sincos``) and the SIREN ``SineMLP``.

Units and the observer are those of :mod:`cosmology.conventions`: c = H0 = 1 (times in 1/H0,
lengths in c/H0), today at t = 0 with a(0) = 1, the past at t < 0. Import these names from
:mod:`cosmology.metric`, which re-exports them.
"""
from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from cosmology import open_background
from cosmology.geometry import DIM, PAIRS, Jet, jet_product, time_jet

# ----------------------------------------------------------------------------- background


@dataclasses.dataclass(frozen=True)
class Background:
    """A homogeneous background scale factor a(t), normalised to a(0) = 1 and H(0) = H0 = 1.

    kinds (closed forms, t in units of 1/H0):
      - ``"matter"`` (Einstein-de Sitter): a = (1 + 3t/2)^(2/3), big bang at t = -2/3.
      - ``"lcdm"`` (flat, ``omega_m`` in (0, 1), Omega_Lambda = 1 - omega_m):
        a = (Om/OL)^(1/3) sinh^(2/3)(3/2 sqrt(OL) (t + t0)),
        t0 = 2/(3 sqrt(OL)) asinh(sqrt(OL/Om)) the age.
      - ``"de_sitter"``: a = exp(t) (no big bang).
      - ``"static"``: a = 1 (Minkowski; H = 0, for tests and flat-space controls).
      - ``"open"``: dust, Lambda = 0, ``omega_m`` in (0, 1] and curvature k = -(1 - omega_m):
        the parametric solution (:mod:`cosmology.open_background`), in the isotropic chart, so
        the spatial metric carries the factor 1 / (1 + k r^2 / 4)^2 (``spatial_factor``). With
        it the network's zero output is an exact open universe: training need not bend a flat
        Einstein-de Sitter start into the low-density universe the supernovae prefer against a
        hard constraint on the field equations (a slow walk along the family of solutions).
    Before the big bang a(t) is not defined (NaN); keep training domains after it.
    """

    kind: str = "matter"
    omega_m: float = 0.3

    def __post_init__(self):
        if self.kind not in ("matter", "lcdm", "de_sitter", "static", "open"):
            raise ValueError(f"Background kind must be matter, lcdm, de_sitter, static or open, got {self.kind!r}")
        if self.kind == "lcdm" and not 0.0 < self.omega_m < 1.0:
            raise ValueError(f"Background omega_m must lie in (0, 1) for lcdm, got {self.omega_m}")
        if self.kind == "open" and not 0.0 < self.omega_m <= 1.0:
            raise ValueError(f"Background omega_m must lie in (0, 1] for open, got {self.omega_m}")

    @property
    def curvature(self) -> float:
        """k of the isotropic chart (H0 = a0 = 1): -(1 - omega_m) for ``open``, else 0."""
        return -(1.0 - self.omega_m) if self.kind == "open" else 0.0

    def spatial_factor(self, x: jax.Array) -> jax.Array:
        """a(t) / (1 + k r^2 / 4) at the point x = (t, x, y, z): g_ij = spatial_factor^2 delta_ij."""
        a = self.scale_factor(x[0])
        if self.kind != "open":
            return a
        return a * open_background.conformal_factor(x[1:] @ x[1:], self.omega_m).astype(a.dtype)

    def jet(self, x: jax.Array) -> Jet:
        """The coordinate jet of ``spatial_factor`` (first and second derivatives in closed form)."""
        if self.kind != "open":
            return time_jet(self.scale_factor, x[0])
        om = self.omega_m
        a = self.scale_factor(x[0])
        time_part = Jet(a, (open_background.expansion_rate(a, om),) + (None,) * (DIM - 1),
                        (open_background.acceleration(a, om),) + (None,) * (len(PAIRS) - 1))
        # c = 1 / (1 - q r^2 / 4), q = 1 - Omega_m: d_i c = c^2 q x_i / 2, d_i d_j c = c^2 q delta_ij / 2 + c^3 q^2 x_i x_j / 2
        q = 1.0 - om
        y = x[1:]
        c = open_background.conformal_factor(y @ y, om).astype(a.dtype)
        first = (None,) + tuple(0.5 * q * c**2 * y[i] for i in range(3))
        second = tuple(None if 0 in (i, j) else 0.5 * q * c**2 * (i == j) + 0.5 * q**2 * c**3 * y[i - 1] * y[j - 1]
                       for i, j in PAIRS)
        return jet_product(time_part, Jet(c, first, second))

    @property
    def age(self) -> float:
        """Time since the big bang today, in 1/H0 (inf without a big bang)."""
        if self.kind == "matter":
            return 2.0 / 3.0
        if self.kind == "lcdm":
            ol = 1.0 - self.omega_m
            return 2.0 / (3.0 * math.sqrt(ol)) * math.asinh(math.sqrt(ol / self.omega_m))
        if self.kind == "open":
            return open_background.age(self.omega_m)
        return math.inf

    def scale_factor(self, t: jax.Array) -> jax.Array:
        """a(t)."""
        t = jnp.asarray(t)
        if self.kind == "matter":
            return (1.0 + 1.5 * t) ** (2.0 / 3.0)
        if self.kind == "lcdm":
            ol = 1.0 - self.omega_m
            amplitude = (self.omega_m / ol) ** (1.0 / 3.0)
            return amplitude * jnp.sinh(1.5 * math.sqrt(ol) * (t + self.age)) ** (2.0 / 3.0)
        if self.kind == "de_sitter":
            return jnp.exp(t)
        if self.kind == "open":
            return open_background.scale_factor(t, self.omega_m, self.age)
        return jnp.ones_like(t)

    def hubble_rate(self, t: jax.Array) -> jax.Array:
        """H(t) = a'/a."""
        t = jnp.asarray(t)
        if self.kind == "matter":
            return 1.0 / (1.0 + 1.5 * t)
        if self.kind == "lcdm":
            ol = 1.0 - self.omega_m
            return math.sqrt(ol) / jnp.tanh(1.5 * math.sqrt(ol) * (t + self.age))
        if self.kind == "de_sitter":
            return jnp.ones_like(t)
        if self.kind == "open":
            a = self.scale_factor(t)
            return open_background.expansion_rate(a, self.omega_m) / a
        return jnp.zeros_like(t)

    def time_at_redshift(self, z: jax.Array) -> jax.Array:
        """t(z) with 1 + z = 1/a (negative: the past)."""
        a = 1.0 / (1.0 + jnp.asarray(z))
        if self.kind == "matter":
            return 2.0 / 3.0 * (a**1.5 - 1.0)
        if self.kind == "lcdm":
            ol = 1.0 - self.omega_m
            return 2.0 / (3.0 * math.sqrt(ol)) * jnp.arcsinh(math.sqrt(ol / self.omega_m) * a**1.5) - self.age
        if self.kind == "de_sitter":
            return jnp.log(a)
        if self.kind == "open":
            return open_background.time_at_scale_factor(a, self.omega_m, self.age)
        raise ValueError("Background kind 'static' has no redshift-time relation")


# ----------------------------------------------------------------------------- activations


def soft_clip(u: jax.Array, bound: float) -> jax.Array:
    """bound * tanh(u / bound): the identity near 0, never beyond +-bound."""
    return bound * jnp.tanh(u / bound)


# Cody-Waite split of pi/2 (each part exact in float32), for the float32 range reduction.
_HALF_PI = (1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8)


@jax.custom_jvp
def sincos(z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(sin z, cos z) together.

    float32: one range reduction z = k pi/2 + r, |r| <= pi/4 (three-part pi/2, exact products
    for |z| < 1e5), and Taylor polynomials in r (error < 1e-9 on that interval, below float32
    resolution); XLA's CPU sin is several times slower and dominated a SIREN's derivative
    passes. float64: jnp.sin and jnp.cos.
    Differentiated by the exact rule d(sin, cos) = (cos, -sin) dz.
    """
    if z.dtype == jnp.float64:
        return jnp.sin(z), jnp.cos(z)
    k = jnp.round(z * (2.0 / math.pi))
    r = ((z - k * _HALF_PI[0]) - k * _HALF_PI[1]) - k * _HALF_PI[2]
    r2 = r * r
    s = r + r * r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880))))
    c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 * (-1.0 / 3628800)))))
    quadrant = k.astype(jnp.int32)
    swap = (quadrant & 1) == 1
    sin_z = jnp.where(swap, c, s) * jnp.where((quadrant & 2) == 2, -1.0, 1.0).astype(z.dtype)
    cos_z = jnp.where(swap, s, c) * jnp.where(((quadrant + 1) & 2) == 2, -1.0, 1.0).astype(z.dtype)
    return sin_z, cos_z


@sincos.defjvp
def _sincos_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    s, c = sincos(z)
    return (s, c), (c * dz, -s * dz)


# ----------------------------------------------------------------------------- the network


def _uniform(bound: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class SineMLP(nn.Module):
    """A SIREN: h_1 = sin(w0 (x W_1 + b_1)), h_l = sin(h_{l-1} W_l + b_l), u = h_L W_out + b_out.

    Initialisation after Sitzmann et al. (2020): W_1 ~ U(+-1/fan_in), W_l ~ U(+-sqrt(6/fan_in)),
    biases ~ U(+-1/sqrt(fan_in)); the output layer is scaled by ``out_scale`` and has zero
    bias, so u starts small and the metric starts near its background.
    """

    width: int = 64
    depth: int = 4
    n_out: int = 10
    w0: float = 6.0
    out_scale: float = 1e-2

    def setup(self):
        if self.depth < 1 or self.width < 1:
            raise ValueError(f"SineMLP width and depth must be positive, got {self.width}, {self.depth}")
        layers = []
        fan_in = DIM
        for index in range(self.depth):
            bound = 1.0 / fan_in if index == 0 else math.sqrt(6.0 / fan_in)
            kernel = self.param(f"kernel_{index}", _uniform(bound), (fan_in, self.width))
            bias = self.param(f"bias_{index}", _uniform(1.0 / math.sqrt(fan_in)), (self.width,))
            layers.append((kernel, bias))
            fan_in = self.width
        self.layers = layers
        self.out_kernel = self.param("out_kernel", _uniform(self.out_scale * math.sqrt(6.0 / fan_in)), (fan_in, self.n_out))
        self.out_bias = self.param("out_bias", nn.initializers.zeros, (self.n_out,))

    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for index, (kernel, bias) in enumerate(self.layers):
            z = h @ kernel + bias
            h = sincos(self.w0 * z if index == 0 else z)[0]
        return h @ self.out_kernel + self.out_bias

    def jet(self, x: jax.Array) -> Jet:
        """u(x) with d_i u and d_i d_j u (i <= j) in one forward pass (Taylor mode, order 2).

            z = h W + b:  d z = d h W,  dd z = dd h W          (linear)
            h = sin z:    d_i h = cos z d_i z,  d_i d_j h = cos z d_i d_j z - sin z d_i z d_j z
        The first layer's input is the coordinate itself (d_i x = e_i, dd x = 0), so its
        derivative streams cost no matrix product.
        """
        kernel, bias = self.layers[0]
        rows = self.w0 * kernel  # d_i z_1 = w0 W_1[i]
        s, c = sincos(self.w0 * (x @ kernel + bias))
        h = s
        d_h = [c * rows[i] for i in range(DIM)]
        dd_h = [-s * (rows[i] * rows[j]) for i, j in PAIRS]
        for kernel, bias in self.layers[1:]:
            z, d_z, dd_z = h @ kernel + bias, [d @ kernel for d in d_h], [d @ kernel for d in dd_h]
            s, c = sincos(z)
            h = s
            d_h = [c * d for d in d_z]
            dd_h = [c * dd - s * (d_z[i] * d_z[j]) for dd, (i, j) in zip(dd_z, PAIRS)]
        out = lambda v: v @ self.out_kernel
        return Jet(out(h) + self.out_bias, tuple(out(d) for d in d_h), tuple(out(d) for d in dd_h))


def _check_point(x: jax.Array) -> None:
    if jnp.shape(x) != (DIM,):
        raise ValueError(f"x must be one point (t, x, y, z) of shape (4,) (vmap over points), got {jnp.shape(x)}")


__all__ = ["Background", "SineMLP", "sincos", "soft_clip"]
