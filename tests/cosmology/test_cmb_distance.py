"""The CMB distance prior (cosmology.cmb_distance): the data against the paper's table, the early
FLRW pieces against closed forms, R and l_A of exact FLRW metrics (rays through the metric to the
edge, then the continuation) against an independent scipy quadrature of the whole FLRW distance,
Planck-like LCDM against the Planck values, and the term in the lumpy problem (switch, gradient,
options). float64 where precision is tested, inside jax.enable_x64 only."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.constants as const
from scipy.integrate import quad

from cosmology import cmb_distance as cd
from cosmology import kinematics, matter
from cosmology.collocation import domain
from cosmology.conventions import HUBBLE_LENGTH_MPC
from cosmology.metric import Background
from cosmology.presets import get_preset


def flrw_metric(background):
    """ds^2 = -dt^2 + (spatial_factor)^2 |dx|^2: the background itself (isotropic chart when open)."""
    def g(x):
        f = background.spatial_factor(x)
        return jnp.diag(jnp.stack([-jnp.ones_like(f), f * f, f * f, f * f]))
    return g


def model_values(background, omega_lambda, z_edge, prior, directions=cd.EDGE_DIRECTIONS[[4, 0, 3]]):
    """prior_values of the exact FLRW metric of ``background`` (observer's Omega_m derived), numpy."""
    g = flrw_metric(background)

    @jax.jit
    def run():
        observer = jnp.zeros(4, jnp.result_type(float))
        hubble = kinematics.comoving_kinematics(g, observer).mean_hubble_rate
        src = matter.constraint_source(g, observer, hubble, jnp.asarray(omega_lambda, observer.dtype))
        return cd.prior_values(g, src, directions, z_edge, prior)

    return jax.tree_util.tree_map(np.asarray, run())


# ----------------------------------------------------------------------------- independent references


def omega_gamma_scipy(t_cmb=2.7255):
    """Omega_gamma h^2 from scipy.constants (a_rad T^4 / c^2 over the critical density for H = 100)."""
    rho = 4.0 * const.Stefan_Boltzmann * t_cmb**4 / const.c**3
    h100 = 1e5 / (1e6 * const.parsec)
    return rho / (3.0 * h100**2 / (8.0 * math.pi * const.G))


def hu_sugiyama(wb, wm):
    g1 = 0.0783 * wb ** (-0.238) / (1 + 39.5 * wb**0.763)
    g2 = 0.560 / (1 + 21.1 * wb**1.81)
    return 1048 * (1 + 0.00124 * wb ** (-0.738)) * (1 + g1 * wm**g2)


def reference(omega_m, omega_lambda, z_edge, h, wb=0.02235976, radiation="chen2019"):
    """FLRW with H0 = 1: the model's dust (+ Lambda, curvature) up to z_e, radiation added beyond,
    one curvature K = -Omega_k throughout, so D_M(z*) = S_K(chi(z*)) (scipy.quad)."""
    omega_k = 1.0 - omega_m - omega_lambda
    wm = omega_m * h**2
    wr = wm / (1 + 2.5e4 * wm * (2.7255 / 2.7) ** -4) if radiation == "chen2019" else \
        omega_gamma_scipy() * (1 + 7 / 8 * (4 / 11) ** (4 / 3) * 3.046)
    e2 = lambda z: omega_m * (1 + z) ** 3 + omega_k * (1 + z) ** 2 + omega_lambda
    e_early = lambda z: math.sqrt(e2(z) + wr / h**2 * (1 + z) ** 4)
    zs = hu_sugiyama(wb, wm)
    chi = (quad(lambda z: 1 / math.sqrt(e2(z)), 0, z_edge, epsabs=0, epsrel=1e-13, limit=200)[0]
           + quad(lambda z: 1 / e_early(z), z_edge, zs, epsabs=0, epsrel=1e-13, limit=200)[0])
    k = math.sqrt(abs(omega_k))
    d_m = chi if omega_k == 0 else (math.sinh(k * chi) / k if omega_k > 0 else math.sin(k * chi) / k)
    rb = 3 * wb / (4 * omega_gamma_scipy())
    # r_s = int_0^{a*} c_s da / (a^2 H), with a = 1/(1+z)
    r_s = quad(lambda a: 1 / math.sqrt(3 * (1 + rb * a)) / (a * a * e_early(1 / a - 1)), 0, 1 / (1 + zs),
               epsabs=0, epsrel=1e-13, limit=200)[0]
    return {"R": math.sqrt(omega_m) * d_m, "l_A": math.pi * d_m / r_s, "z_star": zs, "r_s": r_s, "d_m": d_m}


# ----------------------------------------------------------------------------- the data and the pieces


def test_the_data_are_the_papers_table():
    # Chen, Huang & Wang 2019, LCDM, Planck TT,TE,EE+lowE: R = 1.7502 +- 0.0046, l_A = 301.471 +0.089 -0.090,
    # omega_b = 0.02236 +- 0.00015; correlations 0.46, -0.66, -0.33. The inverse of the files' C^-1 rounds to them.
    cov = np.linalg.inv(cd.INVERSE_COVARIANCE)
    sigma = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sigma, sigma)
    np.testing.assert_allclose(sigma, [0.0046, 0.0895, 0.00015], rtol=0.01)
    np.testing.assert_allclose([corr[0, 1], corr[0, 2], corr[1, 2]], [0.46, -0.66, -0.33], atol=0.005)
    np.testing.assert_allclose(cd.PLANCK2018_MEAN, [1.7502, 301.471, 0.02236], rtol=2e-5)
    # chi^2 is x^T C^-1 x with the whitening
    x = np.array([0.003, -0.1, 0.0])
    value, _ = cd.chi2(*(jnp.float32(v) for v in cd.PLANCK2018_MEAN + x))
    assert float(value) == pytest.approx(x @ cd.INVERSE_COVARIANCE @ x, rel=1e-3)


def test_photon_density_radiation_and_z_star():
    assert cd.photon_density() == pytest.approx(omega_gamma_scipy(), rel=1e-6)
    assert cd.photon_density() == pytest.approx(2.4728e-5, rel=1e-4)  # the literature's value at 2.7255 K
    neff = cd.CMBDistancePrior(radiation="neff")
    assert cd.radiation_density(0.14, neff) == pytest.approx(omega_gamma_scipy() * 1.69177, rel=1e-5)
    chen = cd.CMBDistancePrior()
    assert float(cd.radiation_density(0.14, chen)) == pytest.approx(0.14 / (1 + 2.5e4 * 0.14 / 1.03829), rel=1e-4)
    assert float(cd.z_star(0.02236, 0.1438)) == pytest.approx(hu_sugiyama(0.02236, 0.1438), rel=1e-12)
    assert 1091.5 < float(cd.z_star(0.02236, 0.1438)) < 1092.5


@pytest.mark.parametrize("curvature", [0.0, 1e-3, -0.3, 2.0, -7.0])
def test_sin_k_is_sin_sinh_and_cos_cosh(curvature):
    with jax.enable_x64(True):
        x = np.array([1e-3, 0.2, 0.5, 1.3])
        s, c = (np.asarray(v) for v in cd.sin_k(jnp.asarray(x), jnp.float64(curvature)))
    k = math.sqrt(abs(curvature))
    if curvature == 0:
        ref_s, ref_c = x, np.ones_like(x)
    elif curvature > 0:
        ref_s, ref_c = np.sin(k * x) / k, np.cos(k * x)
    else:
        ref_s, ref_c = np.sinh(k * x) / k, np.cosh(k * x)
    np.testing.assert_allclose(s, ref_s, rtol=1e-13)
    np.testing.assert_allclose(c, ref_c, rtol=1e-13)


# ----------------------------------------------------------------------------- exact FLRW metrics


CASES = [("lcdm", Background("lcdm", 0.3), 0.7, 4.0, "chen2019"),
         pytest.param("open", Background("open", 0.3), 0.0, 20.0, "chen2019", marks=pytest.mark.slow),  # ~30 s
         pytest.param("lcdm-neff", Background("lcdm", 0.3), 0.7, 20.0, "neff", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name,background,omega_lambda,z_edge,radiation", CASES, ids=["lcdm", "open", "lcdm-neff"])
def test_exact_flrw_matches_the_whole_flrw_distance(name, background, omega_lambda, z_edge, radiation):
    prior = cd.CMBDistancePrior(h=0.7, radiation=radiation)
    with jax.enable_x64(True):
        v = model_values(background, omega_lambda, z_edge, prior)
    ref = reference(background.omega_m, omega_lambda, z_edge, 0.7, radiation=radiation)
    assert bool(v["reached"])
    for key in ("R", "l_A", "z_star", "r_s"):
        assert float(v[key]) == pytest.approx(ref[key], rel=1e-4), key
    assert float(v["d_m_star"]) == pytest.approx(ref["d_m"], rel=1e-4)
    # The continuation's curvature is the model's own: Omega_k,e = Omega_k (1+z)^2 / E^2(z_e).
    ok = 1.0 - background.omega_m - omega_lambda
    e2 = background.omega_m * (1 + z_edge) ** 3 + ok * (1 + z_edge) ** 2 + omega_lambda
    assert float(v["omega_k_edge"]) == pytest.approx(ok * (1 + z_edge) ** 2 / e2, abs=1e-10)
    assert float(v["curvature"]) == pytest.approx(-ok, abs=1e-10)


@pytest.mark.slow  # ~70 s; the exact-FLRW test against scipy stays in the default run
def test_planck_like_lcdm_gives_the_planck_values():
    # Flat LCDM at the point where the paper's conventions reproduce its mean (Omega_m = 0.3163, h = 0.6744).
    # Tolerance: the data's own 1 sigma in R and l_A. What moves them: radiation is absent from the metric below
    # z_e = 4 (D_M long by ~1.5e-4: +0.05 in l_A) and the rays' float precision; float32 is the training dtype.
    prior = cd.CMBDistancePrior(h=0.6744)
    with jax.enable_x64(True):
        v64 = model_values(Background("lcdm", 0.3163), 1 - 0.3163, 4.0, prior, cd.EDGE_DIRECTIONS[4:5])
    assert float(v64["R"]) == pytest.approx(1.7502, abs=0.0046)
    assert float(v64["l_A"]) == pytest.approx(301.471, abs=0.090)
    assert float(v64["chi2"]) < 1.0
    v32 = model_values(Background("lcdm", 0.3163), 1 - 0.3163, 4.0, prior, cd.EDGE_DIRECTIONS[4:5])
    assert v32["R"].dtype == np.float32
    assert float(v32["R"]) == pytest.approx(float(v64["R"]), rel=2e-5)
    assert float(v32["l_A"]) == pytest.approx(float(v64["l_A"]), rel=2e-5)  # l_A's sigma is 3e-4 of it


# ----------------------------------------------------------------------------- the domain's edge


def test_the_edge_is_where_the_light_cone_leaves_the_domain():
    cfg = get_preset("default")
    background = Background("matter")
    windows = domain(cfg, background, 2.26)
    z_e = cd.edge_redshift(background, windows)
    # Einstein-de Sitter: the light cone's comoving radius is 2 (1 - 1/sqrt(1 + z)).
    assert z_e == pytest.approx(1.0 / (1.0 - windows["radius"] / 2.0) ** 2 - 1.0, rel=2e-3)
    assert z_e < cfg.past_redshift
    wide = domain(get_preset("default", spatial_extent=2.0 * HUBBLE_LENGTH_MPC), background, 2.26)
    assert cd.edge_redshift(background, wide) == pytest.approx(50.0, rel=1e-4)
    assert cd.edge_redshift(background, windows, 3.0) == 3.0
    with pytest.raises(ValueError, match="cmb_edge_redshift"):
        cd.edge_redshift(background, windows, 10.0)


def test_bad_options_name_themselves():
    for field, value in (("cmb_distance_radiation", "planck"), ("cmb_distance_h", 0.0), ("cmb_distance_h", 5.0),
                         ("cmb_edge_redshift", -1.0), ("cmb_edge_redshift", 2000.0), ("cmb_distance_prior", "yes")):
        with pytest.raises(ValueError, match=field):
            get_preset("quick", **{"cmb_distance_prior": True, field: value})
    with pytest.raises(ValueError, match="cmb_distance_radiation"):
        cd.CMBDistancePrior(radiation="camb").check()
    assert get_preset("default").cmb_distance_prior is False  # off by default


# ----------------------------------------------------------------------------- the term in the problem


TINY = dict(width=8, depth=1, n_points=24, n_cmb=6, n_directions=4, sky_degree=1, n_redshift_nodes=12,
            max_ray_steps=48)
FLRW = dict(metric="flrw", cmb_priors=False, energy_condition="none", background="matter")  # isotropic: one ray


def check_term(pantheon_dir, **options):
    """The switch adds the term (and evaluate's scalars) and removes it; mean loss = chi^2_CMB / N_SN; the
    gradient with respect to every parameter is finite and not all zero."""
    from cosmology.problem import make_lumpy
    from pinnopt.terms import Objective

    problem = make_lumpy("quick", data_path=str(pantheon_dir), cmb_distance_prior=True, **TINY, **options)
    params = problem.init(jax.random.PRNGKey(0))
    batch = problem.sample(jax.random.PRNGKey(1), jnp.int32(0))
    assert 0 < problem.windows["cmb_edge_redshift"] <= problem.cfg.past_redshift
    shapes = jax.eval_shape(problem.terms, params, batch)  # traced, not compiled
    assert isinstance(shapes["cmb_distance"], Objective) and shapes["cmb_distance"].loss.shape == (3,)
    n_sn = problem.data.z.shape[0]

    def loss(p):  # the term as terms() builds it (its mean enters the sum balancer), and evaluate's scalars
        metric_fn = problem.metric_fn(p)
        src = problem.source(p, metric_fn)
        return jnp.mean(cd.objective(problem, metric_fn, src).loss), cd.evaluate(problem, metric_fn, src)

    (value, ev), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    # with the sum balancer the data part of the loss is (chi^2_SN + chi^2_CMB) / N_SN
    assert float(value) == pytest.approx(float(ev["chi2_cmb"]) / n_sn, rel=1e-4)
    for key, v in ev.items():
        assert np.isfinite(float(v)), key
    assert float(ev["cmb_edge_radius_ratio"]) > 0  # a diagnostic: > 1 when the model's rays leave the ball
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert sum(float(jnp.sum(jnp.abs(g))) for g in leaves) > 0
    section = cd.summary_section(problem, {k: float(v) for k, v in ev.items()})  # summary()'s, not jitted
    assert section["edge_redshift"] == problem.windows["cmb_edge_redshift"] and section["radiation"] == "chen2019"
    assert section["l_A"] == float(ev["cmb_l_A"]) and section["chi2_cmb"] == float(ev["chi2_cmb"])
    off = make_lumpy("quick", data_path=str(pantheon_dir), **TINY, **options)
    assert "cmb_distance" not in jax.eval_shape(off.terms, params, batch)
    assert "cmb_distance" not in off.windows
    return problem, ev


@pytest.mark.slow  # ~4 min here: the gradient through six network rays to the edge compiles slowly
def test_the_switch_adds_the_term_and_its_gradient_is_finite(pantheon_dir):
    problem, _ = check_term(pantheon_dir)  # the default lumpy metric (synchronous), six rays to the edge
    assert not problem.isotropic


@pytest.mark.slow
def test_the_term_of_an_isotropic_problem_traces_one_ray(pantheon_dir):
    problem, _ = check_term(pantheon_dir, **FLRW)  # ~2 min on 2 CPU cores
    assert problem.isotropic


def test_the_switch_adds_the_term_to_the_traced_terms(pantheon_dir):
    """The default run's cheap check of the wiring (traced, not compiled); the value, the loss and the
    gradient are checked by the slow ``test_the_switch_adds_the_term_and_its_gradient_is_finite``."""
    from cosmology.problem import make_lumpy
    from pinnopt.terms import Objective

    on = make_lumpy("quick", data_path=str(pantheon_dir), cmb_distance_prior=True, **TINY)
    params = on.init(jax.random.PRNGKey(0))
    batch = on.sample(jax.random.PRNGKey(1), jnp.int32(0))
    assert 0 < on.windows["cmb_edge_redshift"] <= on.cfg.past_redshift
    shapes = jax.eval_shape(on.terms, params, batch)
    assert isinstance(shapes["cmb_distance"], Objective) and shapes["cmb_distance"].loss.shape == (3,)
    assert {"cmb_R", "cmb_l_A", "chi2_cmb"} <= set(jax.eval_shape(on.evaluate, params))
    off = make_lumpy("quick", data_path=str(pantheon_dir), **TINY)
    assert "cmb_distance" not in jax.eval_shape(off.terms, params, batch) and "cmb_distance" not in off.windows
