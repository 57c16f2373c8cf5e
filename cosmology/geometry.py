"""The curvature engine: Christoffel symbols, Riemann, Ricci and Einstein tensors of a metric.

Every function takes ``metric_fn: (4,) -> (4, 4)`` (coordinates t, x, y, z; signature
-,+,+,+; c = 1) and one point ``x: (4,)``; the caller vmaps over points. Conventions
(MTW/Carroll):

    Gamma^a_{bc} = 1/2 g^{ad} (d_b g_{dc} + d_c g_{db} - d_d g_{bc})
    R^r_{smn}    = d_m Gamma^r_{ns} - d_n Gamma^r_{ms} + Gamma^r_{ml} Gamma^l_{ns} - Gamma^r_{nl} Gamma^l_{ms}
    R_{sn}       = R^r_{srn},   R = g^{sn} R_{sn},   G_{mn} = R_{mn} - R g_{mn} / 2

The fast path (the default) needs only the metric's *jet* at the point, ``g``, ``dg`` and
``ddg``, and assembles the curvature from them in closed form: d_m Gamma comes from
d_m g^{ad} = -g^{ae} d_m g_{ef} g^{fd} and the second derivatives, never from
differentiating a Christoffel function. The Ricci tensor is contracted analytically, so
the Riemann tensor is not formed on the way to G. The jet of a plain function comes from
forward mode; a metric network can supply its own (``metric_fn.jet``, see
:mod:`cosmology.metric`), which propagates the first and second derivatives through the
network in one forward pass and visits only the 10 independent second-derivative
directions d_i d_j, i <= j.

``einstein_tensor_nested`` is the straightforward formulation (jacfwd of a Christoffel
function that itself calls jacfwd); it is kept as a cross-check and as the baseline of
``benchmarks/bench_einstein.py``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

MetricFn = Callable[[jax.Array], jax.Array]

DIM = 4
# The 10 independent second-derivative directions d_i d_j with i <= j, in this order.
PAIRS = tuple((i, j) for i in range(DIM) for j in range(i, DIM))
PAIR_INDEX = tuple(tuple(PAIRS.index((min(i, j), max(i, j))) for j in range(DIM)) for i in range(DIM))


class MetricJet(NamedTuple):
    """The metric and its first two coordinate derivatives at a point.

    ``g[a, b] = g_ab``, ``dg[a, b, c] = d_c g_ab``, ``ddg[a, b, c, d] = d_c d_d g_ab``.
    """

    g: jax.Array
    dg: jax.Array
    ddg: jax.Array


class Jet(NamedTuple):
    """A value with its derivatives along the 4 coordinates, kept as separate streams.

    ``first[i] = d_i value``; ``second[p] = d_i d_j value`` for ``(i, j) = PAIRS[p]``; a
    stream may be None, meaning identically zero. Streams are tuples of arrays (not one
    stacked array) so that pushing them through a network never creates a reduction over a
    "direction" axis, which XLA runs slowly on CPU, in the backward pass.
    """

    value: object
    first: tuple
    second: tuple


class Curvature(NamedTuple):
    """Everything the fast path computes at a point (lower indices unless stated)."""

    g: jax.Array  # g_ab
    g_inv: jax.Array  # g^ab
    christoffel: jax.Array  # Gamma^a_bc
    ricci_tensor: jax.Array  # R_ab
    ricci_scalar: jax.Array  # R
    einstein_tensor: jax.Array  # G_ab


# ----------------------------------------------------------------------------- algebra


def inverse_metric(g: jax.Array) -> jax.Array:
    """g^{ab} of a 4x4 matrix by cofactors (Laplace expansion in 2x2 minors).

    Elementwise arithmetic only, so it vectorises over points without a batched LAPACK
    call per 4x4 matrix; accurate to ~cond(g) * eps like any direct inverse.
    """
    a = [[g[i, j] for j in range(DIM)] for i in range(DIM)]  # index once: each g[i, j] is an op
    s0 = a[0][0] * a[1][1] - a[1][0] * a[0][1]
    s1 = a[0][0] * a[1][2] - a[1][0] * a[0][2]
    s2 = a[0][0] * a[1][3] - a[1][0] * a[0][3]
    s3 = a[0][1] * a[1][2] - a[1][1] * a[0][2]
    s4 = a[0][1] * a[1][3] - a[1][1] * a[0][3]
    s5 = a[0][2] * a[1][3] - a[1][2] * a[0][3]
    c5 = a[2][2] * a[3][3] - a[3][2] * a[2][3]
    c4 = a[2][1] * a[3][3] - a[3][1] * a[2][3]
    c3 = a[2][1] * a[3][2] - a[3][1] * a[2][2]
    c2 = a[2][0] * a[3][3] - a[3][0] * a[2][3]
    c1 = a[2][0] * a[3][2] - a[3][0] * a[2][2]
    c0 = a[2][0] * a[3][1] - a[3][0] * a[2][1]
    det = s0 * c5 - s1 * c4 + s2 * c3 + s3 * c2 - s4 * c1 + s5 * c0
    adj = [
        [a[1][1] * c5 - a[1][2] * c4 + a[1][3] * c3, -a[0][1] * c5 + a[0][2] * c4 - a[0][3] * c3,
         a[3][1] * s5 - a[3][2] * s4 + a[3][3] * s3, -a[2][1] * s5 + a[2][2] * s4 - a[2][3] * s3],
        [-a[1][0] * c5 + a[1][2] * c2 - a[1][3] * c1, a[0][0] * c5 - a[0][2] * c2 + a[0][3] * c1,
         -a[3][0] * s5 + a[3][2] * s2 - a[3][3] * s1, a[2][0] * s5 - a[2][2] * s2 + a[2][3] * s1],
        [a[1][0] * c4 - a[1][1] * c2 + a[1][3] * c0, -a[0][0] * c4 + a[0][1] * c2 - a[0][3] * c0,
         a[3][0] * s4 - a[3][1] * s2 + a[3][3] * s0, -a[2][0] * s4 + a[2][1] * s2 - a[2][3] * s0],
        [-a[1][0] * c3 + a[1][1] * c1 - a[1][2] * c0, a[0][0] * c3 - a[0][1] * c1 + a[0][2] * c0,
         -a[3][0] * s3 + a[3][1] * s1 - a[3][2] * s0, a[2][0] * s3 - a[2][1] * s1 + a[2][2] * s0],
    ]
    return jnp.stack([jnp.stack(row) for row in adj]) / det


def _check_point(x: jax.Array) -> None:
    if jnp.shape(x) != (DIM,):
        raise ValueError(f"x must be one point of shape (4,) (vmap over points), got shape {jnp.shape(x)}")


# ----------------------------------------------------------------------------- jets


# Jet arithmetic: exact first and second derivatives through products, sums and elementwise
# functions, stream by stream. A stream that is None is identically zero (the jet of a
# constant, or a function of t alone seen along x, y, z), so no work is spent on it.


def _times(a, b):
    return None if a is None or b is None else a * b


def _plus(*terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def jet_constant(value: jax.Array) -> Jet:
    """The jet of a constant (all derivative streams zero)."""
    return Jet(value, (None,) * DIM, (None,) * len(PAIRS))


def jet_sum(*jets: Jet) -> Jet:
    """Sum of jets (broadcasting)."""
    return Jet(
        _plus(*[j.value for j in jets]),
        tuple(_plus(*[j.first[i] for j in jets]) for i in range(DIM)),
        tuple(_plus(*[j.second[p] for j in jets]) for p in range(len(PAIRS))),
    )


def jet_scale(a: Jet, c) -> Jet:
    """c a for a constant c."""
    return Jet(a.value * c, tuple(_times(d, c) for d in a.first), tuple(_times(d, c) for d in a.second))


def jet_bilinear(a: Jet, b: Jet, op: Callable) -> Jet:
    """op(a, b) for a bilinear ``op`` (product, matrix product, outer product, ...), by Leibniz:

        op(a, b)_i  = op(a_i, b) + op(a, b_i)
        op(a, b)_ij = op(a_ij, b) + op(a, b_ij) + op(a_i, b_j) + op(a_j, b_i)
    """
    def term(x, y):
        return None if x is None or y is None else op(x, y)

    first = tuple(_plus(term(a.first[i], b.value), term(a.value, b.first[i])) for i in range(DIM))
    second = tuple(
        _plus(
            term(a.second[p], b.value),
            term(a.value, b.second[p]),
            term(a.first[i], b.first[j]),
            term(a.first[j], b.first[i]),
        )
        for p, (i, j) in enumerate(PAIRS)
    )
    return Jet(op(a.value, b.value), first, second)


def jet_product(a: Jet, b: Jet) -> Jet:
    """a b elementwise (with broadcasting): ``jet_bilinear`` with ``*``."""
    return jet_bilinear(a, b, jnp.multiply)


def jet_linear(a: Jet, fn: Callable) -> Jet:
    """fn(a) for a linear ``fn`` (reshape, placement, constant matrix): applied stream by stream."""
    apply = lambda d: None if d is None else fn(d)
    return Jet(fn(a.value), tuple(apply(d) for d in a.first), tuple(apply(d) for d in a.second))


def jet_map(a: Jet, f: Callable, df: Callable, ddf: Callable) -> Jet:
    """An elementwise function f with known f' and f'':

        f(a)_i = f'(a) a_i,   f(a)_ij = f'(a) a_ij + f''(a) a_i a_j
    """
    d1, d2 = df(a.value), ddf(a.value)
    first = tuple(_times(d1, d) for d in a.first)
    second = tuple(
        _plus(_times(d1, a.second[p]), _times(d2, _times(a.first[i], a.first[j]))) for p, (i, j) in enumerate(PAIRS)
    )
    return Jet(f(a.value), first, second)


def jet_concatenate(jets: Sequence[Jet], axis: int = 0) -> Jet:
    """Concatenate jets along an existing axis (zero streams become explicit zeros)."""
    def cat(values, streams):
        if all(d is None for d in streams):
            return None
        return jnp.concatenate([jnp.zeros_like(v) if d is None else d for v, d in zip(values, streams)], axis=axis)

    values = [j.value for j in jets]
    return Jet(
        jnp.concatenate(values, axis=axis),
        tuple(cat(values, [j.first[i] for j in jets]) for i in range(DIM)),
        tuple(cat(values, [j.second[p] for j in jets]) for p in range(len(PAIRS))),
    )


def time_jet(fn: Callable, t: jax.Array) -> Jet:
    """The coordinate jet of f(t), a function of the time coordinate alone: streams
    d_0 f = f'(t) and d_0 d_0 f = f''(t); all others zero."""
    d1 = lambda s: jax.jvp(fn, (s,), (jnp.ones_like(s),))[1]
    value, slope = jax.jvp(fn, (t,), (jnp.ones_like(t),))
    curvature_ = jax.jvp(d1, (t,), (jnp.ones_like(t),))[1]
    return Jet(value, (slope,) + (None,) * (DIM - 1), (curvature_,) + (None,) * (len(PAIRS) - 1))


def jet_to_metric_jet(jet: Jet) -> MetricJet:
    """Stack a metric's coordinate streams into ``MetricJet`` (derivative indices last)."""
    zero = jnp.zeros_like(jet.value)
    dense = lambda d: zero if d is None else d
    dg = jnp.stack([dense(d) for d in jet.first], axis=-1)
    rows = [jnp.stack([dense(jet.second[PAIR_INDEX[c][d]]) for d in range(DIM)], axis=-1) for c in range(DIM)]
    return MetricJet(jet.value, dg, jnp.stack(rows, axis=-2))


def metric_jet(metric_fn: MetricFn, x: jax.Array) -> MetricJet:
    """(g, d g, d d g) at ``x``.

    Uses ``metric_fn.jet(x)`` when the metric provides one (the metric networks do: one
    forward pass of value, 4 first and 10 second derivative streams). Otherwise nested
    forward mode on ``metric_fn``, which XLA deduplicates into primal + 4 + 16 streams.
    """
    _check_point(x)
    own = getattr(metric_fn, "jet", None)
    if own is not None:
        out = own(x)
        return jet_to_metric_jet(out) if isinstance(out, Jet) else MetricJet(*out)

    def value_and_first(y):
        dg = jax.jacfwd(metric_fn)(y)
        return dg, (metric_fn(y), dg)

    ddg, (g, dg) = jax.jacfwd(value_and_first, has_aux=True)(x)
    return MetricJet(g, dg, ddg)


# ----------------------------------------------------------------------------- assembly


def _christoffel_lower(dg: jax.Array) -> jax.Array:
    """Gamma_{dbc} = 1/2 (d_b g_dc + d_c g_db - d_d g_bc), first index lowered."""
    return 0.5 * (jnp.swapaxes(dg, 1, 2) + dg - jnp.transpose(dg, (2, 0, 1)))


def christoffel_from_jet(g_inv: jax.Array, dg: jax.Array) -> jax.Array:
    """Gamma^a_{bc} = g^{ad} Gamma_{dbc}."""
    return jnp.einsum("ad,dbc->abc", g_inv, _christoffel_lower(dg))


def christoffel_derivative_from_jet(g_inv: jax.Array, dg: jax.Array, ddg: jax.Array) -> jax.Array:
    """d_m Gamma^a_{bc} (index m last), assembled analytically.

        d_m Gamma^a_{bc} = d_m g^{ad} Gamma_{dbc} + 1/2 g^{ad} (d_m d_b g_dc + d_m d_c g_db - d_m d_d g_bc)
        d_m g^{ad}       = -g^{ae} d_m g_{ef} g^{fd}
    """
    d_g_inv = -jnp.einsum("ae,efm,fd->adm", g_inv, dg, g_inv)
    d_lower = 0.5 * (jnp.transpose(ddg, (0, 2, 1, 3)) + ddg - jnp.transpose(ddg, (2, 0, 1, 3)))
    return jnp.einsum("adm,dbc->abcm", d_g_inv, _christoffel_lower(dg)) + jnp.einsum(
        "ad,dbcm->abcm", g_inv, d_lower
    )


def riemann_from_jet(jet: MetricJet) -> jax.Array:
    """R^r_{smn} = d_m Gamma^r_{ns} - d_n Gamma^r_{ms} + Gamma^r_{ml} Gamma^l_{ns} - Gamma^r_{nl} Gamma^l_{ms}."""
    g_inv = inverse_metric(jet.g)
    gamma = christoffel_from_jet(g_inv, jet.dg)
    d_gamma = christoffel_derivative_from_jet(g_inv, jet.dg, jet.ddg)  # [r, n, s, m] = d_m Gamma^r_ns
    derivative_part = jnp.einsum("rnsm->rsmn", d_gamma)
    quadratic = jnp.einsum("rml,lns->rsmn", gamma, gamma)
    return derivative_part - jnp.swapaxes(derivative_part, 2, 3) + quadratic - jnp.swapaxes(quadratic, 2, 3)


def ricci_from_jet(g_inv: jax.Array, dg: jax.Array, ddg: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(R_{sn}, Gamma^a_{bc}) with the Riemann contraction done analytically.

        R_{sn} = d_r Gamma^r_{ns} - d_n Gamma^r_{rs} + Gamma^r_{rl} Gamma^l_{ns} - Gamma^r_{nl} Gamma^l_{rs}

    with, writing A^a_{bn} = g^{ad} d_n g_{db} (so Gamma^r_{rn} = A^r_{rn} / 2) and
    c_f = g^{re} d_r g_{ef},

        d_r Gamma^r_{ns} = -c_f g^{fd} Gamma_{dns} + 1/2 (X_{ns} + X_{sn} - g^{rd} d_r d_d g_{ns}),
                           X_{ns} = g^{rd} d_s d_r g_{dn}
        d_n Gamma^r_{rs} = 1/2 (-A^a_{bn} A^b_{as} + g^{rd} d_s d_n g_{dr}).
    """
    lower = _christoffel_lower(dg)
    gamma = jnp.einsum("ad,dbc->abc", g_inv, lower)
    a = jnp.einsum("ad,dbn->abn", g_inv, dg)
    trace_a = jnp.einsum("aan->n", a)
    c = jnp.einsum("rfr->f", a)
    x = jnp.einsum("rd,dnsr->ns", g_inv, ddg)
    box = jnp.einsum("rd,nsrd->ns", g_inv, ddg)
    y = jnp.einsum("rd,drsn->sn", g_inv, ddg)
    div_gamma = -jnp.einsum("f,fd,dns->ns", c, g_inv, lower) + 0.5 * (x + x.T - box)
    grad_trace = 0.5 * (y - jnp.einsum("abn,bas->ns", a, a))
    ricci = (
        div_gamma
        - grad_trace
        + 0.5 * jnp.einsum("l,lns->ns", trace_a, gamma)
        - jnp.einsum("rnl,lrs->ns", gamma, gamma)
    )
    return ricci, gamma


def curvature_from_jet(jet: MetricJet) -> Curvature:
    """Christoffel symbols, Ricci tensor and scalar and Einstein tensor from (g, dg, ddg)."""
    g_inv = inverse_metric(jet.g)
    ricci, gamma = ricci_from_jet(g_inv, jet.dg, jet.ddg)
    scalar = jnp.einsum("ab,ab->", g_inv, ricci)
    return Curvature(jet.g, g_inv, gamma, ricci, scalar, ricci - 0.5 * scalar * jet.g)


# ----------------------------------------------------------------------------- public API


def christoffel(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """Gamma^a_{bc} = 1/2 g^{ad}(d_b g_{dc} + d_c g_{db} - d_d g_{bc}), shape (4, 4, 4)."""
    _check_point(x)
    g, dg = metric_fn(x), jax.jacfwd(metric_fn)(x)
    return christoffel_from_jet(inverse_metric(g), dg)


def curvature(metric_fn: MetricFn, x: jax.Array) -> Curvature:
    """All of :class:`Curvature` at ``x`` from one metric jet (the fast path)."""
    return curvature_from_jet(metric_jet(metric_fn, x))


def riemann(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """R^r_{smn}, shape (4, 4, 4, 4), index order [r, s, m, n]."""
    return riemann_from_jet(metric_jet(metric_fn, x))


def ricci_tensor(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """R_{sn} = R^r_{srn}, shape (4, 4)."""
    return curvature(metric_fn, x).ricci_tensor


def ricci_scalar(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """R = g^{sn} R_{sn}, shape ()."""
    return curvature(metric_fn, x).ricci_scalar


def einstein_tensor(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """G_{mn} = R_{mn} - R g_{mn} / 2 (lower indices), shape (4, 4); the fast path."""
    return curvature(metric_fn, x).einstein_tensor


def kretschmann_scalar(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """K = R_{abcd} R^{abcd}; 48 M^2 / r^6 for Schwarzschild."""
    jet = metric_jet(metric_fn, x)
    g_inv = inverse_metric(jet.g)
    r_up = riemann_from_jet(jet)  # R^a_{bcd}
    r_down = jnp.einsum("ae,ebcd->abcd", jet.g, r_up)
    r_all_up = jnp.einsum("abcd,bf,cg,dh->afgh", r_up, g_inv, g_inv, g_inv)
    return jnp.einsum("abcd,abcd->", r_down, r_all_up)


# ----------------------------------------------------------------------------- nested reference


def christoffel_nested(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """Gamma^a_{bc} with jnp.linalg.inv and jacfwd: the straightforward formulation."""
    g = metric_fn(x)
    dg = jax.jacfwd(metric_fn)(x)  # [d, c, b] = d_b g_dc
    g_inv = jnp.linalg.inv(g)
    return 0.5 * (
        jnp.einsum("ad,dcb->abc", g_inv, dg)
        + jnp.einsum("ad,dbc->abc", g_inv, dg)
        - jnp.einsum("ad,bcd->abc", g_inv, dg)
    )


def riemann_nested(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """R^r_{smn} by differentiating the Christoffel function with jacfwd (nested forward mode)."""
    gamma = christoffel_nested(metric_fn, x)
    d_gamma = jax.jacfwd(lambda y: christoffel_nested(metric_fn, y))(x)  # [r, n, s, m] = d_m Gamma^r_ns
    return (
        jnp.einsum("rnsm->rsmn", d_gamma)
        - jnp.einsum("rmsn->rsmn", d_gamma)
        + jnp.einsum("rml,lns->rsmn", gamma, gamma)
        - jnp.einsum("rnl,lms->rsmn", gamma, gamma)
    )


def einstein_tensor_nested(metric_fn: MetricFn, x: jax.Array) -> jax.Array:
    """G_{mn} from the full Riemann tensor of ``riemann_nested``: the benchmark's baseline."""
    _check_point(x)
    ricci = jnp.einsum("rsrn->sn", riemann_nested(metric_fn, x))
    g = metric_fn(x)
    scalar = jnp.einsum("ab,ab->", jnp.linalg.inv(g), ricci)
    return ricci - 0.5 * scalar * g


__all__: Sequence[str] = (
    "DIM",
    "PAIRS",
    "Curvature",
    "Jet",
    "MetricJet",
    "christoffel",
    "christoffel_nested",
    "curvature",
    "curvature_from_jet",
    "einstein_tensor",
    "einstein_tensor_nested",
    "inverse_metric",
    "jet_constant",
    "jet_bilinear",
    "jet_concatenate",
    "jet_linear",
    "jet_map",
    "jet_product",
    "jet_scale",
    "jet_sum",
    "jet_to_metric_jet",
    "time_jet",
    "kretschmann_scalar",
    "metric_jet",
    "ricci_from_jet",
    "ricci_scalar",
    "ricci_tensor",
    "riemann",
    "riemann_from_jet",
    "riemann_nested",
)
