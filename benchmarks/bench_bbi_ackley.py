"""BBI against gradient descent with momentum on the 2-D Ackley function (b = 0.02).

Reproduces the Ackley experiment of De Luca & Silverstein, "Born-Infeld (BI) for AI:
Energy-Conserving Descent (ECD) for Optimization" (ICML 2022, arXiv:2201.11137), with the
authors' tuned hyperparameters:

1. from (-4, 3): BBI (lr 0.0096495, delta_energy 2, v0 1e-4, threshold0 20, n_fixed_bounces 4,
   threshold1 100) and GDM (lr 0.19926, momentum 0.56339) over 20,000 steps. BBI is
   stochastic (its bounces), so it gets ``--runs`` runs with different bounce seeds;
2. the success test: 100 starts drawn uniformly in [-4, 4]^2; a start is a success when the
   best loss of a run of 30,000 steps falls below 5e-4, BBI being allowed 5 tries (5 runs with
   different bounce seeds) and GDM, deterministic, one. Published: BBI 83/100, GDM 0/100.

Every table is one vmapped computation. ``--quick`` runs a small version.

    python benchmarks/bench_bbi_ackley.py            # the paper's sizes
    python benchmarks/bench_bbi_ackley.py --quick
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from pinnopt import optimizers, problems
from pinnopt.experiments import vmapped as bench

BBI = dict(learning_rate=0.0096495, delta_energy=2.0, v0=1e-4, threshold0=20, n_fixed_bounces=4, threshold1=100)
GDM = dict(learning_rate=0.19926, momentum=0.56339)
SUCCESS = 5e-4


def trajectory_table(runs: int, steps: int, seed: int, out_dir=None) -> str:
    table = bench.run_bench("ackley", ["bbi", "sgd"], runs=runs, steps=steps, seed=seed,
                            problem_kwargs={"dim": 2, "b": 0.02, "x0": (-4.0, 3.0)},
                            optimizer_kwargs={"bbi": BBI, "sgd": GDM}, out_dir=out_dir,
                            success_threshold=SUCCESS)
    return bench.format_table(table)


def success_test(starts: int, tries: int, steps: int, seed: int) -> str:
    """Successes out of ``starts`` random starts: BBI with ``tries`` runs per start, GDM one."""
    prob = problems.get("ackley", dim=2, b=0.02, init_scale=4.0)
    key = jax.random.PRNGKey(seed)
    x0 = bench.initial_params(prob, starts, jax.random.fold_in(key, 0))  # uniform in [-4, 4]^2
    lines = [f"success test: {starts} starts uniform in [-4, 4]^2, {steps} steps, success = best loss < {SUCCESS:g}"]
    header = f"{'optimizer':<9}  {'tries':>5}  {'successes':>9}  {'published':>9}  {'runs':>5}  {'wall s':>7}  {'us/step':>7}"
    lines += [header, "-" * len(header)]
    for name, hp, n_tries, published in (("bbi", BBI, tries, "83/100"), ("sgd", GDM, 1, "0/100")):
        starts_rep = jnp.repeat(x0, n_tries, axis=0)  # start i tried n_tries times in a row
        keys = jax.random.split(jax.random.fold_in(key, 1), starts * n_tries)
        res = bench.run_batch(prob, optimizers.get(name, **hp), starts_rep, keys, steps)
        hit = (res.best.reshape(starts, n_tries) < SUCCESS).any(axis=1)
        lines.append(f"{name:<9}  {n_tries:>5}  {int(hit.sum()):>5}/{starts:<3}  {published:>9}  "
                     f"{res.runs:>5}  {res.wall_s:>7.2f}  {res.us_per_step:>7.3f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="BBI runs from (-4, 3) (default 20)")
    parser.add_argument("--steps", type=int, default=20000, help="steps from (-4, 3) (default 20000)")
    parser.add_argument("--starts", type=int, default=100, help="random starts of the success test (default 100)")
    parser.add_argument("--tries", type=int, default=5, help="BBI tries per start (default 5)")
    parser.add_argument("--test-steps", type=int, default=30000, help="steps per try (default 30000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the trajectory table's plots")
    parser.add_argument("--quick", action="store_true", help="5 runs x 2000 steps; 20 starts x 5000 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.steps, args.starts, args.test_steps = 5, 2000, 20, 5000
    start = time.perf_counter()
    print(trajectory_table(args.runs, args.steps, args.seed, args.out))
    print()
    print(success_test(args.starts, args.tries, args.test_steps, args.seed))
    print(f"\ntotal wall time {time.perf_counter() - start:.1f} s (compilation included)")


if __name__ == "__main__":
    main()
