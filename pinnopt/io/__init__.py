"""What a run leaves on disk: the run directory, checkpoints of the whole state, figures."""
from pinnopt.io.checkpoint import Checkpointer
from pinnopt.io.rundir import RunDir, read_metrics, to_jsonable

__all__ = ["Checkpointer", "RunDir", "read_metrics", "to_jsonable"]
