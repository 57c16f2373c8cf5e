"""The problem protocol and the metadata a problem may carry."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Protocol, runtime_checkable

import jax
import numpy as np


class KnownMinimum(NamedTuple):
    """Where a test function attains its global minimum: the point (or None if it is a set) and the value."""

    x: Optional[np.ndarray]
    value: float


@runtime_checkable
class Problem(Protocol):
    """A problem is plain data plus pure functions.

    - ``init(key) -> params``: trainable pytree (for a test function, the point x).
    - ``sample(key, step) -> batch``: collocation points / data for one step (any pytree, may be None).
    - ``terms(params, batch) -> {name: Objective | Constraint}``.

    Optional attributes used by the solve loop and benchmarks when present:
    ``name`` (str), ``known_minimum`` (KnownMinimum), ``evaluate(params) -> {name: scalar}``
    (extra metrics such as a relative L2 error, jittable), ``config() -> dict`` (JSON-able
    description written to the run's config.json).
    """

    def init(self, key: jax.Array) -> Any: ...

    def sample(self, key: jax.Array, step: jax.Array) -> Any: ...

    def terms(self, params: Any, batch: Any) -> dict: ...
