"""Every PDE benchmark problem through pinnopt.solve, and the interface they share
(predict, reference_solution, evaluate's rel_l2, config)."""
import json

import jax
import numpy as np
import pytest

import pinnopt
from pinnopt import problems

TINY = {
    "poisson2d": dict(n_interior=32, n_boundary=16, n_eval=11),
    "helmholtz2d": dict(n_interior=32, n_boundary=16, n_eval=11),
    "burgers": dict(n_points=32, n_ic=8, n_bc=8, n_eval_t=6, n_eval_x=16),
    "allen_cahn": dict(n_points=32, n_ic=8, n_eval_t=6, n_eval_x=16, reference_modes=256, reference_dt=1e-2,
                       reference_out_every=1e-2),
}
INTERFACE = {**TINY, "convection": dict(n_points=32, n_ic=8, n_eval_t=6, n_eval_x=16),
             "pde_toy": dict(n_interior=32, n_boundary=16, n_eval=11)}


def tiny(name, **kwargs):
    return problems.get(name, **{"width": 4, "depth": 1, **INTERFACE[name], **kwargs})


@pytest.mark.parametrize("name", list(INTERFACE))
def test_predict_reference_and_evaluate_agree(name):
    prob = tiny(name)
    params = prob.init(jax.random.key(0))
    pts = prob.eval_points
    u, ref = prob.predict(params, pts), prob.reference_solution(pts)
    assert u.shape == ref.shape == (len(pts),) and ref.dtype == np.float64 and np.all(np.isfinite(ref))
    err = np.linalg.norm(np.asarray(u, np.float64) - ref) / np.linalg.norm(ref)
    np.testing.assert_allclose(float(jax.jit(prob.evaluate)(params)["rel_l2"]), err, rtol=1e-4)
    assert json.loads(json.dumps(prob.config()))["width"] == 4
    with pytest.raises(ValueError, match="shape"):
        prob.reference_solution(np.zeros((3, 1)))


def test_convection_and_pde_toy_references_are_their_exact_solutions():
    conv, toy = tiny("convection", beta=7.0), tiny("pde_toy")
    tx = np.array([[0.3, 1.0], [1.0, 6.0]])
    np.testing.assert_allclose(conv.reference_solution(tx), np.sin(tx[:, 1] - 7.0 * tx[:, 0]), rtol=1e-14)
    xy = np.array([[0.1, 0.2], [0.0, 0.0]])
    np.testing.assert_allclose(toy.reference_solution(xy), np.sin(20 * (xy**2).sum(1)) ** 2, rtol=1e-14)


# A solve compiles its whole step (15-30 s on a shared 2-core CPU): two problems in the default
# set (one elliptic, one in space-time), the other two share their code paths and run with -m slow.
@pytest.mark.parametrize("name", ["helmholtz2d", "burgers", pytest.param("poisson2d", marks=pytest.mark.slow),
                                  pytest.param("allen_cahn", marks=pytest.mark.slow)])
def test_a_few_steps_of_solve_with_adam_and_al(name):
    res = pinnopt.solve(tiny(name), steps=2, chunk=2, certify_batches=1)
    final = res.summary["final"]
    assert np.isfinite(final["loss"]) and np.isfinite(final["eval/rel_l2"])
    assert int(res.state.nonfinite_total) == 0
    assert res.summary["certified"] is not None  # the conditions went in as constraints


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TINY))
def test_least_squares_optimizer_on_objective_conditions(name):
    # every term an Objective.of_residual: Levenberg-Marquardt reduces the loss
    modes = {"bc": "objective"} if name in ("poisson2d", "helmholtz2d") else {"ic": "objective"}
    if name == "burgers":
        modes["bc"] = "objective"
    res = pinnopt.solve(tiny(name, **modes), optimizer="lm", constraints="none", steps=10, chunk=10,
                        resample_every=0, certify_batches=1)
    losses = [row["loss"] for row in res.history]
    assert res.summary["certified"] is None and np.isfinite(losses[-1]) and losses[-1] < losses[0]


def test_predict_in_a_float64_run_embeds_the_points_in_float64():
    # the evaluation grid is float32; with float64 params predict casts it first, so Fourier
    # features of it are float64 (a float32 embedding would limit rel_l2 to about 1e-7)
    prob = tiny("allen_cahn", fourier_features=16, fourier_scale=10.0)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: x.astype(np.float64), prob.init(jax.random.key(0)))
        u = prob.predict(params, prob.eval_points)
        assert u.dtype == np.float64
        exact = prob.net.apply(params, np.asarray(prob.eval_points, np.float64))[:, 0]
        assert float(np.max(np.abs(np.asarray(u) - np.asarray(exact)))) < 1e-13
        assert prob.evaluate(params)["rel_l2"].dtype == np.float64


@pytest.mark.parametrize("name,arch,rwf", [("poisson2d", "modified_mlp", False), ("burgers", "pirate", True),
                                          ("allen_cahn", "modified_mlp", True), ("helmholtz2d", "mlp", True)])
def test_architecture_options_reach_the_network(name, arch, rwf):
    prob = tiny(name, arch=arch, rwf=rwf, depth=2)
    assert type(prob.net).__name__ == {"modified_mlp": "ModifiedMLP", "pirate": "PirateNet", "mlp": "PlainMLP"}[arch]
    params = prob.init(jax.random.key(0))
    batch = prob.sample(jax.random.key(1), 0)
    terms = jax.jit(prob.terms)(params, batch)
    assert all(np.all(np.isfinite(np.asarray(t.loss if hasattr(t, "loss") else t.value))) for t in terms.values())
    assert prob.predict(params, prob.eval_points).shape == (len(prob.eval_points),)
    assert prob.config()["arch"] == arch and prob.config()["rwf"] is rwf
    with pytest.raises(ValueError, match="arch"):
        tiny(name, arch="resnet")
    # the default is the plain pinnopt.nets.MLP, as make_mlp builds it
    assert type(tiny(name).net).__name__ == "MLP"
