"""BBI: energy-conserving descent with random bounces (De Luca & Silverstein, ICML 2022).

"Born-Infeld (BI) for AI: Energy-Conserving Descent (ECD) for Optimization", arXiv:2201.11137.
The parameters are a particle with momentum ``pi`` moving in the potential V = loss - v0 with
the Born-Infeld Hamiltonian H = V sqrt(1 + |pi|^2 / V) = sqrt(V (V + |pi|^2)), conserved at
E = V_0 + delta_energy. Kinetic energy piles up as V falls, so the particle does not stop in
the first basin; random "bounces" (a new direction for pi, same |pi|) make the motion chaotic
so that it explores, and the measure it spends time in concentrates where V is small.

One call of ``update(grads, state, params, *, value)``, with V = value - v0 and dt the
learning rate, does exactly one of:

- nothing, when V <= eps2 (the target was reached; the parameters stay put);
- a bounce, when one is due: pi <- |pi| u with u uniform on the unit sphere; no move.
  A *fixed* bounce is due every ``threshold0`` regular steps, ``n_fixed_bounces`` times in
  all; a *progress* bounce after ``threshold1`` regular steps without a new minimum of V;
- a regular step::

      pi <- pi * sqrt((E^2/V - V) / |pi|^2)        (if consistent_energy; puts pi on H = E)
      pi <- pi - dt/2 (V/E + E/V) grad
      params <- params + dt (V/E) pi

The first call sets E = V_0 + delta_energy and pi = -sqrt(E^2/V_0 - V_0) grad/|grad|.

Choices where the reference (the authors' PyTorch ``BBI``) has a quirk, each tested:

- initial direction: minus the gradient of the whole parameter pytree, normalised once
  (``per_leaf_init=True`` normalises each leaf separately, as the reference does; the norm
  of pi is then fixed by the first rescaling either way when ``consistent_energy``);
- ``n_fixed_bounces`` is the exact number of fixed bounces (the reference bounces once
  even when asked for 0);
- a zero gradient or zero momentum never divides by zero: a zero gradient leaf starts with
  zero momentum and a zero momentum is not rescaled (the reference returns NaN);
- ``energy_guard=True`` (off by default, as in the reference) handles V > E, a point the
  exact dynamics can never reach but a finite step can overshoot to. The reference keeps
  the unrescaled pi and steps on with V/E > 1, which can run away to inf/NaN. The guard
  treats the level set V = E as a wall: the call that finds V > E undoes the last move
  (params -= dt (V/E) pi of the previous step, a point with V <= E) and gives pi a new
  random direction with the same norm (a reflection, counted in ``reflections``). Every
  point the run then keeps has V <= E, so it stays finite whatever the learning rate;
- a bounce draws an isotropic Gaussian direction (the reference draws from a cube, which
  is not uniform on the sphere).

Everything that changes lives in ``BBIState``; thresholds and flags are static. The update is
branch-free arithmetic (XLA fuses it into a couple of passes over the parameters) plus the
random draw, which on a CPU sits in a ``lax.cond`` (drawn only when a bounce is due) and on an
accelerator is drawn every call and selected (a branch there costs a device-to-host sync); see
``draw_always``. It jits once, runs in ``lax.scan`` and vmaps over independent runs (a vmapped
run set draws different bounces only if each run's ``state.key`` differs; ``pinnopt.experiments.vmapped``
reseeds them). Under ``vmap`` a cond becomes a select evaluated at every call, so vmapped runs
pay for one direction draw per step (noticeable in hundreds of dimensions).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

_INT32_MAX = 2**31 - 1


_VALUES = ("energy", "v_init", "v_min", "kinetic", "last_drift")
_COUNTS = ("iteration", "count_fixed", "count_progress", "fixed_bounces", "bounces", "reflections")


class BBIState(NamedTuple):
    """State of ``bbi``: the momentum, two small vectors of scalars, and a PRNG key.

    The scalars are packed (``values`` in the parameters' dtype, ``counts`` in int32) so that a
    step writes them with one fused operation each instead of eleven: on a small network that is
    the difference between a step close to SGD with momentum and one 1.5x slower. Each scalar is
    read by name:

    momentum: pi, all parameter leaves raveled into one vector (``jax.flatten_util.ravel_pytree``
      order, their common dtype).
    energy: E = V_0 + delta_energy, fixed by the first active call.
    v_init: V_0, the first V.
    v_min: lowest V seen on a regular step (drives the progress bounces).
    kinetic: |pi|^2 just after the last rescaling (a diagnostic: sqrt(V (V + kinetic)) = E).
    last_drift: dt V/E of the last regular step (what the guard needs to undo it; 0 without guard).
    iteration: regular steps taken (0 until the first active call).
    count_fixed: regular steps since the last fixed bounce.
    count_progress: regular steps since the last new minimum or bounce.
    fixed_bounces: fixed bounces done so far.
    bounces: bounces done so far (fixed and progress).
    reflections: moves undone by ``energy_guard`` (V > E).
    key: PRNG key of the new directions (the k-th bounce or reflection uses fold_in(key, k)).
    """

    momentum: jax.Array
    values: jax.Array
    counts: jax.Array
    key: jax.Array

    energy = property(lambda self: self.values[..., 0])
    v_init = property(lambda self: self.values[..., 1])
    v_min = property(lambda self: self.values[..., 2])
    kinetic = property(lambda self: self.values[..., 3])
    last_drift = property(lambda self: self.values[..., 4])
    iteration = property(lambda self: self.counts[..., 0])
    count_fixed = property(lambda self: self.counts[..., 1])
    count_progress = property(lambda self: self.counts[..., 2])
    fixed_bounces = property(lambda self: self.counts[..., 3])
    bounces = property(lambda self: self.counts[..., 4])
    reflections = property(lambda self: self.counts[..., 5])


def _sq_norm(tree) -> jax.Array:
    """|tree|^2 summed over all leaves."""
    return sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree))


def _safe_div(num, den):
    """num / den, and 0 where den == 0 (a zero vector has no direction)."""
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), 0)


def _squared_norms(a, b):
    """(|a|^2, |b|^2) of two flat vectors in one pass (a two-operand reduction)."""
    return lax.reduce((a * a, b * b), (jnp.zeros((), a.dtype), jnp.zeros((), b.dtype)),
                      lambda x, y: (x[0] + y[0], x[1] + y[1]), (0,))


def _start(momentum, grads, v, energy, leaf_sizes):
    """(s0, |pi_0|^2, |pi|^2) for flat vectors: pi_0 = s0 * g = -sqrt(E^2/V_0 - V_0) g/|g| starts a
    run (g the whole gradient, or each leaf on its own when ``leaf_sizes`` is given; a zero g
    gives pi_0 = 0), and |pi|^2 is the current momentum's. One two-operand reduction."""
    size = jnp.sqrt(jnp.maximum(energy**2 / v - v, 0))
    g2, m2 = _squared_norms(grads, momentum)
    if leaf_sizes is None:
        return -size * _safe_div(1.0, jnp.sqrt(g2)), jnp.where(g2 > 0, size**2, 0), m2
    bounds = np.cumsum([0] + list(leaf_sizes))
    g2s = jnp.stack([jnp.sum(jnp.square(grads[a:b])) for a, b in zip(bounds[:-1], bounds[1:])])
    s0 = jnp.repeat(-size * _safe_div(1.0, jnp.sqrt(g2s)), np.asarray(leaf_sizes), total_repeat_length=int(bounds[-1]))
    return s0, size**2 * jnp.sum(g2s > 0), m2


def energy_rescaling(p2, v, energy, eps1):
    """The factor that puts |pi|^2 = p2 on the shell V (V + |pi|^2) = E^2.

    1 where that is impossible (E^2/V - V < 0), unnecessary (already within eps1) or
    meaningless (pi = 0); otherwise sqrt((E^2/V - V) / p2).
    """
    target = energy**2 / v - v
    keep = (jnp.abs(p2 - target) < eps1) | (target < 0) | (p2 == 0)
    return jnp.where(keep, 1.0, jnp.sqrt(jnp.where(keep, 1.0, target / jnp.where(p2 == 0, 1, p2))))


def random_direction(key, tree, norm):
    """A pytree (or array) shaped like ``tree``, isotropic in direction, with total norm ``norm``."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    z = [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
    scale = _safe_div(norm, jnp.sqrt(_sq_norm(z)))
    return jax.tree_util.tree_unflatten(treedef, [(scale * x).astype(x.dtype) for x in z])


def _threshold(name: str, value) -> Optional[int]:
    """A positive integer threshold, or None (never) for None and values beyond int32."""
    if value is None:
        return None
    if isinstance(value, bool) or not float(value).is_integer() or value < 1:
        raise ValueError(f"bbi: {name} must be a positive integer or None, got {value!r}")
    return None if value >= _INT32_MAX else int(value)


def bbi(
    learning_rate: Union[float, optax.Schedule],
    *,
    v0: float = 0.0,
    delta_energy: float = 0.0,
    threshold0: Optional[int] = 1000,
    threshold1: Optional[int] = 3000,
    n_fixed_bounces: int = 1,
    consistent_energy: bool = True,
    eps1: float = 1e-10,
    eps2: float = 1e-40,
    per_leaf_init: bool = False,
    energy_guard: bool = False,
    draw_always: Optional[bool] = None,
    seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Born-Infeld energy-conserving descent with random bounces (BBI).

    Args:
      learning_rate: dt (a float, or a schedule of the number of regular steps taken).
      v0: expected minimum of the loss (Delta V in the paper); V = loss - v0.
      delta_energy: extra initial energy delta E >= 0; E = V_0 + delta_energy.
      threshold0: T_0, regular steps between fixed bounces (None: never).
      threshold1: T_1, regular steps without a new minimum of V before a progress bounce
        (None: never). Values of 2^31 - 1 or more also mean never.
      n_fixed_bounces: N_b, number of fixed bounces in all (0: none).
      consistent_energy: rescale pi onto the energy shell before each step.
      eps1: tolerance under which pi is not rescaled.
      eps2: V at or below which nothing moves.
      per_leaf_init: normalise the initial gradient leaf by leaf (the reference's choice).
      energy_guard: undo a move that ends at V > E and redraw pi's direction (see the
        module docstring); keeps any run finite.
      draw_always: draw a direction at every call and keep it only on a bounce (True), or draw
        inside a ``lax.cond`` only when one is due (False). The results are identical; the cost
        is not: on a CPU a draw costs more than a branch, on a GPU a branch costs a
        device-to-host synchronisation. None (default): False on CPU, True elsewhere.
      seed: seed of the bounce directions.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update`` needs the keyword ``value=``
      (the loss at ``params``) and ignores other extra arguments (``grad=``, ``value_fn=``).
    """
    if not callable(learning_rate) and not learning_rate > 0:
        raise ValueError(f"bbi: learning_rate must be positive, got {learning_rate}")
    if not delta_energy >= 0:
        raise ValueError(f"bbi: delta_energy must be >= 0 (E >= V_0 keeps |pi|^2 >= 0), got {delta_energy}")
    if not eps1 >= 0 or not eps2 >= 0:
        raise ValueError(f"bbi: eps1 and eps2 must be >= 0, got {eps1}, {eps2}")
    if isinstance(n_fixed_bounces, bool) or int(n_fixed_bounces) != n_fixed_bounces or n_fixed_bounces < 0:
        raise ValueError(f"bbi: n_fixed_bounces must be a non-negative integer, got {n_fixed_bounces!r}")
    t0 = _threshold("threshold0", threshold0)
    t1 = _threshold("threshold1", threshold1)
    n_fixed = min(int(n_fixed_bounces), _INT32_MAX)

    def init_fn(params):
        flat, _ = ravel_pytree(params)
        dtype = flat.dtype if flat.size else jnp.float32
        values = jnp.zeros(len(_VALUES), dtype).at[_VALUES.index("v_min")].set(jnp.inf)
        return BBIState(momentum=jnp.zeros(flat.shape, dtype), values=values,
                        counts=jnp.zeros(len(_COUNTS), jnp.int32), key=jax.random.PRNGKey(seed))

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args  # BBI reads only the gradient and the loss
        if value is None:
            raise ValueError("bbi: update needs the loss value, call update(grads, state, params, value=loss)")
        # One flat vector for all leaves: one reduction and one fused pass per step, whatever the
        # number of leaves (a network's step stays within a few percent of SGD with momentum).
        grads, unravel = ravel_pytree(updates)
        dtype = state.energy.dtype
        grads = grads.astype(state.momentum.dtype)
        v = jnp.asarray(value, dtype) - v0
        zero_int = jnp.zeros((), jnp.int32)
        leaf_sizes = [x.size for x in jax.tree_util.tree_leaves(updates)] if per_leaf_init else None

        # The first active call starts the run; until then nothing is kept (as in the reference,
        # where calls with V <= eps2 before the first step leave the optimizer unstarted).
        fresh = state.iteration == 0
        energy = jnp.where(fresh, v + delta_energy, state.energy)
        v_init = jnp.where(fresh, v, state.v_init)
        v_min = jnp.where(fresh, jnp.inf, state.v_min)
        count_fixed = jnp.where(fresh, zero_int, state.count_fixed)
        count_progress = jnp.where(fresh, zero_int, state.count_progress)
        s0, p2_start, p2_state = _start(state.momentum, grads, v, energy, leaf_sizes)
        p2 = jnp.where(fresh, p2_start, p2_state)

        fixed_due = (count_fixed == t0) & (state.fixed_bounces < n_fixed) if t0 is not None else jnp.bool_(False)
        progress_due = count_progress == t1 if t1 is not None else jnp.bool_(False)
        active = v > eps2
        # With the guard, V > E means the last move overshot: undo it (see the module docstring).
        reflect = active & (v > energy) if energy_guard else jnp.bool_(False)
        redraw = active & (fixed_due | progress_due | reflect)  # a bounce or a reflection
        regular = active & ~redraw

        # The regular step is arithmetic; only the random draw is a branch. Every call is
        #   pi <- a pi + b g + c direction,   move = e pi_new + f pi_old,
        # with scalar coefficients: regular step a = scale, b = -kick (on the first call
        # pi = s0 g, so a = 0, b = scale s0 - kick), e = drift; bounce c = 1; reflection c = 1,
        # f = -last_drift; V <= eps2 keeps pi. The coefficients are computed together behind an
        # optimization barrier: one small fused op instead of a dozen scalar ones (each a kernel
        # launch on a GPU), then a single pass over the parameters.
        scale = energy_rescaling(p2, v, energy, eps1) if consistent_energy else jnp.ones((), dtype)
        dt = learning_rate(state.iteration) if callable(learning_rate) else learning_rate
        kick = 0.5 * dt * (v / energy + energy / v)
        drift = dt * v / energy
        on = lambda flag, x: jnp.where(flag, x, 0)
        per_leaf = leaf_sizes is not None
        coef = lax.optimization_barrier(jnp.stack([
            on(regular & ~fresh, scale),                                    # a
            on(regular, (0 if per_leaf else on(fresh, scale * s0)) - kick),  # b
            on(redraw, 1.0),                                                # c
            on(regular, drift),                                             # e
            on(reflect, -state.last_drift),                                 # f
            jnp.sqrt(p2),                                                   # |pi|, for a draw
        ]).astype(dtype))
        a, b, c, e, f, norm = (coef[i] for i in range(6))
        b_vec = b + on(regular & fresh, scale * s0) if per_leaf else b  # per-leaf s0 is a vector
        # One draw serves bounces and reflections (under vmap, where a branch is evaluated at
        # every call, that is one draw per step, not two). The k-th draw uses fold_in(key, k).
        shape = jax.ShapeDtypeStruct(state.momentum.shape, state.momentum.dtype)  # branches take no arrays

        def draw(key, k, norm):
            return random_direction(jax.random.fold_in(key, k), shape, norm)

        draw_args = (state.key, state.bounces + state.reflections, norm)
        select_draw = draw_always if draw_always is not None else jax.default_backend() != "cpu"
        if select_draw:
            direction = jnp.where(redraw, draw(*draw_args), 0)
        else:
            direction = lax.cond(redraw, draw, lambda key, k, norm: jnp.zeros(shape.shape, shape.dtype),
                                 *draw_args)
        m = state.momentum
        new_m = jnp.where(active, a * m + b_vec * grads + c * direction, m).astype(m.dtype)
        new_updates = unravel((e * new_m + f * m).astype(m.dtype))

        fixed = redraw & fixed_due & ~reflect
        improved = regular & (v < v_min)
        keep = lambda new, old: jnp.where(active, new, old)  # V <= eps2: the state stays as it was
        last_drift = keep(jnp.where(regular, drift, 0), state.last_drift) if energy_guard else state.last_drift
        values = jnp.stack([  # in the order of _VALUES
            keep(energy, state.energy),
            keep(v_init, state.v_init),
            keep(jnp.where(improved, v, v_min), state.v_min),
            jnp.where(regular, scale**2 * p2, state.kinetic),  # |pi|^2 after the rescaling
            last_drift,  # what a reflection at the next call would undo: nothing after a bounce
        ]).astype(dtype)
        counts = jnp.stack([  # in the order of _COUNTS
            state.iteration + regular.astype(jnp.int32),
            keep(jnp.where(fixed, zero_int, count_fixed + regular.astype(jnp.int32)), state.count_fixed),
            keep(jnp.where(improved | (redraw & ~reflect), zero_int, count_progress + regular.astype(jnp.int32)),
                 state.count_progress),
            state.fixed_bounces + fixed.astype(jnp.int32),
            state.bounces + (redraw & ~reflect).astype(jnp.int32),
            state.reflections + reflect.astype(jnp.int32),
        ])
        new_state = BBIState(momentum=new_m, values=values, counts=counts, key=state.key)
        return new_updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["bbi", "BBIState", "energy_rescaling", "random_direction"]
