r"""Fits of many curves at once, one row each (:func:`fit_table`)."""

from __future__ import annotations

import pandas as pd

from .cell import LINEAR_MODELS, fit_cell_law
from .noise import fit_noise_law

__all__ = [
    "fit_table",
]


def fit_table(
    df: pd.DataFrame, by, *, law: str, x: str, y: str = "mi_value", bounds="auto"
) -> pd.DataFrame:
    """Fit one law per group of a tidy table and return one row of parameters per curve.

    Parameters
    ----------
    df
        Tidy results, one row per point.
    by
        Column(s) that identify a curve.
    law
        ``"noise"`` or ``"cell"``.
    x, y
        Columns holding the abscissa and the information (bits).
    bounds
        Cell-number fits only: ``"auto"`` (default) takes the linear-model bounds of
        :func:`cell_law_bounds` for a curve whose ``model`` or ``algorithm`` key is in
        :data:`LINEAR_MODELS` and the deep-model bounds otherwise; or ``"deep"``,
        ``"linear"``, ``None`` for every curve.

    Returns
    -------
    pandas.DataFrame
        The group keys, the fitted parameters and their flags (see ``to_dict`` of the fits:
        ``ok`` is true only for a fit the data constrain, ``reason`` says why not); the fit
        objects are in the ``fit`` column.  A group too small to fit is kept as a row with
        ``ok`` false and the reason.

    Examples
    --------
    >>> import numpy as np
    >>> from helpers.laws import cell_law
    >>> n = np.repeat(np.geomspace(100, 1e5, 8), 2)
    >>> df = pd.DataFrame({"model": ["PCA"] * 16 + ["SCVI"] * 16, "size": np.tile(n, 2),
    ...                    "mi": np.r_[cell_law(n, 30, 1.1, 1.2), cell_law(n, 300, 0.3, 2.5)]})
    >>> t = fit_table(df, "model", law="cell", x="size", y="mi")
    >>> t[["model", "ok"]].to_dict("list")
    {'model': ['PCA', 'SCVI'], 'ok': [True, True]}
    >>> round(float(t.loc[0, "i_inf"] / df.loc[:15, "mi"].max()), 3)  # linear: I_inf >= max MI
    1.0
    """
    if law not in ("noise", "cell"):
        msg = f"law must be 'noise' or 'cell' (got {law!r})."
        raise ValueError(msg)
    for col in (x, y):
        if col not in df.columns:
            msg = f"Column {col!r} is not in the table (columns: {list(df.columns)})."
            raise ValueError(msg)
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, group in df.groupby(by, sort=True, observed=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        ident = dict(zip(by, key, strict=True))
        try:
            if law == "noise":
                fit = fit_noise_law(group[x].to_numpy(), group[y].to_numpy())
            else:
                kind = bounds
                if bounds == "auto":
                    model = ident.get("model", ident.get("algorithm"))
                    kind = "linear" if model in LINEAR_MODELS else "deep"
                fit = fit_cell_law(group[x].to_numpy(), group[y].to_numpy(), bounds=kind)
        except ValueError as err:  # too few points: kept as a failed row, not dropped
            rows.append({**ident, "n_points": len(group), "success": False,
                         "constrained": False, "ok": False, "reason": str(err), "fit": None})
            continue
        rows.append({**ident, **fit.to_dict(), "fit": fit})
    return pd.DataFrame(rows)
