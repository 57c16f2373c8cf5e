"""The CLI's optimizer phases (-o NAME:STEPS), collocation policy and float64 flags."""
import json
import os

import pytest

from pinnopt.cli import main


def _run(tmp_path, *args):
    return main(["solve", "rastrigin", "--dim", "2", "--runs", str(tmp_path), "--name", "r", "--no-progress",
                 "--no-plots", "--chunk", "10", *args])


def test_phases_from_the_command_line_are_recorded_and_resumable(tmp_path, capsys):
    assert _run(tmp_path, "-o", "adam:20", "-o", "sgd:10", "--lr", "0.01", "--opt-arg", "sgd.momentum=0.9",
                "--resample-every", "0", "--x64") == 0
    out = capsys.readouterr().out
    assert "phase 0 (adam)" in out and "phase 1 (sgd)" in out
    run = tmp_path / "r"
    config = json.loads((run / "config.json").read_text())
    assert config["optimizer"] == [{"name": "adam", "options": {"learning_rate": 0.01}, "steps": 20},
                                   {"name": "sgd", "options": {"learning_rate": 0.01, "momentum": 0.9}, "steps": 10}]
    assert config["steps"] == 30 and config["resample_every"] == 0 and config["precision"] == "float64"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 30 and [p["optimizer"] for p in summary["phases"]] == ["adam", "sgd"]
    # The run is complete: resuming it rebuilds every phase from config.json and has nothing left to do.
    assert main(["solve", "--resume", str(run), "--no-progress", "--no-plots"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 30
    assert main(["plot", str(run)]) == 0


def test_lr_goes_only_to_phases_whose_optimizer_requires_one(tmp_path):
    assert _run(tmp_path, "-o", "adam:10", "-o", "lbfgs:10", "--lr", "0.01") == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["optimizer"][0]["options"] == {"learning_rate": 0.01}
    assert config["optimizer"][1]["options"] == {}  # L-BFGS steps by its line search


@pytest.mark.parametrize("args, message", [
    (["-o", "adam:abc"], "NAME:STEPS"),
    (["-o", "adam:10", "-o", "sgd"], "NAME:STEPS"),
    (["-o", "adam:0"], ">= 1"),
    (["-o", "adam:10", "--opt-arg", "nosuch.b1=0.9"], "'nosuch' is not among -o adam"),
    (["-o", "adam:10", "-o", "sgd:10", "--steps", "25"], "add up to 20"),
    (["--resample-every", "-1"], "integer >= 0"),
])
def test_bad_phase_options_stop_before_the_run_directory(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as err:
        _run(tmp_path, *args)
    assert message in str(err.value) + capsys.readouterr().err
    assert not os.path.exists(tmp_path / "r")
