"""Causal weighting in time (Wang, Sankaran & Perdikaris, "Respecting causality is all you need
for training physics-informed neural networks", 2022/2024).

Points are ranked by time and cut into ``M`` chunks of (nearly) equal size; chunk ``i`` counts
only once the chunks before it are fitted:
``w_i = stop_gradient(exp(-eps sum_{k<i} L_k))``, ``loss = (1/M) sum_i w_i L_i``.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Mapping, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from pinnopt.balancing.base import (Balancer, check_coords, check_names, check_objectives,
                                    check_weight_names, check_weights, mean, raw_metrics)


class CausalState(NamedTuple):
    step: jax.Array  # int32, number of updates so far (the argument of an eps schedule)
    eps_index: jax.Array  # int32, position in a list of eps values (0 when eps is not a list)


def chunk_ids(n_points: int, n_chunks: int) -> np.ndarray:
    """Chunk of the point of time rank ``r``: ``floor(r M / N)``; chunk sizes differ by at most one."""
    if n_points < n_chunks:
        raise ValueError(f"causal balancer: n_chunks ({n_chunks}) exceeds the number of points ({n_points})")
    return (np.arange(n_points) * n_chunks) // n_points


def chunk_means(values: jax.Array, times: jax.Array, n_chunks: int) -> jax.Array:
    """Mean of ``values`` (N,) over each of ``n_chunks`` consecutive groups of points sorted by ``times``."""
    ids = chunk_ids(values.shape[0], n_chunks)  # static: N and M are static
    counts = np.bincount(ids, minlength=n_chunks)
    order = jnp.argsort(times, stable=True)
    sums = jax.ops.segment_sum(values[order], ids, num_segments=n_chunks, indices_are_sorted=True)
    return sums / counts.astype(np.float32)


def causal_weights(chunk_losses: jax.Array, eps) -> jax.Array:
    """``w_i = exp(-eps sum_{k<i} L_k)``, outside the gradient: the weights steer, they are not trained."""
    chunk_losses = jax.lax.stop_gradient(chunk_losses)
    past = jnp.concatenate([jnp.zeros((1,), chunk_losses.dtype), jnp.cumsum(chunk_losses)[:-1]])
    return jax.lax.stop_gradient(jnp.exp(-eps * past))


def _eps_values(eps, eps_schedule) -> Optional[np.ndarray]:
    """Validate eps; return the list of eps values (length 1 for a constant) or None for a schedule."""
    if eps_schedule is not None:
        if not callable(eps_schedule):
            raise ValueError(f"causal balancer: eps_schedule must be callable step -> eps, got {eps_schedule!r}")
        if eps is not None:
            raise ValueError("causal balancer: give either eps or eps_schedule, not both")
        return None
    values = [1.0 if eps is None else eps] if isinstance(eps, numbers.Number) or eps is None else list(eps)
    if not values:
        raise ValueError("causal balancer: eps must be a positive number or a non-empty list of them")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"causal balancer: eps must be finite and > 0, got {v!r}")
    if any(b < a for a, b in zip(values, values[1:])):
        raise ValueError(f"causal balancer: a list of eps values must be non-decreasing, got {values}")
    return np.asarray(values, np.float32)


def causal(eps: Union[float, Sequence[float], None] = None, *, n_chunks: int = 16, time_axis: int = 0,
           eps_schedule: Optional[Callable] = None, min_weight_threshold: float = 0.99,
           terms: Optional[Sequence[str]] = None,
           weights: Optional[Mapping[str, float]] = None) -> Balancer:
    """Causal time weighting of every objective with coordinates; the others are plain means.

    ``loss = sum_k w_k L_k`` with, for a causal term, ``L_k = (1/M) sum_i w_i L_{k,i}`` over its
    time chunks (``w_i`` from its own chunk losses), and ``L_k = mean l_k`` otherwise.

    Args:
      eps: causality parameter: a number (default 1), or a non-decreasing list of numbers used
        as in Wang et al. (Algorithm 1; the paper's list is ``[1e-2, 1e-1, 1, 10, 100]``): start
        with the first (stage 0), move to the next once the minimum weight over all causal terms
        exceeds ``min_weight_threshold`` (0.99: all chunks are fitted), stay at the last (where
        the paper stops training; here the run ends by its step count). The check is part of
        ``update``, inside the compiled step; the stage is the state's ``eps_index``.
      n_chunks: number of time chunks ``M``; points are ranked by time (``argsort`` in the
        compiled step, so the input need not be sorted) and point ``r`` of ``N`` goes to chunk
        ``floor(r M / N)``. Needs ``N >= M`` for every causal term.
      time_axis: column of ``coords`` holding time.
      eps_schedule: instead of ``eps``, a function (e.g. an optax schedule) of the step count
        held in the state.
      min_weight_threshold: see ``eps`` (only used with a list of eps values).
      terms: names of the terms to weight causally (default: every term with coords). Leave out
        terms whose points all share one time, such as an initial condition: their chunks would
        be arbitrary and their later chunks weighted down for nothing.
      weights: static ``{term: w_k}`` (default 1).

    As the ``inner`` reduction of the spatial balancer, ``loss(..., values=...)`` takes the chunk
    weights from the raw losses and applies them to the chunk means of ``values``.
    Metrics: ``causal/eps``, ``causal/stage`` (the position in the eps list, 0 without one),
    ``causal/min_weight`` (over all causal terms, 1 if none) and ``causal/min_weight/<term>``.
    """
    if isinstance(n_chunks, bool) or not isinstance(n_chunks, numbers.Integral) or n_chunks < 1:
        raise ValueError(f"causal balancer: n_chunks must be an integer >= 1, got {n_chunks!r}")
    if isinstance(time_axis, bool) or not isinstance(time_axis, numbers.Integral) or time_axis < 0:
        raise ValueError(f"causal balancer: time_axis must be an integer >= 0, got {time_axis!r}")
    if isinstance(min_weight_threshold, bool) or not isinstance(min_weight_threshold, numbers.Real) \
            or not 0 < min_weight_threshold <= 1:
        raise ValueError(f"causal balancer: min_weight_threshold must lie in (0, 1], got {min_weight_threshold!r}")
    n_chunks, time_axis = int(n_chunks), int(time_axis)
    eps_values = _eps_values(eps, eps_schedule)
    selected = check_names(terms, "terms", "causal")
    weights = check_weights(weights, "causal")

    def is_causal(name, obj):
        if selected is not None:
            return name in selected
        return obj.coords is not None

    def current_eps(state):
        if eps_values is None:
            return jnp.asarray(eps_schedule(state.step), jnp.float32)
        return jnp.asarray(eps_values)[state.eps_index]

    def check(objectives):
        objectives = check_objectives(objectives, "causal")
        check_weight_names(weights, objectives, "causal")
        missing = sorted(set(selected or ()) - set(objectives))
        if missing:
            raise ValueError(f"causal balancer: terms {missing} are not among the objectives {sorted(objectives)}")
        for name, obj in objectives.items():
            if is_causal(name, obj):
                if obj.coords is None:
                    raise ValueError(f"causal balancer: term {name!r} has no coords to take time from")
                check_coords(name, obj, "causal")
                if time_axis >= obj.coords.shape[1]:
                    raise ValueError(f"causal balancer: time_axis {time_axis} is out of range for term "
                                     f"{name!r} with coords of shape {obj.coords.shape}")
                chunk_ids(obj.loss.shape[0], n_chunks)
        return objectives

    def chunk_weights(objectives, eps):
        """``{term: (M,) weights}`` from the raw chunk losses of every causal term."""
        return {name: causal_weights(chunk_means(obj.loss, obj.coords[:, time_axis], n_chunks), eps)
                for name, obj in objectives.items() if is_causal(name, obj)}

    def min_weight(chunk_w):
        if not chunk_w:
            return jnp.ones((), jnp.float32)
        return jnp.min(jnp.stack([jnp.min(w) for w in chunk_w.values()]))

    def init(key, objectives):
        del key
        check(objectives)
        return {}, CausalState(step=jnp.zeros((), jnp.int32), eps_index=jnp.zeros((), jnp.int32))

    def loss(objectives, params, state, *, values=None):
        del params
        objectives = check(objectives)
        values = values or {}
        eps_now = current_eps(state)
        chunk_w = chunk_weights(objectives, eps_now)
        total = jnp.zeros(())
        for name, obj in objectives.items():
            v = values.get(name, obj.loss)
            if name in chunk_w:
                term = jnp.mean(chunk_w[name] * chunk_means(v, obj.coords[:, time_axis], n_chunks))
            else:
                term = mean(v)
            total = total + weights.get(name, 1.0) * term
        metrics = {**raw_metrics(objectives), "balanced": total, "causal/eps": eps_now,
                   "causal/stage": state.eps_index.astype(jnp.float32), "causal/min_weight": min_weight(chunk_w)}
        metrics.update({f"causal/min_weight/{name}": jnp.min(w) for name, w in chunk_w.items()})
        return total, metrics

    def update(objectives, params, state):
        del params
        index = state.eps_index
        if eps_values is not None and len(eps_values) > 1:
            objectives = check(objectives)
            fitted = min_weight(chunk_weights(objectives, current_eps(state))) > min_weight_threshold
            index = jnp.where(fitted, jnp.minimum(index + 1, len(eps_values) - 1), index)
        return CausalState(step=state.step + 1, eps_index=index.astype(jnp.int32))

    def diagnose(state):
        del state
        return []

    return Balancer(init, loss, update, diagnose)
