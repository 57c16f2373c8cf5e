"""Every example in examples/ runs (short step counts), and the two Poisson problems reach the README's accuracy."""
import importlib.util
import os
import sys
import importlib

import jax.numpy as jnp
import numpy as np
import pytest

import pinnopt

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_poisson_1d_with_the_defaults_is_accurate_and_certified():
    # Written as a newcomer would: every setting but the optimizer's learning rate left at its default
    # (constraint method "al", balancer "sum"). Before point-wise constraints this diverged (rel. L2 49).
    result = pinnopt.solve(load("poisson_1d").make_problem(), optimizer="adam",
                           optimizer_kwargs={"learning_rate": 1e-2}, steps=1500)
    assert result.summary["final"]["eval/rel_l2"] < 1e-2  # measured: 5.4e-4
    cert = result.summary["certificates"]["bc"]
    assert cert["certified"] and cert["max_violation"] <= 1e-2 and result.summary["certified"]


@pytest.mark.slow  # 14-40 s; the 1-D problem checks the same defaults in the default suite
def test_poisson_2d_dirichlet_with_the_defaults_is_accurate_and_certified():
    result = pinnopt.solve(load("poisson_2d").make_problem(), optimizer="adam",
                           optimizer_kwargs={"learning_rate": 3e-3}, steps=4000, chunk=500)
    assert result.summary["final"]["eval/rel_l2"] < 1e-2  # measured: 4.6e-3
    assert result.summary["certified"]  # max boundary violation on 4 x 128 held-out points <= 2e-2


def test_custom_balancer_is_found_by_name():
    load("custom_balancer")
    balancer = pinnopt.balancing.get("share", alpha=0.5)
    result = pinnopt.solve(pinnopt.problems.get("convection", beta=5.0, ic="objective", n_points=128),
                           balancing=balancer, steps=40, chunk=20)
    final = result.summary["final"]
    assert final["weight/pde"] + final["weight/ic"] == pytest.approx(2.0, rel=1e-5)
    assert final["weight/ic"] != pytest.approx(1.0)  # the shares moved the weights
    with pytest.raises(ValueError, match="alpha"):
        pinnopt.balancing.get("share", alpha=2.0)


def test_custom_constraint_method_state_changes_inside_the_compiled_step():
    load("custom_constraint_method")
    result = pinnopt.solve(load("poisson_1d").make_problem(), constraints="exact_penalty",
                           constraint_kwargs={"growth": 1.01}, steps=100, chunk=50,
                           optimizer_kwargs={"learning_rate": 1e-2})
    mus = [row["mu/bc"] for row in result.history]
    assert mus[-1] > mus[0] >= 1.0 and np.isfinite(result.history[-1]["loss"])


def test_plugin_entry_point_names_a_working_factory(monkeypatch):
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(os.path.join(EXAMPLES, "plugin", "pyproject.toml"), "rb") as fh:
        entry = tomllib.load(fh)["project"]["entry-points"]["pinnopt.problems"]["heat_1d"]
    module_name, attr = entry.split(":")
    monkeypatch.syspath_prepend(os.path.join(EXAMPLES, "plugin", "src"))
    factory = getattr(importlib.import_module(module_name), attr)
    pinnopt.problems.register("heat_1d_example", factory)
    result = pinnopt.solve(pinnopt.problems.get("heat_1d_example", kappa=0.5), steps=30, chunk=30)
    assert set(result.summary["certificates"]) == {"ic", "bc"}
    assert np.isfinite(result.summary["final"]["eval/rel_l2"])
    sys.modules.pop(module_name, None)


def test_user_problem_file_from_the_cli(tmp_path):
    from pinnopt.cli import main

    run = tmp_path / "runs"
    code = main(["solve", os.path.join(EXAMPLES, "poisson_1d.py") + ":make_problem", "--steps", "20", "--chunk", "10",
                 "--runs", str(run), "--name", "p1", "--no-progress", "--no-plots", "-p", "n_interior=32"])
    assert code == 0
    summary = pinnopt.io.RunDir(str(run / "p1")).read_json("summary.json")
    assert "bc" in summary["certificates"] and summary["certified"] in (True, False)
