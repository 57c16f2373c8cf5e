"""Data-parallel solve: a run split over 4 forced CPU devices matches the one-device run.

The multi-device checks run in one subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag only acts before JAX starts,
and this pytest process already has one CPU device). It trains each problem for 50 steps on
one device and on four, writes checkpoints with one placement and resumes them with the other,
and drives the CLI with ``--devices``; it prints its numbers as JSON and the tests below judge
them, so every comparison fails on its own.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pinnopt
from pinnopt import sharding
from solve_problems import ATOL, RTOL, assert_same_run

HERE = os.path.dirname(os.path.abspath(__file__))
N_DEVICES = 4


SCRIPT = r"""
import json, os, shutil, sys, tempfile, warnings
sys.path.insert(0, HERE)
import jax, numpy as np
import pinnopt
from pinnopt.cli import main
from solve_problems import FitSine, cache_compilations, run_report as report

assert jax.device_count() == N_DEVICES, jax.devices()
tmp = tempfile.mkdtemp()
cache_compilations(os.path.join(tmp, "xla-cache"))

# Small versions of pinnopt's own PDE problems, and the solve tests' FitSine.
convection = pinnopt.problems.get("convection", beta=5.0, n_points=64, n_ic=32, n_bc=16, periodic=False,
                                  bc="constraint", width=16, depth=2, n_eval_t=5, n_eval_x=8)
pde_toy = pinnopt.problems.get("pde_toy", n_interior=64, n_boundary=16, width=16, depth=2, n_eval=9,
                               n_eval_boundary=8)
cases = {
    "fit_sine_spatial_al": (FitSine(), dict(constraints="al", balancing="spatial")),
    "convection_causal_al": (convection, dict(constraints="al", balancing="causal",
                                              balancing_kwargs={"n_chunks": 4, "terms": ["pde"]})),
}
common = dict(optimizer="adam", chunk=25, seed=1, optimizer_kwargs={"learning_rate": 0.01})
out = {"runs": {}, "resume": {}}
for name, (problem, kw) in cases.items():
    out["runs"][name] = {d: report(pinnopt.solve(problem, steps=50, devices=dv, **common, **kw))
                         for d, dv in (("one", None), ("four", N_DEVICES))}

# Checkpoints: 25 steps with one placement, resumed to 50 with the other.
problem, kw = cases["convection_causal_al"]
for first, then in ((N_DEVICES, None), (None, N_DEVICES)):
    run = os.path.join(tmp, f"ckpt-{first}-{then}")
    pinnopt.solve(problem, steps=25, devices=first, out=run, **common, **kw)
    res = pinnopt.solve(problem, steps=50, devices=then, resume=run, **common, **kw)
    out["resume"][f"{first}->{then}"] = report(res)

# Devices named in a list: two that are not the first two.
chosen = [jax.devices()[3], jax.devices()[1]]
out["runs"]["pde_toy_penalty"] = {d: report(pinnopt.solve(pde_toy, steps=50, devices=dv, constraints="penalty",
                                                          **common))
                                  for d, dv in (("one", None), ("listed", chosen))}

# The compiled step really works on a quarter of the points per device.
from pinnopt import balancing, constraints, optimizers, sharding
from pinnopt.training import init_state, make_step
mesh = sharding.make_mesh(N_DEVICES)
problem, tx, bal, con = FitSine(n=32), optimizers.get("adam"), balancing.get("sum"), constraints.get("al")
state = sharding.replicate(init_state(problem, tx, bal, con, 0), mesh)
hlo = jax.jit(make_step(problem, tx, bal, con, mesh)).lower(state).compile().as_text()
out["hlo"] = {"all_reduce": hlo.count("all-reduce("), "local_rows": hlo.count("f32[8,8]"),
              "global_rows": hlo.count("f32[32,8]")}

# The command line, on a batch of 30 points that does not split evenly over 4 devices: it stays
# replicated, with a warning, and the run matches the one-device run of the Python API.
pinnopt.problems.register("fit_sine", FitSine)
runs = os.path.join(tmp, "runs")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    code = main(["solve", "fit_sine", "-p", "n=30", "--devices", str(N_DEVICES), "--steps", "10", "--chunk", "10",
                 "--lr", "0.001", "--runs", runs, "--name", "cli", "--no-progress", "--no-plots"])
with open(os.path.join(runs, "cli", "config.json")) as fh:
    cfg = json.load(fh)
with open(os.path.join(runs, "cli", "metrics.jsonl")) as fh:
    rows = [json.loads(line) for line in fh]
one = pinnopt.solve(FitSine(n=30), steps=10, chunk=10, optimizer_kwargs={"learning_rate": 0.001})
try:
    main(["solve", "fit_sine", "--devices", str(2 * N_DEVICES), "--runs", runs, "--name", "too-many",
          "--no-progress"])
    too_many = None
except SystemExit as err:
    too_many = str(err)
out["cli"] = {"code": code, "devices": cfg.get("devices"), "steps": [r["step"] for r in rows],
              "loss": [r["loss"] for r in rows], "one_loss": [r["loss"] for r in one.history],
              "one_steps": [r["step"] for r in one.history],
              "warnings": sorted({str(w.message) for w in caught if "replicated" in str(w.message)}),
              "too_many": too_many, "made_dir": os.path.exists(os.path.join(runs, "too-many", "config.json"))}
shutil.rmtree(tmp, ignore_errors=True)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def multi():
    """Run SCRIPT on four forced CPU devices; its JSON result."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={N_DEVICES}",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])}
    code = SCRIPT.replace("HERE", repr(HERE)).replace("N_DEVICES", str(N_DEVICES))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.mark.slow  # the 4-device subprocess: ~70 s alone (the fast sharding checks below stay default)
@pytest.mark.parametrize("case", ["fit_sine_spatial_al", "convection_causal_al"])
def test_four_devices_match_one_after_50_steps(multi, case):
    one, four = multi["runs"][case]["one"], multi["runs"][case]["four"]
    assert one["placement"] == [0] and four["placement"] == list(range(N_DEVICES))
    assert_same_run(one, four)
    assert one["loss"][-1] < one["loss"][0]  # it trained: the comparison is not of two idle runs


@pytest.mark.slow  # the 4-device subprocess: ~70 s alone (the fast sharding checks below stay default)
def test_the_compiled_step_splits_the_points(multi):
    hlo = multi["hlo"]
    # FitSine's hidden layer on 32 points: (8, 8) per device, never the whole (32, 8)
    assert hlo["local_rows"] > 0 and hlo["global_rows"] == 0, hlo
    assert hlo["all_reduce"] > 0  # the means and the gradient are summed across devices


@pytest.mark.slow  # the 4-device subprocess: ~70 s alone (the fast sharding checks below stay default)
@pytest.mark.parametrize("first,then", [(f"{N_DEVICES}", "None"), ("None", f"{N_DEVICES}")])
def test_checkpoint_written_with_one_placement_resumes_with_the_other(multi, first, then):
    resumed = multi["resume"][f"{first}->{then}"]
    straight = multi["runs"]["convection_causal_al"]["one"]
    assert resumed["placement"] == ([0] if then == "None" else list(range(N_DEVICES)))
    assert resumed["steps"] == straight["steps"]
    assert_same_run(straight, resumed)


@pytest.mark.slow  # the 4-device subprocess: ~70 s alone (the fast sharding checks below stay default)
def test_devices_given_as_a_list(multi):
    one, listed = multi["runs"]["pde_toy_penalty"]["one"], multi["runs"]["pde_toy_penalty"]["listed"]
    assert listed["placement"] == [1, 3]
    assert_same_run(one, listed)
    assert one["loss"][-1] != one["loss"][0]  # it moved (the penalty grows, so the loss need not fall)


@pytest.mark.slow  # the 4-device subprocess: ~70 s alone (the fast sharding checks below stay default)
def test_cli_devices_flag_and_an_uneven_batch(multi):
    cli = multi["cli"]
    assert cli["code"] == 0 and cli["devices"] == N_DEVICES and cli["steps"][-1] == 10
    assert cli["steps"] == cli["one_steps"]
    np.testing.assert_allclose(cli["loss"], cli["one_loss"], rtol=RTOL, atol=ATOL)
    # The batch is named; the terms computed from it are left to the compiler without a second warning.
    assert {w.split(" of shape")[0] for w in cli["warnings"]} == {"batch leaf ['x']"}
    assert all("30 points do not split evenly" in w for w in cli["warnings"])
    assert cli["too_many"] is not None and "devices=8" in cli["too_many"] and f"only {N_DEVICES}" in cli["too_many"]
    assert not cli["made_dir"]


# In this process: one CPU device.

def test_make_mesh_validates_devices():
    assert sharding.make_mesh(None) is None
    mesh = sharding.make_mesh(1)
    assert mesh.axis_names == ("batch",) and mesh.size == 1
    assert sharding.make_mesh([jax.devices()[0]]).size == 1
    n = len(jax.devices())
    with pytest.raises(ValueError, match=rf"devices={n + 1} requested but only {n} "):
        sharding.make_mesh(n + 1)
    for bad in (0, -2, True, 1.5, "2", [], [jax.devices()[0]] * 2, ["cpu:0"]):
        with pytest.raises(ValueError, match="devices"):
            sharding.make_mesh(bad)


def test_solve_rejects_too_many_devices_before_writing(tmp_path):
    problem = pinnopt.problems.get("rastrigin", dim=2)
    with pytest.raises(ValueError, match=rf"devices={len(jax.devices()) + 3} .*only {len(jax.devices())}"):
        pinnopt.solve(problem, steps=5, devices=len(jax.devices()) + 3, out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_point_sharding_splits_only_divisible_leading_axes():
    mesh = sharding.make_mesh(1)
    assert sharding.point_sharding((8, 2), mesh).spec == jax.sharding.PartitionSpec("batch")
    assert sharding.point_sharding((), mesh).spec == jax.sharding.PartitionSpec()
    assert sharding.shard_points({"x": jnp.ones(3)}, None)["x"].shape == (3,)


def test_initialize_distributed_reads_and_checks_the_environment():
    assert sharding.distributed_requested({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"})
    assert sharding.distributed_requested({"JAX_NUM_PROCESSES": "2"})
    assert not sharding.distributed_requested({"JAX_PROCESS_ID": "", "PATH": "/bin"})
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES must be an integer"):
        sharding.initialize_distributed(environ={"JAX_NUM_PROCESSES": "two"})
    with pytest.raises(ValueError, match=r"JAX_PROCESS_ID.*0 \.\. 1, got 2"):
        sharding.initialize_distributed(environ={"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1",
                                                 "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"})
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES.*>= 1"):
        sharding.initialize_distributed(environ={"JAX_NUM_PROCESSES": "0"})


WORKER = r"""
import json, sys
sys.path.insert(0, HERE)
from pinnopt import sharding
# reads JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID
info = sharding.initialize_distributed() if sharding.distributed_requested() else {"num_processes": 1}
import jax, numpy as np, pinnopt
from solve_problems import FitSine
kw = dict(chunk=10, seed=1, optimizer_kwargs={"learning_rate": 0.01})
devices = None if info["num_processes"] == 1 else jax.device_count()
out = sys.argv[1]
pinnopt.solve(FitSine(), steps=20, devices=devices, out=out, **kw)
res = pinnopt.solve(FitSine(), steps=30, devices=devices, resume=out, **kw)
print("RESULT " + json.dumps({"info": info, "loss": [r["loss"] for r in res.history],
                              "params": [np.asarray(x).ravel().tolist() for x in jax.tree_util.tree_leaves(res.state.params)]}))
"""


@pytest.mark.slow
def test_two_processes_on_this_host_match_one(tmp_path):
    """Two processes joined by ``initialize_distributed`` (localhost coordinator, one CPU device
    each) train, checkpoint and resume like one process; only the first writes metrics.jsonl."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = WORKER.replace("HERE", repr(HERE))
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    base.update({"JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""})
    env = {**base, "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "two")], text=True,
                              env={**env, "JAX_PROCESS_ID": str(i)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(2)]
    single = subprocess.run([sys.executable, "-c", code, str(tmp_path / "one")], env=base,
                            capture_output=True, text=True, timeout=600)
    outs = [p.communicate(timeout=600) for p in procs]
    results = []
    for (stdout, stderr), p in zip(outs + [(single.stdout, single.stderr)], procs + [single]):
        assert p.returncode == 0, stderr[-3000:]
        results.append(json.loads([l for l in stdout.splitlines() if l.startswith("RESULT ")][-1][7:]))
    first, second, one = results
    assert first["info"]["global_devices"] == 2 and first["info"]["local_devices"] == 1
    assert first["loss"] == second["loss"]
    np.testing.assert_allclose(first["loss"], one["loss"], rtol=RTOL, atol=ATOL)
    for x, y in zip(first["params"], one["params"]):
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)
    rows = [json.loads(line)["step"] for line in open(tmp_path / "two" / "metrics.jsonl")]
    assert rows == [json.loads(line)["step"] for line in open(tmp_path / "one" / "metrics.jsonl")]
