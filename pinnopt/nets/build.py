"""``make_net``: the one builder problems call, with an ``arch`` option and every option checked."""
from __future__ import annotations

import math
from typing import Optional

import flax.linen as nn

from pinnopt.nets.archs import ARCHITECTURES
from pinnopt.nets.mlp import make_mlp


def _check_real(name: str, value, positive: bool = False, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def make_net(arch: str = "mlp", width: int = 64, depth: int = 4, out: int = 1, activation: str = "tanh",
             periods=(), harmonics: int = 1, fourier_features: int = 0, fourier_scale: float = 1.0,
             fourier_seed: int = 0, rwf: bool = False, rwf_mu: float = 1.0, rwf_sigma: float = 0.1,
             time_period: Optional[float] = None, time_column: int = 0,
             time_trainable: bool = False) -> nn.Module:
    """A PINN network ``(..., d) -> (..., out)`` chosen by ``arch``, its options checked.

    Input embedding (all architectures), in order: the columns listed in ``periods`` and the
    time column (when ``time_period`` is set) become cos(2 pi k x / P), sin(2 pi k x / P),
    k = 1..``harmonics`` (exactly P-periodic); then, when ``fourier_features`` > 0, the
    result z becomes [cos(z B^T), sin(z B^T)] with B fixed, entries N(0, fourier_scale^2).
    See ``pinnopt.nets.archs`` for each architecture's equations and ``pinnopt.nets.layers``
    for RWF and the time embedding.

    Args:
      arch: "mlp" (``depth`` hidden layers), "modified_mlp" (Wang, Teng & Perdikaris 2021:
        two encoders U, V and ``depth`` gated hidden layers) or "pirate" (PirateNet, Wang, Li,
        Chen & Perdikaris 2024: U, V and ``depth`` adaptive residual blocks of three layers,
        each starting as the identity).
      width: hidden layer size (and size of U, V). depth: as above (>= 1 except for "mlp").
      out: number of outputs. activation: a name in ``pinnopt.nets.ACTIVATIONS``.
      periods: ``((column, period), ...)`` of the spatially periodic input columns (fixed).
      harmonics: K, harmonics per periodic column (the time column's too).
      fourier_features, fourier_scale, fourier_seed: random Fourier features (0: none).
      rwf: random weight factorization of every Dense kernel, W = diag(exp(s)) V with
        s ~ N(rwf_mu, rwf_sigma^2) and V = W0 / exp(s) at init (so the network starts as
        without it, for the same key). rwf_mu, rwf_sigma: default 1.0, 0.1 (the paper's).
      time_period: P of the exactly time-periodic embedding of column ``time_column``
        (None: time enters as the other columns). time_trainable: learn the period (as the
        angular frequency 2 pi / P, a parameter ``time_frequency``).

    Returns:
      ``pinnopt.nets.MLP`` exactly as ``make_mlp`` builds it for arch="mlp" without RWF and time
      embedding (so every existing configuration keeps its init); else ``PlainMLP``,
      ``ModifiedMLP`` or ``PirateNet``.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
    for name, value in (("width", width), ("depth", depth), ("out", out), ("harmonics", harmonics),
                        ("fourier_features", fourier_features), ("fourier_seed", fourier_seed),
                        ("time_column", time_column)):
        if isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if int(fourier_seed) != fourier_seed:
        raise ValueError(f"fourier_seed must be an integer, got {fourier_seed!r}")
    # make_mlp checks the options it shares with every architecture
    mlp = make_mlp(width, depth, out, activation, periods, harmonics, fourier_features, fourier_scale,
                   fourier_seed)
    if arch != "mlp" and mlp.depth < 1:
        raise ValueError(f"depth must be >= 1 for arch={arch!r}, got {depth!r}")
    rwf = _check_bool("rwf", rwf)
    rwf_mu = _check_real("rwf_mu", rwf_mu)
    rwf_sigma = _check_real("rwf_sigma", rwf_sigma, nonnegative=True)
    time_trainable = _check_bool("time_trainable", time_trainable)
    if time_period is not None:
        time_period = _check_real("time_period", time_period, positive=True)
    elif time_trainable:
        raise ValueError("time_trainable needs a time_period to start from, got time_period=None")
    if int(time_column) != time_column or time_column < 0:
        raise ValueError(f"time_column must be an integer >= 0, got {time_column!r}")
    if time_period is not None and int(time_column) in [j for j, _ in mlp.periods]:
        raise ValueError(f"time_column {time_column} is also in periods {mlp.periods!r}")
    if arch == "mlp" and not rwf and time_period is None:
        return mlp
    return ARCHITECTURES[arch](mlp.width, mlp.depth, mlp.out, mlp.activation, mlp.periods, mlp.harmonics,
                               mlp.fourier_features, mlp.fourier_scale, mlp.fourier_seed, rwf, rwf_mu,
                               rwf_sigma, time_period, int(time_column), time_trainable)
