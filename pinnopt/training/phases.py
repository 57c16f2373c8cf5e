"""Optimizer phases: (optimizer, hyperparameters, steps) run one after the other on the same parameters.

    solve(problem, optimizer=[("adam", {"learning_rate": 1e-3}, 5000), ("lbfgs", {}, 2000)])

Each phase's optimizer state is initialised from the parameters when the phase begins. A phase
ends after its steps, or earlier when its optimizer stops moving the parameters (every update
of a whole chunk exactly zero: converged, or a line search that finds no descent); the reason
is written to the metrics (``phase_end``) and to the summary's ``phases``, never silently.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, NamedTuple, Optional

import numpy as np

from pinnopt import optimizers as optimizers_lib
from pinnopt.registry import spec_of

DEFAULT_STEPS = 1000


class Phase(NamedTuple):
    name: Optional[str]  # registry name (None for an unnamed transformation)
    tx: Any  # optax.GradientTransformationExtraArgs
    options: dict  # hyperparameters, as recorded in config.json
    steps: int


def _steps(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


def _one(spec, options: Optional[dict], steps: int, what: str) -> Phase:
    if isinstance(spec, str):
        return Phase(spec, optimizers_lib.get(spec, **(options or {})), dict(options or {}), steps)
    if options:
        raise ValueError(f"{what}: hyperparameters given but the optimizer is not a name")
    named = spec_of(spec)
    if named is None:
        warnings.warn(f"the {what} passed to solve was not built by pinnopt.optimizers.get (it carries no "
                      "name), so config.json cannot record it and a resumed run cannot rebuild it",
                      UserWarning, stacklevel=4)
    return Phase(named.name if named else None, spec, dict(named.options) if named else {}, steps)


def resolve_phases(optimizer, optimizer_kwargs: Optional[dict], steps: Optional[int]) -> list[Phase]:
    """The phases of a run from ``solve``'s ``optimizer``, ``optimizer_kwargs`` and ``steps``.

    ``optimizer`` is a name or a transformation (one phase of ``steps``, default 1000), or a
    list of phases, each ``(name or transformation, hyperparameters, steps)`` or
    ``{"name": ..., "options": ..., "steps": ...}`` (as config.json records them); ``steps``
    may then be omitted, and if given must be their sum.
    """
    if not isinstance(optimizer, (list, tuple)) or hasattr(optimizer, "update"):  # a transformation is a tuple
        return [_one(optimizer, optimizer_kwargs, _steps(DEFAULT_STEPS if steps is None else steps, "steps"),
                     "optimizer")]
    if optimizer_kwargs:
        raise ValueError("optimizer_kwargs given with a list of phases: give each phase its own hyperparameters")
    if not optimizer:
        raise ValueError("optimizer: an empty list of phases")
    phases = []
    for i, item in enumerate(optimizer):
        what = f"optimizer phase {i}"
        if isinstance(item, dict):
            unknown = set(item) - {"name", "options", "steps"}
            if unknown or "name" not in item or "steps" not in item:
                raise ValueError(f"{what}: a dict phase has keys name, options, steps; got {sorted(item)}")
            item = (item["name"], item.get("options") or {}, item["steps"])
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise ValueError(f"{what} must be (optimizer, hyperparameters, steps), got {item!r}")
        spec, options, n = item
        phases.append(_one(spec, options, _steps(n, f"{what} steps"), what))
    total = sum(p.steps for p in phases)
    if steps is not None and steps != total:
        raise ValueError(f"steps={steps} but the phases add up to {total}: leave steps out or make them agree")
    return phases


def record(phases: list[Phase]):
    """config.json's "optimizer" and "optimizer_kwargs": a name and options for one phase, a list for several."""
    if len(phases) == 1:
        return phases[0].name, phases[0].options
    return [{"name": p.name, "options": p.options, "steps": p.steps} for p in phases], {}


def stagnation(metrics: dict) -> Optional[str]:
    """Why a phase should end early, from one chunk's per-step metrics (None: it goes on)."""
    norms = np.asarray(metrics.get("update_norm", []))
    if norms.size and np.all(norms == 0):
        return (f"stopped early: no update for {norms.size} steps in a row (the optimizer has converged "
                "or its line search finds no descent)")
    return None
