"""``pinnopt plot RUN_DIR``: the generic figures from metrics.jsonl, then the problem's own
(rebuilt from config.json, its parameters from the latest checkpoint) into RUN_DIR/plots."""
from __future__ import annotations

import os
import sys

from pinnopt import problems
from pinnopt.cli.solve import build_problem, load_run, saved_settings
from pinnopt.io.plots import plot_run
from pinnopt.problems.user import is_spec


def add_arguments(p) -> None:
    """The options of ``pinnopt plot``."""
    p.add_argument("run_dir")


def problem_for_plots(run_dir: str):
    """(problem, params) when the run's problem draws figures of its own, else (None, None).

    A run that is not from ``pinnopt solve``, or whose problem is no longer known here, gets
    the generic figures only; a problem of one's own that no longer loads is said so on stderr.
    """
    if not os.path.isfile(os.path.join(run_dir, "config.json")):
        return None, None
    try:
        s = saved_settings(run_dir)
    except ValueError:
        return None, None
    name = s.get("problem")
    if not is_spec(name) and name not in problems.available():
        return None, None
    try:
        problem = build_problem(name, s["problem_kwargs"])
    except (ValueError, TypeError) as err:
        if not is_spec(name):
            raise
        print(f"note: no figures of the problem itself: {err}", file=sys.stderr)
        return None, None
    if not hasattr(problem, "plot"):
        return None, None
    return load_run(run_dir, problem)


def run(args) -> int:
    """``pinnopt plot``: write the figures, print their paths."""
    try:
        paths = plot_run(args.run_dir)
        problem, params = problem_for_plots(args.run_dir)
        if problem is not None:
            paths += list(problem.plot(params, args.run_dir))
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}")
    for path in paths:
        print(path)
    return 0


__all__ = ["add_arguments", "problem_for_plots", "run"]
