"""The PDE suite's entries, table and commands (fast); the quick suite end to end (slow)."""
import dataclasses

import pytest

from pinnopt.cli import main
from pinnopt.experiments import pde_suite


def test_every_entry_builds_its_problem_and_its_command_reruns_it():
    from pinnopt import problems

    for entry in pde_suite.entries():
        problem = problems.get(entry.problem, **entry.problem_options)
        assert hasattr(problem, "predict") and hasattr(problem, "reference_solution")
        cmd = entry.command(seed=2)
        assert cmd.startswith(f"pinnopt solve {entry.problem} ")
        for k, v in entry.problem_options.items():
            assert f"-p {k}={v}" in cmd
        assert "--x64" in cmd and "--resample-every 0" in cmd and "--seed 2" in cmd
        assert f"--time-limit {entry.budget_s:g}" in cmd
    quick = pde_suite.entries(quick=True)
    assert all(e.seeds == 1 and e.budget_s <= 30 for e in quick)
    assert sum(e.budget_s * e.seeds for e in pde_suite.entries()) <= 3600  # the full suite: about an hour


def test_table_counts_seeds_at_target_and_names_branches():
    entry = dataclasses.replace(pde_suite.entries()[-1], seeds=2)
    row = pde_suite.Row(entry, errors=[5e-3, 7.6], seconds=[10.0, 12.0], steps=[300, 310],
                        reached=[8.0, None], notes=["exact", "second"])
    table = pde_suite.format_table([row])
    assert "1/2" in table and "exact, second" in table and entry.command() in table
    assert "5.00e-03" in table or "3.80e+00" in table  # the median of the two errors


def test_unknown_entry_is_an_error_naming_the_available_ones():
    with pytest.raises(ValueError, match="poisson2d"):
        pde_suite.run_suite(["no_such_problem"])
    with pytest.raises(SystemExit, match="--suite pde"):
        main(["bench"])


@pytest.mark.slow
def test_quick_suite_runs_end_to_end(tmp_path, capsys):
    assert main(["bench", "--suite", "pde", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for entry in pde_suite.entries(quick=True):
        assert entry.label in out
        assert (tmp_path / f"{entry.label}.png").exists()
    assert (tmp_path / "table.txt").exists()
