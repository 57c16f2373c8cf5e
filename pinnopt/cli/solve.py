"""``pinnopt solve``: train a problem into a run directory, or continue one (``--resume``).

The problem is a registered name (``pinnopt list``) or a factory of one's own,
``FILE.py:NAME`` or ``package.module:NAME`` (``pinnopt.problems.user``), called with the
``-p KEY=VALUE`` options. Every option is checked (the problem, optimizer, constraint method
and balancer are built once) before the run directory is named, so a bad option leaves
nothing behind. config.json records the settings under "cli" (a file spec with an absolute
path), from which ``--resume`` and ``pinnopt plot`` rebuild the run.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import sys

import jax

from pinnopt import balancing, constraints, optimizers, problems, sharding
from pinnopt.cli.options import non_negative_int, parse_assignments, positive_int, split_per_name
from pinnopt.cli.report import add_problem_summary, format_summary, plot_all
from pinnopt.io.checkpoint import Checkpointer
from pinnopt.problems.user import is_spec, load_factory, resolve_spec, spec_label
from pinnopt.registry import check_options
from pinnopt.training import NonFiniteError, solve
from pinnopt.training.phases import resolve_phases
from pinnopt.training.precision import InFloat64
from pinnopt.training.solve import check_collocation
from pinnopt.training.state import init_state_and_constraints

DEFAULTS = {"optimizer": "adam", "constraints": "al", "balancing": "sum", "steps": 1000, "seed": 0, "chunk": 250,
            "resample_every": 1, "precision": "float32"}
# Each method setting and the setting of its options.
KWARGS = {"optimizer": "optimizer_kwargs", "constraints": "constraint_kwargs", "balancing": "balancing_kwargs"}


def add_arguments(p) -> None:
    """The options of ``pinnopt solve``."""
    p.add_argument("problem", nargs="?",
                   help="problem name (see `pinnopt list`), or a factory of your own: FILE.py:NAME or module:NAME")
    p.add_argument("--dim", type=int, help="dimension of a test function (same as -p dim=N)")
    p.add_argument("-p", "--problem-arg", action="append", metavar="KEY=VALUE", help="problem option")
    p.add_argument("--preset", help="a problem's named preset (same as -p preset=NAME), e.g. lumpy --preset quick")
    p.add_argument("--optimizer", "-o", action="append", metavar="NAME[:STEPS]",
                   help="optimizer name (default adam); repeated as NAME:STEPS, the phases run one after the "
                        "other (e.g. -o adam:5000 -o lbfgs:2000)")
    p.add_argument("--lr", type=float, help="learning rate (with phases: of every phase whose optimizer requires one)")
    p.add_argument("--opt-arg", action="append", metavar="[NAME.]KEY=VALUE",
                   help="optimizer hyperparameter; with phases, NAME. picks the phases of that optimizer")
    p.add_argument("--constraints", "-c", help="constraint method: al, penalty, none (default al)")
    p.add_argument("--constraint-arg", action="append", metavar="KEY=VALUE", help="constraint-method option")
    p.add_argument("--balancing", "-b", help="balancer: sum, homoscedastic, spatial, causal, grad_norm, ntk, rba "
                                             "(default sum; rba needs --resample-every 0)")
    p.add_argument("--balancing-arg", action="append", metavar="KEY=VALUE", help="balancer option")
    p.add_argument("--steps", type=positive_int, help="total steps (default 1000; with --resume: the run's own)")
    p.add_argument("--seed", type=non_negative_int, help="seed (default 0)")
    p.add_argument("--chunk", type=positive_int, help="steps per compiled chunk (default 250)")
    p.add_argument("--resample-every", type=non_negative_int, metavar="K",
                   help="collocation points: 1 fresh every step (default), K kept for K steps, 0 one fixed set")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="end the run at the first chunk end after this much wall time (compilation included)")
    p.add_argument("--x64", action="store_true", default=None,
                   help="run the whole solve in float64 (parameters, points, optimizer, checkpoints)")
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


# ---------------------------------------------------------------------------------------------
# Settings
def problem_key(name):
    """How a problem is recorded: a registered name as it is, a file spec with an absolute path."""
    if name is None or not is_spec(name):
        return name
    try:
        return resolve_spec(name)
    except ValueError as err:
        raise SystemExit(f"error: {err}")


def _requires_learning_rate(name: str) -> bool:
    import inspect

    try:
        param = inspect.signature(optimizers.REGISTRY.factory(name)).parameters.get("learning_rate")
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    return param is not None and param.default is inspect.Parameter.empty


def optimizer_settings(values, options: dict, lr):
    """(optimizer, optimizer_kwargs) from the ``-o`` values, ``--opt-arg`` options and ``--lr``.

    One ``-o NAME`` (or none): that optimizer with the options. ``-o NAME:STEPS`` (one or more):
    a list of phases ``{"name", "options", "steps"}`` (as config.json records them), each phase
    getting the options without a ``NAME.`` prefix and those prefixed with its name, and ``--lr``
    when its optimizer requires a learning rate.
    """
    values = values or []
    if not any(":" in v for v in values) and len(values) <= 1:
        if lr is not None:
            options["learning_rate"] = lr
        return (values[0] if values else None), options
    phases = []
    for v in values:
        name, _, steps = v.partition(":")
        try:
            steps = int(steps)
        except ValueError:
            raise SystemExit(f"error: -o {v}: with several optimizers each is NAME:STEPS (steps an integer)") from None
        if steps < 1:
            raise SystemExit(f"error: -o {v}: the steps of a phase must be >= 1")
        phases.append({"name": name, "options": {}, "steps": steps})
    per_name = split_per_name(options, sorted({p["name"] for p in phases}), "--opt-arg", "-o")
    for p in phases:
        p["options"] = dict(per_name.get(p["name"], {}))
        if lr is not None and _requires_learning_rate(p["name"]):
            p["options"].setdefault("learning_rate", lr)
    return phases, {}


def settings_from_args(args) -> dict:
    """The settings of a solve, from config.json when resuming, overridden by explicit flags."""
    problem_kwargs = parse_assignments(args.problem_arg, "--problem-arg")
    if args.dim is not None:
        problem_kwargs["dim"] = args.dim
    if args.preset is not None:
        problem_kwargs["preset"] = args.preset
    optimizer, opt_kwargs = optimizer_settings(args.optimizer, parse_assignments(args.opt_arg, "--opt-arg"),
                                               args.lr)
    problem = problem_key(args.problem)
    settings = {
        "problem": problem, "problem_kwargs": problem_kwargs,
        "optimizer": optimizer, "optimizer_kwargs": opt_kwargs,
        "constraints": args.constraints, "constraint_kwargs": parse_assignments(args.constraint_arg, "--constraint-arg"),
        "balancing": args.balancing, "balancing_kwargs": parse_assignments(args.balancing_arg, "--balancing-arg"),
        "steps": args.steps, "seed": args.seed, "chunk": args.chunk,
        "resample_every": args.resample_every, "precision": "float64" if args.x64 else None,
    }
    if args.resume:
        path = os.path.join(args.resume, "config.json")
        if not os.path.exists(path):
            raise SystemExit(f"error: --resume {args.resume}: no config.json there (not a run directory)")
        with open(path) as fh:
            saved = json.load(fh)
        cli = saved.get("cli")
        if cli is None:  # a run of pinnopt.solve from Python: its parts as the registries built them
            spec = saved.get("problem_spec") or {}
            cli = {"problem": spec.get("name"), "problem_kwargs": spec.get("options", {})}
        for key, val in settings.items():
            if val is None or val == {}:
                settings[key] = cli.get(key, saved.get(key))
        if problem is not None and problem != cli.get("problem"):
            raise SystemExit(f"error: --resume {args.resume} is a run of {cli.get('problem')!r}, not {problem!r}")
    if settings["problem"] is None:
        raise SystemExit("error: name a problem (see `pinnopt list`) or --resume a run directory")
    if isinstance(settings["optimizer"], list) and settings["steps"] is None:
        settings["steps"] = sum(p["steps"] for p in settings["optimizer"])  # the phases' total
    return settings


def fill_defaults(settings: dict, problem=None) -> dict:
    """Unset settings from the problem's own ``solve_defaults()`` (a preset's optimizer,
    method, balancer, steps, ...), then from ``DEFAULTS``. A flag given on the command line
    wins; its ``*_kwargs`` are merged over the problem's when it names the same method."""
    own = problem.solve_defaults() if hasattr(problem, "solve_defaults") else {}
    for key, kw in KWARGS.items():
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


# ---------------------------------------------------------------------------------------------
# Building and checking the parts
def build_problem(name: str, kwargs: dict):
    """The registered problem ``name``, or a user factory's for a ``FILE.py:NAME`` / ``module:NAME``
    spec, built with ``kwargs``. ``ValueError`` naming the problem for any bad name or option."""
    if not is_spec(name):
        return problems.get(name, **kwargs)
    factory = load_factory(name)
    check_options(f"problem {name!r}", factory, kwargs)  # the registry's checks, for a factory of one's own
    try:
        return factory(**kwargs)
    except TypeError as err:
        raise ValueError(f"problem {name!r}: {err}") from err


def build_parts(settings: dict) -> tuple:
    """(optimizers of the phases, balancer, constraint method) of the settings, from the registries."""
    phases = resolve_phases(settings["optimizer"], settings["optimizer_kwargs"], settings["steps"])
    return (tuple(p.tx for p in phases),
            balancing.get(settings["balancing"], **settings["balancing_kwargs"]),
            constraints.get(settings["constraints"], **settings["constraint_kwargs"]))


def check_settings(settings: dict) -> None:
    """Every setting a solve would reject, rejected now (``SystemExit`` naming it): the counts,
    and the optimizer, balancer and constraint method with their options (built once)."""
    for key, low in (("steps", 1), ("chunk", 1), ("seed", 0), ("resample_every", 0)):
        val = settings[key]
        if isinstance(val, bool) or not isinstance(val, int) or val < low:
            raise SystemExit(f"error: {key} must be an integer >= {low}, got {val!r}")
    try:
        _, balancer, _ = build_parts(settings)
        check_collocation(balancer, settings["resample_every"])
    except (ValueError, TypeError) as err:
        raise SystemExit(f"error: {err}")


def _problem_or_exit(settings: dict):
    try:
        return build_problem(settings["problem"], settings["problem_kwargs"])
    except (ValueError, TypeError) as err:
        raise SystemExit(f"error: {err}")


def problem_config(problem, settings: dict) -> dict:
    """config.json's "problem": the problem's own full description when it has one (a preset's
    every field), with the name (or spec) and the keyword arguments it was built from."""
    base = {"name": settings["problem"], **settings["problem_kwargs"]}
    if hasattr(problem, "config"):
        return {**problem.config(), **base}
    return base


def run_name(settings: dict) -> str:
    """The default run name, PROBLEM-OPTIMIZER-TIME (a spec's file stem and factory as PROBLEM)."""
    problem = spec_label(settings["problem"]) if is_spec(settings["problem"]) else settings["problem"]
    optimizer = settings["optimizer"]
    if isinstance(optimizer, list):
        optimizer = "+".join(p["name"] for p in optimizer)
    return f"{problem}-{optimizer}-{_dt.datetime.now():%Y%m%d-%H%M%S}"


# ---------------------------------------------------------------------------------------------
# The command
def run(args) -> int:
    """``pinnopt solve``: check everything, then name the run directory and train."""
    s = settings_from_args(args)
    devices = args.devices
    if args.distributed or sharding.distributed_requested():
        # Before any JAX computation (building a problem may already run one).
        info = sharding.initialize_distributed()
        print(f"distributed: process {info['process_id']} of {info['num_processes']}, "
              f"{info['local_devices']} local / {info['global_devices']} devices in all")
        devices = info["global_devices"] if devices is None else devices
    problem = _problem_or_exit(s)
    s = fill_defaults(s, problem)
    check_settings(s)
    if args.resume:
        out = args.resume
    else:
        out = os.path.join(args.runs, args.name or run_name(s))
        # Other processes of a multi-host run may already see the first one's config.json.
        if os.path.exists(os.path.join(out, "config.json")) and (devices is None or sharding.is_primary()):
            raise SystemExit(f"error: run directory {out} exists; use --resume {out} or another --name")
    print(f"run directory: {out}")
    try:
        res = solve(
            problem, optimizer=s["optimizer"], constraints=s["constraints"], balancing=s["balancing"],
            steps=s["steps"], seed=s["seed"], chunk=s["chunk"],
            out=out, resume=args.resume, resample_every=s["resample_every"], precision=s["precision"],
            optimizer_kwargs=s["optimizer_kwargs"], constraint_kwargs=s["constraint_kwargs"],
            balancing_kwargs=s["balancing_kwargs"], progress=not args.no_progress,
            problem_config=problem_config(problem, s), devices=devices,
            extra_config={"cli": s, "devices": devices}, time_limit=args.time_limit)
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


def saved_settings(run_dir: str) -> dict:
    """The "cli" settings of a run directory's config.json (``ValueError`` when there are none)."""
    # Read, not opened as a RunDir: opening one creates the folder.
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"{run_dir}: no config.json there (not a run directory)")
    with open(path) as fh:
        s = json.load(fh).get("cli")
    if s is None:
        raise ValueError(f"{run_dir}/config.json has no CLI settings (not a run of `pinnopt solve`)")
    return s


def load_run(run_dir: str, problem=None):
    """(problem, model params) of a run directory: the problem rebuilt from config.json (unless
    given), the parameters restored from the latest checkpoint."""
    s = {**DEFAULTS, **saved_settings(run_dir)}
    if problem is None:
        problem = build_problem(s["problem"], s["problem_kwargs"])
    txs, balancer, method = build_parts(s)
    x64 = s.get("precision") == "float64"
    with jax.enable_x64(x64):
        template = init_state_and_constraints(InFloat64(problem) if x64 else problem, txs, balancer, method,
                                              s["seed"], param_dtype=jax.numpy.float64 if x64 else None)[0]
        state = Checkpointer(os.path.join(run_dir, "checkpoints")).restore(template)
        return problem, jax.device_get(state.params["model"])


__all__ = ["DEFAULTS", "add_arguments", "build_parts", "build_problem", "check_settings", "fill_defaults",
           "load_run", "problem_config", "run", "run_name", "saved_settings", "settings_from_args"]
