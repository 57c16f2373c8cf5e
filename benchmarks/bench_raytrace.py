"""Speed of the supernova chi^2 through the ray tracer, and the error of the sky-grid approximation.

Times jax.value_and_grad of the Pantheon+ chi^2 (default cuts: 1580 light curves, 1466
supernovae; offset marginalised; diagonal errors unless ``--cov`` is given) with respect to
the parameters of a ``GeneralMetric`` (width 64, depth 4, LCDM background, random
initialisation), for:

* ``exact``: one ray per supernova (rows with the same CID share it), rays sorted by
  redshift and solved in vmapped batches (``--batch``);
* ``grid R``: R rays along a Fibonacci lattice of sky directions, each tabulated at ``--nz``
  redshifts, interpolated to every row (``cosmology.raytrace.SkyGrid``); its error against
  the exact distances (relative d_L, magnitudes, chi^2, gradient) is reported.

Compilation is excluded from the timings (first call), the figure is the median of
``--repeats`` calls. The data come through PINNOPT_DATA_DIR (or the download cache):

    PINNOPT_DATA_DIR=/work/shared/data python benchmarks/bench_raytrace.py
    PINNOPT_DATA_DIR=/work/shared/data python benchmarks/bench_raytrace.py --rays 50 100 200
"""
from __future__ import annotations

import argparse
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from cosmology import metric as cm
from cosmology import raytrace as rt
from cosmology.data import DiagonalCovarianceWarning, load_pantheon_plus
from cosmology.likelihood import chi2, code_to_mpc, distance_modulus, luminosity_distance_flat_lcdm, make_whitening

H0 = 70.0  # any value: the marginalised offset absorbs it


def timed(fn, *args, repeats: int):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return out, compile_s, float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rays", type=int, nargs="*", default=[100], help="sky-grid sizes")
    parser.add_argument("--nz", type=int, default=24, help="redshift nodes per grid ray")
    parser.add_argument("--rtol", type=float, default=None, help="solver rtol (default: RayOptions')")
    parser.add_argument("--batch", type=int, default=128, help="rays per vmapped solve (exact)")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact per-supernova timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cov", default=None, help="Pantheon+ STAT+SYS covariance file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagonalCovarianceWarning)
        sample = load_pantheon_plus(covariance=args.cov)
    wh = make_whitening(sample)
    z = sample.z_hd
    print(f"{sample.report}; devices: {jax.devices()}")

    model = cm.GeneralMetric(width=64, depth=4, background=cm.Background("lcdm", 0.3))
    params = cm.init_params(model, jax.random.PRNGKey(args.seed))
    observer = jnp.zeros(4)
    options = rt.RayOptions(rtol=args.rtol)

    def chi2_of(distances):
        def loss(p):
            d_l = distances(cm.bind(model, p))
            return chi2(wh, distance_modulus(code_to_mpc(d_l, H0))), d_l
        return jax.jit(jax.value_and_grad(loss, has_aux=True))

    results = {}
    if not args.no_exact:
        plan = rt.plan_rays(sample.direction, z, groups=sample.cid, batch_size=args.batch)
        fn = chi2_of(lambda m: rt.luminosity_distance_by_ray(m, observer, plan, options=options))
        results["exact"] = timed(fn, params, repeats=args.repeats) + (len(np.unique(sample.cid)),)
    for r in args.rays:
        grid = rt.sky_grid(sample.direction, z, n_rays=r, n_redshifts=args.nz)
        fn = chi2_of(lambda m, grid=grid: rt.luminosity_distance_sky_grid(m, observer, grid, options=options))
        results[f"grid {r}"] = timed(fn, params, repeats=args.repeats) + (grid.nodes.shape[0],)

    lcdm = luminosity_distance_flat_lcdm(z, 0.3)
    header = f"{'method':<9} {'rays':>5} {'compile s':>9} {'v&g s':>7} {'chi2':>10} {'d_L/LCDM-1 (rms)':>16}"
    print(header + "\n" + "-" * len(header))
    for name, (((value, d_l), grad), compile_s, run_s, rays) in results.items():
        d_l = np.asarray(d_l, np.float64)
        print(f"{name:<9} {rays:>5} {compile_s:>9.1f} {run_s:>7.3f} {float(value):>10.3f} "
              f"{np.sqrt(np.mean((d_l / lcdm - 1) ** 2)):>16.3e}")
    if "exact" in results:
        ((value, d_exact), g_exact), *_ = results["exact"]
        flat_exact = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(g_exact)])
        d_exact = np.asarray(d_exact, np.float64)
        print("\nsky-grid error against exact tracing (per light curve):")
        header = f"{'method':<9} {'max |dd_L|/d_L':>14} {'rms':>9} {'max |dmu| mag':>13} {'dchi2':>9} {'|dgrad|/|grad|':>14}"
        print(header + "\n" + "-" * len(header))
        for name, (((v, d_l), g), *_rest) in results.items():
            if name == "exact":
                continue
            rel = np.asarray(d_l, np.float64) / d_exact - 1
            flat = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(g)])
            print(f"{name:<9} {np.max(np.abs(rel)):>14.2e} {np.sqrt(np.mean(rel**2)):>9.2e} "
                  f"{5 / np.log(10) * np.max(np.abs(rel)):>13.2e} {float(v) - float(value):>9.2e} "
                  f"{np.linalg.norm(flat - flat_exact) / np.linalg.norm(flat_exact):>14.2e}")


if __name__ == "__main__":
    main()
