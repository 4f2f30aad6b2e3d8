r"""Predictive intervals of the joint law, calibrated by extrapolation on the released grids.

A fit's own uncertainty (its parameter covariance) says how well the surface is pinned down
where the data are; a lab asks about a *larger* experiment, where the law's form itself may
be wrong.  The predictive interval of :meth:`JointLawFit.interval` at ``n`` cells and depth
``x`` is

.. math::

    \hat I(n, x) \pm z \sqrt{\sigma^2_\mathrm{param}(n, x) + \sigma^2_\mathrm{seed}
        + \bigl(\kappa\, d(n)\bigr)^2},
    \qquad d(n) = \max\bigl(0, \log_{10}(n / N_\mathrm{fit})\bigr),

with :math:`\sigma_\mathrm{param}` the delta-method error of the fitted surface (0 where the
fit has no finite covariance), :math:`\sigma_\mathrm{seed}` the fit's residual scatter,
:math:`d` the decades of cells beyond the largest fitted and :math:`\kappa` the model-form
error per decade of extrapolation.  :math:`\kappa` is learned from the 16 released grids by
fitting each on its sizes up to a tenth of its largest and asking, of every held-out cell of
the largest size, how large a :math:`\kappa` it needs to fall inside; the shipped value is
the 90 % quantile of those needs, every grid weighted equally (:func:`calibrate`;
``benchmarks/extrapolation.py --write`` refits it and records its provenance in
``calibration.json`` beside this module).  It is calibrated for about one decade of
extrapolation in cells; the planner flags designs further out (:func:`decades_beyond`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import stats

__all__ = [
    "CALIBRATED_DECADES",
    "PATH",
    "calibrate",
    "decades_beyond",
    "kappa",
    "load",
    "write",
]

Z90 = float(stats.norm.ppf(0.95))

#: The shipped calibration (data, with its provenance).
PATH = Path(__file__).with_name("calibration.json")

#: Decades of extrapolation in cells the calibration has seen (one decade, a little more for
#: the temporal grids); designs beyond it are flagged.
CALIBRATED_DECADES = 1.2


def decades_beyond(fit, n) -> np.ndarray:
    """Decades of cells beyond the largest the fit saw (0 inside its range)."""
    top = fit.domain.get("n", (np.nan, np.nan))[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log10(np.asarray(n, dtype=float) / top)
    return np.where(np.isfinite(d), np.maximum(d, 0.0), 0.0)


def _weighted_quantile(values, weights, q):
    order = np.argsort(values)
    v, w = np.asarray(values)[order], np.asarray(weights)[order]
    cdf = np.cumsum(w) / w.sum()
    return float(v[min(np.searchsorted(cdf, q), v.size - 1)])


def calibrate(rows, *, level: float = 0.9) -> dict:
    """``κ`` per joint form from held-out predictions.

    ``rows``: dicts with ``form`` (the form asked for; rows of a rule such as ``"bic"`` are
    skipped, their fits repeat a form's own), ``fit`` (fitted on the smaller sizes) and ``test`` (a frame
    of held-out ``size``, ``x``, ``mi``), as ``benchmarks/extrapolation.py`` builds them.  For
    each held-out cell the need is ``sqrt(max(0, (|r| / z)² − σ²_in)) / d``; ``κ`` is its
    ``level`` quantile with every grid weighted equally.
    """
    z = stats.norm.ppf(0.5 + level / 2)
    needs: dict[str, list] = {}
    for r in rows:
        fit, test = r["fit"], r["test"]
        if r["form"] != fit.form:  # a rule's choice repeats a form's own fit
            continue
        n, x, y = (test[c].to_numpy(float) for c in ("size", "x", "mi"))
        d = decades_beyond(fit, n)
        if not np.all(d > 0):
            continue
        var_in = fit.predictive_variance(n, x, kappa=0.0)
        resid = np.abs(y - fit.predict(n, x))
        need = np.sqrt(np.clip((resid / z) ** 2 - var_in, 0.0, None)) / d
        entry = needs.setdefault(fit.form, [[], []])
        entry[0].extend(need)
        entry[1].extend(np.full(need.size, 1.0 / need.size))
    return {form: {"kappa": _weighted_quantile(v, w, level), "level": level,
                   "grids": int(round(sum(w)))}
            for form, (v, w) in needs.items()}


def write(calibration: dict, *, frac: float = 0.1) -> Path:
    """Write the calibration with its provenance to :data:`PATH`."""
    level = next(iter(calibration.values()))["level"]
    out = {
        "what": "model-form error per decade of extrapolation in cells (kappa, bits), per "
                "joint form, of helpers.laws.JointLawFit.interval",
        "how": f"each released single-cell grid (helpers.published.single_cell) fitted on its "
               f"sizes <= {frac:g} x its largest; kappa is the {level:g} "
               "quantile, every grid weighted equally, of the kappa each held-out cell of the "
               "largest size needs to fall inside the interval",
        "script": "benchmarks/extrapolation.py --write",
        "forms": calibration,
    }
    PATH.write_text(json.dumps(out, indent=1) + "\n")
    load.cache_clear()
    return PATH


@lru_cache(maxsize=1)
def load() -> dict:
    """The shipped calibration's ``forms`` table (``{}`` if it is missing)."""
    if not PATH.exists():
        return {}
    return json.loads(PATH.read_text())["forms"]


def kappa(form: str, calibration: dict | None = None) -> float:
    """``κ`` (bits per decade) for a joint form; the largest shipped one for a form without
    its own (a conservative default)."""
    table = load() if calibration is None else calibration
    if form in table:
        return float(table[form]["kappa"])
    if not table:
        msg = f"No calibration is available ({PATH} is missing)."
        raise FileNotFoundError(msg)
    return float(max(v["kappa"] for v in table.values()))

