"""The planner against brute force, its interval against a bootstrap, and its command line."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import laws, plan, published

TRUTH = dict(u_bar=600.0, i_inf=2.5, n_sat=300.0, s=0.6, beta=1.2)


def _synthetic(sd=0.04, seeds=2, seed=0):
    rng = np.random.default_rng(seed)
    nn, xx = np.meshgrid(np.geomspace(100, 1e5, 10), np.geomspace(10, 1e4, 10))
    n, x = np.repeat(nn.ravel(), seeds), np.repeat(xx.ravel(), seeds)
    return n, x, laws.joint_law(n, x, **TRUTH) + rng.normal(0, sd, n.size)


@pytest.fixture(scope="module")
def synthetic_fit():
    return laws.fit_joint_law(*_synthetic())


@pytest.fixture(scope="module")
def released():
    sc = published.single_cell()
    return {k: g for k, g in sc.groupby(["task", "model"])}


COSTS = [
    plan.Costs(),  # a pure UMI budget
    plan.Costs(per_cell=2000.0, per_umi=1.0),  # a cell costs as much as 2,000 UMIs
    plan.Costs.from_reads(per_cell=0.5, per_read=1e-5, reads_per_umi=3.0, fixed=100.0),
]


@pytest.mark.parametrize("costs", COSTS)
@pytest.mark.parametrize("budget_scale", [1e7, 1e9])
def test_optimum_matches_brute_force(synthetic_fit, costs, budget_scale):
    budget = costs.fixed + budget_scale * max(costs.per_umi, 1e-3)
    opt = plan.optimal_design(synthetic_fit, budget, costs=costs, uncertainty=0)
    ref = plan.brute_force_design(synthetic_fit, budget, costs=costs)
    assert opt.cost == pytest.approx(budget, rel=1e-9)  # on the budget line
    assert opt.mi >= ref.mi * (1 - 1e-6)  # never worse than 200,001 designs
    assert opt.mi == pytest.approx(ref.mi, rel=0.01)
    assert opt.cells == pytest.approx(ref.cells, rel=0.01)


@pytest.mark.parametrize("key", [("Temporal MI", "SCVI"), ("Protein MI", "Geneformer"),
                                 ("Spatial MI", "PCA"), ("Clonal MI", "SCVI")])
def test_optimum_matches_brute_force_on_released_grids(released, key):
    g = released[key]
    fit = laws.fit_joint_law(g["size"], g["x"], g["mi"])
    for budget in (1e7, 1e9, 1e11):
        opt = plan.optimal_design(fit, budget, uncertainty=0)
        ref = plan.brute_force_design(fit, budget)
        assert abs(opt.mi - ref.mi) <= 0.01 * abs(ref.mi)


def test_depth_limit_is_respected_and_binds_like_brute_force(synthetic_fit):
    opt = plan.optimal_design(synthetic_fit, 1e9, max_depth=500.0, uncertainty=0)
    ref = plan.brute_force_design(synthetic_fit, 1e9, max_depth=500.0)
    assert opt.umis_per_cell <= 500.0 * (1 + 1e-9)
    assert opt.mi == pytest.approx(ref.mi, rel=0.01)
    cheap = plan.cheapest_design(synthetic_fit, fraction=0.5, max_depth=200.0, uncertainty=0)
    assert cheap.umis_per_cell <= 200.0 * (1 + 1e-9)
    # a budget larger than the allowed box buys its corner, under budget
    corner = plan.optimal_design(synthetic_fit, 1e15, within=10, uncertainty=0)
    assert corner.cells == pytest.approx(1e6) and corner.umis_per_cell == pytest.approx(1e5)
    assert corner.cost < 1e15


def test_more_budget_never_buys_less(synthetic_fit):
    curve = plan.allocation_curve(synthetic_fit, np.geomspace(1e6, 1e11, 12))
    assert np.all(np.diff(curve["mi"]) > 0)
    assert np.all(curve["mi"] < TRUTH["i_inf"] + 0.2)


def test_cheapest_design_reaches_the_target_and_beats_a_grid(synthetic_fit):
    costs = plan.Costs(per_cell=500.0, per_umi=1.0)
    d = plan.cheapest_design(synthetic_fit, fraction=0.8, costs=costs, uncertainty=0)
    assert d.mi == pytest.approx(0.8 * synthetic_fit.params["i_inf"], rel=1e-6)
    n, x = (a.ravel() for a in np.meshgrid(np.geomspace(10, 1e9, 600), np.geomspace(1, 1e7, 600)))
    ok = synthetic_fit.predict(n, x) >= d.mi
    assert d.cost <= costs.total(n[ok], x[ok]).min() * (1 + 1e-6)
    assert d.cost >= costs.total(n[ok], x[ok]).min() * 0.97  # and the grid comes close
    # the same target through the optimiser's other door: its budget buys exactly the target
    back = plan.optimal_design(synthetic_fit, d.cost, costs=costs, uncertainty=0)
    assert back.mi == pytest.approx(d.mi, abs=1e-4)


def test_interval_agrees_with_a_bootstrap_over_cells(released):
    g = released[("Temporal MI", "Geneformer")]
    fit = laws.fit_joint_law(g["size"], g["x"], g["mi"])
    cov = plan.optimal_design(fit, 1e9, uncertainty=300, seed=1)
    boots = plan.bootstrap_fits(g["size"], g["x"], g["mi"], replicates=60, seed=2)
    boot = plan.optimal_design(fit, 1e9, uncertainty=boots)
    assert cov.mi_lo < cov.mi < cov.mi_hi and boot.mi_lo < boot.mi < boot.mi_hi
    width_cov, width_boot = cov.mi_hi - cov.mi_lo, boot.mi_hi - boot.mi_lo
    assert 0.5 < width_cov / width_boot < 2.0
    assert abs(0.5 * (cov.mi_lo + cov.mi_hi) - 0.5 * (boot.mi_lo + boot.mi_hi)) < width_boot


def test_interval_covers_the_truth_in_repeated_experiments():
    # covariance intervals of the information at a design, over independent noisy grids
    design_n, design_x, hits = 2e4, 800.0, 0
    truth = laws.joint_law(design_n, design_x, **TRUTH)
    for seed in range(20):
        fit = laws.fit_joint_law(*_synthetic(seed=seed))
        draws = fit.sample_params(300, seed=seed)
        mi = [laws.joint_law(design_n, design_x, **p) for p in draws]
        lo, hi = np.quantile(mi, [0.025, 0.975])
        hits += lo <= truth <= hi
    assert hits >= 16  # nominal 95 %: 19 of 20; fewer than 16 would be a broken interval


def test_marginal_laws_make_a_naive_joint_law():
    x = np.repeat(np.geomspace(10, 1e4, 10), 3)
    noise = laws.fit_noise_law(x, laws.noise_law(x, 500.0, 2.0) + 0.01 * np.sin(x))
    n = np.repeat(np.geomspace(100, 1e5, 10), 3)
    cell = laws.fit_cell_law(n, laws.cell_law(n, 200.0, 0.5, 2.2) + 0.01 * np.cos(n))
    law = plan.law_from_marginals(noise, cell, n_ref=1e5)
    np.testing.assert_allclose(law.predict(1e5, x), noise.predict(x), atol=0.02)
    d = plan.optimal_design(law, 1e8, uncertainty=50)
    assert d.mi_lo <= d.mi <= d.mi_hi


def test_bad_input_is_named(synthetic_fit):
    with pytest.raises(ValueError, match="per_cell"):
        plan.Costs(per_cell=-1.0)
    with pytest.raises(ValueError, match="reads_per_umi"):
        plan.Costs.from_reads(per_read=1.0, reads_per_umi=0.5)
    with pytest.raises(ValueError, match="exceed the fixed cost"):
        plan.optimal_design(synthetic_fit, 10.0, costs=plan.Costs(fixed=100.0))
    with pytest.raises(ValueError, match="exactly one"):
        plan.cheapest_design(synthetic_fit, target=1.0, fraction=0.5)
    with pytest.raises(ValueError, match="target must lie"):
        plan.cheapest_design(synthetic_fit, target=10.0)
    with pytest.raises(ValueError, match="Unknown released task"):
        plan.fit_released("weather", "PCA")


def test_command_line_budget_save_and_reload(tmp_path, capsys):
    path = tmp_path / "fit.json"
    assert plan.main(["--task", "temporal", "--model", "SCVI", "--budget", "1e9",
                      "--draws", "20", "--save", str(path), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["design"]["cost"] == pytest.approx(1e9)
    assert plan.main(["--fit", str(path), "--budget", "1e9", "--draws", "20", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["design"]["cells"] == pytest.approx(first["design"]["cells"], rel=1e-6)
    assert plan.main(["--fit", str(path), "--fraction", "0.9", "--cost-per-read", "1",
                      "--reads-per-umi", "3", "--cost-per-cell", "100", "--draws", "0"]) == 0
    text = capsys.readouterr().out
    assert "cells ×" in text and "90% of" in text


def test_command_line_help_and_errors(capsys):
    with pytest.raises(SystemExit) as exit_:
        plan.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("--budget", "--cost-per-cell", "--fit", "examples:", "released task"):
        assert phrase in text
    for argv in (["--budget", "1e9"], ["--task", "protein", "--budget", "1e9"],
                 ["--task", "protein", "--model", "PCA", "--budget", "1", "--target", "1"],
                 ["--task", "protein", "--model", "PCA", "--cost-per-read", "1"]):
        with pytest.raises(SystemExit) as exit_:
            plan.main(argv)
        assert exit_.value.code == 2


def test_table_of_every_released_optimum_is_finite(released):
    rows, refused = [], []
    for (task, model), g in released.items():
        fit = laws.fit_joint_law(g["size"], g["x"], g["mi"])
        if not fit.success:  # a failed fit is refused, never planned on
            with pytest.raises(ValueError, match="did not converge"):
                plan.optimal_design(fit, 1e9, uncertainty=0)
            refused.append((task, model))
            continue
        d = plan.optimal_design(fit, 1e9, uncertainty=0)
        rows.append({"task": task, "model": model, **d.to_dict()})
    table = pd.DataFrame(rows)
    assert len(table) + len(refused) == 16 and len(table) >= 14
    assert all(model == "RandomProjection" for _, model in refused)
    assert np.isfinite(table[["cells", "umis_per_cell", "mi"]]).all().all()
    assert (table["cost"] - 1e9).abs().max() < 1e-3
