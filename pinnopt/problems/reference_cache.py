"""A disk cache for reference solutions: arrays computed once, keyed by the parameters that made them.

    cached_arrays(kind, key, compute) -> {name: np.ndarray}

looks for ``<cache dir>/<kind>-<digest>.npz`` where the digest is a SHA-256 of ``kind``,
``key`` (a JSON-able dict of every parameter the result depends on) and ``FORMAT``. A file is
trusted only when it loads, names the same kind and key, holds the same arrays it was written
with (a SHA-256 over names, dtypes, shapes and bytes stored beside them) and every array is
finite; otherwise the arrays are recomputed (with a warning that says why) and the file is
rewritten. Writes go to a temporary file renamed into place, so a reader never sees half a
file; a cache that cannot be written is a warning, never an error.

The cache dir is ``$PINNOPT_CACHE_DIR`` if set (the empty string turns the disk cache off),
else ``$XDG_CACHE_HOME/pinnopt``, else ``~/.cache/pinnopt``. The problems keep an in-process
``functools.lru_cache`` in front of this, so a process reads a file at most once.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np

FORMAT = 1  # bump when the layout of the files changes
_META = "__meta__"


def cache_dir() -> Optional[Path]:
    """Where reference solutions are kept, or None when the disk cache is off (PINNOPT_CACHE_DIR="")."""
    env = os.environ.get("PINNOPT_CACHE_DIR")
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pinnopt"


def _digest(kind: str, key: dict) -> str:
    text = json.dumps({"kind": kind, "key": key, "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _checksum(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cache_path(kind: str, key: dict) -> Optional[Path]:
    """The file that holds (or will hold) the arrays of ``kind`` with ``key``; None without a cache dir."""
    root = cache_dir()
    return None if root is None else root / f"{kind}-{_digest(kind, key)}.npz"


def _read(path: Path, kind: str, key: dict) -> dict:
    """The arrays stored at ``path``, or an exception that says why they cannot be trusted."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: np.array(data[name]) for name in data.files if name != _META}
        meta = json.loads(str(data[_META]))
    if meta.get("kind") != kind or meta.get("key") != json.loads(json.dumps(key)):
        raise ValueError("the file was written for other parameters")
    if meta.get("checksum") != _checksum(arrays):
        raise ValueError("checksum mismatch")
    bad = [name for name, a in arrays.items() if a.dtype.kind in "fc" and not np.all(np.isfinite(a))]
    if bad:
        raise ValueError(f"non-finite values in {bad}")
    return arrays


def _write(path: Path, kind: str, key: dict, arrays: dict) -> None:
    meta = json.dumps({"kind": kind, "key": key, "checksum": _checksum(arrays)}, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, **{_META: np.array(meta)})
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cached_arrays(kind: str, key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()`` (a dict of arrays), read from the disk cache when a trustworthy copy is there.

    Args:
      kind: a short name of what is computed (part of the file name), e.g. "allen_cahn".
      key: every parameter the result depends on, JSON-able (floats are stored exactly).
      compute: () -> {name: array}; called when there is no file, or the file is not trusted.

    Returns:
      {name: np.ndarray}, read-only.
    """
    if not kind.replace("_", "").isalnum():
        raise ValueError(f"kind must be letters, digits and underscores, got {kind!r}")
    path = cache_path(kind, key)
    arrays = None
    if path is not None and path.exists():
        try:
            arrays = _read(path, kind, key)
        except Exception as err:  # any unreadable or untrusted file is recomputed, never used
            warnings.warn(f"reference cache {path} not used ({type(err).__name__}: {err}); recomputing",
                          RuntimeWarning, stacklevel=2)
    if arrays is None:
        arrays = {name: np.asarray(a) for name, a in compute().items()}
        if _META in arrays:
            raise ValueError(f"{_META!r} is a reserved array name")
        if path is not None:
            try:
                _write(path, kind, key, arrays)
            except OSError as err:
                warnings.warn(f"reference cache {path} not written ({err})", RuntimeWarning, stacklevel=2)
    for a in arrays.values():
        a.setflags(write=False)
    return arrays
