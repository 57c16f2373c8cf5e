"""The model-comparison table: flat LCDM, open CDM and the GBH void (classical fits), and any run
directories given, on Pantheon+ (:mod:`cosmology.comparison`; the same table as ``pinnopt compare``).

Usage (the table through PINNOPT_DATA_DIR, or the cache):

    PINNOPT_DATA_DIR=/path/to/data python benchmarks/bench_model_comparison.py [RUN_DIR ...]
        [--covariance Pantheon+SH0ES_STAT+SYS.cov] [--effective-params] [--no-gbh]
        [--profile-grid 0.30,0.33,0.36,0.39 --profile-steps 800]

Prints the table and the wall time. Measured (2-core CPU shared with a training run, diagonal
errors, no run directories; 12.4 s in all, most of it the two GBH fits; the header lines omitted):

  model                                                                            chi2   dchi2  k  k_eff     AIC     BIC  notes
  flat LCDM (Om = 0.350 +0.019/-0.019)                                           681.07   +0.00  2    2.0  685.07  695.80
  open CDM, Lambda = 0 (Om = 0.010)                                              717.41  +36.34  2    2.0  721.41  732.15  Om at the floor 0.01 of its range
  GBH void, Omega_out = 1 (Om_in 0.199, r0 0.010, dr 0.335 c/H0)                 687.58   +6.51  4    4.0  695.58  717.04  r0 at its bound
  GBH void, Omega_out free (Om_in 0.113, Om_out 0.230, r0 0.189, dr 0.064 c/H0)  679.00   -2.07  5    5.0  689.00  715.83

  flat LCDM profile likelihood (offset marginalised, Delta chi2 = 1): Om = 0.3503, 68% interval [0.3315, 0.3696]

The GBH fits are local; five starts (r0 0.3 to 2, dr 0.1 to 0.6) reached the same two minima. With
Omega_out = 1 the wall runs to the centre (r0 at its bound 0.01): a smooth underdensity of width
dr = 0.34 c/H0. The retrained flrw-control profile (``--profile-grid``) took about 150 s per grid
point at 20 steps here (compilation, mostly) and 225 s for one retraining of 200 steps: a 5-point
grid at the preset's 800 steps is well over 10 minutes on this CPU.
"""
from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR")
    parser.add_argument("--covariance", metavar="PATH", help="the release's STAT+SYS covariance (default: diagonal)")
    parser.add_argument("--effective-params", action="store_true", help="k_eff of each run from its checkpoint")
    parser.add_argument("--no-gbh", action="store_true", help="leave out the two GBH void fits (25 s)")
    parser.add_argument("--profile-grid", type=lambda t: [float(v) for v in t.split(",")], metavar="X1,X2,...",
                        help="retrain flrw-control at these Omega_m (Lambda fixed at 1 - Omega_m)")
    parser.add_argument("--profile-steps", type=int, help="steps of each retraining (default the preset's)")
    parser.add_argument("--z-min", type=float, default=0.01)
    args = parser.parse_args(argv)

    from cosmology.comparison import compare_runs

    t0 = time.perf_counter()
    text = compare_runs(args.run_dirs, covariance=args.covariance, z_min=args.z_min,
                        effective_params=args.effective_params, profile_grid=args.profile_grid,
                        profile_steps=args.profile_steps, gbh=not args.no_gbh)
    print(text, end="")
    print(f"\nwall time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
