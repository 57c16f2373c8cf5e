"""A damaged latest checkpoint never loses a run: resume falls back to the newest readable one."""
import os
import shutil

import numpy as np
import pytest

import pinnopt

PROBLEM = dict(dim=3)


def _solve(out=None, resume=None, steps=100):
    return pinnopt.solve(pinnopt.problems.get("rastrigin", **PROBLEM), optimizer="adam", steps=steps, chunk=25,
                         checkpoint_every=25, out=out, resume=resume, optimizer_kwargs={"learning_rate": 0.01})


def _damage(step_dir):
    # Truncate every data file of the checkpoint: what a crash in the middle of a write leaves.
    for root, _, files in os.walk(step_dir):
        for f in files:
            if f not in ("commit_success.txt",):
                open(os.path.join(root, f), "wb").close()


def test_resume_skips_a_damaged_latest_checkpoint_and_says_so(tmp_path):
    run = str(tmp_path / "run")
    straight = _solve(steps=100)
    _solve(out=run, steps=75)
    checkpoints = os.path.join(run, "checkpoints")
    assert sorted(int(s) for s in os.listdir(checkpoints)) == [25, 50, 75]
    _damage(os.path.join(checkpoints, "75"))
    with pytest.warns(RuntimeWarning, match=r"checkpoints/75 could not be read and was skipped.*resuming from step 50"):
        resumed = _solve(resume=run, steps=100)
    # It went on from step 50 and, the run being deterministic, ends where a straight run does.
    np.testing.assert_array_equal(np.asarray(resumed.params), np.asarray(straight.params))
    assert os.path.isdir(checkpoints + ".skipped") and 100 in [int(s) for s in os.listdir(checkpoints)]
    assert [r["step"] for r in resumed.history if r["step"] % 25 == 0] == [25, 50, 75, 100]


def test_every_checkpoint_unreadable_is_a_clear_error(tmp_path):
    run = str(tmp_path / "run")
    _solve(out=run, steps=50)
    for step in os.listdir(os.path.join(run, "checkpoints")):
        _damage(os.path.join(run, "checkpoints", step))
    with pytest.raises(ValueError, match=r"no checkpoint in .* can be read \(step 50: .*step 25: "):
        _solve(resume=run, steps=100)


def test_resume_of_a_missing_directory_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        _solve(resume=str(tmp_path / "nope"))
    assert not os.path.exists(tmp_path / "nope")
    shutil.rmtree(tmp_path, ignore_errors=True)
