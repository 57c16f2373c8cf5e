"""The architectures of ``make_net``: the plain MLP with the new options, the modified MLP, PirateNet.

Every one starts with the same embedding z = E(x) (``layers.Embedding``: periodic columns, the
time-periodic column, random Fourier features) and may factorise every Dense kernel (RWF,
``layers.Dense``). sigma is the activation; Dense layers are x W + b.

``PlainMLP`` ("mlp" with RWF or the time embedding):
    h_0 = z,  h_k = sigma(h_{k-1} W_k + b_k) (k = 1..depth),  u = h_depth W + b.
  Its kernels start from flax's default (LeCun normal) and its layers carry nn.Dense's names,
  so without RWF and time embedding its params and values are ``MLP``'s for the same key.

``ModifiedMLP`` (Wang, Teng & Perdikaris 2021, "Understanding and mitigating gradient
pathologies in physics-informed neural networks"):
    U = sigma(z W_u + b_u),  V = sigma(z W_v + b_v),
    h_0 = z,  g_k = sigma(h_{k-1} W_k + b_k),  h_k = (1 - g_k) * U + g_k * V  (k = 1..depth),
    u = h_depth W + b.
  Every hidden layer is gated between the two encodings of the input (multiplicative
  interactions, shortcuts from the input to every layer); the first acts on z itself, as in
  the authors' code (GradientPathologiesPINNs, model M4) and jaxpi. Glorot-normal kernels,
  zero biases.

``PirateNet`` (Wang, Li, Chen & Perdikaris 2024, "PirateNets: physics-informed deep learning
with residual adaptive networks"): U, V as above from z, then ``depth`` adaptive residual
blocks on x_0 = z, each
    f = sigma(x W_1 + b_1),  z_1 = (1 - f) * U + f * V,
    g = sigma(z_1 W_2 + b_2),  z_2 = (1 - g) * U + g * V,
    h = sigma(z_2 W_3 + b_3)  (W_3 maps back to the size of z),
    x <- alpha * h + (1 - alpha) * x,   alpha a trainable scalar per block, initialised at 0,
  and u = x_depth W + b. With every alpha = 0 the blocks are the identity, so at
  initialisation u = E(x) W + b: linear in the embedding, whatever the depth (the paper's
  point: the network starts shallow and learns how much nonlinearity each block adds).
  The paper also initialises W by a least-squares fit of E(x) W to the available data (the
  initial condition, say: "physics-informed initialisation"); that is not implemented here:
  W starts Glorot-normal like every other kernel.

Differences from jaxpi: the Fourier matrix B is fixed (rebuilt from ``fourier_seed``, as in
``MLP``), not a trained parameter, and the networks return u only.
"""
from __future__ import annotations

import functools
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from pinnopt.nets.layers import Dense, Embedding, gate
from pinnopt.nets.mlp import get_activation


class _Net(nn.Module):
    """The fields every architecture shares (see ``make_net`` for their meaning)."""

    width: int = 64
    depth: int = 4
    out: int = 1
    activation: str = "tanh"
    periods: tuple = ()
    harmonics: int = 1
    fourier_features: int = 0
    fourier_scale: float = 1.0
    fourier_seed: int = 0
    rwf: bool = False
    rwf_mu: float = 1.0
    rwf_sigma: float = 0.1
    time_period: Optional[float] = None
    time_column: int = 0
    time_trainable: bool = False

    def _embedding(self) -> Embedding:
        return Embedding(self.periods, self.harmonics, self.fourier_features, self.fourier_scale,
                         self.fourier_seed, self.time_period, self.time_column, self.time_trainable,
                         name="embedding")

    def _dense(self, init: str):
        return functools.partial(Dense, kernel_init=init, rwf=self.rwf, rwf_mu=self.rwf_mu, rwf_sigma=self.rwf_sigma)


class PlainMLP(_Net):
    """z -> ``depth`` x sigma(Dense(width)) -> Dense(out), LeCun-normal kernels (see the module docstring)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = get_activation(self.activation)
        dense = self._dense("lecun")
        h = self._embedding()(x)
        for _ in range(self.depth):
            h = act(dense(self.width)(h))  # unnamed: Dense_0, ... as MLP's nn.Dense layers
        return dense(self.out)(h)


class ModifiedMLP(_Net):
    """The modified MLP of Wang, Teng & Perdikaris 2021 (see the module docstring)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = get_activation(self.activation)
        dense = self._dense("glorot")
        z = self._embedding()(x)
        u = act(dense(self.width, name="encoder_u")(z))
        v = act(dense(self.width, name="encoder_v")(z))
        h = z
        for k in range(self.depth):
            h = gate(act(dense(self.width, name=f"hidden_{k}")(h)), u, v)
        return dense(self.out, name="output")(h)


class PirateBlock(nn.Module):
    """One adaptive residual block: x <- alpha h(x, U, V) + (1 - alpha) x, alpha starting at 0."""

    width: int
    activation: str = "tanh"
    rwf: bool = False
    rwf_mu: float = 1.0
    rwf_sigma: float = 0.1

    @nn.compact
    def __call__(self, x: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
        act = get_activation(self.activation)
        dense = functools.partial(Dense, kernel_init="glorot", rwf=self.rwf, rwf_mu=self.rwf_mu,
                                  rwf_sigma=self.rwf_sigma)
        z1 = gate(act(dense(self.width, name="dense_1")(x)), u, v)
        z2 = gate(act(dense(self.width, name="dense_2")(z1)), u, v)
        h = act(dense(x.shape[-1], name="dense_3")(z2))
        alpha = self.param("alpha", nn.initializers.zeros_init(), (), jnp.float32).astype(h.dtype)
        return alpha * h + (1 - alpha) * x


class PirateNet(_Net):
    """PirateNet of Wang, Li, Chen & Perdikaris 2024: ``depth`` adaptive residual blocks (see the
    module docstring); the residual stream has the size of the embedding."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = get_activation(self.activation)
        dense = self._dense("glorot")
        z = self._embedding()(x)
        u = act(dense(self.width, name="encoder_u")(z))
        v = act(dense(self.width, name="encoder_v")(z))
        h = z
        for k in range(self.depth):
            h = PirateBlock(self.width, self.activation, self.rwf, self.rwf_mu, self.rwf_sigma,
                            name=f"block_{k}")(h, u, v)
        return dense(self.out, name="output")(h)


ARCHITECTURES = {"mlp": PlainMLP, "modified_mlp": ModifiedMLP, "pirate": PirateNet}
