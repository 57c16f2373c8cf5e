"""Least-squares optimizers: Gauss-Newton and Levenberg-Marquardt (ENGD is in ``engd``).

They minimise L(x) = |R(x)|^2 + const, with R the residual vector (M,) that the solve loop
passes as ``residual_fn`` (``pinnopt.training.step``) and x all parameter leaves raveled into
one vector (P,) (``jax.flatten_util.ravel_pytree``). Each update linearises R at x,
R(x + d) ~ R + J d with the Jacobian J (M x P), and takes the damped step::

    d = -(J^T J + lam I)^{-1} J^T R            (minimises |R + J d|^2 + lam |d|^2)

solved through the smaller of two equivalent systems (the push-through identity
(J^T J + lam I)^{-1} J^T = J^T (J J^T + lam I)^{-1} makes them give the same d):

- P <= M: the P x P normal equations (J^T J + lam I) d = -J^T R;
- M < P:  the M x M Gram system (J J^T + lam I) a = R, then d = -J^T a. With lam -> 0 this is
  the minimum-norm step, J^T (J J^T)^{-1} the pseudo-inverse of J.

The Jacobian is built in forward mode (``jax.jacfwd``, P Jacobian-vector products) when
P < M and in reverse mode (``jax.jacrev``, M vector-Jacobian products) otherwise: each builds
J with the fewer passes. The damping is plain identity damping, lam I (absolute: in the units
of J^T J, i.e. of the loss), not Marquardt's lam diag(J^T J): it is the same term in both
systems and gives the minimum-norm step as lam -> 0 (Marquardt's scaling would have to rescale
the Gram form by diag(J^T J)^{-1/2}). The system matrix A (J^T J or J J^T) is symmetric
positive semi-definite; A + lam I is factored by Cholesky with a relative jitter
10 eps mean(diag A) added to lam (eps the dtype's machine epsilon: 1.2e-6 relative in float32,
2.2e-15 in float64), and if that factorisation still fails (a non-finite solution, from
rounding in a rank-deficient A) the system is solved with an eigendecomposition that drops the
eigenvalues below n eps max(eig) (a pseudo-inverse). With lam = 0 and a rank-deficient J the
step still minimises |R + J d|, but rounding sets its part in the null space of J: a damping
well above eps |J|^2 (the defaults) makes it the minimum-norm one.

Cost and memory: J holds M P numbers, the system min(P, M)^2; ``max_size`` bounds the latter,
checked when the update is first traced (an error that states the sizes). The optimizers
ignore the gradient they are passed (J^T R is the half-gradient); ``residual_fn`` is required.
States are NamedTuples of arrays with fixed dtypes (the parameters' floating dtype: float32 by
default, float64 under x64), valid ``lax.scan`` carries that never retrace a jitted step.
"""
from __future__ import annotations

import numbers
from typing import Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

DEFAULT_MAX_SIZE = 2**26  # elements of the min(P, M)^2 system: 8192^2, 256 MiB in float32

_NEEDS_RESIDUALS = ("{name}: update needs the solve loop's residual_fn= (the loss as a least-squares problem, "
                    "loss = sum(R^2) + const): use the 'sum' balancer with the 'penalty' or 'al' constraint "
                    "method, and build every objective with Objective.of_residual(r)")


# ---------------------------------------------------------------------------------------------
# Validation of hyperparameters (at construction: a ValueError naming the option).

def _real(name: str, option: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name}: {option} must be a finite number, got {value!r}")
    return float(value)


def check_non_negative(name: str, option: str, value) -> float:
    value = _real(name, option, value)
    if value < 0:
        raise ValueError(f"{name}: {option} must be >= 0, got {value!r}")
    return value


def check_positive(name: str, option: str, value) -> float:
    value = _real(name, option, value)
    if not value > 0:
        raise ValueError(f"{name}: {option} must be > 0, got {value!r}")
    return value


def check_max_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: max_size must be a positive integer (elements of the min(P, M)^2 linear "
                         f"system), got {value!r}")
    return int(value)


def check_learning_rate(name: str, value) -> Union[float, Callable]:
    return value if callable(value) else check_positive(name, "learning_rate", value)


# ---------------------------------------------------------------------------------------------
# The shared linear algebra.

def float_dtype(flat: jax.Array):
    """The dtype of the states and of the linear algebra: the parameters' floating dtype."""
    if flat.size and jnp.issubdtype(flat.dtype, jnp.floating):
        return flat.dtype
    return jnp.zeros(()).dtype  # float32, or float64 under x64


def require_residual_fn(name: str, residual_fn) -> None:
    if residual_fn is None:
        raise ValueError(_NEEDS_RESIDUALS.format(name=name))


def check_size(name: str, n_params: int, n_residuals: int, max_size: int, dtype) -> None:
    """A ValueError when the min(P, M)^2 system has more than ``max_size`` elements."""
    n = min(n_params, n_residuals)
    if n * n <= max_size:
        return
    item = np.dtype(dtype).itemsize
    mib = lambda k: f"{k * item / 2**20:.3g} MiB"
    raise ValueError(
        f"{name}: the linear system would be {n} x {n} = {n * n} elements ({mib(n * n)} in "
        f"{np.dtype(dtype).name}), over max_size = {max_size} ({mib(max_size)}); P = {n_params} "
        f"parameters, M = {n_residuals} residuals (the Jacobian alone is M x P, {mib(n_params * n_residuals)}). "
        f"Pass a larger max_size= if that memory is available, or use fewer parameters or points")


class Linearization(NamedTuple):
    """R and J of the flat residual at the flat parameters x, and how to get back a pytree."""

    x: jax.Array  # (P,)
    residuals: jax.Array  # R (M,)
    jacobian: jax.Array  # J (M, P)
    unravel: Callable
    residual_at: Callable  # flat x -> R(x) (M,)


def linearize(name: str, residual_fn: Callable, params, max_size: int) -> Linearization:
    """Flatten ``params``, evaluate R and build J (forward mode when P < M, else reverse)."""
    require_residual_fn(name, residual_fn)
    x, unravel = ravel_pytree(params)
    dtype = float_dtype(x)
    x = x.astype(dtype)

    def residual_at(flat):
        r = jnp.asarray(residual_fn(unravel(flat)))
        if r.ndim != 1:
            raise ValueError(f"{name}: residual_fn must return a vector (M,), got shape {r.shape}")
        return r.astype(dtype)

    n_residuals = jax.eval_shape(residual_at, x).shape[0]
    check_size(name, x.size, n_residuals, max_size, dtype)
    jac = jax.jacfwd if x.size < n_residuals else jax.jacrev
    return Linearization(x, residual_at(x), jac(residual_at)(x), unravel, residual_at)


def _spd_solve(a: jax.Array, b: jax.Array, damping) -> jax.Array:
    """x with (a + damping I) x = b for a symmetric PSD ``a`` (n x n); see the module docstring."""
    n = a.shape[0]
    eps = jnp.finfo(a.dtype).eps
    scale = jnp.maximum(jnp.mean(jnp.diagonal(a)), jnp.finfo(a.dtype).tiny)
    shifted = a + (damping + 10 * eps * scale) * jnp.eye(n, dtype=a.dtype)
    x = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(shifted, lower=True), b)

    def pseudo_inverse(_):
        w, v = jnp.linalg.eigh(a)
        keep = w > n * eps * jnp.max(w)
        inv = jnp.where(keep, 1 / jnp.where(keep, w + damping, 1), 0)
        return v @ (inv * (v.T @ b))

    return lax.cond(jnp.all(jnp.isfinite(x)), lambda _: x, pseudo_inverse, None)


def damped_step(jacobian: jax.Array, residuals: jax.Array, damping) -> jax.Array:
    """d = -(J^T J + damping I)^{-1} J^T R, through the P x P system when P <= M, else the M x M one."""
    m, p = jacobian.shape
    damping = jnp.asarray(damping, jacobian.dtype)
    if m == 0:
        return jnp.zeros((p,), jacobian.dtype)
    if p <= m:
        return -_spd_solve(jacobian.T @ jacobian, jacobian.T @ residuals, damping)
    return -jacobian.T @ _spd_solve(jacobian @ jacobian.T, residuals, damping)


def _as_updates(lin: Linearization, step: jax.Array):
    """The flat step as a pytree shaped (and typed) like the parameters."""
    return lin.unravel(step.astype(lin.x.dtype))


# ---------------------------------------------------------------------------------------------
# Gauss-Newton.

class GaussNewtonState(NamedTuple):
    """State of ``gauss_newton``: the number of updates (for a learning-rate schedule)."""

    count: jax.Array  # int32


def gauss_newton(
    damping: float = 1e-8,
    learning_rate: Union[float, optax.Schedule] = 1.0,
    max_size: int = DEFAULT_MAX_SIZE,
) -> optax.GradientTransformationExtraArgs:
    """Damped Gauss-Newton on the least-squares residuals.

    Update::

        d = -(J^T J + damping I)^{-1} J^T R,     params <- params + learning_rate * d

    with R the residual vector (M,) and J its Jacobian (M x P) at the current parameters,
    solved as the P x P normal equations when P <= M, as the M x M Gram system
    (J J^T + damping I) a = R, d = -J^T a when M < P (the same d; the minimum-norm step as
    damping -> 0). See the module docstring for the Jacobian mode and the solver.

    Reference: the Gauss-Newton method; J. Nocedal and S. J. Wright, "Numerical Optimization",
    2nd ed., Springer 2006, section 10.3.

    Args:
      damping: lam >= 0 added to the diagonal (Tikhonov; keeps the system solvable when J is
        rank deficient, as a network's Jacobian usually is).
      learning_rate: the factor on d (> 0), or a schedule of the update count; 1 is the full
        Gauss-Newton step.
      max_size: the largest number of elements of the min(P, M)^2 system; a larger problem is
        a ValueError at the first update.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose ``update(updates, state, params, *,
      residual_fn)`` needs ``params`` and the solve loop's ``residual_fn`` (R of a parameter
      pytree); the gradient ``updates`` is not used.
    """
    damping = check_non_negative("gauss_newton", "damping", damping)
    learning_rate = check_learning_rate("gauss_newton", learning_rate)
    max_size = check_max_size("gauss_newton", max_size)

    def init_fn(params):
        del params
        return GaussNewtonState(count=jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None, *, residual_fn=None, value_fn=None, value=None, **extra):
        del updates, value_fn, value, extra
        require_residual_fn("gauss_newton", residual_fn)
        if params is None:
            raise ValueError("gauss_newton: update needs params (update(grads, state, params, residual_fn=...))")
        lin = linearize("gauss_newton", residual_fn, params, max_size)
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        step = jnp.asarray(lr, lin.x.dtype) * damped_step(lin.jacobian, lin.residuals, damping)
        return _as_updates(lin, step), GaussNewtonState(count=state.count + 1)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# Levenberg-Marquardt.

class LevenbergMarquardtState(NamedTuple):
    """State of ``levenberg_marquardt``.

    damping: lam of the next update (the parameters' dtype).
    factor: nu, the factor on lam after the next rejected step (doubles with each rejection in a row).
    gain: the gain ratio rho of the last update (NaN before the first; -inf for a non-finite trial).
    count: updates so far (int32).
    rejected: updates whose step was rejected (a zero update), so far (int32).
    """

    damping: jax.Array
    factor: jax.Array
    gain: jax.Array
    count: jax.Array
    rejected: jax.Array


def levenberg_marquardt(
    init_damping: float = 1e-3,
    increase: float = 2.0,
    decrease: float = 1 / 3,
    min_damping: float = 1e-12,
    max_damping: float = 1e12,
    max_size: int = DEFAULT_MAX_SIZE,
) -> optax.GradientTransformationExtraArgs:
    """Levenberg-Marquardt with Nielsen's adaptive damping (alias ``lm``).

    Update, with R and J (M x P) at the current parameters x, lam = state.damping and
    nu = state.factor (``increase`` at the start)::

        d     = -(J^T J + lam I)^{-1} J^T R                         (identity damping)
        pred  = |R|^2 - |R + J d|^2 = -(2 d^T J^T R + |J d|^2)      (decrease the linear model predicts)
        rho   = (|R(x)|^2 - |R(x + d)|^2) / pred                    (gain ratio: actual / predicted)
        rho > 0 (the loss fell): update d,
                 lam <- lam * max(decrease, 1 - (2 rho - 1)^3),  nu <- increase
        otherwise (or a non-finite trial): update 0,
                 lam <- lam * nu,  nu <- 2 nu
        lam is then clipped to [min_damping, max_damping].

    |R|^2 is the loss up to a constant, so rho is also (L(x) - L(x + d)) / pred. A rejected step
    leaves the parameters where they were and retries with a larger damping at the next update
    (on the next batch; with a fixed collocation set, ``resample_every=0``, the same problem).
    The linear system is the P x P one when P <= M, the M x M Gram one when M < P (see the
    module docstring). Small lam gives Gauss-Newton steps, large lam short gradient steps
    -J^T R / lam. Nielsen's rule changes lam smoothly with rho: the classic x10 / /10 rule
    alternates rejected and accepted steps when the model is good (on Rosenbrock from
    (-1.2, 1), reaching |x - x*| < 1e-8 takes it 50 updates, this rule 23).

    References: K. Levenberg, "A method for the solution of certain non-linear problems in
    least squares", Quart. Appl. Math. 2 (1944); D. W. Marquardt, "An algorithm for
    least-squares estimation of nonlinear parameters", SIAM J. Appl. Math. 11 (1963);
    H. B. Nielsen, "Damping parameter in Marquardt's method", IMM-REP-1999-05, DTU (1999)
    (the gain ratio and the damping rule; also K. Madsen, H. B. Nielsen, O. Tingleff,
    "Methods for non-linear least squares problems", 2004, Algorithm 3.16).

    Args:
      init_damping: lam of the first update (> 0).
      increase: nu after an accepted step and at the start (> 1): the factor on lam after the
        first rejected step in a row (each further one doubles it).
      decrease: the smallest factor (in (0, 1)) on lam after an accepted step.
      min_damping, max_damping: bounds of lam (0 <= min_damping <= init_damping <= max_damping).
      max_size: the largest number of elements of the min(P, M)^2 system; a larger problem is
        a ValueError at the first update.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose ``update(updates, state, params, *,
      residual_fn)`` needs ``params`` and the solve loop's ``residual_fn``; the gradient is not
      used.
    """
    name = "levenberg_marquardt"
    init_damping = check_positive(name, "init_damping", init_damping)
    increase = check_positive(name, "increase", increase)
    if not increase > 1:
        raise ValueError(f"{name}: increase must be > 1 (the factor on the damping after a rejected step), "
                         f"got {increase!r}")
    decrease = check_positive(name, "decrease", decrease)
    if not decrease < 1:
        raise ValueError(f"{name}: decrease must lie in (0, 1) (the smallest factor on the damping after an "
                         f"accepted step), got {decrease!r}")
    min_damping = check_non_negative(name, "min_damping", min_damping)
    max_damping = check_positive(name, "max_damping", max_damping)
    if not min_damping <= init_damping <= max_damping:
        raise ValueError(f"{name}: need min_damping <= init_damping <= max_damping, got min_damping="
                         f"{min_damping!r}, init_damping={init_damping!r}, max_damping={max_damping!r}")
    max_size = check_max_size(name, max_size)

    def init_fn(params):
        dtype = float_dtype(ravel_pytree(params)[0])
        return LevenbergMarquardtState(damping=jnp.asarray(init_damping, dtype), factor=jnp.asarray(increase, dtype),
                                       gain=jnp.asarray(jnp.nan, dtype), count=jnp.zeros((), jnp.int32),
                                       rejected=jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None, *, residual_fn=None, value_fn=None, value=None, **extra):
        del updates, value_fn, value, extra
        require_residual_fn(name, residual_fn)
        if params is None:
            raise ValueError(f"{name}: update needs params (update(grads, state, params, residual_fn=...))")
        lin = linearize(name, residual_fn, params, max_size)
        dtype = state.damping.dtype
        j, r = lin.jacobian, lin.residuals
        d = damped_step(j, r, state.damping.astype(j.dtype))
        jd = j @ d
        predicted = -(2 * jnp.vdot(jd, r) + jnp.vdot(jd, jd))  # d^T J^T R = (J d)^T R
        trial = lin.residual_at(lin.x + d)
        actual = jnp.vdot(r, r) - jnp.vdot(trial, trial)
        finite = jnp.isfinite(actual) & jnp.all(jnp.isfinite(d))
        gain = jnp.where(finite, actual / jnp.where(predicted > 0, predicted, jnp.inf), -jnp.inf)
        accept = finite & (actual > 0) & (predicted > 0)
        shrink = jnp.maximum(decrease, 1 - (2 * jnp.where(accept, gain, 0) - 1) ** 3)
        damping = jnp.clip(state.damping * jnp.where(accept, shrink, state.factor), min_damping, max_damping)
        factor = jnp.where(accept, increase, 2 * state.factor)
        step = jnp.where(accept, d, jnp.zeros_like(d))
        new_state = LevenbergMarquardtState(damping=damping.astype(dtype), factor=factor.astype(dtype),
                                            gain=gain.astype(dtype), count=state.count + 1,
                                            rejected=state.rejected + (~accept).astype(jnp.int32))
        return _as_updates(lin, step), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


lm = levenberg_marquardt

__all__ = ["DEFAULT_MAX_SIZE", "GaussNewtonState", "LevenbergMarquardtState", "damped_step", "gauss_newton",
           "levenberg_marquardt", "linearize", "lm"]
