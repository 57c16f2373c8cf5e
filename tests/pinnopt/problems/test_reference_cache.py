"""The disk cache of reference solutions: hits, misses, corrupt and tampered files, no cache dir."""
import os

import numpy as np
import pytest

from pinnopt.problems import reference_cache as rc


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PINNOPT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


class Counter:
    """compute() for the cache that counts its calls and returns fresh arrays."""

    def __init__(self, scale=1.0):
        self.calls, self.scale = 0, scale

    def __call__(self):
        self.calls += 1
        return {"u": self.scale * np.linspace(0.0, 1.0, 7), "z": np.array([1 + 2j, 3 - 1j])}


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PINNOPT_CACHE_DIR", str(tmp_path))
    assert rc.cache_dir() == tmp_path
    monkeypatch.setenv("PINNOPT_CACHE_DIR", "")
    assert rc.cache_dir() is None and rc.cache_path("x", {}) is None
    monkeypatch.delenv("PINNOPT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert rc.cache_dir() == tmp_path / "xdg" / "pinnopt"


def test_second_call_reads_the_file_and_arrays_are_read_only(cache):
    compute = Counter()
    first = rc.cached_arrays("demo", {"n": 7, "nu": 0.1}, compute)
    again = rc.cached_arrays("demo", {"nu": 0.1, "n": 7}, compute)  # key order does not matter
    assert compute.calls == 1
    for name in ("u", "z"):
        np.testing.assert_array_equal(first[name], again[name])
        assert again[name].dtype == first[name].dtype and not again[name].flags.writeable
    assert len(list(cache.glob("demo-*.npz"))) == 1
    # another key is another file, computed anew
    other = rc.cached_arrays("demo", {"n": 7, "nu": 0.2}, Counter(2.0))
    assert other["u"][-1] == 2.0 and len(list(cache.glob("demo-*.npz"))) == 2


def test_a_corrupt_file_is_recomputed_with_a_warning_and_rewritten(cache):
    key = {"n": 7}
    rc.cached_arrays("demo", key, Counter())
    path = rc.cache_path("demo", key)
    path.write_bytes(path.read_bytes()[:50])  # truncated
    compute = Counter()
    with pytest.warns(RuntimeWarning, match="not used"):
        out = rc.cached_arrays("demo", key, compute)
    assert compute.calls == 1 and out["u"][-1] == 1.0
    assert rc.cached_arrays("demo", key, compute)["u"][-1] == 1.0 and compute.calls == 1  # rewritten, valid


def test_a_file_whose_arrays_were_changed_is_not_trusted(cache):
    key = {"n": 7}
    rc.cached_arrays("demo", key, Counter())
    path = rc.cache_path("demo", key)
    with np.load(path) as data:
        stored = {name: data[name] for name in data.files}
    stored["u"] = stored["u"] + 1e-12  # a valid file with other numbers under the old checksum
    np.savez(path, **stored)
    compute = Counter()
    with pytest.warns(RuntimeWarning, match="checksum"):
        out = rc.cached_arrays("demo", key, compute)
    assert compute.calls == 1 and out["u"][-1] == 1.0


def test_a_file_of_other_parameters_is_not_trusted(cache):
    rc.cached_arrays("demo", {"n": 7}, Counter())
    os.replace(rc.cache_path("demo", {"n": 7}), rc.cache_path("demo", {"n": 8}))
    compute = Counter(3.0)
    with pytest.warns(RuntimeWarning, match="other parameters"):
        assert rc.cached_arrays("demo", {"n": 8}, compute)["u"][-1] == 3.0


def test_non_finite_values_are_not_trusted(cache):
    def bad():
        return {"u": np.array([1.0, np.nan])}
    rc.cached_arrays("demo", {"n": 1}, bad)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        rc.cached_arrays("demo", {"n": 1}, bad)


def test_without_a_cache_dir_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("PINNOPT_CACHE_DIR", "")
    monkeypatch.chdir(tmp_path)
    compute = Counter()
    rc.cached_arrays("demo", {"n": 7}, compute)
    rc.cached_arrays("demo", {"n": 7}, compute)
    assert compute.calls == 2 and list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_dir_is_a_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")  # works as root too, unlike a read-only folder
    monkeypatch.setenv("PINNOPT_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="not written"):
        out = rc.cached_arrays("demo", {"n": 7}, Counter())
    assert out["u"][-1] == 1.0


def test_bad_kind_and_reserved_name(cache):
    with pytest.raises(ValueError, match="kind"):
        rc.cached_arrays("../x", {}, Counter())
    with pytest.raises(ValueError, match="reserved"):
        rc.cached_arrays("demo", {"reserved": True}, lambda: {rc._META: np.zeros(1)})
