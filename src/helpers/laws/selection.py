r"""Which joint form predicts held-out cells best: cross-validation over the grid."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .common import _r_squared
from .joint import JOINT_FORMS, JOINT_RULE, _fit_chain, select_joint_form

__all__ = [
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
