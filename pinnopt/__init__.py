"""pinnopt: constrained optimizers and loss balancers for physics-informed neural networks."""
from pinnopt import optimizers, problems
from pinnopt.terms import Constraint, Objective, split_terms

__version__ = "0.1.0"
__all__ = ["Constraint", "Objective", "split_terms", "optimizers", "problems"]
