"""pinnopt: constrained optimizers and loss balancers for physics-informed neural networks."""
from pinnopt import balancing, constraints, methods, nets, optimizers, pde, problems
from pinnopt.terms import Constraint, Objective, split_terms
from pinnopt.training import NonFiniteError, Result, TrainState, solve

__version__ = "0.1.0"
__all__ = ["Constraint", "NonFiniteError", "Objective", "Result", "TrainState", "balancing", "constraints",
           "methods", "nets", "optimizers", "pde", "problems", "solve", "split_terms"]
