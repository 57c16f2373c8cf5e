"""Time value-and-gradient of the mean squared Einstein residual of a GeneralMetric.

    python benchmarks/bench_einstein.py [--n 1000] [--width 64] [--depth 4] [--repeats 20]

Both formulations run in the same process on the same network, parameters and points:
  fast   : cosmology.geometry.einstein_tensor on bind(model, params), i.e. the network's own
           Taylor-mode jet (value, 4 first and 10 second derivative streams in one forward
           pass) and the Ricci tensor assembled in closed form from (g, dg, ddg);
  nested : cosmology.geometry.einstein_tensor_nested on lambda x: model.apply(params, x),
           i.e. jacfwd of a Christoffel function that calls jacfwd, full Riemann, contraction.
The loss is mean_{points, a, b} G_ab^2 and its gradient is with respect to all network
parameters. Calls are interleaved and the best of ``--repeats`` wall-clock times is kept
(the median is shown too), because the machine may be shared; process CPU time is printed
as a second, load-insensitive measure.
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from cosmology import geometry, metric


def make_losses(model, points):
    def fast(params):
        residual = jax.vmap(lambda x: geometry.einstein_tensor(metric.bind(model, params), x))(points)
        return jnp.mean(residual**2)

    def nested(params):
        metric_fn = lambda x: model.apply(params, x)
        residual = jax.vmap(lambda x: geometry.einstein_tensor_nested(metric_fn, x))(points)
        return jnp.mean(residual**2)

    return {"fast": jax.jit(jax.value_and_grad(fast)), "nested": jax.jit(jax.value_and_grad(nested))}


def time_calls(functions, params, repeats):
    wall = {name: [] for name in functions}
    cpu = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            w, c = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn(params))
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    return wall, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="collocation points")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        raise ValueError("--n and --repeats must be positive")

    model = metric.GeneralMetric(width=args.width, depth=args.depth, out_scale=0.3)
    key_params, key_points = jax.random.split(jax.random.PRNGKey(args.seed))
    params = metric.init_params(model, key_params)
    # Points after the matter-dominated big bang (t > -2/3): t in [-0.5, 0], |x_i| <= 1.
    low, high = jnp.array([-0.5, -1.0, -1.0, -1.0]), jnp.array([0.0, 1.0, 1.0, 1.0])
    points = jax.random.uniform(key_points, (args.n, 4), minval=low, maxval=high)

    functions = make_losses(model, points)
    compile_s = {}
    for name, fn in functions.items():
        start = time.perf_counter()
        value, grads = jax.block_until_ready(fn(params))
        compile_s[name] = time.perf_counter() - start
    (v_fast, g_fast), (v_nested, g_nested) = functions["fast"](params), functions["nested"](params)
    grad_diff = max(
        float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30))
        for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_nested))
    )

    wall, cpu = time_calls(functions, params, args.repeats)
    print(f"GeneralMetric width {args.width} depth {args.depth}, N = {args.n} points, float32, "
          f"{jax.devices()[0].platform}, {args.repeats} interleaved repeats")
    print(f"loss: fast {float(v_fast):.6e}  nested {float(v_nested):.6e}  "
          f"(relative difference {abs(float(v_fast) - float(v_nested)) / abs(float(v_nested)):.1e}; "
          f"largest relative gradient difference {grad_diff:.1e})")
    print(f"{'formulation':<12}{'compile s':>10}{'best us/pt':>12}{'median us/pt':>14}{'cpu us/pt':>11}")
    for name in functions:
        print(f"{name:<12}{compile_s[name]:>10.1f}{min(wall[name]) / args.n * 1e6:>12.1f}"
              f"{np.median(wall[name]) / args.n * 1e6:>14.1f}{min(cpu[name]) / args.n * 1e6:>11.1f}")
    ratio = min(wall["nested"]) / min(wall["fast"])
    ratio_cpu = min(cpu["nested"]) / min(cpu["fast"])
    print(f"speed-up of fast over nested: {ratio:.2f}x (best wall clock), "
          f"{np.median(wall['nested']) / np.median(wall['fast']):.2f}x (median), {ratio_cpu:.2f}x (cpu time)")
    return ratio


if __name__ == "__main__":
    main()
