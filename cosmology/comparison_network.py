"""What the model-comparison table (:mod:`cosmology.comparison`) needs from trained networks: their
parameter counts, their moduli under another covariance, the effective number of parameters, and
the flrw-control profile likelihood of Omega_m by retraining at fixed Lambda.

Effective number of parameters. Near the fit theta0 the model moduli are linear,
mu(theta) = mu0 + J (theta - theta0), J = d mu / d theta (N x P). Whitened (W C W^T = I) and with the
offset marginalised (the direction u = W 1 projected out, P_u = I - u u^T / e, e = u.u), the
residuals are r - A (theta - theta0), A = P_u W J. Put a Gaussian prior of unit width on every
network parameter about theta0 (the parameters' own scale: they are initialised and live at O(1)).
The posterior mean is then theta0 + (A^T A + I)^-1 A^T r, the fitted values are H r with the
hat matrix H = A (A^T A + I)^-1 A^T, and the effective number of parameters is its trace
(Hastie & Tibshirani's degrees of freedom of a linear smoother; Spiegelhalter et al. 2002's p_D
for a linear Gaussian model; MacKay 1992's number of well-determined parameters gamma):

    p_eff = tr H = sum_i s_i^2 / (s_i^2 + 1),   s_i the singular values of A   (A = U S V^T).

A direction the data determine much better than the prior (s_i >> 1) counts 1, one they do not
see (s_i << 1) counts 0. Without a prior tr H is the rank of A: ``rank`` reports it too (singular
values above max(N, P) eps_32 s_max, the float32 Jacobian's resolution). k_eff = p_eff + 1 (the
offset). Caveats: p_eff depends on the unit chosen for the prior (it is not invariant under
reparametrisation); and for ``lumpy`` A spans every direction of the network, also those the
field equations forbid, so p_eff is an upper bound on the freedom a certified solution has.
J is computed in reverse mode (the ray tracer's custom_vjp has no forward mode), N vector-Jacobian
products through ``problem.distances`` in vmapped chunks (a ``quick`` lumpy run: P = 870, about a
minute after two of compilation on this 2-core CPU).

Profile by retraining. For ``flrw-control`` (flat FLRW a(t), dust, Lambda) the field equations on
the observer's slice give Omega_m = (G_uu - Lambda) / (3 H_O^2) = 1 - Omega_Lambda
(:func:`cosmology.matter.constraint_source`; G_uu = 3 H^2 for a flat FLRW metric), so fixing Omega_Lambda
fixes Omega_m. :func:`fix_lambda` removes the trainable ``omega_lambda`` and puts the
constant 1 - Omega_m in its place; every other part (network, rays, chi^2) is the problem's own.
Steps of :func:`retrain_profile`, for each Omega_m of the grid: (1) build ``flrw-control`` (the
options of an flrw-control run given to the table, else ``preset="quick"``; the table's data and
covariance); (2) fix Omega_Lambda = 1 - Omega_m; (3) train with the preset's solver settings for
``steps`` steps (default the preset's) from the same seed; (4) the exact chi^2 (one ray serves
every supernova), and the rms Einstein residual r of the last step (the field equations are a soft
objective in ``flrw-control``). chi^2_p(Om) is the minimum over the network only to the extent the
training reached it, and a profile point is a solution at that Omega_m only when r is small. Measured
after 20 steps (quick preset, diagonal errors): Om = 0.37 gives chi^2 682.12, the classical flat-LCDM
value there (682.12), but Om = 0.33 gives 680.96, 1.3 below the classical 682.24, with r rms 0.01: a
residual of 1% of the critical density buys that much. The 1500-step closure runs end at r ~ 7e-3.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree



class EffectiveCount(NamedTuple):
    k_eff: float  # p_eff + 1 (the offset)
    p_eff: float  # sum s^2 / (s^2 + 1)
    rank: int  # numerical rank of the projected whitened Jacobian
    n_params: int  # P
    singular_values: np.ndarray


def moduli_fn(problem):
    """theta (flat, P) -> mu = 5 log10(d_L (1 + z_hel)/(1 + z)) (N,) through ``problem.distances``."""

    def moduli(params):
        return 5.0 * jnp.log10(problem.distances(params) * problem.data.helio)

    return moduli


def moduli_jacobian(moduli, params, chunk: int = 64) -> np.ndarray:
    """J = d mu / d theta (N, P) of ``moduli(params)`` (N,), all leaves of ``params`` raveled, by N
    reverse-mode products e_i^T J in vmapped chunks of ``chunk`` rows (float64 numpy)."""
    flat, unravel = ravel_pytree(params)
    n = int(jax.eval_shape(moduli, params).shape[0])

    @jax.jit
    def rows(cotangents):
        _, vjp = jax.vjp(lambda x: moduli(unravel(x)), flat)
        return jax.vmap(lambda u: vjp(u)[0])(cotangents)

    out = np.empty((n, flat.size), np.float64)
    eye = np.eye(n, dtype=np.asarray(flat).dtype)
    for start in range(0, n, chunk):
        block = eye[start:start + chunk]
        pad = chunk - block.shape[0]
        if pad:
            block = np.concatenate([block, np.zeros((pad, n), block.dtype)])
        out[start:start + chunk] = np.asarray(rows(jnp.asarray(block)))[:chunk - pad]
    return out


def effective_parameters(jacobian: np.ndarray, host, eps: float = float(np.finfo(np.float32).eps)) -> EffectiveCount:
    """p_eff = sum s_i^2 / (s_i^2 + 1) of A = P_u W J (module docstring); ``host`` the table's
    :class:`cosmology.covariance.HostWhitening`; ``eps`` the Jacobian's precision (for ``rank``)."""
    jacobian = np.asarray(jacobian, np.float64)
    if jacobian.ndim != 2 or jacobian.shape[0] != host.mu_obs.shape[0]:
        raise ValueError(f"jacobian must be (N, P) with N = {host.mu_obs.shape[0]}, got {jacobian.shape}")
    a = host.whiten(jacobian)
    a = a - np.outer(host.ones, host.ones @ a / host.ones_norm)
    s = np.linalg.svd(a, compute_uv=False)
    p_eff = float(np.sum(s**2 / (s**2 + 1.0)))
    rank = int(np.sum(s > max(a.shape) * eps * s[0])) if s.size and s[0] > 0 else 0
    return EffectiveCount(p_eff + 1.0, p_eff, rank, jacobian.shape[1], s)


class RunCache:
    """Run directories' problems (rebuilt from config.json) and parameters (their latest checkpoint),
    each built once, for the rows of :func:`cosmology.comparison.compare_runs`; ``host`` and
    ``sample`` are the table's whitening and data."""

    def __init__(self, host, sample):
        self.host, self.sample = host, sample
        self._problems, self._params = {}, {}

    def problem(self, run_dir: str):
        if run_dir not in self._problems:
            from pinnopt.cli.solve import build_problem, saved_settings

            s = saved_settings(run_dir)
            self._problems[run_dir] = build_problem(s["problem"], s.get("problem_kwargs") or {})
        return self._problems[run_dir]

    def params(self, run_dir: str):
        if run_dir not in self._params:
            from pinnopt.cli.solve import load_run

            self._params[run_dir] = load_run(run_dir, self.problem(run_dir))[1]
        return self._params[run_dir]

    def count_parameters(self, run_dir: str) -> Optional[int]:
        """P, the trainable parameters of the run's problem (None when it cannot be rebuilt)."""
        try:
            shapes = jax.eval_shape(self.problem(run_dir).init, jax.random.PRNGKey(0))
        except (ValueError, TypeError, FileNotFoundError, KeyError):
            return None
        return int(sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(shapes)))

    def _same_rows(self, problem) -> bool:
        return problem.data.z.shape[0] == self.sample.n and np.allclose(np.asarray(problem.data.z), self.sample.z)

    def chi2(self, run_dir: str) -> Optional[float]:
        """chi^2 of the run's moduli (its checkpoint, ``problem.distances``) with the table's
        covariance; None when the run cannot be read or has other rows."""
        try:
            problem = self.problem(run_dir)
            if not self._same_rows(problem):
                return None
            mu = jax.jit(moduli_fn(problem))(self.params(run_dir))
        except (ValueError, TypeError, FileNotFoundError, KeyError):
            return None
        return self.host.chi2(np.asarray(mu, np.float64))

    def effective(self, run_dir: str) -> EffectiveCount:
        problem = self.problem(run_dir)
        if not self._same_rows(problem):
            raise ValueError(f"{run_dir}: the run's supernovae are not the table's rows; no k_eff")
        return effective_parameters(moduli_jacobian(moduli_fn(problem), self.params(run_dir)), self.host)


# ----------------------------------------------------------------------------- the profile


@functools.lru_cache(maxsize=None)
def fixed_lambda_type(base: type) -> type:
    """The subclass of the problem class ``base`` whose Omega_Lambda is the constant field
    ``fixed_omega_lambda`` (no trainable parameter). Made from the class it is given, so this module
    need not import :mod:`cosmology.problem` (whose ``compare`` imports the table)."""

    @dataclasses.dataclass(frozen=True, eq=False)
    class FixedLambdaProblem(base):
        fixed_omega_lambda: float = 0.0

        def init(self, key):
            params = super().init(key)
            params.pop("omega_lambda", None)
            return params

        def omega_lambda(self, params):
            return jnp.asarray(self.fixed_omega_lambda, jnp.result_type(float))

        def config(self) -> dict:
            return {**super().config(), "fixed_omega_lambda": self.fixed_omega_lambda}

    return FixedLambdaProblem


def fix_lambda(problem, omega_lambda: float):
    """``problem`` (flat FLRW with Lambda: ``flrw-control``) with Omega_Lambda fixed, so Omega_m = 1 - Omega_Lambda."""
    cfg = problem.cfg
    if cfg.metric != "flrw" or not cfg.cosmological_constant or cfg.learn_curvature or cfg.density != "constraint":
        raise ValueError("profile_grid: fixing Lambda fixes Omega_m only for flat FLRW with a cosmological constant "
                         "and the derived density (flrw-control)")
    fields = {f.name: getattr(problem, f.name) for f in dataclasses.fields(problem) if f.name != "fixed_omega_lambda"}
    return fixed_lambda_type(type(problem))(**fields, fixed_omega_lambda=float(omega_lambda))


class ProfilePoint(NamedTuple):
    omega_m: float  # the grid value
    chi2: float  # exact chi^2 after retraining
    omega_m_model: float  # Omega_m the trained metric has (= 1 - Omega_Lambda up to float32)
    residual_rms: float  # rms Einstein residual r at the final (held-out, else training) points: a solution needs r << 1
    steps: int
    wall_s: float


def _base_options(run_dirs: Sequence[str]) -> dict:
    """The problem options of the first flrw-control run among ``run_dirs``, else the quick preset."""
    from pinnopt.cli.solve import saved_settings

    for run_dir in run_dirs:
        try:
            s = saved_settings(run_dir)
        except ValueError:
            continue
        if s.get("problem") == "flrw-control":
            return dict(s.get("problem_kwargs") or {})
    return {"preset": "quick"}


def retrain_profile(grid: Sequence[float], *, steps: Optional[int] = None, data_path=None, covariance=None,
                    run_dirs: Sequence[str] = (), seed: int = 0, log=print) -> list[ProfilePoint]:
    """chi^2 of ``flrw-control`` retrained at each Omega_m of ``grid`` (module docstring, steps 1-4)."""
    from pinnopt.training.solve import solve

    grid = [float(v) for v in grid]
    if not grid or any(not 0.0 < v < 1.0 for v in grid):
        raise ValueError(f"profile_grid: Omega_m values must lie in (0, 1), got {grid}")
    if steps is not None and (isinstance(steps, bool) or int(steps) != steps or steps < 1):
        raise ValueError(f"profile_steps must be an integer >= 1, got {steps!r}")
    options = _base_options(run_dirs)
    if data_path is not None:
        options["data_path"] = data_path
    if covariance is not None:
        options["covariance"] = covariance
    from pinnopt import problems

    base = problems.get("flrw-control", **options)
    d = base.solve_defaults()
    steps = int(steps or d["steps"])
    points = []
    for om in grid:
        problem = fix_lambda(base, 1.0 - om)
        t0 = time.perf_counter()
        res = solve(problem, optimizer=d["optimizer"], optimizer_kwargs=d["optimizer_kwargs"],
                    constraints=d["constraints"], constraint_kwargs=d["constraint_kwargs"], balancing=d["balancing"],
                    steps=steps, chunk=min(d["chunk"], steps), seed=seed)
        ev = jax.jit(problem.evaluate)(res.params)
        final = res.summary.get("final") or {}
        mean_r2 = final.get("heldout_raw/einstein", final.get("raw/einstein", math.nan))
        points.append(ProfilePoint(om, float(ev["chi2"]), float(ev["omega_m"]), math.sqrt(float(mean_r2)), steps,
                                   time.perf_counter() - t0))
        if log is not None:
            log(f"profile: Om = {om:.4f}: chi2 = {points[-1].chi2:.3f}, Einstein residual rms "
                f"{points[-1].residual_rms:.2g} after {steps} steps ({points[-1].wall_s:.0f} s)")
    return points


__all__ = ["EffectiveCount", "fixed_lambda_type", "ProfilePoint", "RunCache", "effective_parameters", "fix_lambda",
           "moduli_fn", "moduli_jacobian", "retrain_profile"]
