"""Energy conditions of the effective stress tensor T_eff = (G + Lambda g) / kappa.

Everything a metric "needs" as a source, T_eff, is read off the Einstein tensor; with
``cosmological_constant = 0`` a dark-energy component counts as part of T_eff, with the true
Lambda it does not. Units: c = 1, H0 = 1 (``cosmology.conventions``) and kappa = 8 pi G with
G = 1, so the critical density today is 3 / kappa.

Energy density and principal pressures (rho, p_1, p_2, p_3):

- ``method="eigen"`` (default): the Hawking-Ellis type I decomposition. In the gauge
  observer's orthonormal frame (``kinematics.orthonormal_frame``) T^A_B = eta^AC T_CB is
  eigen-decomposed; for a type I tensor the eigenvalues are real, one eigenvector u is
  timelike (the rest frame of the matter: T^A_B u^B = -rho u^A) and three are spacelike
  (eigenvalues p_i). The values are taken as Rayleigh quotients with the eigenvectors held
  fixed, rho = T(u, u) / (-eta(u, u)), p_i = T(v_i, v_i) / eta(v_i, v_i): exact at an
  eigenvector, with finite gradients d rho = u u^T / (-eta(u, u)) (no 1/(lambda_i - lambda_j)
  factors, so degenerate pressures, as in FLRW, are harmless).
- ``method="observer"``: rho = T(n, n) and p_i the eigenvalues of the spatial frame block,
  for the gauge observer n. Exact when that observer sees no energy flux (comoving
  synchronous gauge of dust, FLRW); otherwise only an approximation.

Limits: tensors that are not type I (complex eigenvalues, or a null eigenvector as for
null dust, types II-IV) are flagged (``type_one = False``) and fall back to the observer
values; for them the conditions need a null-vector analysis that is not done here. Near
the type I boundary (matter moving close to the speed of light relative to the gauge
observers) the eigenvectors approach the light cone and the classification uses a
tolerance of sqrt(machine epsilon).

Violations are signed: <= 0 when the condition holds, and then minus the slack of the
tightest inequality; > 0 the size of the worst violation. They are finite and
differentiable almost everywhere (maxima of smooth functions), ready for
``Constraint(value, "ineq")``:

    weak      max(-rho, -(rho + p_i))                 null      max_i -(rho + p_i)
    strong    max(-(rho + p_i), -(rho + sum_i p_i))   dominant  max(-rho, |p_i| - rho)
    ricci     -R      (the seeds' proxy R >= 0; not an energy condition: a stiff fluid,
                       p = rho > 0, meets all four and has R < 0)
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from cosmology.conventions import ETA, KAPPA
from cosmology.geometry import MetricFn, curvature
from cosmology.kinematics import orthonormal_frame, symmetric_eigenvalues

CONDITIONS = ("weak", "null", "strong", "dominant", "ricci")


class PrincipalStresses(NamedTuple):
    """rho, (p_1, p_2, p_3) and whether the tensor was decomposed as type I."""

    energy_density: jax.Array
    pressures: jax.Array
    type_one: jax.Array


def effective_stress(
    metric_fn: MetricFn, x: jax.Array, cosmological_constant: float = 0.0, kappa: float = KAPPA
) -> jax.Array:
    """T_ab = (G_ab + Lambda g_ab) / kappa, lower indices, shape (4, 4)."""
    curv = curvature(metric_fn, x)
    return (curv.einstein_tensor + cosmological_constant * curv.g) / kappa


def frame_components(tensor: jax.Array, g: jax.Array) -> jax.Array:
    """T_(AB) = e_(A)^a e_(B)^b T_ab in the gauge observer's orthonormal frame."""
    frame = orthonormal_frame(g)
    return frame.T @ tensor @ frame


def _check_method(method: str) -> None:
    if method not in ("eigen", "observer"):
        raise ValueError(f"method must be 'eigen' or 'observer', got {method!r}")


def _observer_stresses(t_frame: jax.Array) -> tuple[jax.Array, jax.Array]:
    return t_frame[0, 0], symmetric_eigenvalues(t_frame[1:, 1:])


def principal_stresses(t_frame: jax.Array, method: str = "eigen") -> PrincipalStresses:
    """(rho, p_i, type_one) of a symmetric tensor given by its orthonormal-frame components."""
    _check_method(method)
    rho_obs, p_obs = _observer_stresses(t_frame)
    if method == "observer":
        return PrincipalStresses(rho_obs, p_obs, jnp.zeros((), bool))

    dtype = t_frame.dtype
    eta = jnp.asarray(ETA, dtype)
    values, vectors = jnp.linalg.eig(jax.lax.stop_gradient(eta[:, None] * t_frame))
    vectors = jnp.real(vectors).astype(dtype)  # real for real eigenvalues (the type I case)
    norms = jnp.einsum("ak,a,ak->k", vectors, eta, vectors)  # eta(v, v)
    lengths = jnp.einsum("ak,ak->k", vectors, vectors)
    order = jnp.argsort(norms / lengths)  # the most timelike first
    vectors, norms, lengths = vectors[:, order], norms[order], lengths[order]
    tol = math.sqrt(jnp.finfo(dtype).eps)
    scale = jnp.max(jnp.abs(t_frame)) + jnp.finfo(dtype).tiny
    type_one = (
        (jnp.max(jnp.abs(jnp.imag(values))) <= tol * scale)
        & (norms[0] < -tol * lengths[0])
        & jnp.all(norms[1:] > tol * lengths[1:])
    )
    # Safe denominators: the branch not taken must stay finite for jnp.where's gradient.
    safe = jnp.where(jnp.abs(norms) > tol * lengths, norms, 1.0)
    quotients = jnp.einsum("ak,ab,bk->k", vectors, t_frame, vectors) / safe  # T(v,v) / eta(v,v)
    rho = jnp.where(type_one, -quotients[0], rho_obs)
    pressures = jnp.where(type_one, jnp.sort(quotients[1:]), p_obs)
    return PrincipalStresses(rho, pressures, type_one)


def stresses(
    metric_fn: MetricFn,
    x: jax.Array,
    cosmological_constant: float = 0.0,
    kappa: float = KAPPA,
    method: str = "eigen",
) -> PrincipalStresses:
    """rho and the principal pressures of T_eff at ``x`` (see the module docstring)."""
    _check_method(method)
    curv = curvature(metric_fn, x)
    tensor = (curv.einstein_tensor + cosmological_constant * curv.g) / kappa
    return principal_stresses(frame_components(tensor, curv.g), method)


# ----------------------------------------------------------------------------- violations


def weak_violation(rho: jax.Array, pressures: jax.Array) -> jax.Array:
    """WEC rho >= 0 and rho + p_i >= 0: max(-rho, max_i -(rho + p_i))."""
    return jnp.maximum(-rho, jnp.max(-(rho + pressures), axis=-1))


def null_violation(rho: jax.Array, pressures: jax.Array) -> jax.Array:
    """NEC rho + p_i >= 0: max_i -(rho + p_i)."""
    return jnp.max(-(rho + pressures), axis=-1)


def strong_violation(rho: jax.Array, pressures: jax.Array) -> jax.Array:
    """SEC rho + p_i >= 0 and rho + sum_i p_i >= 0."""
    return jnp.maximum(null_violation(rho, pressures), -(rho + jnp.sum(pressures, axis=-1)))


def dominant_violation(rho: jax.Array, pressures: jax.Array) -> jax.Array:
    """DEC rho >= |p_i|: max(-rho, max_i |p_i| - rho)."""
    return jnp.maximum(-rho, jnp.max(jnp.abs(pressures), axis=-1) - rho)


def ricci_violation(ricci_scalar: jax.Array) -> jax.Array:
    """The seeds' proxy R >= 0: -R."""
    return -ricci_scalar


_FROM_STRESSES = {
    "weak": weak_violation,
    "null": null_violation,
    "strong": strong_violation,
    "dominant": dominant_violation,
}


def violations(
    metric_fn: MetricFn,
    x: jax.Array,
    conditions: Sequence[str] = CONDITIONS,
    cosmological_constant: float = 0.0,
    kappa: float = KAPPA,
    method: str = "eigen",
) -> dict:
    """{condition: signed violation} at ``x`` from one curvature evaluation.

    ``conditions`` is any of "weak", "null", "strong", "dominant", "ricci".
    """
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown energy condition(s) {unknown}; choose from {CONDITIONS}")
    if kappa <= 0:
        raise ValueError(f"kappa must be positive, got {kappa}")
    _check_method(method)
    curv = curvature(metric_fn, x)
    out = {}
    if any(c in _FROM_STRESSES for c in conditions):
        tensor = (curv.einstein_tensor + cosmological_constant * curv.g) / kappa
        rho, pressures, _ = principal_stresses(frame_components(tensor, curv.g), method)
        out.update({c: _FROM_STRESSES[c](rho, pressures) for c in conditions if c in _FROM_STRESSES})
    if "ricci" in conditions:
        out["ricci"] = ricci_violation(curv.ricci_scalar)
    return {c: out[c] for c in conditions}


def violation(condition: str, metric_fn: MetricFn, x: jax.Array, **kwargs) -> jax.Array:
    """One named condition's signed violation at ``x`` (keywords as in ``violations``)."""
    return violations(metric_fn, x, (condition,), **kwargs)[condition]


__all__ = [
    "CONDITIONS",
    "KAPPA",
    "PrincipalStresses",
    "dominant_violation",
    "effective_stress",
    "frame_components",
    "null_violation",
    "principal_stresses",
    "ricci_violation",
    "strong_violation",
    "stresses",
    "violation",
    "violations",
    "weak_violation",
]
