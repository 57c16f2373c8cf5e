"""``pinnopt bench PROBLEM``: compare optimizers over many vmapped runs, or run a PDE comparison.

A test function (``rastrigin``, ``ackley``, ...) goes to the vmapped engine
(``pinnopt.experiments.vmapped``: one table of optimizers, ``--runs`` runs each); ``convection``
and ``pde_toy`` go to the comparison engine (``pinnopt.experiments.comparison``: balancers and
constraint methods through the full solve loop, ``--runs`` seeds each).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from pinnopt.cli.options import parse_assignments, split_per_name
from pinnopt.experiments import comparison, pde_comparisons, vmapped


def add_arguments(parser) -> None:
    """The options of ``pinnopt bench``: the vmapped engine's, then the PDE comparisons' own."""
    parser.add_argument("problem", nargs="?", help="problem name (see `pinnopt list`); omit with --suite")
    parser.add_argument("--suite", choices=["pde"], help="run a whole suite: pde (the reference PDEs, "
                                                          "pinnopt.experiments.pde_suite)")
    parser.add_argument("--quick", action="store_true", help="--suite: one seed and at most 30 s per problem")
    parser.add_argument("--only", help="--suite: comma-separated entries to run (e.g. poisson2d,burgers)")
    parser.add_argument("--optimizers", "-o", default=None,
                        help="comma-separated optimizer names (default bbi,adam,sgd; pde_toy: adam,bbi; "
                             "convection: adam)")
    parser.add_argument("--runs", type=int, default=None,
                        help="independent runs per optimizer (default 10; PDE problems: seeds, from --budget)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per run (default 1000; PDE problems: from --budget)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the starts and the runs (default 0)")
    parser.add_argument("--dim", type=int, help="dimension of a test function (same as -p dim=N)")
    parser.add_argument("-p", "--problem-arg", action="append", metavar="KEY=VALUE", help="problem option")
    parser.add_argument("--opt-arg", action="append", metavar="[NAME.]KEY=VALUE",
                        help="optimizer hyperparameter; NAME. limits it to one optimizer "
                             "(e.g. bbi.delta_energy=2, sgd.momentum=0.9, learning_rate=0.01 for all)")
    parser.add_argument("--threshold", type=float, default=1e-3,
                        help="success: best loss within this of the known minimum (default 1e-3)")
    parser.add_argument("--record-every", type=int, help="steps between points of the loss curves")
    parser.add_argument("--x64", action="store_true", help="run in float64")
    parser.add_argument("--out", help="write table.txt, summary.json and plots/ into this folder")
    parser.add_argument("--budget", choices=sorted(pde_comparisons.PRESETS),
                        help="PDE problems: steps and seeds preset (default: default); --steps and --runs override it")
    parser.add_argument("--configs", help="PDE problems: comma-separated labels of the configs to run "
                                          "(convection: sum,causal,spatial+causal; pde_toy: METHOD/OPTIMIZER "
                                          "with METHOD penalty, al or al-mean)")
    parser.add_argument("--compile-cache", metavar="DIR",
                        help="PDE problems: keep compiled programs in DIR, so seeds after the first skip compilation")


def run(args) -> int:
    """``pinnopt bench``: a suite, a PDE problem's comparison, or any other problem's vmapped table."""
    if getattr(args, "suite", None):
        return run_pde_suite(args)
    if not args.problem:
        raise SystemExit("error: give a problem name or --suite pde")
    # PDE problems are compared through the full solve loop (balancers, constraint methods).
    if args.problem in pde_comparisons.PROBLEMS:
        return run_comparison(args)
    return run_vmapped(args)


def _names(text) -> list:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def run_vmapped(args) -> int:
    """The table of ``--optimizers`` on a test function; written to ``--out`` when given."""
    args.optimizers = args.optimizers or "bbi,adam,sgd"
    args.runs = 10 if args.runs is None else args.runs
    args.steps = 1000 if args.steps is None else args.steps
    names = _names(args.optimizers)
    problem_kwargs = parse_assignments(args.problem_arg, "--problem-arg")
    if args.dim is not None:
        problem_kwargs["dim"] = args.dim
    optimizer_kwargs = split_per_name(parse_assignments(args.opt_arg, "--opt-arg"), names, "--opt-arg", "--optimizers")
    kwargs = dict(runs=args.runs, steps=args.steps, seed=args.seed, problem_kwargs=problem_kwargs,
                  optimizer_kwargs=optimizer_kwargs, out_dir=args.out,
                  success_threshold=args.threshold, record_every=args.record_every)
    try:
        if args.x64:
            with jax.enable_x64(True):
                table = vmapped.run_bench(args.problem, names, dtype=jnp.float64, **kwargs)
        else:
            table = vmapped.run_bench(args.problem, names, **kwargs)
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    print(vmapped.format_table(table))
    if args.out:
        print(f"wrote {args.out}/table.txt, summary.json, plots/")
    return 0


def run_comparison(args) -> int:
    """``pinnopt bench convection|pde_toy``: run the comparison, print its tables, write them with ``--out``.

    Reads from ``args``: ``problem``; ``steps`` and ``runs`` (seeds; None: the ``--budget``
    preset); ``seed`` (the first seed); ``problem_arg`` (``-p KEY=VALUE``: comparison or problem
    options, e.g. ``beta=50``, ``eps=1``, ``penalty_weight=1e4``); ``opt_arg``
    (``[NAME.]KEY=VALUE``); ``optimizers``; ``configs``; ``budget``; ``compile_cache``; ``out``.
    """
    name = args.problem
    preset = (pde_comparisons.PRESETS[getattr(args, "budget", None) or "default"][name]
              if name in pde_comparisons.PROBLEMS else {})
    steps = getattr(args, "steps", None) or preset.get("steps")
    runs = getattr(args, "runs", None) or preset.get("seeds")
    first = getattr(args, "seed", None) or 0
    optimizers = _names(getattr(args, "optimizers", None))
    select = _names(getattr(args, "configs", None)) or None
    if getattr(args, "compile_cache", None):
        comparison.enable_compile_cache(args.compile_cache)
    try:
        options = pde_comparisons.comparison_options(
            name, parse_assignments(getattr(args, "problem_arg", None), "--problem-arg"),
            parse_assignments(getattr(args, "opt_arg", None), "--opt-arg"), optimizers or None, select)
        configs = pde_comparisons.CONFIGS[name](**options)
        comp = comparison.run_comparison(name, configs, int(steps), list(range(first, first + int(runs))), log=print)
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    print()
    print(comparison.format_comparison(comp))
    out = getattr(args, "out", None)
    if out:
        paths = comparison.write_outputs([comp], out)
        print("wrote " + ", ".join(paths))
    return 0


def run_pde_suite(args) -> int:
    """``pinnopt bench --suite pde [--quick] [--only A,B] [--out DIR]``: the table, and with ``--out``
    table.txt and a figure per problem (prediction, reference, point-wise error)."""
    import os

    from pinnopt.experiments import pde_suite

    try:
        rows = pde_suite.run_suite(_names(getattr(args, "only", None)) or None, quick=bool(args.quick), log=print)
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    table = pde_suite.format_table(rows)
    print()
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "table.txt"), "w") as fh:
            fh.write(table + "\n")
        figures = [pde_suite.plot_entry(r, os.path.join(args.out, f"{r.entry.label}.png")) for r in rows]
        print("wrote " + ", ".join([os.path.join(args.out, "table.txt")] + [f for f in figures if f]))
    return 0


__all__ = ["add_arguments", "run", "run_comparison", "run_pde_suite", "run_vmapped"]
