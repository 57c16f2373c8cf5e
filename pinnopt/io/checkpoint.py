"""Checkpoints of the whole training state with orbax.

The state is one pytree (parameters, optimizer, constraint and balancer states, PRNG key,
step, guard counters). Restoring takes a freshly initialised state as the template, so the
restored pytree has exactly the structure (NamedTuples included) the compiled step expects.
"""
from __future__ import annotations

import os
import shutil
import time
import warnings
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp


def _inexact_leaves(tree: Any):
    for leaf in jax.tree_util.tree_leaves(tree):
        if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, np.inexact):
            yield np.asarray(leaf)


def all_finite(tree: Any) -> bool:
    """True when every inexact leaf of ``tree`` is finite."""
    return all(bool(np.all(np.isfinite(x))) for x in _inexact_leaves(tree))


def any_nan(tree: Any) -> bool:
    """True when some inexact leaf of ``tree`` holds a NaN (+inf is a legitimate sentinel in
    some method states, e.g. "no reference value yet")."""
    return any(bool(np.any(np.isnan(x))) for x in _inexact_leaves(tree))


class Checkpointer:
    """Save / restore training states under ``directory`` (keeps the newest ``max_to_keep``)."""

    def __init__(self, directory: str, max_to_keep: int = 3):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, state: Any, must_be_finite: Any = None) -> bool:
        """Write ``state`` at ``step``; refuses (returns False) when a leaf of ``state`` is NaN or a
        leaf of ``must_be_finite`` (by default all of ``state``) is not finite, so a broken state
        never replaces the last good checkpoint."""
        if any_nan(state) or not all_finite(state if must_be_finite is None else must_be_finite):
            return False
        self._manager.save(int(step), args=ocp.args.StandardSave(state), force=True)
        self._manager.wait_until_finished()
        return True

    def latest_step(self) -> Optional[int]:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, template: Any, step: Optional[int] = None) -> Any:
        """The state saved at ``step``, with ``template``'s tree structure.

        Without ``step``: the newest checkpoint that can be read. A newer one that cannot
        (damaged, partly written) is skipped with a ``RuntimeWarning`` naming it and the reason,
        and moved to ``<checkpoints>.skipped/`` so that the resumed run can save that step
        again. When none can be read, the error gives every checkpoint's reason.
        """
        if step is not None:
            return self._restore_step(template, step)
        steps = self.all_steps()
        if not steps:
            raise FileNotFoundError(f"no checkpoint found in {self.directory}")
        reasons = []
        for candidate in reversed(steps):
            try:
                restored = self._restore_step(template, candidate)
            except ValueError as err:
                reasons.append((candidate, err))
                continue
            for bad, err in reasons:
                moved = self._set_aside(bad)
                warnings.warn(f"checkpoint {self.directory}/{bad} could not be read and was skipped "
                              f"(moved to {moved}); resuming from step {candidate}. Reason: {err.__cause__ or err}",
                              RuntimeWarning, stacklevel=2)
            return restored
        detail = "; ".join(f"step {s}: {e.__cause__ or e}" for s, e in reasons)
        raise ValueError(f"no checkpoint in {self.directory} matches this problem and configuration "
                         f"or can be read ({detail})")

    def _restore_step(self, template: Any, step: int) -> Any:
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        try:
            restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as err:  # orbax raises several types for a mismatching or damaged tree
            raise ValueError(f"checkpoint {self.directory}/{step} does not match this problem and "
                             f"configuration, or is damaged: {err}") from err
        leaves = jax.tree_util.tree_leaves(restored)
        if len(leaves) != len(jax.tree_util.tree_leaves(template)):
            raise ValueError(f"checkpoint {self.directory}/{step} holds {len(leaves)} arrays, this "
                             f"configuration's state {len(jax.tree_util.tree_leaves(template))}")
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)

    def _set_aside(self, step: int) -> str:
        """Move an unreadable checkpoint out of the manager's folder; returns where it went."""
        target_root = self.directory.rstrip(os.sep) + ".skipped"
        os.makedirs(target_root, exist_ok=True)
        target = os.path.join(target_root, f"{step}-{int(time.time())}")
        source = os.path.join(self.directory, str(step))
        if os.path.exists(source):
            shutil.move(source, target)
        self._manager.reload()
        return target

    def close(self):
        self._manager.close()
