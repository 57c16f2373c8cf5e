"""The two kinds of term a problem returns: objectives to minimise and constraints to satisfy.

A problem's ``terms(params, batch)`` returns ``{name: Objective | Constraint}``. Both are
pytrees whose arrays are traced inside the jitted step; a constraint's ``kind`` is static
metadata so that a method can branch on it in Python.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Union

import jax

KINDS = ("eq", "ineq")


@dataclasses.dataclass(frozen=True)
class Objective:
    """A term to minimise: point-wise non-negative contributions l(x), shape (N,) or ().

    A PDE residual r(x) enters as r(x)**2, a whitened data residual as its square, a test
    function such as Rastrigin as its value. ``coords`` (N, d) are the points the
    contributions belong to (used by the spatial and causal balancers; time is column 0).
    """

    loss: jax.Array
    coords: Optional[jax.Array] = None


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A term to satisfy point-wise: ``value == 0`` (kind "eq") or ``value <= 0`` (kind "ineq")."""

    value: jax.Array
    kind: str = "eq"
    coords: Optional[jax.Array] = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Constraint kind must be one of {KINDS}, got {self.kind!r}")


jax.tree_util.register_dataclass(Objective, data_fields=["loss", "coords"], meta_fields=[])
jax.tree_util.register_dataclass(Constraint, data_fields=["value", "coords"], meta_fields=["kind"])

Term = Union[Objective, Constraint]


def split_terms(terms: dict) -> tuple[dict, dict]:
    """Split ``{name: term}`` into (objectives, constraints), keeping insertion order."""
    objectives, constraints = {}, {}
    for name, term in terms.items():
        if isinstance(term, Objective):
            objectives[name] = term
        elif isinstance(term, Constraint):
            constraints[name] = term
        else:
            raise TypeError(f"term {name!r} is a {type(term).__name__}, expected Objective or Constraint")
    return objectives, constraints
