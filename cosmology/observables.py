"""Observables that depend neither on the chart nor on one point: what an observer who fits a
homogeneous model to the sky would conclude, beside what is true at the observer.

Host-side numpy/scipy (float64) on distances the rays give (:mod:`cosmology.audit` traces them).
Units: code units of :mod:`cosmology.conventions` (c = H0 = 1); a Hubble rate in km/s/Mpc comes
from the supernova offset of the observer's own rate (``supernovae.hubble_constant``) scaled by
the ratio of the rates.

Sky multipoles. Real spherical harmonics, orthonormal on the sphere (int Y_lm Y_l'm' dOmega =
delta), fitted by least squares to values at R sky nodes (ell <= 2 needs R >= 9). For a field
f(n) = M + D.n + ... the monopole is the sky mean M = a_00 / sqrt(4 pi), the dipole vector
D = sqrt(3 / 4 pi) (a_11, a_1-1, a_10) in (x, y, z), and the size of each multipole is its rms
over the sky, A_l = sqrt(sum_m a_lm^2 / 4 pi) (= |D| / sqrt 3 for the dipole).

Apparent parameters. The FLRW distance with curvature Omega_k = 1 - Omega_m - Omega_Lambda,

    d_L = (1 + z) / H  S_k( int_0^z dz' / E(z') ),   E^2 = Omega_m (1+z)^3 + Omega_k (1+z)^2 + Omega_Lambda,
    S_k(x) = sinh(sqrt(Omega_k) x) / sqrt(Omega_k)  (Omega_k > 0; sin for < 0; x for 0),

is fitted by least squares in ln d_L (magnitudes) to the model's sky-averaged d_L, with H
profiled out (its best value is a mean); the apparent deceleration is q0 = Omega_m / 2 -
Omega_Lambda. The local Hubble rate fits d_L / z = c0 + c1 z + c2 z^2 below z = 0.1
(H = 1 / c0, cosmographic q0 = 1 - 2 c1 / c0).

Residual multipoles. The data residuals r = mu_obs - mu_model - offset are fitted, per
redshift bin, by the harmonics of ell <= 2 at the supernova directions, all bins in one
generalised least-squares problem with the data's covariance (its whitening W: minimise
|W (r - X b)|^2), so correlated errors across bins are accounted for; each multipole gets
the Wald statistic b_l^T Cov(b_l)^-1 b_l (chi^2 with 2 l + 1 degrees of freedom when the
multipole is absent).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)
LOCAL_Z_MAX = 0.1  # the local Hubble rate is read below this redshift
RESIDUAL_EDGES = (0.0, 0.03, 0.1, 0.3, 0.7, math.inf)  # redshift bins of the residual multipoles

# ----------------------------------------------------------------------------- the sky


def real_harmonics(directions: np.ndarray, lmax: int = 2) -> np.ndarray:
    """Orthonormal real Y_lm (N, (lmax + 1)^2) at unit vectors (N, 3), order l = 0; 1 (y, z, x);
    2 (xy, yz, 3z^2 - 1, xz, x^2 - y^2), lmax <= 2."""
    if lmax not in (0, 1, 2):
        raise ValueError(f"lmax must be 0, 1 or 2, got {lmax!r}")
    n = np.asarray(directions, np.float64)
    n = n / np.linalg.norm(n, axis=-1, keepdims=True)
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    cols = [np.full_like(x, 0.5 / math.sqrt(math.pi))]
    if lmax >= 1:
        c1 = math.sqrt(3.0 / (4.0 * math.pi))
        cols += [c1 * y, c1 * z, c1 * x]
    if lmax >= 2:
        c2, c20 = math.sqrt(15.0 / (4 * math.pi)), math.sqrt(5.0 / (16 * math.pi))
        c22 = math.sqrt(15.0 / (16 * math.pi))
        cols += [c2 * x * y, c2 * y * z, c20 * (3 * z * z - 1), c2 * x * z, c22 * (x * x - y * y)]
    return np.stack(cols, axis=-1)


def max_degree(n_nodes: int) -> int:
    """The largest ell <= 2 whose (ell + 1)^2 harmonics ``n_nodes`` values can determine."""
    return int(min(2, math.isqrt(max(int(n_nodes), 1)) - 1))


def sky_coefficients(values: np.ndarray, nodes: np.ndarray, lmax: Optional[int] = None) -> np.ndarray:
    """a_lm ((lmax + 1)^2, ...) of values (R, ...) at the sky ``nodes`` (R, 3), least squares."""
    lmax = max_degree(len(nodes)) if lmax is None else lmax
    basis = real_harmonics(nodes, lmax)
    values = np.asarray(values, np.float64)
    coef, *_ = np.linalg.lstsq(basis, values.reshape(len(nodes), -1), rcond=None)
    return coef.reshape((basis.shape[1],) + values.shape[1:])


def sky_direction(vector: np.ndarray) -> tuple[float, float]:
    """(RA, Dec) in degrees of a 3-vector (equatorial, as the data's directions)."""
    x, y, z = np.asarray(vector, np.float64) / max(float(np.linalg.norm(vector)), 1e-300)
    return float(np.degrees(np.arctan2(y, x)) % 360.0), float(np.degrees(np.arcsin(np.clip(z, -1, 1))))


def multipole_parts(coef: np.ndarray) -> dict:
    """Monopole M, dipole vector D (3, ...) and the rms A_l of each multipole (module docstring)."""
    coef = np.asarray(coef, np.float64)
    out = {"monopole": coef[0] / math.sqrt(4 * math.pi), "rms": [np.abs(coef[0]) / math.sqrt(4 * math.pi)]}
    if coef.shape[0] >= 4:
        out["dipole"] = math.sqrt(3 / (4 * math.pi)) * np.stack([coef[3], coef[1], coef[2]])
        out["rms"].append(np.sqrt(np.sum(coef[1:4] ** 2, axis=0) / (4 * math.pi)))
    if coef.shape[0] >= 9:
        out["rms"].append(np.sqrt(np.sum(coef[4:9] ** 2, axis=0) / (4 * math.pi)))
    return out


# ----------------------------------------------------------------------------- FLRW distances


def flrw_luminosity_distance(z, omega_m: float, omega_lambda: float, hubble: float = 1.0) -> np.ndarray:
    """d_L(z) of FLRW with dust and Lambda, any curvature (module docstring), 64-point Gauss-Legendre.

    Where E^2 <= 0 on [0, z] (no big bang, a bounce) E^2 is floored at 1e-8, which gives
    huge distances: a fit is pushed away from such parameters rather than stopped."""
    z = np.asarray(z, np.float64)
    omega_k = 1.0 - omega_m - omega_lambda
    x = 0.5 * (_GL_NODES + 1.0)
    zp = 1.0 + z[..., None] * x
    e2 = omega_m * zp**3 + omega_k * zp**2 + omega_lambda
    chi = 0.5 * z * ((1.0 / np.sqrt(np.maximum(e2, 1e-8))) @ _GL_WEIGHTS)
    if omega_k > 1e-12:
        s = np.sinh(math.sqrt(omega_k) * chi) / math.sqrt(omega_k)
    elif omega_k < -1e-12:
        s = np.sin(math.sqrt(-omega_k) * chi) / math.sqrt(-omega_k)
    else:
        s = chi
    return (1.0 + z) * s / hubble


class FLRWFit(NamedTuple):
    """The FLRW model whose d_L(z) best matches the given one (least squares in ln d_L)."""

    hubble: float  # H0 of the fit, in the units of the distances (code: relative to c/H0)
    omega_m: float
    omega_lambda: float
    q0: float  # Omega_m / 2 - Omega_Lambda
    rms_mag: float  # rms of the fit's residuals in magnitudes (5 log10)


def fit_flrw(z, d_l, weights=None, bounds=((0.0, -1.5), (2.5, 2.5))) -> FLRWFit:
    """(H, Omega_m, Omega_Lambda) of the FLRW d_L closest to ``d_l`` at ``z`` (module docstring).

    ln H is profiled out analytically; (Omega_m, Omega_Lambda) by scipy's bounded least
    squares from three starts (flat LCDM, open CDM, EdS), the best kept."""
    from scipy.optimize import least_squares

    z, d_l = np.asarray(z, np.float64), np.asarray(d_l, np.float64)
    keep = np.isfinite(d_l) & (d_l > 0) & (z > 0)
    z, d_l = z[keep], d_l[keep]
    w = np.ones_like(z) if weights is None else np.asarray(weights, np.float64)[keep]
    sw = np.sqrt(w / np.sum(w))

    def residual(p):
        r = np.log(d_l) - np.log(flrw_luminosity_distance(z, p[0], p[1]))
        return sw * (r - np.sum(sw**2 * r))

    best = None
    for start in ((0.3, 0.7), (0.3, 0.0), (1.0, 0.0)):
        res = least_squares(residual, np.clip(start, bounds[0], bounds[1]), bounds=bounds, xtol=1e-12, ftol=1e-12,
                            gtol=1e-12)
        if best is None or res.cost < best.cost:
            best = res
    om, ol = (float(v) for v in best.x)
    r = np.log(d_l) - np.log(flrw_luminosity_distance(z, om, ol))
    log_inv_h = float(np.sum(w * r) / np.sum(w))
    rms = float(np.sqrt(np.sum(w * (r - log_inv_h) ** 2) / np.sum(w))) * 5.0 / math.log(10.0)
    return FLRWFit(math.exp(-log_inv_h), om, ol, 0.5 * om - ol, rms)


def local_hubble_rate(z, d_l, z_max: float = LOCAL_Z_MAX) -> tuple[float, float]:
    """(H, q0) of the cosmographic fit d_L / z = c0 + c1 z + c2 z^2 on z <= ``z_max``:
    H = 1 / c0, q0 = 1 - 2 c1 / c0 (d_L = z/H (1 + (1 - q0) z / 2 + ...))."""
    z, d_l = np.asarray(z, np.float64), np.asarray(d_l, np.float64)
    keep = (z > 0) & (z <= z_max) & np.isfinite(d_l)
    if keep.sum() < 3:
        raise ValueError(f"the local Hubble rate needs >= 3 distances at 0 < z <= {z_max}, got {int(keep.sum())}")
    c2, c1, c0 = np.polyfit(z[keep], d_l[keep] / z[keep], 2)
    return float(1.0 / c0), float(1.0 - 2.0 * c1 / c0)


# ----------------------------------------------------------------------------- the data


def whiten(factor: np.ndarray, x: np.ndarray) -> np.ndarray:
    """W x for the whitening factor (N, N) or 1/sigma (N,) (``likelihood.Whitening.factor``)."""
    return factor @ x if factor.ndim == 2 else factor.reshape(-1, *([1] * (x.ndim - 1))) * x


def chi2_offset_marginalised(mu_obs: np.ndarray, factor: np.ndarray, mu_model: np.ndarray) -> float:
    """chi^2 of model moduli with the magnitude offset at its best value (``cosmology.likelihood``)."""
    w, u = whiten(factor, mu_obs - mu_model), whiten(factor, np.ones_like(mu_obs))
    return float(w @ w - (u @ w) ** 2 / (u @ u))


def reference_chi2(mu_obs, factor, z, helio, omega_m: float, omega_lambda: float) -> float:
    """chi^2 of the FLRW model (Omega_m, Omega_Lambda) on the data (offset marginalised)."""
    mu = 5.0 * np.log10(flrw_luminosity_distance(z, omega_m, omega_lambda) * helio)
    return chi2_offset_marginalised(mu_obs, factor, mu)


def best_reference(mu_obs, factor, z, helio, family: str) -> tuple[float, float]:
    """(Omega_m, chi^2) of the best ``family``: "flat_lcdm" (Omega_Lambda = 1 - Omega_m) or
    "open_cdm" (Omega_Lambda = 0, curvature 1 - Omega_m), Omega_m in [0.01, 1]."""
    from scipy.optimize import minimize_scalar

    lam = {"flat_lcdm": lambda om: 1.0 - om, "open_cdm": lambda om: 0.0}[family]
    f = lambda om: reference_chi2(mu_obs, factor, z, helio, om, lam(om))
    grid = np.linspace(0.01, 1.0, 34)
    k = int(np.argmin([f(om) for om in grid]))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return float(res.x), float(res.fun)


def residual_multipoles(z, directions, residual, factor, edges=RESIDUAL_EDGES, lmax: int = 2) -> list:
    """Monopole, dipole and quadrupole of the residuals (mag) per redshift bin (module docstring).

    Returns one dict per bin with >= 3 (lmax + 1)^2 supernovae: n, z range and median, the
    bin's mean residual with its error (the same GLS with the monopole alone: robust where a
    bin's supernovae cover little of the sky and the multipoles are nearly degenerate), and
    from the fit up to ``lmax`` the monopole, the dipole amplitude |D| with its direction and
    its (linearised) error, the rms A_l, and the Wald chi^2 of the dipole and quadrupole (with their degrees of freedom)."""
    z, residual = np.asarray(z, np.float64), np.asarray(residual, np.float64)
    basis = real_harmonics(directions, lmax)
    m = basis.shape[1]
    bins = [(lo, hi, (z > lo) & (z <= hi)) for lo, hi in zip(edges[:-1], edges[1:])]
    bins = [b for b in bins if b[2].sum() >= 3 * m]
    if not bins:
        return []
    b = whiten(factor, residual)

    def gls(columns):
        design = np.zeros((len(z), columns.shape[1] * len(bins)))
        for j, (_, _, sel) in enumerate(bins):
            design[sel, j * columns.shape[1]:(j + 1) * columns.shape[1]] = columns[sel]
        a = whiten(factor, design)
        return np.linalg.lstsq(a, b, rcond=None)[0], np.linalg.pinv(a.T @ a)

    coef, cov = gls(basis)
    means, means_cov = gls(np.ones((len(z), 1)))
    out = []
    for j, (lo, hi, sel) in enumerate(bins):
        c = coef[j * m:(j + 1) * m]
        cc = cov[j * m:(j + 1) * m, j * m:(j + 1) * m]
        parts = multipole_parts(c)
        row = {"z_low": float(lo), "z_high": float(hi) if math.isfinite(hi) else None,
               "z_median": float(np.median(z[sel])), "n": int(sel.sum()),
               "mean_mag": float(means[j]), "mean_err_mag": float(math.sqrt(means_cov[j, j])),
               "monopole_mag": float(parts["monopole"]), "rms_mag": [float(v) for v in parts["rms"]]}
        if "dipole" in parts:
            amplitude = float(np.linalg.norm(parts["dipole"]))
            order = [3, 1, 2]  # (a_11, a_1-1, a_10) -> (x, y, z)
            cov_d = 3 / (4 * math.pi) * cc[np.ix_(order, order)]
            u = parts["dipole"] / max(amplitude, 1e-300)
            row["dipole_mag"] = amplitude
            row["dipole_err_mag"] = float(math.sqrt(max(u @ cov_d @ u, 0.0)))  # linearised, along D
            row["dipole_ra_dec_deg"] = list(sky_direction(parts["dipole"]))
        for ell, name in ((1, "dipole"), (2, "quadrupole")):
            if ell <= lmax:
                s = slice(ell * ell, (ell + 1) ** 2)
                row[f"{name}_wald_chi2"] = float(c[s] @ np.linalg.pinv(cc[s, s]) @ c[s])
                row[f"{name}_dof"] = 2 * ell + 1
        out.append(row)
    return out


__all__ = ["FLRWFit", "LOCAL_Z_MAX", "RESIDUAL_EDGES", "best_reference", "chi2_offset_marginalised", "fit_flrw",
           "flrw_luminosity_distance", "local_hubble_rate", "max_degree", "multipole_parts", "real_harmonics",
           "reference_chi2", "residual_multipoles", "sky_coefficients", "sky_direction", "whiten"]
