"""A problem's own end-of-run certificates (``problem.extra_certificates``) join the constraints'."""
import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pytest

import pinnopt
from pinnopt.training.certify import extra_certificates, format_certificates
from pinnopt.terms import Constraint, Objective


@dataclasses.dataclass(frozen=True)
class Toward:
    """Minimise |w - target|^2 over w (2,); certify afterwards that w came within ``near`` of the
    target (the final parameters decide), plus the fixed ``extra`` certificates."""

    target: float = 1.0
    near: float = 0.05
    extra: tuple = ()  # (name, certificate) pairs returned as they are
    constraint: bool = False
    name: str = "toward"

    def init(self, key):
        return {"w": jnp.zeros(2)}

    def sample(self, key, step):
        return {"x": jnp.zeros((1, 1))}

    def terms(self, params, batch):
        out = {"fit": Objective(jnp.sum((params["w"] - self.target) ** 2))}
        if self.constraint:
            out["cap"] = Constraint(params["w"][0] - 10.0, "ineq")
        return out

    def extra_certificates(self, params):
        distance = float(np.max(np.abs(np.asarray(params["w"]) - self.target)))
        return {"near_target": {"max_violation": distance, "tol": self.near, "what": "max |w - target|"},
                **dict(self.extra)}


def run(problem, steps=60, **kwargs):
    return pinnopt.solve(problem, optimizer="adam", optimizer_kwargs={"learning_rate": 0.1}, steps=steps,
                         chunk=steps, constraints="al" if problem.constraint else "none", **kwargs)


def test_a_passing_and_a_failing_certificate_decide_certified():
    res = run(Toward(extra=(("never", {"max_violation": 1.0, "tol": 0.0}),)))
    certs = res.summary["certificates"]
    assert set(certs) == {"near_target", "never"}
    near = certs["near_target"]
    # Computed from the final parameters, kept with the problem's own keys and the defaults.
    w = np.asarray(res.params["w"])
    assert near["max_violation"] == pytest.approx(float(np.max(np.abs(w - 1.0))))
    assert near["certified"] and near["what"] == "max |w - target|" and near["kind"] == "extra"
    assert certs["never"]["certified"] is False
    assert res.summary["certified"] is False  # no constraint at all, yet a certificate fails
    lines = format_certificates(certs)
    assert any("certificate/never" in line and "NOT certified" in line for line in lines)
    assert lines[-1].split() == ["certified", "False"]


def test_passing_extras_alone_certify_and_a_short_run_does_not():
    assert run(Toward()).summary["certified"] is True  # without them: None (no constraint)
    short = run(Toward(), steps=2)  # w has barely moved: |w - 1| ~ 0.8 > 0.05
    assert short.summary["certificates"]["near_target"]["certified"] is False
    assert short.summary["certified"] is False


def test_extras_join_the_constraints_and_run_in_float64():
    res = run(Toward(constraint=True), precision="float64")  # the problem wrapped for float64
    certs = res.summary["certificates"]
    assert set(certs) == {"cap", "near_target"} and certs["cap"]["certified"]
    assert res.summary["certified"] is True


@pytest.mark.parametrize("cert, met", [
    ({"max_violation": math.nan, "tol": 1.0}, False),  # NaN is never certified
    ({"max_violation": 0.0, "tol": 0.0}, True),  # at the tolerance
    ({"max_violation": 0.0, "tol": 1.0, "certified": False}, False),  # the problem's own veto
    ({"max_violation": np.float32(0.5), "tol": 1, "points_checked": 7}, True),
])
def test_the_verdict_is_recomputed(cert, met):
    out = extra_certificates(Toward(extra=(("c", cert),)), {"w": jnp.ones(2)})
    assert out["c"]["certified"] is met and isinstance(out["c"]["max_violation"], float)
    assert out["c"]["points_checked"] == cert.get("points_checked")


def test_bad_extra_certificates_are_refused():
    with pytest.raises(ValueError, match="'bad'.*max_violation"):
        extra_certificates(Toward(extra=(("bad", {"tol": 0.0}),)), {"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="'cap'.*constraint"):
        extra_certificates(Toward(extra=(("cap", {"max_violation": 0.0, "tol": 0.0}),)), {"w": jnp.ones(2)},
                           taken={"cap": {}})

    class Wrong(Toward):
        def extra_certificates(self, params):
            return [1.0]

    with pytest.raises(TypeError, match="dict"):
        extra_certificates(Wrong(), {"w": jnp.ones(2)})
    assert extra_certificates(object(), {}) == {}  # no method: nothing to add
