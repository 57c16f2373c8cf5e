"""The ``pinnopt`` command: list, solve, plot, bench."""
from __future__ import annotations

import argparse
import ast
import datetime as _dt
import json
import os
import sys
from typing import Optional, Sequence


def parse_assignments(items: Optional[Sequence[str]], what: str) -> dict:
    """``["lr=0.1", "weights={'bc': 1e5}"]`` -> ``{"lr": 0.1, "weights": {"bc": 100000.0}}``.

    Values are Python/JSON literals; anything else is kept as a string.
    """
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"error: {what} option {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        try:
            val = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            low = raw.strip().lower()
            val = {"true": True, "false": False, "none": None, "null": None}.get(low, raw)
        out[key] = val
    return out


def _cmd_list(args) -> int:
    from pinnopt import balancing, constraints, optimizers, problems

    print("problems:           " + ", ".join(problems.available()))
    print("optimizers:         " + ", ".join(optimizers.available()))
    print("constraint methods: " + ", ".join(constraints.available()))
    print("balancers:          " + ", ".join(balancing.available()))
    return 0


def _solve_settings(args) -> dict:
    """The settings of a solve, from config.json when resuming, overridden by explicit flags."""
    problem_kwargs = parse_assignments(args.problem_arg, "--problem-arg")
    if args.dim is not None:
        problem_kwargs["dim"] = args.dim
    if args.preset is not None:
        problem_kwargs["preset"] = args.preset
    opt_kwargs = parse_assignments(args.opt_arg, "--opt-arg")
    if args.lr is not None:
        opt_kwargs["learning_rate"] = args.lr
    settings = {
        "problem": args.problem, "problem_kwargs": problem_kwargs,
        "optimizer": args.optimizer, "optimizer_kwargs": opt_kwargs,
        "constraints": args.constraints, "constraint_kwargs": parse_assignments(args.constraint_arg, "--constraint-arg"),
        "balancing": args.balancing, "balancing_kwargs": parse_assignments(args.balancing_arg, "--balancing-arg"),
        "steps": args.steps, "seed": args.seed, "chunk": args.chunk,
    }
    if args.resume:
        path = os.path.join(args.resume, "config.json")
        if not os.path.exists(path):
            raise SystemExit(f"error: --resume {args.resume}: no config.json there (not a run directory)")
        with open(path) as fh:
            saved = json.load(fh)
        cli = saved.get("cli", {})
        for key, val in settings.items():
            if val is None or val == {}:
                settings[key] = cli.get(key, saved.get(key))
        if args.problem is not None and args.problem != cli.get("problem"):
            raise SystemExit(f"error: --resume {args.resume} is a run of {cli.get('problem')!r}, not {args.problem!r}")
    if settings["problem"] is None:
        raise SystemExit("error: name a problem (see `pinnopt list`) or --resume a run directory")
    return settings


DEFAULTS = {"optimizer": "adam", "constraints": "al", "balancing": "sum", "steps": 1000, "seed": 0, "chunk": 250}


def fill_defaults(settings: dict, problem=None) -> dict:
    """Unset settings from the problem's own ``solve_defaults()`` (a preset's optimizer,
    method, balancer, steps, ...), then from ``DEFAULTS``. A flag given on the command line
    wins; its ``*_kwargs`` are merged over the problem's when it names the same method."""
    own = problem.solve_defaults() if hasattr(problem, "solve_defaults") else {}
    for key in ("optimizer", "constraints", "balancing"):
        kw = {"optimizer": "optimizer_kwargs", "constraints": "constraint_kwargs",
              "balancing": "balancing_kwargs"}[key]
        if key in own and settings[key] in (None, own[key]):
            settings[key] = own[key]
            settings[kw] = {**own.get(kw, {}), **(settings[kw] or {})}
    for key in ("steps", "chunk", "seed"):
        if settings[key] is None and key in own:
            settings[key] = own[key]
    for key, val in DEFAULTS.items():
        if settings[key] is None:
            settings[key] = val
    return settings


def _cmd_solve(args) -> int:
    import jax

    import pinnopt
    from pinnopt import sharding
    from pinnopt.training import NonFiniteError

    s = _solve_settings(args)
    devices = args.devices
    if args.distributed or sharding.distributed_requested():
        # Before any JAX computation (building a problem may already run one).
        info = sharding.initialize_distributed()
        print(f"distributed: process {info['process_id']} of {info['num_processes']}, "
              f"{info['local_devices']} local / {info['global_devices']} devices in all")
        devices = info["global_devices"] if devices is None else devices
    try:
        problem = pinnopt.problems.get(s["problem"], **s["problem_kwargs"])
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    s = fill_defaults(s, problem)
    if args.resume:
        out = args.resume
    else:
        name = args.name or f"{s['problem']}-{s['optimizer']}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
        out = os.path.join(args.runs, name)
        # Other processes of a multi-host run may already see the first one's config.json.
        if os.path.exists(os.path.join(out, "config.json")) and (devices is None or sharding.is_primary()):
            raise SystemExit(f"error: run directory {out} exists; use --resume {out} or another --name")
    print(f"run directory: {out}")
    try:
        res = pinnopt.solve(
            problem, optimizer=s["optimizer"], constraints=s["constraints"], balancing=s["balancing"],
            steps=s["steps"], seed=s["seed"], chunk=s["chunk"], out=out, resume=args.resume,
            optimizer_kwargs=s["optimizer_kwargs"], constraint_kwargs=s["constraint_kwargs"],
            balancing_kwargs=s["balancing_kwargs"], progress=not args.no_progress,
            problem_config=_problem_config(problem, s), devices=devices,
            extra_config={"cli": s, "devices": devices})
    except NonFiniteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    if devices is not None and not sharding.is_primary():
        return 0  # the first process writes the files and the report
    # The CLI settings went into config.json at the start (``extra_config``), so `--resume`
    # can rebuild the same problem and methods even after an interruption; the device count
    # is recorded beside them, not in them: a resumed run may use other devices.
    # The report and figures run on the default device from a host copy of the (replicated)
    # parameters: computing them from arrays spread over a mesh would only add cross-device
    # programs, the kind forced CPU devices have been seen to stall in.
    params = jax.device_get(res.params)
    summary = add_problem_summary(out, problem, params)
    print(format_summary(summary))
    if not args.no_plots:
        for path in plot_all(out, problem, params):
            print(f"plot: {path}")
    return 0


def _problem_config(problem, settings: dict) -> dict:
    """config.json's "problem": the problem's own full description when it has one (a preset's
    every field), with the name and the keyword arguments it was built from."""
    base = {"name": settings["problem"], **settings["problem_kwargs"]}
    if hasattr(problem, "config"):
        return {**problem.config(), **base}
    return base


def add_problem_summary(run_dir: str, problem, params) -> dict:
    """summary.json gains "problem": the problem's ``summary(params)`` (fitted physics), if it has one."""
    from pinnopt.io.rundir import RunDir

    rd = RunDir(run_dir)
    summary = rd.read_json("summary.json")
    if hasattr(problem, "summary"):
        summary["problem"] = problem.summary(params)
        rd.write_json("summary.json", summary)
    return summary


def plot_all(run_dir: str, problem=None, params=None) -> list:
    """The generic figures from metrics.jsonl, then the problem's own (``problem.plot(params, run_dir)``)."""
    from pinnopt.io.plots import plot_run

    paths = plot_run(run_dir)
    if problem is not None and hasattr(problem, "plot"):
        paths += list(problem.plot(params, run_dir))
    return paths


def load_run(run_dir: str, problem=None):
    """(problem, model params) of a run directory: the problem rebuilt from config.json (unless
    given), the parameters restored from the latest checkpoint."""
    import pinnopt
    from pinnopt import balancing, constraints, optimizers
    from pinnopt.io.checkpoint import Checkpointer
    from pinnopt.io.rundir import RunDir
    from pinnopt.training import init_state

    rd = RunDir(run_dir)
    s = rd.read_json("config.json").get("cli")
    if s is None:
        raise ValueError(f"{run_dir}/config.json has no CLI settings (not a run of `pinnopt solve`)")
    if problem is None:
        problem = pinnopt.problems.get(s["problem"], **s["problem_kwargs"])
    template = init_state(problem, optimizers.get(s["optimizer"], **s["optimizer_kwargs"]),
                          balancing.get(s["balancing"], **s["balancing_kwargs"]),
                          constraints.get(s["constraints"], **s["constraint_kwargs"]), s["seed"])
    state = Checkpointer(rd.checkpoints).restore(template)
    return problem, state.params["model"]


def format_summary(summary: dict) -> str:
    """The final table of a run: one metric a line."""
    final = summary.get("final", {})
    lines = [f"{'metric':<36} value", "-" * 52]
    lines.append(f"{'steps':<36} {summary['steps']}")
    if summary.get("steps_per_second"):
        lines.append(f"{'steps per second':<36} {summary['steps_per_second']:.1f}")
    if summary.get("best_loss") is not None:
        lines.append(f"{'best loss':<36} {summary['best_loss']:.6g}")
    order = ("loss", "objective", "constraint_loss", "raw/", "violation/", "heldout_violation/", "lam/",
             "mu/", "sigma/", "causal/", "eval/", "heldout_raw/")
    shown = set()
    for prefix in order:
        for key in sorted(final):
            if key.startswith(prefix) and key not in shown and isinstance(final[key], (int, float)):
                shown.add(key)
                lines.append(f"{key:<36} {final[key]:.6g}")
    for key, val in sorted((summary.get("problem") or {}).items()):
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            lines.append(f"{'problem/' + key:<36} {val:.6g}")
        elif isinstance(val, bool):
            lines.append(f"{'problem/' + key:<36} {val}")
    if summary.get("known_minimum"):
        lines.append(f"{'known minimum':<36} {summary['known_minimum']['value']:.6g}")
    lines.append(f"{'non-finite steps skipped':<36} {summary.get('nonfinite_total', 0)}")
    return "\n".join(lines)


def _cmd_plot(args) -> int:
    from pinnopt.io.plots import plot_run

    try:
        paths = plot_run(args.run_dir)
        problem, params = _problem_for_plots(args.run_dir)
        if problem is not None:
            paths += list(problem.plot(params, args.run_dir))
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}")
    for path in paths:
        print(path)
    return 0


def _problem_for_plots(run_dir: str):
    """(problem, params) when the run's problem draws figures of its own, else (None, None)."""
    import pinnopt

    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return None, None
    with open(path) as fh:
        s = json.load(fh).get("cli")
    if not s or s.get("problem") not in pinnopt.problems.available():
        return None, None
    problem = pinnopt.problems.get(s["problem"], **s["problem_kwargs"])
    if not hasattr(problem, "plot"):
        return None, None
    return load_run(run_dir, problem)


def _cmd_bench(args) -> int:
    from pinnopt import bench

    return bench.cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pinnopt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="problems, optimizers, constraint methods, balancers").set_defaults(func=_cmd_list)

    p = sub.add_parser("solve", help="train a problem; writes a run directory")
    p.add_argument("problem", nargs="?", help="problem name (see `pinnopt list`)")
    p.add_argument("--dim", type=int, help="dimension of a test function (same as -p dim=N)")
    p.add_argument("-p", "--problem-arg", action="append", metavar="KEY=VALUE", help="problem option")
    p.add_argument("--preset", help="a problem's named preset (same as -p preset=NAME), e.g. lumpy --preset quick")
    p.add_argument("--optimizer", "-o", help="optimizer name (default adam)")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--opt-arg", action="append", metavar="KEY=VALUE", help="optimizer hyperparameter")
    p.add_argument("--constraints", "-c", help="constraint method: al, penalty, none (default al)")
    p.add_argument("--constraint-arg", action="append", metavar="KEY=VALUE", help="constraint-method option")
    p.add_argument("--balancing", "-b", help="balancer: sum, homoscedastic, spatial, causal (default sum)")
    p.add_argument("--balancing-arg", action="append", metavar="KEY=VALUE", help="balancer option")
    p.add_argument("--steps", type=int, help="total steps (default 1000; with --resume: the run's own)")
    p.add_argument("--seed", type=int, help="seed (default 0)")
    p.add_argument("--chunk", type=int, help="steps per compiled chunk (default 250)")
    p.add_argument("--runs", default="runs", help="folder of run directories (default ./runs)")
    p.add_argument("--name", help="run name (default PROBLEM-OPTIMIZER-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="do not write plots at the end")
    p.add_argument("--devices", type=int, metavar="N",
                   help="split every batch over the first N devices (default: one device; with "
                        "--distributed: all devices of all hosts)")
    p.add_argument("--distributed", action="store_true",
                   help="join a multi-host run (jax.distributed; also implied by JAX_COORDINATOR_ADDRESS "
                        "or JAX_NUM_PROCESSES in the environment)")
    p.set_defaults(func=_cmd_solve)

    p = sub.add_parser("plot", help="write PNG figures of a run into RUN_DIR/plots")
    p.add_argument("run_dir")
    p.set_defaults(func=_cmd_plot)

    try:
        from pinnopt import bench
    except ImportError:  # the bench engine is optional at import time
        bench = None
    if bench is not None and hasattr(bench, "add_arguments"):
        p = sub.add_parser("bench", help="compare optimizers on a problem over many vmapped runs")
        bench.add_arguments(p)
        p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
