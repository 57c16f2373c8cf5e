"""Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018), with a run-away guard."""
from __future__ import annotations

import math
import numbers
from typing import Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from pinnopt.balancing.base import (Balancer, check_objectives, check_weight_names, check_weights,
                                    mean, raw_metrics)


class HomoscedasticState(NamedTuple):
    """Window averages that the run-away guard compares; every field but ``step`` is ``{term: scalar}``."""

    step: jax.Array  # int32, number of updates so far
    window_log_sigma: dict  # running sum of s_k over the current window
    window_raw: dict  # running sum of L_k over the current window
    last_log_sigma: dict  # mean of s_k over the last completed window
    last_raw: dict  # mean of L_k over the last completed window
    strikes: dict  # int32: consecutive windows in which s_k rose while L_k did not fall


def _real(value, name, lower=-math.inf, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < lower:
        raise ValueError(f"homoscedastic balancer: {name} must be a finite number >= {lower}, got {value!r}")
    return float(value)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"homoscedastic balancer: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def homoscedastic(weights: Optional[Mapping[str, float]] = None, *, init_log_sigma: float = 0.0,
                  min_log_sigma: Optional[float] = None, max_log_sigma: Optional[float] = None,
                  check_every: int = 500, patience: int = 3, rise_tol: float = 0.01,
                  min_improvement: float = 0.01) -> Balancer:
    """Learned per-term uncertainties: ``loss = sum_k w_k (0.5 exp(-2 s_k) L_k + s_k)``, ``L_k = mean l_k``.

    ``s_k = log sigma_k`` are trainable (params ``{"log_sigma": {term: scalar}}``). For fixed
    ``L_k`` the gradient ``w_k (1 - exp(-2 s_k) L_k)`` vanishes at ``s_k = 0.5 log L_k``
    (``sigma_k^2 = L_k``), where the term's effective weight is ``1 / (2 L_k)``.

    Run-away: a term the model fails to fit can be weighted away instead, ``L_k`` grows and
    ``sigma_k`` follows it towards infinity. ``update`` averages ``s_k`` and ``L_k`` over windows
    of ``check_every`` steps; a window in which mean ``s_k`` rose by more than ``rise_tol`` while
    mean ``L_k`` did not fall by at least the fraction ``min_improvement`` is a strike, any other
    window resets the count. ``diagnose`` names every term with ``patience`` consecutive strikes,
    and every term whose window mean ``s_k`` sits at ``max_log_sigma`` (the bound is holding it).

    Args:
      weights: static ``{term: w_k}`` multiplying each term's whole contribution (default 1), so
        that they survive the optimum in ``s_k``.
      init_log_sigma: initial ``s_k`` (0: sigma = 1).
      min_log_sigma, max_log_sigma: optional bounds; the loss uses ``clip(s_k, min, max)`` so a
        bounded sigma cannot run away (the gradient of ``s_k`` is zero beyond a bound).
      check_every: window length of the run-away guard, in steps.
      patience: consecutive rising windows before ``diagnose`` warns.
      rise_tol: rise of the window mean of ``s_k`` that counts as rising.
      min_improvement: relative fall of the window mean of ``L_k`` that counts as falling.
    """
    weights = check_weights(weights, "homoscedastic")
    init_log_sigma = _real(init_log_sigma, "init_log_sigma")
    lo = _real(min_log_sigma, "min_log_sigma", allow_none=True)
    hi = _real(max_log_sigma, "max_log_sigma", allow_none=True)
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"homoscedastic balancer: min_log_sigma ({lo}) must be below max_log_sigma ({hi})")
    check_every = _positive_int(check_every, "check_every")
    patience = _positive_int(patience, "patience")
    rise_tol = _real(rise_tol, "rise_tol", lower=0.0)
    min_improvement = _real(min_improvement, "min_improvement", lower=0.0)
    if min_improvement >= 1:
        raise ValueError(f"homoscedastic balancer: min_improvement must lie in [0, 1), got {min_improvement}")

    def log_sigma(params, objectives):
        """The effective ``s_k``, clipped to the bounds, for every objective."""
        s = params["log_sigma"]
        if set(s) != set(objectives):
            raise ValueError(f"homoscedastic balancer: initialised for terms {sorted(s)}, "
                             f"got terms {sorted(objectives)}")
        return {name: jnp.clip(s[name], lo, hi) if (lo, hi) != (None, None) else s[name]
                for name in objectives}

    def raw(objectives):
        return {name: mean(obj.loss) for name, obj in objectives.items()}

    def init(key, objectives):
        del key
        objectives = check_objectives(objectives, "homoscedastic")
        check_weight_names(weights, objectives, "homoscedastic")
        params = {"log_sigma": {name: jnp.full((), init_log_sigma, jnp.float32) for name in objectives}}
        zeros = {name: jnp.zeros((), jnp.float32) for name in objectives}
        state = HomoscedasticState(
            step=jnp.zeros((), jnp.int32), window_log_sigma=zeros, window_raw=zeros,
            last_log_sigma=zeros, last_raw=zeros,
            strikes={name: jnp.zeros((), jnp.int32) for name in objectives})
        return params, state

    def loss(objectives, params, state):
        del state
        objectives = check_objectives(objectives, "homoscedastic")
        s, L = log_sigma(params, objectives), raw(objectives)
        terms = {k: weights.get(k, 1.0) * (0.5 * jnp.exp(-2.0 * s[k]) * L[k] + s[k]) for k in objectives}
        total = sum(terms.values(), jnp.zeros(()))
        metrics = {**raw_metrics(objectives), "balanced": total}
        metrics.update({f"sigma/{k}": jnp.exp(s[k]) for k in objectives})
        return total, metrics

    def update(objectives, params, state):
        objectives = check_objectives(objectives, "homoscedastic")
        s = jax.lax.stop_gradient(log_sigma(params, objectives))
        L = jax.lax.stop_gradient(raw(objectives))
        step = state.step + 1
        at_check = step % check_every == 0
        # The first window has nothing to compare with.
        has_last = step >= 2 * check_every
        sum_s = {k: state.window_log_sigma[k] + s[k] for k in objectives}
        sum_L = {k: state.window_raw[k] + L[k] for k in objectives}
        mean_s = {k: sum_s[k] / check_every for k in objectives}
        mean_L = {k: sum_L[k] / check_every for k in objectives}
        strikes = {}
        for k in objectives:
            rising = mean_s[k] - state.last_log_sigma[k] > rise_tol
            not_falling = mean_L[k] >= (1.0 - min_improvement) * state.last_raw[k]
            strike = rising & not_falling & has_last
            strikes[k] = jnp.where(at_check, jnp.where(strike, state.strikes[k] + 1, 0), state.strikes[k])

        def at_window_end(new, old):
            return {k: jnp.where(at_check, new[k], old[k]) for k in objectives}

        zero = {k: jnp.zeros_like(sum_s[k]) for k in objectives}
        return HomoscedasticState(
            step=step,
            window_log_sigma=at_window_end(zero, sum_s),
            window_raw=at_window_end(zero, sum_L),
            last_log_sigma=at_window_end(mean_s, state.last_log_sigma),
            last_raw=at_window_end(mean_L, state.last_raw),
            strikes=strikes)

    def diagnose(state):
        warnings = []
        for k in sorted(state.strikes):
            strikes = int(np.asarray(state.strikes[k]))
            s_k = float(np.asarray(state.last_log_sigma[k]))
            L_k = float(np.asarray(state.last_raw[k]))
            if strikes >= patience:
                warnings.append(
                    f"homoscedastic: sigma of term {k!r} is running away: its log sigma rose in "
                    f"{strikes} consecutive windows of {check_every} steps (now sigma = {math.exp(s_k):.3g}) "
                    f"while its raw loss did not fall (now {L_k:.3g}); the term is being weighted away "
                    "instead of solved. Consider max_log_sigma=..., static weights (balancing='sum'), "
                    "or a smaller learning rate.")
            if hi is not None and int(np.asarray(state.step)) >= check_every and s_k >= hi - 1e-6:
                warnings.append(f"homoscedastic: log sigma of term {k!r} sits at max_log_sigma = {hi}: "
                                "the bound is holding back a run-away.")
        return warnings

    return Balancer(init, loss, update, diagnose)
