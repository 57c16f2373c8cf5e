"""The run directory: config.json, metrics.jsonl, checkpoints/, plots/, summary.json."""
from __future__ import annotations

import json
import math
import os
from typing import Any, Iterable, Optional

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Arrays and numpy scalars to plain Python; non-finite floats to strings JSON can carry."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = np.asarray(value)
        return to_jsonable(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return to_jsonable(value.item())
    return value


def jsonable_or_none(value: Any) -> Any:
    """``to_jsonable``, with anything JSON cannot carry (a function, a schedule) written as its repr."""
    value = to_jsonable(value)
    if isinstance(value, dict):
        return {k: jsonable_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable_or_none(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


class RunDir:
    """Paths and writers of one run directory (created, with its sub-folders, when first opened)."""

    @staticmethod
    def exists(path: str) -> bool:
        """Whether ``path`` holds a run: a config.json or a checkpoints folder."""
        return os.path.isfile(os.path.join(path, "config.json")) or os.path.isdir(os.path.join(path, "checkpoints"))

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        for sub in ("checkpoints", "plots"):
            os.makedirs(os.path.join(self.path, sub), exist_ok=True)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def checkpoints(self) -> str:
        return self.file("checkpoints")

    @property
    def plots(self) -> str:
        return self.file("plots")

    def write_json(self, name: str, data: dict) -> None:
        tmp = self.file(name + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(to_jsonable(data), fh, indent=2, sort_keys=True)
        os.replace(tmp, self.file(name))

    def read_json(self, name: str) -> dict:
        with open(self.file(name)) as fh:
            return json.load(fh)

    def append_metrics(self, rows: Iterable[dict]) -> None:
        with open(self.file("metrics.jsonl"), "a") as fh:
            for row in rows:
                fh.write(json.dumps(to_jsonable(row)) + "\n")

    def read_metrics(self, up_to_step: Optional[int] = None) -> list[dict]:
        return read_metrics(self.file("metrics.jsonl"), up_to_step)

    def truncate_metrics(self, up_to_step: int) -> list[dict]:
        """Drop rows written after ``up_to_step`` (a resumed run rewrites them); returns the kept rows."""
        rows = self.read_metrics(up_to_step)
        tmp = self.file("metrics.jsonl.tmp")
        with open(tmp, "w") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        os.replace(tmp, self.file("metrics.jsonl"))
        return rows


def read_metrics(path: str, up_to_step: Optional[int] = None) -> list[dict]:
    if not os.path.exists(path):
        return []
    rows = []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {n} is not valid JSON ({err})") from err
            if up_to_step is None or row.get("step", 0) <= up_to_step:
                rows.append(row)
    return rows
