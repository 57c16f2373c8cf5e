"""The PDE suite (issue 14): ``pinnopt bench --suite pde`` as a script.

    python benchmarks/bench_pde_suite.py                 # every problem, every seed (about an hour here)
    python benchmarks/bench_pde_suite.py --quick         # one seed, at most 30 s a problem
    python benchmarks/bench_pde_suite.py --only poisson2d,burgers --out suite/

The entries (problem options, optimizer, budgets, seeds, targets, published values) live in
``pinnopt/experiments/pde_suite.py``; the table prints the command that reruns each one.
"""
import sys

from pinnopt.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--suite", "pde", *sys.argv[1:]]))
