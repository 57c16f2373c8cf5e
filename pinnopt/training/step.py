"""The pure training step and the held-out check, both functions of explicit state only.

One training step (all inside ``lax.scan``)::

    key, k = split(state.key);  batch = problem.sample(k, step)
    L(params) = balancer.loss(objectives, params.balancer, .)
              + method.loss(constraints, params.constraints, .)
    params <- params + optimizer.update(grad L, value=L, value_fn=L)
    balancer / constraint-method state <- their update (multipliers, penalty schedule, ...)
        (a balancer whose update names ``model_grads`` also gets the per-term gradient
        statistics w.r.t. the model parameters, ``pinnopt.methods.ModelGrads``, computed lazily)

Every piece of changing state lives in ``TrainState`` and goes through the compiled step as an
argument, so a new multiplier or penalty value always reaches the compiled code.
"""
from __future__ import annotations

import inspect
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from pinnopt import constraints as constraints_lib
from pinnopt import sharding as sharding_lib
from pinnopt.methods import ModelGrads, flat_residuals, no_least_squares_form
from pinnopt.terms import split_terms
from pinnopt.training.state import TrainState


def _tree_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _tree_not_nan(tree) -> jax.Array:
    leaves = [~jnp.any(jnp.isnan(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _takes_keyword(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _select(pred, new, old):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


def make_loss_fn(problem, balancer, method, mesh=None) -> Callable:
    """``loss_fn(params, batch, balancer_state, constraint_state) -> (loss, (objectives, constraints, metrics))``.

    With a ``mesh``, point-wise terms are split over its devices like the batch (see ``pinnopt.sharding``).
    """

    def loss_fn(params, batch, balancer_state, constraint_state):
        terms = sharding_lib.shard_points(problem.terms(params["model"], batch), mesh, "term", uneven="free")
        objectives, constraints = split_terms(terms)
        obj_loss, obj_metrics = balancer.loss(objectives, params["balancer"], balancer_state)
        con_loss, con_metrics = method.loss(constraints, params["constraints"], constraint_state)
        metrics = {**obj_metrics, **con_metrics, "objective": obj_loss, "constraint_loss": con_loss}
        return obj_loss + con_loss, (objectives, constraints, metrics)

    return loss_fn


def make_residual_fn(problem, balancer, method) -> Callable:
    """``residual_fn(params, batch, balancer_state, constraint_state) -> R (M,)`` with loss = sum(R^2) + a constant.

    The concatenated least-squares residuals of the balancer and the constraint method, for the
    optimizers that work on them; a part without such a form raises a ``ValueError`` that says
    so (when, and only when, an optimizer asks for it).
    """
    for_objectives = balancer.residuals or no_least_squares_form(
        "this balancer (sum, grad_norm, ntk and rba have one)")
    for_constraints = method.residuals or no_least_squares_form("this constraint method")

    def residual_fn(params, batch, balancer_state, constraint_state):
        objectives, constraints = split_terms(problem.terms(params["model"], batch))
        r_obj = for_objectives(objectives, params["balancer"], balancer_state)
        r_con = for_constraints(constraints, params["constraints"], constraint_state)
        dtype = jnp.result_type(r_obj, r_con)
        return flat_residuals([r_obj.astype(dtype), r_con.astype(dtype)])

    return residual_fn


COLLOCATION_SALT = 0x434F4C4C  # the key stream of collocation sets that are kept for several steps


def sample_batch(problem, state: TrainState, resample_every: int, collocation_key: jax.Array):
    """(next training key, batch) under the collocation policy.

    ``resample_every`` 1: fresh points every step, from the training key stream. K > 1: the set
    drawn at step k K (from ``collocation_key`` and k) is kept for K steps. 0: one set, drawn
    once from ``collocation_key``, for the whole run (full batch: what a line search needs).
    """
    key, k_batch = jax.random.split(state.key)
    if resample_every == 1:
        return key, problem.sample(k_batch, state.step)
    epoch = jnp.zeros_like(state.step) if resample_every == 0 else state.step // resample_every
    return key, problem.sample(jax.random.fold_in(collocation_key, epoch), epoch * max(resample_every, 1))


def make_step(problem, tx, balancer, method, mesh=None, *, phase: int = 0, resample_every: int = 1,
              collocation_key: jax.Array = None) -> Callable:
    """The pure training step ``state -> (state, metrics)`` of optimizer phase ``phase`` (``tx``).

    With a ``mesh`` the sampled batch is split over its devices along the points (the
    compiler inserts the all-reduces of the means and gradients); without one nothing changes.
    ``resample_every`` and ``collocation_key`` set the collocation policy (``sample_batch``).
    """
    loss_fn = make_loss_fn(problem, balancer, method, mesh)
    residuals = make_residual_fn(problem, balancer, method)
    # Only an optimizer that names residual_fn in its update gets it: optax's line search hands
    # every extra argument on to value_fn and refuses the ones value_fn does not take.
    wants_residuals = _takes_keyword(tx.update, "residual_fn")
    # Only a balancer that names model_grads gets it; building it costs nothing until called.
    wants_model_grads = _takes_keyword(balancer.update, "model_grads")
    if collocation_key is None:
        collocation_key = jax.random.PRNGKey(COLLOCATION_SALT)

    def step(state: TrainState, _=None):
        key, batch = sample_batch(problem, state, resample_every, collocation_key)
        batch = sharding_lib.shard_points(batch, mesh)
        (loss, (objectives, constraints, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, state.balancer_state, state.constraint_state)

        def value_fn(p):
            return loss_fn(p, batch, state.balancer_state, state.constraint_state)[0]

        def residual_fn(p):
            return residuals(p, batch, state.balancer_state, state.constraint_state)

        extra = {"residual_fn": residual_fn} if wants_residuals else {}
        updates, phase_state = tx.update(grads, state.opt_state[phase], state.params,
                                         value=loss, grad=grads, value_fn=value_fn, **extra)
        opt_state = state.opt_state[:phase] + (phase_state,) + state.opt_state[phase + 1:]
        params = optax.apply_updates(state.params, updates)
        if wants_model_grads:
            def objectives_fn(theta):
                terms = sharding_lib.shard_points(problem.terms(theta, batch), mesh, "term", uneven="free")
                return split_terms(terms)[0]

            balancer_extra = {"model_grads": ModelGrads(objectives_fn, state.params["model"])}
        else:
            balancer_extra = {}
        balancer_state = balancer.update(objectives, state.params["balancer"], state.balancer_state,
                                         **balancer_extra)
        constraint_state = method.update(constraints, state.params["constraints"], state.constraint_state)

        # Non-finite guard: skip the whole update (the key and step still advance, so a
        # stochastic failure gets a fresh batch), and count the skip.
        # Only this phase's optimizer state: another phase's untouched initial state may hold
        # +inf sentinels (an L-BFGS line search's "no value yet").
        ok = jnp.isfinite(loss) & _tree_finite(params) & _tree_finite(phase_state)
        # Method states may hold +inf sentinels ("no reference yet"), so only NaN counts there.
        ok = ok & _tree_not_nan(balancer_state) & _tree_not_nan(constraint_state)
        new = TrainState(
            params=_select(ok, params, state.params),
            opt_state=_select(ok, opt_state, state.opt_state),
            balancer_state=_select(ok, balancer_state, state.balancer_state),
            constraint_state=_select(ok, constraint_state, state.constraint_state),
            key=key,
            step=state.step + 1,
            nonfinite_run=jnp.where(ok, 0, state.nonfinite_run + 1),
            nonfinite_total=state.nonfinite_total + (~ok).astype(jnp.int32),
            phase=state.phase,
            phase_start=state.phase_start,
        )
        extra = {"grad_norm": optax.tree.norm(grads), "update_norm": optax.tree.norm(updates),
                 "phase": state.phase}
        if hasattr(problem, "step_metrics"):  # cheap problem scalars (e.g. physical parameters)
            extra.update({f"param/{k}": v for k, v in problem.step_metrics(state.params["model"]).items()})
        return new, {"loss": loss, **metrics, **extra, "nonfinite": (~ok).astype(jnp.int32)}

    return step


def make_heldout(problem, mesh=None) -> Callable:
    """``heldout(params, key, step) -> metrics`` on a freshly sampled batch (never a training one).

    ``heldout_violation/<c>``: the reported violation of every constraint (as in training);
    ``heldout_max_violation/<c>``: its largest violation at any point, what a certificate
    compares with the constraint's ``tol``; ``heldout_raw/<o>``: every objective's mean;
    ``eval/<k>``: the problem's own ``evaluate``.
    """

    def heldout(params, key, step):
        batch = sharding_lib.shard_points(problem.sample(key, step), mesh)
        terms = sharding_lib.shard_points(problem.terms(params["model"], batch), mesh, "term", uneven="free")
        objectives, constraints = split_terms(terms)
        out = {f"heldout_violation/{n}": constraints_lib.violation(c) for n, c in constraints.items()}
        out.update({f"heldout_max_violation/{n}": constraints_lib.max_violation(c) for n, c in constraints.items()})
        out.update({f"heldout_raw/{n}": jnp.mean(o.loss) for n, o in objectives.items()})
        if hasattr(problem, "evaluate"):
            out.update({f"eval/{k}": v for k, v in problem.evaluate(params["model"]).items()})
        return out

    return heldout
