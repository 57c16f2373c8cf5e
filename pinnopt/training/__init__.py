"""Training: the state pytree, the pure step, the chunk loop, and ``solve`` which wires them to a run directory."""
from pinnopt.training.solve import (NonFiniteError, Result, TrainState, init_state, make_heldout, make_loss_fn,
                                    make_step, solve)

__all__ = ["NonFiniteError", "Result", "TrainState", "init_state", "make_heldout", "make_loss_fn", "make_step",
           "solve"]
