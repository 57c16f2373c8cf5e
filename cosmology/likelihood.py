"""Supernova chi^2 of distance moduli, in JAX (whitened once), and a classical flat-LCDM fit.

Units: distances in code units are multiples of the Hubble distance c/H0; the distance
modulus needs megaparsecs, mu = 5 log10(d_L / 10 pc) = 5 log10(d_L / Mpc) + 25. Without a
fixed absolute magnitude only mu up to a constant is measured, so the offset (M together
with 5 log10(c/H0)) is either fixed or marginalised analytically.

chi^2 with covariance C and residual r = mu_obs - mu_model:

    fixed offset o:     chi2 = (r - o)^T C^-1 (r - o)
    marginalised:       chi2 = a - b^2 / e   [+ log(e / 2 pi) with log_norm=True]
                        a = r^T C^-1 r,  b = 1^T C^-1 r,  e = 1^T C^-1 1

The marginal over a flat prior on o is exp(-chi2/2) up to a constant; without the log term
(the default) chi2 equals the fixed-offset chi2 at its best offset o* = b/e (profile = marginal
for a Gaussian), and the log term, a constant of the covariance, only matters when comparing
covariances. With C = L L^T and W = L^-1 computed once, w = W r and u = W 1 give
a = |w|^2, b = u.w, e = |u|^2 and a - b^2/e = |w - (u.w/e) u|^2: a sum of squares of
whitened residuals, cheap (one mat-vec) and differentiable. The factorisation is done once, on
the host, in float64 (:mod:`cosmology.covariance`: numpy Cholesky, W = L^-1 by a triangular
solve), and W, u, e are cast to the training dtype only afterwards.

Degrees of freedom: dof = N - p, N the rows (light curves) and p the fitted constants (the
offset, Omega_m, ...; :attr:`cosmology.problem.CosmologyProblem.dof`). A supernova seen by
several surveys (same CID) gives several rows, and they all count: with the covariance C of
all N rows, which holds the correlation between duplicates, r ~ N(0, C) gives
E[r^T C^-1 r] = tr(C^-1 C) = N, and with p linear(ised) constants fitted chi^2 ~ chi^2_(N - p).
Correlated rows are not fewer rows; their covariance says how much they share. N_unique - p
would be right only if duplicates were identical measurements (C singular), which the
release's positive-definite C excludes (``tests/cosmology/test_covariance.py`` checks
E[chi^2] = N - 1 with strongly correlated duplicates). With diagonal errors sigma_i^2 = C_ii
the mean is still about N - p, but chi^2 is not chi^2-distributed (its spread depends on the
correlations it ignores): fit with the covariance.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from cosmology import covariance
from cosmology.conventions import C_KM_S
from cosmology.data import SupernovaSample, cholesky  # noqa: F401  (cholesky: re-exported)

MARGINALISE = "marginalise"


def _xp(x):
    """jax.numpy for JAX arrays (also tracers), numpy otherwise, so float64 stays float64."""
    return jnp if isinstance(x, jax.Array) else np


def distance_modulus(d_l_mpc):
    """mu = 5 log10(d_L / 10 pc) = 5 log10(d_L / Mpc) + 25, for d_L in Mpc."""
    xp = _xp(d_l_mpc)
    return 5.0 * xp.log10(d_l_mpc) + 25.0


def hubble_distance_mpc(h0):
    """c / H0 in Mpc, for H0 in km/s/Mpc (the code unit of length)."""
    return C_KM_S / h0


def code_to_mpc(d_code, h0):
    """A distance in code units (multiples of c/H0) in Mpc: d_code * c / H0, H0 in km/s/Mpc.

    With the offset marginalised the choice of H0 does not change the chi^2 (it shifts every
    mu by 5 log10(c/H0), a constant); any value, e.g. 70, serves.
    """
    return d_code * hubble_distance_mpc(h0)


# ----------------------------------------------------------------------------------------
# The whitened likelihood (JAX)


class Whitening(NamedTuple):
    """Data and the whitening factor of a supernova likelihood (a pytree of arrays).

    ``factor`` is W = L^-1, (N, N) lower triangular, or (N,) 1/sigma for diagonal errors;
    ``ones`` is u = W 1 and ``ones_norm`` e = u.u = 1^T C^-1 1.
    """

    mu_obs: jax.Array
    factor: jax.Array
    ones: jax.Array
    ones_norm: jax.Array


def host_whitening(sample: SupernovaSample, observable: str = "mu") -> covariance.HostWhitening:
    """The float64 whitening of ``sample`` (:class:`cosmology.covariance.HostWhitening`): W = L^-1 of
    the sample covariance, or 1/sigma of its diagonal errors.

    ``observable``: "mu" (MU_SH0ES) or "m_b" (m_b_corr); equal up to the constant M.
    """
    if observable == "mu":
        obs, err = sample.mu, sample.mu_err
    elif observable == "m_b":
        obs, err = sample.m_b_corr, sample.m_b_corr_err
    else:
        raise ValueError(f"observable must be 'mu' or 'm_b', got {observable!r}")
    return covariance.host_whitening(obs, err, sample.cov, f"covariance of {sample.source}")


def whitening_factor(sample: SupernovaSample, observable: str = "mu") -> tuple[np.ndarray, np.ndarray]:
    """(observed moduli, W) in float64 numpy: W = L^-1 of the sample covariance, or 1/sigma."""
    host = host_whitening(sample, observable)
    return host.mu_obs, host.factor


def make_whitening(sample: SupernovaSample, *, observable: str = "mu", dtype=jnp.float32,
                   host: Optional[covariance.HostWhitening] = None) -> Whitening:
    """Factor the covariance once (float64, or take ``host``, already factored) and keep what the
    chi^2 needs, cast to ``dtype``."""
    host = host_whitening(sample, observable) if host is None else host
    return cast_whitening(host, dtype)


def cast_whitening(host: covariance.HostWhitening, dtype=jnp.float32) -> Whitening:
    """The float64 ``host`` whitening as the JAX pytree of the chi^2, in ``dtype``."""
    return Whitening(
        mu_obs=jnp.asarray(host.mu_obs, dtype),
        factor=jnp.asarray(host.factor, dtype),
        ones=jnp.asarray(host.ones, dtype),
        ones_norm=jnp.asarray(host.ones_norm, dtype),
    )


def _whiten_np(factor, r):
    return factor @ r if factor.ndim == 2 else factor * r


def whiten(wh: Whitening, r: jax.Array) -> jax.Array:
    """W r (the covariance becomes the identity)."""
    return wh.factor @ r if wh.factor.ndim == 2 else wh.factor * r


def whitened_residuals(wh: Whitening, mu_model: jax.Array, offset=MARGINALISE) -> jax.Array:
    """Residuals whose squares sum to the chi^2: W (r - o), or, marginalised, w - (u.w/e) u.

    Marginalised, r is first centred on its plain mean: a - b^2/e does not change under
    r -> r + const, and centring keeps float32 from cancelling two large numbers when the
    model is off by a big constant (e.g. an arbitrary H0).
    """
    r = wh.mu_obs - mu_model
    if isinstance(offset, str):
        if offset != MARGINALISE:
            raise ValueError(f"offset must be a number, an array or {MARGINALISE!r}, got {offset!r}")
        w = whiten(wh, r - jnp.mean(r))
        return w - (wh.ones @ w / wh.ones_norm) * wh.ones
    return whiten(wh, r - offset)


def chi2(wh: Whitening, mu_model: jax.Array, offset=MARGINALISE, *, log_norm: bool = False) -> jax.Array:
    """chi^2 of model distance moduli (module docstring); ``offset`` a number or "marginalise".

    ``log_norm`` adds log(e / 2 pi) to the marginalised chi^2 (the full marginal likelihood).
    """
    w = whitened_residuals(wh, mu_model, offset)
    value = jnp.sum(w**2)
    if log_norm and isinstance(offset, str):
        value = value + jnp.log(wh.ones_norm / (2 * jnp.pi))
    return value


def best_offset(wh: Whitening, mu_model: jax.Array) -> jax.Array:
    """o* = b / e = 1^T C^-1 r / 1^T C^-1 1, the offset that minimises the fixed-offset chi^2."""
    return wh.ones @ whiten(wh, wh.mu_obs - mu_model) / wh.ones_norm


# ----------------------------------------------------------------------------------------
# Flat LCDM reference (numpy/scipy, float64)

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)


def hubble_rate_flat_lcdm(z, omega_m):
    """E(z) = H(z)/H0 = sqrt(Om (1+z)^3 + 1 - Om)."""
    xp = _xp(z)
    return xp.sqrt(omega_m * (1.0 + z) ** 3 + 1.0 - omega_m)


def comoving_distance_flat_lcdm(z, omega_m):
    """D_C(z) = int_0^z dz'/E(z') in units of c/H0 (48-point Gauss-Legendre, error < 1e-10)."""
    xp = _xp(z)
    z = xp.asarray(z)
    x = 0.5 * (xp.asarray(_GL_NODES) + 1.0)  # nodes on [0, 1]
    integrand = 1.0 / hubble_rate_flat_lcdm(z[..., None] * x, omega_m)
    return 0.5 * z * (integrand @ xp.asarray(_GL_WEIGHTS))


def luminosity_distance_flat_lcdm(z_hd, omega_m, z_hel=None):
    """d_L = (1 + z_hel) D_C(z_hd) in units of c/H0 (z_hel = z_hd when not given).

    The comoving distance uses the cosmological (Hubble-diagram) redshift; the (1+z) factor
    of the flux dimming comes from the redshift actually observed, the heliocentric one. This
    is (1 + z_hd) D_C(z_hd) times the correction (1 + z_hel)/(1 + z_hd), as in the release fits.
    """
    z_obs = z_hd if z_hel is None else z_hel
    return (1.0 + z_obs) * comoving_distance_flat_lcdm(z_hd, omega_m)


class FlatLCDMFit(NamedTuple):
    omega_m: float
    omega_m_err: float  # 1 sigma from the curvature: sqrt(2 / d^2 chi2 / d Om^2)
    chi2: float  # at the minimum, offset marginalised (no log term)
    offset: float  # best o in mu = 5 log10(d_L / (c/H0)) + o
    h0: float  # H0 implied by o for the absolute magnitude baked into the observable
    n: int
    dof: int  # n - 2 (Omega_m and the offset; n counts every light curve, duplicates included)


def fit_flat_lcdm(sample: SupernovaSample, *, observable: str = "mu", bounds=(0.01, 0.99),
                  heliocentric: bool = True) -> FlatLCDMFit:
    """Best flat-LCDM Omega_m for ``sample``, the magnitude offset marginalised analytically.

    mu_model(z) = 5 log10(d_L(z) / (c/H0)) with d_L from :func:`luminosity_distance_flat_lcdm`
    (``heliocentric=False`` drops the (1+z_hel)/(1+z_hd) correction), chi^2(Om) = a - b^2/e with
    the sample covariance (or its diagonal errors). A grid over ``bounds`` brackets the minimum,
    Brent's method refines it, a central second difference gives the error. ``h0`` reads
    o = 5 log10(c/H0 / Mpc) + 25 for ``observable="mu"`` (MU_SH0ES has the SH0ES M built in).
    """
    obs, factor = whitening_factor(sample, observable)
    ones = _whiten_np(factor, np.ones_like(obs))
    e = ones @ ones
    z_hel = sample.z_hel if heliocentric else None

    def residual(om):
        return obs - 5.0 * np.log10(luminosity_distance_flat_lcdm(sample.z, om, z_hel))

    def profile(om):
        w = _whiten_np(factor, residual(om))
        return w @ w - (ones @ w) ** 2 / e

    lo, hi = bounds
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"bounds must satisfy 0 <= lo < hi <= 1, got {bounds}")
    grid = np.linspace(lo, hi, 99)
    k = int(np.argmin([profile(om) for om in grid]))
    bracket = (grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)])
    best = scipy.optimize.minimize_scalar(profile, bounds=bracket, method="bounded",
                                          options={"xatol": 1e-7})
    om = float(best.x)
    h = 1e-3
    curvature = (profile(om + h) - 2.0 * profile(om) + profile(om - h)) / h**2
    offset = float(ones @ _whiten_np(factor, residual(om)) / e)
    return FlatLCDMFit(
        omega_m=om,
        omega_m_err=float(np.sqrt(2.0 / curvature)) if curvature > 0 else float("nan"),
        chi2=float(profile(om)),
        offset=offset,
        h0=float(C_KM_S / 10 ** ((offset - 25.0) / 5.0)),
        n=sample.n,
        dof=sample.n - 2,
    )
