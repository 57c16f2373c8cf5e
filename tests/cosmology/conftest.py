"""Fixtures for the cosmology tests: the shared Pantheon+ copy and small hand-made tables.

The real table is found through the same override users have: $PINNOPT_DATA_DIR, else the
shared data folder next to the repository (``../shared/data``; tests may name it, library
code may not). Tests that need it are skipped, with the reason, when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FILENAME = "Pantheon+SH0ES.dat"


def shared_data_dir() -> Path:
    env = os.environ.get("PINNOPT_DATA_DIR")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def pantheon_dir() -> Path:
    """The folder holding the real Pantheon+SH0ES.dat (skips when it is not there)."""
    folder = shared_data_dir()
    if not (folder / FILENAME).is_file():
        pytest.skip(f"{FILENAME} not found in {folder}: set PINNOPT_DATA_DIR to a folder holding it")
    return folder


@pytest.fixture(scope="session")
def pantheon_file(pantheon_dir) -> Path:
    return pantheon_dir / FILENAME


@pytest.fixture
def no_data_env(monkeypatch, tmp_path):
    """No override and an empty cache under tmp_path: the loader must download (or fail)."""
    monkeypatch.delenv("PINNOPT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


# Columns of the hand-made tables: the ones the loader needs, in another order than the
# release, plus one it must ignore.
COLUMNS = ("CID", "IDSURVEY", "zHD", "zHDERR", "zCMB", "zHEL", "zHELERR", "m_b_corr",
           "m_b_corr_err_DIAG", "MU_SH0ES", "MU_SH0ES_ERR_DIAG", "CEPH_DIST", "IS_CALIBRATOR",
           "RA", "DEC")


def table_rows(n: int = 8, seed: int = 0) -> list[dict]:
    """n rows: redshifts spread over [0.005, 1.5] (the first below 0.01), row 2 a calibrator."""
    rng = np.random.default_rng(seed)
    z = np.geomspace(0.005, 1.5, n)
    rows = []
    for k in range(n):
        mu = 5 * np.log10(z[k] * 4283.0) + 25 + rng.normal(0, 0.1)
        rows.append({
            "CID": f"sn{k // 2}",  # pairs share a CID, like duplicates across surveys
            "IDSURVEY": 1 + k % 3, "zHD": z[k], "zHDERR": 1e-3, "zCMB": z[k],
            "zHEL": z[k] * 1.001, "zHELERR": 1e-5, "m_b_corr": mu - 19.253,
            "m_b_corr_err_DIAG": 0.1 + 0.01 * k, "MU_SH0ES": mu, "MU_SH0ES_ERR_DIAG": 0.1 + 0.01 * k,
            "CEPH_DIST": mu if k == 2 else -9, "IS_CALIBRATOR": int(k == 2),
            "RA": rng.uniform(0, 360), "DEC": rng.uniform(-90, 90),
        })
    return rows


def write_table(path: Path, rows: list[dict], columns=COLUMNS) -> Path:
    lines = [" ".join(columns)]
    lines += [" ".join(str(row[c]) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_cov(path: Path, matrix: np.ndarray, n: int | None = None) -> Path:
    n = matrix.shape[0] if n is None else n
    body = "\n".join(repr(float(v)) for v in np.asarray(matrix).ravel())
    path.write_text(f"{n}\n{body}\n")
    return path


@pytest.fixture
def small_table(tmp_path):
    """A valid 8-row table on disk, its rows, and a matching positive definite covariance."""
    rows = table_rows()
    rng = np.random.default_rng(1)
    a = rng.normal(size=(len(rows), len(rows)))
    cov = 0.01 * (a @ a.T / len(rows) + np.eye(len(rows)))
    return write_table(tmp_path / "table.dat", rows), rows, cov


@pytest.fixture
def tables():
    """The helpers above, for tests that build their own broken files (no conftest import)."""
    from types import SimpleNamespace
    return SimpleNamespace(rows=table_rows, write=write_table, write_cov=write_cov, columns=COLUMNS)
