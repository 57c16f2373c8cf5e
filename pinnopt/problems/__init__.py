"""Problems by name: built-ins here, plugins through the entry-point group ``pinnopt.problems``.

A problem of one's own is registered in-process with the decorator::

    @pinnopt.problems.register("my_pde")
    def make_my_pde(n_points: int = 512) -> Problem: ...

and a plugin package declares its factories in its pyproject::

    [project.entry-points."pinnopt.problems"]
    lumpy = "cosmology.problem:make_lumpy"

A factory is ``(**options) -> Problem``; ``get(name, **options)`` checks the options against
its signature (an unknown option, or a value of the wrong type, is a ``ValueError`` naming it).
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Optional

from pinnopt.problems import allen_cahn, burgers, convection, elliptic, pde_toy, toys
from pinnopt.problems.base import KnownMinimum, Problem
from pinnopt.registry import Registry


def _plugins() -> dict:
    return {ep.name: ep for ep in entry_points(group="pinnopt.problems")}


def _plugin_factory(name: str) -> Optional[Callable]:
    ep = _plugins().get(name)
    return ep.load() if ep is not None else None


REGISTRY = Registry("problem", fallback=_plugin_factory, extra_names=lambda: list(_plugins()))
REGISTRY.register("rastrigin", toys.make_rastrigin)
REGISTRY.register("ackley", toys.make_ackley)
REGISTRY.register("zakharov", toys.make_zakharov)
REGISTRY.register("two_basin", toys.make_two_basin)
REGISTRY.register("constrained_quadratic", toys.ConstrainedQuadratic)
REGISTRY.register("pde_toy", pde_toy.make_pde_toy)
REGISTRY.register("convection", convection.make_convection)
REGISTRY.register("poisson2d", elliptic.make_poisson2d)
REGISTRY.register("helmholtz2d", elliptic.make_helmholtz2d)
REGISTRY.register("burgers", burgers.make_burgers)
REGISTRY.register("allen_cahn", allen_cahn.make_allen_cahn)

register = REGISTRY.register
available = REGISTRY.available


def get(name: str, **options) -> Problem:
    """Build the problem ``name`` (a registered name or an installed plugin) with ``options``."""
    try:
        return REGISTRY.get(name, **options)
    except TypeError as err:  # a factory's own argument errors, named after the problem
        raise ValueError(f"problem {name!r}: {err}") from err


__all__ = ["KnownMinimum", "Problem", "REGISTRY", "available", "get", "register", "toys"]
