"""The curvature engine against exact solutions (float64, 1e-10 relative) and its identities.

Oracles are independent of the engine: closed forms (Kretschmann 48 M^2/r^6, FLRW's
R = 6(a''/a + a'^2/a^2 + k/a^2), de Sitter's R_mn = Lambda g_mn) and sympy (Schwarzschild's
Riemann tensor component by component).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cosmology import geometry as geo

TOL = 1e-10


@pytest.fixture(autouse=True, scope="module")
def x64():
    with jax.enable_x64(True):
        yield


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def _report(family, params, x):
    """Every quantity the tests compare, for the metric ``family(params, .)`` at ``x``."""
    metric_fn = lambda y: family(params, y)
    curv = geo.curvature(metric_fn, x)
    return dict(
        g=curv.g,
        christoffel=geo.christoffel(metric_fn, x),
        riemann=geo.riemann(metric_fn, x),
        ricci=curv.ricci_tensor,
        scalar=curv.ricci_scalar,
        einstein=curv.einstein_tensor,
        kretschmann=geo.kretschmann_scalar(metric_fn, x),
    )


# One compilation per metric family (params are traced, so parametrised cases share it).
report = jax.jit(_report, static_argnums=0)


def eta(dtype):
    return jnp.diag(jnp.array([-1.0, 1.0, 1.0, 1.0], dtype))


MINKOWSKI = lambda x: eta(x.dtype)


# ----------------------------------------------------------------------------- flat space


def minkowski_spherical(params, x):
    """(t, r, theta, phi)."""
    one = jnp.ones_like(x[1])
    return jnp.diag(jnp.stack([-one, one, x[1] ** 2, (x[1] * jnp.sin(x[2])) ** 2]))


def skewed_chart(y):
    return jnp.stack([
        y[0] + 0.2 * jnp.sin(y[1]) + 0.1 * y[2] * y[3],
        y[1] + 0.1 * y[0] * y[2],
        y[2] + 0.05 * y[3] ** 2 + 0.3 * y[1],
        y[3] + 0.1 * y[1] * y[0],
    ])


def minkowski_skewed(params, y):
    """eta pulled back by a nonlinear change of coordinates x = chart(y): J^T eta J."""
    jac = jax.jacfwd(skewed_chart)(y)
    return jac.T @ eta(y.dtype) @ jac


def test_minkowski_in_spherical_coordinates_is_flat():
    out = report(minkowski_spherical, (), jnp.array([0.3, 2.0, 0.7, 1.1]))
    scale = np.max(np.abs(out["christoffel"])) ** 2
    assert scale > 0.5  # the chart is genuinely curvilinear
    for name in ("riemann", "ricci", "einstein"):
        assert np.max(np.abs(out[name])) <= TOL * scale, name


def test_minkowski_in_a_skewed_nonlinear_chart_is_flat():
    out = report(minkowski_skewed, (), jnp.array([0.4, -0.3, 0.5, 0.8]))
    assert np.count_nonzero(np.abs(out["g"] - np.diag([-1.0, 1, 1, 1])) > 1e-3) >= 8  # off-diagonal chart
    gamma = np.max(np.abs(out["christoffel"]))
    assert gamma > 0.05
    scale = max(gamma, gamma**2)
    for name in ("riemann", "ricci", "einstein", "kretschmann"):
        assert np.max(np.abs(out[name])) <= TOL * scale, name


# ----------------------------------------------------------------------------- Schwarzschild


def sympy_riemann_diagonal(diagonal, coords, point):
    """R^a_{bcd} of a diagonal metric, symbolically (independent of the engine), at a point."""
    n = len(coords)
    g = lambda a, b: diagonal[a] if a == b else 0
    gamma = [[[(sp.diff(g(a, c), coords[b]) + sp.diff(g(a, b), coords[c]) - sp.diff(g(b, c), coords[a]))
               / (2 * diagonal[a]) for c in range(n)] for b in range(n)] for a in range(n)]
    subs = dict(zip(coords, point))
    out = np.zeros((n, n, n, n))
    for r in range(n):
        for s in range(n):
            for m in range(n):
                for v in range(n):
                    expr = sp.diff(gamma[r][v][s], coords[m]) - sp.diff(gamma[r][m][s], coords[v])
                    expr += sum(gamma[r][m][l] * gamma[l][v][s] - gamma[r][v][l] * gamma[l][m][s] for l in range(n))
                    out[r, s, m, v] = float(expr.subs(subs))
    return out


def schwarzschild(params, x):
    """(t, r, theta, phi), mass params[0]."""
    f = 1 - 2 * params[0] / x[1]
    return jnp.diag(jnp.stack([-f, 1 / f, x[1] ** 2, (x[1] * jnp.sin(x[2])) ** 2]))


def test_schwarzschild_coordinates_vacuum_kretschmann_and_riemann_components():
    mass, point = 1.3, (0.5, 4.7, 1.1, 0.4)
    out = report(schwarzschild, jnp.array([mass]), jnp.array(point))
    r = point[1]
    assert rel_err(out["kretschmann"], 48 * mass**2 / r**6) <= TOL
    riemann_scale = np.max(np.abs(out["riemann"]))
    assert riemann_scale > 1e-3
    assert np.max(np.abs(out["ricci"])) <= TOL * riemann_scale
    assert np.max(np.abs(out["einstein"])) <= TOL * riemann_scale

    t, rr, th, ph = sp.symbols("t r theta phi")
    f = 1 - 2 * sp.Float(mass) / rr
    oracle = sympy_riemann_diagonal([-f, 1 / f, rr**2, rr**2 * sp.sin(th) ** 2], [t, rr, th, ph], point)
    assert np.count_nonzero(np.abs(oracle) > 1e-6) >= 24
    assert rel_err(out["riemann"], oracle) <= TOL


def kerr_schild(params, x):
    """g = eta + (2M/r) l l, l = (1, x/r, y/r, z/r): Schwarzschild, every component non-zero."""
    r = jnp.sqrt(x[1:] @ x[1:])
    ell = jnp.concatenate([jnp.ones(1, x.dtype), x[1:] / r])
    return eta(x.dtype) + 2 * params[0] / r * jnp.outer(ell, ell)


def test_schwarzschild_kerr_schild_cartesian_chart():
    mass, point = 0.8, jnp.array([0.3, 2.1, -1.4, 1.7])
    out = report(kerr_schild, jnp.array([mass]), point)
    r = float(jnp.linalg.norm(point[1:]))
    assert np.all(np.abs(out["g"]) > 1e-3)
    assert rel_err(out["kretschmann"], 48 * mass**2 / r**6) <= TOL
    scale = np.max(np.abs(out["riemann"]))
    assert np.max(np.abs(out["ricci"])) <= TOL * scale
    assert np.max(np.abs(out["einstein"])) <= TOL * scale


# ----------------------------------------------------------------------------- FLRW, de Sitter


def flrw_family(params, x):
    """-dt^2 + a^2 dx^2 / (1 + k r^2/4)^2 with a = 1 + c1 t + c2 sin(2t); params = (k, c1, c2)."""
    k, c1, c2 = params
    a = 1.0 + c1 * x[0] + c2 * jnp.sin(2 * x[0])
    s = a**2 / (1.0 + 0.25 * k * (x[1:] @ x[1:])) ** 2
    return jnp.diag(jnp.stack([-jnp.ones_like(s), s, s, s]))


@pytest.mark.parametrize("k", [0.0, 1.0, -1.0])
def test_flrw_ricci_scalar_and_components(k):
    c1, c2 = 0.5, 0.3
    point = jnp.array([0.7, 0.3, -0.2, 0.4])
    out = report(flrw_family, jnp.array([k, c1, c2]), point)
    t = float(point[0])
    a, da, dda = 1 + c1 * t + c2 * np.sin(2 * t), c1 + 2 * c2 * np.cos(2 * t), -4 * c2 * np.sin(2 * t)
    assert rel_err(out["scalar"], 6 * (dda / a + da**2 / a**2 + k / a**2)) <= TOL
    # R_00 = -3 a''/a; G_00 = 3 (a'^2 + k) / a^2 (g_00 = -1 in this chart).
    assert abs(out["ricci"][0, 0] + 3 * dda / a) <= TOL * np.max(np.abs(out["ricci"]))
    assert abs(out["einstein"][0, 0] - 3 * (da**2 + k) / a**2) <= TOL * np.max(np.abs(out["einstein"]))
    # Isotropy: G_ij = -(2 a''/a + (a'^2 + k)/a^2) g_ij and G_0i = 0.
    expected = -(2 * dda / a + (da**2 + k) / a**2) * np.asarray(out["g"])[1:, 1:]
    assert rel_err(out["einstein"][1:, 1:], expected) <= TOL
    assert np.max(np.abs(out["einstein"][0, 1:])) <= TOL * np.max(np.abs(out["einstein"]))


def de_sitter_flat(params, x):
    """a = exp(H t), k = 0."""
    s = jnp.exp(2 * params[0] * x[0])
    return jnp.diag(jnp.stack([-jnp.ones_like(s), s, s, s]))


def de_sitter_closed(params, x):
    """a = cosh(H t) / H, k = +1 (isotropic chart): the same spacetime in global slicing."""
    s = (jnp.cosh(params[0] * x[0]) / params[0]) ** 2 / (1.0 + 0.25 * (x[1:] @ x[1:])) ** 2
    return jnp.diag(jnp.stack([-jnp.ones_like(s), s, s, s]))


@pytest.mark.parametrize("family", [de_sitter_flat, de_sitter_closed])
def test_de_sitter_is_einstein_with_lambda_3h2(family):
    hubble = 1.7
    out = report(family, jnp.array([hubble]), jnp.array([0.4, 0.2, 0.1, -0.3]))
    lam = 3 * hubble**2
    assert rel_err(out["ricci"], lam * out["g"]) <= TOL
    assert rel_err(out["scalar"], 4 * lam) <= TOL
    assert rel_err(out["einstein"], -lam * out["g"]) <= TOL


# ----------------------------------------------------------------------------- random metrics


def random_metric(coefficients):
    """eta + 0.1 P(x): each of the 10 components a different smooth function of all coordinates."""

    def g(x):
        basis = jnp.stack([
            jnp.ones_like(x[0]), x[0], x[1] * x[2], jnp.sin(x[0] + 2 * x[3]), jnp.cos(x[1] - x[2]), x[3] ** 2,
            jnp.exp(0.5 * x[2]) * x[0],
        ])
        upper = coefficients @ basis
        i, j = np.triu_indices(4)
        p = jnp.zeros((4, 4), x.dtype).at[i, j].set(upper)
        return eta(x.dtype) + 0.1 * (p + p.T - jnp.diag(jnp.diag(p)))

    return g


COEFFS = hnp.arrays(np.float64, (10, 7), elements=st.floats(-1.0, 1.0))
POINTS = hnp.arrays(np.float64, (4,), elements=st.floats(-0.5, 0.5))
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@jax.jit
def _identities(coefficients, x):
    metric_fn = random_metric(coefficients)
    g = metric_fn(x)
    riemann = geo.riemann(metric_fn, x)
    lowered = jnp.einsum("ae,ebcd->abcd", g, riemann)
    jet = geo.metric_jet(metric_fn, x)
    return dict(
        g=g,
        # the size of the terms in R: second derivatives and squared first derivatives of g
        scale=jnp.max(jnp.abs(jet.ddg)) + jnp.max(jnp.abs(jet.dg)) ** 2,
        riemann=riemann,
        antisymmetry=riemann + jnp.swapaxes(riemann, 2, 3),
        bianchi=riemann + jnp.einsum("rmns->rsmn", riemann) + jnp.einsum("rnsm->rsmn", riemann),
        pair=lowered - jnp.einsum("cdab->abcd", lowered),
        ricci=geo.ricci_tensor(metric_fn, x),
        ricci_contracted=jnp.einsum("rsrn->sn", riemann),
        einstein=geo.einstein_tensor(metric_fn, x),
        einstein_nested=geo.einstein_tensor_nested(metric_fn, x),
    )


@SETTINGS
@given(COEFFS, POINTS)
def test_riemann_symmetries_and_ricci_on_random_metrics(coefficients, x):
    out = _identities(jnp.asarray(coefficients), jnp.asarray(x))
    assume(abs(np.linalg.det(out["g"])) > 0.3)
    scale = float(out["scale"])
    assert np.max(np.abs(out["antisymmetry"])) <= TOL * scale  # R^r_{smn} = -R^r_{snm}
    assert np.max(np.abs(out["bianchi"])) <= TOL * scale  # R^r_{[smn]} = 0
    assert np.max(np.abs(out["pair"])) <= TOL * scale  # R_{abcd} = R_{cdab}
    ricci = out["ricci"]
    assert np.max(np.abs(ricci - ricci.T)) <= TOL * scale
    assert np.max(np.abs(ricci - out["ricci_contracted"])) <= TOL * scale  # analytic contraction
    assert np.max(np.abs(out["einstein"] - out["einstein_nested"])) <= TOL * scale  # fast path == nested


@jax.jit
def _divergence(coefficients, x):
    """nabla_m G^m_n = d_m G^m_n + Gamma^m_{ml} G^l_n - Gamma^l_{mn} G^m_l, and a scale for it."""
    metric_fn = random_metric(coefficients)

    def mixed(y):
        curv = geo.curvature(metric_fn, y)
        g_mixed = curv.g_inv @ curv.einstein_tensor
        return g_mixed, (g_mixed, curv)

    d_mixed, (mixed_here, curv) = jax.jacfwd(mixed, has_aux=True)(x)  # [m, n, k] = d_k G^m_n
    gamma = curv.christoffel
    div = (
        jnp.einsum("mnm->n", d_mixed)
        + jnp.einsum("mml,ln->n", gamma, mixed_here)
        - jnp.einsum("lmn,ml->n", gamma, mixed_here)
    )
    jet = geo.metric_jet(metric_fn, x)
    metric_scale = (jnp.max(jnp.abs(jet.ddg)) + jnp.max(jnp.abs(jet.dg)) ** 2) * (1 + jnp.max(jnp.abs(jet.dg)))
    terms = jnp.max(jnp.abs(d_mixed)) + jnp.max(jnp.abs(gamma)) * jnp.max(jnp.abs(mixed_here))
    return div, terms + metric_scale, curv.g


@SETTINGS
@given(COEFFS, POINTS)
def test_contracted_bianchi_identity_on_random_metrics(coefficients, x):
    div, scale, g = _divergence(jnp.asarray(coefficients), jnp.asarray(x))
    assume(abs(np.linalg.det(g)) > 0.3)
    assert np.max(np.abs(div)) <= TOL * float(scale)


# ----------------------------------------------------------------------------- pieces


def test_inverse_metric_matches_linalg():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.normal(size=(4, 4))
        g = np.diag([-1.0, 1, 1, 1]) + 0.3 * (a + a.T)
        assert rel_err(geo.inverse_metric(jnp.asarray(g)), np.linalg.inv(g)) <= 1e-12


@jax.jit
def _jet_of_f(x):
    """f(x) = [exp(x0) sin(x1 x2) + x3, x0 x3^2] built from jet operations."""
    eye = jnp.eye(4, dtype=x.dtype)
    coords = geo.Jet(x, tuple(eye[i] for i in range(4)), (None,) * 10)
    pick = lambda k: geo.jet_linear(coords, lambda v: v[k])
    product = geo.jet_product(pick(1), pick(2))
    sine = geo.jet_map(product, jnp.sin, jnp.cos, lambda v: -jnp.sin(v))
    expo = geo.jet_map(pick(0), jnp.exp, jnp.exp, jnp.exp)
    first = geo.jet_sum(geo.jet_product(expo, sine), pick(3))
    second = geo.jet_scale(geo.jet_product(pick(0), geo.jet_product(pick(3), pick(3))), 1.0)
    return geo.jet_concatenate([geo.jet_linear(first, lambda v: v[None]), geo.jet_linear(second, lambda v: v[None])])


def test_jet_arithmetic_matches_nested_forward_mode():
    x = jnp.array([0.3, -0.7, 1.1, 0.5])
    stacked = _jet_of_f(x)
    f = lambda y: jnp.stack([jnp.exp(y[0]) * jnp.sin(y[1] * y[2]) + y[3], y[0] * y[3] ** 2])
    jac, hess = jax.jit(lambda y: (jax.jacfwd(f)(y), jax.hessian(f)(y)))(x)
    assert rel_err(stacked.value, f(x)) <= 1e-14
    for i in range(4):
        assert rel_err(stacked.first[i], jac[:, i]) <= 1e-14
    for p, (i, j) in enumerate(geo.PAIRS):
        assert rel_err(stacked.second[p], hess[:, i, j]) <= 1e-14


def test_time_jet_and_metric_jet_layout():
    fn = lambda t: jnp.cosh(2 * t) * t
    jet = geo.time_jet(fn, jnp.asarray(0.4))
    assert rel_err(jet.first[0], jax.grad(fn)(0.4)) <= 1e-14
    assert rel_err(jet.second[0], jax.grad(jax.grad(fn))(0.4)) <= 1e-14
    assert all(d is None for d in jet.first[1:] + jet.second[1:])

    metric_fn = lambda y: minkowski_skewed((), y)
    x = jnp.array([0.1, 0.2, -0.3, 0.4])
    (g, dg, ddg), dg_ref, ddg_ref = jax.jit(
        lambda y: (geo.metric_jet(metric_fn, y), jax.jacrev(metric_fn)(y), jax.hessian(metric_fn)(y)))(x)
    assert rel_err(dg, dg_ref) <= 1e-14  # dg[a, b, c] = d_c g_ab
    assert rel_err(ddg, ddg_ref) <= 1e-14  # ddg[a, b, c, d] = d_c d_d g_ab


def test_fast_path_is_used_when_the_metric_has_a_jet():
    calls = []

    class WithJet:
        def __call__(self, x):
            return MINKOWSKI(x)

        def jet(self, x):
            calls.append(1)
            return geo.MetricJet(MINKOWSKI(x), jnp.zeros((4, 4, 4)), jnp.zeros((4, 4, 4, 4)))

    assert np.all(geo.einstein_tensor(WithJet(), jnp.zeros(4)) == 0)
    assert calls


def test_a_point_of_the_wrong_shape_is_a_value_error():
    with pytest.raises(ValueError, match="shape"):
        geo.einstein_tensor(MINKOWSKI, jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="shape"):
        geo.christoffel(MINKOWSKI, jnp.zeros(3))
