"""The cosmology problems: learn a metric from Pantheon+ under Einstein's equations.

Three problems share this code (registered as ``pinnopt.problems`` entry points):

- ``lumpy`` (:func:`make_lumpy`): an inhomogeneous metric network (comoving synchronous
  gauge, or all ten components), comoving dust with a trainable Omega_m in [0.05, 1],
  Lambda off by default (the question: can inhomogeneity replace it?).
- ``flrw-control`` (:func:`make_flrw_control`): the closure test of the pipeline, a learned
  FLRW scale factor a(t) with dust and a trainable Lambda, whose fitted Omega_m must agree
  with the classical flat-LCDM fit of the same data.
- ``open-control`` (:func:`make_open_control`): a learned FLRW a(t) with a trainable curvature
  Omega_k and no Lambda, the best open CDM universe.

The dust's density comes from the field equations on the observer's slice, carried along the
worldlines by rest-mass conservation (``density="constraint"``, :mod:`cosmology.matter`), so
Omega_m is derived from the geometry; ``density="uniform"`` keeps the former chart-dependent
construction with a trained Omega_m.

Terms (``terms(params, batch)``)

- ``einstein`` (Constraint eq, point-wise, ``tol=einstein_tol``): the dimensionless residual
  r = |G_ab + Lambda g_ab - kappa rho u_a u_b| / (3 H^2 + kappa rho) (:mod:`cosmology.matter`),
  enforced by the constraint method and certified at held-out points at the end of the run;
  ``einstein="objective"`` keeps the old soft form r(x)^2 in the loss, for comparison: there a
  leftover residual acts as a missing source (dark energy, say) whose size depends on the loss
  weights, which is why the hard form is the default. Fresh collocation points every step:
  ``sn_fraction`` of them in the supernova era, the rest in the deep past, all in a ball of
  comoving radius at least the distance to the farthest supernova (the whole region the
  light rays cross).
- ``supernovae`` (Objective, per supernova): the squared whitened residuals of the distance
  moduli, offset marginalised; their mean is chi^2 / N. Distances come from rays traced
  through the metric on a sky grid (:mod:`cosmology.supernovae`).
- ``weak_energy`` or ``ricci_positive`` (Constraint ineq, point-wise): the weak energy
  condition on the matter the geometry implies, T_eff = (G + Lambda g) / kappa (rho >= 0 and
  rho + p_i >= 0 for its principal pressures), or the seeds' proxy R >= 0; divided by the
  same local scale.
- ``cmb_expansion``, ``cmb_shear``, ``cmb_homogeneity`` (Constraint ineq, point-wise in the
  early-time window): -min_i H_i / H_s <= 0, sigma^2 / H^2 - tol <= 0 and |D rho| / (rho H) - tol
  <= 0 of the dust, with H_s^2 = H^2 + kappa rho / 3 (the seeds' three CMB priors, as scalars:
  :mod:`cosmology.priors`).

Parameters: ``{"metric": flax params, "omega_m": raw (bounded by a sigmoid; density "uniform"
only), "omega_lambda": Omega_Lambda}`` (the last only when Lambda is on).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from cosmology import cmb_distance, collocation, kinematics, matter, raytrace, supernovae
from cosmology.conventions import C_KM_S, OBSERVER
from cosmology.metric import Background, FLRWMetric, GeneralMetric, SynchronousMetric, bind, init_params
from cosmology.collocation import _ball, domain  # noqa: F401  (domain: re-exported)
from cosmology.presets import CosmologyConfig, get_flrw_control, get_open_control, get_preset
from cosmology.point_physics import deceleration, einstein_term, point_fields  # noqa: F401  (re-exported)
from cosmology.priors import cmb_prior_values
from pinnopt.terms import Constraint, Objective

ENERGY_TERM = {"weak": "weak_energy", "ricci": "ricci_positive"}


# ----------------------------------------------------------------------------- the problem


@dataclasses.dataclass(frozen=True, eq=False)
class CosmologyProblem:
    """A metric network fitted to supernovae under Einstein's equations (module docstring)."""

    cfg: CosmologyConfig
    model: Any  # the flax metric network
    data: supernovae.SupernovaData
    windows: dict  # code-unit times and radius of the sampling domain
    eval_points: np.ndarray  # fixed points of the early window for evaluate()
    data_info: dict
    plan: Any  # raytrace.RayPlan: the one ray of an isotropic metric, else the sky grid's (for the plots)
    name: str = "lumpy"
    host: Any = None  # cosmology.covariance.HostWhitening: the data's float64 whitening (summaries, plots)

    # --- parameters and the metric

    def init(self, key):
        cfg = self.cfg
        params = {"metric": init_params(self.model, key)}
        if cfg.density == "uniform":
            params["omega_m"] = jnp.asarray(matter.unbounded(cfg.omega_m_init, *cfg.omega_m_bounds), jnp.float32)
        if cfg.cosmological_constant:
            params["omega_lambda"] = jnp.asarray(cfg.omega_lambda_init, jnp.float32)
        if cfg.observer_velocity == "trainable":  # beta relative to the comoving observer, units of c
            params["observer_velocity"] = jnp.zeros(3, jnp.float32)
        return params

    def metric_fn(self, params) -> Callable:
        """g(x) in code coordinates (with the network's fast jet)."""
        return bind(self.model, params["metric"])

    def omega_m(self, params):
        """The observer's Omega_m: trained ("uniform") or derived from the geometry ("constraint")."""
        if self.cfg.density == "uniform":
            return matter.omega_m_from_raw(params["omega_m"], self.cfg.omega_m_bounds)
        return self.source(params).omega_m

    def omega_lambda(self, params):
        return params["omega_lambda"] if "omega_lambda" in params else jnp.zeros((), jnp.float32)

    def source(self, params, metric_fn=None) -> matter.Source:
        """Omega_m, Omega_Lambda and the dust, fixed at the observer (H_O: the dust's Hubble rate there)."""
        metric_fn = self.metric_fn(params) if metric_fn is None else metric_fn
        observer = jnp.asarray(OBSERVER)
        hubble = kinematics.comoving_kinematics(metric_fn, observer).mean_hubble_rate
        if self.cfg.density == "uniform":
            return matter.make_source(metric_fn(observer), hubble, self.omega_m(params), self.omega_lambda(params))
        return matter.constraint_source(metric_fn, observer, hubble, self.omega_lambda(params))

    # --- collocation points

    def sample(self, key, step):
        """Fresh points every step: {"points": (n_points, 4), "cmb": (n_cmb, 4)} in code units,
        and the sky grid's ray directions ``"rays"`` (K, 3) (the same every step; they travel
        in the batch so that a run on several devices splits the rays like the points)."""
        del step
        cfg, w = self.cfg, self.windows
        k_sn, k_past, k_cmb, k_space, k_cmb_space = jax.random.split(key, 5)
        n_sn = cfg.n_sn_era()
        times = [jax.random.uniform(k_sn, (n_sn,), jnp.float32, w["sn_start"], 0.0)]
        if cfg.n_points > n_sn:  # the deep past, uniform in ln a (cosmology.collocation)
            times.append(collocation.past_times(k_past, cfg.n_points - n_sn, w["start"], w["sn_start"],
                                                self.model.background))
        points = jnp.concatenate([jnp.concatenate(times)[:, None], _ball(k_space, cfg.n_points, w["radius"])], axis=1)
        batch = {"points": points}
        if cfg.cmb_priors:
            t_cmb = jax.random.uniform(k_cmb, (cfg.n_cmb,), jnp.float32, w["cmb"][0], w["cmb"][1])
            batch["cmb"] = jnp.concatenate([t_cmb[:, None], _ball(k_cmb_space, cfg.n_cmb, w["radius"])], axis=1)
        if not self.isotropic:
            batch["rays"] = jnp.asarray(self.data.ray_directions)
        return batch

    # --- point-wise physics

    def fields(self, params, points, metric_fn=None, source=None) -> dict:
        """:func:`point_fields` at ``points`` (N, 4)."""
        metric_fn = self.metric_fn(params) if metric_fn is None else metric_fn
        src = self.source(params, metric_fn) if source is None else source
        return jax.vmap(lambda x: point_fields(metric_fn, x, src, self.cfg.energy_condition))(points)

    def early_fields(self, params, points, metric_fn=None, source=None) -> dict:
        """:func:`cmb_prior_values` at ``points`` (N, 4)."""
        metric_fn = self.metric_fn(params) if metric_fn is None else metric_fn
        src = self.source(params, metric_fn) if source is None else source
        cfg = self.cfg
        return jax.vmap(lambda x: cmb_prior_values(metric_fn, x, src, cfg.shear_tolerance,
                                                   cfg.homogeneity_tolerance))(points)

    # --- supernovae

    def distances(self, params, metric_fn=None, rays=None) -> jax.Array:
        """d_L (N,) of every supernova, code units: exact along one ray for an isotropic
        metric (FLRW), else rays on the sky grid interpolated (:mod:`cosmology.supernovae`).

        ``rays``: the grid's directions (K, 3) as they come in the batch (possibly split over
        devices); None uses the problem's own copy (evaluation outside the training step).
        """
        metric_fn = self.metric_fn(params) if metric_fn is None else metric_fn
        options = raytrace.RayOptions(max_steps=self.cfg.max_ray_steps)
        observer = jnp.asarray(OBSERVER)
        velocity = self.observer_velocity(params, metric_fn)
        if self.isotropic:
            return raytrace.luminosity_distance_by_ray(metric_fn, observer, self.plan, options=options)
        rays = self.data.ray_directions if rays is None else rays
        nodes = raytrace.luminosity_distance_along_rays(metric_fn, observer, rays, self.data.z_nodes,
                                                        options=options, observer_velocity=velocity)
        return supernovae.supernova_distances(nodes, self.data)

    def observer_velocity(self, params, metric_fn=None):
        """The observer's 4-velocity u^a (4,) for the tracer's ``observer_velocity``: None (the comoving
        observer) unless ``observer_velocity="trainable"``, then :func:`supernovae.moving_observer`
        with beta = params["observer_velocity"] (3,)."""
        if "observer_velocity" not in params:
            return None
        metric_fn = self.metric_fn(params) if metric_fn is None else metric_fn
        return supernovae.moving_observer(metric_fn, jnp.asarray(OBSERVER), params["observer_velocity"])

    @property
    def isotropic(self) -> bool:
        """One exact ray serves every supernova (an FLRW metric seen by its comoving observer)."""
        return self.cfg.metric == "flrw" and self.cfg.observer_velocity == "fixed"

    @property
    def host_whitening(self):
        """The data's whitening in float64 (:class:`cosmology.covariance.HostWhitening`), as factored on
        the host; rebuilt from the cast factor for a problem made without it."""
        if self.host is not None:
            return self.host
        from cosmology import covariance

        return covariance.from_factor(self.data.whitening.mu_obs, self.data.whitening.factor)

    # --- the terms

    def terms(self, params, batch):
        cfg = self.cfg
        metric_fn = self.metric_fn(params)
        src = self.source(params, metric_fn)
        points = batch["points"]
        f = self.fields(params, points, metric_fn, src)
        w = supernovae.whitened_residuals(self.distances(params, metric_fn, batch.get("rays")), self.data)
        terms = {"einstein": einstein_term(f["residual"], points, cfg), "supernovae": Objective(w**2)}
        if cfg.energy_condition != "none":
            terms[ENERGY_TERM[cfg.energy_condition]] = Constraint(f["energy_condition"], "ineq", coords=points)
        if cfg.cmb_priors:
            e = self.early_fields(params, batch["cmb"], metric_fn, src)
            for name in ("expansion", "shear", "homogeneity"):
                terms[f"cmb_{name}"] = Constraint(e[name], "ineq", coords=batch["cmb"])
        if cfg.cmb_distance_prior:  # Planck 2018 (R, l_A): loss chi^2_CMB / N_SN (cosmology.cmb_distance)
            terms["cmb_distance"] = cmb_distance.objective(self, metric_fn, src)
        return terms

    def _pointwise(self, params, batch) -> dict:
        """The residual r and every constraint's values at ``batch`` (what ``terms`` returns, minus rays)."""
        cfg = self.cfg
        metric_fn = self.metric_fn(params)
        src = self.source(params, metric_fn)
        f = self.fields(params, batch["points"], metric_fn, src)
        out = {"einstein": f["residual"]}
        if cfg.energy_condition != "none":
            out[ENERGY_TERM[cfg.energy_condition]] = f["energy_condition"]
        if cfg.cmb_priors:
            e = self.early_fields(params, batch["cmb"], metric_fn, src)
            out.update({f"cmb_{name}": e[name] for name in ("expansion", "shear", "homogeneity")})
        return out

    # --- diagnostics

    def step_metrics(self, params) -> dict:
        """Cheap scalars logged at every logged step: the physical parameters."""
        out = {"omega_m": self.omega_m(params)}
        if self.cfg.cosmological_constant:
            out["omega_lambda"] = self.omega_lambda(params)
        if "observer_velocity" in params:  # beta c in km/s on the comoving observer's frame axes
            for axis, v in zip("xyz", params["observer_velocity"] * C_KM_S):
                out[f"observer_v{axis}_km_s"] = v
        return out

    def evaluate(self, params) -> dict:
        """Scalars at held-out checks (jittable): Omega_m, Omega_Lambda, Lambda, H0, q0, chi^2, ..."""
        metric_fn = self.metric_fn(params)
        src = self.source(params, metric_fn)
        d_l = self.distances(params, metric_fn)
        chi2 = jnp.sum(supernovae.whitened_residuals(d_l, self.data) ** 2)
        out = {
            "omega_m": src.omega_m,
            "omega_lambda": src.omega_lambda,
            "omega_k": 1.0 - src.omega_m - src.omega_lambda,  # FLRW: -k / (a_0 H_0)^2; else curvature + shear share
            "lambda": src.cosmological_constant,
            "hubble_code": src.hubble,
            "h0": supernovae.hubble_constant(d_l, self.data, src.hubble),
            "q0": deceleration(metric_fn, jnp.asarray(OBSERVER)),
            "chi2": chi2,
            "chi2_dof": chi2 / self.dof,
        }
        if self.cfg.cmb_priors:
            e = self.early_fields(params, jnp.asarray(self.eval_points), metric_fn, src)
            out["early_min_hubble_rate"] = jnp.min(e["hubble_rates"])
            out["early_max_shear_ratio"] = jnp.max(e["shear"]) + self.cfg.shear_tolerance
        if self.cfg.cmb_distance_prior:
            out.update(cmb_distance.evaluate(self, metric_fn, src))
        return out

    @property
    def dof(self) -> int:
        """N - p: N rows (light curves, duplicates of one supernova each counted: not
        ``data_info["n_unique"]``) minus the fitted constants p: the offset, Omega_m, Lambda (when
        on) and the 3 components of a trainable observer velocity. Why N and not the number of
        supernovae: :mod:`cosmology.likelihood`, "Degrees of freedom"."""
        velocity = 3 if self.cfg.observer_velocity == "trainable" else 0
        return int(self.data.z.shape[0]) - 2 - int(self.cfg.cosmological_constant) - velocity

    def config(self) -> dict:
        """The full configuration (preset fields, windows in code units, data), for config.json."""
        return {"name": self.name, **self.cfg.asdict(), "windows_code_units": self.windows,
                "data": self.data_info}

    def solve_defaults(self) -> dict:
        """Solver settings of the preset, used by the CLI where no flag overrides them."""
        cfg = self.cfg
        constraint_kwargs = {}
        if cfg.einstein == "constraint" and cfg.constraints in ("al", "penalty"):
            constraint_kwargs = {"mu_init": {"einstein": cfg.einstein_mu}, "mu_max": {"einstein": cfg.einstein_mu_max}}
        return {"optimizer": cfg.optimizer, "optimizer_kwargs": {"learning_rate": cfg.learning_rate},
                "constraints": cfg.constraints, "constraint_kwargs": constraint_kwargs,
                "balancing": cfg.balancing, "balancing_kwargs": {},
                "steps": cfg.steps, "chunk": cfg.chunk}

    # --- summary and figures (not jitted)

    def summary(self, params, key=None, n_points: Optional[int] = None, audit: bool = True, exact: bool = True,
                max_supernovae: Optional[int] = None) -> dict:
        """The physics of a trained run: fitted parameters, chi^2, held-out point-wise maxima; with
        ``audit`` the source audit and the chart-free observables (:mod:`cosmology.audit_summary`);
        with ``exact`` the chi^2 of exact per-supernova rays, the sky grid checked against them and
        the rays against the domain (:mod:`cosmology.final_checks`; ``max_supernovae``: a subsample)."""
        key = jax.random.PRNGKey(12345) if key is None else key
        ev = {k: float(v) for k, v in jax.jit(self.evaluate)(params).items()}
        batch = self.sample(key, jnp.int32(0))
        held = jax.jit(self._pointwise)(params, batch)  # the point-wise terms only: no rays to compile
        residual = held.pop("einstein")
        worst = {n: float(jnp.max(v)) for n, v in held.items()}
        out = {
            "omega_m": ev["omega_m"], "omega_lambda": ev["omega_lambda"], "omega_k": ev["omega_k"],
            "lambda_code_units": ev["lambda"],
            "chi2": ev["chi2"], "dof": self.dof, "chi2_per_dof": ev["chi2_dof"], "n_supernovae": int(self.data.z.shape[0]),
            "h0_km_s_mpc": ev["h0"], "q0": ev["q0"], "hubble_rate_observer_code_units": ev["hubble_code"],
            "einstein_residual_rms_heldout": float(jnp.sqrt(jnp.mean(residual ** 2))),
            "max_heldout_violation": worst,
        }
        if self.cfg.cmb_priors:
            out["early_min_hubble_rate"] = ev["early_min_hubble_rate"]
            out["expands_in_past_window"] = bool(ev["early_min_hubble_rate"] > 0)
            out["early_max_shear_ratio"] = ev["early_max_shear_ratio"]
        if self.cfg.cmb_distance_prior:
            out["cmb_distance_prior"] = cmb_distance.summary_section(self, ev)
        if audit:
            from cosmology import audit_summary

            out.update(audit_summary.summary_sections(self, params))
        if exact:
            from cosmology import final_checks

            out.update(final_checks.summary_sections(self, params, max_supernovae=max_supernovae))
        return out

    def extra_certificates(self, params) -> dict:
        """``{"rays_inside_domain": certificate}``, called by ``pinnopt.solve`` at the end of a run: every
        exact supernova ray stays inside the sampled domain (:func:`cosmology.final_checks.domain_certificate`)."""
        from cosmology import final_checks

        return final_checks.certificates(self, params)

    def compare(self, run_dirs, **options) -> str:
        """The model-comparison table of the classical fits and ``run_dirs`` on this problem's table and
        cuts (``pinnopt compare``): :func:`cosmology.comparison.compare_runs` with ``options``."""
        from cosmology import comparison

        return comparison.compare_runs(run_dirs, data_path=self.data_info["source"], z_min=self.cfg.z_min,
                                       redshift=self.cfg.redshift, **options)

    def plot(self, params, run_dir: str) -> list:
        """The cosmology figures into ``run_dir/plots`` (see :mod:`cosmology.plots`)."""
        from cosmology import plots

        return plots.plot_problem(self, params, run_dir)


# ----------------------------------------------------------------------------- construction


def _model(cfg: CosmologyConfig, background: Background):
    if cfg.metric == "general":
        return GeneralMetric(cfg.width, cfg.depth, cfg.w0, cfg.out_scale, background)
    if cfg.metric == "synchronous":
        return SynchronousMetric(cfg.width, cfg.depth, cfg.w0, cfg.out_scale, background)
    if cfg.learn_curvature:  # Omega_k = 1 - Omega_m in 1 - omega_m_bounds
        bounds = (1.0 - cfg.omega_m_bounds[1], 1.0 - cfg.omega_m_bounds[0])
        return FLRWMetric(cfg.width, cfg.depth, cfg.w0, cfg.out_scale, background, omega_k_bounds=bounds,
                          omega_k_init=cfg.omega_k_init)
    # an open background is curved: its isotropic chart carries k = -(1 - Omega_m) (zero otherwise)
    return FLRWMetric(cfg.width, cfg.depth, cfg.w0, cfg.out_scale, background, curvature=background.curvature)


def build(cfg: CosmologyConfig, *, data_path=None, covariance=None, mu_obs=None, name: str = "lumpy") -> CosmologyProblem:
    """The problem for ``cfg``; the Pantheon+ table is found as in :func:`cosmology.data.load_pantheon_plus`
    (``data_path``, else $PINNOPT_DATA_DIR, else the cache). ``covariance``: the release's
    STAT+SYS ``.cov`` path or an array over all rows of the table (None: the diagonal errors,
    warned once per process and recorded in config.json). ``mu_obs`` replaces the observed
    moduli (mock data). The covariance is factored once, in float64 (``problem.host``), and cast."""
    from cosmology import likelihood
    from cosmology.data import load_pantheon_plus

    sample = load_pantheon_plus(data_path, covariance=covariance, z_min=cfg.z_min, redshift=cfg.redshift)
    background = Background(cfg.background, cfg.background_omega_m)
    windows = domain(cfg, background, float(np.max(sample.z)))
    if cfg.cmb_distance_prior:  # where the rays of the CMB distance prior end (cosmology.cmb_distance)
        windows["cmb_edge_redshift"] = cmb_distance.edge_redshift(background, windows, cfg.cmb_edge_redshift)
    host = likelihood.host_whitening(sample)
    if mu_obs is not None:
        host = host._replace(mu_obs=np.asarray(mu_obs, np.float64))
    data = supernovae.make_supernova_data(sample, n_directions=cfg.n_directions, sky_degree=cfg.sky_degree,
                                          n_redshift_nodes=cfg.n_redshift_nodes, mu_obs=mu_obs, host=host)
    rng = np.random.default_rng(2024)
    n_eval = 64
    t_eval = rng.uniform(*windows["cmb"], size=n_eval)
    u = rng.normal(size=(n_eval, 3))
    u = u / np.linalg.norm(u, axis=1, keepdims=True) * windows["radius"] * rng.uniform(size=(n_eval, 1)) ** (1 / 3)
    eval_points = np.concatenate([t_eval[:, None], u], axis=1).astype(np.float32)
    if sample.cov is None:
        cov_info = "diagonal (MU_SH0ES_ERR_DIAG; plots only, pass covariance=PATH to fit)"
    else:
        cov_info = str(covariance) if isinstance(covariance, (str, os.PathLike)) else f"array {sample.cov.shape}"
    info = {"source": sample.source, "cuts": str(sample.report), "n": sample.n,
            "n_unique": sample.report.n_unique, "redshift": sample.redshift, "covariance": cov_info,
            "mock": mu_obs is not None}
    if cfg.metric == "flrw" and cfg.observer_velocity == "fixed":  # CosmologyProblem.isotropic
        plan = supernovae.isotropic_plan(np.asarray(data.z, np.float64))
    else:
        plan = supernovae.grid_plan(np.asarray(data.ray_directions, np.float64), np.asarray(data.z_nodes, np.float64))
    return CosmologyProblem(cfg, _model(cfg, background), data, windows, eval_points, info, plan, name, host)


def make_lumpy(preset: str = "default", data_path: Optional[str] = None, covariance: Optional[str] = None,
               mu_obs=None, **overrides) -> CosmologyProblem:
    """The ``lumpy`` problem: ``preset`` in quick, default, blog (see :mod:`cosmology.presets`),
    any field of the preset overridden by keyword (``-p n_points=400`` on the CLI)."""
    return build(get_preset(preset, **overrides), data_path=data_path, covariance=covariance, mu_obs=mu_obs,
                 name="lumpy")


def make_flrw_control(preset: str = "default", data_path: Optional[str] = None, covariance: Optional[str] = None,
                      mu_obs=None, **overrides) -> CosmologyProblem:
    """The ``flrw-control`` problem: learned FLRW a(t), dust, trainable Lambda, no constraints."""
    return build(get_flrw_control(preset, **overrides), data_path=data_path, covariance=covariance,
                 mu_obs=mu_obs, name="flrw-control")


def make_open_control(preset: str = "default", data_path: Optional[str] = None, covariance: Optional[str] = None,
                      mu_obs=None, **overrides) -> CosmologyProblem:
    """The ``open-control`` problem: learned FLRW a(t), dust, trainable Omega_k, Lambda = 0."""
    return build(get_open_control(preset, **overrides), data_path=data_path, covariance=covariance,
                 mu_obs=mu_obs, name="open-control")


__all__ = ["CosmologyProblem", "build", "cmb_prior_values", "deceleration", "domain", "make_flrw_control",
           "make_lumpy", "make_open_control", "point_fields"]
