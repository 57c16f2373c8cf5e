"""The deep past's collocation times: uniform in ln a of the background, inside the window."""
import math

import jax
import numpy as np
import pytest

from cosmology.collocation import past_times
from cosmology.metric import Background

KEY = jax.random.PRNGKey(3)


def test_past_times_spread_over_e_folds_of_the_background():
    # EdS between z = 50 and z = 2.49 (the default deep past): a third of the points in the CMB
    # window z in [20, 50] (ln(51/21) / ln(51/3.49) = 0.331), where uniform-in-t sampling put 5%.
    bg = Background("matter")
    t0, t1, t20 = (float(bg.time_at_redshift(z)) for z in (50.0, 2.49, 20.0))
    t = np.asarray(jax.jit(lambda k: past_times(k, 20000, t0, t1, bg))(KEY))
    assert t.min() >= t0 and t.max() <= t1
    share = np.mean(t <= t20)
    expected = math.log(51 / 21) / math.log(51 / 3.49)
    assert share == pytest.approx(expected, abs=0.01)
    assert (t20 - t0) / (t1 - t0) < 0.06  # the share uniform-in-t sampling would give
    # ln a is uniform: its histogram is flat.
    lna = np.log(np.asarray(bg.scale_factor(t), np.float64))
    counts, _ = np.histogram(lna, bins=10)
    assert counts.min() > 0.9 * counts.mean()


def test_past_times_are_uniform_in_t_without_a_usable_log_range():
    for bg in (Background("de_sitter"), Background("static")):  # ln a = t, and no ln a at all
        t = np.asarray(past_times(KEY, 20000, -1.0, -0.2, bg))
        assert t.min() >= -1.0 and t.max() <= -0.2
        assert np.mean(t) == pytest.approx(-0.6, abs=0.01)
