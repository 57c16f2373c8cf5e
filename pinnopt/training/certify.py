"""Certificates: does each constraint hold, within the tolerance its user stated, off the training points?

A constraint is certified when its largest violation over ``batches`` freshly sampled held-out
batches is at most its ``tol`` (``Constraint.tol``): max |value| (equality) or max(0, value)
(inequality) at any point for a point-wise constraint, the violation of the mean for a mean
one. A constraint met only at the training points is therefore reported as not met, and a
non-finite violation is never certified.

A problem may certify more than its constraints: an optional method
``problem.extra_certificates(params) -> {name: {"max_violation": v, "tol": tol, ...}}`` checks,
once at the end of a solve, conditions that are no term of the loss (a property of the
solution as a whole, too costly for every step). Each is certified when v <= tol (NaN never)
and, if the problem says ``"certified": False`` itself, never; its other keys are kept. They
join ``summary["certificates"]``, so ``summary["certified"]`` is True only when they hold too
(:func:`extra_certificates`).
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


def extra_certificates(problem, params, taken=()) -> dict:
    """``problem.extra_certificates(params)`` checked and completed; {} when the problem has none.

    Every entry needs numbers ``max_violation`` and ``tol``; ``certified`` becomes
    max_violation <= tol (False for NaN), and False whenever the problem's own ``certified``
    is False. ``kind`` (default "extra"), ``aggregate`` (default "max") and ``points_checked``
    (default None) are filled in for the final table. A name in ``taken`` (a constraint's) is
    a ValueError: a certificate never replaces another.
    """
    method = getattr(problem, "extra_certificates", None)
    if method is None:
        return {}
    found = method(params)
    if not isinstance(found, dict):
        raise TypeError(f"problem.extra_certificates(params) must return a dict {{name: certificate}}, "
                        f"got {type(found).__name__}")
    out = {}
    for name, cert in found.items():
        if name in taken:
            raise ValueError(f"problem.extra_certificates returned {name!r}, the name of a constraint's certificate")
        if not isinstance(cert, dict) or not {"max_violation", "tol"} <= set(cert):
            raise ValueError(f"problem.extra_certificates()[{name!r}] must be a dict with 'max_violation' and 'tol', "
                             f"got {cert!r}")
        violation, tol = float(cert["max_violation"]), float(cert["tol"])
        met = bool(violation <= tol) and cert.get("certified", True) is not False
        out[name] = {"kind": "extra", "aggregate": "max", "points_checked": None, **cert,
                     "max_violation": violation, "tol": tol, "certified": met}
    return out


def all_certified(certificates: dict):
    """True when every constraint is certified; None when there is no constraint to certify."""
    return all(c["certified"] for c in certificates.values()) if certificates else None


def format_certificates(certificates: dict) -> list[str]:
    """Lines of the final table: one per constraint, then the verdict."""
    lines = []
    for name, c in certificates.items():
        verdict = "certified" if c["certified"] else "NOT certified"
        where = f" on {c['points_checked']} held-out points" if c.get("kind") != "extra" else \
            (f" on {c['points_checked']} checks" if c.get("points_checked") is not None else "")
        lines.append(f"{'certificate/' + name:<36} max {c.get('aggregate', '')} violation {c['max_violation']:.3g} "
                     f"{'<=' if c['max_violation'] <= c['tol'] else '>'} tol {c['tol']:.3g}{where}: {verdict}")
    verdict = all_certified(certificates)
    if verdict is not None:
        lines.append(f"{'certified':<36} {verdict}")
    return lines
