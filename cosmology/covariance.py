"""The supernova covariance: the release's ``.cov`` files, checks, the diagonal fallback's
warning, and the host-side (float64) whitening every other module casts from.

Whitening (done once, on the host, in float64 numpy). With C = L L^T (Cholesky, lower L),

    W = L^-1,   W C W^T = I,   r^T C^-1 r = |W r|^2,

so the chi^2 of any residual is a sum of squares. W is computed by a triangular solve of
L W = I (scipy, float64) and only then cast (float32 for training,
:func:`cosmology.likelihood.make_whitening`). With diagonal errors sigma_i, W = diag(1/sigma).

The magnitude offset o (absolute magnitude together with 5 log10(c/H0)) is marginalised:

    chi^2(o) = (r - o 1)^T C^-1 (r - o 1) = a - 2 o b + o^2 e,
    a = r^T C^-1 r,  b = 1^T C^-1 r,  e = 1^T C^-1 1,
    min over o: o* = b / e,  chi^2(o*) = a - b^2 / e = |w - (u.w / e) u|^2,  w = W r,  u = W 1.

Binned residuals consistent with that likelihood are the generalised least-squares means
m = (X^T C^-1 X)^-1 X^T C^-1 r of a bin-indicator design X (N, B), with covariance
(X^T C^-1 X)^-1 (:meth:`HostWhitening.binned_means`): with correlated errors the inverse-variance
mean of a bin is not the maximum-likelihood one. Plots show each point with sqrt(C_ii).

The diagonal fallback (no covariance given) warns once per process
(:func:`warn_diagonal_fallback`): the first fallback warns, later ones in the same process do not,
whatever their call site (a run builds its problem more than once).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np
import scipy.linalg

# The release file to pass (Brout et al. 2022): 4_DISTANCES_AND_COVAR/ of the data release.
RELEASE_COVARIANCE = "Pantheon+SH0ES_STAT+SYS.cov"
_DIAGONAL_WARNED = False  # module state: the fallback has been announced in this process


class DiagonalCovarianceWarning(UserWarning):
    """Cosmology is being fitted with the diagonal errors the release reserves for plots."""


def warn_diagonal_fallback(stacklevel: int = 3) -> bool:
    """Warn, once per process, that the diagonal errors stand in for the covariance.

    The message names the option that removes it: ``covariance=PATH`` (Python:
    ``load_pantheon_plus``, ``make_lumpy``, ``make_flrw_control``, ``make_open_control``; command
    line: ``pinnopt solve lumpy -p covariance=PATH``). Returns whether it warned now. A first
    fallback inside a caller's ``warnings.catch_warnings()`` that ignores the category counts
    as announced.
    """
    global _DIAGONAL_WARNED
    if _DIAGONAL_WARNED:
        return False
    _DIAGONAL_WARNED = True
    warnings.warn(
        "Pantheon+: no covariance given, using the diagonal errors MU_SH0ES_ERR_DIAG; the release notes say "
        "these are for plotting only and must not be used to fit cosmology. Pass the release's STAT+SYS "
        f"covariance with the option covariance=PATH to {RELEASE_COVARIANCE} (Python: "
        "load_pantheon_plus(covariance=PATH), make_lumpy(covariance=PATH); command line: "
        "pinnopt solve lumpy -p covariance=PATH). Said once per process.",
        DiagonalCovarianceWarning, stacklevel=stacklevel,
    )
    return True


# ----------------------------------------------------------------------------------------
# Reading and checking


def load_covariance(path: Union[str, Path], n: int) -> np.ndarray:
    """Read a release ``.cov`` file: first line N, then N*N numbers row by row.

    Raises ValueError naming the file when N differs from ``n`` (the rows of the table), the
    count of numbers is not N*N, a value is not a finite number, or the matrix is not symmetric.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such covariance file")
    tokens = path.read_text().split()
    if not tokens:
        raise ValueError(f"{path}: empty covariance file")
    try:
        size = int(tokens[0])
    except ValueError:
        raise ValueError(f"{path}: first value must be the matrix size N, got {tokens[0]!r}") from None
    if size != n:
        raise ValueError(f"{path}: covariance is {size}x{size} but the table has {n} rows")
    if len(tokens) - 1 != size * size:
        raise ValueError(f"{path}: expected N*N = {size * size} values after N = {size}, found {len(tokens) - 1}")
    try:
        values = np.array(tokens[1:], dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens[1:] if not _is_float(t))
        raise ValueError(f"{path}: non-numeric value {bad!r} in the covariance") from None
    del tokens
    cov = values.reshape(size, size)
    check_covariance(cov, str(path))
    return cov


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def check_covariance(cov: np.ndarray, name: str) -> None:
    """ValueError naming ``name`` for a non-finite entry or an asymmetric matrix."""
    if not np.all(np.isfinite(cov)):
        i, j = np.argwhere(~np.isfinite(cov))[0]
        raise ValueError(f"{name}: covariance entry ({i}, {j}) is {cov[i, j]} (NaN or infinite)")
    scale = np.max(np.abs(cov))
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-9 * scale):
        raise ValueError(f"{name}: covariance is not symmetric")


_check_covariance = check_covariance  # the former private name


def cholesky(cov: np.ndarray, name: str = "covariance") -> np.ndarray:
    """Lower Cholesky factor L (C = L L^T), float64; ValueError naming ``name`` if C is not positive definite."""
    try:
        return np.linalg.cholesky(np.asarray(cov, np.float64))
    except np.linalg.LinAlgError:
        smallest = np.linalg.eigvalsh(cov)[0]
        raise ValueError(
            f"{name}: covariance is not positive definite (smallest eigenvalue {smallest:.3g})") from None


def whitening_matrix(cov: np.ndarray, name: str = "covariance") -> np.ndarray:
    """W = L^-1 (N, N), lower triangular, float64: the solve L W = I after :func:`cholesky`."""
    lower = cholesky(cov, name)
    return scipy.linalg.solve_triangular(lower, np.eye(lower.shape[0]), lower=True)


# ----------------------------------------------------------------------------------------
# The host-side whitening


class HostWhitening(NamedTuple):
    """Observed moduli and the whitening of their covariance, float64 numpy (module docstring).

    ``factor`` is W = L^-1 (N, N) or 1/sigma (N,); ``ones`` u = W 1, ``ones_norm`` e = u.u =
    1^T C^-1 1; ``sigma`` sqrt(C_ii), the per-point error bars of plots.
    """

    mu_obs: np.ndarray
    factor: np.ndarray
    ones: np.ndarray
    ones_norm: float
    sigma: np.ndarray

    @property
    def full(self) -> bool:
        return self.factor.ndim == 2

    def whiten(self, x: np.ndarray) -> np.ndarray:
        """W x for x (N,) or (N, k)."""
        x = np.asarray(x, np.float64)
        return self.factor @ x if self.full else self.factor.reshape(-1, *([1] * (x.ndim - 1))) * x

    def best_offset(self, mu_model: np.ndarray) -> float:
        """o* = 1^T C^-1 r / 1^T C^-1 1 for r = mu_obs - mu_model."""
        return float(self.ones @ self.whiten(self.mu_obs - mu_model) / self.ones_norm)

    def chi2(self, mu_model: np.ndarray) -> float:
        """a - b^2 / e of r = mu_obs - mu_model (the offset marginalised)."""
        w = self.whiten(self.mu_obs - np.asarray(mu_model, np.float64))
        return float(w @ w - (self.ones @ w) ** 2 / self.ones_norm)

    def binned_means(self, residual: np.ndarray, bins: np.ndarray, n_bins: int):
        """GLS means (B,) and their errors (B,) of ``residual`` in bins labelled 0..n_bins-1 by
        ``bins`` (N,) (-1: in no bin); bins without a point give NaN."""
        bins = np.asarray(bins)
        design = (bins[:, None] == np.arange(n_bins)[None, :]).astype(np.float64)
        used = design.sum(axis=0) > 0
        a = self.whiten(design[:, used])
        normal = a.T @ a  # X^T C^-1 X
        means = np.full(n_bins, np.nan)
        errs = np.full(n_bins, np.nan)
        means[used] = np.linalg.solve(normal, a.T @ self.whiten(residual))
        errs[used] = np.sqrt(np.diag(np.linalg.inv(normal)))
        return means, errs


def host_whitening(obs: np.ndarray, err: np.ndarray, cov: Optional[np.ndarray], name: str = "covariance"
                   ) -> HostWhitening:
    """:class:`HostWhitening` of observations ``obs`` (N,) with covariance ``cov`` (N, N), or, when it is
    None, the diagonal errors ``err`` (N,) (> 0; ValueError naming ``name`` otherwise)."""
    obs = np.asarray(obs, np.float64)
    if cov is None:
        err = np.asarray(err, np.float64)
        if np.any(err <= 0):
            raise ValueError(f"{name}: diagonal errors must be > 0 (row {int(np.argmax(err <= 0))})")
        factor, sigma = 1.0 / err, err
    else:
        cov = np.asarray(cov, np.float64)
        factor, sigma = whitening_matrix(cov, name), np.sqrt(np.diag(cov))
    ones = factor @ np.ones_like(obs) if factor.ndim == 2 else factor.copy()
    return HostWhitening(obs, factor, ones, float(ones @ ones), sigma)


def from_factor(mu_obs: np.ndarray, factor: np.ndarray) -> HostWhitening:
    """A :class:`HostWhitening` rebuilt from a (possibly cast) factor W, for objects built without the
    float64 copy; sigma_i = sqrt(C_ii) from C = (W^T W)^-1."""
    factor = np.asarray(factor, np.float64)
    mu_obs = np.asarray(mu_obs, np.float64)
    if factor.ndim == 2:
        lower = scipy.linalg.solve_triangular(factor, np.eye(factor.shape[0]), lower=True)  # L = W^-1
        sigma = np.sqrt(np.sum(lower**2, axis=1))  # diag(L L^T)
        ones = factor @ np.ones_like(mu_obs)
    else:
        sigma, ones = 1.0 / factor, factor.copy()
    return HostWhitening(mu_obs, factor, ones, float(ones @ ones), sigma)


def bin_labels(z: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bin index k of each z, edges[k] <= z < edges[k + 1]; -1 outside every bin."""
    z = np.asarray(z, np.float64)
    idx = np.digitize(z, edges) - 1
    return np.where((idx >= 0) & (idx < len(edges) - 1), idx, -1)


__all__ = ["DiagonalCovarianceWarning", "HostWhitening", "RELEASE_COVARIANCE", "bin_labels", "check_covariance",
           "cholesky", "from_factor", "host_whitening", "load_covariance", "warn_diagonal_fallback",
           "whitening_matrix"]
