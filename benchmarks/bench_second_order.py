"""Second-order optimizers against Adam: relative L2 error against wall time, from one run.

Problem: -Laplace u = 2 pi^2 sin(pi x) sin(pi y) on the unit square, u = 0 on the boundary (a
point-wise equality constraint), a 2 -> 32 -> 32 -> 1 tanh network, one fixed collocation set
(``resample_every=0``), float64 by default. Every optimizer runs through ``pinnopt.solve`` under
the same wall-time budget; the error on a 51 x 51 grid is logged every ``--every`` steps.

    python benchmarks/bench_second_order.py                       # all methods, 120 s each
    python benchmarks/bench_second_order.py --methods adam,lm --budget 60 --float32

Printed: per method the final error, the wall time to reach 1e-3 and 1e-5 (compilation
included: the first logged time holds it), ms per step (compile excluded) and its ratio to an
Adam step of the same problem; ``--out DIR`` writes the curves (JSON) and a figure.
Target (issue 13): at least one second-order method reaches 1e-6 within 2 minutes of this CPU.

Measured with ``python benchmarks/bench_second_order.py --budget 60`` on this project's 2-core CPU
(float64; times include compilation):

    method        final rel L2       best  t(1e-3) s  t(1e-5) s   ms/step  x Adam
    adam             1.347e-03  1.000e-03          -          -      1.26     1.0
    adam+lbfgs       1.148e-04  1.143e-04       24.4          -      3.17     2.5
    ssbroyden        1.110e-07  1.061e-07       10.8       18.0      8.42     6.7
    ssbfgs           2.222e-07  1.980e-07       10.1       17.6      8.73     6.9
    lm               8.194e-05  8.194e-05       30.3          -    389.82   310.2
    engd             2.689e-06  2.689e-06       14.3       31.5    429.70   341.9
    soap             4.347e-03  3.018e-04        9.5          -      1.45     1.2
    target: a second-order method at <= 1e-6 within 120 s: met by ssbroyden, ssbfgs

Not yet run here: the same comparison on ``convection`` (beta = 30) and ``pde_toy``.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import pinnopt
from pinnopt import pde

METHODS = {
    "adam": dict(optimizer="adam", optimizer_kwargs={"learning_rate": 1e-3}),
    "adam+lbfgs": dict(optimizer=[("adam", {"learning_rate": 1e-3}, 1000), ("lbfgs", {}, 100000)]),
    "ssbroyden": dict(optimizer="ssbroyden"),
    "ssbfgs": dict(optimizer="ssbfgs"),
    "lm": dict(optimizer="lm"),
    "engd": dict(optimizer="engd"),
    "soap": dict(optimizer="soap", optimizer_kwargs={"learning_rate": 3e-3}),
}


def exact(points):
    return jnp.sin(jnp.pi * points[:, 0]) * jnp.sin(jnp.pi * points[:, 1])


class Poisson2D:
    """The problem, with its PDE term a least-squares residual (``Objective.of_residual``)."""

    name = "poisson2d_bench"

    def __init__(self, n_interior: int, n_boundary: int, width: int = 32, depth: int = 2):
        self.n_interior, self.n_boundary = n_interior, n_boundary
        self.field = pde.mlp_field(2, width=width, depth=depth)
        g = jnp.linspace(0.0, 1.0, 51)
        self.grid = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)

    def init(self, key):
        return self.field.init(key)

    def sample(self, key, step):
        k1, k2 = jax.random.split(key)
        return {"interior": pde.in_box(k1, self.n_interior, [0.0, 0.0], [1.0, 1.0]),
                "boundary": pde.on_box(k2, self.n_boundary, [0.0, 0.0], [1.0, 1.0])}

    def terms(self, params, batch):
        u = functools.partial(self.field.u, params)
        x = batch["interior"]
        r = -pde.laplacian(u, x) - 2 * jnp.pi**2 * exact(x)
        return {"pde": pinnopt.Objective.of_residual(r, coords=x),
                "bc": pinnopt.Constraint(pde.values(u, batch["boundary"]), "eq", coords=batch["boundary"],
                                         tol=1e-5)}

    def evaluate(self, params):
        u = pde.values(functools.partial(self.field.u, params), self.grid.astype(jax.tree.leaves(params)[0].dtype))
        return {"rel_l2": pde.relative_l2(u, exact(self.grid).astype(u.dtype))}


class Budget(Exception):
    pass


def run(method: str, problem, budget: float, every: int, precision: str, seed: int, constraint_kwargs: dict):
    """(times, errors, ms per step) of one method within ``budget`` seconds."""
    times, errors, speeds = [], [], []
    t0 = time.perf_counter()

    def record(row):
        if "eval/rel_l2" in row:
            times.append(time.perf_counter() - t0)
            errors.append(row["eval/rel_l2"])
            speeds.append(row["steps_per_second"])
        if time.perf_counter() - t0 > budget:
            raise Budget

    spec = METHODS[method]
    steps = None if isinstance(spec["optimizer"], list) else 10**6
    try:
        pinnopt.solve(problem, **spec, constraints="penalty", constraint_kwargs=constraint_kwargs, steps=steps,
                      chunk=every, heldout_every=every, resample_every=0, precision=precision, seed=seed,
                      callback=record, certify_batches=1)
    except Budget:
        pass
    except pinnopt.NonFiniteError as err:
        print(f"  {method}: {err}")
    ms = 1e3 / float(np.median(speeds[1:])) if len(speeds) > 1 else float("nan")
    return times, errors, ms


def time_to(times, errors, level):
    for t, e in zip(times, errors):
        if e <= level:
            return t
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--budget", type=float, default=120.0, help="wall seconds per method")
    p.add_argument("--every", type=int, default=20, help="steps between error evaluations (one chunk)")
    p.add_argument("--interior", type=int, default=400)
    p.add_argument("--boundary", type=int, default=100)
    p.add_argument("--float32", action="store_true", help="float32 instead of float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mu", type=float, default=10.0, help="fixed boundary penalty weight mu")
    p.add_argument("--out", help="folder for curves.json and curves.png")
    args = p.parse_args(argv)
    precision = "float32" if args.float32 else "float64"
    problem = Poisson2D(args.interior, args.boundary)
    constraint_kwargs = {"mu_init": args.mu, "adaptive": False}
    results = {}
    for method in args.methods.split(","):
        if method not in METHODS:
            raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        print(f"running {method} ({args.budget:.0f} s budget) ...", flush=True)
        results[method] = run(method, problem, args.budget, args.every, precision, args.seed, constraint_kwargs)
    adam_ms = results.get("adam", (None, None, float("nan")))[2]
    print(f"\n2-D Poisson, {precision}, {args.interior}+{args.boundary} fixed points, 2-32-32-1 tanh, "
          f"penalty mu={args.mu}, {args.budget:.0f} s per method")
    print(f"{'method':<12} {'final rel L2':>13} {'best':>10} {'t(1e-3) s':>10} {'t(1e-5) s':>10} "
          f"{'ms/step':>9} {'x Adam':>7}")
    for method, (times, errors, ms) in results.items():
        fmt = lambda t: "-" if t is None else f"{t:.1f}"
        final = errors[-1] if errors else float("nan")
        best = min(errors) if errors else float("nan")
        print(f"{method:<12} {final:>13.3e} {best:>10.3e} {fmt(time_to(times, errors, 1e-3)):>10} "
              f"{fmt(time_to(times, errors, 1e-5)):>10} {ms:>9.2f} {ms / adam_ms if adam_ms == adam_ms else math.nan:>7.1f}")
    reached = [m for m, (t, e, _) in results.items() if m != "adam" and time_to(t, e, 1e-6) is not None
               and time_to(t, e, 1e-6) <= 120]
    print(f"target: a second-order method at <= 1e-6 within 120 s: {'met by ' + ', '.join(reached) if reached else 'not met'}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "curves.json"), "w") as fh:
            json.dump({m: {"seconds": t, "rel_l2": e, "ms_per_step": ms} for m, (t, e, ms) in results.items()}, fh)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for method, (times, errors, _) in results.items():
            ax.semilogy(times, errors, label=method)
        ax.set_xlabel("wall time (s, compilation included)")
        ax.set_ylabel("relative L2 error")
        ax.set_title(f"2-D Poisson, {precision}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "curves.png"), dpi=120)
        print(f"figure: {os.path.join(args.out, 'curves.png')}")


if __name__ == "__main__":
    main()
