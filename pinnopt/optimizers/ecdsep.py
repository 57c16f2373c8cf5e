"""ECDSep: energy-conserving descent with a separable Hamiltonian (De Luca, Gatti, Silverstein 2023).

"Improving Energy Conserving Descent for Machine Learning: Theory and Practice",
arXiv:2306.00352. The loss F enters through V = (F - F_0)^eta and the conserved energy is
E = V (s + |p|^2); with H = log E the equations of motion separate into a kick that depends
only on the position and a drift that depends only on the momentum. One call of
``update(grads, state, params, *, value)`` with dt the learning rate and
F = value + weight_decay/2 |params|^2:

- nothing, when V <= eps2 (or V is not a number: F < F_0 with a fractional eta);
- otherwise::

      p <- p sqrt((E/V - s) / |p|^2)                (if consistent_energy; puts p on the shell)
      p <- p - dt eta (grad + weight_decay params) / (F - F_0)
      params <- params + 2 dt p / (s + |p|^2)
      p <- |p| (p/|p| + nu z) / |p/|p| + nu z|,     z ~ N(0, 1)   (a small random rotation)

The first call sets E = V_0 (s + delta_energy) and p = -sqrt(delta_energy) grad/|grad|.
``delta_energy=None`` takes the reference's default: 0 when s = 1, else 1 (with s = 0 a zero
initial momentum would stay on a zero-energy shell).

Choices where the reference (the authors' PyTorch ``ECDSep``) differs, each tested: a zero
gradient or momentum never divides by zero (no rescaling, no rotation of a zero p), and the
initial direction uses the same gradient as the kick (with weight decay included).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax
from jax import lax

from pinnopt.optimizers.bbi import _safe_div, _sq_norm


class ECDSepState(NamedTuple):
    """State of ``ecdsep``.

    momentum: p, same structure as the parameters.
    energy: E = V_0 (s + delta_energy), fixed by the first active call.
    p2: |p|^2 after the last step (the rotation keeps it).
    iteration: steps taken (0 until the first active call).
    key: PRNG key of the rotations (step k uses fold_in(key, k)).
    """

    momentum: Any
    energy: jax.Array
    p2: jax.Array
    iteration: jax.Array
    key: jax.Array


def _rotate(key, momentum, norm, nu):
    """|p| (p/|p| + nu z)/|p/|p| + nu z|: a random rotation of size ~nu that keeps |p|."""
    leaves, treedef = jax.tree_util.tree_flatten(momentum)
    keys = jax.random.split(key, len(leaves))
    unit = _safe_div(1.0, norm)
    moved = [unit * p + nu * jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)]
    scale = _safe_div(norm, jnp.sqrt(_sq_norm(moved)))
    # A zero momentum has no direction to rotate: it stays zero.
    return jax.tree_util.tree_unflatten(
        treedef, [jnp.where(norm > 0, scale * m, p).astype(p.dtype) for m, p in zip(moved, leaves)])


def ecdsep(
    learning_rate: Union[float, optax.Schedule],
    *,
    eta: float = 1.0,
    f0: float = 0.0,
    delta_energy: Optional[float] = None,
    nu: float = 1e-5,
    s: float = 1.0,
    weight_decay: float = 0.0,
    consistent_energy: bool = True,
    eps1: float = 1e-10,
    eps2: float = 1e-40,
    seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Energy-conserving descent with a separable Hamiltonian and chaotic rotations (ECDSep).

    Args:
      learning_rate: dt (a float, or a schedule of the number of steps taken).
      eta: concentration exponent, V = (F - F_0)^eta; must be >= 1.
      f0: expected minimum F_0 of the loss.
      delta_energy: initial |p|^2 (None: 0 if s == 1, else 1, as in the reference).
      nu: size of the random rotation of the momentum at every step (0: none).
      s: the regularisation switch in E = V (s + |p|^2), >= 0.
      weight_decay: adds weight_decay/2 |params|^2 to the loss (needs ``params``).
      consistent_energy: rescale p onto the energy shell before each step.
      eps1: tolerance under which p is not rescaled.
      eps2: V at or below which nothing moves.
      seed: seed of the rotations.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update`` needs the keyword ``value=``
      and ignores other extra arguments (``grad=``, ``value_fn=``).
    """
    if not callable(learning_rate) and not learning_rate > 0:
        raise ValueError(f"ecdsep: learning_rate must be positive, got {learning_rate}")
    if not eta >= 1:
        raise ValueError(f"ecdsep: eta must be >= 1, got {eta}")
    if not nu >= 0:
        raise ValueError(f"ecdsep: nu must be >= 0, got {nu}")
    if not s >= 0:
        raise ValueError(f"ecdsep: s must be >= 0, got {s}")
    if not weight_decay >= 0:
        raise ValueError(f"ecdsep: weight_decay must be >= 0, got {weight_decay}")
    if delta_energy is None:
        delta_energy = 0.0 if s == 1 else 1.0
    if not delta_energy >= 0:
        raise ValueError(f"ecdsep: delta_energy must be >= 0, got {delta_energy}")
    if s == 0 and delta_energy == 0:
        raise ValueError("ecdsep: s = 0 needs delta_energy > 0 (a zero momentum would stay zero)")

    def init_fn(params):
        leaves = jax.tree_util.tree_leaves(params)
        dtype = jnp.result_type(*leaves) if leaves else jnp.float32
        return ECDSepState(
            momentum=jax.tree_util.tree_map(jnp.zeros_like, params),
            energy=jnp.zeros((), dtype), p2=jnp.zeros((), dtype),
            iteration=jnp.zeros((), jnp.int32), key=jax.random.PRNGKey(seed),
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        if value is None:
            raise ValueError("ecdsep: update needs the loss value, call update(grads, state, params, value=loss)")
        if weight_decay and params is None:
            raise ValueError("ecdsep: weight_decay needs params, call update(grads, state, params, value=loss)")
        dtype = state.energy.dtype
        grads = updates
        shifted = jnp.asarray(value, dtype) - f0
        if weight_decay:
            shifted = shifted + 0.5 * weight_decay * _sq_norm(params)
            grads = jax.tree_util.tree_map(lambda g, q: g + weight_decay * q, grads, params)
        v = shifted**eta
        active = v > eps2  # False for NaN too (F < F_0 with a fractional eta)

        def skip():
            return jax.tree_util.tree_map(jnp.zeros_like, updates), state

        def step():
            fresh = state.iteration == 0
            energy = jnp.where(fresh, v * (s + delta_energy), state.energy)
            p2 = jnp.where(fresh, jnp.asarray(delta_energy, dtype), state.p2)
            start = _safe_div(-jnp.sqrt(jnp.asarray(delta_energy, dtype)), jnp.sqrt(_sq_norm(grads)))
            momentum = lax.cond(fresh, lambda: jax.tree_util.tree_map(lambda g: start * g, grads),
                                lambda: state.momentum)
            if consistent_energy:
                target = energy / v - s
                keep = (jnp.abs(target - p2) < eps1) | (target < 0) | (p2 == 0)
                scale = jnp.where(keep, 1.0, jnp.sqrt(jnp.where(keep, 1.0, target / jnp.where(p2 == 0, 1, p2))))
            else:
                scale = 1.0
            dt = learning_rate(state.iteration) if callable(learning_rate) else learning_rate
            kick = dt * eta / shifted
            momentum = jax.tree_util.tree_map(lambda p, g: (scale * p - kick * g).astype(p.dtype), momentum, grads)
            new_p2 = _sq_norm(momentum)
            drift = 2 * dt / (s + new_p2)
            new_updates = jax.tree_util.tree_map(lambda p: (drift * p).astype(p.dtype), momentum)
            if nu:
                momentum = _rotate(jax.random.fold_in(state.key, state.iteration), momentum, jnp.sqrt(new_p2), nu)
            new_state = ECDSepState(momentum=momentum, energy=energy, p2=new_p2.astype(dtype),
                                    iteration=state.iteration + 1, key=state.key)
            return new_updates, new_state

        return lax.cond(active, step, skip)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["ecdsep", "ECDSepState"]
