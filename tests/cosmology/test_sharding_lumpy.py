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

HELPERS = str(Path(__file__).resolve().parents[1] / "pinnopt")  # the core's test helpers
sys.path.insert(0, HELPERS)
from solve_problems import assert_same_run  # noqa: E402  (the core's sharding comparison)

N_DEVICES = 4

# About 7 minutes on 2 cores (4 lumpy solves on forced devices, each compiling its programs): the
# default suite would pass 10 minutes with it, so it runs with `-m slow`. The core's forced-device
# tests (tests/pinnopt/test_sharding.py) stay in the default suite.
pytestmark = pytest.mark.slow

SCRIPT = r"""
import json, os, shutil, sys, tempfile
sys.path.insert(0, HELPERS)
import jax, numpy as np
import pinnopt
from cosmology.problem import make_lumpy
from solve_problems import cache_compilations, run_report

assert jax.device_count() == N_DEVICES, jax.devices()
tmp = tempfile.mkdtemp()
cache_compilations(os.path.join(tmp, "xla-cache"))  # the resumed runs load the programs compiled before

def report(res):
    return run_report(res, heldout_prefixes=("heldout", "eval/"), series=["param/omega_m"])

problem = make_lumpy("quick", data_path=DATA)
d = problem.solve_defaults()
common = dict(optimizer=d["optimizer"], optimizer_kwargs=d["optimizer_kwargs"], constraints=d["constraints"],
              balancing=d["balancing"], seed=1, chunk=25, checkpoint_every=25)
batch = problem.sample(jax.random.PRNGKey(0), 0)
out = {"batch": {k: list(v.shape) for k, v in batch.items()}, "runs": {}, "resume": {}}
dirs = {}
for name, devices in (("one", None), ("four", N_DEVICES)):
    dirs[name] = os.path.join(tmp, name)
    out["runs"][name] = report(pinnopt.solve(problem, steps=50, devices=devices, out=dirs[name], **common))

# Interrupted after the step-25 checkpoint: resume it with the other placement.
for first, then in (("four", None), ("one", N_DEVICES)):
    run = os.path.join(tmp, f"{first}-then-{then}")
    shutil.copytree(dirs[first], run)
    shutil.rmtree(os.path.join(run, "checkpoints", "50"))
    out["resume"][first] = report(pinnopt.solve(problem, steps=50, devices=then, resume=run, **common))

# Where the rays go: the distances of rays split over the devices are traced on 3 rays per
# device (ray states f32[3, 4]), never on all 12 at once (f32[12, 4]) as on one device.
from pinnopt import sharding
params = problem.init(jax.random.PRNGKey(0))
rays = batch["rays"]
distances = lambda p, r: problem.distances(p, None, r)
hlo = {}
for name, placed in (("one", rays), ("four", jax.device_put(rays, sharding.split(sharding.make_mesh(N_DEVICES))))):
    text = jax.jit(distances).lower(params, placed).compile().as_text()
    hlo[name] = {"local": text.count("f32[3,4]"), "global": text.count("f32[12,4]")}
out["hlo"] = hlo
shutil.rmtree(tmp, ignore_errors=True)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def lumpy_multi(pantheon_dir):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={N_DEVICES}",
           "JAX_PLATFORMS": "cpu"}
    code = (SCRIPT.replace("N_DEVICES", str(N_DEVICES)).replace("DATA", repr(str(pantheon_dir)))
            .replace("HELPERS", repr(HELPERS)))
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
    np.testing.assert_allclose(one["param/omega_m"], four["param/omega_m"], rtol=RTOL)
    # It trained, so the runs compared are not two idle ones; chi^2 and Omega_m moved.
    assert one["loss"][-1] < 0.6 * one["loss"][0]
    assert one["param/omega_m"][-1] != one["param/omega_m"][0]
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
