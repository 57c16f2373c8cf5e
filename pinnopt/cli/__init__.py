"""The ``pinnopt`` command: list, solve, plot, bench, compare.

All of pinnopt's argparse code lives in this package, one module per command (``solve``,
``plot``, ``bench``, ``compare``), with the ``KEY=VALUE`` options in ``options`` and the end-of-run table
and figures in ``report``. The library and the experiment engines take plain arguments.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from pinnopt import balancing, constraints, optimizers, problems
from pinnopt.cli import bench, compare, plot, solve
from pinnopt.cli.options import parse_assignments


def _list(args) -> int:
    print("problems:           " + ", ".join(problems.available()))
    print("optimizers:         " + ", ".join(optimizers.available()))
    print("constraint methods: " + ", ".join(constraints.available()))
    print("balancers:          " + ", ".join(balancing.available()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``pinnopt``: one sub-command per module of this package."""
    parser = argparse.ArgumentParser(prog="pinnopt", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="problems, optimizers, constraint methods, balancers").set_defaults(func=_list)
    commands = (
        ("solve", solve, "train a problem; writes a run directory"),
        ("plot", plot, "write PNG figures of a run into RUN_DIR/plots"),
        ("bench", bench, "compare optimizers on a problem over many vmapped runs"),
        ("compare", compare, "a model-comparison table of finished runs, made by their problem"),
    )
    for name, module, text in commands:
        p = sub.add_parser(name, help=text)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.func(args)


__all__ = ["build_parser", "main", "parse_assignments"]
