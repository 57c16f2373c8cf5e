"""The cosmology figures: written, readable inputs, and the numbers behind them."""
import os
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cosmology import likelihood, plots
from cosmology.metric import Background, SynchronousMetric
from cosmology.presets import get_preset
from cosmology.problem import CosmologyProblem, domain
from network_helpers import zero_output


@pytest.fixture(scope="module")
def eds_problem():
    """A lumpy problem without data whose network outputs zero: exactly Einstein-de Sitter."""
    cfg = get_preset("quick", width=8, depth=1)
    bg = Background("matter")
    problem = CosmologyProblem(cfg, SynchronousMetric(8, 1, background=bg), None, domain(cfg, bg, 2.26),
                               np.zeros((1, 4), np.float32), {}, None)
    params = problem.init(jax.random.PRNGKey(0))
    return problem, {**params, "metric": zero_output(params["metric"])}


def test_training_figure(tmp_path):
    rows = [{"step": s, "raw/einstein": 1.0 / s, "raw/supernovae": 0.5, "violation/weak_energy": 0.0,
             "heldout_violation/cmb_shear": 1e-3 / s, "param/omega_m": 0.3 + s * 1e-4, "lam/cmb_shear": 0.1 * s,
             "mu/cmb_shear": 1.0, "grad_norm": 2.0, "learning_rate": 1e-3} for s in range(10, 210, 10)]
    path = plots.plot_training(rows, str(tmp_path / "training.png"))
    assert os.path.getsize(path) > 20000


def test_worldline_of_einstein_de_sitter(eds_problem):
    problem, params = eds_problem
    line = plots.worldlines(problem, params, np.zeros((1, 3)), n=20)
    t = line["t_code"]
    h = 1.0 / (1.0 + 1.5 * t)
    np.testing.assert_allclose(line["rates"][0, :, 3], h, rtol=1e-4)
    np.testing.assert_allclose(line["rates"][0, :, :3], np.repeat(h[:, None], 3, axis=1), rtol=1e-4)
    assert np.all(line["shear"] < 1e-8 * h**2)


def test_metric_figures(eds_problem, tmp_path):
    problem, params = eds_problem
    line = plots.worldline(problem, params, n=24)
    fields = plots.plane_fields(problem, params, n=9)
    # Einstein-de Sitter today: R = kappa rho = 3 Omega_m H^2, and the dust density derived from the
    # field equations on the observer's slice (the default density="constraint") is Omega_m = 1.
    np.testing.assert_allclose(fields["xy"]["density"], 1.0, rtol=1e-4)
    np.testing.assert_allclose(fields["xz"]["ricci"], 1.0, rtol=1e-3)  # R / 3H^2 = 1 for dust with Omega = 1
    for name, fn in (("rates.png", lambda p: plots.plot_hubble_rates(problem, params, p, line)),
                     ("shear.png", lambda p: plots.plot_shear(problem, params, p, line)),
                     ("maps.png", lambda p: plots.plot_maps(problem, params, p, fields)),
                     ("surfaces.png", lambda p: plots.plot_surfaces(problem, params, p, fields))):
        assert os.path.getsize(fn(str(tmp_path / name))) > 20000


def test_hubble_diagram_and_sky_map(tmp_path):
    rng = np.random.default_rng(0)
    z = np.geomspace(0.01, 2.0, 400)
    sigma = np.full_like(z, 0.1)
    mu_true = 5 * np.log10(likelihood.luminosity_distance_flat_lcdm(z, 0.3)) + 43.0
    mu_obs = mu_true + rng.normal(0, 0.1, z.size)
    d = rng.normal(size=(z.size, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    hd = {"z": z, "mu_obs": mu_obs, "sigma": sigma, "mu_model": mu_true, "residual": mu_obs - mu_true,
          "curve_z": z, "curve_mu": mu_true}
    om, offset = plots.lcdm_reference(hd, np.ones_like(z))
    assert abs(om - 0.3) < 0.05 and abs(offset - 43.0) < 0.05
    fake = SimpleNamespace(data=SimpleNamespace(helio=np.ones_like(z), directions=d))
    assert os.path.getsize(plots.plot_hubble_diagram(fake, None, str(tmp_path / "hd.png"), hd)) > 20000
    assert os.path.getsize(plots.plot_residual_sky(fake, None, str(tmp_path / "sky.png"), hd)) > 20000
