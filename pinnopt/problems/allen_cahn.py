"""Allen-Cahn in 1-D, periodic: the hard PINN benchmark of Wight & Zhao (2020) and jaxpi.

    u_t - d u_xx + r (u^3 - u) = 0,   t in [0, 1],  x in [-1, 1] periodic,   d = 1e-4, r = 5,
    u(0, x) = x^2 cos(pi x).

The solution settles into plateaus u = +-1 joined by fronts of width about sqrt(d / (2 r))
~ 0.003. Points are (t, x). By default the network sees x through cos(pi k x), sin(pi k x)
(period 2), so it is exactly periodic and needs no boundary term.

Reference: Fourier pseudo-spectral in x, ETDRK4 in time (``allen_cahn_reference``). Its
accuracy is set by the grid, not the time step: u(0, .) is continuous but its periodic
extension has a kink at x = +-1 (u_x = -+2 on either side), whose coefficients decay only as
1/m^2 until diffusion smooths it (width sqrt(d t)). Measured against 8192 modes on the default
evaluation grid (relative L2, max |error| at t = 0.005, near the kink): 1024 modes 3.6e-6 and
4.4e-4, 2048 modes 8.7e-7 and 1.2e-4, 4096 modes 1.7e-7 and 2.3e-5 (about 2^-2 per doubling).
The time step hardly matters: dt = 1e-3 and 2.5e-4 differ by 1e-10. The default is 4096
modes and dt = 1e-3 (2.5-7 s on a shared 2-core CPU, then read from the disk cache, 33 MB);
the tests check both convergences and compare the integrator with scipy's DOP853.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pinnopt import pde
from pinnopt.problems import common, reference_cache
from pinnopt.problems.allen_cahn_reference import allen_cahn_reference, evaluate_reference
from pinnopt.terms import Objective

__all__ = ["AllenCahn", "allen_cahn_reference", "evaluate_reference", "make_allen_cahn", "residual"]

DIFFUSION, REACTION = 1e-4, 5.0
PERIOD = 2.0


def initial_value(x, xp=jnp):
    """u(0, x) = x^2 cos(pi x)."""
    return x**2 * xp.cos(np.pi * x)


@functools.lru_cache(maxsize=4)
def reference_snapshots(modes: int, dt: float, out_every: float, diffusion: float,
                        reaction: float) -> dict:
    """The ETDRK4 snapshots {"t", "coeffs"} for these settings, from memory, disk or computed."""
    key = {"modes": modes, "dt": dt, "out_every": out_every, "diffusion": diffusion, "reaction": reaction,
           "t_end": 1.0, "initial": "x^2 cos(pi x)"}
    return reference_cache.cached_arrays("allen_cahn", key, lambda: allen_cahn_reference(
        modes, dt, 1.0, out_every, diffusion, reaction))


def residual(u_fn: Callable[[jax.Array], jax.Array], points: jax.Array, diffusion: float = DIFFUSION,
             reaction: float = REACTION) -> jax.Array:
    """r = u_t - d u_xx + r (u^3 - u) at ``points`` (N, 2) of (t, x) -> (N,) (forward mode)."""
    u = pde.values(u_fn, points)
    return (pde.time_derivative(u_fn, points) - diffusion * pde.second_derivative(u_fn, points, 1)
            + reaction * (u**3 - u))


def ic_residual(u_fn: Callable[[jax.Array], jax.Array], points: jax.Array) -> jax.Array:
    """u(0, x) - x^2 cos(pi x) at ``points`` (N, 2) on t = 0 -> (N,)."""
    return pde.values(u_fn, points) - initial_value(points[:, 1])


def periodicity_residuals(u_fn: Callable[[jax.Array], jax.Array], t: jax.Array) -> tuple:
    """(u(t, -1) - u(t, 1), u_x(t, -1) - u_x(t, 1)) at times ``t`` (N,): both (N,)."""
    left = jnp.stack([t, -jnp.ones_like(t)], axis=-1)
    right = jnp.stack([t, jnp.ones_like(t)], axis=-1)
    return (pde.values(u_fn, left) - pde.values(u_fn, right),
            pde.derivative(u_fn, left, 1) - pde.derivative(u_fn, right, 1))


def space_time_grid(n_t: int, n_x: int) -> np.ndarray:
    """(t, x) on t = linspace(0, 1, n_t) x x = -1 + 2 j / n_x (x = 1 repeats -1), float32."""
    return common.tensor_grid(np.linspace(0.0, 1.0, n_t), -1.0 + 2.0 * np.arange(n_x) / n_x)


def _net(options: dict) -> nn.Module:
    periods = ((1, PERIOD),) if options["periodic"] else ()
    return common.make_net(options, periods)


@dataclasses.dataclass(frozen=True, eq=False)
class AllenCahn(common.FieldProblem):
    """u_t - d u_xx + r (u^3 - u) = 0, u(0, x) = x^2 cos(pi x), periodic in x; params = flax params.

    Terms: ``"pde"`` the residual at interior points (``Objective.of_residual``, coords (t, x));
    ``"ic"`` u(0, x) - x^2 cos(pi x) on t = 0, a point-wise equality Constraint (the default) or
    ``Objective.of_residual`` (option ``ic``); without the periodic embedding also ``"bc"``
    u(t, -1) - u(t, 1) and ``"bc_x"`` u_x(t, -1) - u_x(t, 1) (option ``bc``), coords (t, -1).
    ``evaluate`` gives rel_l2 against the ETDRK4 reference on a fixed grid.
    """

    net: nn.Module
    diffusion: float
    reaction: float
    n_points: int
    n_ic: int
    n_bc: int
    periodic: bool
    ic: str
    bc: str
    reference_settings: tuple  # (modes, dt, out_every)
    eval_points: np.ndarray
    eval_exact: np.ndarray
    options: dict
    name: str = "allen_cahn"

    def snapshots(self) -> dict:
        """The reference's ETDRK4 snapshots {"t", "coeffs"} (see ``allen_cahn_reference``)."""
        return reference_snapshots(*self.reference_settings, self.diffusion, self.reaction)

    def reference(self, points: np.ndarray) -> np.ndarray:
        snap = self.snapshots()
        return evaluate_reference(snap["t"], snap["coeffs"], points)

    def sample(self, key, step):
        """Fresh points each call (``step`` unused): uniform in [0, 1] x [-1, 1), on t = 0, and
        the times of the periodicity terms (only without the periodic embedding)."""
        k_in, k_ic, k_bc = jax.random.split(key, 3)
        x0 = jax.random.uniform(k_ic, (self.n_ic,), jnp.float32, -1.0, 1.0)
        batch = {"interior": pde.in_box(k_in, self.n_points, [0.0, -1.0], [1.0, 1.0]),
                 "initial": jnp.stack([jnp.zeros_like(x0), x0], axis=-1)}
        if not self.periodic:
            batch["t_boundary"] = jax.random.uniform(k_bc, (self.n_bc,), jnp.float32)
        return batch

    def terms(self, params, batch):
        u = self.u_fn(params)
        inner, initial = batch["interior"], batch["initial"]
        out = {"pde": Objective.of_residual(residual(u, inner, self.diffusion, self.reaction), inner),
               "ic": common.condition(self.ic, ic_residual(u, initial), initial)}
        if not self.periodic:
            tb = batch["t_boundary"]
            coords = jnp.stack([tb, -jnp.ones_like(tb)], axis=-1)
            gap, gap_x = periodicity_residuals(u, tb)
            out["bc"] = common.condition(self.bc, gap, coords)
            out["bc_x"] = common.condition(self.bc, gap_x, coords)
        return out

    def config(self):
        modes, dt, out_every = self.reference_settings
        return {"name": self.name, "diffusion": self.diffusion, "reaction": self.reaction,
                "n_points": self.n_points, "n_ic": self.n_ic, "n_bc": self.n_bc, "periodic": self.periodic,
                "ic": self.ic, "bc": self.bc, "reference_modes": modes, "reference_dt": dt,
                "reference_out_every": out_every, **self.options}


def make_allen_cahn(diffusion: float = DIFFUSION, reaction: float = REACTION, n_points: int = 2048,
                    n_ic: int = 256, n_bc: int = 256, periodic: bool = True, harmonics: int = 1,
                    ic: str = "constraint", bc: str = "constraint", width: int = 64, depth: int = 4,
                    activation: str = "tanh", fourier_features: int = 0, fourier_scale: float = 1.0,
                    n_eval_t: int = 201, n_eval_x: int = 512, reference_modes: int = 4096,
                    reference_dt: float = 1e-3, reference_out_every: float = 1e-3, arch: str = "mlp",
                    rwf: bool = False) -> AllenCahn:
    """Allen-Cahn (see the module docstring).

    Args:
      diffusion, reaction: d and r (1e-4 and 5 in the benchmark).
      n_points, n_ic, n_bc: points per ``sample``: interior, on t = 0, and times of the
        periodicity terms (used only when ``periodic=False``).
      periodic: embed x as cos(pi k x), sin(pi k x), k = 1..``harmonics`` (exactly 2-periodic,
        no boundary terms); ``False``: raw (t, x) with terms "bc" and "bc_x".
      ic, bc: "constraint" (point-wise equality, the default) or "objective" (squared).
      width, depth, activation: the network (``depth`` hidden layers or blocks of ``width``).
      arch, rwf: "mlp", "modified_mlp" or "pirate", and random weight factorization
        (``pinnopt.nets.make_net``).
      fourier_features, fourier_scale: random Fourier features of the embedded input (0: none).
      n_eval_t, n_eval_x: the fixed evaluation grid, t = linspace(0, 1, n_eval_t), x = -1 + 2 j / n_eval_x.
      reference_modes, reference_dt, reference_out_every: the ETDRK4 reference: grid points in
        x (even), time step, and spacing of the stored snapshots (a multiple of the step;
        times between snapshots are interpolated with cubics).
    """
    diffusion = common.check_real("diffusion", diffusion, positive=True)
    reaction = common.check_real("reaction", reaction)
    counts = {name: common.check_count(name, value) for name, value in
              (("n_points", n_points), ("n_ic", n_ic), ("n_bc", n_bc), ("n_eval_t", n_eval_t),
               ("n_eval_x", n_eval_x))}
    modes = common.check_count("reference_modes", reference_modes, 16)
    if modes % 2:
        raise ValueError(f"reference_modes must be even, got {reference_modes!r}")
    dt = common.check_real("reference_dt", reference_dt, positive=True)
    out_every = common.check_real("reference_out_every", reference_out_every, positive=True)
    for name, ratio in (("reference_out_every", out_every / dt), ("reference_dt", 1.0 / dt)):
        if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6 * ratio:
            raise ValueError(f"{name}: t = 1 and the snapshot spacing must be whole numbers of time "
                             f"steps, got reference_dt={reference_dt!r}, reference_out_every={reference_out_every!r}")
    if abs(1.0 / out_every - round(1.0 / out_every)) > 1e-6 / out_every:
        raise ValueError(f"reference_out_every must divide 1, got {reference_out_every!r}")
    if not isinstance(periodic, bool):
        raise ValueError(f"periodic must be True or False, got {periodic!r}")
    common.check_mode("ic", ic)
    common.check_mode("bc", bc)
    options = {"harmonics": harmonics, "width": width, "depth": depth, "activation": activation,
               "fourier_features": fourier_features, "fourier_scale": fourier_scale,
               "n_eval_t": n_eval_t, "n_eval_x": n_eval_x, "arch": arch, "rwf": rwf}
    net = _net({**options, "periodic": periodic})
    points = space_time_grid(counts["n_eval_t"], counts["n_eval_x"])
    settings = (modes, dt, out_every)
    snap = reference_snapshots(*settings, diffusion, reaction)
    exact = evaluate_reference(snap["t"], snap["coeffs"], points.astype(np.float64))
    return AllenCahn(net, diffusion, reaction, counts["n_points"], counts["n_ic"], counts["n_bc"], periodic,
                     ic, bc, settings, points, exact, options)
