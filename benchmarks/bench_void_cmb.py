"""The CMB distance prior on the classical GBH voids: do the voids that fit the supernovae pass it?

For each classical fit of the exact LTB void to Pantheon+ (``cosmology.ltb_distances``, smooth
profile; Omega_out = 1 and free), the Planck 2018 compressed likelihood (R, l_A) of
``cosmology.cmb_distance``: a ray through the exact void metric from the central observer to the
edge redshift z_e, continued beyond it as homogeneous dust + radiation with the void's own
curvature there (the same code path as the opt-in ``cmb_distance`` term of ``lumpy``). float64.

    PINNOPT_DATA_DIR=... python benchmarks/bench_void_cmb.py [--z-edge 4.0]
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from cosmology import cmb_distance, kinematics, matter
from cosmology.conventions import OBSERVER
from cosmology.data import load_pantheon_plus
from cosmology.ltb import ltb_metric
from cosmology.ltb_distances import fit_gbh_void_sample


def void_prior(void, z_edge: float, prior: cmb_distance.CMBDistancePrior) -> dict:
    """R, l_A and chi^2_CMB of the exact void (central observer: one ray is the sky average)."""
    with jax.enable_x64(True):
        metric_fn = ltb_metric(void)
        observer = jnp.asarray(OBSERVER, jnp.float64)

        @jax.jit
        def run():
            hubble = kinematics.comoving_kinematics(metric_fn, observer).mean_hubble_rate
            source = matter.constraint_source(metric_fn, observer, hubble, jnp.zeros((), jnp.float64))
            out = cmb_distance.prior_values(metric_fn, source, jnp.array([[0.0, 0.0, 1.0]]), z_edge, prior)
            return {k: out[k] for k in ("R", "l_A", "chi2", "reached")}, source.omega_m

        values, omega_m = run()
        return {**{k: float(v) for k, v in values.items()}, "omega_m_observer": float(omega_m)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--z-edge", type=float, default=4.0, help="edge redshift of the traced part (default 4)")
    args = parser.parse_args(argv)
    sample = load_pantheon_plus()
    prior = cmb_distance.CMBDistancePrior().check()
    print(f"Planck 2018 compressed: R = 1.7502 +- 0.0046, l_A = 301.471 +- 0.090; z_e = {args.z_edge}")
    print(f"{'model':<64} {'chi2_SN':>8} {'R':>7} {'l_A':>8} {'chi2_CMB':>10}")
    for label, free in (("GBH void, Omega_out = 1", False), ("GBH void, Omega_out free", True)):
        t0 = time.perf_counter()
        fit = fit_gbh_void_sample(sample, free_omega_out=free)
        v = fit.void
        out = void_prior(v, args.z_edge, prior)
        name = f"{label} (Om_in {v.omega_in:.3f}, Om_out {v.omega_out:.3f}, r0 {v.r0:.3f}, dr {v.dr:.3f})"
        print(f"{name:<64} {fit.chi2:8.2f} {out['R']:7.3f} {out['l_A']:8.1f} {out['chi2']:10.3g}"
              f"   ({time.perf_counter() - t0:.0f} s{'' if out['reached'] else ', edge NOT reached'})")


if __name__ == "__main__":
    main()
