"""Optimizers by name: every optax optimizer, plus our own (registered with ``register``).

``get(name, **hyperparameters)`` always returns an ``optax.GradientTransformationExtraArgs``;
the solve loop calls ``update(grads, state, params, value=..., grad=..., value_fn=...)``
so optimizers that need the loss (L-BFGS, BBI) work in the same loop as Adam.
"""
from __future__ import annotations

import inspect
import numbers
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from pinnopt.registry import Registry, Spec, check_options, tag

DEFAULT_LEARNING_RATE = 1e-3

# Every public optimizer factory defined in optax's alias module, found by introspection so
# new optax releases are picked up without a list to maintain here.
_OPTAX: dict[str, Callable] = {
    n: getattr(optax, n)
    for n in dir(optax)
    if callable(getattr(optax, n)) and getattr(getattr(optax, n), "__module__", "") == "optax._src.alias"
}
REGISTRY = Registry("optimizer", fallback=_OPTAX.get, extra_names=lambda: list(_OPTAX))

# Hyperparameters that must lie in [0, 1] (decay rates) and ones that must be >= 0.
_UNIT_INTERVAL = {"b1", "b2", "b3", "momentum", "decay", "beta", "decay_rate"}
_NON_NEGATIVE = {"eps", "eps_root", "weight_decay", "initial_accumulator_value", "memory_size"}


register = REGISTRY.register
available = REGISTRY.available


def _validate(name: str, factory: Callable, hyperparameters: dict) -> dict:
    check_options(f"optimizer {name!r}", factory, hyperparameters)
    params = inspect.signature(factory).parameters
    out = dict(hyperparameters)
    lr = params.get("learning_rate")
    if lr is not None and "learning_rate" not in out and lr.default is inspect.Parameter.empty:
        out["learning_rate"] = DEFAULT_LEARNING_RATE
    for key, val in out.items():
        if callable(val) or not isinstance(val, numbers.Real) or isinstance(val, bool):
            continue
        if key == "learning_rate" and not val > 0:
            raise ValueError(f"optimizer {name!r}: learning_rate must be positive, got {val}")
        if key in _UNIT_INTERVAL and not 0 <= val <= 1:
            raise ValueError(f"optimizer {name!r}: {key} must lie in [0, 1], got {val}")
        if key in _NON_NEGATIVE and val < 0:
            raise ValueError(f"optimizer {name!r}: {key} must be non-negative, got {val}")
    return out


def get(name: str, **hyperparameters) -> optax.GradientTransformationExtraArgs:
    """The optimizer ``name`` built with ``hyperparameters``.

    A learning rate that the factory requires defaults to 1e-3. Raises ``ValueError`` for an
    unknown name (listing the closest names), an unknown hyperparameter, or an invalid value.
    """
    factory = REGISTRY.factory(name)
    kwargs = _validate(name, factory, hyperparameters)
    try:
        tx = factory(**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"optimizer {name!r}: {err}") from err
    tx = optax.with_extra_args_support(tx)
    built = optax.GradientTransformationExtraArgs(lambda params: _strongly_typed(tx.init(params)), tx.update)
    return tag(built, Spec("optimizer", name, dict(hyperparameters)))


def _strongly_typed(tree):
    """Drop weak types from a state: some optax states (L-BFGS line search) start weakly typed
    and come back strongly typed, which would recompile a jitted step and break ``lax.scan``."""
    return jax.tree.map(lambda x: jnp.array(x, dtype=jnp.asarray(x).dtype) if hasattr(x, "dtype") else x, tree)


def needs_value(name: str) -> bool:
    """Whether the optimizer reads the loss value (informational; the loop always passes it)."""
    return name in {"lbfgs", "polyak_sgd"} or name not in _OPTAX


__all__ = ["REGISTRY", "available", "get", "register", "needs_value", "DEFAULT_LEARNING_RATE"]

from pinnopt.optimizers.bbi import bbi  # noqa: E402  (registered after the registry exists)
from pinnopt.optimizers.ecdsep import ecdsep  # noqa: E402

register("bbi", bbi)
register("ecdsep", ecdsep)
__all__ += ["bbi", "ecdsep"]

from pinnopt.optimizers.quasi_newton import ssbfgs, ssbroyden  # noqa: E402

register("ssbfgs", ssbfgs)
register("ssbroyden", ssbroyden)
__all__ += ["ssbfgs", "ssbroyden"]

from pinnopt.optimizers.soap import soap  # noqa: E402

register("soap", soap)
__all__ += ["soap"]

from pinnopt.optimizers.engd import engd  # noqa: E402
from pinnopt.optimizers.least_squares import gauss_newton, levenberg_marquardt  # noqa: E402

register("gauss_newton", gauss_newton)
register("levenberg_marquardt", levenberg_marquardt)
register("lm", levenberg_marquardt)
register("engd", engd)
__all__ += ["engd", "gauss_newton", "levenberg_marquardt"]
