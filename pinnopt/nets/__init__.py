"""Networks for PINNs (flax.linen).

``make_net(arch=...)`` is the builder problems call: "mlp" (``MLP``; ``PlainMLP`` with random
weight factorization or the time-periodic embedding), "modified_mlp" (Wang, Teng & Perdikaris
2021) or "pirate" (PirateNet, Wang, Li, Chen & Perdikaris 2024), all on the same input
embedding (periodic columns, an exactly time-periodic column, random Fourier features).
``make_mlp`` builds today's ``MLP`` unchanged (same params for the same key).

Modules: ``mlp`` (``MLP``, activations, the periodic embedding and Fourier features),
``layers`` (Dense with random weight factorization, the embedding, the gate), ``archs``
(``PlainMLP``, ``ModifiedMLP``, ``PirateNet``; their equations), ``build`` (``make_net``).
"""
from pinnopt.nets.archs import ARCHITECTURES, ModifiedMLP, PirateBlock, PirateNet, PlainMLP
from pinnopt.nets.build import make_net
from pinnopt.nets.layers import INITIALIZERS, Dense, Embedding, factorized_kernel, gate, rwf_init
from pinnopt.nets.mlp import (ACTIVATIONS, MLP, fourier_features, fourier_matrix, get_activation, make_mlp,
                              periodic_embedding)

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "INITIALIZERS", "MLP", "Dense", "Embedding", "ModifiedMLP",
           "PirateBlock", "PirateNet", "PlainMLP", "factorized_kernel", "fourier_features", "fourier_matrix",
           "gate", "get_activation", "make_mlp", "make_net", "periodic_embedding", "rwf_init"]
