"""cosmology: a pinnopt plugin for general-relativistic cosmology.

Modules: ``geometry`` (the curvature engine), ``kinematics`` (3+1 split: lapse, shift,
extrinsic curvature, Hubble rates, shear), ``energy`` (energy conditions of the effective
stress tensor) and ``metric`` (flax metric networks and backgrounds). ``conventions`` states
the units and the observer for all of them: c = H0 = 1, today at t = 0 with a(0) = 1, the
observer at the spatial origin.
"""
from cosmology import energy, geometry, kinematics, metric

__all__ = ["energy", "geometry", "kinematics", "metric"]
