"""Training: the state pytree, the pure step, the chunk loop, certificates, and ``solve`` which wires them."""
from pinnopt.training.certify import all_certified, certify, format_certificates
from pinnopt.training.loop import LoopOptions, run_chunks, summarise_chunk
from pinnopt.training.solve import SolveConfig, make_summary, solve
from pinnopt.training.state import NonFiniteError, Result, TrainState, check_evaluate, init_state
from pinnopt.training.step import make_heldout, make_loss_fn, make_step

__all__ = ["LoopOptions", "NonFiniteError", "Result", "SolveConfig", "TrainState", "all_certified", "certify",
           "check_evaluate", "format_certificates", "init_state", "make_heldout", "make_loss_fn", "make_step",
           "make_summary", "run_chunks", "solve", "summarise_chunk"]
