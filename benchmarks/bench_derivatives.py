"""Cost of the PDE derivatives inside a compiled PINN training step, per formulation.

Each case is a PINN on fixed points (``--interior`` in the box, ``--boundary`` on its
boundary) trained with Adam (lr 1e-3); ``--steps`` steps run in one compiled ``lax.scan``.
Compile time (lower + compile) is reported apart; the step time is the fastest of
``--repeats`` runs of the compiled scan divided by the steps (the CPU is shared, so the
minimum is the least disturbed run). All formulations start from the same parameters and
points, so their final losses agree to float32 rounding (printed as a check).

Cases (``pinnopt.pde`` operators, ``method=`` each formulation):

- ``laplace1d|2d|3d``: -Laplace(u) = d pi^2 prod_i sin(pi x_i) on [0, 1]^d, u = 0 on the boundary;
- ``gradient``: the eikonal equation |grad u|^2 = 1 on [-1, 1]^2, u = 0 on the boundary
  (first derivatives only);
- ``heat``: u_t - u_xx = 0 on (t, x) in [0, 1]^2, u = exp(-pi^2 t) sin(pi x) on the boundary
  (a time derivative and a second derivative in one residual).

Formulations: ``reverse`` is the reference, ``jax.hessian`` per point for second derivatives
(the Laplacian is ``jnp.trace(jax.hessian(u)(x))``) and ``jax.grad`` for first ones; ``jvp``
nests ``jax.jvp`` along each axis; ``jet`` is Taylor mode (``jax.experimental.jet``). The
``pinnopt.pde`` defaults are ``jvp`` for second derivatives and ``reverse`` (``jax.grad``) for
the gradient, the fastest of each here. "x" is reverse time / method time, from the same run.

    python benchmarks/bench_derivatives.py            # 100 steps, 5 repeats (about 3 minutes)
    python benchmarks/bench_derivatives.py --quick    # 50 steps, 2 repeats (under 2 minutes)

Measured on a 2-core CPU (shared with other jobs), ``python benchmarks/bench_derivatives.py``,
network d -> 32 x 3 -> 1 tanh, 1000 interior + 200 boundary points (176 s in all):

    case          reverse ms/step      jvp ms/step      jet ms/step    x jvp    x jet   compile s (reverse/jvp/jet)   final loss spread
    laplace1d               4.328            2.549            2.876      1.7      1.5   5.4/3.9/3.9              4.0e-07
    laplace2d              22.283            2.623            2.723      8.5      8.2   3.8/2.8/2.9              3.3e-07
    laplace3d              60.672            5.311            6.437     11.4      9.4   5.8/4.7/5.8              1.0e-07
    gradient                1.496            2.473            2.306      0.6      0.6   2.8/3.6/3.2              1.1e-07
    heat                   25.239            2.660            3.301      9.5      7.6   5.7/4.0/4.6              0.0e+00

    target >= 5x over jax.hessian on the 2-D Laplacian (jvp, the default): met (8.5x)

The machine was shared (load average about 5 on 2 cores): the ratio of the 2-D Laplacian was
6.0x and 12.5x in two other runs (300 steps x 3, and 100 x 2). For the gradient the reference,
``jax.grad``, is also the fastest and the ``pinnopt.pde.gradient`` default (one backward pass
for all d components against d jvps).
"""
from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pinnopt import pde

METHODS = ("reverse", "jvp", "jet")
CASES = ("laplace1d", "laplace2d", "laplace3d", "gradient", "heat")
TARGET = 5.0  # required speed-up over jax.hessian on the 2-D Laplacian


def poisson(d):
    """-Laplace(u) = d pi^2 prod sin(pi x) on [0, 1]^d; exact u = prod sin(pi x), 0 on the boundary."""
    def residual(f, x, method):
        source = d * np.pi**2 * jnp.prod(jnp.sin(np.pi * x), axis=-1)
        return -pde.laplacian(f, x, method=method) - source

    return d, np.zeros(d), np.ones(d), residual, lambda x: jnp.zeros(x.shape[0])


def eikonal():
    """|grad u|^2 - 1 = 0 on [-1, 1]^2, u = 0 on the boundary (the distance to it)."""
    def residual(f, x, method):
        return jnp.sum(pde.gradient(f, x, method=method) ** 2, axis=-1) - 1.0

    return 2, -np.ones(2), np.ones(2), residual, lambda x: jnp.zeros(x.shape[0])


def heat():
    """u_t - u_xx = 0 on (t, x) in [0, 1]^2; u = exp(-pi^2 t) sin(pi x) on the boundary."""
    def residual(f, x, method):
        return pde.time_derivative(f, x, method=method) - pde.second_derivative(f, x, 1, method=method)

    def exact(tx):
        return jnp.exp(-np.pi**2 * tx[:, 0]) * jnp.sin(np.pi * tx[:, 1])

    return 2, np.zeros(2), np.ones(2), residual, exact


def problem(case):
    return {"laplace1d": lambda: poisson(1), "laplace2d": lambda: poisson(2),
            "laplace3d": lambda: poisson(3), "gradient": eikonal, "heat": heat}[case]()


def build(case, method, args):
    """The compiled scan of ``args.steps`` Adam steps, its compile time and its initial carry."""
    d, lower, upper, residual, boundary_value = problem(case)
    init, u = pde.mlp_field(d, width=args.width, depth=args.depth)
    k_init, k_in, k_on = jax.random.split(jax.random.key(args.seed), 3)
    interior = pde.in_box(k_in, args.interior, lower, upper)
    edge = pde.on_box(k_on, args.boundary, lower, upper)
    target = boundary_value(edge)
    opt = optax.adam(1e-3)

    def loss(params):
        f = functools.partial(u, params)
        r = residual(f, interior, method)
        return jnp.mean(r**2) + jnp.mean((pde.values(f, edge) - target) ** 2)

    def step(carry, _):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value

    params = init(k_init)
    carry = (params, opt.init(params))
    start = time.perf_counter()
    compiled = jax.jit(lambda c: jax.lax.scan(step, c, None, length=args.steps)).lower(carry).compile()
    return compiled, time.perf_counter() - start, carry


def run_case(case, args):
    """{method: (compile s, ms per step, final loss)} with the repeats interleaved over methods."""
    built = {m: build(case, m, args) for m in args.methods}
    best = {m: float("inf") for m in args.methods}
    last = {}
    for _ in range(args.repeats):
        for m, (compiled, _, carry) in built.items():
            start = time.perf_counter()
            _, losses = jax.block_until_ready(compiled(carry))
            best[m] = min(best[m], time.perf_counter() - start)
            last[m] = float(losses[-1])
    return {m: (built[m][1], 1e3 * best[m] / args.steps, last[m]) for m in args.methods}


def table(results, methods):
    head = "case        " + "".join(f"{m + ' ms/step':>17}" for m in methods)
    ratios = [m for m in methods if m != "reverse"] if "reverse" in methods else []
    head += "".join(f"{'x ' + m:>9}" for m in ratios) + "   compile s (" + "/".join(methods) + ")   final loss spread"
    lines = [head]
    for case, res in results.items():
        row = f"{case:<12}" + "".join(f"{res[m][1]:>17.3f}" for m in methods)
        row += "".join(f"{res['reverse'][1] / res[m][1]:>9.1f}" for m in ratios)
        losses = np.array([res[m][2] for m in methods])
        spread = float(np.ptp(losses) / max(abs(losses).max(), 1e-30))
        row += "   " + "/".join(f"{res[m][0]:.1f}" for m in methods) + f"{'':>14}{spread:.1e}"
        lines.append(row)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="Adam steps per compiled scan (default 100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per formulation, the fastest kept (default 5)")
    parser.add_argument("--interior", type=int, default=1000, help="interior points (default 1000)")
    parser.add_argument("--boundary", type=int, default=200, help="boundary points (default 200)")
    parser.add_argument("--width", type=int, default=32, help="hidden units (default 32)")
    parser.add_argument("--depth", type=int, default=3, help="hidden layers (default 3)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated among {', '.join(CASES)}")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated among {', '.join(METHODS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="50 steps and 2 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 50, 2
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for name, got, allowed in (("--cases", args.cases, CASES), ("--methods", args.methods, METHODS)):
        bad = sorted(set(got) - set(allowed))
        if bad or not got:
            parser.error(f"{name}: unknown {bad or 'empty'}; choose among {', '.join(allowed)}")
    for name in ("steps", "repeats", "interior", "boundary", "width"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")

    print(f"{args.steps} Adam steps per scan, best of {args.repeats}; {args.interior} interior + "
          f"{args.boundary} boundary points; MLP {args.width} x {args.depth} tanh; "
          f"{jax.devices()[0].platform}", flush=True)
    start, results = time.perf_counter(), {}
    for case in args.cases:
        results[case] = run_case(case, args)
        print(f"  {case}: " + ", ".join(f"{m} {results[case][m][1]:.3f} ms" for m in args.methods), flush=True)
    print()
    print(table(results, args.methods))
    if "laplace2d" in results and {"reverse", "jvp"} <= set(args.methods):
        speedup = results["laplace2d"]["reverse"][1] / results["laplace2d"]["jvp"][1]
        print(f"\ntarget >= {TARGET:g}x over jax.hessian on the 2-D Laplacian (jvp, the default): "
              f"{'met' if speedup >= TARGET else 'NOT met'} ({speedup:.1f}x)")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
