"""Certificates: does each constraint hold, within the tolerance its user stated, off the training points?

A constraint is certified when its largest violation over ``batches`` freshly sampled held-out
batches is at most its ``tol`` (``Constraint.tol``): max |value| (equality) or max(0, value)
(inequality) at any point for a point-wise constraint, the violation of the mean for a mean
one. A constraint met only at the training points is therefore reported as not met, and a
non-finite violation is never certified.
"""
from __future__ import annotations

import math
from typing import Callable

import jax

CERTIFY_SALT = 0x43455254  # a key stream of its own, apart from training and the periodic held-out checks


def certify(heldout_fn: Callable, params, root_key: jax.Array, step, specs: dict, batches: int) -> dict:
    """``{name: certificate}`` for every constraint in ``specs`` (see ``state.constraint_specs``).

    Each certificate holds the constraint's kind, aggregate, tol, ``max_violation`` (over all
    batches), ``points_checked`` and ``certified``.
    """
    worst = {name: 0.0 for name in specs}
    root = jax.random.fold_in(root_key, CERTIFY_SALT)
    for b in range(batches if specs else 0):
        out = jax.device_get(jax.block_until_ready(heldout_fn(params, jax.random.fold_in(root, b), step)))
        for name in specs:
            v = float(out[f"heldout_max_violation/{name}"])
            worst[name] = v if math.isnan(v) or math.isnan(worst[name]) else max(worst[name], v)
    return {name: {**spec, "max_violation": worst[name], "points_checked": spec["points"] * batches,
                   "certified": bool(worst[name] <= spec["tol"])}  # False for NaN
            for name, spec in specs.items()}


def all_certified(certificates: dict):
    """True when every constraint is certified; None when there is no constraint to certify."""
    return all(c["certified"] for c in certificates.values()) if certificates else None


def format_certificates(certificates: dict) -> list[str]:
    """Lines of the final table: one per constraint, then the verdict."""
    lines = []
    for name, c in certificates.items():
        verdict = "certified" if c["certified"] else "NOT certified"
        lines.append(f"{'certificate/' + name:<36} max {c['aggregate']} violation {c['max_violation']:.3g} "
                     f"{'<=' if c['certified'] else '>'} tol {c['tol']:.3g} on {c['points_checked']} held-out "
                     f"points: {verdict}")
    verdict = all_certified(certificates)
    if verdict is not None:
        lines.append(f"{'certified':<36} {verdict}")
    return lines
