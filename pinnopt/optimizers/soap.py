"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024).

For a parameter leaf G of rank >= 2 (a Flax Dense kernel is (in, out)), every dimension i whose
size is at most ``max_precond_dim`` gets a Kronecker factor F_i (d_i x d_i) and an orthogonal
basis Q_i; larger dimensions use the identity. With Q(X) the projection X x_1 Q_1^T x_2 Q_2^T ...
(for a matrix: Q_L^T G Q_R) and Q^T its inverse, one call with gradient G at step t does::

    m <- b1 m + (1 - b1) G                       (first moment, original coordinates)
    v <- b2 v + (1 - b2) Q(G)^2                  (second moment, eigenbasis coordinates)
    u = Q^T( Q(m) / (1 - b1^k) / (sqrt(v / (1 - b2^k)) + eps) )          (k = t, see below)
    update = -lr (u + weight_decay params)
    F_i <- s F_i + (1 - s) G_(i) G_(i)^T         (G_(i): G unfolded along dimension i;
                                                   for a matrix F_L = G G^T, F_R = G^T G)
    every precondition_frequency steps:  Q_i <- qr(F_i Q_i), the columns of Q_i (and the slices
                                          of v along i) first sorted by the estimated
                                          eigenvalues diag(Q_i^T F_i Q_i), largest first

with s = ``shampoo_beta`` (default b2). The first call (t = 0) only accumulates the factors and
sets Q_i to the eigenvectors of F_i (``eigh``, largest eigenvalue first); it moves nothing, so
the current gradient never enters its own projection, and k counts the later calls (k = t).
Leaves with no preconditioned dimension (biases, scalars, and any leaf whose dimensions all
exceed ``max_precond_dim``) are exactly ``optax.adam`` (k = t + 1, from the first call on), so
a problem with only such leaves is bit for bit ``optax.adam`` (or ``adamw`` with weight decay).

Paper: N. Vyas, D. Morwani, R. Zhao, I. Shapira, D. Brandfonbrener, L. Janson, S. Kakade,
"SOAP: Improving and Stabilizing Shampoo using Adam", arXiv:2409.11321 (2024); the step above
follows the authors' PyTorch reference (github.com/nikhilvyas/SOAP, ``soap.py``). Differences:

- Adam's epsilon as in optax: m_hat / (sqrt(v_hat) + eps); the reference computes
  lr sqrt(1 - b2^k) / (1 - b1^k) m / (sqrt(v) + eps), i.e. eps / sqrt(1 - b2^k) in this form;
- weight decay as optax's ``adamw`` (added to the direction before the learning rate, using the
  parameters before the step, also on the first call); the reference decays after the step;
- the first moment is kept in the original coordinates and projected every step (the reference
  keeps it projected and re-projects it when the basis changes: equal in exact arithmetic);
- 1-D leaves are never preconditioned (the reference's ``precondition_1d=False`` default), and
  the reference's ``merge_dims`` and ``normalize_grads`` options are not offered.

Jittable: the basis refresh (``eigh`` on the first call, QR every ``precondition_frequency``
calls, otherwise nothing) is one ``lax.switch`` over all leaves; the state has fixed shapes and
dtypes (a valid ``lax.scan`` carry).
"""
from __future__ import annotations

import numbers
from typing import Any, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import optax
from jax import lax


class ScaleBySoapState(NamedTuple):
    """State of ``scale_by_soap``. Leaves are split, in ``jax.tree.leaves`` order, into Adam leaves
    (no preconditioned dimension) and preconditioned leaves.

    count: calls so far (int32).
    adam: ``optax.ScaleByAdamState`` of the Adam leaves (a list), updated by
      ``optax.scale_by_adam`` itself (so these leaves are exactly optax's Adam).
    mu: per preconditioned leaf, the first moment m in the original coordinates.
    nu: per preconditioned leaf, the second moment v in the eigenbasis coordinates.
    factors: per preconditioned leaf a tuple with, per dimension, the factor F_i (d_i x d_i) or
      None (identity: a dimension above ``max_precond_dim``).
    eigvecs: the bases Q_i, same layout as ``factors``.
    """

    count: jax.Array
    adam: Any
    mu: tuple
    nu: tuple
    factors: tuple
    eigvecs: tuple


def _precond_dims(shape, max_precond_dim: int) -> tuple:
    """Which dimensions of a leaf get a factor: all of size <= max_precond_dim, for rank >= 2."""
    if len(shape) < 2:
        return (False,) * len(shape)
    return tuple(0 < d <= max_precond_dim for d in shape)


def _project(x, qs):
    """x x_1 Q_1^T x_2 Q_2^T ...: into the eigenbasis (identity where Q_i is None)."""
    for q in qs:
        x = jnp.tensordot(x, q, axes=([0], [0])) if q is not None else jnp.moveaxis(x, 0, -1)
    return x


def _project_back(x, qs):
    """The inverse of ``_project`` (the Q_i are orthogonal)."""
    for q in qs:
        x = jnp.tensordot(x, q, axes=([0], [1])) if q is not None else jnp.moveaxis(x, 0, -1)
    return x


def _gram(g, i):
    """G_(i) G_(i)^T: g contracted with itself over every dimension but i."""
    others = [j for j in range(g.ndim) if j != i]
    return jnp.tensordot(g, g, axes=(others, others))


def _eigenbasis(f):
    """Eigenvectors of a symmetric f, largest eigenvalue first."""
    return jnp.linalg.eigh(f)[1][:, ::-1].astype(f.dtype)


def _refresh_qr(factors, qs, v):
    """One power iteration + QR per factor, after sorting the columns (and v) by estimated eigenvalue."""
    new_qs = []
    for i, (f, q) in enumerate(zip(factors, qs)):
        if f is None:
            new_qs.append(None)
            continue
        estimate = jnp.einsum("ij,ik,kj->j", q, f, q)  # diag(Q^T F Q)
        order = jnp.argsort(-estimate)
        v = jnp.take(v, order, axis=i)
        q = q[:, order]
        new_qs.append(jnp.linalg.qr(f @ q)[0].astype(q.dtype))
    return tuple(new_qs), v


def _check_unit(name, value, *, closed_right=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            0 <= value <= 1 if closed_right else 0 <= value < 1):
        interval = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"soap: {name} must lie in {interval}, got {value!r}")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or int(value) != value or value < minimum:
        raise ValueError(f"soap: {name} must be an integer >= {minimum}, got {value!r}")


def scale_by_soap(
    b1: float = 0.95,
    b2: float = 0.95,
    eps: float = 1e-8,
    *,
    shampoo_beta: Optional[float] = None,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10_000,
) -> optax.GradientTransformation:
    """The SOAP direction u (see ``soap`` and the module docstring), without learning rate or decay."""
    _check_unit("b1", b1)
    _check_unit("b2", b2)
    if shampoo_beta is not None:
        _check_unit("shampoo_beta", shampoo_beta)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0:
        raise ValueError(f"soap: eps must be >= 0, got {eps!r}")
    _check_int("precondition_frequency", precondition_frequency, 1)
    _check_int("max_precond_dim", max_precond_dim, 0)
    frequency = int(precondition_frequency)
    max_dim = int(max_precond_dim)
    beta_f = b2 if shampoo_beta is None else shampoo_beta

    adam = optax.scale_by_adam(b1, b2, eps)

    def split(leaves):
        """(indices of Adam leaves, indices of preconditioned leaves), from the shapes alone."""
        dims = [_precond_dims(leaf.shape, max_dim) for leaf in leaves]
        return [i for i, d in enumerate(dims) if not any(d)], [i for i, d in enumerate(dims) if any(d)]

    def init_fn(params):
        leaves = jax.tree.leaves(params)
        plain, pre = split(leaves)
        factors, eigvecs = [], []
        for i in pre:
            shape, dtype = leaves[i].shape, leaves[i].dtype
            dims = _precond_dims(shape, max_dim)
            factors.append(tuple(jnp.zeros((d, d), dtype) if p else None for d, p in zip(shape, dims)))
            eigvecs.append(tuple(jnp.eye(d, dtype=dtype) if p else None for d, p in zip(shape, dims)))
        return ScaleBySoapState(
            count=jnp.zeros([], jnp.int32), adam=adam.init([leaves[i] for i in plain]),
            mu=tuple(jnp.zeros(leaves[i].shape, leaves[i].dtype) for i in pre),
            nu=tuple(jnp.zeros(leaves[i].shape, leaves[i].dtype) for i in pre),
            factors=tuple(factors), eigvecs=tuple(eigvecs))

    def update_fn(updates, state, params=None):
        del params
        grads, treedef = jax.tree.flatten(updates)
        plain, pre = split(grads)
        out = [None] * len(grads)
        adam_out, adam_state = adam.update([grads[i] for i in plain], state.adam)
        for i, u in zip(plain, adam_out):
            out[i] = u

        count = state.count
        first = count == 0
        k = jnp.maximum(count, 1)  # the first call moves nothing: its k is never used
        new_mu, new_nu, new_factors = [], [], []
        for i, m, v, fs, qs in zip(pre, state.mu, state.nu, state.factors, state.eigvecs):
            g = grads[i]
            m_new = optax.tree.update_moment(g, m, b1, 1)
            v_new = optax.tree.update_moment_per_elem_norm(_project(g, qs), v, b2, 2)
            m_hat = optax.tree.bias_correction(_project(m_new, qs), b1, k)
            v_hat = optax.tree.bias_correction(v_new, b2, k)
            u = _project_back(m_hat / (jnp.sqrt(v_hat) + eps), qs)
            out[i] = jnp.where(first, jnp.zeros_like(u), u).astype(g.dtype)
            new_mu.append(jnp.where(first, m, m_new).astype(m.dtype))
            new_nu.append(jnp.where(first, v, v_new).astype(v.dtype))
            new_factors.append(tuple(None if f is None else (beta_f * f + (1 - beta_f) * _gram(g, j)).astype(f.dtype)
                                     for j, f in enumerate(fs)))

        # The basis refresh, one switch for all leaves: 0 keep, 1 eigh (first call), 2 QR.
        eigvecs = tuple(state.eigvecs)
        if pre:
            def keep(op):
                return tuple((qs, v) for _, qs, v in op)

            def by_eigh(op):
                return tuple((tuple(None if f is None else _eigenbasis(f) for f in fs), v) for fs, _, v in op)

            def by_qr(op):
                return tuple(_refresh_qr(fs, qs, v) for fs, qs, v in op)

            branch = jnp.where(first, 1, jnp.where(count % frequency == 0, 2, 0))
            refreshed = lax.switch(branch, (keep, by_eigh, by_qr), tuple(zip(new_factors, eigvecs, new_nu)))
            eigvecs = tuple(qs for qs, _ in refreshed)
            new_nu = [v for _, v in refreshed]
        new_state = ScaleBySoapState(count=optax.safe_increment(count), adam=adam_state, mu=tuple(new_mu),
                                     nu=tuple(new_nu), factors=tuple(new_factors), eigvecs=eigvecs)
        return treedef.unflatten(out), new_state

    return optax.GradientTransformation(init_fn, update_fn)


def soap(
    learning_rate: Union[float, optax.Schedule] = 3e-3,
    b1: float = 0.95,
    b2: float = 0.95,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10_000,
    shampoo_beta: Optional[float] = None,
) -> optax.GradientTransformationExtraArgs:
    """SOAP: Adam run in the eigenbasis of Shampoo's Kronecker-factored preconditioner.

    Per leaf of rank >= 2, with Q(X) = Q_L^T X Q_R for a matrix (one basis per dimension of
    size <= max_precond_dim, the identity elsewhere) and k = t (the first call t = 0 only
    builds the basis)::

        m <- b1 m + (1 - b1) G;   v <- b2 v + (1 - b2) Q(G)^2
        update = -lr (Q^T(Q(m)/(1 - b1^k) / (sqrt(v/(1 - b2^k)) + eps)) + weight_decay params)
        L <- s L + (1 - s) G G^T;   R <- s R + (1 - s) G^T G          (s = shampoo_beta or b2)
        Q_L, Q_R <- eigenvectors of L, R at t = 0; qr(L Q_L), qr(R Q_R) every
                    precondition_frequency calls (columns sorted by estimated eigenvalue)

    Leaves of rank 0 or 1 (and leaves with no dimension <= max_precond_dim) are plain Adam:
    exactly ``optax.adam(learning_rate, b1, b2, eps)`` (``adamw`` with ``weight_decay``).

    Paper: Vyas et al., "SOAP: Improving and Stabilizing Shampoo using Adam", arXiv:2409.11321
    (2024), with the authors' PyTorch reference; the module docstring lists the differences.

    Args:
      learning_rate: lr, a float or an optax schedule (default 3e-3, the reference's).
      b1: decay of the first moment (default 0.95, the reference's).
      b2: decay of the second moment, and of the factors unless ``shampoo_beta`` (default 0.95).
      eps: added to sqrt(v_hat).
      weight_decay: decoupled weight decay (as ``optax.adamw``; the reference's default is 0.01,
        0 here: PINN losses usually want none).
      precondition_frequency: calls between basis refreshes (QR with one power iteration).
      max_precond_dim: dimensions larger than this use the identity (no d x d factor).
      shampoo_beta: decay of the factors L, R (None: b2).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` (extra keyword arguments are ignored).
    """
    if not callable(learning_rate) and (isinstance(learning_rate, bool) or not learning_rate > 0):
        raise ValueError(f"soap: learning_rate must be positive, got {learning_rate!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real) or not weight_decay >= 0:
        raise ValueError(f"soap: weight_decay must be >= 0, got {weight_decay!r}")
    parts = [scale_by_soap(b1, b2, eps, shampoo_beta=shampoo_beta, precondition_frequency=precondition_frequency,
                           max_precond_dim=max_precond_dim)]
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.scale_by_learning_rate(learning_rate))
    return optax.with_extra_args_support(optax.chain(*parts))


__all__ = ["soap", "scale_by_soap", "ScaleBySoapState"]
