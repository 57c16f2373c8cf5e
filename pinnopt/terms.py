"""The two kinds of term a problem returns: objectives to minimise and constraints to satisfy.

A problem's ``terms(params, batch)`` returns ``{name: Objective | Constraint}``. Both are
pytrees whose arrays are traced inside the jitted step; a constraint's ``kind``,
``aggregate`` and ``tol`` are static metadata, so a method can branch on them in Python.

Shapes are checked when a term is built (also on tracers): a loss or a value is one number
per point, (N,), or one number, (); ``coords`` are the points, (N, d). A loss of shape
(N, N) is almost always an (N, 1) - (N,) broadcast and would train silently on the wrong
thing, so it is an error here.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Optional, Union

import jax
import jax.numpy as jnp

KINDS = ("eq", "ineq")
AGGREGATES = ("pointwise", "mean")


def _shape(x) -> Optional[tuple]:
    """The shape of an array-like leaf; None for the placeholders JAX unflattens with."""
    shape = getattr(x, "shape", None)
    return tuple(shape) if isinstance(shape, tuple) else None


def check_shapes(what: str, field: str, values, coords) -> None:
    """``values`` (N,) or () and ``coords`` (N, d) with the same N, else ``ValueError``."""
    shape = _shape(values)
    if shape is not None and len(shape) > 1:
        hint = (" (an (N, 1) array minus an (N,) array broadcasts to (N, N): take [:, 0] of the"
                " network output)" if len(shape) == 2 and shape[0] == shape[1] or 1 in shape else "")
        raise ValueError(f"{what}: {field} must have shape (N,) (one number per point) or () "
                         f"(one number), got {shape}{hint}")
    cshape = _shape(coords)
    if coords is None or cshape is None:
        return
    if len(cshape) != 2:
        raise ValueError(f"{what}: coords must have shape (N, d), got {cshape}")
    if shape is not None and len(shape) == 1 and cshape[0] != shape[0]:
        raise ValueError(f"{what}: {field} has {shape[0]} points but coords has {cshape[0]} rows "
                         f"({field} {shape}, coords {cshape})")


@dataclasses.dataclass(frozen=True)
class Objective:
    """A term to minimise: point-wise non-negative contributions l(x), shape (N,) or ().

    A PDE residual r(x) enters as r(x)**2, a whitened data residual as its square, a test
    function such as Rastrigin as its value. ``coords`` (N, d) are the points the
    contributions belong to (used by the spatial and causal balancers; time is column 0).
    ``residual``, when the term is a sum of squares, is r itself (loss = r^2): what the
    least-squares optimizers (Gauss-Newton, Levenberg-Marquardt, ENGD) work on. Build such a
    term with ``Objective.of_residual(r, coords)``.
    """

    loss: jax.Array
    coords: Optional[jax.Array] = None
    residual: Optional[jax.Array] = None

    def __post_init__(self):
        check_shapes("Objective", "loss", self.loss, self.coords)
        check_shapes("Objective", "residual", self.residual, self.coords)

    @classmethod
    def of_residual(cls, residual: jax.Array, coords: Optional[jax.Array] = None) -> "Objective":
        """The term with loss r^2 that carries its residual r (shape (N,) or ())."""
        return cls(jnp.square(residual), coords, residual)


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A term to satisfy: ``value == 0`` (kind "eq") or ``value <= 0`` (kind "ineq").

    ``aggregate`` says what satisfied means, and so how every constraint method reduces the
    values (the property belongs to the constraint, not to the method):

    - ``"pointwise"`` (default): at every point, e.g. a boundary condition or an energy
      condition. Every method's aggregated violation is zero only when every point satisfies
      the constraint (equality: mean(value^2); inequality: mean(max(0, value))), so errors of
      opposite sign never cancel.
    - ``"mean"``: one global condition on the mean, mean(value) == 0 or <= 0, e.g. a total
      mass. For a single value, shape (), the two coincide.

    ``tol`` (>= 0) is the violation a user accepts. The run certifies the constraint when its
    largest violation on held-out points is at most ``tol``: max |value| (equality) or
    max(0, value) (inequality) for a point-wise constraint, |mean value| or max(0, mean value)
    for a mean one.
    """

    value: jax.Array
    kind: str = "eq"
    coords: Optional[jax.Array] = None
    aggregate: str = "pointwise"
    tol: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Constraint kind must be one of {KINDS}, got {self.kind!r}")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"Constraint aggregate must be one of {AGGREGATES}, got {self.aggregate!r}")
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not math.isfinite(tol) or tol < 0:
            raise ValueError(f"Constraint tol must be a finite number >= 0, got {tol!r}")
        object.__setattr__(self, "tol", float(tol))
        check_shapes("Constraint", "value", self.value, self.coords)

    @property
    def pointwise(self) -> bool:
        """Whether the methods treat it point by point (a single value is its own point)."""
        return self.aggregate == "pointwise" and _shape(self.value) not in ((), None)


jax.tree_util.register_dataclass(Objective, data_fields=["loss", "coords", "residual"], meta_fields=[])
jax.tree_util.register_dataclass(Constraint, data_fields=["value", "coords"],
                                 meta_fields=["kind", "aggregate", "tol"])

Term = Union[Objective, Constraint]


def split_terms(terms: dict) -> tuple[dict, dict]:
    """Split ``{name: term}`` into (objectives, constraints), keeping insertion order.

    A term that is neither, or whose shapes do not fit, is an error that names it.
    """
    if not isinstance(terms, dict):
        raise TypeError(f"a problem's terms(params, batch) must return a dict {{name: Objective | Constraint}}, "
                        f"got {type(terms).__name__}")
    objectives, constraints = {}, {}
    for name, term in terms.items():
        if isinstance(term, Objective):
            objectives[name] = term
        elif isinstance(term, Constraint):
            constraints[name] = term
        else:
            raise TypeError(f"term {name!r} is a {type(term).__name__}, expected Objective or Constraint")
        try:
            field = "loss" if isinstance(term, Objective) else "value"
            check_shapes(type(term).__name__, field, getattr(term, field), term.coords)
        except ValueError as err:
            raise ValueError(f"term {name!r}: {err}") from None
    return objectives, constraints
