"""Problems of one's own from the command line: ``pinnopt solve FILE.py:NAME`` and ``module:NAME``,
their ``-p`` options, resume from another working directory, and the loader's errors."""
import json
import os
import textwrap

import pytest

from pinnopt.cli import main
from pinnopt.problems.user import load_factory, resolve_spec

BOWL = textwrap.dedent('''
    import jax.numpy as jnp

    from pinnopt.terms import Objective


    class Bowl:
        """(x - center)^2 summed over dim coordinates."""

        name = "bowl"

        def __init__(self, dim, center):
            self.dim, self.center = dim, center

        def init(self, key):
            return jnp.zeros(self.dim)

        def sample(self, key, step):
            return None

        def terms(self, params, batch):
            return {"f": Objective(jnp.sum((params - self.center) ** 2))}


    def make_bowl(dim: int = 2, center: float = 1.0):
        return Bowl(dim, center)


    NOT_A_FACTORY = 3
''')
QUIET = ["--no-progress", "--no-plots", "--lr", "0.05"]


@pytest.fixture
def bowl_file(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "bowl.py").write_text(BOWL)
    return folder / "bowl.py"


def test_a_file_problem_solves_and_resumes_from_another_directory(tmp_path, bowl_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["solve", "mine/bowl.py:make_bowl", "-p", "center=2.0", "--dim", "3", "--steps", "20", "--chunk", "10",
            "--runs", "runs", "--name", "u1", *QUIET]
    assert main(args) == 0
    run = tmp_path / "runs" / "u1"
    config = json.loads((run / "config.json").read_text())
    spec = f"{bowl_file}:make_bowl"
    assert config["cli"]["problem"] == spec and os.path.isabs(spec)  # recorded absolute
    assert config["cli"]["problem_kwargs"] == {"center": 2.0, "dim": 3}
    assert os.listdir(run / "checkpoints")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["solve", "--resume", str(run), "--steps", "40", *QUIET]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 40
    steps = [json.loads(line)["step"] for line in open(run / "metrics.jsonl")]
    assert steps[-1] == 40 and steps == sorted(set(steps))
    assert json.loads((run / "config.json").read_text())["cli"]["problem"] == spec
    assert main(["plot", str(run)]) == 0  # rebuilt from the spec; the bowl draws no figures of its own


def test_a_module_problem_and_a_default_run_name(tmp_path, monkeypatch):
    (tmp_path / "my_bowls.py").write_text(BOWL)
    monkeypatch.syspath_prepend(str(tmp_path))
    runs = tmp_path / "runs"
    assert main(["solve", "my_bowls:make_bowl", "--steps", "4", "--chunk", "2", "--runs", str(runs), *QUIET]) == 0
    (run,) = runs.iterdir()
    assert run.name.startswith("my_bowls.make_bowl-adam-")
    assert json.loads((run / "config.json").read_text())["cli"]["problem"] == "my_bowls:make_bowl"


@pytest.mark.parametrize("options, says", [
    (["-p", "nosuch=1"], "'nosuch'"),
    (["-p", "dim=abc"], "'dim' expects int"),
])
def test_bad_options_of_a_factory_are_clean_errors(tmp_path, bowl_file, options, says):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit, match=says):
        main(["solve", f"{bowl_file}:make_bowl", *options, "--runs", str(runs), *QUIET])
    assert not runs.exists()


def test_loader_errors_name_the_spec(tmp_path, bowl_file, monkeypatch):
    (tmp_path / "broken_mod.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "syntax.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cases = [
        (f"{tmp_path}/missing.py:make", "no such file"),
        (f"{bowl_file}:make_cone", "no attribute 'make_cone'"),
        (f"{bowl_file}:NOT_A_FACTORY", "not a callable"),
        ("no_such_module_xyz:make", "importing module 'no_such_module_xyz' failed"),
        ("broken_mod:make", "RuntimeError: boom"),
        (f"{tmp_path}/syntax.py:f", "SyntaxError"),
        ("nothing_after_colon:", "expected FILE.py:NAME"),
    ]
    for spec, says in cases:
        with pytest.raises(ValueError, match=says) as exc:
            load_factory(spec)
        assert repr(spec) in str(exc.value)
    assert load_factory(f"{bowl_file}:make_bowl")(dim=1).dim == 1


def test_command_line_errors_of_a_spec_leave_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit, match="error: problem .*missing.py:make.*no such file"):
        main(["solve", "missing.py:make", "--runs", str(runs), *QUIET])
    assert not runs.exists() and "run directory" not in capsys.readouterr().out


def test_resolve_spec_makes_files_absolute_and_leaves_modules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_spec("sub/p.py:make") == f"{tmp_path}/sub/p.py:make"
    assert resolve_spec("pkg.mod:make") == "pkg.mod:make"
