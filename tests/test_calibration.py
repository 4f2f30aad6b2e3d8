"""Predictive intervals of the joint law, calibrated by extrapolation (helpers.laws.calibration)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import laws, plan
from helpers.laws import calibration

def _synthetic_fit(seed=0, sd=0.03):
    rng = np.random.default_rng(seed)
    n, x = (a.ravel() for a in np.meshgrid(np.geomspace(100, 1e4, 5), np.geomspace(10, 1e4, 6)))
    truth = dict(u_bar=600.0, i_inf=2.5, n_sat=300.0, s=0.6, beta=1.0)
    y = laws.joint_law(n, x, **truth) + rng.normal(0, sd, n.size)
    return laws.fit_joint_law(n, x, y, form="coupled"), truth


def test_the_interval_adds_seed_scatter_and_grows_with_extrapolation():
    fit, _ = _synthetic_fit()
    n_top = fit.domain["n"][1]
    lo_b, hi_b = fit.band(n_top, 1000.0, sigma=1.6448536)
    lo, hi = fit.interval(n_top, 1000.0, level=0.9)
    assert (hi - lo) > (hi_b - lo_b)  # the seed scatter is added
    inside = 1.6448536 * np.sqrt((hi_b - lo_b) ** 2 / (2 * 1.6448536) ** 2 + fit.resid_sd**2)
    assert (hi - lo) / 2 == pytest.approx(inside, rel=1e-6)  # no form error inside the grid
    halves = [np.diff(fit.interval(n_top * f, 1000.0))[0] / 2 for f in (1, 10, 100)]
    assert halves[0] < halves[1] < halves[2]
    kap = calibration.kappa("coupled")
    # two decades out, the form error alone is 2 kappa
    assert halves[2] >= 1.6448536 * 2 * kap * 0.999
    with pytest.raises(ValueError, match="level"):
        fit.interval(n_top, 10.0, level=1.5)


def test_calibrate_recovers_the_form_error_of_known_residuals():
    fit, truth = _synthetic_fit(sd=1e-4)
    n_top = fit.domain["n"][1]
    rows = []
    for shift in np.linspace(-0.2, 0.2, 41):  # held-out cells off by up to 0.2 bit, 1 decade out
        test = pd.DataFrame({"size": [10 * n_top], "x": [1000.0]})
        test["mi"] = fit.predict(test["size"], test["x"]) + shift
        rows.append({"form": "coupled", "fit": fit, "test": test})
    kap = calibrate_kappa = calibration.calibrate(rows)["coupled"]["kappa"]
    # 90 % of |shift| ≤ 0.18: kappa · z ≈ 0.18 bit per decade
    assert calibrate_kappa * 1.6448536 == pytest.approx(0.18, abs=0.011)
    assert kap > 0


def test_the_shipped_calibration_has_its_provenance_and_a_kappa_per_form():
    meta = __import__("json").loads(calibration.PATH.read_text())
    assert "benchmarks/extrapolation.py" in meta["script"]
    for form in ("naive", "coupled", "free"):
        k = calibration.kappa(form)
        assert 0 < k < 0.5 and meta["forms"][form]["grids"] == 16
    assert calibration.kappa("unknown-form") == max(calibration.kappa(f) for f in
                                                   ("naive", "coupled", "free"))


def test_a_saved_fit_keeps_its_scatter_and_refuses_a_bad_one(tmp_path):
    fit, _ = _synthetic_fit()
    back = plan.load_fit(plan.save_fit(fit, tmp_path / "f.json"))
    assert back.resid_sd == pytest.approx(fit.resid_sd)
    np.testing.assert_allclose(back.interval(5e4, 300.0), fit.interval(5e4, 300.0), rtol=1e-9)
    bad = fit.to_dict() | {"resid_sd": -1.0}
    with pytest.raises(ValueError, match="resid_sd"):
        laws.JointLawFit.from_dict(bad)


def test_designs_carry_the_predictive_interval_and_flag_far_extrapolation():
    fit, _ = _synthetic_fit()
    d = plan.optimal_design(fit, 1e8, uncertainty=0)
    assert d.pred_lo < d.mi < d.pred_hi
    far = plan.optimal_design(fit, 1e12, uncertainty=0, n_range=(1e7, 1e9))
    assert far.beyond_calibration and "calibrated for" in str(far)


def test_on_the_released_grids_the_default_interval_covers_without_its_own_grid():
    """Fit on sizes ≤ a tenth of the largest, judge every cell of the largest size, with the
    calibration refitted without the grid judged (leave one grid out)."""
    from helpers import published

    rows = laws.selection.released_held_out(published.single_cell(), forms=("coupled",))
    loo = laws.selection.extrapolation_table(rows, leave_one_out=True)
    assert len(loo) == 16
    assert loo["cover"].mean() >= 0.85
    assert loo["half"].median() <= 0.3
    assert loo["band_cover"].mean() < 0.4  # the fit's own band alone covers far less
