"""Slow end-to-end checks of the cosmology problems (``pytest -m slow``).

- The closure test: flrw-control's fitted Omega_m agrees within 0.02 with a classical flat-LCDM
  fit of the same data (computed here with scipy quadrature), 1500 Adam steps (~2.5 min).
- Resume: a lumpy run stopped after 20 steps (its summary gone, as after an interruption) and
  resumed from the CLI continues with the same metrics as a straight 40-step run.
"""
import json
import os
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def classical_omega_m(sample):
    from scipy.integrate import quad
    from scipy.optimize import minimize_scalar

    w = 1.0 / sample.mu_err**2

    def chi2(om):
        e = lambda z: 1.0 / np.sqrt(om * (1 + z) ** 3 + 1 - om)
        d_c = np.array([quad(e, 0.0, z, epsrel=1e-10)[0] for z in sample.z_hd])
        r = sample.mu - 5 * np.log10((1 + sample.z_hel) * d_c)
        return float(np.sum(w * (r - np.sum(w * r) / np.sum(w)) ** 2))

    return minimize_scalar(chi2, bounds=(0.2, 0.5), method="bounded", options={"xatol": 1e-5}).x


def test_flrw_control_recovers_the_classical_omega_m(pantheon_dir):
    import pinnopt
    from cosmology.data import load_pantheon_plus
    from cosmology.problem import make_flrw_control

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = load_pantheon_plus(pantheon_dir)
    reference = classical_omega_m(sample)
    problem = make_flrw_control(data_path=str(pantheon_dir))
    d = problem.solve_defaults()
    res = pinnopt.solve(problem, optimizer=d["optimizer"], constraints=d["constraints"], balancing=d["balancing"],
                        steps=d["steps"], chunk=d["chunk"], optimizer_kwargs=d["optimizer_kwargs"])
    summary = problem.summary(res.params)
    assert abs(summary["omega_m"] - reference) < 0.02, (summary["omega_m"], reference)
    assert abs(summary["omega_m"] + summary["omega_lambda"] - 1.0) < 0.01  # flat: the Friedmann constraint
    assert summary["einstein_residual_rms_heldout"] < 0.03


TINY = ["-p", "width=8", "-p", "depth=1", "-p", "n_points=16", "-p", "n_cmb=4", "-p", "n_directions=4",
        "-p", "sky_degree=1", "-p", "n_redshift_nodes=8", "-p", "max_ray_steps=32"]


def test_interrupted_lumpy_run_resumes_with_the_same_metrics(tmp_path, pantheon_dir, monkeypatch):
    from pinnopt.cli import main

    monkeypatch.setenv("PINNOPT_DATA_DIR", str(pantheon_dir))
    runs = str(tmp_path)
    common = ["--preset", "quick", *TINY, "--chunk", "10", "--runs", runs, "--no-progress", "--no-plots"]
    assert main(["solve", "lumpy", *common, "--steps", "40", "--name", "straight"]) == 0
    assert main(["solve", "lumpy", *common, "--steps", "20", "--name", "cut"]) == 0
    cut = os.path.join(runs, "cut")
    os.remove(os.path.join(cut, "summary.json"))  # as if the run had been killed after its checkpoint
    assert main(["solve", "--resume", cut, "--steps", "40", "--no-progress", "--no-plots"]) == 0

    def rows(name):
        with open(os.path.join(runs, name, "metrics.jsonl")) as fh:
            return [json.loads(line) for line in fh]

    straight, resumed = rows("straight"), rows("cut")
    assert [r["step"] for r in resumed] == [r["step"] for r in straight]
    for a, b in zip(straight, resumed):
        for key in ("loss", "violation/einstein", "raw/supernovae", "param/omega_m", "violation/weak_energy"):
            assert a[key] == b[key], (a["step"], key)
    with open(os.path.join(cut, "config.json")) as fh:
        config = json.load(fh)
    assert config["problem"]["preset"] == "quick" and config["cli"]["problem"] == "lumpy"
    with open(os.path.join(cut, "summary.json")) as fh:
        assert json.load(fh)["problem"]["n_supernovae"] == 1580
