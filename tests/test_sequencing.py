"""Library complexity and the sequencing cost model (helpers.sequencing), and the planner on it."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import plan
from helpers.sequencing import LibraryComplexity, SequencingCosts


def test_umis_follow_the_closed_form_and_invert():
    lib = LibraryComplexity(10_000)
    r = np.array([100.0, 5_000.0, 10_000.0, 50_000.0])
    np.testing.assert_allclose(lib.umis(r), 10_000 * (1 - np.exp(-r / 10_000)), rtol=1e-12)
    np.testing.assert_allclose(lib.reads(lib.umis(r)), r, rtol=1e-9)
    assert lib.reads(10_000) == np.inf and lib.reads(12_000) == np.inf
    assert lib.umis(1.0) == pytest.approx(1.0, rel=1e-4)  # the first read is always new
    # saturation: 1 − u/r, from 0 at no depth towards 1
    assert lib.saturation(10_000) == pytest.approx(np.exp(-1.0), abs=1e-12)


def test_umis_match_thinning_simulated_reads():
    """Reads drawn uniformly from a library of m molecules: distinct ones counted."""
    rng = np.random.default_rng(0)
    m = 4_000
    lib = LibraryComplexity(m)
    for reads in (500, 4_000, 12_000):
        found = [np.unique(rng.integers(0, m, size=reads)).size for _ in range(200)]
        sd = np.std(found) / np.sqrt(len(found))
        assert np.mean(found) == pytest.approx(lib.umis(reads), abs=4 * sd + 1)


def test_fits_from_a_pilot_and_cellranger_metrics_recover_the_library():
    lib = LibraryComplexity(8_000, usable_fraction=0.8)
    reads = 30_000.0
    u = lib.umis(reads)
    pilot = LibraryComplexity.from_pilot(reads * 0.8, u)  # usable reads of the pilot
    assert pilot.molecules_per_cell == pytest.approx(8_000, rel=1e-9)
    ranger = LibraryComplexity.from_cellranger(
        mean_reads_per_cell=reads, sequencing_saturation=lib.saturation(reads),
        median_umis_per_cell=u)
    assert ranger.molecules_per_cell == pytest.approx(8_000, rel=1e-9)
    assert ranger.usable_fraction == pytest.approx(0.8, rel=1e-9)
    with pytest.raises(ValueError, match="fewer UMIs than reads"):
        LibraryComplexity.from_pilot(1_000, 1_000)
    with pytest.raises(ValueError, match="saturation must be in"):
        LibraryComplexity.from_saturation(1_000, 1.2)
    with pytest.raises(ValueError, match="more usable reads"):
        LibraryComplexity.from_cellranger(mean_reads_per_cell=1_000, sequencing_saturation=0.9,
                                          median_umis_per_cell=900)


def test_costs_against_hand_computed_examples():
    lib = LibraryComplexity(20_000)
    costs = SequencingCosts(lib, per_read=1e-6, per_lane=1_000.0, per_cell=0.01, fixed=500.0)
    assert costs.lane_capacity == 6_250  # 5 % doublets at 0.8 % per 1,000 cells
    assert costs.lanes(6_250) == 1 and costs.lanes(6_251) == 2
    reads = -20_000 * np.log(1 - 5_000 / 20_000)  # 5,753.64 reads per cell for 5,000 UMIs
    expected = 500 + 2 * 1_000 + 10_000 * 0.01 + 10_000 * reads * 1e-6
    assert costs.total(10_000, 5_000) == pytest.approx(expected, rel=1e-12)
    # the budget's depth inverts the total
    u = costs.depth_on_budget(10_000, expected)
    assert float(u) == pytest.approx(5_000, rel=1e-9)
    # most cells: budget − fixed buys whole lanes only
    assert costs.max_cells(500 + 3 * 1_000 + 18_750 * 0.01 + 1) == pytest.approx(18_750)
    assert costs.max_cells(400) == 0.0
    pro_rata = SequencingCosts(lib, per_read=1e-6, per_lane=1_000.0, whole_lanes=False)
    assert pro_rata.total(3_125, 0.0) == pytest.approx(500.0)
    with pytest.raises(ValueError, match="max_doublets"):
        SequencingCosts(lib, per_read=1e-6, max_doublets=1.5)
    with pytest.raises(ValueError, match="per_read"):
        SequencingCosts(lib, per_read=0)


def _fit():
    from helpers import laws

    params = {"u_bar": 500.0, "i_inf": 3.0, "n_sat": 300.0, "s": 0.5}
    return laws.JointLawFit.from_dict({
        "law": "joint", "form": "naive", "params": params,
        "errors": dict.fromkeys(params, 0.0), "cov": [[0] * 4] * 4, "r_squared": 1.0,
        "theta": [np.log(500.0), 3.0, np.log(300.0), np.log(0.5)], "success": True})


def test_the_planner_spends_the_budget_through_reads_and_lanes():
    costs = SequencingCosts(LibraryComplexity(5_000), per_read=1e-6, per_lane=200.0)
    d = plan.optimal_design(_fit(), 2_000.0, costs=costs, uncertainty=0)
    assert d.cost == pytest.approx(2_000.0, rel=1e-6)
    assert d.umis_per_cell < 5_000  # never beyond the library
    # a deeper library needs fewer reads for the same UMIs: it buys at least as much
    rich = SequencingCosts(LibraryComplexity(50_000), per_read=1e-6, per_lane=200.0)
    assert plan.optimal_design(_fit(), 2_000.0, costs=rich, uncertainty=0).mi >= d.mi - 1e-9


def test_budgets_that_buy_no_cell_or_no_read_are_refused():
    costs = SequencingCosts(LibraryComplexity(5_000), per_read=1e-6, per_lane=200.0,
                            fixed=100.0)
    with pytest.raises(ValueError, match="buys at most 0 cells"):
        plan.optimal_design(_fit(), 150.0, costs=costs, uncertainty=0)
    with pytest.raises(ValueError, match="nothing for reads"):
        plan.optimal_design(_fit(), 300.0, costs=costs, uncertainty=0, n_range=(6_250, 1e6))


def test_the_command_line_prints_reads_per_cell_and_lanes(capsys, monkeypatch, tmp_path):
    path = plan.save_fit(_fit(), tmp_path / "fit.json")
    assert plan.main(["--fit", str(path), "--budget", "5000", "--cost-per-read", "1e-6",
                      "--pilot", "20000", "8000", "--cost-per-lane", "300", "--draws",
                      "0"]) == 0
    out = capsys.readouterr().out
    assert "reads per cell" in out and "lanes of at most 6,250 cells" in out
    with pytest.raises(SystemExit):
        plan.main(["--fit", str(path), "--budget", "5000", "--pilot", "20000", "8000"])
    assert "give --cost-per-read" in capsys.readouterr().err
