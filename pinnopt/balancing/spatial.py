"""Spatial (point-wise) uncertainty weighting: a small network W(x) plays log sigma at every point."""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Callable, Mapping, NamedTuple, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from pinnopt.balancing.base import Balancer, check_coords, check_names, check_objectives
from pinnopt.balancing.registry import REGISTRY

ACTIVATIONS: dict[str, Callable] = {
    "tanh": jnp.tanh, "sin": jnp.sin, "gelu": jax.nn.gelu, "silu": jax.nn.silu, "softplus": jax.nn.softplus,
}


class SpatialState(NamedTuple):
    step: jax.Array  # int32, number of updates so far
    inner: NamedTuple  # the state of the inner reduction


class WeightNet(nn.Module):
    """W: R^d -> R, ``depth`` hidden layers of ``width``; the output layer starts at zero (W = 0)."""

    width: int = 32
    depth: int = 2
    activation: Callable = jnp.tanh

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = self.activation(nn.Dense(self.width)(x))
        # Zero output layer: every point starts with sigma = 1, i.e. half the plain mean, and the
        # gradient still reaches it through the non-zero hidden features.
        out = nn.Dense(1, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros)(x)
        return out[..., 0]


def floored(w: jax.Array, w_min: Optional[float]) -> jax.Array:
    """The smooth floor ``W_eff = W`` for ``W >= 0`` and ``m expm1(W / m)`` below, ``m = -w_min``.

    ``W_eff`` is bounded below by ``w_min`` (reached as ``W -> -inf``), is the identity for
    ``W >= 0`` and is continuously differentiable (value 0 and slope 1 on both sides of 0): a
    scaled ELU. ``w_min=None``: ``w`` itself, unchanged.
    """
    if w_min is None:
        return w
    m = -w_min
    # The minimum keeps exp from overflowing in the branch that where() discards (its gradient
    # would otherwise be inf * 0 = nan).
    return jnp.where(w >= 0, w, m * jnp.expm1(jnp.minimum(w, 0.0) / m))


def _check_w_min(w_min) -> Optional[float]:
    if w_min is None:
        return None
    if isinstance(w_min, bool) or not isinstance(w_min, numbers.Real) or not math.isfinite(w_min) or w_min >= 0:
        raise ValueError(f"spatial balancer: w_min must be None or a finite negative number, got {w_min!r}")
    return float(w_min)


def spatial(*, width: int = 32, depth: int = 2, activation: Union[str, Callable] = "tanh",
            terms: Optional[Sequence[str]] = None, inner: Union[str, Balancer] = "sum",
            weights: Optional[Mapping[str, float]] = None, w_min: Optional[float] = None,
            **inner_options) -> Balancer:
    """Per point ``v(x) = 0.5 exp(-2 W_k(x)) l_k(x) + W_k(x)``, reduced per term by ``inner``.

    One network per term (its own input dimension, its own weighting), all sharing the
    architecture; their parameters are the balancer's params ``{"W": {term: flax params}}``
    (plus ``"inner"`` when the inner reduction has params). With the default ``inner="sum"``:
    ``loss = sum_k w_k mean_x v_k(x)``. Terms without a network (no coords, or not in ``terms``)
    enter with ``v = l``, i.e. their plain mean. For a fixed ``l`` the optimum is
    ``W_k(x) = 0.5 log l_k(x)`` as far as the network can represent it.

    The floor ``w_min``: at that optimum ``v = 0.5 + 0.5 log l(x)``, unbounded below as
    ``l(x) -> 0``, so without a floor a well-fitted region keeps paying off (W running to
    -inf there) and training chases ever smaller residuals instead of the other terms. With
    ``w_min < 0`` the network's output ``W`` enters through the smooth floor (``floored``)

        W_eff = W                      for W >= 0
        W_eff = m (exp(W / m) - 1)     for W < 0,   m = -w_min,

    so ``W_eff > w_min`` and, for ``l >= 0``, ``v = 0.5 exp(-2 W_eff) l + W_eff > w_min``: the
    loss is bounded below (by ``w_min`` per weighted term with the ``"sum"`` inner, times its
    weight) and the point weights ``exp(-2 W_eff)`` by ``exp(-2 w_min)``. The form is the
    identity for ``W >= 0`` and has value 0 and slope 1 at 0, so the zero-initialised network
    starts with the same loss and gradient as without the floor. It only reparametrises the
    range ``(w_min, inf)`` of W: a point with ``0.5 log l(x) > w_min`` keeps its optimum
    ``W_eff = 0.5 log l(x)``, one below is held near ``w_min``. Below 0 it saturates smoothly
    (continuously differentiable; the softplus floor ``w_min + softplus(W - w_min + c)`` would
    be C-infinity too but needs a shift c for ``W_eff(0) = 0`` and then neither has slope 1
    at 0 nor is the identity for large W). ``W_eff`` is used everywhere W enters (the loss
    and the reported weights). ``None`` (default): no floor, exactly the unfloored form.

    Args:
      width, depth: hidden width and number of hidden layers of each W (depth 0: W is affine).
      activation: ``"tanh"`` (default), ``"sin"``, ``"gelu"``, ``"silu"``, ``"softplus"`` or a function.
      terms: names of the terms to weight point-wise (default: every term with coords). To
        choose the terms of an inner causal reduction, pass ``inner=get("causal", terms=...)``.
      inner: the reduction of the point-wise values: ``"sum"`` / ``"mean"`` (plain means),
        ``"causal"`` (built with ``inner_options``, e.g. ``eps=1.0, n_chunks=16``), or a balancer
        whose ``loss`` accepts ``values=`` such as ``get("causal", eps=...)``.
        Causal inside spatial: the chunk weights are computed from the *raw* chunk losses (and
        stopped), then applied to the chunk means of the spatially balanced ``v``. Deriving them
        from ``v`` instead would let W bend the causal order (a large W on early points would
        fake a fitted past) and ``v`` can be negative, which breaks ``exp(-eps sum L)``.
      weights: static ``{term: w_k}`` handed to a named inner reduction.
      w_min: ``None`` (default) or a finite number < 0: the floor of ``W`` above, e.g. -3
        (point weights ``exp(-2 W_eff)`` then stay below e^6 ~ 400). From the command line:
        ``pinnopt solve PROBLEM -b spatial --balancing-arg w_min=-3``; in code
        ``pinnopt.balancing.get("spatial", w_min=-3.0)``.
      **inner_options: further options of a named inner reduction.

    Metrics, besides the inner ones: ``spatial/w_mean``, ``spatial/w_min``, ``spatial/w_max``
    of the point weights ``exp(-2 W_eff(x))`` over all weighted points, ``spatial/w_mean/<term>``.
    """
    for name, value, low in (("width", width, 1), ("depth", depth, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"spatial balancer: {name} must be an integer >= {low}, got {value!r}")
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"spatial balancer: unknown activation {activation!r}; "
                             f"use one of {sorted(ACTIVATIONS)} or a function")
        activation = ACTIVATIONS[activation]
    elif not callable(activation):
        raise ValueError(f"spatial balancer: activation must be a name or a function, got {activation!r}")
    w_min = _check_w_min(w_min)
    selected = check_names(terms, "terms", "spatial")
    inner = _inner(inner, weights, inner_options)
    net = WeightNet(width=int(width), depth=int(depth), activation=activation)

    def weighted_names(objectives):
        if selected is None:
            return [name for name, obj in objectives.items() if obj.coords is not None]
        missing = sorted(set(selected) - set(objectives))
        if missing:
            raise ValueError(f"spatial balancer: terms {missing} are not among the objectives {sorted(objectives)}")
        return list(selected)

    def init(key, objectives):
        objectives = check_objectives(objectives, "spatial")
        names = weighted_names(objectives)
        net_key, inner_key = jax.random.split(key)
        nets = {}
        for i, name in enumerate(names):
            obj = objectives[name]
            if obj.coords is None:
                raise ValueError(f"spatial balancer: term {name!r} has no coords to weight point-wise")
            check_coords(name, obj, "spatial")
            nets[name] = net.init(jax.random.fold_in(net_key, i), obj.coords[:1])
        inner_params, inner_state = inner.init(inner_key, objectives)
        params = {"W": nets, **({"inner": inner_params} if inner_params else {})}
        return params, SpatialState(step=jnp.zeros((), jnp.int32), inner=inner_state)

    def point_weights(objectives, params):
        """``{term: W_eff(x)}`` at the term's points (the floored network output)."""
        nets = params["W"]
        unknown = sorted(set(nets) - set(objectives))
        if unknown:
            raise ValueError(f"spatial balancer: initialised for terms {sorted(nets)}, got terms {sorted(objectives)}")
        out = {}
        for name, p in nets.items():
            check_coords(name, objectives[name], "spatial")
            out[name] = floored(net.apply(p, objectives[name].coords), w_min)
        return out

    def loss(objectives, params, state):
        objectives = check_objectives(objectives, "spatial")
        W = point_weights(objectives, params)
        values = {k: 0.5 * jnp.exp(-2.0 * W[k]) * objectives[k].loss + W[k] for k in W}
        total, metrics = inner.loss(objectives, params.get("inner", {}), state.inner, values=values)
        metrics = dict(metrics)
        if W:
            w = {k: jax.lax.stop_gradient(jnp.exp(-2.0 * W[k])) for k in W}
            every = jnp.concatenate(list(w.values()))
            metrics.update({"spatial/w_mean": jnp.mean(every), "spatial/w_min": jnp.min(every),
                            "spatial/w_max": jnp.max(every)})
            metrics.update({f"spatial/w_mean/{k}": jnp.mean(w[k]) for k in w})
        return total, metrics

    def update(objectives, params, state):
        inner_state = inner.update(objectives, params.get("inner", {}), state.inner)
        return SpatialState(step=state.step + 1, inner=inner_state)

    def diagnose(state):
        return inner.diagnose(state.inner)

    return Balancer(init, loss, update, diagnose)


def _inner(inner, weights, options) -> Balancer:
    """The inner reduction: a name built with ``weights`` and ``options``, or a ready balancer."""
    get = REGISTRY.get
    if isinstance(inner, str):
        name = "sum" if inner == "mean" else inner
        if name not in ("sum", "causal"):
            raise ValueError(f"spatial balancer: inner must be 'sum', 'mean', 'causal' or a balancer "
                             f"whose loss accepts values=, got {inner!r}")
        if weights is not None:
            options = {**options, "weights": weights}
        return get(name, **options)
    if isinstance(inner, Balancer):
        if weights is not None or options:
            raise ValueError("spatial balancer: with a ready inner balancer, give weights and "
                             f"options {sorted(options)} to that balancer, not to spatial")
        if "values" not in inspect.signature(inner.loss).parameters:
            raise ValueError("spatial balancer: the inner balancer's loss does not accept values= "
                             "(use 'sum' or 'causal')")
        return inner
    raise ValueError(f"spatial balancer: inner must be a name or a Balancer, got {inner!r}")
