"""ssbfgs / ssbroyden: one update against the paper's formulas written in the *Hessian* (B) form.

Urban, Stefanou & Pons (J. Comput. Phys. 523, 113656, 2025) state the update of the inverse
Hessian H with the H-form Broyden parameter phi_k (eqs. 10, 14); Al-Baali & Khalfan define the
self-scaled class on B = H^{-1} with the B-form parameter theta_k (theta = 0: BFGS, theta = 1:
DFP)::

    B_{k+1} = tau_k (B_k - B_k s s^T B_k / s^T B_k s + theta_k (s^T B_k s) w w^T) + y y^T / y^T s,
    w = y / y^T s - B_k s / s^T B_k s.

The reference below forms B_k = inv(H_k) explicitly (b_k = s^T B_k s / y^T s, not the
-alpha s^T g / y^T s shortcut of the code), computes theta_k and tau_k from eqs. 11, 13 and 15-23
and inverts B_{k+1}: it shares no algebra with the code's H-form update, so it checks the H-form
formula, the relation phi_k = (1 - theta_k) / (1 + a_k theta_k) (eq. 14) and the scaling in one go.
It also checks the determinant identity det B_{k+1} = tau^{n-1} sigma det B_k / b_k behind
Al-Baali's choice tau <= min(1, 1/b) sigma^{-1/(n-1)} (so tau^{n-1} sigma <= 1): an exponent of the
wrong sign in the code would break it.

Equation numbers: eq. 11 (SSBFGS) and eqs. 13-23 (SSBroyden) as the authors' README
(github.com/jorgeurban/self_scaled_algorithms_pinns) maps them; which of 13-23 is which follows a
third-party implementation that annotates each line. The paper's text itself was not available
when this was written: the formulas agree with the authors' code and with Al-Baali's theory
(the determinant identity and bound above).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnopt.optimizers.quasi_newton import ssbfgs, ssbroyden


def paper_scalars(H, s, y, member):
    """theta_k, tau_k of one update from eqs. 11, 13, 15-23, with B_k = inv(H_k) formed explicitly."""
    n = len(s)
    B = np.linalg.inv(H)
    ys = y @ s
    b = (s @ B @ s) / ys  # eq. 15
    if member == "ssbfgs":
        return 0.0, min(1.0, 1.0 / b), b  # eq. 11: BFGS (theta = 0) with Al-Baali's tau
    h = (y @ H @ y) / ys  # eq. 16
    a = b * h - 1  # eq. 17
    c = np.sqrt(a / (1 + a))  # eq. 18
    rho_minus = min(1.0, h * (1 - c))  # eq. 19
    theta_minus = (rho_minus - 1) / a  # eq. 20
    theta_plus = 1 / rho_minus  # eq. 21
    theta = max(theta_minus, min(theta_plus, (1 - b) / b))  # eq. 22
    sigma = 1 + a * theta  # eq. 23
    rho_plus = min(1.0, 1.0 / b)
    if theta <= 0:  # eq. 13
        tau = min(rho_plus * sigma ** (-1.0 / (n - 1)), sigma)
    else:
        tau = rho_plus * min(sigma ** (-1.0 / (n - 1)), 1 / theta)
    return theta, tau, b


def b_form_update(B, s, y, theta, tau):
    sBs = s @ B @ s
    Bs = B @ s
    w = y / (y @ s) - Bs / sBs
    return tau * (B - np.outer(Bs, Bs) / sBs + theta * sBs * np.outer(w, w)) + np.outer(y, y) / (y @ s)


@pytest.mark.parametrize("member,h_scale,branch", [
    ("ssbfgs", 0.05, "b>1"),  # b > 1: tau = 1/b < 1, the scaling acts
    pytest.param("ssbfgs", 20.0, "b<1", marks=pytest.mark.slow),  # b < 1: tau = 1, plain BFGS
    ("ssbroyden", 0.05, "b>1"),  # b > 1: theta <= 0 (between theta^- and BFGS), tau = min(., sigma)
    ("ssbroyden", 20.0, "b<1"),  # b < 1: theta > 0 (towards DFP), tau = rho^+ min(., 1/theta)
])
def test_one_update_is_the_inverse_of_the_papers_b_form_update(member, h_scale, branch, x64):
    rng = np.random.default_rng(7)
    n = 5
    m = rng.standard_normal((n, n))
    A = jnp.asarray(m @ m.T + np.eye(n))
    f = lambda x: 0.5 * x @ A @ x + 0.1 * jnp.sum(x**4)  # not quadratic
    q = rng.standard_normal((n, n))
    H0 = h_scale * (q @ q.T / n + 0.5 * np.eye(n))  # too small (b > 1) or too large (b < 1) an H
    x = jnp.asarray(rng.standard_normal(n))
    tx = ssbroyden() if member == "ssbroyden" else ssbfgs()
    state = tx.init(x)._replace(hess_inv=jnp.asarray(H0), restart=jnp.zeros((), jnp.int32))
    value, grad = jax.value_and_grad(f)(x)
    updates, new = jax.jit(lambda st: tx.update(grad, st, x, value=value, grad=grad, value_fn=f))(state)
    assert int(new.skipped) == 0 and int(new.resets) == 0
    s = np.asarray(updates)
    y = np.asarray(jax.grad(f)(x + updates) - grad)

    theta, tau, b = paper_scalars(H0, s, y, member)
    assert (b > 1) == (branch == "b>1"), b  # the intended branch of eqs. 13 and 22 is exercised
    if member == "ssbroyden":
        assert (theta <= 0) == (b > 1)
    B0 = np.linalg.inv(H0)
    B1 = b_form_update(B0, s, y, theta, tau)
    np.testing.assert_allclose(np.asarray(new.hess_inv), np.linalg.inv(B1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(new.tau), tau, rtol=1e-10)
    a = b * (y @ H0 @ y) / (y @ s) - 1
    sigma = 1 + a * theta
    np.testing.assert_allclose(float(new.phi), (1 - theta) / sigma, rtol=1e-10, atol=1e-14)  # eq. 14

    # det B_{k+1} = tau^{n-1} sigma det B_k / b_k, and Al-Baali's bound tau^{n-1} sigma <= 1.
    np.testing.assert_allclose(np.linalg.det(B1), tau ** (n - 1) * sigma * np.linalg.det(B0) / b, rtol=1e-9)
    assert tau ** (n - 1) * sigma <= 1 + 1e-12
    assert np.all(np.linalg.eigvalsh(np.asarray(new.hess_inv)) > 0)
