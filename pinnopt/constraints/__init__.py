"""Constraint methods by name: each turns ``{name: Constraint}`` into one scalar loss.

``get(name, **options) -> ConstraintMethod`` with ``init``, ``loss`` and ``update``; the state
(``ConstraintState``) is a pytree of float32 scalars and int32 counters, so it travels through
``lax.scan`` carries and checkpoints. Names: ``penalty``, ``augmented_lagrangian`` (alias
``al``), ``none``.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Callable

from pinnopt.constraints.augmented_lagrangian import augmented_lagrangian
from pinnopt.constraints.base import ConstraintMethod, ConstraintState, violation
from pinnopt.constraints.penalty import none, penalty
from pinnopt.constraints.schedule import PenaltySchedule, PenaltyScheduleState, penalty_schedule

_METHODS: dict[str, Callable[..., ConstraintMethod]] = {
    "augmented_lagrangian": augmented_lagrangian,
    "al": augmented_lagrangian,
    "penalty": penalty,
    "none": none,
}


def available() -> list[str]:
    """The method names ``get`` accepts (aliases included)."""
    return sorted(_METHODS)


def get(name: str, **options) -> ConstraintMethod:
    """The constraint method ``name`` built with ``options``.

    Raises ``ValueError`` for an unknown name or option (with the closest matches) and for
    an invalid option value (naming the option).
    """
    if name not in _METHODS:
        close = difflib.get_close_matches(str(name), available(), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown constraint method {name!r}.{hint} Available: {', '.join(available())}")
    factory = _METHODS[name]
    accepted = list(inspect.signature(factory).parameters)
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ValueError(f"constraint method {name!r} has no option {key!r}.{hint} "
                             f"Accepted: {', '.join(accepted) or '(none)'}")
    return factory(**options)


__all__ = ["ConstraintMethod", "ConstraintState", "PenaltySchedule", "PenaltyScheduleState",
           "augmented_lagrangian", "available", "get", "none", "penalty", "penalty_schedule", "violation"]
