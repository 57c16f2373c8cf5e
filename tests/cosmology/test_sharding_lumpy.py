"""The ``lumpy`` quick preset split over 4 forced CPU devices matches the one-device run.

One subprocess started with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag
only acts before JAX starts) trains the preset for 50 steps on one device and on four, with
checkpoints every 25 steps; then it resumes each run's step-25 checkpoint (the later one
removed, as after an interruption) with the other placement. Collocation points, CMB points
and the sky grid's rays all travel in the sampled batch, so the four devices share all three.
It prints its numbers as JSON and the tests below judge them. The same comparison for the
core's PDE problems is in ``tests/pinnopt/test_sharding.py``.
"""
import json
import os
import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pinnopt"))
from solve_problems import assert_same_run  # noqa: E402  (the core's sharding comparison)

N_DEVICES = 4

SCRIPT = r"""
import json, os, shutil, sys, tempfile, time
import jax, numpy as np
import pinnopt
from cosmology.problem import make_lumpy

assert jax.device_count() == N_DEVICES, jax.devices()
tmp = tempfile.mkdtemp()
# The resumed runs compile the same programs again; the on-disk cache serves them.
jax.config.update("jax_compilation_cache_dir", os.path.join(tmp, "xla-cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

def flat(tree):
    return [np.asarray(x, np.float64).ravel().tolist() for x in jax.tree_util.tree_leaves(tree)]

def placement(state):
    return sorted({d.id for x in jax.tree_util.tree_leaves(state) for d in x.sharding.device_set})

def report(res):
    last = res.history[-1]
    return {"loss": [r["loss"] for r in res.history], "steps": [r["step"] for r in res.history],
            "heldout": {k: v for k, v in last.items() if k.startswith(("heldout", "eval/"))},
            "omega_m": [r["param/omega_m"] for r in res.history],
            "state": flat(res.state), "placement": placement(res.state)}

problem = make_lumpy("quick", data_path=DATA)
d = problem.solve_defaults()
common = dict(optimizer=d["optimizer"], optimizer_kwargs=d["optimizer_kwargs"], constraints=d["constraints"],
              balancing=d["balancing"], seed=1, chunk=25, checkpoint_every=25)
batch = problem.sample(jax.random.PRNGKey(0), 0)
out = {"batch": {k: list(v.shape) for k, v in batch.items()}, "runs": {}, "resume": {}, "seconds": {}}
dirs = {}
for name, devices in (("one", None), ("four", N_DEVICES)):
    dirs[name] = os.path.join(tmp, name)
    start = time.time()
    out["runs"][name] = report(pinnopt.solve(problem, steps=50, devices=devices, out=dirs[name], **common))
    out["seconds"][name] = time.time() - start

# Interrupted after the step-25 checkpoint: resume it with the other placement.
for first, then in (("four", None), ("one", N_DEVICES)):
    run = os.path.join(tmp, f"{first}-then-{then}")
    shutil.copytree(dirs[first], run)
    shutil.rmtree(os.path.join(run, "checkpoints", "50"))
    start = time.time()
    out["resume"][first] = report(pinnopt.solve(problem, steps=50, devices=then, resume=run, **common))
    out["seconds"][f"{first}-then"] = time.time() - start

# Where the rays go: the distances of rays split over the devices are traced on 3 rays per
# device (ray states f32[3, 4]), never on all 12 at once (f32[12, 4]) as on one device.
from pinnopt import sharding
start = time.time()
params = problem.init(jax.random.PRNGKey(0))
rays = batch["rays"]
distances = lambda p, r: problem.distances(p, None, r)
hlo = {}
for name, placed in (("one", rays), ("four", jax.device_put(rays, sharding.split(sharding.make_mesh(N_DEVICES))))):
    text = jax.jit(distances).lower(params, placed).compile().as_text()
    hlo[name] = {"local": text.count("f32[3,4]"), "global": text.count("f32[12,4]")}
out["hlo"] = hlo
out["seconds"]["hlo"] = time.time() - start
shutil.rmtree(tmp, ignore_errors=True)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def lumpy_multi(pantheon_dir):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={N_DEVICES}",
           "JAX_PLATFORMS": "cpu"}
    code = SCRIPT.replace("N_DEVICES", str(N_DEVICES)).replace("DATA", repr(str(pantheon_dir)))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


# 50 float32 Adam steps through ray tracing (Newton root finding on dense output) and the
# Einstein equations: sums in another order move the last digits further than in the PDE toys.
RTOL, ATOL = 1e-3, 1e-5


def test_points_and_rays_come_in_the_batch_and_split_evenly(lumpy_multi):
    assert lumpy_multi["batch"] == {"points": [200, 4], "cmb": [40, 4], "rays": [12, 3]}
    assert all(shape[0] % N_DEVICES == 0 for shape in lumpy_multi["batch"].values())


def test_four_devices_match_one_after_50_steps(lumpy_multi):
    one, four = lumpy_multi["runs"]["one"], lumpy_multi["runs"]["four"]
    assert one["placement"] == [0] and four["placement"] == list(range(N_DEVICES))
    assert one["steps"][-1] == 50
    assert_same_run(one, four, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(one["omega_m"], four["omega_m"], rtol=RTOL)
    # It trained, so the runs compared are not two idle ones; chi^2 and Omega_m moved.
    assert one["loss"][-1] < 0.6 * one["loss"][0]
    assert one["omega_m"][-1] != one["omega_m"][0]
    assert {"eval/chi2", "heldout_raw/supernovae", "heldout_violation/weak_energy"} <= set(one["heldout"])


@pytest.mark.parametrize("first", ["four", "one"])
def test_checkpoint_of_one_placement_resumes_with_the_other(lumpy_multi, first):
    straight, resumed = lumpy_multi["runs"]["one"], lumpy_multi["resume"][first]
    assert resumed["placement"] == ([0] if first == "four" else list(range(N_DEVICES)))
    assert resumed["steps"] == straight["steps"]  # rows 1-25 read back, 26-50 trained after the resume
    assert_same_run(straight, resumed, rtol=RTOL, atol=ATOL)


def test_each_device_traces_its_own_rays(lumpy_multi):
    one, four = lumpy_multi["hlo"]["one"], lumpy_multi["hlo"]["four"]
    assert one["global"] > 0  # the ray states of all 12 rays, on one device
    assert four["global"] == 0 and four["local"] > one["local"]  # 3 rays a device, never all 12
