"""How well the joint law extrapolates in cells, and how often its intervals cover.

For every released single-cell grid (task × model, 16 in all) the joint law is fitted to the
training sizes up to a tenth of the grid's largest, and its prediction at the largest size
is compared with every held-out cell of the grid (each depth and seed)
(:func:`helpers.laws.selection.released_held_out`).  Printed per grid and form: RMSE
(bits), the coverage of the nominal-90 % band of the fit's parameters alone and its median
half-width, and the same for the calibrated predictive interval
(:meth:`helpers.laws.JointLawFit.interval`), with the calibration fitted on every grid
(``cover``) and without the grid it is judged on (``cover_loo``)::

    PYTHONPATH=src NOISESCALING_DATA_MIRROR=$PWD/../shared/data \\
        python benchmarks/extrapolation.py
    python benchmarks/extrapolation.py --write   # refit the shipped laws/calibration.json
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true",
                    help="refit the calibration on all grids and write laws/calibration.json")
    ap.add_argument("--frac", type=float, default=0.1)
    args = ap.parse_args(argv)
    from helpers.laws import calibration as cal
    from helpers.laws import selection

    from helpers import published

    rows = selection.released_held_out(published.single_cell(), frac=args.frac)
    if args.write:
        print(f"wrote {cal.write(cal.calibrate(rows), frac=args.frac)}")
    pooled = selection.extrapolation_table(rows, calibration=cal.load(), leave_one_out=False)
    loo = selection.extrapolation_table(rows, leave_one_out=True)
    pooled["cover_loo"], pooled["half_loo"] = loo["cover"], loo["half"]
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(pooled.round(3).to_string(index=False))
        summary = pooled.groupby("form").agg(
            rmse_median=("rmse", "median"),
            rmse_over_015=("rmse", lambda v: int((v > 0.15).sum())),
            band_cover=("band_cover", "mean"), cover=("cover", "mean"),
            cover_loo=("cover_loo", "mean"), cover_loo_min=("cover_loo", "min"),
            half_median=("half", "median"), half_loo_median=("half_loo", "median"))
        print(summary.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
