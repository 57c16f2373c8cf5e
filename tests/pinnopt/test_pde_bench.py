"""The PDE benchmark engine: tiny comparisons through solve, tables whose every number has its seeds and spread."""
import argparse
import json
import math
import re

import jax
import numpy as np
import pytest

from pinnopt.cli import bench as bench_cli
from pinnopt.experiments import comparison as B
from pinnopt.experiments import pde_comparisons as P
from pinnopt.terms import Constraint, Objective

CELL = re.compile(r"^(-?[0-9.e+-]+) \[(-?[0-9.e+-]+), (-?[0-9.e+-]+)\] n=(\d+)( \+\d+ diverged)?$")
TINY_CONVECTION = dict(width=8, depth=1, n_points=32, n_ic=8, problem={"n_eval_t": 5, "n_eval_x": 8})
TINY_TOY = dict(width=8, depth=1, fourier_features=0, n_interior=16, n_boundary=8,
                problem={"n_eval": 9, "n_eval_boundary": 8})


def cells(table: str) -> list:
    """Rows of a formatted table as lists of cells (columns split on two or more spaces)."""
    lines = table.splitlines()
    return [re.split(r"\s{2,}", line.strip()) for line in lines[2:]]


def test_spread_and_its_format():
    s = B.spread([3.0, 1.0, 2.0, math.nan])
    assert s == B.Spread(2.0, 1.0, 3.0, 3, 1)
    assert B.format_spread(s) == "2 [1, 3] n=3 +1 diverged"
    assert B.format_spread(B.spread([0.5])) == "0.5 [0.5, 0.5] n=1"
    assert B.format_spread(B.spread([math.inf, math.nan])) == "- n=0 +2 diverged"


@pytest.fixture(scope="module")
def convection():
    configs = P.convection_configs(beta=5.0, n_chunks=4, spatial_width=4, select=["sum", "spatial+causal"],
                                   **TINY_CONVECTION)
    return B.run_comparison("convection", configs, steps=6, seeds=[0, 1], chunk=6)


@pytest.mark.slow  # the fixture: ~60 s, the comparison engine runs 4 tiny trainings
def test_convection_table_gives_every_number_with_seed_count_and_spread(convection):
    assert [(r.label, r.seed) for r in convection.records] == [("sum", 0), ("sum", 1), ("spatial+causal", 0),
                                                                ("spatial+causal", 1)]
    rows = cells(B.format_table(convection))
    assert [r[0] for r in rows] == ["sum", "spatial+causal"]
    for row in rows:
        assert len(row) == 1 + len(convection.columns)
        for header_metric, cell in zip(convection.columns, row[1:]):
            if row[0] == "sum" and header_metric[1] == "causal/min_weight":
                assert cell == "(no causal weights)"
                continue
            m = CELL.match(cell)
            assert m, cell
            median, low, high, n = float(m[1]), float(m[2]), float(m[3]), int(m[4])
            assert n == 2 and low <= median <= high
    # the cell is the statistic of the records: rel L2 median over the two seeds
    causal = convection.records_of("spatial+causal")
    rel = [r.final["eval/rel_l2"] for r in causal]
    assert rel[0] != rel[1]  # different seeds, different runs
    assert B.metric_spread(causal, "eval/rel_l2") == B.Spread(float(np.median(rel)), min(rel), max(rel), 2, 0)
    assert all(0 <= r.final["causal/min_weight"] <= 1 and "spatial/w_mean" in r.final for r in causal)


@pytest.mark.slow  # the same fixture
def test_convection_min_weight_over_training(convection):
    text = B.format_trace_table(convection, "causal/min_weight", fractions=(0.5, 1.0))
    rows = cells(text)
    assert text.splitlines()[0].split()[1:] == ["step", "3", "step", "6"]
    assert [r[0] for r in rows] == ["spatial+causal"]  # sum logs no causal weights
    assert all(CELL.match(c) and CELL.match(c)[4] == "2" for c in rows[0][1:])
    full = B.format_comparison(convection)
    assert "causal minimum weight over training" in full and "cells: median [min, max] n=seeds" in full


@pytest.mark.slow  # ~35 s of training
def test_pde_toy_branches_are_counted_over_seeds():
    configs = P.pde_toy_configs(select=["al/adam"], **TINY_TOY)
    comp = B.run_comparison("pde_toy", configs, steps=2, seeds=[0, 1], chunk=2)
    rows = cells(B.format_table(comp))
    branch_col = [h for h, _ in comp.columns].index("branch") + 1
    for row in rows:
        m = re.match(r"^exact (\d+), second (\d+), none (\d+) \(n=2\)$", row[branch_col])
        assert m and sum(int(g) for g in m.groups()) == 2
        assert all(CELL.match(c) for i, c in enumerate(row[1:], 1) if i != branch_col)
    assert all("violation/bc" in r.final and "lam/bc" in r.final for r in comp.records)


def test_pde_toy_penalty_is_the_talks_loss():
    penalty, al_mean = P.pde_toy_configs(select=["penalty/adam", "al-mean/adam"], **TINY_TOY)
    problem = B.build_problem(penalty)
    params = problem.init(jax.random.key(0))
    terms = problem.terms(params, problem.sample(jax.random.key(1), 0))
    assert isinstance(terms["bc"], Objective) and penalty.constraints == "none"
    assert penalty.balancing_kwargs == {"weights": {"bc": 1e5}}
    # al: the problem's own point-wise constraint u - g; al-mean: the same declared a mean one
    al = P.pde_toy_configs(select=["al/adam"], **TINY_TOY)[0]
    assert al.constraints == "al" and al.squared == () and al.aggregate == {}
    mean_problem = B.build_problem(al_mean)
    assert isinstance(mean_problem, B.Redeclared) and al_mean.aggregate == {"bc": "mean"}
    assert mean_problem.terms(params, problem.sample(jax.random.key(1), 0))["bc"].aggregate == "mean"


def test_squared_constraints_is_a_deprecated_alias_with_the_old_numbers():
    config = P.pde_toy_configs(select=["al/adam"], **TINY_TOY)[0]
    plain = B.build_problem(config)
    with pytest.warns(DeprecationWarning, match="point-wise by default"):
        wrapped = B.SquaredConstraints(plain, ("bc",))
    params = wrapped.init(jax.random.key(0))
    batch = wrapped.sample(jax.random.key(1), 0)
    value = plain.terms(params, batch)["bc"].value
    squared = wrapped.terms(params, batch)["bc"]
    assert isinstance(squared, Constraint) and squared.kind == "eq" and squared.aggregate == "mean"
    np.testing.assert_allclose(squared.value, value**2, rtol=1e-6)
    assert isinstance(wrapped.terms(params, batch)["pde"], Objective)
    assert wrapped.config()["squared_constraints"] == ["bc"] and set(wrapped.evaluate(params)) >= {"rel_l2", "u0"}
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="'pde' is not an equality constraint"):
        B.SquaredConstraints(plain, ("pde",)).terms(params, batch)
