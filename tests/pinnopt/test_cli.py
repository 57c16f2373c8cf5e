"""The pinnopt command: list, solve (run directory), resume, plot."""
import json
import os

import pytest

from pinnopt.cli import main, parse_assignments


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("rastrigin", "adam", "lbfgs", "augmented_lagrangian", "penalty", "homoscedastic", "causal"):
        assert word in out


def test_solve_writes_run_directory_then_resume_and_plot(tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["solve", "rastrigin", "--dim", "3", "--optimizer", "adam", "--lr", "0.05", "--steps", "200",
            "--chunk", "100", "--runs", str(runs), "--name", "r1", "--no-progress"]
    assert main(args) == 0
    run = runs / "r1"
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoints", "plots"):
        assert (run / name).exists(), name
    assert any(p.endswith(".png") for p in os.listdir(run / "plots"))
    out = capsys.readouterr().out
    assert "best loss" in out and "raw/f" in out
    assert main(["solve", "--resume", str(run), "--steps", "300", "--no-progress", "--no-plots"]) == 0
    assert json.load(open(run / "summary.json"))["steps"] == 300
    assert [json.loads(l)["step"] for l in open(run / "metrics.jsonl")] == list(range(10, 301, 10))
    assert main(["plot", str(run)]) == 0
    with pytest.raises(SystemExit, match="exists"):
        main(args)


def test_errors_are_clear(tmp_path):
    with pytest.raises(SystemExit, match="unknown problem"):
        main(["solve", "rastrign", "--runs", str(tmp_path), "--no-progress"])
    with pytest.raises(SystemExit, match="config.json"):
        main(["solve", "--resume", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit, match="metrics.jsonl"):
        main(["plot", str(tmp_path)])


def test_parse_assignments():
    assert parse_assignments(["a=1", "b=0.5", "c={'x': 2}", "d=name", "e=true"], "t") == \
        {"a": 1, "b": 0.5, "c": {"x": 2}, "d": "name", "e": True}
    with pytest.raises(SystemExit, match="key=value"):
        parse_assignments(["oops"], "t")


@pytest.mark.parametrize("flags, says", [
    (["--steps", "-5"], "--steps"),
    (["--lr", "-1"], "learning_rate"),
    (["-p", "nosuch=1"], "nosuch"),
    (["-p", "dim=abc"], "'dim'"),
    (["--seed", "-1"], "--seed"),
    (["-c", "nosuch"], "nosuch"),
])
def test_a_bad_option_stops_before_the_run_directory(tmp_path, capsys, flags, says):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exc:
        main(["solve", "rastrigin", "--runs", str(runs), "--name", "bad", "--no-progress", *flags])
    # A clean exit: a message (argparse prints its own and exits 2), no traceback, no directory.
    captured = capsys.readouterr()
    message = str(exc.value.code) if isinstance(exc.value.code, str) else captured.err
    assert says in message, message
    assert "run directory" not in captured.out
    assert not runs.exists()
