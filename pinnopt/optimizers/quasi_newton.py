"""Self-scaled dense quasi-Newton methods: ``ssbfgs`` and ``ssbroyden`` (with a zoom line search).

Both keep a dense approximation H (P x P) of the inverse Hessian over all parameters (raveled
with ``jax.flatten_util.ravel_pytree``) and make one quasi-Newton iteration per ``update``
call. With g the incoming updates (the gradient) at x_k::

    d_k = -H_k g                                   (search direction)
    s_k = alpha_k d_k                              (alpha_k: strong-Wolfe zoom line search on value_fn)
    y_k = grad value_fn(x_k + s_k) - grad           (both gradients on the same batch)
    rho_k = 1 / s_k^T y_k,   h_k = rho_k y_k^T H_k y_k,   b_k = rho_k s_k^T B_k s_k = -alpha_k rho_k s_k^T g
    v_k = rho_k s_k - H_k y_k / (y_k^T H_k y_k)
    H_{k+1} = (H_k - H_k y_k y_k^T H_k / (y_k^T H_k y_k) + phi_k (y_k^T H_k y_k) v_k v_k^T) / tau_k
              + rho_k s_k s_k^T

(B_k = H_k^{-1}; b_k uses B_k s_k = -alpha_k g, so B is never formed.) The self-scaling factor
tau_k and the Broyden-family parameter phi_k (phi = 1: BFGS, phi = 0: DFP) are:

- ``ssbfgs``: phi_k = 1 and tau_k = min(1, 1/b_k) (Al-Baali's choice, ``scaling="al_baali"``),
  tau_k = 1/b_k (``scaling="oren_luenberger"``, the authors' ``SSBFGS_OL``), or tau_k = 1
  (``scaling="none"``: plain BFGS).
- ``ssbroyden`` (Al-Baali & Khalfan's "wide interval" self-scaled Broyden class), with
  a_k = b_k h_k - 1 (>= 0 by Cauchy-Schwarz) and n = P::

      c_k = sqrt(a_k / (1 + a_k)),   rho_k^- = min(1, h_k (1 - c_k))
      theta_k^- = (rho_k^- - 1) / a_k,   theta_k^+ = 1 / rho_k^-
      theta_k = max(theta_k^-, min(theta_k^+, (1 - b_k) / b_k))
      sigma_k = 1 + theta_k a_k,   r_k = min(1, 1/b_k)
      tau_k = min(r_k sigma_k^{1/(1-n)}, sigma_k)     if theta_k <= 0
      tau_k = r_k min(sigma_k^{1/(1-n)}, 1/theta_k)    if theta_k > 0
      phi_k = (1 - theta_k) / sigma_k

The update is skipped (H_{k+1} = H_k, counted in ``skipped``) when the curvature condition
fails, s_k^T y_k <= curvature_eps |s_k| |y_k| (or any of the scalars above is not finite or
not positive where it must be). With a Wolfe step s^T y > 0 holds, so a skip means the line
search fell back to a step without the curvature condition, or float rounding.

Paper: J. F. Urban, P. Stefanou, J. A. Pons, "Unveiling the optimization process of physics
informed neural networks: How accurate and competitive can PINNs be?", J. Comput. Phys. 523,
113656 (2025), arXiv:2405.04230; the self-scaling of S. S. Oren & D. G. Luenberger (Manag.
Sci. 20, 1974) and M. Al-Baali (Comput. Optim. Appl. 9, 1998; with H. Khalfan, "A wide interval
for efficient self-scaling quasi-Newton algorithms", Optim. Methods Softw. 20, 2005).

What exactly is implemented, and where it may differ from the paper: the formulas above were
transcribed from the authors' public reference implementation (github.com/jorgeurban/
self_scaled_algorithms_pinns, ``modified_optimize.py``: the methods ``SSBFGS_AB``,
``SSBFGS_OL`` and ``SSBroyden2``, whose README maps them to eq. 11 and eqs. 13-23 of the
paper); the paper's own equations were not read. Departures from that code:

- line search: optax's ``scale_by_zoom_linesearch`` (Nocedal & Wright alg. 3.5/3.6, strong
  Wolfe with c1 = ``slope_rtol``, c2 = ``curv_rtol``, plus Hager-Zhang's approximate Wolfe
  condition near convergence), first trial step 1, instead of SciPy's MINPACK/wolfe2 search;
- H_0 = min(1, 1/|g_0|) I (optax ``lbfgs``'s first step: a step of length at most 1), instead
  of H_0 = I with SciPy's first trial step; the same restart is used after a failure (below);
- the skip of the update above (the reference sets rho = 1000 when s^T y == 0 and updates);
- a direction that is not a descent direction (g^T d >= 0, or not finite) is replaced by
  -min(1, 1/|g|) g with H restarted from that scaled identity (counted in ``resets``);
- a line search that ends at a higher loss than it started from (more than ``1e-6 |f|``, the
  zoom search's own approximate-decrease tolerance) or at a non-finite one is rejected: zero
  update, H restarted at the next call (counted in ``resets``). The reference stops instead;
- y_k uses the gradient the line search computed at the new point with the same ``value_fn``
  (same batch), so with collocation points resampled every step the pair (s_k, y_k) still
  measures the curvature of one loss;
- guards where the reference divides by zero: a_k = 0 (s parallel to H y, e.g. n = 1) uses
  a_k = machine epsilon in theta_k^- (v_k = 0 then, so phi_k does not matter), and n = 1 uses
  sigma_k^{1/(1-n)} = 1.

Memory: the state holds H, P^2 numbers; ``init`` refuses more than ``max_params`` parameters.
Cost per step: three P x P passes (H g, H y, the fused rank-three update) plus the line search.
"""
from __future__ import annotations

import inspect
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

_SCALINGS = ("al_baali", "oren_luenberger", "none")


class QuasiNewtonState(NamedTuple):
    """State of ``ssbfgs`` / ``ssbroyden``.

    count: calls so far (int32).
    hess_inv: H, the dense inverse-Hessian approximation (P x P, the parameters' dtype).
    restart: 1 when H is the identity waiting to be scaled by min(1, 1/|g|) at the next call
      (at the start and after a rejected line search), else 0 (int32).
    tau: tau_k of the last update (1 when it was skipped).
    phi: phi_k of the last update (1 for BFGS).
    skipped: updates of H skipped because the curvature condition failed (int32).
    resets: restarts of H from the scaled identity (non-descent direction or rejected step).
    linesearch: the state of the zoom line search (its ``learning_rate`` is alpha_k; its
      ``value`` and ``grad`` are the loss and gradient at the new point, same batch).
    """

    count: jax.Array
    hess_inv: jax.Array
    restart: jax.Array
    tau: jax.Array
    phi: jax.Array
    skipped: jax.Array
    resets: jax.Array
    linesearch: Any


def _strong(tree):
    """The same tree with no weakly typed leaves (a weak type in a carry recompiles a jitted step)."""
    return jax.tree.map(lambda x: jnp.array(x, dtype=jnp.asarray(x).dtype), tree)


def _safe_div(num, den):
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), 0)


def _check_common(name, max_params, curvature_eps, max_linesearch_steps, slope_rtol, curv_rtol):
    if isinstance(max_params, bool) or int(max_params) != max_params or max_params < 1:
        raise ValueError(f"{name}: max_params must be a positive integer, got {max_params!r}")
    if curvature_eps is not None and not curvature_eps >= 0:
        raise ValueError(f"{name}: curvature_eps must be >= 0 (or None), got {curvature_eps!r}")
    if (isinstance(max_linesearch_steps, bool) or int(max_linesearch_steps) != max_linesearch_steps
            or max_linesearch_steps < 1):
        raise ValueError(f"{name}: max_linesearch_steps must be a positive integer, got {max_linesearch_steps!r}")
    if not 0 < slope_rtol < curv_rtol < 1:
        raise ValueError(f"{name}: the Wolfe constants need 0 < slope_rtol < curv_rtol < 1, "
                         f"got slope_rtol={slope_rtol!r}, curv_rtol={curv_rtol!r}")


def _value_fn_kwargs(value_fn, extra: dict) -> dict:
    """The extra keyword arguments that ``value_fn`` accepts (all of them if it takes ``**kwargs``).

    The solve loop may pass other extras (such as ``residual_fn=``) meant for other optimizers;
    optax's line search refuses any it cannot hand to ``value_fn``, so they are dropped here."""
    if not extra:
        return {}
    try:
        params = inspect.signature(value_fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(extra)
    names = {n for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return {k: v for k, v in extra.items() if k in names}


def _gigabytes(n: int, dtype) -> float:
    return n * n * np.dtype(dtype).itemsize / 1e9


def _self_scaled(name: str, tau_phi, *, max_params, curvature_eps, max_linesearch_steps, slope_rtol,
                 curv_rtol) -> optax.GradientTransformationExtraArgs:
    """The shared quasi-Newton iteration; ``tau_phi(a, b, h, n) -> (tau, phi)`` picks the member."""
    linesearch = optax.scale_by_zoom_linesearch(
        max_linesearch_steps=int(max_linesearch_steps), slope_rtol=slope_rtol, curv_rtol=curv_rtol,
        initial_guess_strategy="one")
    max_params = int(max_params)

    def init_fn(params):
        leaves = jax.tree.leaves(params)
        n = int(sum(np.prod(leaf.shape, dtype=int) for leaf in leaves))
        dtype = jnp.result_type(*[leaf.dtype for leaf in leaves]) if leaves else jnp.float32
        if n > max_params:  # checked before anything is allocated (params may be ShapeDtypeStructs)
            raise ValueError(
                f"{name}: {n} parameters need a dense {n} x {n} inverse Hessian "
                f"({_gigabytes(n, dtype):.2f} GB in {np.dtype(dtype).name}), above max_params={max_params} "
                f"({_gigabytes(max_params, dtype):.2f} GB). Raise max_params if the memory is there, "
                f"or use a limited-memory method such as 'lbfgs'.")
        zero_i = jnp.zeros((), jnp.int32)
        one = jnp.ones((), dtype)
        return _strong(QuasiNewtonState(
            count=zero_i, hess_inv=jnp.eye(n, dtype=dtype), restart=jnp.ones((), jnp.int32), tau=one, phi=one,
            skipped=zero_i, resets=zero_i, linesearch=linesearch.init(params)))

    def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        if params is None or value is None or value_fn is None:
            raise ValueError(f"{name}: update needs params, value= and value_fn= (the line search "
                             "evaluates the loss), call update(grads, state, params, value=loss, "
                             "grad=grads, value_fn=loss_fn)")
        if grad is None:
            grad = updates
        g, unravel = ravel_pytree(updates)
        H = state.hess_inv
        dtype = H.dtype
        n = H.shape[0]
        g = g.astype(dtype)
        g_at_x = ravel_pytree(grad)[0].astype(dtype)
        eps = jnp.asarray(jnp.finfo(dtype).eps if curvature_eps is None else curvature_eps, dtype)
        one = jnp.ones((), dtype)

        # Direction: d = -c H g, where c = min(1, 1/|g|) scales a fresh identity; a direction that is
        # not a descent one falls back to the scaled steepest descent (H_eff = gamma I).
        gnorm = jnp.sqrt(jnp.sum(g * g))
        gamma = jnp.where(gnorm > 1, _safe_div(one, gnorm), one)
        c = jnp.where(state.restart > 0, gamma, one)
        d_qn = -c * (H @ g)
        slope = jnp.dot(g, d_qn)
        descent = ((slope < 0) & jnp.all(jnp.isfinite(d_qn))) | (gnorm == 0)
        d = jnp.where(descent, d_qn, -gamma * g)
        h_coef = jnp.where(descent, c, 0).astype(dtype)  # H_eff = h_coef H + i_coef I
        i_coef = jnp.where(descent, 0, gamma).astype(dtype)

        step, ls_state = linesearch.update(unravel(d), state.linesearch, params, value=value, grad=grad,
                                           value_fn=value_fn,
                                           **_value_fn_kwargs(value_fn, extra))
        alpha = jnp.asarray(ls_state.learning_rate, dtype)
        new_value = jnp.asarray(ls_state.value, dtype)
        value = jnp.asarray(value, dtype)
        rejected = ~jnp.isfinite(new_value) | (new_value > value + 1e-6 * jnp.abs(value))

        s = alpha * d
        y = ravel_pytree(ls_state.grad)[0].astype(dtype) - g_at_x
        sy = jnp.dot(s, y)
        rho = _safe_div(one, sy)
        Hy = h_coef * (H @ y) + i_coef * y
        yHy = jnp.dot(y, Hy)
        h = rho * yHy
        b = -alpha * rho * jnp.dot(s, g)
        ok = ((sy > eps * jnp.sqrt(jnp.sum(s * s) * jnp.sum(y * y))) & (yHy > 0) & (b > 0)
              & jnp.isfinite(sy) & jnp.isfinite(yHy) & jnp.isfinite(b) & ~rejected)
        b_safe = jnp.where(ok, b, one)
        h_safe = jnp.where(ok, h, one)
        a = jnp.maximum(b_safe * h_safe - 1, 0)
        tau, phi = tau_phi(a, b_safe, h_safe, n)
        ok = ok & jnp.isfinite(tau) & (tau > 0) & jnp.isfinite(phi)
        tau = jnp.where(ok, tau, one).astype(dtype)
        phi = jnp.where(ok, phi, one).astype(dtype)
        inv_yHy = _safe_div(one, yHy)
        v = rho * s - Hy * inv_yHy
        k_u = jnp.where(ok, inv_yHy / tau, 0)
        k_v = jnp.where(ok, phi * yHy / tau, 0)
        k_s = jnp.where(ok, rho, 0)
        k_h = jnp.where(ok, h_coef / tau, h_coef)
        k_i = jnp.where(ok, i_coef / tau, i_coef)
        # One fused pass over P x P: H_new = k_h H + k_i I - k_u Hy Hy^T + k_v v v^T + k_s s s^T.
        new_H = (k_h * H - k_u * jnp.outer(Hy, Hy) + k_v * jnp.outer(v, v) + k_s * jnp.outer(s, s))
        new_H = new_H.at[jnp.diag_indices(n)].add(k_i)
        # A rejected step moves nothing and restarts H from the (scaled, at the next call) identity.
        new_H = jnp.where(rejected, jnp.eye(n, dtype=dtype), new_H)
        step = jax.tree.map(lambda u: jnp.where(rejected, jnp.zeros_like(u), u), step)

        restarted = rejected | (~descent)
        new_state = QuasiNewtonState(
            count=optax.safe_increment(state.count),
            hess_inv=new_H.astype(dtype),
            restart=rejected.astype(jnp.int32),
            tau=tau,
            phi=phi,
            skipped=state.skipped + (~ok & ~rejected).astype(jnp.int32),
            resets=state.resets + restarted.astype(jnp.int32),
            linesearch=ls_state,
        )
        return step, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _ssbfgs_tau_phi(scaling):
    def tau_phi(a, b, h, n):
        one = jnp.ones_like(b)
        if scaling == "al_baali":
            tau = jnp.minimum(one, 1 / b)
        elif scaling == "oren_luenberger":
            tau = 1 / b
        else:
            tau = one
        return tau, one

    return tau_phi


def _ssbroyden_tau_phi(a, b, h, n):
    one = jnp.ones_like(b)
    tiny = jnp.finfo(b.dtype).eps
    c = jnp.sqrt(a / (1 + a))
    rho_minus = jnp.minimum(one, h * (1 - c))
    theta_minus = (rho_minus - 1) / jnp.maximum(a, tiny)
    theta_plus = 1 / rho_minus
    theta = jnp.maximum(theta_minus, jnp.minimum(theta_plus, (1 - b) / b))
    sigma = 1 + theta * a
    r = jnp.minimum(one, 1 / b)
    sigma_n = jnp.abs(sigma) ** (1.0 / (1 - n)) if n > 1 else one
    tau = jnp.where(theta <= 0, jnp.minimum(r * sigma_n, sigma), r * jnp.minimum(sigma_n, 1 / theta))
    phi = (1 - theta) / sigma
    return tau, phi


def ssbfgs(
    *,
    scaling: str = "al_baali",
    max_params: int = 20_000,
    curvature_eps: Optional[float] = None,
    max_linesearch_steps: int = 20,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
) -> optax.GradientTransformationExtraArgs:
    """Self-scaled BFGS with a dense inverse Hessian and a strong-Wolfe zoom line search.

    One call (see the module docstring for the notation and the exact departures)::

        d = -H g,   s = alpha d (zoom line search on value_fn),   y = g(x + s) - g(x)
        H <- (H - H y y^T H / (y^T H y) + (y^T H y) v v^T) / tau + s s^T / (s^T y)
        v = s / (s^T y) - H y / (y^T H y),   b = -alpha s^T g / (s^T y)
        tau = min(1, 1/b) ("al_baali"),  1/b ("oren_luenberger"),  1 ("none": BFGS)

    skipped when s^T y <= curvature_eps |s| |y| (the curvature condition fails).

    Paper: Urban, Stefanou & Pons, J. Comput. Phys. 523, 113656 (2025), eq. 11 (the
    ``SSBFGS_AB`` method of the authors' code), with the scaling of Al-Baali (1998); the
    "oren_luenberger" option is the authors' ``SSBFGS_OL`` (tau = 1/b, from Oren &
    Luenberger 1974), not the initial scaling s^T y / y^T H y of Nocedal & Wright.

    Args:
      scaling: the self-scaling factor tau: "al_baali" (default), "oren_luenberger" or "none".
      max_params: ``init`` refuses more parameters (default 20 000: a 1.6 GB matrix in float32).
      curvature_eps: relative threshold of the curvature condition (None: the dtype's machine
        epsilon).
      max_linesearch_steps: most evaluations of value_fn (and its gradient) per step.
      slope_rtol: c1 of the sufficient-decrease (Armijo) condition.
      curv_rtol: c2 of the strong Wolfe curvature condition (small: a near-exact line search).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update(updates, state, params, *, value,
      grad, value_fn, **extra)`` needs ``params``, ``value`` and ``value_fn`` (the extra keyword
      arguments that ``value_fn`` accepts are passed on to it, others are ignored). It takes no
      learning rate: the step length is the line search's.
    """
    if scaling not in _SCALINGS:
        raise ValueError(f"ssbfgs: scaling must be one of {', '.join(_SCALINGS)}, got {scaling!r}")
    _check_common("ssbfgs", max_params, curvature_eps, max_linesearch_steps, slope_rtol, curv_rtol)
    return _self_scaled("ssbfgs", _ssbfgs_tau_phi(scaling), max_params=max_params,
                        curvature_eps=curvature_eps, max_linesearch_steps=max_linesearch_steps,
                        slope_rtol=slope_rtol, curv_rtol=curv_rtol)


def ssbroyden(
    *,
    max_params: int = 20_000,
    curvature_eps: Optional[float] = None,
    max_linesearch_steps: int = 20,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
) -> optax.GradientTransformationExtraArgs:
    """Self-scaled Broyden family with a dense inverse Hessian and a strong-Wolfe zoom line search.

    One call (see the module docstring for the notation and the exact departures)::

        d = -H g,   s = alpha d (zoom line search on value_fn),   y = g(x + s) - g(x)
        H <- (H - H y y^T H / (y^T H y) + phi (y^T H y) v v^T) / tau + s s^T / (s^T y)
        b = -alpha s^T g / (s^T y),  h = y^T H y / (s^T y),  a = b h - 1
        theta = max(theta^-, min(theta^+, (1 - b)/b)),  phi = (1 - theta)/(1 + a theta)
        tau = min(min(1, 1/b) sigma^{1/(1-n)}, sigma) if theta <= 0
              else min(1, 1/b) min(sigma^{1/(1-n)}, 1/theta),    sigma = 1 + a theta

    with theta^- = (rho^- - 1)/a, theta^+ = 1/rho^-, rho^- = min(1, h (1 - sqrt(a/(1+a)))),
    n the number of parameters; skipped when s^T y <= curvature_eps |s| |y|.

    Paper: Urban, Stefanou & Pons, J. Comput. Phys. 523, 113656 (2025), eqs. 13-23 (the
    ``SSBroyden2`` method of the authors' code), after Al-Baali & Khalfan (2005).

    Args:
      max_params: ``init`` refuses more parameters (default 20 000: a 1.6 GB matrix in float32).
      curvature_eps: relative threshold of the curvature condition (None: machine epsilon).
      max_linesearch_steps: most evaluations of value_fn (and its gradient) per step.
      slope_rtol: c1 of the sufficient-decrease (Armijo) condition.
      curv_rtol: c2 of the strong Wolfe curvature condition.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` (see ``ssbfgs``).
    """
    _check_common("ssbroyden", max_params, curvature_eps, max_linesearch_steps, slope_rtol, curv_rtol)
    return _self_scaled("ssbroyden", _ssbroyden_tau_phi, max_params=max_params,
                        curvature_eps=curvature_eps, max_linesearch_steps=max_linesearch_steps,
                        slope_rtol=slope_rtol, curv_rtol=curv_rtol)


__all__ = ["ssbfgs", "ssbroyden", "QuasiNewtonState"]
