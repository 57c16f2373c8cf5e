"""The plain fully connected network for PINNs (flax.linen), with the input embeddings PDEs need.

``MLP`` maps points ``(..., d)`` to ``(..., out)`` through, in order:

1. a periodic embedding of chosen input columns (exact periodicity, Dong & Ni 2021):
   a column ``x`` of period ``P`` becomes ``cos(2 pi k x / P), sin(2 pi k x / P)``, k = 1..K;
   the other columns pass unchanged;
2. optional random Fourier features (Tancik et al. 2020): ``z -> [cos(B z), sin(B z)]`` with a
   fixed Gaussian ``B`` (``fourier_features`` rows, entries N(0, fourier_scale^2)) drawn from
   ``fourier_seed``. ``B`` is part of the architecture, not a parameter: it is rebuilt from the
   seed at trace time, so params stay the trainable weights only;
3. ``depth`` hidden Dense layers of ``width`` units with the named activation, then a linear
   Dense layer of ``out`` units.
"""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "sin": jnp.sin,
    "gelu": jax.nn.gelu,
    "swish": jax.nn.swish,
    "softplus": jax.nn.softplus,
    "relu": jax.nn.relu,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation called ``name`` (one of ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def periodic_embedding(x: jax.Array, periods: Sequence[tuple[int, float]], harmonics: int = 1) -> jax.Array:
    """Replace each column ``j`` of period ``P`` (``(j, P)`` in ``periods``) by its K harmonics.

    ``x`` (..., d) -> (..., d - len(periods) + 2 K len(periods)): kept columns first, in order,
    then ``cos(2 pi k x_j / P), sin(2 pi k x_j / P)`` for each periodic column and k = 1..K.
    Any function of the output is P-periodic in x_j, so a periodic boundary condition holds exactly.
    """
    if not periods:
        return x
    columns = [j for j, _ in periods]
    kept = [j for j in range(x.shape[-1]) if j not in columns]
    k = jnp.arange(1, harmonics + 1, dtype=x.dtype)
    parts = [x[..., kept]]
    for j, period in periods:
        phase = (2 * np.pi / period) * x[..., j:j + 1] * k
        parts += [jnp.cos(phase), jnp.sin(phase)]
    return jnp.concatenate(parts, axis=-1)


def fourier_matrix(n_features: int, dim: int, scale: float, seed: int) -> np.ndarray:
    """The fixed (n_features, dim) Gaussian matrix B of random Fourier features, float32."""
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((n_features, dim))).astype(np.float32)


def fourier_features(z: jax.Array, b: np.ndarray) -> jax.Array:
    """``z`` (..., dim) -> ``[cos(z B^T), sin(z B^T)]`` (..., 2 n_features)."""
    proj = z @ jnp.asarray(b, z.dtype).T
    return jnp.concatenate([jnp.cos(proj), jnp.sin(proj)], axis=-1)


class MLP(nn.Module):
    """Embedding -> ``depth`` x Dense(width) + activation -> Dense(out). See the module docstring.

    Attributes:
      width, depth: hidden layer size and number of hidden layers.
      out: number of outputs.
      activation: a name in ``ACTIVATIONS``.
      periods: ``((column, period), ...)`` of the periodic input columns (empty: none).
      harmonics: K, harmonics per periodic column.
      fourier_features: number of random Fourier features (0: none).
      fourier_scale: standard deviation of the entries of B (the frequency scale).
      fourier_seed: seed of B (architecture, not training randomness).
    """

    width: int = 64
    depth: int = 4
    out: int = 1
    activation: str = "tanh"
    periods: tuple = ()
    harmonics: int = 1
    fourier_features: int = 0
    fourier_scale: float = 1.0
    fourier_seed: int = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = get_activation(self.activation)
        z = periodic_embedding(x, self.periods, self.harmonics)
        if self.fourier_features:
            z = fourier_features(z, fourier_matrix(self.fourier_features, z.shape[-1],
                                                   self.fourier_scale, self.fourier_seed))
        for _ in range(self.depth):
            z = act(nn.Dense(self.width)(z))
        return nn.Dense(self.out)(z)


def make_mlp(width: int = 64, depth: int = 4, out: int = 1, activation: str = "tanh", periods=(),
             harmonics: int = 1, fourier_features: int = 0, fourier_scale: float = 1.0,
             fourier_seed: int = 0) -> MLP:
    """An ``MLP`` with its options checked (ValueError naming the bad one)."""
    for name, value, low in (("width", width, 1), ("depth", depth, 0), ("out", out, 1),
                             ("harmonics", harmonics, 1), ("fourier_features", fourier_features, 0)):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    get_activation(activation)
    if not fourier_scale > 0:
        raise ValueError(f"fourier_scale must be positive, got {fourier_scale!r}")
    periods = tuple((int(j), float(p)) for j, p in periods)
    if any(p <= 0 for _, p in periods):
        raise ValueError(f"periods must be positive, got {periods!r}")
    return MLP(int(width), int(depth), int(out), activation, periods, int(harmonics),
               int(fourier_features), float(fourier_scale), int(fourier_seed))
