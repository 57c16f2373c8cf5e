"""Per-term weights from the model's gradients: gradient-norm and NTK-trace weighting.

Both keep one weight ``lambda_k`` per objective and the loss ``sum_k lambda_k mean_i l_k(x_i)``
with the weights outside the gradient. Every ``update_every`` steps they measure a statistic
``s_k`` of each objective's gradient with respect to the *model* parameters theta and move
the weights towards ``lambda_hat_k = sum_j s_j / s_k`` (every term then pulls on theta with
the same strength):

    lambda_k <- alpha lambda_k + (1 - alpha) lambda_hat_k.

- ``grad_norm`` (Wang, Teng & Perdikaris 2021, "Understanding and mitigating gradient
  pathologies in physics-informed neural networks", SIAM J. Sci. Comput.; in the form of Wang
  et al. 2023, "An expert's guide to training physics-informed neural networks", and their
  jaxpi): ``s_k = ||grad_theta L_k||_2``, ``L_k = mean_i l_k(x_i)``.
- ``ntk`` (Wang, Yu & Perdikaris 2022, "When and why PINNs fail to train: a neural tangent
  kernel perspective", J. Comput. Phys.): ``s_k = tr(K_k) / N_k = mean_i ||d r_{k,i} / d theta||^2``,
  the mean of the diagonal of term k's NTK block.

The statistics come from the step (``pinnopt.methods.ModelGrads``: the ``update`` takes
``model_grads=``); on the steps in between a ``lax.cond`` skips them, so those steps cost what
a ``sum`` step costs. Weights, the last statistics and the step count live in the state.
"""
from __future__ import annotations

import math
import numbers
from typing import Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp

from pinnopt.balancing.base import (Balancer, check_objectives, check_weight_names, check_weights, mean,
                                    raw_metrics)
from pinnopt.methods import flat_residuals

# jaxpi's guard: lambda_hat_k = S / (s_k + FLOOR S) stays below 1 / FLOOR when a term's
# gradient vanishes (a term that does not depend on theta, or one fitted exactly).
FLOOR = 1e-5
REDUCTIONS = ("sum", "mean")
STAT_NAMES = {"grad_norm": "norm", "ntk": "trace"}  # the metric of s_k: grad_norm/norm/<term>, ntk/trace/<term>


class AdaptiveState(NamedTuple):
    step: jax.Array  # int32, number of updates so far (the weights are recomputed when step % K == 0)
    weights: dict  # {term: lambda_k}, float32 scalars
    stats: dict  # {term: s_k}, the statistic of the last recomputation (0 before the first)


def target_weights(stats: Mapping[str, jax.Array], reduction: str = "sum") -> dict:
    """``lambda_hat_k = S / (s_k + FLOOR S)`` with ``S = sum_j s_j`` (``"sum"``) or its mean (``"mean"``)."""
    total = sum(stats.values(), jnp.zeros(()))
    if reduction == "mean":
        total = total / max(len(stats), 1)
    return {k: total / (s + FLOOR * total) for k, s in stats.items()}


def moving_average(weights: Mapping, target: Mapping, alpha: float) -> dict:
    """``alpha lambda + (1 - alpha) lambda_hat`` per term."""
    return {k: alpha * weights[k] + (1.0 - alpha) * target[k] for k in weights}


def _check_options(balancer: str, alpha, update_every, reduction) -> tuple[float, int]:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) \
            or not 0 <= alpha < 1:
        raise ValueError(f"{balancer} balancer: alpha must lie in [0, 1), got {alpha!r}")
    if isinstance(update_every, bool) or not isinstance(update_every, numbers.Integral) or update_every < 1:
        raise ValueError(f"{balancer} balancer: update_every must be an integer >= 1, got {update_every!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{balancer} balancer: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return float(alpha), int(update_every)


def _adaptive(balancer: str, measure, alpha, update_every, weights, reduction) -> Balancer:
    """The shared machinery: ``measure(model_grads, state) -> {term: s_k}`` decides the statistic."""
    alpha, update_every = _check_options(balancer, alpha, update_every, reduction)
    initial = check_weights(weights, balancer)
    for name, w in initial.items():
        if w <= 0:
            raise ValueError(f"{balancer} balancer: weights[{name!r}] (an initial weight) must be > 0, got {w!r}")

    def check(objectives):
        objectives = check_objectives(objectives, balancer)
        check_weight_names(initial, objectives, balancer)
        return objectives

    def init(key, objectives):
        del key
        objectives = check(objectives)
        w = {k: jnp.asarray(initial.get(k, 1.0), jnp.float32) for k in objectives}
        return {}, AdaptiveState(jnp.zeros((), jnp.int32), w, {k: jnp.zeros((), jnp.float32) for k in objectives})

    def current(objectives, state) -> dict:
        if set(state.weights) != set(objectives):
            raise ValueError(f"{balancer} balancer: initialised for terms {sorted(state.weights)}, "
                             f"got terms {sorted(objectives)}")
        return {k: jax.lax.stop_gradient(w) for k, w in state.weights.items()}

    def loss(objectives, params, state):
        del params
        objectives = check(objectives)
        w = current(objectives, state)
        total = sum((w[k] * mean(o.loss) for k, o in objectives.items()), jnp.zeros(()))
        metrics = {**raw_metrics(objectives), "balanced": total}
        metrics.update({f"{balancer}/weight/{k}": w[k] for k in objectives})
        metrics.update({f"{balancer}/{STAT_NAMES[balancer]}/{k}": s for k, s in state.stats.items()})
        return total, metrics

    def update(objectives, params, state, *, model_grads=None):
        del params
        objectives = check(objectives)
        if model_grads is None:
            raise ValueError(f"{balancer} balancer: update needs model_grads= (the per-term gradients with respect "
                             "to the model parameters), which the training step passes (pinnopt.solve, make_step)")

        def recompute(state):
            stats = {k: jnp.asarray(s, jnp.float32) for k, s in measure(model_grads, state).items()}
            new = moving_average(state.weights, target_weights(stats, reduction), alpha)
            # All statistics zero (nothing depends on theta): S / (0 + FLOOR S) is 0/0, so keep the weights.
            alive = sum(stats.values(), jnp.zeros(())) > 0
            new = {k: jnp.where(alive, new[k], state.weights[k]).astype(jnp.float32) for k in new}
            return new, stats

        def keep(state):
            return dict(state.weights), dict(state.stats)

        due = state.step % update_every == 0
        w, stats = jax.lax.cond(due, recompute, keep, state)
        return AdaptiveState(state.step + 1, w, stats)

    def residuals(objectives, params, state):
        """R with sum(R^2) = loss: sqrt(lambda_k / N_k) r_k for each term's residual r_k (weights fixed in a step)."""
        del params
        objectives = check(objectives)
        w = current(objectives, state)
        parts = []
        for name, obj in objectives.items():
            if obj.residual is None:
                raise ValueError(f"{balancer} balancer: term {name!r} carries no residual, so a least-squares "
                                 "optimizer cannot use it: build it with Objective.of_residual(r)")
            r = jnp.asarray(obj.residual)
            parts.append(jnp.sqrt(w[name] / max(r.size, 1)).astype(r.dtype) * r)
        return flat_residuals(parts)

    return Balancer(init, loss, update, residuals=residuals)


def grad_norm(*, alpha: float = 0.9, update_every: int = 100, weights: Optional[Mapping[str, float]] = None,
              reduction: str = "sum") -> Balancer:
    """Gradient-norm weighting: ``loss = sum_k lambda_k L_k``, ``L_k = mean_i l_k(x_i)``, with

        lambda_hat_k = S / ||grad_theta L_k||,   S = sum_j ||grad_theta L_j||,
        lambda_k <- alpha lambda_k + (1 - alpha) lambda_hat_k   every ``update_every`` steps

    (Wang, Teng & Perdikaris 2021; the sum form of Wang et al. 2023, "An expert's guide to
    training PINNs", eq. for lambda_hat). After the update every weighted term has the same
    gradient norm ``S``: no term's gradient drowns the others (the "gradient pathology").
    theta are the model's parameters only; the weights are state, outside the gradient
    (``stop_gradient``). The norms are those of the raw term means at the step's parameters
    and batch, one reverse pass per term, on the steps where ``step % update_every == 0``
    (step 0 included) and skipped by ``lax.cond`` on the others.

    Args:
      alpha: the moving average's memory, in [0, 1) (0.9 as jaxpi; 0 jumps to lambda_hat).
      update_every: K >= 1, steps between recomputations. jaxpi recomputes every 1000 of
        2e5 steps; 100 suits runs of 1e3-1e4 steps.
      weights: initial ``{term: lambda_k > 0}``; terms not named start at 1.
      reduction: ``"sum"`` (default, the paper's S) or ``"mean"``: S / K, jaxpi's code, which
        gives weights K times smaller (same directions; Adam barely notices, a constraint
        method's balance with the objectives does).

    Guards (as jaxpi): ``lambda_hat_k = S / (s_k + 1e-5 S)``, so a term whose gradient
    vanishes gets at most 1e5; when every gradient is zero the weights stay.

    Metrics: ``grad_norm/weight/<term>`` and ``grad_norm/norm/<term>`` (the norms of the
    last recomputation). Least-squares form: ``sqrt(lambda_k / N_k) r_k`` for terms built
    with ``Objective.of_residual`` (the weights are fixed within a step). Objectives only:
    constraints go to the constraint method (penalty, al), which this composes with.
    """

    def measure(model_grads, state):
        del state
        return model_grads.norms()

    return _adaptive("grad_norm", measure, alpha, update_every, weights, reduction)


def ntk(*, alpha: float = 0.9, update_every: int = 100, weights: Optional[Mapping[str, float]] = None,
        max_points: Optional[int] = 16, reduction: str = "sum") -> Balancer:
    """NTK-trace weighting: ``loss = sum_k lambda_k L_k`` with

        T_k = tr(K_k) / N_k = mean_i ||d r_{k,i} / d theta||^2,
        lambda_hat_k = sum_j T_j / T_k,
        lambda_k <- alpha lambda_k + (1 - alpha) lambda_hat_k   every ``update_every`` steps,

    (Wang, Yu & Perdikaris 2022, Algorithm 1). ``K_k = J_k J_k^T`` is term k's block of the
    neural tangent kernel, ``J_k`` the Jacobian of its residuals r_k (N_k,) w.r.t. the model
    parameters theta; under gradient flow its eigenvalues are the rates at which the term's
    residuals decay, so equal weighted traces make every term converge at a comparable rate.

    Normalisation: the paper writes the traces tr(K_k); jaxpi (the authors' code) uses their
    mean over points, ``tr(K_k) / N_k``. This is the mean: each term's loss is a mean over its
    points, so the mean diagonal is the per-point rate of that loss, independent of how many
    points are drawn; the two agree when every term has the same number of points.

    ``r`` is the term's ``residual`` (``Objective.of_residual``); a term that carries none
    uses ``sqrt(l)``, whose squared gradient equals ``||grad r||^2`` for ``l = r^2`` (see
    ``pinnopt.methods.ModelGrads.point_sq_norms``). Each point costs one reverse pass through
    the whole batch, so ``T_k`` is the mean over at most ``max_points`` evenly spread points
    of the term (``None``: all, exact), the subset shifting by one point per recomputation
    (a fixed collocation set is then covered over successive recomputations).

    Args:
      alpha, update_every, weights, reduction: as in ``grad_norm`` (same moving average,
        interval, initial weights, guards and sum/mean choice of S).
      max_points: points per term whose Jacobian rows are computed (an integer >= 1, or None).
        A row costs about one gradient of the whole loss (measured on ``convection``'s
        defaults: 2 terms x 16 points ~ 28 gradients), so the default 16 with
        ``update_every=100`` adds roughly a quarter to a run; the spread of a 16-point mean
        there was 5% (pde) and 0.4% (ic) at initialisation, before the moving average.

    Metrics: ``ntk/weight/<term>`` and ``ntk/trace/<term>`` (the T_k of the last
    recomputation). Least-squares form as ``grad_norm``.
    """
    if max_points is not None and (isinstance(max_points, bool) or not isinstance(max_points, numbers.Integral)
                                   or max_points < 1):
        raise ValueError(f"ntk balancer: max_points must be an integer >= 1 or None, got {max_points!r}")

    def measure(model_grads, state):
        offset = state.step // update_every  # the number of recomputations so far
        return {k: jnp.mean(sq) for k, sq in model_grads.point_sq_norms(max_points, offset).items()}

    return _adaptive("ntk", measure, alpha, update_every, weights, reduction)
