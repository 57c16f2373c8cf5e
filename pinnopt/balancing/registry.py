"""The balancer registry, in a module of its own so a balancer can look others up by name
(``spatial``'s inner reduction) without importing the package that registers it."""
from pinnopt.registry import Registry

REGISTRY = Registry("balancer")
