"""The chunk loop: compiled chunks of steps, metrics rows, held-out checks, checkpoints, guards.

It knows nothing of names, registries or files: it is handed the compiled pieces and
callbacks, runs ``state`` to ``steps``, and returns the final state and, if the run had to
stop, why.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Callable, Optional
import time

import jax
import numpy as np


@dataclasses.dataclass
class LoopOptions:
    steps: int
    chunk: int
    log_every: int
    heldout_every: int
    checkpoint_every: int
    max_nonfinite: int
    progress: bool = False
    learning_rate: Optional[float] = None  # logged with the metrics when constant
    wait_for_devices: bool = False  # block on the whole state after each chunk (sharded runs)


def summarise_chunk(metrics: dict, step: int, heldout: dict, elapsed: float, n: int, log_every: int) -> list:
    """Rows for metrics.jsonl: one at each step that is a multiple of ``log_every``, and one at the chunk's end.

    Each row holds the metrics of its step, ``loss_min`` over the steps since the previous row,
    ``nonfinite`` counted over the same window, and the chunk's speed; the chunk's last row
    also carries the held-out evaluation when one was due.
    """
    metrics = {k: np.asarray(v) for k, v in metrics.items()}
    first = step - n  # steps in this chunk are first + 1 .. step
    ends = sorted({s - first - 1 for s in range(first + 1, step + 1) if s % log_every == 0} | {n - 1})
    rows, begin = [], 0
    for end in ends:
        row = {"step": first + end + 1}
        for k, v in metrics.items():
            row[k] = int(v[begin:end + 1].sum()) if k == "nonfinite" else float(v[end])
        window = metrics["loss"][begin:end + 1]
        row["loss_min"] = float(np.nanmin(window)) if np.isfinite(window).any() else float("nan")
        row["steps_per_second"] = n / max(elapsed, 1e-12)
        rows.append(row)
        begin = end + 1
    rows[-1].update({k: float(v) for k, v in heldout.items()})
    return rows


def _crossed(step: int, n: int, every: int) -> bool:
    """Whether a chunk that ended at ``step`` after ``n`` steps passed a multiple of ``every``."""
    return step // every != (step - n) // every


def _postfix(row: dict) -> dict:
    post = {"loss": f"{row['loss']:.3e}"}
    viol = [v for k, v in row.items() if k.startswith("violation/")]
    if viol:
        post["viol"] = f"{max(viol):.2e}"
    held = [v for k, v in row.items() if k.startswith("heldout_max_violation/")]
    if held:
        post["heldout_max"] = f"{max(held):.2e}"
    return post


def run_chunks(state, options: LoopOptions, *, run_chunk: Callable, heldout: Callable[[object, int], dict],
               on_rows: Callable[[list], None], diagnose: Callable[[object], list],
               save: Optional[Callable[[int, object], None]] = None,
               should_stop: Optional[Callable[[dict], Optional[str]]] = None):
    """Advance ``state`` to ``options.steps``; returns ``(state, error or None, stopped early: reason or None)``.

    ``run_chunk(state, n) -> (state, metrics)`` runs n compiled steps; ``heldout(state, step)``
    evaluates on fresh points; ``on_rows(rows)`` receives each chunk's metrics rows;
    ``diagnose(state)`` gives warnings (each shown once); ``save(step, state)`` checkpoints;
    ``should_stop(metrics)``, given a chunk's per-step metrics, says why to end now (or None):
    the reason goes into the chunk's last row as ``phase_end``, with a held-out check and a
    checkpoint as at the end.
    """
    bar = None
    if options.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=options.steps, initial=int(state.step), unit="step", dynamic_ncols=True, leave=True)
    warned: set = set()
    error: Optional[str] = None
    stopped: Optional[str] = None
    try:
        while int(state.step) < options.steps:
            n = min(options.chunk, options.steps - int(state.step))
            t0 = time.perf_counter()
            state, metrics = run_chunk(state, n)
            if options.wait_for_devices:
                # Every device finishes the chunk before the next program (held-out check, next
                # chunk) starts anywhere: fetching the replicated metrics waits for one device only.
                # XLA's CPU runtime has stalled when a program's all-reduce started on one device
                # while another device was still busy with the previous program.
                state = jax.block_until_ready(state)
            metrics = jax.device_get(metrics)
            elapsed = time.perf_counter() - t0
            step = int(state.step)
            stopped = should_stop(metrics) if should_stop is not None else None
            last = step >= options.steps or stopped is not None
            due = _crossed(step, n, options.heldout_every) or last
            rows = summarise_chunk(metrics, step, heldout(state, step) if due else {}, elapsed, n,
                                   options.log_every)
            if options.learning_rate is not None:
                for r in rows:
                    r["learning_rate"] = options.learning_rate
            if stopped is not None:
                rows[-1]["phase_end"] = stopped
            on_rows(rows)
            for msg in diagnose(state):
                if msg not in warned:
                    warned.add(msg)
                    warnings.warn(msg, RuntimeWarning, stacklevel=3)
            if bar is not None:
                bar.update(n)
                bar.set_postfix(_postfix(rows[-1]), refresh=False)
            if int(state.nonfinite_run) >= options.max_nonfinite:
                error = (f"stopped at step {step}: the loss or the update was non-finite for "
                         f"{int(state.nonfinite_run)} steps in a row (max_nonfinite={options.max_nonfinite}); "
                         f"{int(state.nonfinite_total)} steps skipped in all. Lower the learning rate or "
                         f"check the problem's terms; the last good checkpoint is kept.")
                break
            if save is not None and (_crossed(step, n, options.checkpoint_every) or last):
                save(step, state)
            if stopped is not None:
                break
    finally:
        if bar is not None:
            bar.close()
    return state, error, stopped
