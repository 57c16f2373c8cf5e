"""The two comparisons of the PDE benchmark: their configs, budgets and command-line style options.

- ``convection`` (``convection_configs``): ``sum`` against ``causal`` and ``causal`` inside
  ``spatial``, one network and learning-rate schedule for all; relative L2 error and the
  causal minimum weight over training (``causal/min_weight``: 1 when every time chunk counts,
  0 when later chunks are still switched off).
- ``pde_toy`` (``pde_toy_configs``): the boundary condition as a static 1e5 penalty (the
  talk's loss: the ``sum`` balancer with weight 1e5 on the ``bc`` objective) against the
  augmented Lagrangian on the ``bc`` equality constraint, each with Adam and with BBI;
  relative L2 error, boundary violation (RMS of u - g on fixed circle points) and the
  solution branch.

``PRESETS`` hold the budgets of the benchmark script and of ``pinnopt bench convection|pde_toy``
(``quick``: a smoke run; ``default``: the CPU benchmark; ``long``: more steps and seeds). The
configs run through ``pinnopt.experiments.comparison.run_comparison``.
"""
from __future__ import annotations

import inspect
from typing import Optional, Sequence

from pinnopt.experiments.comparison import Config

PROBLEMS = ("convection", "pde_toy")


def convection_configs(beta: float = 30.0, *, width: int = 64, depth: int = 3, n_points: int = 1024,
                       n_ic: int = 256, optimizer: str = "adam", learning_rate: float = 5e-3,
                       decay_every: Optional[int] = 1000, decay_rate: float = 0.9, ic_weight: float = 100.0,
                       eps: float = 0.1, n_chunks: int = 16, spatial_width: int = 16,
                       optimizer_kwargs: Optional[dict] = None, problem: Optional[dict] = None,
                       select: Optional[Sequence[str]] = None) -> list:
    """``sum`` against ``causal`` and ``causal`` inside ``spatial`` on convection at speed ``beta``.

    Shared by all: the periodic network (``width`` x ``depth`` tanh on (t, cos x, sin x)), fresh
    points every step, ``optimizer`` with ``learning_rate`` decayed by ``decay_rate`` every
    ``decay_every`` steps, loss ``mean pde + ic_weight mean ic`` (the initial condition must
    outweigh the residual, whose scale is beta^2, or u = 0 wins). Only the reduction of the
    residual differs: its plain mean (``sum``), the causal mean over ``n_chunks`` time chunks
    with ``eps`` (``causal``), or the causal mean of spatially balanced point values with a
    ``spatial_width`` x 2 weight net on the residual points (``spatial+causal``). The initial
    condition, all at t = 0, is never weighted causally. ``problem`` overrides problem options;
    ``select`` keeps the named labels.
    """
    kwargs = {"beta": float(beta), "width": width, "depth": depth, "n_points": n_points, "n_ic": n_ic,
              "periodic": True, **(problem or {})}
    causal = {"eps": eps, "n_chunks": n_chunks, "terms": ["pde"], "weights": {"ic": ic_weight}}
    balancers = {
        "sum": ("sum", {"weights": {"ic": ic_weight}}),
        "causal": ("causal", causal),
        "spatial+causal": ("spatial", {"terms": ["pde"], "width": spatial_width, "depth": 2,
                                       "inner": {"name": "causal", **causal}}),
    }
    configs = [Config(label, "convection", kwargs, optimizer, learning_rate, decay_every, decay_rate,
                      dict(optimizer_kwargs or {}), "none", {}, name, opts)
               for label, (name, opts) in balancers.items()]
    return _select(configs, select)


def pde_toy_configs(*, width: int = 32, depth: int = 3, fourier_features: int = 32, fourier_scale: float = 2.0,
                    n_interior: int = 256, n_boundary: int = 64, penalty_weight: float = 1e5,
                    adam: Optional[dict] = None, bbi: Optional[dict] = None, al: Optional[dict] = None,
                    problem: Optional[dict] = None, select: Optional[Sequence[str]] = None) -> list:
    """The boundary condition u = g of the PDE toy by a static penalty or the augmented Lagrangian,
    with Adam and with BBI.

    - ``penalty``: the talk's loss ``mean r^2 + penalty_weight mean (u - g)^2`` (``bc`` an
      objective, the ``sum`` balancer with that weight; no constraint method);
    - ``al``: the augmented Lagrangian on the problem's point-wise constraint u - g = 0
      (the library's default: (lam + mu/2) mean (u - g)^2, the multiplier rising while it is
      violated);
    - ``al-mean``: the same constraint declared ``aggregate="mean"``, so only the signed mean of
      u - g is enforced (errors of opposite sign cancel: see the README).

    ``adam``, ``bbi``: learning-rate settings ``{"learning_rate", "decay_every", "decay_rate"}``
    and other hyperparameters of each optimizer; ``al``: options of the method. Labels are
    ``<method>/<optimizer>``; the default set is penalty/adam, al/adam, al-mean/adam,
    penalty/bbi, al/bbi (``select`` picks others, e.g. al-mean/bbi).
    """
    base = {"width": width, "depth": depth, "fourier_features": fourier_features,
            "fourier_scale": fourier_scale, "n_interior": n_interior, "n_boundary": n_boundary, **(problem or {})}
    opts = {"adam": {"learning_rate": 3e-3, "decay_every": 500, "decay_rate": 0.9, **(adam or {})},
            "bbi": {**BBI_PDE_TOY, **(bbi or {})}}
    al_opts = {**AL_PDE_TOY, **(al or {})}
    methods = {
        "penalty": dict(problem_kwargs={**base, "boundary": "objective"}, constraints="none",
                        balancing_kwargs={"weights": {"bc": penalty_weight}}),
        "al": dict(problem_kwargs={**base, "boundary": "constraint"}, constraints="al",
                   constraint_kwargs=al_opts),
        "al-mean": dict(problem_kwargs={**base, "boundary": "constraint"}, constraints="al",
                        constraint_kwargs=al_opts, aggregate={"bc": "mean"}),
    }
    configs = []
    for optimizer in ("adam", "bbi"):
        o = dict(opts[optimizer])
        lr = dict(learning_rate=o.pop("learning_rate"), decay_every=o.pop("decay_every", None),
                  decay_rate=o.pop("decay_rate", 1.0))
        for method, spec in methods.items():
            configs.append(Config(f"{method}/{optimizer}", "pde_toy", optimizer=optimizer, optimizer_kwargs=o,
                                  **lr, **spec))
    default = ("penalty/adam", "al/adam", "al-mean/adam", "penalty/bbi", "al/bbi")
    return _select(configs, default if select is None else select)


# BBI on the PDE toy (see the README for the search behind these): dt is small because the
# loss starts near 1e6 and BBI's steps grow like dt sqrt(E); delta_energy of the loss's order
# keeps batch-to-batch noise in the loss (fresh points every step) below the energy E.
BBI_PDE_TOY = {"learning_rate": 1e-4, "delta_energy": 1e6, "v0": 0.0, "threshold0": 1000, "threshold1": 3000,
               "energy_guard": True}
# The augmented Lagrangian on the boundary: mu starts at 1e3, not 1, because the residual
# term starts near 1e6; the schedule raises it 10x when the violation stalls for 250 steps.
AL_PDE_TOY = {"mu_init": 1e3, "mu_max": 1e7, "check_every": 250}


def _select(configs: list, select: Optional[Sequence[str]]) -> list:
    if select is None:
        return configs
    labels = [c.label for c in configs]
    unknown = [s for s in select if s not in labels]
    if unknown:
        raise ValueError(f"select: unknown config(s) {unknown}; available: {', '.join(labels)}")
    return [c for c in configs if c.label in select]


PRESETS = {
    "quick": {"convection": {"steps": 500, "seeds": 2}, "pde_toy": {"steps": 200, "seeds": 2}},
    "default": {"convection": {"steps": 4000, "seeds": 3}, "pde_toy": {"steps": 2000, "seeds": 3}},
    "long": {"convection": {"steps": 20000, "seeds": 5}, "pde_toy": {"steps": 10000, "seeds": 5}},
}
CONFIGS: dict = {"convection": convection_configs, "pde_toy": pde_toy_configs}
LR_KEYS = ("learning_rate", "decay_every", "decay_rate")


def comparison_options(name: str, problem_args: dict, opt_args: dict, optimizers: Optional[Sequence[str]],
                       select: Optional[Sequence[str]]) -> dict:
    """Keyword arguments of ``CONFIGS[name]`` from command-line style settings.

    ``problem_args``: keys that are options of the comparison (``eps``, ``ic_weight``,
    ``penalty_weight``, ...) go to it, the others are problem options. ``opt_args``:
    ``{"[optimizer.]key": value}`` hyperparameters (``learning_rate``, ``decay_every`` and
    ``decay_rate`` set the schedule); an unqualified key applies to every optimizer.
    ``optimizers``: convection takes one (default adam), the PDE toy keeps configs with these.
    """
    if name not in CONFIGS:
        raise ValueError(f"the PDE benchmark covers {', '.join(PROBLEMS)}, not {name!r}")
    accepted = set(inspect.signature(CONFIGS[name]).parameters) - {"problem", "select", "adam", "bbi", "al",
                                                                  "optimizer_kwargs", "optimizer"}
    options = {k: v for k, v in problem_args.items() if k in accepted}
    problem = {k: v for k, v in problem_args.items() if k not in accepted}
    names = list(optimizers) if optimizers else (["adam"] if name == "convection" else ["adam", "bbi"])
    per_opt: dict = {n: {} for n in names}
    for key, val in opt_args.items():
        target, _, hp = key.rpartition(".")
        if target and target not in per_opt:
            raise ValueError(f"optimizer hyperparameter {key!r}: {target!r} is not among {names}")
        for n in [target] if target else names:
            per_opt[n][hp] = val
    if name == "convection":
        if len(names) != 1:
            raise ValueError(f"convection compares balancers with one optimizer; got {names}")
        hp = per_opt[names[0]]
        options.update(optimizer=names[0], **{k: hp.pop(k) for k in LR_KEYS if k in hp}, optimizer_kwargs=hp)
    else:
        unknown = sorted(set(names) - {"adam", "bbi"})
        if unknown:
            raise ValueError(f"pde_toy compares adam and bbi; got {unknown}")
        options.update({n: hp for n, hp in per_opt.items() if hp})
        if select is None:
            select = [c.label for c in pde_toy_configs() if c.optimizer in names]
    return {**options, "problem": problem, "select": None if select is None else list(select)}

__all__ = ["AL_PDE_TOY", "BBI_PDE_TOY", "CONFIGS", "LR_KEYS", "PRESETS", "PROBLEMS", "comparison_options",
           "convection_configs", "pde_toy_configs"]
