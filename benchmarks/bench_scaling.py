"""How the solve step's time grows with the number of collocation points, and what splitting the
points over several devices buys.

Two tables, both timing ``pinnopt.solve`` itself (compiled chunks of steps; the first chunk,
which compiles, is not counted; the median of the later chunks is reported):

1. step time against the number of interior points N, on one device: it is flat while fixed
   costs dominate and grows linearly once the device is busy (per-point time levels off);
2. step time with the points split over 1, 2, ... devices (``solve(..., devices=d)``) at the
   largest sizes, and the speed-up over one device.

On a CPU the extra devices are forced with ``--xla_force_host_platform_device_count``, which this
script sets itself (before JAX starts) when the platform is the CPU; they share the machine's
cores. Run::

    python benchmarks/bench_scaling.py                          # CPU: N = 2^8 .. 2^14, devices 1, 2
    python benchmarks/bench_scaling.py --points 4096,65536 --devices 1,2,4
    JAX_PLATFORMS=cuda python benchmarks/bench_scaling.py --points 1024,...,1048576 --devices 1

The problem is a PINN of the heat equation (below); ``--problem NAME --size-arg KEY`` times a
registered problem instead, passing N as its option KEY.
"""
from __future__ import annotations

import argparse
import os
import sys


def _parse_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"error: {what} must be a comma-separated list of integers, got {text!r}")
    if not values or min(values) < 1:
        raise SystemExit(f"error: {what} must list positive integers, got {text!r}")
    return values


def _force_cpu_devices(count: int) -> None:
    """Ask XLA for ``count`` CPU devices; only acts before JAX initialises its backends."""
    if os.environ.get("JAX_PLATFORMS", "cpu") not in ("", "cpu") or count <= 1:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def build_heat(n: int, width: int):
    """A PINN of ``u_t = nu u_xx`` on t in [0, 1], x in [-1, 1] with ``u(0, x) = sin(pi x)`` and
    ``u(t, +-1) = 0`` (an equality constraint); N interior points and N/4 initial and boundary
    points, resampled every step. Imported lazily: JAX must not start before the device flag is set."""
    import dataclasses

    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from pinnopt.terms import Constraint, Objective

    class Net(nn.Module):
        @nn.compact
        def __call__(self, z):
            for _ in range(3):
                z = nn.tanh(nn.Dense(width)(z))
            return nn.Dense(1)(z)[..., 0]

    @dataclasses.dataclass(frozen=True)
    class Heat:
        n: int
        nu: float = 0.1
        name: str = "heat"

        def init(self, key):
            return Net().init(key, jnp.zeros((1, 2)))

        def sample(self, key, step):
            k1, k2, k3 = jax.random.split(key, 3)
            m = max(self.n // 4, 1)
            tx = jax.random.uniform(k1, (self.n, 2), minval=jnp.array([0.0, -1.0]), maxval=jnp.array([1.0, 1.0]))
            return {"tx": tx, "x0": jax.random.uniform(k2, (m,), minval=-1.0, maxval=1.0),
                    "tb": jax.random.uniform(k3, (m,))}

        def terms(self, params, batch):
            def u(t, x):
                return Net().apply(params, jnp.stack([t, x], -1))

            def residual(t, x):
                u_t = jax.grad(u, 0)(t, x)
                u_xx = jax.grad(jax.grad(u, 1), 1)(t, x)
                return u_t - self.nu * u_xx

            t, x = batch["tx"][:, 0], batch["tx"][:, 1]
            x0, tb = batch["x0"], batch["tb"]
            edge = jnp.concatenate([u(tb, -jnp.ones_like(tb)), u(tb, jnp.ones_like(tb))])
            return {"pde": Objective(jax.vmap(residual)(t, x) ** 2, coords=batch["tx"]),
                    "ic": Objective((u(jnp.zeros_like(x0), x0) - jnp.sin(jnp.pi * x0)) ** 2),
                    "bc": Constraint(edge, "eq")}

    return Heat(n)


def step_seconds(problem, devices, chunk: int, repeats: int) -> float:
    """Median seconds per step over ``repeats`` chunks, after one compiling chunk."""
    import numpy as np

    import pinnopt

    res = pinnopt.solve(problem, optimizer="adam", constraints="al", balancing="sum",
                        steps=chunk * (repeats + 1), chunk=chunk,
                        heldout_every=10 ** 9, devices=devices)
    speeds = [row["steps_per_second"] for row in res.history if row["step"] > chunk]
    return float(np.median([1.0 / s for s in speeds]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default="256,512,1024,2048,4096,8192,16384",
                        help="interior point counts N (comma-separated)")
    parser.add_argument("--devices", default="1,2", help="device counts for the speed-up table")
    parser.add_argument("--speedup-points", help="N for the speed-up table (default: the two largest --points)")
    parser.add_argument("--chunk", type=int, default=20, help="steps per compiled chunk")
    parser.add_argument("--repeats", type=int, default=3, help="timed chunks after the compiling one")
    parser.add_argument("--width", type=int, default=64, help="hidden width of the heat PINN (3 layers)")
    parser.add_argument("--problem", help="time this registered problem instead of the heat PINN")
    parser.add_argument("--size-arg", default="n", help="the problem option that sets N (with --problem)")
    args = parser.parse_args(argv)
    points = _parse_ints(args.points, "--points")
    device_counts = _parse_ints(args.devices, "--devices")
    speedup_points = (_parse_ints(args.speedup_points, "--speedup-points") if args.speedup_points
                      else sorted(points)[-2:])
    _force_cpu_devices(max(device_counts))

    import jax

    import pinnopt

    def problem_of(n):
        if args.problem:
            return pinnopt.problems.get(args.problem, **{args.size_arg: n})
        return build_heat(n, args.width)

    platform = jax.devices()[0].platform
    print(f"# platform {platform}: {jax.device_count()} device(s) {jax.devices()[0].device_kind}; "
          f"{os.cpu_count()} CPU cores; jax {jax.__version__}")
    print(f"# problem {args.problem or f'heat PINN, 3 x {args.width} tanh'}; adam + AL; "
          f"median of {args.repeats} chunks of {args.chunk} steps after a compiling chunk\n")

    print("## step time against the number of collocation points (one device)")
    print(f"{'N':>9} {'ms / step':>11} {'us / point':>11} {'x time':>8} {'x points':>9}")
    previous = None
    for n in sorted(points):
        t = step_seconds(problem_of(n), None, args.chunk, args.repeats)
        growth = "" if previous is None else f"{t / previous[1]:8.2f} {n / previous[0]:9.2f}"
        print(f"{n:>9} {t * 1e3:>11.3f} {t / n * 1e6:>11.3f} {growth}", flush=True)
        previous = (n, t)

    print("\n## points split over devices (solve(..., devices=d))")
    print(f"{'N':>9} {'devices':>8} {'ms / step':>11} {'speed-up':>9}")
    for n in speedup_points:
        base = None
        for d in device_counts:
            if d > jax.device_count():
                print(f"{n:>9} {d:>8}   (only {jax.device_count()} devices)")
                continue
            t = step_seconds(problem_of(n), d, args.chunk, args.repeats)
            base = t if base is None else base
            print(f"{n:>9} {d:>8} {t * 1e3:>11.3f} {base / t:>9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
