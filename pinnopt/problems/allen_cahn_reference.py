"""The Allen-Cahn reference: Fourier pseudo-spectral in x, ETDRK4 in time (float64 NumPy).

    u_t = d u_xx + r u - r u^3,   x in [-1, 1) periodic,   u(0, x) = x^2 cos(pi x).

On n grid points x_j = -1 + 2 j / n the real FFT gives coefficients v_m, m = 0..n/2, of
wavenumbers k_m = pi m (period 2). The linear part is diagonal, v_t = L v + N(v) with
L = r - d k^2 and N(v) = -r FFT(u^3). Exponential time differencing, fourth order (Cox &
Matthews 2002, in the form of Kassam & Trefethen 2005, "Fourth-order time-stepping for stiff
PDEs", their code kursiv.m):

    a = E2 v + Q N(v),   b = E2 v + Q N(a),   c = E2 a + Q (2 N(b) - N(v)),
    v <- E v + f1 N(v) + 2 f2 (N(a) + N(b)) + f3 N(c),

with E = exp(h L), E2 = exp(h L / 2), and Q, f1, f2, f3 the phi-functions of h L, e.g.
f1 = h (-4 - z + e^z (4 - 3 z + z^2)) / z^3 at z = h L. Their direct formulas cancel
catastrophically for small |z|, so each is the mean over ``contour`` points z + e^{i theta}
on a circle of radius 1 around z (the function is analytic there: a contour integral by the
trapezoidal rule, exponentially accurate in the number of points).

A real u has u(x) = Re sum_m a_m c_m e^{i pi m (x + 1)} with c = v / n, a_0 = a_{n/2} = 1 and
a_m = 2 otherwise: the trigonometric interpolant, which ``evaluate_reference`` evaluates at
any x (spectral interpolation); in t it interpolates between snapshots with cubics (4 points).
"""
from __future__ import annotations

import numpy as np

_GRID_LIMIT = 4_000_000  # entries of the arrays of the one-product path (points on a grid)


def _phi_functions(z: np.ndarray, dt: float, contour: int):
    """Q, f1, f2, f3 at z = dt L (real, any sign) by the contour mean (module docstring)."""
    roots = np.exp(1j * np.pi * (np.arange(1, contour + 1) - 0.5) / contour)
    lr = z[:, None] + roots[None, :]
    ez = np.exp(lr)
    q = dt * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=1))
    f1 = dt * np.real(np.mean((-4 - lr + ez * (4 - 3 * lr + lr**2)) / lr**3, axis=1))
    f2 = dt * np.real(np.mean((2 + lr + ez * (lr - 2)) / lr**3, axis=1))
    f3 = dt * np.real(np.mean((-4 - 3 * lr - lr**2 + ez * (4 - lr)) / lr**3, axis=1))
    return q, f1, f2, f3


def allen_cahn_reference(modes: int = 4096, dt: float = 1e-3, t_end: float = 1.0, out_every: float = 1e-3,
                         diffusion: float = 1e-4, reaction: float = 5.0, contour: int = 64,
                         initial=None) -> dict:
    """Integrate u_t = d u_xx + r (u - u^3) with ETDRK4 and return snapshots of its coefficients.

    Args:
      modes: grid points n in x (even); the real FFT has n/2 + 1 coefficients.
      dt: the time step; ``t_end`` and ``out_every`` must be whole multiples of it.
      t_end: the final time.
      out_every: spacing of the stored snapshots.
      diffusion, reaction: d and r.
      contour: points on the circle of the phi-function means.
      initial: u(0, x) as a function of a NumPy array (default x^2 cos(pi x)).

    Returns:
      {"t": (S,) snapshot times 0, out_every, ..., t_end, "coeffs": (S, n/2 + 1) complex
      c = rfft(u) / n at those times}, float64 / complex128.
    """
    if modes < 4 or modes % 2:
        raise ValueError(f"modes must be an even integer >= 4, got {modes!r}")
    steps, every = round(t_end / dt), round(out_every / dt)
    if steps < 1 or every < 1 or abs(steps * dt - t_end) > 1e-9 * t_end or abs(every * dt - out_every) > 1e-9 * out_every \
            or steps % every:
        raise ValueError(f"t_end={t_end!r} and out_every={out_every!r} must be whole multiples of dt={dt!r}, "
                         "t_end of out_every")
    x = -1.0 + 2.0 * np.arange(modes) / modes
    k = np.pi * np.arange(modes // 2 + 1)
    lin = reaction - diffusion * k**2
    e, e2 = np.exp(dt * lin), np.exp(dt * lin / 2)
    q, f1, f2, f3 = _phi_functions(dt * lin, dt, contour)

    def nonlinear(v):
        u = np.fft.irfft(v, modes)
        return -reaction * np.fft.rfft(u**3)

    u0 = initial(x) if initial is not None else x**2 * np.cos(np.pi * x)
    v = np.fft.rfft(u0)
    out = [v]
    for i in range(1, steps + 1):
        nv = nonlinear(v)
        a = e2 * v + q * nv
        na = nonlinear(a)
        b = e2 * v + q * na
        nb = nonlinear(b)
        c = e2 * a + q * (2 * nb - nv)
        v = e * v + f1 * nv + 2 * f2 * (na + nb) + f3 * nonlinear(c)
        if i % every == 0:
            out.append(v)
    return {"t": np.arange(len(out)) * out_every, "coeffs": np.array(out) / modes}


def _lagrange_weights(p: np.ndarray) -> np.ndarray:
    """Weights of the cubic through nodes 0, 1, 2, 3 at positions ``p`` (M,) -> (M, 4)."""
    nodes = np.arange(4.0)
    w = np.ones(p.shape + (4,))
    for i in range(4):
        for j in range(4):
            if i != j:
                w[:, i] *= (p - nodes[j]) / (nodes[i] - nodes[j])
    return w


def _coeffs_at(t_snap: np.ndarray, coeffs: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Coefficients at times ``t`` (M,): cubic in t through the 4 nearest snapshots (exact at a snapshot)."""
    if len(t_snap) < 4:
        raise ValueError("at least 4 snapshots are needed to interpolate in t")
    h = t_snap[1] - t_snap[0]
    pos = (t - t_snap[0]) / h
    base = np.clip(np.floor(pos).astype(int) - 1, 0, len(t_snap) - 4)
    w = _lagrange_weights(pos - base)
    # A time on a snapshot gets weight 1 there and 0 elsewhere up to rounding (1e-16).
    return sum(w[:, i, None] * coeffs[base + i] for i in range(4))


def evaluate_reference(t_snap: np.ndarray, coeffs: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The reference u at ``points`` (N, 2) of (t, x) -> (N,) float64: spectral in x, cubic in t.

    Times outside [t_snap[0], t_snap[-1]] are a ValueError; x is taken modulo the period 2.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {points.shape}")
    t, x = points[:, 0], points[:, 1]
    tol = 1e-9 * max(1.0, abs(t_snap[-1]))
    if np.any(t < t_snap[0] - tol) or np.any(t > t_snap[-1] + tol):
        raise ValueError(f"t must lie in [{t_snap[0]}, {t_snap[-1]}], got [{t.min()}, {t.max()}]")
    n_half = coeffs.shape[1] - 1
    weight = np.full(n_half + 1, 2.0)
    weight[0] = weight[-1] = 1.0  # the mean and the Nyquist mode appear once
    m = np.arange(n_half + 1)
    t_u, t_inv = np.unique(t, return_inverse=True)
    x_u, x_inv = np.unique(x, return_inverse=True)
    if t_u.size * x_u.size <= _GRID_LIMIT and (t_u.size + x_u.size) * m.size <= _GRID_LIMIT:
        # a grid: one matrix product over the unique t and x
        c = _coeffs_at(t_snap, coeffs, t_u) * weight
        values = np.real(c @ np.exp(1j * np.pi * np.outer(m, x_u + 1.0)))
        return values[t_inv, x_inv]
    out = np.empty(len(points))
    for start in range(0, len(points), 2048):
        sl = slice(start, start + 2048)
        c = _coeffs_at(t_snap, coeffs, t[sl]) * weight
        out[sl] = np.real(np.sum(c * np.exp(1j * np.pi * np.outer(x[sl] + 1.0, m)), axis=1))
    return out
