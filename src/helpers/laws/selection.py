r"""Which joint form predicts held-out cells best: cross-validation over the grid."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .common import _r_squared
from .calibration import Z90
from .calibration import calibrate as calibration_fit
from .joint import JOINT_FORMS, JOINT_RULE, _fit_chain, fit_joint_law, select_joint_form

__all__ = [
    "extrapolation_table",
    "released_held_out",
    "cross_validate_joint",
]


def cross_validate_joint(df: pd.DataFrame, by, *, forms=("naive", "coupled", "free"),
                         n: str = "size", x: str = "x", y: str = "mi", folds: int = 5,
                         seed: int = 0) -> pd.DataFrame:
    r"""K-fold cross-validated R² of each joint form on each grid of a tidy table.

    The folds split the grid's cells — the (``n``, ``x``) pairs — so the seeds of one cell are
    held out together and no replicate leaks into the training folds.  Each fold is fitted on
    every training point; the held-out cells are then scored.  The law predicts the *expected*
    MI, so the headline score ``cv_r2`` compares the held-out prediction with the seed mean of
    each cell (pooled over folds: :math:`1 - \sum_c (\bar y_c - \hat y_c)^2 / \sum_c (\bar y_c
    - \bar y)^2`); ``cv_r2_points`` scores every seed instead, and ``ceiling_points`` is the
    largest R² any function of (N, x) can reach on the points (the seed scatter).

    Parameters
    ----------
    df
        Tidy results, one row per point.
    by
        Column(s) that identify a grid (e.g. ``["task", "model"]``).
    forms
        Joint forms to compare (keys of :data:`JOINT_FORMS`) and the rule :data:`JOINT_RULE`,
        which picks a form on each training fold; each richer form starts from the optimum of
        the simpler one on the same fold.
    n, x, y
        Columns holding the training size, the depth and the information (bits).
    folds, seed
        Number of folds and the seed of the fold assignment (the same for every form).

    Returns
    -------
    pandas.DataFrame
        One row per grid and form: the keys, ``form``, ``cv_r2``, ``cv_r2_points``,
        ``ceiling_points``, the in-sample ``r2`` (points), ``n_params``, ``n_cells``,
        ``n_points``, the form ``chosen`` on the whole grid and, for the rule, the forms it
        chose on the training folds (``fold_choices``, comma-separated).

    Examples
    --------
    >>> from helpers.laws import joint_law
    >>> rng = np.random.default_rng(2)
    >>> nn, xx = np.meshgrid(np.geomspace(100, 1e5, 6), np.geomspace(10, 1e4, 6))
    >>> truth = dict(u_bar=400.0, i_inf=2.0, n_sat=200.0, s=0.5, beta=1.5)
    >>> grid = pd.DataFrame({"g": "a", "size": nn.ravel(), "x": xx.ravel()})
    >>> grid["mi"] = joint_law(grid["size"], grid["x"], **truth) + rng.normal(0, 0.02, 36)
    >>> cv = cross_validate_joint(grid, "g", forms=("naive", "coupled")).set_index("form")
    >>> bool(cv.loc["coupled", "cv_r2"] > cv.loc["naive", "cv_r2"] > 0.8)
    True
    """
    by = [by] if isinstance(by, str) else list(by)
    unknown = [f for f in forms if f not in JOINT_FORMS and f != JOINT_RULE]
    if unknown:
        msg = (f"Unknown joint form(s) {unknown}; choose from {sorted(JOINT_FORMS)} "
               f"or {JOINT_RULE!r}.")
        raise ValueError(msg)
    missing = [c for c in [*by, n, x, y] if c not in df.columns]
    if missing:
        msg = f"Columns {missing} not in the table (it has {list(df.columns)})."
        raise ValueError(msg)
    chain = list(JOINT_FORMS) if {"free", JOINT_RULE} & set(forms) else ["naive", "coupled"]
    rows = []
    for key, group in df.groupby(by, sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        nn, xx, yy = (group[c].to_numpy(dtype=float) for c in (n, x, y))
        cells, cell_of = np.unique(np.column_stack([nn, xx]), axis=0, return_inverse=True)
        cell_of = np.asarray(cell_of).ravel()
        counts = np.bincount(cell_of)
        cell_mean = np.bincount(cell_of, weights=yy) / counts
        order = np.random.default_rng(seed).permutation(len(cells))
        fold_of_cell = np.empty(len(cells), dtype=int)
        fold_of_cell[order] = np.arange(len(cells)) % folds
        fold = fold_of_cell[cell_of]
        held = {f: np.full(yy.shape, np.nan) for f in [*chain, JOINT_RULE]}
        full, chosen = {}, []
        for k in [*range(folds), None]:
            train = np.ones(yy.shape, bool) if k is None else fold != k
            fitted = _fit_chain(nn[train], xx[train], yy[train], chain)
            fitted[JOINT_RULE] = select_joint_form(fitted.values())
            chosen.append(fitted[JOINT_RULE].form)
            for form, fit in fitted.items():
                if k is None:
                    full[form] = fit
                else:
                    held[form][~train] = fit.predict(nn[~train], xx[~train])
        ceiling = _r_squared(yy, cell_mean[cell_of])
        for form in forms:
            pred_cell = np.bincount(cell_of, weights=held[form]) / counts
            rows.append({
                **dict(zip(by, key, strict=True)), "form": form,
                "cv_r2": _r_squared(cell_mean, pred_cell),
                "cv_r2_points": _r_squared(yy, held[form]),
                "ceiling_points": ceiling, "r2": full[form].r_squared,
                "n_params": len(full[form].theta), "n_cells": int(len(cells)),
                "n_points": int(yy.size), "chosen": full[form].form,
                "fold_choices": ",".join(chosen[:-1]) if form == JOINT_RULE else form,
            })
    return pd.DataFrame(rows)


def released_held_out(grids, *, frac: float = 0.1,
                      forms=("naive", "coupled", "free", "bic")) -> list:
    """Every grid of ``grids`` fitted on its sizes up to ``frac`` × its largest.

    ``grids``: a tidy frame with ``task``, ``model``, ``size``, ``x`` and ``mi`` columns, e.g.
    the released tables, ``helpers.published.single_cell()``.

    Returns one dict per grid and form: ``task``, ``model``, ``form`` (as asked), ``fit`` and
    ``test`` (the grid's cells of the largest size), the input of :func:`calibrate` and
    :func:`extrapolation_table`.
    """
    import warnings

    out = []
    for (task, model), g in grids.groupby(["task", "model"], sort=True):
        n_max = g["size"].max()
        train, test = g[g["size"] <= frac * n_max * (1 + 1e-9)], g[g["size"] == n_max]
        for form in forms:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = fit_joint_law(train["size"], train["x"], train["mi"], form=form)
            out.append(dict(task=task, model=model, form=form, fit=fit, test=test))
    return out


def extrapolation_table(rows, *, calibration: dict | None = None,
                        leave_one_out: bool = True):
    """Per grid and form: how the fit predicts its held-out largest size.

    Columns: ``rmse`` (bits), ``band_cover`` / ``band_half`` (the fit's own 90 % band,
    :meth:`JointLawFit.band` at 1.645 sigma; NaN where the fit has no finite covariance) and
    ``cover`` / ``half`` (the calibrated 90 % predictive interval; with ``leave_one_out`` its
    calibration is refitted without the grid it is judged on).
    """
    import pandas as pd

    records = []
    for r in rows:
        fit, test = r["fit"], r["test"]
        n, x, y = (test[c].to_numpy(float) for c in ("size", "x", "mi"))
        pred = fit.predict(n, x)
        lo, hi = fit.band(n, x, sigma=Z90)
        c = calibration
        if leave_one_out:
            c = calibration_fit([o for o in rows if (o["task"], o["model"]) != (r["task"], r["model"])])
        plo, phi = fit.interval(n, x, level=0.9, calibration=c)
        records.append(dict(
            task=r["task"], model=r["model"], form=r["form"], chosen=fit.form,
            rmse=float(np.sqrt(np.mean((pred - y) ** 2))),
            band_cover=float(np.mean((y >= lo) & (y <= hi))),
            band_half=float(np.median((hi - lo) / 2)),
            cover=float(np.mean((y >= plo) & (y <= phi))),
            half=float(np.median((phi - plo) / 2))))
    return pd.DataFrame(records)
