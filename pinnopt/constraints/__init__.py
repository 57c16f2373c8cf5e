"""Constraint methods by name: each turns ``{name: Constraint}`` into one scalar loss.

``get(name, **options) -> ConstraintMethod`` (the ``pinnopt.methods`` protocol: ``init``,
``loss``, ``update``, ``diagnose``); the state (``ConstraintState``) is a pytree of float32
scalars and int32 counters, so it travels through ``lax.scan`` carries and checkpoints.
Names: ``penalty``, ``augmented_lagrangian`` (alias ``al``), ``none``; ``register`` adds one
(also as a decorator). How a constraint aggregates its points is the constraint's own
property (``Constraint.aggregate``), read by every method alike (see ``base``).
"""
from __future__ import annotations

from pinnopt.constraints.augmented_lagrangian import augmented_lagrangian
from pinnopt.constraints.base import (ConstraintMethod, ConstraintState, max_violation, squared_violation,
                                      violation)
from pinnopt.constraints.penalty import none, penalty
from pinnopt.constraints.schedule import PenaltySchedule, PenaltyScheduleState, penalty_schedule
from pinnopt.methods import stateless as _stateless
from pinnopt.registry import Registry

REGISTRY = Registry("constraint method")
REGISTRY.register("augmented_lagrangian", augmented_lagrangian, aliases=("al",))
REGISTRY.register("penalty", penalty)
REGISTRY.register("none", none)

register = REGISTRY.register
available = REGISTRY.available
get = REGISTRY.get


def stateless(loss_fn) -> ConstraintMethod:
    """A constraint method without parameters or state from ``loss_fn(constraints) -> (scalar, metrics)``."""
    return _stateless(loss_fn, ConstraintMethod)


__all__ = ["ConstraintMethod", "ConstraintState", "PenaltySchedule", "PenaltyScheduleState", "REGISTRY",
           "augmented_lagrangian", "available", "get", "max_violation", "none", "penalty", "penalty_schedule",
           "register", "squared_violation", "stateless", "violation"]
