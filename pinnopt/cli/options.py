"""``KEY=VALUE`` options of the command line (``-p dim=5``, ``--opt-arg bbi.delta_energy=2``) and
the argparse types of its numbers."""
from __future__ import annotations

import argparse
import ast
from typing import Optional, Sequence


def parse_assignments(items: Optional[Sequence[str]], what: str) -> dict:
    """``["lr=0.1", "weights={'bc': 1e5}"]`` -> ``{"lr": 0.1, "weights": {"bc": 100000.0}}``.

    Values are Python/JSON literals; anything else is kept as a string. Dashes in keys become
    underscores. An item without ``=`` is an error naming the option ``what``.
    """
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"error: {what} option {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        try:
            val = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            low = raw.strip().lower()
            val = {"true": True, "false": False, "none": None, "null": None}.get(low, raw)
        out[key] = val
    return out


def split_per_name(options: dict, names: Sequence[str], what: str, among: str) -> dict:
    """``{"[NAME.]key": value}`` -> ``{NAME: {key: value}}``: a key without ``NAME.`` goes to every
    name. Names left without options are dropped. A ``NAME`` not in ``names`` is an error naming
    ``what`` (the flag) and ``among`` (the flag that lists the names)."""
    out: dict = {n: {} for n in names}
    for key, val in options.items():
        target, _, option = key.rpartition(".")
        if target and target not in out:
            raise SystemExit(f"error: {what} {key}: {target!r} is not among {among} {','.join(names)}")
        for n in [target] if target else names:
            out[n][option] = val
    return {n: kw for n, kw in out.items() if kw}


def _integer(text: str, low: int, meaning: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {meaning}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {meaning}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (steps, chunk, runs)."""
    return _integer(text, 1, "an integer >= 1")


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (seed)."""
    return _integer(text, 0, "an integer >= 0")


__all__ = ["non_negative_int", "parse_assignments", "positive_int", "split_per_name"]
