"""Data-parallel placement on several devices or hosts with JAX's own sharding machinery.

One 1-D ``jax.sharding.Mesh`` with the axis ``"batch"``. Inside the compiled step every array
of the sampled batch (and of the terms) whose leading dimension ``N`` is divisible by the
device count ``D`` is split along that dimension, ``N / D`` points per device; everything
else (parameters, optimizer, multipliers, penalty schedule, keys, scalars) is replicated::

    batch leaf (N, ...)  ->  NamedSharding(mesh, P("batch"))     when N % D == 0
    anything else        ->  NamedSharding(mesh, P())            (a full copy on each device)

The step's arithmetic is unchanged: a mean over the points is still ``(1/N) sum_x l(x)`` over
the global batch, and the compiler (GSPMD) turns it into per-device partial sums plus an
all-reduce, so losses, gradients, causal chunk sums and constraint violations are exact up to
the order of the floating-point additions. Parameters stay replicated, so the gradient of a
global mean is all-reduced as well and every device applies the same update.

Several hosts: call ``initialize_distributed()`` in every process before any JAX computation;
``jax.devices()`` then lists the devices of all hosts and a mesh over them spans the hosts.
Every process runs the same program; the batch is sampled inside the compiled step from the
replicated key, so no host has to load or send data to the others.
"""
from __future__ import annotations

import numbers
import os
import warnings
from typing import Any, Optional, Sequence, Union

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "batch"
Devices = Union[None, int, Sequence[jax.Device]]

# The environment variables read by ``initialize_distributed`` (JAX itself reads the first and
# JAX_LOCAL_DEVICE_IDS; the count and the rank it otherwise takes only from a cluster manager).
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


def make_mesh(devices: Devices) -> Optional[Mesh]:
    """The 1-D ``"batch"`` mesh for ``devices``, or None for the plain single-device run.

    ``devices`` is None (no mesh: the default device, as without sharding), an int ``D``
    (the first ``D`` of ``jax.devices()``, all hosts' devices after ``initialize_distributed``)
    or a sequence of ``jax.Device``. Raises ``ValueError`` naming ``devices`` for a count that
    is not a positive integer, more devices than are available, or a bad sequence.
    """
    if devices is None:
        return None
    available = jax.devices()
    if isinstance(devices, numbers.Integral) and not isinstance(devices, bool):
        count = int(devices)
        if count < 1:
            raise ValueError(f"devices must be a positive integer or a list of devices, got {devices!r}")
        if count > len(available):
            raise ValueError(f"devices={count} requested but only {len(available)} "
                             f"{available[0].platform} device(s) are available: {available}")
        chosen = available[:count]
    elif isinstance(devices, (list, tuple)):
        chosen = list(devices)
        if not chosen:
            raise ValueError("devices must not be an empty list")
        bad = [d for d in chosen if not isinstance(d, jax.Device)]
        if bad:
            raise ValueError(f"devices must hold jax.Device objects (see jax.devices()), got {bad[0]!r}")
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"devices lists a device twice: {chosen}")
        unknown = [d for d in chosen if d not in available]
        if unknown:
            raise ValueError(f"devices {unknown} are not among the {len(available)} available: {available}")
    else:
        raise ValueError(f"devices must be None, a positive integer or a list of jax.Device, got {devices!r}")
    return Mesh(np.asarray(chosen), (AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of ``mesh``."""
    return NamedSharding(mesh, P())


def split(mesh: Mesh) -> NamedSharding:
    """The leading axis cut into ``mesh.size`` equal pieces, one a device."""
    return NamedSharding(mesh, P(AXIS))


def point_sharding(shape: Sequence[int], mesh: Mesh) -> NamedSharding:
    """``split`` for an array of points (leading dimension divisible by the device count), else ``replicated``."""
    return split(mesh) if len(shape) >= 1 and shape[0] % mesh.size == 0 else replicated(mesh)


def shard_points(tree: Any, mesh: Optional[Mesh], what: str = "batch", uneven: str = "warn") -> Any:
    """Inside a compiled function: constrain every array leaf of ``tree`` to ``point_sharding``.

    The identity without a mesh. A leaf of ``N >= D`` points that cannot be split evenly:

    - ``uneven="warn"`` (the sampled batch): it stays replicated (correct, but not spread) and a
      warning (once per compilation) names it, ``what`` saying where it comes from, so the user
      can pick an ``N`` divisible by the device count;
    - ``uneven="free"`` (the terms): it is left to the compiler, silently. A term computed from
      split points is split already; one of another length belongs to the problem's own data
      (e.g. one residual per supernova), not to a batch the user sizes, so there is nothing to warn about.
    """
    if mesh is None:
        return tree
    if uneven not in ("warn", "free"):
        raise ValueError(f"uneven must be 'warn' or 'free', got {uneven!r}")

    def place(path, x):
        shape = np.shape(x)
        if len(shape) >= 1 and shape[0] >= mesh.size and shape[0] % mesh.size:
            if uneven == "free":
                return x
            warnings.warn(f"{what} leaf {jax.tree_util.keystr(path)} of shape {shape} is replicated on all "
                          f"{mesh.size} devices: its {shape[0]} points do not split evenly; choose a number "
                          f"of points divisible by {mesh.size}", RuntimeWarning, stacklevel=2)
        return jax.lax.with_sharding_constraint(x, point_sharding(shape, mesh))

    return jax.tree_util.tree_map_with_path(place, tree)


def replicate(tree: Any, mesh: Optional[Mesh]) -> Any:
    """Place every leaf of ``tree`` as a full copy on each device of ``mesh`` (identity without one).

    With several processes every process must pass the same values (true for a training state
    built from the same seed or restored from the same checkpoint); each then fills its own
    devices from its host copy.
    """
    if mesh is None:
        return tree
    sharding = replicated(mesh)
    if jax.process_count() == 1:
        return jax.block_until_ready(jax.device_put(tree, sharding))  # every copy in place before use

    def place(x):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


def is_primary() -> bool:
    """True in the one process that writes files shared by all (metrics, config, summary)."""
    return jax.process_index() == 0


def distributed_requested(environ: Optional[dict] = None) -> bool:
    """True when the environment names a multi-process run (coordinator address or process count)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get(ENV_COORDINATOR) or environ.get(ENV_NUM_PROCESSES))


def _env_int(environ, name: str) -> Optional[int]:
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


def initialize_distributed(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
                           process_id: Optional[int] = None, *, environ: Optional[dict] = None,
                           **kwargs) -> dict:
    """Join a multi-host run: ``jax.distributed.initialize`` with settings from the environment.

    Call it once in every process, before any other JAX computation. Arguments left as None
    are read from the environment::

        JAX_COORDINATOR_ADDRESS   host:port of process 0 (the same in every process)
        JAX_NUM_PROCESSES         number of processes (typically one per host)
        JAX_PROCESS_ID            this process's rank, 0 .. JAX_NUM_PROCESSES - 1
        JAX_LOCAL_DEVICE_IDS      optional: the local devices this process uses (read by JAX)

    Whatever is still unset JAX detects from a cluster manager (SLURM, Open MPI, Kubernetes,
    Cloud TPU), so under ``srun`` or ``mpirun`` nothing needs to be set. ``kwargs`` go to
    ``jax.distributed.initialize`` unchanged. Returns ``{"process_id", "num_processes",
    "local_devices", "global_devices"}`` as seen after joining.
    """
    environ = os.environ if environ is None else environ
    coordinator_address = coordinator_address or environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(environ, ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(environ, ENV_PROCESS_ID)
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes ({ENV_NUM_PROCESSES}) must be >= 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id ({ENV_PROCESS_ID}) must lie in 0 .. {num_processes - 1}, got {process_id}")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, **kwargs)
    return {"process_id": jax.process_index(), "num_processes": jax.process_count(),
            "local_devices": jax.local_device_count(), "global_devices": jax.device_count()}


__all__ = ["AXIS", "make_mesh", "replicated", "split", "point_sharding", "shard_points", "replicate",
           "is_primary", "distributed_requested", "initialize_distributed"]
