"""The pieces the architectures share: a Dense layer with optional random weight factorization,
the input embedding (periodic columns, an exactly time-periodic column, random Fourier
features), and the gate of the modified MLP and PirateNet.

Random weight factorization (RWF; Wang, Wang, Seidman & Perdikaris 2022, "Random weight
factorization improves the training of continuous neural representations"). The paper writes
a layer's weight W (out x in) as W = diag(exp(s)) V: one trainable log-scale s_j per output
neuron and a direction matrix V, both trained instead of W. Here kernels are stored (in, out),
so column j of the kernel is exp(s_j) V[:, j]. Initialisation: W0 from the layer's usual
initializer, s ~ N(mu, sigma^2) i.i.d., V = W0 / exp(s), so exp(s) V = W0: the factorised
network starts as the plain one. Only the parametrisation changes, and with it the gradient
flow: a step on (s, V) is a per-neuron adaptive step on W (for small sigma, exp(s) ~ e^mu
multiplies V's effective learning rate by about e^(2 mu)). mu = 1, sigma = 0.1 are the paper's
recommendation and jaxpi's defaults. Here W0 is drawn with exactly the key the plain layer's
kernel uses and s with a key folded from it, so the factorised layer reproduces the plain
layer's output for the same init key (up to one float rounding of exp(s) (W0 / exp(s))).

Time-periodic embedding (jaxpi's period embedding of t). The time column t becomes

    cos(k w t), sin(k w t),   k = 1..K,   w = 2 pi / P,

so every function of the embedding is exactly P-periodic in t. With ``time_trainable`` the
angular frequency w is a parameter (``time_frequency``, initialised at 2 pi / P: the phase is
linear in it) and the period 2 pi / w is learnt; otherwise P is fixed. A fixed P no longer
than the time interval forces u(t) = u(t + P) inside it, so pick P larger than the interval
(or make it trainable) unless the solution really is periodic in time.
"""
from __future__ import annotations

from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pinnopt.nets.mlp import fourier_features, fourier_matrix, periodic_embedding

INITIALIZERS: dict[str, Callable] = {
    # flax's nn.Dense default (variance 1 / fan_in): pinnopt's MLP and the "mlp" architecture
    "lecun": nn.initializers.lecun_normal(),
    # variance 2 / (fan_in + fan_out): the modified MLP and PirateNet papers (and jaxpi)
    "glorot": nn.initializers.glorot_normal(),
}


def rwf_init(base: Callable, mu: float, sigma: float) -> Callable:
    """An initializer of the RWF factors ``{"s": (out,), "v": (in, out)}`` with exp(s) v = base(key).

    ``base(key, shape, dtype)`` gets ``key`` unchanged (so W0 is the plain layer's kernel for the
    same key); s = mu + sigma N(0, 1) uses ``fold_in(key, 1)``.
    """

    def init(key, shape, dtype=jnp.float32):
        w0 = base(key, shape, dtype)
        s = mu + sigma * jax.random.normal(jax.random.fold_in(key, 1), shape[-1:], dtype)
        return {"s": s, "v": w0 / jnp.exp(s)}

    return init


def factorized_kernel(factors: dict) -> jax.Array:
    """W = exp(s) * V column-wise (the paper's diag(exp(s)) V for kernels stored (in, out))."""
    return jnp.exp(factors["s"]) * factors["v"]


class Dense(nn.Module):
    """y = x W + b, W (in, features) from ``kernel_init`` (plain) or exp(s) V (RWF); b starts at 0.

    Named ``Dense`` on purpose: flax names unnamed children by class name (Dense_0, ...), so
    an architecture built from this layer draws the same keys as one built from ``nn.Dense``.
    With ``rwf=False`` and ``kernel_init="lecun"`` the params equal ``nn.Dense``'s for the same key.

    Attributes:
      features: output size.
      kernel_init: the kernel initializer, a name in ``INITIALIZERS``.
      rwf: factorise the kernel (params ``kernel = {"s", "v"}`` instead of an array).
      rwf_mu, rwf_sigma: mean and standard deviation of the initial log-scales s.
    """

    features: int
    kernel_init: str = "lecun"
    rwf: bool = False
    rwf_mu: float = 1.0
    rwf_sigma: float = 0.1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        base = INITIALIZERS[self.kernel_init]
        shape = (x.shape[-1], self.features)
        # float32 params whatever the x64 flag, as nn.Dense (precision="float64" casts later)
        if self.rwf:
            kernel = factorized_kernel(self.param("kernel", rwf_init(base, self.rwf_mu, self.rwf_sigma),
                                                  shape, jnp.float32))
        else:
            kernel = self.param("kernel", base, shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        dtype = jnp.result_type(x, kernel, bias)
        return x.astype(dtype) @ kernel.astype(dtype) + bias.astype(dtype)


def gate(g: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
    """(1 - g) * u + g * v: the modified MLP's update H <- (1 - Z) U + Z V (Wang et al. 2021).

    PirateNet's paper writes g U + (1 - g) V; the two differ only in which encoder is called U,
    and both encoders are drawn alike, so one convention serves both architectures.
    """
    return (1 - g) * u + g * v


class Embedding(nn.Module):
    """x (..., d) -> z: periodic columns (fixed periods) and the time column (period P, fixed
    or trainable) replaced by their harmonics (``periodic_embedding``; the time column's come
    last), then optional random Fourier features of the result (``fourier_features``).

    Attributes: as ``pinnopt.nets.make_net``. A parameter ``time_frequency`` (w = 2 pi / P)
    exists only with ``time_trainable``.
    """

    periods: tuple = ()
    harmonics: int = 1
    fourier_features: int = 0
    fourier_scale: float = 1.0
    fourier_seed: int = 0
    time_period: Optional[float] = None
    time_column: int = 0
    time_trainable: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        periods = tuple(self.periods)
        if self.time_period is not None:
            if not 0 <= self.time_column < x.shape[-1]:
                raise ValueError(f"time_column {self.time_column} is not a column of points with "
                                 f"{x.shape[-1]} coordinates")
            if self.time_trainable:
                omega = self.param("time_frequency", nn.initializers.constant(2 * np.pi / self.time_period),
                                   (), jnp.float32)
                period = 2 * np.pi / omega.astype(x.dtype)
            else:
                period = self.time_period
            periods = periods + ((self.time_column, period),)
        z = periodic_embedding(x, periods, self.harmonics)
        if self.fourier_features:
            z = fourier_features(z, fourier_matrix(self.fourier_features, z.shape[-1],
                                                   self.fourier_scale, self.fourier_seed))
        return z
