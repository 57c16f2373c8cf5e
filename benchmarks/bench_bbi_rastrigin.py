"""BBI, ECDSep, Adam and momentum GD on Rastrigin (A = 10) in 5 and 400 dimensions, at equal budgets.

Four problems: Rastrigin f(x) = 10 d + sum(x_i^2 - 10 cos(2 pi x_i)) in d = 5 and d = 400,
and the same with an extra confining term eps sum(x_i^8) (``--eps``, default 1e-4). Starts are
uniform in [-5.12, 5.12]^d, the same for every optimizer; the minimum is 0 at x = 0.

Hyperparameter search, the same budget for each optimizer: a grid of 12 configurations
(6 learning rates, log-spaced over two decades, times 2 values of a second hyperparameter),
each run ``--search-runs`` times for ``--search-steps`` steps; the configuration with the
lowest median best loss is then run ``--runs`` times for ``--steps`` steps (fresh starts and
seeds). BBI runs with ``energy_guard=True`` (a step that overshoots to V > E is undone), which
keeps it finite next to the steep x^8 wall; the "diverged" column counts non-finite final losses. The grids (chosen before looking at results, around each method's stable range):

  bbi     learning_rate 1e-3..1e-1  x  bounces {defaults: threshold0 1000, n_fixed 1, threshold1 3000;
                                              frequent: threshold0 100, n_fixed 10, threshold1 300}
  ecdsep  learning_rate 1e-3..1e-1  x  eta {1, 2}
  adam    learning_rate 3e-3..3e-1  x  b1 {0.9, 0.99}
  sgd     learning_rate 1e-5..1e-3  x  momentum {0.9, 0.99}     (gradient descent with momentum)

    python benchmarks/bench_bbi_rastrigin.py            # 20 runs x 10,000 steps after the search
    python benchmarks/bench_bbi_rastrigin.py --quick
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from pinnopt import optimizers
from pinnopt.experiments import vmapped as bench
from pinnopt.problems.toys import TestFunction, make_rastrigin

FREQUENT = dict(threshold0=100, n_fixed_bounces=10, threshold1=300)
# name -> (learning rates, values of the second hyperparameter); 6 x 2 = 12 configurations each.
GRIDS = {
    "bbi": (np.geomspace(1e-3, 1e-1, 6), [dict(energy_guard=True), dict(energy_guard=True, **FREQUENT)]),
    "ecdsep": (np.geomspace(1e-3, 1e-1, 6), [dict(eta=1.0), dict(eta=2.0)]),
    "adam": (np.geomspace(3e-3, 3e-1, 6), [dict(b1=0.9), dict(b1=0.99)]),
    "sgd": (np.geomspace(1e-5, 1e-3, 6), [dict(momentum=0.9), dict(momentum=0.99)]),
}


def make_problem(dim: int, eps: float) -> TestFunction:
    """Rastrigin (A = 10), plus eps sum(x^8) when eps > 0 (a wall far out; the minimum stays 0 at 0)."""
    prob = make_rastrigin(dim, 10.0, eps8=eps)
    return dataclasses.replace(prob, name=f"rastrigin+{eps:g}x^8" if eps else "rastrigin")


def search(prob, name: str, runs: int, steps: int, key) -> tuple[dict, float]:
    """The grid configuration of ``name`` with the lowest median best loss, and that median.

    The learning rate is traced (a constant schedule), so the 6 learning rates x ``runs`` runs
    of one value of the second hyperparameter are a single vmapped computation.
    """
    lrs, extras = GRIDS[name]
    x0 = bench.initial_params(prob, runs, jax.random.fold_in(key, 0))
    keys = jax.random.split(jax.random.fold_in(key, 1), runs)
    x0_grid = jax.tree_util.tree_map(lambda a: jnp.tile(a, (len(lrs),) + (1,) * (a.ndim - 1)), x0)
    keys_grid = jnp.tile(keys, (len(lrs), 1))
    lr_grid = jnp.repeat(jnp.asarray(lrs, jnp.float32), runs)
    best_score, best_hp = np.inf, None
    for extra in extras:
        make = lambda lr, extra=extra: optimizers.get(name, learning_rate=lambda _: lr, **extra)
        best = bench.run_batch(prob, make, x0_grid, keys_grid, steps, hparams=lr_grid).best.reshape(len(lrs), runs)
        for lr, row in zip(lrs, best):
            score = float(np.median(row)) if np.all(np.isfinite(row)) else np.inf
            if score < best_score:
                best_score, best_hp = score, dict(learning_rate=float(lr), **extra)
    return best_hp, best_score


def compare(dim: int, eps: float, args) -> str:
    prob = make_problem(dim, eps)
    key = jax.random.PRNGKey(args.seed)
    x0 = bench.initial_params(prob, args.runs, jax.random.fold_in(key, 2))
    keys = jax.random.split(jax.random.fold_in(key, 3), args.runs)
    rows, results, searched = [], {}, []
    for name in GRIDS:
        hp, score = search(prob, name, args.search_runs, args.search_steps, jax.random.fold_in(key, 4))
        searched.append(f"  {name}: chosen {hp} (search median best {score:.3g})")
        res = bench.run_batch(prob, optimizers.get(name, **hp), x0, keys, args.steps)
        results[name] = res
        rows.append(bench.summarize(name, hp, res, 0.0, args.threshold))
    table = bench.BenchTable(problem=prob.name, problem_config=prob.config(), runs=args.runs, steps=args.steps,
                             seed=args.seed, success_threshold=args.threshold, known_minimum=0.0, rows=rows,
                             results=results)
    if args.out:
        bench.write_outputs(table, f"{args.out}/{prob.name}-{dim}d")
    search_note = (f"search: 12 configurations x {args.search_runs} runs x {args.search_steps} steps per optimizer")
    return "\n".join([bench.format_table(table).split("\nhyperparameters:")[0], search_note] + searched)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", default="5,400", help="comma-separated dimensions (default 5,400)")
    parser.add_argument("--eps", type=float, default=1e-4, help="weight of the extra x^8 term (default 1e-4)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--search-runs", type=int, default=8)
    parser.add_argument("--search-steps", type=int, default=2000)
    parser.add_argument("--threshold", type=float, default=1e-3, help="success: best loss <= this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for tables and plots (one subfolder per problem)")
    parser.add_argument("--quick", action="store_true", help="4 runs x 1000 steps; search 4 runs x 300 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.steps, args.search_runs, args.search_steps = 4, 1000, 4, 300
    start = time.perf_counter()
    for dim in (int(d) for d in args.dims.split(",")):
        for eps in (0.0, args.eps):
            print(compare(dim, eps, args))
            print()
    print(f"total wall time {time.perf_counter() - start:.1f} s (compilation included)")


if __name__ == "__main__":
    main()
