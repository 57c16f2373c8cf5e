"""One registry for problems, optimizers, constraint methods and balancers; built objects carry their Spec."""
import jax
import jax.numpy as jnp
import pytest

import pinnopt
from pinnopt import balancing, constraints, methods, optimizers, problems
from pinnopt.registry import Registry, spec_of
from pinnopt.terms import Constraint, Objective


def test_every_family_is_one_registry():
    assert {type(lib.REGISTRY) for lib in (problems, optimizers, constraints, balancing)} == {Registry}
    assert "al" in constraints.available() and "adam" in optimizers.available()


@pytest.mark.parametrize("lib, name, options", [
    (optimizers, "adam", {"learning_rate": 0.01}),
    (constraints, "al", {"update_every": 5}),
    (balancing, "homoscedastic", {"init_log_sigma": 0.5}),
    (problems, "rastrigin", {"dim": 3}),
])
def test_built_objects_carry_their_name_and_options(lib, name, options):
    spec = spec_of(lib.get(name, **options))
    assert spec.name == name and spec.options == options


def test_wrong_option_types_and_names_are_named():
    with pytest.raises(ValueError, match=r"problem 'rastrigin': option 'dim' expects int, got 'abc'"):
        problems.get("rastrigin", dim="abc")
    with pytest.raises(ValueError, match=r"has no option 'dimm'.*Did you mean: dim"):
        problems.get("rastrigin", dimm=3)
    with pytest.raises(ValueError, match=r"constraint method 'al': option 'update_every'"):
        constraints.get("al", update_every="often")
    with pytest.raises(ValueError, match="Did you mean: penalty"):
        constraints.get("penalti")


def test_register_as_a_decorator_and_the_config_records_an_object(tmp_path):
    @constraints.register("quadratic_only")
    def quadratic_only(weight: float = 1.0):
        return constraints.stateless(
            lambda cons: (sum(weight * jnp.mean(jnp.square(c.value)) for c in cons.values()), {}))

    @problems.register("unit_circle_point")
    def make(target: float = 1.0):
        return pinnopt.problems.toys.ConstrainedQuadratic(target=(target, 0.0), a_eq=((1.0, 0.0),), b_eq=(0.5,))

    method = constraints.get("quadratic_only", weight=2.0)
    assert isinstance(method, constraints.ConstraintMethod)
    res = pinnopt.solve(problems.get("unit_circle_point"), optimizer=optimizers.get("sgd", learning_rate=0.1),
                        constraints=method, steps=20, out=str(tmp_path / "run"))
    config = pinnopt.io.RunDir(str(tmp_path / "run")).read_json("config.json")
    assert config["optimizer"] == "sgd" and config["optimizer_kwargs"] == {"learning_rate": 0.1}
    assert config["constraints"] == "quadratic_only" and config["constraint_kwargs"] == {"weight": 2.0}
    assert config["problem"]["name"] == "constrained_quadratic"  # the problem's own config()
    assert res.summary["certified"] is False  # tol 0: an exact equality is not met in 20 steps


def test_stateless_method_defaults():
    bal = balancing.stateless(lambda objs: (sum(jnp.mean(o.loss) for o in objs.values()), {}))
    objs = {"a": Objective(jnp.ones(3))}
    params, state = bal.init(jax.random.PRNGKey(0), objs)
    assert bal.update(objs, params, state) is state and bal.diagnose(state) == []
    assert float(bal.loss(objs, params, state)[0]) == 1.0
    assert methods.TermMethod(bal.init, bal.loss).update is methods.keep_state


def test_solve_warns_when_an_object_cannot_be_recorded(tmp_path):
    import optax

    with pytest.warns(UserWarning, match="cannot record it"):
        pinnopt.solve(problems.get("rastrigin", dim=2), optimizer=optax.with_extra_args_support(optax.sgd(0.01)),
                      steps=5, out=str(tmp_path / "r"))


def test_evaluate_must_return_scalars_before_compiling():
    base = problems.get("rastrigin", dim=2)

    class WithEvaluate:
        name = "with_evaluate"
        init, sample, terms = base.init, base.sample, base.terms

        def evaluate(self, params):
            return {"err": jnp.reshape(jnp.sum(params), (1,))}

    with pytest.raises(ValueError, match=r"evaluate\(params\)\['err'\] must be a scalar.*\(1,\)"):
        pinnopt.solve(WithEvaluate(), steps=5)


def test_constraint_tol_reaches_the_certificate():
    # constrained_quadratic declares its constraints with tol 0: build one with a tolerance.
    class Pinned:
        name = "pinned"

        def init(self, key):
            return jnp.zeros(2)

        def sample(self, key, step):
            return None

        def terms(self, x, batch):
            return {"f": Objective(jnp.sum((x - 2.0) ** 2)), "c": Constraint(x[0] - 1.0, "eq", tol=1e-2)}

    res = pinnopt.solve(Pinned(), optimizer="adam", optimizer_kwargs={"learning_rate": 0.05}, steps=2000,
                        constraint_kwargs={"update_every": 10})
    cert = res.summary["certificates"]["c"]
    assert cert["tol"] == 1e-2 and cert["max_violation"] < 1e-2 and cert["certified"] and res.summary["certified"]


def test_a_python_run_of_registry_built_parts_resumes_from_the_cli(tmp_path):
    from pinnopt.cli import main

    run = str(tmp_path / "py")
    pinnopt.solve(problems.get("rastrigin", dim=3), optimizer=optimizers.get("adam", learning_rate=0.05),
                  constraints=constraints.get("penalty"), steps=20, chunk=10, out=run)
    assert main(["solve", "--resume", run, "--steps", "40", "--no-progress", "--no-plots"]) == 0
    summary = pinnopt.io.RunDir(run).read_json("summary.json")
    config = pinnopt.io.RunDir(run).read_json("config.json")
    assert summary["steps"] == 40 and config["problem_spec"] == {"name": "rastrigin", "options": {"dim": 3}}
    assert config["optimizer_kwargs"] == {"learning_rate": 0.05} and config["constraints"] == "penalty"
