"""The adaptive penalty schedule shared by the penalty and augmented-Lagrangian methods.

Per constraint i, with violation c_i >= 0 observed once per step t = 1, 2, ...:

    ema_i  <- c_i                                  at t = 1
    ema_i  <- decay * ema_i + (1 - decay) * c_i    afterwards
    every ``check_every`` steps (t = k * check_every):
        stalled_i = ema_i > tolerance  and  ema_i > (1 - min_improvement) * reference_i
        mu_i      <- min(factor * mu_i, mu_max_i)  if stalled_i
        reference_i <- ema_i

The reference starts at +inf, so the first check only records it: mu can first grow at
t = 2 * check_every, after one full window in which the violation could show progress.
mu never decreases. The plateau test follows optax's ``contrib.reduce_on_plateau``
(NamedTuple state, ``jnp.where`` inside ``update``), turned around: a plateau raises mu.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping, NamedTuple, Union

import jax
import jax.numpy as jnp
import optax

PerName = Union[float, Mapping[str, float]]


class PenaltyScheduleState(NamedTuple):
    """mu, ema, reference: pytrees (like the violations) of float32 scalars; count: int32 steps seen."""

    mu: Any
    ema: Any
    reference: Any
    count: jax.Array


class PenaltySchedule(NamedTuple):
    """``init(violations) -> state`` from example violations; ``update(violations, state) -> state``."""

    init: Callable[[Any], PenaltyScheduleState]
    update: Callable[[Any, PenaltyScheduleState], PenaltyScheduleState]


def check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_fraction(name: str, value: float) -> float:
    """A number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)


def check_per_name(name: str, value: PerName, check: Callable[[str, float], float]) -> PerName:
    """Validate a number, or a ``{constraint name: number}`` mapping of them."""
    if isinstance(value, Mapping):
        return {str(k): check(f"{name}[{k!r}]", v) for k, v in value.items()}
    return check(name, value)


def resolve_per_name(name: str, value: PerName, names: list[str], default: float) -> dict[str, float]:
    """``{constraint name: number}`` from a number or a partial mapping (missing names get ``default``).

    A mapping that names a constraint that does not exist is a ``ValueError``: a typo in a
    per-constraint option must not silently fall back to the default.
    """
    if not isinstance(value, Mapping):
        return {n: float(value) for n in names}
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ValueError(f"{name} names unknown constraint(s) {unknown}; the constraints are {sorted(names)}")
    return {n: float(value.get(n, default)) for n in names}


def _names(violations) -> list[str]:
    if isinstance(violations, Mapping):
        return list(violations)
    raise ValueError("per-constraint options (a dict for mu_init or mu_max) need the violations "
                     f"as a dict {{name: c}}, got {type(violations).__name__}")


def penalty_schedule(
    decay: float = 0.9,
    check_every: int = 500,
    min_improvement: float = 0.1,
    factor: float = 10.0,
    mu_init: PerName = 1.0,
    mu_max: PerName = 1e4,
    adaptive: bool = True,
    tolerance: float = 0.0,
) -> PenaltySchedule:
    """Raise each penalty weight mu by ``factor`` when its violation's EMA stops falling.

    Args:
      decay: EMA decay in [0, 1); ema <- decay * ema + (1 - decay) * c.
      check_every: steps between plateau checks.
      min_improvement: relative fall in [0, 1) of the EMA required between two checks;
        less than that and mu is multiplied by ``factor``.
      factor: growth factor of mu, > 1.
      mu_init: initial mu, a number or ``{constraint name: number}`` (other names get 1.0).
      mu_max: cap on mu, a number or ``{constraint name: number}`` (other names get 1e4).
      adaptive: if False mu stays at ``mu_init`` (the EMA is still tracked).
      tolerance: an EMA at or below this counts as satisfied and never raises mu.

    Returns:
      A ``PenaltySchedule`` whose state holds one float32 scalar per constraint in each of
      ``mu``, ``ema`` and ``reference``, and an int32 step counter.
    """
    decay = check_fraction("decay", decay)
    check_every = check_count("check_every", check_every)
    min_improvement = check_fraction("min_improvement", min_improvement)
    factor = check_positive("factor", factor)
    if factor <= 1:
        raise ValueError(f"factor must be greater than 1, got {factor!r}")
    mu_init = check_per_name("mu_init", mu_init, check_positive)
    mu_max = check_per_name("mu_max", mu_max, check_positive)
    if not isinstance(mu_init, Mapping) and not isinstance(mu_max, Mapping) and mu_max < mu_init:
        raise ValueError(f"mu_max ({mu_max}) must be at least mu_init ({mu_init})")
    if not isinstance(adaptive, bool):
        raise ValueError(f"adaptive must be True or False, got {adaptive!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not 0 <= tolerance < math.inf:
        raise ValueError(f"tolerance must be a non-negative finite number, got {tolerance!r}")
    tolerance = float(tolerance)

    def per_leaf(violations, option, value, default):
        if not isinstance(value, Mapping):
            return jax.tree.map(lambda _: value, violations)
        return resolve_per_name(option, value, _names(violations), default)

    def init_fn(violations) -> PenaltyScheduleState:
        mu0 = per_leaf(violations, "mu_init", mu_init, 1.0)
        cap = per_leaf(violations, "mu_max", mu_max, 1e4)
        for (path, m), c in zip(jax.tree_util.tree_leaves_with_path(mu0), jax.tree.leaves(cap)):
            if c < m:
                raise ValueError(f"mu_max ({c}) must be at least mu_init ({m}) for {jax.tree_util.keystr(path)}")
        f32 = lambda v: jnp.asarray(v, jnp.float32)
        return PenaltyScheduleState(
            mu=jax.tree.map(f32, mu0),
            ema=jax.tree.map(lambda _: f32(0.0), violations),
            reference=jax.tree.map(lambda _: f32(jnp.inf), violations),
            count=jnp.asarray(0, jnp.int32),
        )

    # mu_max as a pytree of plain floats, built once per structure (it is static data).
    def caps(violations):
        return per_leaf(violations, "mu_max", mu_max, 1e4)

    def update_fn(violations, state: PenaltyScheduleState) -> PenaltyScheduleState:
        count = optax.safe_increment(state.count)
        first = count == 1
        check = count % check_every == 0

        def ema_of(c, ema):
            c = jnp.asarray(c).astype(ema.dtype)
            return jnp.where(first, c, decay * ema + (1 - decay) * c)

        ema = jax.tree.map(ema_of, violations, state.ema)

        def mu_of(mu, ema, reference, cap):
            stalled = (ema > tolerance) & (ema > (1 - min_improvement) * reference)
            raised = jnp.minimum(mu * factor, jnp.asarray(cap, mu.dtype))
            # max() keeps mu monotone even if someone starts it above the cap.
            return jnp.where(check & stalled, jnp.maximum(mu, raised), mu) if adaptive else mu

        mu = jax.tree.map(mu_of, state.mu, ema, state.reference, caps(violations))
        reference = jax.tree.map(lambda e, r: jnp.where(check, e, r), ema, state.reference)
        return PenaltyScheduleState(mu=mu, ema=ema, reference=reference, count=count)

    return PenaltySchedule(init_fn, update_fn)


__all__ = ["PenaltySchedule", "PenaltyScheduleState", "penalty_schedule"]
