"""What a BBI step costs: on the paper's toys, and on a small network against SGD with momentum.

1. Toys: microseconds per BBI step inside ``lax.scan`` (one run, compiled once, best of
   ``--repeats`` timings), for 2-D Ackley and 10-D Zakharov with the paper's settings, next to
   the reference PyTorch implementation's 55-160 us per step on the same toys; and the
   amortised cost per run-step when ``--runs`` runs are vmapped.
2. Network: a flax MLP (1-64-64-1, tanh; ``--width``) fit to sin(pi x) on 256 points
   (``--points``), ``--net-steps`` full-batch steps in one ``lax.scan``, BBI against optax SGD
   with momentum 0.9; the script prints the time per step of each and their ratio (target:
   BBI within 1.2x of SGD). Both optimizers come from ``pinnopt.optimizers.get`` and are
   called the same way (value=, grad=, value_fn=).

    python benchmarks/bench_bbi_speed.py
    python benchmarks/bench_bbi_speed.py --quick
"""
from __future__ import annotations

import argparse
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from pinnopt import optimizers, problems
from pinnopt.experiments import vmapped as bench

ACKLEY_BBI = dict(learning_rate=0.0096495, delta_energy=2.0, v0=1e-4, threshold0=20, n_fixed_bounces=4, threshold1=100)
ZAKHAROV_BBI = dict(learning_rate=0.0026036721, v0=1e-22, threshold0=None, threshold1=None, n_fixed_bounces=0)


def best_of(fn, args, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls of the compiled ``fn`` (after one warm-up call)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def scan_steps(tx, loss_fn, steps: int):
    """A jitted function params -> params after ``steps`` optimizer steps in one ``lax.scan``."""
    def body(carry, _):
        params, state = carry
        value, grad = jax.value_and_grad(loss_fn)(params)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=loss_fn)
        return (optax.apply_updates(params, updates), state), value

    return jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, steps))


def toy_table(steps: int, runs: int, repeats: int) -> str:
    lines = [f"toys: BBI in lax.scan, {steps} steps (best of {repeats}); reference PyTorch BBI: 55-160 us/step",
             f"{'problem':<14} {'us/step, 1 run':>14} {'x faster than 55 us':>20} {'us/run-step, ' + str(runs) + ' vmapped':>26}"]
    for name, kwargs, hp in (("ackley 2-D", dict(dim=2, b=0.02), ACKLEY_BBI),
                             ("zakharov 10-D", dict(dim=10), ZAKHAROV_BBI)):
        prob = problems.get(name.split()[0], **kwargs)
        tx = optimizers.get("bbi", **hp)
        loss_fn = lambda x: bench.objective_value(prob.terms(x, None))
        x0 = prob.init(jax.random.PRNGKey(0))
        single = best_of(scan_steps(tx, loss_fn, steps), (x0,), repeats) / steps * 1e6
        batch = min(bench.run_batch(prob, tx, bench.initial_params(prob, runs, jax.random.PRNGKey(0)),
                                    jax.random.split(jax.random.PRNGKey(1), runs), steps).us_per_step
                    for _ in range(2))
        lines.append(f"{name:<14} {single:>14.3f} {55 / single:>20.0f} {batch:>26.4f}")
    return "\n".join(lines)


class MLP(nn.Module):
    width: int = 64

    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(self.width)(x))
        x = nn.tanh(nn.Dense(self.width)(x))
        return nn.Dense(1)(x)[..., 0]


def network_table(steps: int, repeats: int, width: int = 64, points: int = 256) -> str:
    x = jnp.linspace(-1, 1, points)[:, None]
    y = jnp.sin(jnp.pi * x[:, 0])
    model = MLP(width)
    params = model.init(jax.random.PRNGKey(0), x)
    loss_fn = lambda p: jnp.mean((model.apply(p, x) - y) ** 2)
    n_params = sum(a.size for a in jax.tree_util.tree_leaves(params))
    candidates = {
        "sgd (momentum 0.9)": optimizers.get("sgd", learning_rate=0.05, momentum=0.9),
        "bbi": optimizers.get("bbi", learning_rate=0.05, threshold0=1000, threshold1=3000),
    }
    runs = {name: scan_steps(tx, loss_fn, steps) for name, tx in candidates.items()}
    times = {name: [] for name in runs}
    for fn in runs.values():
        jax.block_until_ready(fn(params))  # compile and warm up
    for _ in range(repeats):  # interleaved, so that load on the machine hits both alike
        for name, fn in runs.items():
            start = time.perf_counter()
            (_, _), losses = jax.block_until_ready(fn(params))
            times[name].append(time.perf_counter() - start)
    finals = {name: float(fn(params)[1][-1]) for name, fn in runs.items()}
    per_step = {name: min(t) / steps * 1e6 for name, t in times.items()}
    lines = [f"network: MLP 1-{width}-{width}-1 ({n_params} parameters), {points} points, {steps} full-batch steps in lax.scan "
             f"(best of {repeats}, interleaved)",
             f"{'optimizer':<20} {'us/step':>9} {'final loss':>11}"]
    for name in runs:
        lines.append(f"{name:<20} {per_step[name]:>9.2f} {finals[name]:>11.3g}")
    ratio = per_step["bbi"] / per_step["sgd (momentum 0.9)"]
    lines.append(f"ratio BBI / SGD-momentum time per step: {ratio:.3f} (target <= 1.2)")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000, help="toy steps (default 20000)")
    parser.add_argument("--runs", type=int, default=1000, help="vmapped toy runs (default 1000)")
    parser.add_argument("--net-steps", type=int, default=2000, help="network steps (default 2000)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--width", type=int, default=64, help="hidden width of the MLP (default 64)")
    parser.add_argument("--points", type=int, default=256, help="training points of the MLP (default 256)")
    parser.add_argument("--network-only", action="store_true", help="skip the toys")
    parser.add_argument("--quick", action="store_true", help="2000 toy steps, 100 runs, 500 network steps, 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.runs, args.net_steps, args.repeats = 2000, 100, 500, 3
    print(f"backend: {jax.default_backend()}, devices: {jax.devices()}")
    if not args.network_only:
        print(toy_table(args.steps, args.runs, args.repeats))
        print()
    print(network_table(args.net_steps, args.repeats, args.width, args.points))


if __name__ == "__main__":
    main()
