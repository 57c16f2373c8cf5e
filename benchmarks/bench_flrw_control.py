"""The closure test of the cosmology pipeline: flrw-control against a classical flat-LCDM fit.

The ``flrw-control`` problem learns a(t) (a SIREN times an LCDM background) with dust, a
trainable Omega_m and a trainable Lambda, the Einstein residual on the supernova era and
the supernova chi^2 through the ray tracer. Its fitted Omega_m must agree within 0.02 with
the classical least-squares fit of flat LCDM: the Friedmann integral
D_C(z) = int_0^z dz' / sqrt(Om (1 + z')^3 + 1 - Om), d_L = (1 + z_hel) D_C(z_hd), the same
Pantheon+ rows (z_HD > 0.01, no calibrators), the same diagonal errors, the magnitude offset
marginalised (computed here with scipy.integrate.quad and scipy.optimize, independently of
the package's own fit).

Usage (the table through PINNOPT_DATA_DIR, or the cache):

    PINNOPT_DATA_DIR=/path/to/data python benchmarks/bench_flrw_control.py [--steps 1500] [--starts 0.3 0.5]

Prints one row per start value of Omega_m: fitted Omega_m and Omega_Lambda, their sum,
chi^2, the classical values, the difference and the wall time.

Measured (2-core CPU shared with other jobs, 1500 steps, ``--starts 0.3 0.5 0.2``):

    classical flat-LCDM fit (scipy quad, 1580 light curves, diagonal errors): Omega_m = 0.3503, chi^2 = 681.07
     start Om   fit Om   fit OL   Om+OL      q0    chi^2   |dOm|    r rms  wall s  within 0.02
        0.300   0.3465   0.6542  1.0007  -0.463   680.90  0.0038 7.47e-03   294.8  yes
        0.500   0.3464   0.6525  0.9989  -0.459   680.90  0.0039 7.66e-03   259.1  yes
        0.200   0.3462   0.6531  0.9992  -0.463   680.90  0.0041 7.26e-03   131.0  yes

(131 s is the time on an idle machine; the CLI run ``pinnopt solve flrw-control`` took 141 s
of solve time, 1500 steps at 45 steps/s after about 90 s of compilation.)
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def classical_fit(sample) -> dict:
    """Flat LCDM by quadrature and Brent's method: (Omega_m, chi^2) with the offset marginalised."""
    from scipy.integrate import quad
    from scipy.optimize import minimize_scalar

    z_hd, z_hel, mu, err = sample.z_hd, sample.z_hel, sample.mu, sample.mu_err
    order = np.argsort(z_hd)
    w = 1.0 / err**2

    def chi2(om):
        e = lambda z: 1.0 / np.sqrt(om * (1 + z) ** 3 + 1 - om)
        # Cumulative quadrature between consecutive sorted redshifts (exact to quad's tolerance).
        edges = np.concatenate([[0.0], z_hd[order]])
        steps = [quad(e, a, b, epsabs=1e-12, epsrel=1e-10)[0] for a, b in zip(edges[:-1], edges[1:])]
        d_c = np.empty_like(z_hd)
        d_c[order] = np.cumsum(steps)
        r = mu - 5 * np.log10((1 + z_hel) * d_c)
        return float(np.sum(w * (r - np.sum(w * r) / np.sum(w)) ** 2))

    grid = np.linspace(0.05, 0.95, 19)
    k = int(np.argmin([chi2(om) for om in grid]))
    best = minimize_scalar(chi2, bounds=(grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]), method="bounded",
                           options={"xatol": 1e-6})
    return {"omega_m": float(best.x), "chi2": float(best.fun)}


def run(omega_m_init: float, steps: int, seed: int) -> dict:
    import pinnopt
    from cosmology.problem import make_flrw_control

    problem = make_flrw_control(omega_m_init=omega_m_init, omega_lambda_init=1.0 - omega_m_init, steps=steps)
    d = problem.solve_defaults()
    t0 = time.perf_counter()
    res = pinnopt.solve(problem, optimizer=d["optimizer"], constraints=d["constraints"], balancing=d["balancing"],
                        steps=steps, chunk=d["chunk"], seed=seed, optimizer_kwargs=d["optimizer_kwargs"])
    wall = time.perf_counter() - t0
    s = problem.summary(res.params)
    return {"start": omega_m_init, "omega_m": s["omega_m"], "omega_lambda": s["omega_lambda"], "chi2": s["chi2"],
            "q0": s["q0"], "residual_rms": s["einstein_residual_rms_heldout"], "wall": wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--starts", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from cosmology.data import load_pantheon_plus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = load_pantheon_plus()
    ref = classical_fit(sample)
    print(f"classical flat-LCDM fit (scipy quad, {sample.n} light curves, diagonal errors): "
          f"Omega_m = {ref['omega_m']:.4f}, chi^2 = {ref['chi2']:.2f}")
    header = (f"{'start Om':>9} {'fit Om':>8} {'fit OL':>8} {'Om+OL':>7} {'q0':>7} {'chi^2':>8} "
              f"{'|dOm|':>7} {'r rms':>8} {'wall s':>7}  within 0.02")
    print(header)
    print("-" * len(header))
    ok = True
    for start in args.starts:
        r = run(start, args.steps, args.seed)
        diff = abs(r["omega_m"] - ref["omega_m"])
        ok &= diff < 0.02
        print(f"{start:>9.3f} {r['omega_m']:>8.4f} {r['omega_lambda']:>8.4f} {r['omega_m'] + r['omega_lambda']:>7.4f} "
              f"{r['q0']:>7.3f} {r['chi2']:>8.2f} {diff:>7.4f} {r['residual_rms']:>8.2e} {r['wall']:>7.1f}  "
              f"{'yes' if diff < 0.02 else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
