"""pinnopt: constrained optimizers and loss balancers for physics-informed neural networks."""
from pinnopt import balancing, constraints, optimizers, problems
from pinnopt.training import NonFiniteError, Result, TrainState, solve
from pinnopt.terms import Constraint, Objective, split_terms

__version__ = "0.1.0"
__all__ = ["Constraint", "NonFiniteError", "Objective", "Result", "TrainState", "balancing", "constraints",
           "optimizers", "problems", "solve", "split_terms"]
