"""The conventions every module of the plugin shares: units, the observer, the signature.

Code units: c = 1 and H0 = 1 (and G = 1 where kappa = 8 pi G appears). Times are in units of
the Hubble time 1/H0 (9.78/h Gyr), lengths in units of the Hubble length c/H0 (2998/h Mpc).
Today is t = 0 with a(0) = 1; the past is t < 0. The observer sits today at the spatial
origin, ``OBSERVER = (t, x, y, z) = (0, 0, 0, 0)``. The metric signature is (-,+,+,+).

Physical units enter in two places only: the distance modulus needs megaparsecs (a code
distance times c/H0 in Mpc, for some H0 in km/s/Mpc: ``cosmology.likelihood``), and a preset
may state its windows in a length unit of its own (``unit_mpc``, with the observer at
``t_observer``), converted with ``HUBBLE_LENGTH_MPC``, the code unit of length for H0 =
``REFERENCE_H0`` (``cosmology.presets.CosmologyConfig.to_code_time``).

This module imports nothing of the plugin, so every other module can import it.
"""
from __future__ import annotations

import math

import numpy as np

C_KM_S = 299792.458  # speed of light, km/s
H0 = 1.0  # the Hubble rate today, in code units (times in 1/H0, lengths in c/H0)
T_TODAY = 0.0  # the code time of today (a(T_TODAY) = 1)
OBSERVER = np.array([T_TODAY, 0.0, 0.0, 0.0], np.float32)  # today, at the spatial origin (code units)
KAPPA = 8.0 * math.pi  # Einstein's constant 8 pi G with G = c = 1
ETA = (-1.0, 1.0, 1.0, 1.0)  # the Minkowski metric diag(eta_AB), signature (-,+,+,+)

REFERENCE_H0 = 70.0  # km/s/Mpc: only converts a preset's length unit into code units
HUBBLE_LENGTH_MPC = C_KM_S / REFERENCE_H0  # the code unit of length, 4282.7 Mpc

__all__ = ["C_KM_S", "ETA", "H0", "HUBBLE_LENGTH_MPC", "KAPPA", "OBSERVER", "REFERENCE_H0", "T_TODAY"]
