r"""What every law's fit shares: input checks, the fit record, R², and the data flags."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import lmfit
import numpy as np

__all__ = [
]


def _check_xy(x, y, *, name_x: str, positive_x: bool = False):
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        msg = f"{name_x} and mi must have the same length (got {x.size} and {y.size})."
        raise ValueError(msg)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        msg = f"{name_x} and mi must be finite (no NaN or inf)."
        raise ValueError(msg)
    if np.any(x < 0) or (positive_x and np.any(x <= 0)):
        msg = f"{name_x} must be {'positive' if positive_x else 'non-negative'}."
        raise ValueError(msg)
    return x, y


@dataclass
class _LawFit:
    """Shared fields and behaviour of a fitted law."""

    x: np.ndarray = field(repr=False)
    mi: np.ndarray = field(repr=False)
    result: lmfit.model.ModelResult | None = field(repr=False)
    r_squared: float
    success: bool
    constrained: bool
    reason: str = ""

    @property
    def n_points(self) -> int:
        return int(self.x.size)

    @property
    def ok(self) -> bool:
        """The data constrain the fit: no flag was raised (see ``reason``)."""
        return not self.reason

    def band(self, x, *, sigma: float = 2.0):
        """Lower and upper edges of the ``sigma`` confidence band of the fitted curve at ``x``."""
        x = np.asarray(x, dtype=float)
        mid = self.predict(x)
        if self.result is None or not self.constrained:
            return np.full_like(mid, np.nan), np.full_like(mid, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            half = self.result.eval_uncertainty(params=self.result.params, x=x, sigma=sigma)
        return mid - half, mid + half


def _r_squared(y, fitted) -> float:
    ss_res = float(np.sum((y - fitted) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _stderr(param) -> float:
    return float(param.stderr) if param.stderr is not None else float("nan")


def _well_constrained(values, errors) -> bool:
    return all(np.isfinite(e) and 0 < e < abs(v) for v, e in zip(values, errors, strict=True))


def _level_means(x, y):
    """Distinct abscissae and the mean of ``y`` (over seeds) at each."""
    levels, inverse = np.unique(x, return_inverse=True)
    means = np.bincount(inverse, weights=y) / np.bincount(inverse)
    return levels, means, inverse


def _rank_correlation(a, b) -> float:
    """Spearman's rank correlation (``nan`` when either side is constant)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _data_flags(x, y) -> list[str]:
    """Flags that follow from the data alone: flat, not positive, falling."""
    levels, means, _ = _level_means(x, y)
    if np.ptp(y) == 0:
        return ["flat: MI does not vary"]
    flags = []
    if means.max() <= 0:
        flags.append("no positive MI at any level")
    if levels.size >= 3 and not _rank_correlation(levels, means) > 0:
        flags.append("MI does not rise with x (rank correlation <= 0)")
    return flags
