"""``pinnopt compare RUN_DIR...``: a model-comparison table of finished runs, made by their problem.

The core knows no model: it reads the problem each run directory's config.json names (or
``--problem``), rebuilds that problem as the run did, and calls its ``compare(run_dirs, **options)``
hook, which returns the table as text (a problem without one is an error naming it). The options
given on the command line are passed through by name, and only those given: ``covariance`` (a data
covariance file), ``effective_params``, ``profile_grid`` and ``profile_steps``, and any ``-o
KEY=VALUE``; what they mean is the problem's (``cosmology``: :mod:`cosmology.comparison`).
"""
from __future__ import annotations

import argparse
import os
import sys

from pinnopt import problems
from pinnopt.cli.options import parse_assignments, positive_int
from pinnopt.cli.solve import build_problem, saved_settings


def float_list(text: str) -> list:
    """An argparse type: ``0.30,0.33,0.36`` -> [0.3, 0.33, 0.36]."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    return values


def add_arguments(p) -> None:
    """The options of ``pinnopt compare``."""
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="finished run directories (rows of the table)")
    p.add_argument("--problem", help="the problem whose comparison to make (default: the one the first RUN_DIR "
                                     "names; needed without RUN_DIR)")
    p.add_argument("--covariance", metavar="PATH", help="the data's full covariance file (default: the problem's "
                                                        "diagonal errors; the table's header says which)")
    p.add_argument("--out", metavar="FILE", help="also write the table to FILE")
    p.add_argument("--effective-params", action="store_true",
                   help="compute each run's effective number of parameters from its checkpoint (slow)")
    p.add_argument("--profile-grid", type=float_list, metavar="X1,X2,...",
                   help="profile likelihood by retraining at these values of the problem's profiled parameter")
    p.add_argument("--profile-steps", type=positive_int, metavar="N", help="steps of each retraining")
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="another option of the comparison")


def _problem_of(args):
    """(name, problem) to dispatch to: --problem, else the first run's, built with the run's options."""
    kwargs = {}
    name = args.problem
    if args.run_dirs:
        for run_dir in args.run_dirs:
            if not os.path.isdir(run_dir):
                raise SystemExit(f"error: RUN_DIR {run_dir}: no such directory")
        try:
            first = saved_settings(args.run_dirs[0])
        except ValueError as err:
            raise SystemExit(f"error: {err}")
        if name is None or name == first.get("problem"):
            name, kwargs = first.get("problem"), dict(first.get("problem_kwargs") or {})
    if name is None:
        raise SystemExit("error: give RUN_DIR(s), or --problem NAME for the table without runs")
    try:
        return name, build_problem(name, kwargs)
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise SystemExit(f"error: --problem {name}: {err}")


def run(args) -> int:
    """``pinnopt compare``: dispatch to the problem's ``compare`` hook, print (and write) the table."""
    name, problem = _problem_of(args)
    if not hasattr(problem, "compare"):
        raise SystemExit(f"error: problem {name!r} makes no comparison table (it has no compare method); "
                         f"problems: {', '.join(problems.available())}")
    options = parse_assignments(args.option, "-o")
    given = {"covariance": args.covariance, "profile_grid": args.profile_grid, "profile_steps": args.profile_steps}
    options.update({k: v for k, v in given.items() if v is not None})
    if args.effective_params:
        options["effective_params"] = True
    try:
        text = problem.compare(list(args.run_dirs), **options)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}")
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise SystemExit(f"error: problem {name!r} does not take this option ({err})")
    print(text, end="" if text.endswith("\n") else "\n")
    if args.out:
        try:
            with open(args.out, "w") as fh:
                fh.write(text)
        except OSError as err:
            raise SystemExit(f"error: --out {args.out}: {err}")
        print(f"table written to {args.out}", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "float_list", "run"]
