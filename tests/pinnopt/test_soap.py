"""soap: exactly Adam without preconditioned leaves, the authors' reference step (a NumPy
transcription), faster than Adam on an MLP regression, the eigenbasis bookkeeping, jit/scan
conformance, float64 and option validation."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnopt import optimizers
from pinnopt.optimizers.soap import ScaleBySoapState, soap


def soap_state(opt_state) -> ScaleBySoapState:
    return next(s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, ScaleBySoapState))
                if isinstance(s, ScaleBySoapState))


def scan_losses(tx, loss, params, steps):
    def body(carry, _):
        p, s = carry
        value, grad = jax.value_and_grad(loss)(p)
        u, s = tx.update(grad, s, p)
        return (optax.apply_updates(p, u), s), value

    (p, s), values = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=steps))(params)
    return p, s, np.asarray(values)


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["1-D leaves", "adamw, no dimension preconditioned"])
def test_without_preconditioned_leaves_it_is_optax_adam_bit_for_bit(case):
    rng = np.random.default_rng(0)
    target = jnp.asarray(rng.standard_normal(7), jnp.float32)
    params = {"a": jnp.zeros(7, jnp.float32), "b": jnp.ones(3, jnp.float32), "c": jnp.zeros((), jnp.float32)}
    if case == "1-D leaves":
        ours, theirs = soap(0.05, b1=0.9, b2=0.999), optax.adam(0.05, b1=0.9, b2=0.999)
    else:  # a matrix whose dimensions both exceed max_precond_dim is an Adam leaf too
        params["w"] = jnp.full((2, 3), 0.5, jnp.float32)
        ours = soap(0.05, b1=0.9, b2=0.99, weight_decay=0.1, max_precond_dim=1)
        theirs = optax.adamw(0.05, b1=0.9, b2=0.99, weight_decay=0.1)

    def loss(p):
        out = jnp.sum(jnp.arange(1, 8) * (p["a"] - target) ** 2) + jnp.sum(jnp.sin(p["b"])) + (p["c"] - 2) ** 2
        return out + (jnp.sum(p["w"] ** 3) if "w" in p else 0.0)

    p_ours = p_theirs = params
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    step_ours, step_theirs = jax.jit(ours.update), jax.jit(theirs.update)
    for _ in range(12):
        u_ours, s_ours = step_ours(jax.grad(loss)(p_ours), s_ours, p_ours)
        u_theirs, s_theirs = step_theirs(jax.grad(loss)(p_theirs), s_theirs, p_theirs)
        for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs)):
            assert np.array_equal(np.asarray(a), np.asarray(b))
        p_ours, p_theirs = optax.apply_updates(p_ours, u_ours), optax.apply_updates(p_theirs, u_theirs)
    assert float(loss(p_ours)) < float(loss(params))


# ---------------------------------------------------------------------------------------------
class ReferenceSOAP:
    """NumPy transcription of the authors' PyTorch ``SOAP.step`` (nikhilvyas/SOAP, soap.py) for one
    2-D leaf, weight_decay 0, with Adam's eps in optax's form (the one documented difference)."""

    def __init__(self, lr, b1, b2, eps, frequency):
        self.lr, self.b1, self.b2, self.eps, self.frequency = lr, b1, b2, eps, frequency
        self.step, self.Q = 0, None

    def project(self, x):
        return self.Q[0].T @ x @ self.Q[1]

    def project_back(self, x):
        return self.Q[0] @ x @ self.Q[1].T

    def __call__(self, p, grad):
        if self.Q is None:  # the first call only builds the preconditioner
            self.exp_avg, self.exp_avg_sq = np.zeros_like(grad), np.zeros_like(grad)
            self.GG = [np.zeros((d, d)) for d in grad.shape]
            self.update_preconditioner(grad)
            return p
        projected = self.project(grad)
        self.step += 1
        self.exp_avg = self.b1 * self.exp_avg + (1 - self.b1) * projected
        self.exp_avg_sq = self.b2 * self.exp_avg_sq + (1 - self.b2) * projected**2
        bc1, bc2 = 1 - self.b1**self.step, 1 - self.b2**self.step
        p = p - self.lr * self.project_back((self.exp_avg / bc1) / (np.sqrt(self.exp_avg_sq / bc2) + self.eps))
        self.update_preconditioner(grad)
        return p

    def update_preconditioner(self, grad):
        if self.Q is not None:
            self.exp_avg = self.project_back(self.exp_avg)
        self.GG[0] = self.b2 * self.GG[0] + (1 - self.b2) * grad @ grad.T
        self.GG[1] = self.b2 * self.GG[1] + (1 - self.b2) * grad.T @ grad
        if self.Q is None:
            self.Q = [np.linalg.eigh(f)[1][:, ::-1] for f in self.GG]
        if self.step > 0 and self.step % self.frequency == 0:
            new = []
            for i, (f, q) in enumerate(zip(self.GG, self.Q)):
                order = np.argsort(-np.diag(q.T @ f @ q), kind="stable")
                self.exp_avg_sq = np.take(self.exp_avg_sq, order, axis=i)
                new.append(np.linalg.qr(f @ q[:, order])[0])
            self.Q = new
        if self.step > 0:
            self.exp_avg = self.project(self.exp_avg)


def test_matches_a_transcription_of_the_reference_step_in_float64(x64):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 5)), rng.standard_normal((30, 5))
    loss = lambda w: jnp.mean((jnp.tanh(X @ w) - Y) ** 2)
    w0 = 0.3 * rng.standard_normal((5, 5))  # square: both factors full rank, the bases unique up to sign
    reference = ReferenceSOAP(0.02, 0.9, 0.99, 1e-8, frequency=3)
    tx = soap(0.02, b1=0.9, b2=0.99, precondition_frequency=3)
    step = jax.jit(lambda w, s: tx.update(jax.grad(loss)(w), s, w))
    w, state, w_ref = jnp.asarray(w0), tx.init(jnp.asarray(w0)), w0.copy()
    for _ in range(25):  # crosses eight QR refreshes
        w_ref = reference(w_ref, np.asarray(jax.grad(loss)(jnp.asarray(w_ref))))
        u, state = step(w, state)
        w = optax.apply_updates(w, u)
        np.testing.assert_allclose(np.asarray(w), w_ref, rtol=0, atol=1e-8)  # measured: 5e-10
    assert float(loss(w)) < 0.8 * float(loss(jnp.asarray(w0)))
    assert all(x.dtype in (jnp.float64, jnp.int32) for x in jax.tree.leaves(state))


# ---------------------------------------------------------------------------------------------
class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for width in (32, 32):
            x = jnp.tanh(nn.Dense(width)(x))
        return nn.Dense(1)(x)


def test_mlp_regression_beats_adam_at_the_same_hyperparameters():
    x = jnp.linspace(-1, 1, 128)[:, None]
    y = jnp.sin(3 * jnp.pi * x) + 0.5 * x
    model = MLP()
    params = model.init(jax.random.PRNGKey(0), x)
    loss = lambda p: jnp.mean((model.apply(p, x) - y) ** 2)
    _, state, ours = scan_losses(soap(1e-2), loss, params, 500)
    _, _, adam = scan_losses(optax.adam(1e-2, b1=0.95, b2=0.95), loss, params, 500)
    # Measured with seeds 0-2: SOAP 1.3e-5..2.9e-5 at step 500, Adam 2.5e-4..1.3e-3 (ratio 0.02-0.12);
    # the seed-0 run asserted here: 1.3e-5 against 2.8e-4.
    assert ours[-1] < 0.5 * adam[-1], (ours[-1], adam[-1])
    assert np.all(np.isfinite(ours))
    kernel_factors = [fs for fs in soap_state(state).factors if len(fs) == 2]
    assert [tuple(f.shape for f in fs) for fs in kernel_factors] == [((1, 1), (32, 32)), ((32, 32), (32, 32)),
                                                                     ((32, 32), (1, 1))]


# ---------------------------------------------------------------------------------------------
def test_eigenbasis_bookkeeping_and_large_dimension_fallback():
    params = {"kernel": jnp.zeros((3, 4), jnp.float32), "bias": jnp.zeros(4, jnp.float32),
              "wide": jnp.zeros((2, 50), jnp.float32)}
    tx = soap(0.1, b2=0.9, max_precond_dim=10, precondition_frequency=2)
    state = tx.init(params)
    st = soap_state(state)
    shapes = [tuple(None if f is None else f.shape for f in fs) for fs in st.factors]
    assert shapes == [((3, 3), (4, 4)), ((2, 2), None)]  # the preconditioned leaves: kernel, wide
    rng = np.random.default_rng(0)
    grads = jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape), jnp.float32), params)

    updates, state = jax.jit(tx.update)(grads, state, params)
    st = soap_state(state)
    # The first call moves no preconditioned leaf (its basis is built from this gradient), but
    # the bias takes Adam's first step, -lr sign(g) (up to eps).
    assert float(jnp.max(jnp.abs(updates["kernel"]))) == 0 and float(jnp.max(jnp.abs(updates["wide"]))) == 0
    np.testing.assert_allclose(updates["bias"], -0.1 * np.sign(grads["bias"]), rtol=1e-5)
    g = np.asarray(grads["kernel"], np.float64)
    for f, q, expected in zip(st.factors[0], st.eigvecs[0], (0.1 * g @ g.T, 0.1 * g.T @ g)):
        np.testing.assert_allclose(f, expected, rtol=1e-5, atol=1e-6)
        rotated = np.asarray(q, np.float64).T @ expected @ np.asarray(q, np.float64)
        assert np.allclose(rotated, np.diag(np.diag(rotated)), atol=1e-5)  # Q diagonalises F
        assert np.all(np.diff(np.diag(rotated)) <= 1e-6)  # largest eigenvalue first
    assert st.eigvecs[1][1] is None and st.factors[1][1] is None
    assert len(st.adam.mu) == 1 and st.adam.mu[0].shape == (4,)  # the bias is an Adam leaf

    step = jax.jit(tx.update)
    for _ in range(5):  # crosses refreshes at counts 2 and 4
        updates, state = step(grads, state, params)
    for qs in soap_state(state).eigvecs:
        for q in qs:
            if q is not None:
                np.testing.assert_allclose(np.asarray(q).T @ np.asarray(q), np.eye(q.shape[0]), atol=1e-5)
    assert float(jnp.max(jnp.abs(updates["kernel"]))) > 0


def test_jit_once_and_registry():
    """Six jitted steps (refreshes at 2 and 4) with one compilation and an unchanged state signature;
    the state as a ``lax.scan`` carry is exercised by the MLP test."""
    tx = optimizers.get("soap", learning_rate=1e-2, precondition_frequency=2)
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
    params = {"w": jnp.full((3, 4), 0.1, jnp.float32), "b": jnp.zeros(4, jnp.float32)}
    X = jnp.asarray(np.random.default_rng(1).standard_normal((16, 3)), jnp.float32)
    loss = lambda p: jnp.mean((jnp.tanh(X @ p["w"] + p["b"]) - 0.5) ** 2)

    def step(p, s):
        value, grad = jax.value_and_grad(loss)(p)
        u, s = tx.update(grad, s, p, value=value, grad=grad, value_fn=loss, residual_fn=None)
        return optax.apply_updates(p, u), s

    jitted = jax.jit(step)
    p, s = params, tx.init(params)
    signature = jax.tree.map(lambda x: (x.dtype, x.shape, x.weak_type), s)
    for _ in range(6):
        p, s = jitted(p, s)
    assert jitted._cache_size() == 1
    assert jax.tree.map(lambda x: (x.dtype, x.shape, x.weak_type), s) == signature
    assert float(loss(p)) < float(loss(params))



@pytest.mark.parametrize("kwargs,needle", [
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"b1": 1.0}, "b1"),
    ({"b2": -0.1}, "b2"),
    ({"eps": -1.0}, "eps"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"precondition_frequency": 0}, "precondition_frequency"),
    ({"precondition_frequency": 2.5}, "precondition_frequency"),
    ({"max_precond_dim": -1}, "max_precond_dim"),
    ({"shampoo_beta": 1.5}, "shampoo_beta"),
])
def test_invalid_options_are_named(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        soap(**kwargs)
    with pytest.raises(ValueError, match=needle):
        optimizers.get("soap", **kwargs)
