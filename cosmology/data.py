"""Pantheon+ supernovae: download (checksum, cache, offline override), parsing, cuts, covariance.

Where the table comes from, in order:

1. ``path=`` given to :func:`load_pantheon_plus` (a file, or a folder holding it);
2. the folder named by the environment variable ``PINNOPT_DATA_DIR`` (offline machines, CI);
3. the user's cache, ``$XDG_CACHE_HOME/pinnopt`` (default ``~/.cache/pinnopt``), filled on
   first use by a download from the official data release, checked against its sha256.

The release has 1701 light curves of about 1550 supernovae: a supernova seen by several
surveys appears once per survey with the same CID. All rows are kept (no deduplication):
the release covariance carries the correlation between duplicates, and the published fits
use every row. :class:`CutReport` counts the distinct CIDs so the difference is visible.

The diagonal errors of the table are for plots only (release notes); fitting cosmology
with them is wrong in principle, and :func:`load_pantheon_plus` warns (once per process) when
it falls back to them. Pass the release covariance (``Pantheon+SH0ES_STAT+SYS.cov``) to fit;
reading, checking and whitening it live in :mod:`cosmology.covariance` (re-exported here).

Redshifts: ``redshift="zHD"`` (default) is the release's Hubble-diagram redshift (CMB frame,
corrected for peculiar velocities); ``redshift="zCMB"`` the CMB-frame redshift without that
correction. The chosen column is ``SupernovaSample.z`` (and ``z_err``), the one the cut
z > ``z_min`` applies to and rays are traced to. ``z_min = HUBBLE_FLOW_Z_MIN`` (0.023) keeps the
Hubble flow only (the lower edge of the SH0ES Hubble-flow sample, Riess et al. 2022), where
peculiar velocities of ~300 km/s are under 5% of cz.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.request
import warnings
from pathlib import Path
from typing import NamedTuple, Optional, Union

import numpy as np

from cosmology.covariance import (  # noqa: F401  (re-exported: their former home)
    DiagonalCovarianceWarning,
    _check_covariance,
    _is_float,
    check_covariance,
    cholesky,
    load_covariance,
    warn_diagonal_fallback,
)

PANTHEON_PLUS_FILENAME = "Pantheon+SH0ES.dat"
# The official data release (Brout et al. 2022, Scolnic et al. 2022), pinned by its checksum:
# the file at commit c447f0fea703fcd0fff57de5000947b5ca81286b of PantheonPlusSH0ES/DataRelease.
PANTHEON_PLUS_URL = (
    "https://raw.githubusercontent.com/PantheonPlusSH0ES/DataRelease/main/"
    "Pantheon+_Data/4_DISTANCES_AND_COVAR/Pantheon+SH0ES.dat"
)
PANTHEON_PLUS_SHA256 = "1cb0fc379ef066afdc2ffd1857681cc478024570d8a3eba284fb645775198cf8"
DATA_DIR_ENV = "PINNOPT_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 60.0

# Columns read from the table (the release has 47; the others are light-curve fit details).
FLOAT_COLUMNS = (
    "zHD", "zHDERR", "zHEL", "zHELERR", "m_b_corr", "m_b_corr_err_DIAG",
    "MU_SH0ES", "MU_SH0ES_ERR_DIAG", "CEPH_DIST", "RA", "DEC",
)
INT_COLUMNS = ("IDSURVEY", "IS_CALIBRATOR")
REQUIRED_COLUMNS = ("CID",) + INT_COLUMNS + FLOAT_COLUMNS
# The redshift a fit may use, and the columns it needs besides REQUIRED_COLUMNS.
REDSHIFTS = {"zHD": (), "zCMB": ("zCMB", "zCMBERR")}
HUBBLE_FLOW_Z_MIN = 0.023  # z_min of a Hubble-flow-only fit (module docstring)


class CutReport(NamedTuple):
    """How many rows each cut removed (rows = light curves; ``n_unique`` counts supernovae)."""

    n_rows: int  # light curves in the file
    n_below_z_min: int  # removed by z <= z_min (z: the column ``redshift``)
    n_calibrators: int  # removed as Cepheid calibrators (after the redshift cut)
    n_kept: int
    n_unique: int  # distinct CIDs among the kept rows
    redshift: str = "zHD"  # the column the cut applies to

    def __str__(self):
        return (
            f"{self.n_kept} of {self.n_rows} light curves kept ({self.n_unique} distinct supernovae); "
            f"removed {self.n_below_z_min} with {self.redshift} <= z_min and {self.n_calibrators} calibrators"
        )


class SupernovaSample(NamedTuple):
    """Per-light-curve arrays after the cuts (float64, numpy), in file order.

    ``mu`` is MU_SH0ES = m_b_corr - M with the SH0ES absolute magnitude M; for a fit with
    the offset marginalised, ``mu`` and ``m_b_corr`` are interchangeable. ``z`` is the redshift
    the fit uses (the column ``redshift``: zHD or zCMB; ``z_cmb`` is None when zCMB was not
    read). ``cov`` is the
    covariance of ``mu`` restricted to the kept rows, or None when only the diagonal errors
    ``mu_err`` are available. ``direction`` is the unit vector towards (RA, DEC), equatorial
    J2000 as in the release: (cos DEC cos RA, cos DEC sin RA, sin DEC).
    """

    cid: np.ndarray  # (N,) str, shared by duplicates from different surveys
    survey: np.ndarray  # (N,) int, IDSURVEY
    z_hd: np.ndarray  # Hubble-diagram redshift (CMB frame, peculiar-velocity corrected)
    z_hd_err: np.ndarray
    z_hel: np.ndarray  # heliocentric redshift
    z_hel_err: np.ndarray
    m_b_corr: np.ndarray
    m_b_corr_err: np.ndarray
    mu: np.ndarray
    mu_err: np.ndarray
    ceph_dist: np.ndarray  # Cepheid distance modulus of calibrators (-9 otherwise)
    is_calibrator: np.ndarray  # (N,) bool
    ra: np.ndarray  # degrees
    dec: np.ndarray  # degrees
    direction: np.ndarray  # (N, 3) unit vectors
    cov: Optional[np.ndarray]  # (N, N) or None (diagonal errors)
    row: np.ndarray  # (N,) int, row in the file (0-based, header excluded)
    report: CutReport
    source: str  # the file the table was read from
    z_cmb: Optional[np.ndarray] = None  # zCMB (read when redshift="zCMB")
    z_cmb_err: Optional[np.ndarray] = None
    redshift: str = "zHD"  # which column is the fit's redshift z

    @property
    def n(self) -> int:
        return int(self.z_hd.shape[0])

    @property
    def z(self) -> np.ndarray:
        """The redshift of the fit: zHD, or zCMB with ``redshift="zCMB"``."""
        return self.z_cmb if self.redshift == "zCMB" else self.z_hd

    @property
    def z_err(self) -> np.ndarray:
        return self.z_cmb_err if self.redshift == "zCMB" else self.z_hd_err


# ----------------------------------------------------------------------------------------
# Locating and downloading the table


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pinnopt``, or ``~/.cache/pinnopt`` when XDG_CACHE_HOME is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pinnopt"


def sha256_file(path: Union[str, Path]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The bytes at ``url`` (urllib, no extra dependency). Tests replace this function."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def download(url: str, dest: Union[str, Path], sha256: Optional[str],
             timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` atomically, after checking its sha256.

    The payload is verified in memory, written to a temporary file in the destination folder
    and renamed into place, so ``dest`` is either absent or a complete, verified file.
    """
    dest = Path(dest)
    payload = fetch(url, timeout=timeout)
    if sha256 is not None:
        got = hashlib.sha256(payload).hexdigest()
        if got != sha256:
            raise ValueError(
                f"download of {url} failed its checksum: sha256 {got}, expected {sha256} "
                f"(nothing was written to {dest})"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest


def verify_sha256(path: Union[str, Path], sha256: Optional[str]) -> None:
    """Raise ValueError naming ``path`` when its sha256 differs from ``sha256`` (None: skip)."""
    if sha256 is None:
        return
    got = sha256_file(path)
    if got != sha256:
        raise ValueError(
            f"{path}: sha256 {got} does not match the expected {sha256} (a corrupted file or "
            f"another version of the release; pass sha256=None to read a table of your own)"
        )


def pantheon_plus_path(path: Union[str, Path, None] = None, *, sha256: Optional[str] = PANTHEON_PLUS_SHA256,
                       timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Where the Pantheon+ table is, downloading it into the cache when no override names it.

    ``path`` may be the file or a folder holding ``Pantheon+SH0ES.dat``; otherwise the folder in
    ``$PINNOPT_DATA_DIR``; otherwise the cache (see :func:`cache_dir`). The file found is checked
    against ``sha256`` (None skips the check, for tables of your own).
    """
    if path is None and os.environ.get(DATA_DIR_ENV):
        path = os.environ[DATA_DIR_ENV]
        origin = f" (from ${DATA_DIR_ENV})"
    else:
        origin = ""
    if path is not None:
        path = Path(path)
        if path.is_dir():
            path = path / PANTHEON_PLUS_FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"{path}{origin}: no such file (expected the Pantheon+ table)")
        verify_sha256(path, sha256)
        return path

    cached = cache_dir() / PANTHEON_PLUS_FILENAME
    if cached.is_file():
        try:
            verify_sha256(cached, sha256)
            return cached
        except ValueError as err:
            # A cached copy is ours to replace: fetch a fresh one rather than fail.
            warnings.warn(f"{err}; downloading it again", stacklevel=2)
    download(PANTHEON_PLUS_URL, cached, sha256, timeout=timeout)
    print(f"pinnopt: downloaded the Pantheon+ table to {cached} (sha256 verified)", file=sys.stderr)
    return cached


# ----------------------------------------------------------------------------------------
# Parsing


def read_table(path: Union[str, Path], columns=REQUIRED_COLUMNS) -> dict[str, np.ndarray]:
    """Read the whitespace-separated table (one header row) into ``{column: array}``.

    Float columns become float64, integer flags int64, CID stays a string; ``"line"`` holds
    each row's line number in the file. Every problem is a
    ValueError naming the file, the line and the column: a missing column, a row with the
    wrong number of fields, a value that is not a number, a NaN or an infinity.
    """
    with open(path) as f:
        lines = [line.split() for line in f]
    numbered = [(i + 1, fields) for i, fields in enumerate(lines) if fields]
    if not numbered:
        raise ValueError(f"{path}: empty file")
    (_, header), body = numbered[0], numbered[1:]
    if not body:
        raise ValueError(f"{path}: header but no data rows")
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    for lineno, fields in body:
        if len(fields) != len(header):
            raise ValueError(f"{path}:{lineno}: {len(fields)} fields, the header has {len(header)}")
    index = {name: header.index(name) for name in columns}
    table = {"line": np.array([lineno for lineno, _ in body])}  # for error messages
    for name in columns:
        raw = [fields[index[name]] for _, fields in body]
        if name == "CID":
            table[name] = np.array(raw)
            continue
        values = np.empty(len(raw))
        for k, text in enumerate(raw):
            try:
                values[k] = float(text)
            except ValueError:
                raise ValueError(
                    f"{path}:{body[k][0]}: column {name} has non-numeric value {text!r}") from None
            if not np.isfinite(values[k]):
                raise ValueError(f"{path}:{body[k][0]}: column {name} is {text} (NaN or infinite)")
        if name in INT_COLUMNS:
            if np.any(values != np.round(values)):
                k = int(np.argmax(values != np.round(values)))
                raise ValueError(f"{path}:{body[k][0]}: column {name} must be an integer, got {raw[k]!r}")
            values = values.astype(np.int64)
        table[name] = values
    return table


def unit_vector(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(cos DEC cos RA, cos DEC sin RA, sin DEC), shape (N, 3), from angles in degrees."""
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


# ----------------------------------------------------------------------------------------
# The loader


def load_pantheon_plus(
    path: Union[str, Path, None] = None,
    *,
    covariance: Union[str, Path, np.ndarray, None] = None,
    z_min: float = 0.01,
    exclude_calibrators: bool = True,
    redshift: str = "zHD",
    sha256: Optional[str] = PANTHEON_PLUS_SHA256,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> SupernovaSample:
    """Load Pantheon+ light curves with the cuts of the release's cosmology fits.

    Cuts: keep z > ``z_min`` (0.01 by default, as in Brout et al. 2022: below it peculiar
    velocities dominate; :data:`HUBBLE_FLOW_Z_MIN` = 0.023 for the Hubble flow only), z the
    column ``redshift`` ("zHD", default, or "zCMB"), and drop the Cepheid calibrators
    (IS_CALIBRATOR == 1) unless ``exclude_calibrators=False`` (their MU_SH0ES is then used as
    is, not CEPH_DIST). Duplicate light curves of one supernova are all kept (module docstring).

    ``covariance``: the release ``.cov`` file or an (N, N) array over all N rows of the table;
    the cuts are applied to its rows and columns and the result must be positive definite.
    None: diagonal errors, with a :class:`DiagonalCovarianceWarning` once per process
    (:func:`cosmology.covariance.warn_diagonal_fallback`).
    ``sha256``: the expected checksum of the table (None to read a table of your own).
    """
    if isinstance(z_min, bool) or not isinstance(z_min, (int, float, np.integer, np.floating)) or not z_min >= 0:
        raise ValueError(f"z_min must be a number >= 0, got {z_min!r}")
    if redshift not in REDSHIFTS:
        raise ValueError(f"redshift must be one of {tuple(REDSHIFTS)}, got {redshift!r}")
    source = pantheon_plus_path(path, sha256=sha256, timeout=timeout)
    t = read_table(source, REQUIRED_COLUMNS + REDSHIFTS[redshift])
    n_rows = len(t["CID"])
    for name, lo, hi in (("RA", 0.0, 360.0), ("DEC", -90.0, 90.0)):
        bad = (t[name] < lo) | (t[name] > hi)
        if np.any(bad):
            line = t["line"][np.argmax(bad)]
            raise ValueError(f"{source}:{line}: column {name} out of [{lo}, {hi}] degrees")

    above = t[redshift] > z_min
    keep = above & ~(t["IS_CALIBRATOR"] == 1) if exclude_calibrators else above
    if not np.any(keep):
        raise ValueError(f"{source}: no supernova left after the cuts ({redshift} > z_min={z_min})")
    rows = np.flatnonzero(keep)
    report = CutReport(
        n_rows=n_rows,
        n_below_z_min=int(np.sum(~above)),
        n_calibrators=int(np.sum(above & ~keep)),
        n_kept=int(rows.size),
        n_unique=int(np.unique(t["CID"][rows]).size),
        redshift=redshift,
    )

    cov = None
    if covariance is None:
        if np.any(t["MU_SH0ES_ERR_DIAG"][rows] <= 0):
            k = rows[np.argmax(t["MU_SH0ES_ERR_DIAG"][rows] <= 0)]
            raise ValueError(f"{source}:{t['line'][k]}: column MU_SH0ES_ERR_DIAG must be > 0 "
                             f"(got {t['MU_SH0ES_ERR_DIAG'][k]})")
        warn_diagonal_fallback(stacklevel=3)
    else:
        if isinstance(covariance, (str, Path)):
            full, name = load_covariance(covariance, n_rows), str(covariance)
        else:
            full, name = np.asarray(covariance, dtype=np.float64), "covariance array"
            if full.shape != (n_rows, n_rows):
                raise ValueError(f"{name}: shape {full.shape} but the table {source} has {n_rows} rows")
            check_covariance(full, name)
        cov = full[np.ix_(rows, rows)]
        cholesky(cov, f"{name} (after the cuts)")  # fail here, not inside training

    return SupernovaSample(
        cid=t["CID"][rows], survey=t["IDSURVEY"][rows],
        z_hd=t["zHD"][rows], z_hd_err=t["zHDERR"][rows],
        z_hel=t["zHEL"][rows], z_hel_err=t["zHELERR"][rows],
        m_b_corr=t["m_b_corr"][rows], m_b_corr_err=t["m_b_corr_err_DIAG"][rows],
        mu=t["MU_SH0ES"][rows], mu_err=t["MU_SH0ES_ERR_DIAG"][rows],
        ceph_dist=t["CEPH_DIST"][rows], is_calibrator=t["IS_CALIBRATOR"][rows] == 1,
        ra=t["RA"][rows], dec=t["DEC"][rows], direction=unit_vector(t["RA"][rows], t["DEC"][rows]),
        cov=cov, row=rows, report=report, source=str(source),
        z_cmb=t["zCMB"][rows] if "zCMB" in t else None, z_cmb_err=t["zCMBERR"][rows] if "zCMBERR" in t else None,
        redshift=redshift,
    )
