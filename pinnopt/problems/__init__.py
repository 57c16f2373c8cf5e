"""Problems by name: built-ins here, plugins through the entry-point group ``pinnopt.problems``.

A plugin declares in its pyproject::

    [project.entry-points."pinnopt.problems"]
    lumpy = "cosmology.problem:make_lumpy"

where the object is a factory ``(**kwargs) -> Problem``.
"""
from __future__ import annotations

import difflib
from importlib.metadata import entry_points
from typing import Callable

from pinnopt.problems.base import KnownMinimum, Problem
from pinnopt.problems import convection, pde_toy, toys

_BUILTIN: dict[str, Callable] = {
    "rastrigin": toys.make_rastrigin,
    "ackley": toys.make_ackley,
    "zakharov": toys.make_zakharov,
    "two_basin": toys.make_two_basin,
    "constrained_quadratic": toys.ConstrainedQuadratic,
    "pde_toy": pde_toy.make_pde_toy,
    "convection": convection.make_convection,
}


def register(name: str, factory: Callable) -> None:
    """Register a problem factory under ``name`` (for code that is not an installed plugin)."""
    _BUILTIN[name] = factory


def _plugins() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group="pinnopt.problems")}


def available() -> list[str]:
    """Names of all problems: built-ins and installed plugins."""
    return sorted(set(_BUILTIN) | set(_plugins()))


def get(name: str, **kwargs) -> Problem:
    """Build the problem ``name`` with the factory's keyword arguments."""
    if name in _BUILTIN:
        factory = _BUILTIN[name]
    else:
        plugins = _plugins()
        if name not in plugins:
            close = difflib.get_close_matches(name, available(), n=3, cutoff=0.4)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown problem {name!r}{hint} Available: {', '.join(available())}")
        factory = plugins[name].load()
    try:
        return factory(**kwargs)
    except TypeError as err:
        raise ValueError(f"problem {name!r}: {err}") from err


__all__ = ["Problem", "KnownMinimum", "available", "get", "register", "toys"]
