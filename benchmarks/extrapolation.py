"""How well the joint law extrapolates in cells, and how often its intervals cover.

For every released single-cell grid (task × model, 16 in all) the joint law is fitted to the
training sizes up to a tenth of the grid's largest, and its prediction at the largest size
is compared with every held-out cell of the grid (each depth and seed).  Printed per grid and
form: RMSE (bits), the coverage of the nominal-90 % interval and its median half-width, for
the band of the fit's parameters alone (``JointLawFit.band`` at 1.645 sigma) and for the
calibrated predictive interval (``JointLawFit.interval``), the latter also with its
calibration refitted without the grid it is judged on (leave one grid out)::

    PYTHONPATH=src NOISESCALING_DATA_MIRROR=$PWD/../shared/data \\
        python benchmarks/extrapolation.py
    python benchmarks/extrapolation.py --write   # refit the shipped calibration (laws/calibration.json)
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import numpy as np
import pandas as pd

FORMS = ("naive", "coupled", "free", "bic")
Z90 = 1.6448536269514722


def held_out(frac: float = 0.1):
    """(task, model, train frame, test frame) of every released grid."""
    from helpers import published

    sc = published.single_cell()
    for (task, model), g in sc.groupby(["task", "model"], sort=True):
        n_max = g["size"].max()
        yield task, model, g[g["size"] <= frac * n_max * (1 + 1e-9)], g[g["size"] == n_max]


def fits(frac: float = 0.1) -> list[dict]:
    from helpers import laws

    out = []
    for task, model, train, test in held_out(frac):
        for form in FORMS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = laws.fit_joint_law(train["size"], train["x"], train["mi"], form=form)
            out.append(dict(task=task, model=model, form=form, fit=fit, test=test))
    return out


def table(rows: list[dict], calibration: dict | None, *, leave_one_out: bool) -> pd.DataFrame:
    from helpers.laws import calibration as cal

    records = []
    for r in rows:
        fit, test = r["fit"], r["test"]
        n, x, y = test["size"].to_numpy(float), test["x"].to_numpy(float), test["mi"].to_numpy()
        pred = fit.predict(n, x)
        lo, hi = fit.band(n, x, sigma=Z90)
        rec = dict(task=r["task"], model=r["model"], form=r["form"],
                   rmse=float(np.sqrt(np.mean((pred - y) ** 2))),
                   band_cover=float(np.mean((y >= lo) & (y <= hi))),
                   band_half=float(np.median((hi - lo) / 2)))  # NaN: no finite band
        if calibration is not None:
            c = calibration
            if leave_one_out:
                others = [o for o in rows
                          if (o["task"], o["model"]) != (r["task"], r["model"])]
                c = cal.calibrate(others)
            lo, hi = fit.interval(n, x, level=0.9, calibration=c)
            rec |= dict(cover=float(np.mean((y >= lo) & (y <= hi))),
                        half=float(np.median((hi - lo) / 2)))
        records.append(rec)
    return pd.DataFrame(records)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true",
                    help="refit the calibration on all grids and write laws/calibration.json")
    ap.add_argument("--frac", type=float, default=0.1)
    args = ap.parse_args(argv)
    from helpers.laws import calibration as cal

    rows = fits(args.frac)
    if args.write:
        path = cal.write(cal.calibrate(rows), frac=args.frac)
        print(f"wrote {path}")
    pooled = table(rows, cal.load(), leave_one_out=False)
    loo = table(rows, cal.load(), leave_one_out=True)
    pooled["cover_loo"], pooled["half_loo"] = loo["cover"], loo["half"]
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(pooled.round(3).to_string(index=False))
        summary = pooled.groupby("form").agg(
            rmse_median=("rmse", "median"), rmse_over_015=("rmse", lambda v: int((v > 0.15).sum())),
            band_cover=("band_cover", "mean"), cover=("cover", "mean"),
            cover_loo=("cover_loo", "mean"), half_median=("half", "median"),
            half_loo_median=("half_loo", "median"))
        print(summary.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
