r"""The paper's two scaling laws: evaluate, fit, invert and collapse.

**Noise law** (Eq. 1; Box 1).  With :math:`x` the signal-to-noise power :math:`\eta^2` (mean
UMIs per cell for counts, Supplementary S.V), the auxiliary information in bits is

.. math::

    I(x) = I_\max - \tfrac12 \log_2 \frac{x/\bar u + 1}{x/\bar u + 2^{-2 I_\max}},

so that :math:`I(0) = 0`, :math:`I(\infty) = I_\max`, and at :math:`x = \bar u` the model is
within half a bit of its capacity (exactly so as :math:`I_\max \to \infty`).

**Cell-number law** (Fig. 2a): :math:`I(N) = I_\infty - (N / N_\mathrm{sat})^{-s}`, so that
:math:`N_\mathrm{sat}` cells bring the model within one bit of :math:`I_\infty`.

**Collapse.**  With :math:`A = 2^{-2 I_\max}` and :math:`z = (x/\bar u + A)/(1 - A)`, every noise
curve satisfies :math:`I - I_\max = -\tfrac12 \log_2((1+z)/z)`; every cell-number curve
satisfies :math:`(I_\infty - I)^{-1/s} = N / N_\mathrm{sat}`.

**Fit quality.**  Every fit carries ``reason``, empty when the data constrain it (``ok``) and
otherwise naming why not (failed, flat, never positive, not rising, unconstrained, not
saturated); a flagged fit keeps its parameters, but its derived numbers (UMI90, collapse
coordinates) are ``nan``.  Cell-number fits are bounded as the authors bound them
(:func:`cell_law_bounds`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import lmfit
import numpy as np
import pandas as pd

__all__ = [
    "CellLawFit",
    "LINEAR_MODELS",
    "cell_law_bounds",
    "NoiseLawFit",
    "cell_collapse",
    "cell_law",
    "fit_cell_law",
    "fit_noise_law",
    "invert_noise_law",
    "noise_collapse",
    "noise_law",
    "universal_noise_curve",
    "umi90",
    "UMI90_DEFINITIONS",
]


# --------------------------------------------------------------------------------------------
# Noise law
# --------------------------------------------------------------------------------------------
def noise_law(x, u_bar, i_max):
    r"""Auxiliary information (bits) at signal-to-noise power ``x`` (Eq. 1).

    Parameters
    ----------
    x
        Signal-to-noise power :math:`\eta^2`, e.g. mean UMIs per cell. Non-negative.
    u_bar
        Noise scale :math:`\bar u` (same units as ``x``); positive.
    i_max
        Capacity :math:`I_\max` in bits; non-negative.

    Returns
    -------
    numpy.ndarray or float
        :math:`I(x)` in bits, broadcast over the inputs.

    Examples
    --------
    >>> round(float(noise_law(1e12, u_bar=500, i_max=2.0)), 6)
    2.0
    >>> float(noise_law(0.0, u_bar=500, i_max=2.0))
    0.0
    >>> round(float(noise_law(500, u_bar=500, i_max=8.0)), 3)  # half a bit below capacity
    7.5
    """
    x = np.asarray(x, dtype=float)
    r = x / np.asarray(u_bar, dtype=float)
    log_a = -2.0 * np.asarray(i_max, dtype=float) * np.log(2.0)  # ln 2^{-2 I_max}
    # I = I_max - 1/2 log2((r + 1)/(r + A)) = 1/2 [ln(r + A) - ln A - ln(1 + r)] / ln 2,
    # with ln(r + A) = logaddexp(ln r, ln A): exact at r = 0 and free of under/overflow.
    with np.errstate(divide="ignore"):
        log_r = np.log(r)
    out = 0.5 * (np.logaddexp(log_r, log_a) - log_a - np.log1p(r)) / np.log(2.0)
    return out if out.ndim else float(out)


def invert_noise_law(mi, u_bar, i_max):
    r"""Signal-to-noise power needed to reach ``mi`` bits (Supplementary Eq. S6).

    Solving Eq. 1 for :math:`x` with :math:`r = 2^{2(I_\max - I)}` and :math:`A = 2^{-2I_\max}`:
    :math:`x = \bar u\,(1 - rA)/(r - 1)`.  See :func:`umi90` for the depth at 90 % of capacity.

    Parameters
    ----------
    mi
        Target information in bits, in ``[0, i_max]``; the end points have the exact answers
        ``0`` and ``inf``.
    u_bar, i_max
        Noise-law parameters: finite, ``u_bar > 0`` and ``i_max > 0``.

    Returns
    -------
    numpy.ndarray or float
        Required ``x`` (``inf`` at ``mi == i_max``).

    Raises
    ------
    ValueError
        If ``u_bar`` or ``i_max`` is not finite and positive, or a target is not finite or
        lies outside ``[0, i_max]``.

    Examples
    --------
    >>> x = invert_noise_law(1.5, u_bar=400, i_max=2.0)
    >>> round(float(noise_law(x, 400, 2.0)), 10)
    1.5
    """
    mi = np.asarray(mi, dtype=float)
    u_bar_arr = np.asarray(u_bar, dtype=float)
    i_max_arr = np.asarray(i_max, dtype=float)
    if not np.all(np.isfinite(u_bar_arr) & (u_bar_arr > 0)):
        msg = f"u_bar must be finite and positive (got {u_bar!r})."
        raise ValueError(msg)
    if not np.all(np.isfinite(i_max_arr) & (i_max_arr > 0)):
        msg = f"i_max must be finite and positive (got {i_max!r})."
        raise ValueError(msg)
    if not np.all(np.isfinite(mi)) or np.any(mi < 0) or np.any(mi > i_max_arr):
        msg = (
            "Target information must be finite and lie in [0, i_max] "
            f"(got {mi!r}, i_max {i_max!r})."
        )
        raise ValueError(msg)
    gap = i_max_arr - mi
    with np.errstate(divide="ignore"):
        # (1 - rA)/(r - 1) = (1 - 2^{-2 mi}) / (2^{2 gap} - 1), stable via expm1
        out = u_bar_arr * (-np.expm1(-2 * mi * np.log(2))) / np.expm1(2 * gap * np.log(2))
    return out if out.ndim else float(out)


#: The two readings of "90 % of capacity" (see :func:`umi90`).
UMI90_DEFINITIONS = ("table", "text")


def umi90(u_bar, i_max, *, definition: str = "table"):
    r"""UMIs per cell (signal-to-noise power) at which a model reaches "90 %" of its capacity.

    The paper defines UMI90 in two ways that differ by a factor of a few:

    ``"table"`` (default)
        The target :math:`I = I_\max + \log_2 0.95`, i.e. :math:`2^{I} = 0.95\cdot 2^{I_\max}`:
        what the authors' code for Supplementary Table S6 solves (``analysis/u90.ipynb``
        of g-kl/noise-scaling), and what the table reports.
    ``"text"``
        The target :math:`I = 0.9\,I_\max`, 90 % of the capacity in bits, as the text words it.

    Parameters
    ----------
    u_bar, i_max
        Noise-law parameters (finite, positive).
    definition
        ``"table"`` or ``"text"``.

    Returns
    -------
    numpy.ndarray or float

    Raises
    ------
    ValueError
        An unknown ``definition``, invalid parameters (see :func:`invert_noise_law`), or, for
        ``"table"``, a capacity below :math:`-\log_2 0.95` (0.074 bit), where the target
        would be negative.

    Examples
    --------
    >>> round(float(umi90(1000.0, 2.0)), 1)  # I_max + log2(0.95)
    8615.4
    >>> round(float(umi90(1000.0, 2.0, definition="text")), 1)  # 0.9 I_max
    2871.7
    """
    i_max_arr = np.asarray(i_max, dtype=float)
    if definition == "table":
        target = i_max_arr + np.log2(0.95)
    elif definition == "text":
        target = 0.9 * i_max_arr
    else:
        msg = f"definition must be one of {UMI90_DEFINITIONS} (got {definition!r})."
        raise ValueError(msg)
    return invert_noise_law(target, u_bar, i_max)


def universal_noise_curve(z):
    r"""The collapsed noise law, :math:`-\tfrac12\log_2((1+z)/z)`, in bits below capacity."""
    z = np.asarray(z, dtype=float)
    return -0.5 * np.log2((1.0 + z) / z)


def noise_collapse(x, mi, u_bar, i_max):
    r"""Collapse coordinates of a noise curve.

    Returns :math:`z = (x/\bar u + A)/(1-A)` with :math:`A = 2^{-2I_\max}`, and
    :math:`y = I - I_\max`; every curve that follows Eq. 1 lies on
    :func:`universal_noise_curve`.

    Examples
    --------
    >>> x = np.array([10.0, 100.0, 1000.0])
    >>> z, y = noise_collapse(x, noise_law(x, 300.0, 1.2), 300.0, 1.2)
    >>> bool(np.allclose(y, universal_noise_curve(z)))
    True
    """
    a = np.exp2(-2.0 * float(i_max))
    z = (np.asarray(x, dtype=float) / u_bar + a) / (1.0 - a)
    return z, np.asarray(mi, dtype=float) - i_max


def _noise_model(x, u_bar, i_max):
    return noise_law(x, u_bar, i_max)


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


@dataclass
class NoiseLawFit(_LawFit):
    """Result of :func:`fit_noise_law`.

    Attributes
    ----------
    u_bar, i_max
        Fitted noise scale and capacity (bits).
    u_bar_err, i_max_err
        One-standard-error uncertainties from the fit covariance (``nan`` if unavailable).
    r_squared
        Coefficient of determination over every point (``nan`` for a flat curve).
    success
        The optimiser converged and produced a covariance.
    constrained
        Both errors are finite and smaller than their values.
    reason
        Why the data do not constrain the fit (``""`` when they do; several reasons are joined
        by ``"; "``); see :func:`fit_noise_law`.  ``ok`` is ``reason == ""``; a flagged fit
        keeps its parameters for inspection, but its derived quantities (``umi90``,
        ``collapse``) are ``nan``.
    """

    u_bar: float = float("nan")
    i_max: float = float("nan")
    u_bar_err: float = float("nan")
    i_max_err: float = float("nan")

    def predict(self, x):
        """The fitted law at ``x``."""
        return noise_law(x, self.u_bar, self.i_max)

    def umi90_of(self, definition: str = "table") -> float:
        """UMI90 of the fitted law (see :func:`umi90`); ``nan`` for a flagged fit."""
        if not self.ok:
            return float("nan")
        try:
            return float(umi90(self.u_bar, self.i_max, definition=definition))
        except ValueError:  # capacity below the table target (0.074 bit)
            return float("nan")

    @property
    def umi90(self) -> float:
        """UMI90 by the authors' table definition (:func:`umi90`); ``nan`` for a flagged fit."""
        return self.umi90_of("table")

    def collapse(self):
        """Collapse coordinates ``(z, y)`` of the fitted points (see :func:`noise_collapse`).

        ``nan`` for a flagged fit: its parameters do not place the curve.
        """
        if not self.ok:
            nan = np.full(self.x.shape, np.nan)
            return nan, nan.copy()
        return noise_collapse(self.x, self.mi, self.u_bar, self.i_max)

    def to_dict(self) -> dict:
        return {
            "u_bar": self.u_bar,
            "i_max": self.i_max,
            "u_bar_err": self.u_bar_err,
            "i_max_err": self.i_max_err,
            "r_squared": self.r_squared,
            "umi90": self.umi90,
            "umi90_text": self.umi90_of("text"),
            "n_points": self.n_points,
            "success": self.success,
            "constrained": self.constrained,
            "ok": self.ok,
            "reason": self.reason,
        }


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


def noise_flags(fit: NoiseLawFit) -> list[str]:
    flags = _data_flags(fit.x, fit.mi)
    if fit.result is None or not fit.success:
        return [*flags, "fit failed: no converged solution with a covariance"]
    u, i = fit.u_bar, fit.i_max
    if not (np.isfinite(u) and np.isfinite(i) and u > 0 and i > 0):
        return [*flags, "parameters outside their physical range (u_bar > 0, i_max > 0)"]
    if not np.isfinite(fit.r_squared):
        flags.append("R² undefined")
    if not fit.constrained:
        flags.append("unconstrained: a parameter's error is as large as its value")
    levels, means, inverse = _level_means(fit.x, fit.mi)
    positive = levels[levels > 0]
    if i - fit.predict(fit.x.max()) > 1.0:
        flags.append("unsaturated: the fitted curve at the largest x is over 1 bit below I_max")
    if positive.size and u < positive.min() / 10:
        flags.append("no rise observed: u_bar is far below the smallest x")
    # the fitted capacity must not sit below what the data already show at the largest x
    top = fit.mi[inverse == levels.size - 1]
    se_top = top.std(ddof=1) / np.sqrt(top.size) if top.size > 1 else 0.0
    excess = (means[-1] - i) / np.hypot(se_top, fit.i_max_err)
    if excess > 3:
        flags.append("unsaturated: I_max is below the MI observed at the largest x (> 3σ)")
    return flags


def fit_noise_law(x, mi, *, u_bar0: float | None = None, i_max0: float | None = None):
    """Least-squares fit of Eq. 1 to every point of a curve (all seeds, not their mean).

    The fit is started from several points — a geometric grid of ``u_bar`` over the
    range of ``x`` and capacities at and above the largest observation, plus the paper's
    own start (``u_bar = 540``, ``i_max = 3``) and any start given here — and the solution
    with the lowest residual sum of squares is kept, so the answer does not depend on a
    hand-picked starting value.

    Parameters
    ----------
    x
        Signal-to-noise power of each point (e.g. ``umis_per_cell``); non-negative.
    mi
        Auxiliary information of each point, bits.
    u_bar0, i_max0
        Optional extra starting point.

    Returns
    -------
    NoiseLawFit
        Parameters, errors, R², convergence flags and the means to draw a confidence band.
        A fit the data do not constrain is returned flagged (``ok`` false, ``reason`` says
        why), never dropped.  The flags:

        - the optimiser failed, or a parameter is not finite and positive;
        - the data are flat (R² undefined), never positive, or do not rise with ``x``
          (rank correlation of the per-level means with ``x`` not positive);
        - a parameter's error is as large as its value (``constrained`` false);
        - saturation is not reached: at the largest ``x`` the fitted curve is still more than
          one bit below ``I_max`` (the convention of :math:`N_\\mathrm{sat}` in the cell-number
          law), so ``I_max`` is an extrapolation; or ``I_max`` lies more than 3σ below the
          mean MI at the largest ``x`` (a curve still rising, e.g. ``0.5 log10 x``);
        - the rise is not observed: ``u_bar`` is below a tenth of the smallest positive ``x``.

    Raises
    ------
    ValueError
        Mismatched lengths, non-finite values, negative ``x``, or fewer than 3 points.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat(np.geomspace(10, 1e5, 12), 3)
    >>> y = noise_law(x, 800.0, 2.5) + rng.normal(0, 0.05, x.size)
    >>> fit = fit_noise_law(x, y)
    >>> abs(fit.u_bar / 800 - 1) < 0.2, abs(fit.i_max - 2.5) < 0.1, fit.ok
    (True, True, True)
    >>> fit_noise_law(x, 0.5 * np.log10(x)).reason  # never saturates
    'unsaturated: I_max is below the MI observed at the largest x (> 3σ)'
    """
    x, y = _check_xy(x, mi, name_x="x")
    if x.size < 3:
        msg = f"A noise-law fit needs at least 3 points (got {x.size})."
        raise ValueError(msg)
    model = lmfit.Model(_noise_model)
    positive = x[x > 0]
    lo, hi = (positive.min(), positive.max()) if positive.size else (1.0, 1.0)
    top = max(float(y.max()), 0.05)
    starts = [(540.0, 3.0)] + [
        (u, i) for u in np.geomspace(lo / 10, hi * 10, 9) for i in (top, 1.5 * top + 0.5)
    ]
    if u_bar0 is not None or i_max0 is not None:
        starts.insert(0, (u_bar0 or 540.0, i_max0 or top))

    best = None
    for u_start, i_start in starts:
        params = model.make_params(
            u_bar=dict(value=u_start, min=0.0), i_max=dict(value=i_start, min=0.0)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = model.fit(y, params, x=x, nan_policy="raise")
            except (ValueError, RuntimeError):
                continue
        if not np.isfinite(res.chisqr):
            continue
        # prefer the lowest residual; among equal residuals prefer one with error bars
        key = (round(res.chisqr, 12), not res.errorbars)
        if best is None or key < best[0]:
            best = (key, res)

    if best is None:
        fit = NoiseLawFit(
            x=x, mi=y, result=None, r_squared=float("nan"), success=False, constrained=False
        )
        fit.reason = "; ".join(noise_flags(fit))
        return fit
    res = best[1]
    u, i = res.params["u_bar"], res.params["i_max"]
    values, errors = (u.value, i.value), (_stderr(u), _stderr(i))
    fit = NoiseLawFit(
        x=x,
        mi=y,
        result=res,
        r_squared=_r_squared(y, res.best_fit),
        success=bool(res.success and res.errorbars),
        constrained=_well_constrained(values, errors),
        u_bar=float(u.value),
        i_max=float(i.value),
        u_bar_err=errors[0],
        i_max_err=errors[1],
    )
    fit.reason = "; ".join(noise_flags(fit))
    return fit


# --------------------------------------------------------------------------------------------
# Cell-number law
# --------------------------------------------------------------------------------------------
def cell_law(n, n_sat, s, i_inf):
    r"""Auxiliary information (bits) of a model trained on ``n`` cells.

    :math:`I(N) = I_\infty - (N/N_\mathrm{sat})^{-s}`.

    Examples
    --------
    >>> float(cell_law(1000.0, n_sat=1000.0, s=0.5, i_inf=3.0))
    2.0
    """
    n = np.asarray(n, dtype=float)
    out = i_inf - np.power(n / n_sat, -s)
    return out if out.ndim else float(out)


def cell_collapse(n, mi, n_sat, s, i_inf):
    r"""Collapse coordinates of a cell-number curve.

    :math:`(N/N_\mathrm{sat}, (I_\infty-I)^{-1/s})`.

    Points above the fitted :math:`I_\infty` have no real coordinate and become ``nan``.
    Every curve that follows the law lies on the identity line.
    """
    gap = i_inf - np.asarray(mi, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(gap > 0, np.power(np.where(gap > 0, gap, 1.0), -1.0 / s), np.nan)
    return np.asarray(n, dtype=float) / n_sat, y


def _cell_model_log(x, log_n_sat, s, i_inf):
    # (N / N_sat)^{-s} = 10^{-s (log10 N - log10 N_sat)}
    with np.errstate(over="ignore"):
        return i_inf - np.power(10.0, -s * (np.log10(x) - log_n_sat))


#: Models that take the linear-model bounds of :func:`cell_law_bounds` in :func:`fit_table`.
LINEAR_MODELS = ("PCA", "RandomProjection", "Rand. Proj.")


def cell_law_bounds(kind: str | None, mi=None) -> dict[str, tuple[float, float]]:
    r"""Parameter bounds of a cell-number fit, as the authors set them.

    ``"deep"`` (learned models): :math:`N_\mathrm{sat} \in [10, 10^7]` cells,
    :math:`s \in [0.01, 10]`, :math:`I_\infty \in [0.1, 10]` bits.  ``"linear"`` (PCA, random
    projection): :math:`I_\infty \in [\max I, 1.5 \max I]` of the observed MI (a linear model
    saturates within the sizes measured, so its capacity is what it already shows), with
    :math:`N_\mathrm{sat} \in [10^{-6}, 10^7]` and :math:`s \in [10^{-3}, 10]` (the authors
    leave the upper ends open; ours are the deep models' upper ends, beyond which neither can
    be measured from training sizes of at most :math:`10^5` cells).  ``None``: no bounds
    beyond :math:`N_\mathrm{sat} > 0`, :math:`s \in [10^{-4}, 20]`.

    Parameters
    ----------
    kind
        ``"deep"``, ``"linear"`` or ``None``.
    mi
        The observed MI (needed for ``"linear"``).

    Returns
    -------
    dict
        ``{"n_sat": (lo, hi), "s": (lo, hi), "i_inf": (lo, hi)}``.

    Examples
    --------
    >>> cell_law_bounds("linear", [0.5, 1.0, 2.0])["i_inf"]
    (2.0, 3.0)
    """
    if kind == "deep":
        return {"n_sat": (10.0, 1e7), "s": (0.01, 10.0), "i_inf": (0.1, 10.0)}
    if kind == "linear":
        if mi is None:
            msg = "Linear-model bounds need the observed MI (mi=...)."
            raise ValueError(msg)
        top = float(np.max(mi))
        i_inf = (top, 1.5 * top) if top > 0 else (top, top + 1e-6)
        return {"n_sat": (1e-6, 1e7), "s": (1e-3, 10.0), "i_inf": i_inf}
    if kind is None:
        return {"n_sat": (0.0, np.inf), "s": (1e-4, 20.0), "i_inf": (-np.inf, np.inf)}
    msg = f"bounds must be 'deep', 'linear' or None (got {kind!r})."
    raise ValueError(msg)


@dataclass
class CellLawFit(_LawFit):
    """Result of :func:`fit_cell_law` (fields as :class:`NoiseLawFit`, for ``n_sat, s, i_inf``).

    ``mean_abs_residual`` is the mean absolute difference between the data and the fit, the
    quality measure the paper reports for its cell-number fits; ``r_squared_means`` is R² of
    the fit against the mean over seeds at each size, the measure of the authors' code.
    ``bounds`` holds the parameter bounds used and ``at_bound`` the parameters that sit on
    one (their value is set by the bound, not the data; their errors mean little).
    ``reason`` flags a fit the data do not support (failed, non-finite, flat, never positive,
    or MI not rising with N); ``ok`` is ``reason == ""``.
    """

    n_sat: float = float("nan")
    s: float = float("nan")
    i_inf: float = float("nan")
    n_sat_err: float = float("nan")
    s_err: float = float("nan")
    i_inf_err: float = float("nan")
    mean_abs_residual: float = float("nan")
    r_squared_means: float = float("nan")
    bounds: dict = field(default_factory=dict, repr=False)
    at_bound: tuple = ()

    def predict(self, n):
        """The fitted law at ``n`` cells."""
        return cell_law(n, self.n_sat, self.s, self.i_inf)

    def collapse(self):
        """Collapse coordinates of the fitted points (see :func:`cell_collapse`).

        ``nan`` for a flagged fit.
        """
        if not self.ok:
            nan = np.full(self.x.shape, np.nan)
            return nan, nan.copy()
        return cell_collapse(self.x, self.mi, self.n_sat, self.s, self.i_inf)

    def to_dict(self) -> dict:
        return {
            "n_sat": self.n_sat,
            "s": self.s,
            "i_inf": self.i_inf,
            "n_sat_err": self.n_sat_err,
            "s_err": self.s_err,
            "i_inf_err": self.i_inf_err,
            "mean_abs_residual": self.mean_abs_residual,
            "r_squared": self.r_squared,
            "r_squared_means": self.r_squared_means,
            "n_points": self.n_points,
            "success": self.success,
            "constrained": self.constrained,
            "at_bound": ", ".join(self.at_bound),
            "ok": self.ok,
            "reason": self.reason,
        }


def _profile_cell_law(n, y, s_grid, bounds):
    """For each exponent, the least-squares ``(i_inf, c)`` of ``y = i_inf - c n^{-s}`` inside
    the bounds (``c = N_sat^s``, so the ``N_sat`` bounds become bounds on ``c``).

    For a fixed exponent the residual sum of squares is a convex quadratic in ``(i_inf, c)``:
    its minimum over a box is the free minimum when that lies inside, else the best of the
    four edges' minima (each a clipped one-dimensional solution).  Vectorised over the grid.
    """
    s_grid = np.asarray(s_grid, dtype=float)[:, None]
    (n_lo, n_hi), (i_lo, i_hi) = bounds["n_sat"], bounds["i_inf"]
    b = -np.power(n[None, :], -s_grid)  # y = i + c b
    with np.errstate(over="ignore", divide="ignore"):
        c_lo = np.power(n_lo, s_grid[:, 0])
        c_hi = np.power(n_hi, s_grid[:, 0])
    m = n.size
    sy, syy = y.sum(), float(y @ y)
    sb, sbb, sby = b.sum(1), (b * b).sum(1), b @ y

    def sse(i, c):
        return syy + m * i**2 + c**2 * sbb - 2 * i * sy - 2 * c * sby + 2 * i * c * sb

    var_b = sbb - sb**2 / m
    with np.errstate(divide="ignore", invalid="ignore"):
        c_free = np.where(var_b > 0, (sby - sb * sy / m) / var_b, 0.0)
    i_free = (sy - c_free * sb) / m
    cands = [(i_free, c_free, (i_free >= i_lo) & (i_free <= i_hi) & (c_free >= c_lo)
              & (c_free <= c_hi))]
    for i_edge in (i_lo, i_hi):  # i fixed on an edge, c clipped
        if np.isfinite(i_edge):
            with np.errstate(divide="ignore", invalid="ignore"):
                c = np.where(sbb > 0, (sby - i_edge * sb) / sbb, 0.0)
            cands.append((np.full_like(c, i_edge), np.clip(c, c_lo, c_hi), None))
    for c_edge in (c_lo, c_hi):  # c fixed on an edge, i clipped
        ok = np.isfinite(c_edge)
        c = np.where(ok, c_edge, 0.0)
        cands.append((np.clip((sy - c * sb) / m, i_lo, i_hi), c, ok))
    best_sse = np.full(s_grid.shape[0], np.inf)
    best_i, best_c = np.zeros_like(best_sse), np.zeros_like(best_sse)
    for i, c, valid in cands:
        with np.errstate(over="ignore", invalid="ignore"):
            val = sse(i, c)
        if valid is not None:
            val = np.where(valid, val, np.inf)
        better = val < best_sse
        best_sse = np.where(better, val, best_sse)
        best_i, best_c = np.where(better, i, best_i), np.where(better, c, best_c)
    k = int(np.argmin(best_sse))
    return float(best_sse[k]), float(s_grid[k, 0]), (float(best_i[k]), float(best_c[k]))


def _inside(value, lo, hi):
    """Nudge a start value just inside ``[lo, hi]`` (lmfit stalls on a bound)."""
    if np.isfinite(lo) and np.isfinite(hi):
        pad = 1e-6 * (hi - lo)
        return float(np.clip(value, lo + pad, hi - pad))
    return float(np.clip(value, lo, hi))


def _cell_flags(fit: CellLawFit) -> list[str]:
    flags = _data_flags(fit.x, fit.mi)
    if fit.result is None or not fit.success:
        flags.append("fit failed: the optimiser did not converge")
    values = (fit.n_sat, fit.s, fit.i_inf)
    if not (np.all(np.isfinite(values)) and fit.n_sat > 0 and fit.s > 0):
        flags.append("parameters not finite and positive")
    elif fit.i_inf <= 0:
        flags.append("I_inf not positive")
    if not np.isfinite(fit.r_squared) and "flat: MI does not vary" not in flags:
        flags.append("R² undefined")
    return flags


def fit_cell_law(n, mi, *, bounds: str | None = "deep", s_range=None, robust: bool = False):
    r"""Bounded least-squares fit of the cell-number law to every point of a curve.

    Written as :math:`I = I_\infty - c\,N^{-s}` with :math:`c = N_\mathrm{sat}^{\,s}`, the law
    is linear in :math:`(I_\infty, c)` for a fixed exponent.  The exponent is therefore profiled
    on a dense logarithmic grid with the linear part solved exactly inside the bounds, and the
    best grid point seeds a final bounded :mod:`lmfit` refinement of
    :math:`(N_\mathrm{sat}, s, I_\infty)`, which also gives the errors.  No starting value has
    to be guessed.

    Without bounds, a curve that is still rising at the largest size fits as well with any
    larger :math:`I_\infty` and :math:`N_\mathrm{sat}` (on the released table e.g.
    :math:`I_\infty` = 335 bits, :math:`N_\mathrm{sat} = \infty`): the authors' bounds (see
    :func:`cell_law_bounds`) keep every parameter finite and physical; a parameter that ends
    on its bound is listed in ``at_bound``.

    Parameters
    ----------
    n
        Training-set size of each point (cells), positive.
    mi
        Auxiliary information of each point, bits.
    bounds
        ``"deep"`` (default), ``"linear"`` or ``None`` (see :func:`cell_law_bounds`).
    s_range
        Range of exponents profiled; default: the bounds' range of ``s``.
    robust
        Polish the least-squares solution with a soft-L1 loss (scale: the median absolute
        residual) and keep it when it lowers the mean absolute residual, which guards the fit
        against a single outlying seed.  Off by default: the authors fit by least squares,
        and R² (a least-squares measure) is what the paper reports.

    Returns
    -------
    CellLawFit
        Flagged (``ok`` false, ``reason`` says why) when the optimiser fails, a parameter is
        not finite, :math:`I_\infty \le 0`, or the data are flat, never positive, or do not
        rise with :math:`N`.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> n = np.repeat(np.geomspace(100, 1e5, 10), 3)
    >>> y = cell_law(n, 300.0, 0.6, 3.0) + rng.normal(0, 0.03, n.size)
    >>> fit = fit_cell_law(n, y)
    >>> abs(fit.s - 0.6) < 0.1, abs(fit.i_inf - 3.0) < 0.1, fit.ok
    (True, True, True)
    >>> fit_cell_law(n, -y).reason
    'no positive MI at any level; MI does not rise with x (rank correlation <= 0)'
    """
    n, y = _check_xy(n, mi, name_x="n", positive_x=True)
    if n.size < 4:
        msg = f"A cell-number-law fit needs at least 4 points (got {n.size})."
        raise ValueError(msg)
    box = cell_law_bounds(bounds, y)
    s_lo, s_hi = box["s"] if s_range is None else s_range
    s_grid = np.geomspace(s_lo, s_hi, 400)
    sse, s0, (i0, c0) = _profile_cell_law(n, y, s_grid, box)
    n_lo, n_hi = box["n_sat"]
    log_lo = np.log10(n_lo) if n_lo > 0 else -np.inf
    log_hi = np.log10(n_hi)
    # N_sat = c^{1/s} can overflow for flat curves: work with log10 N_sat throughout
    if c0 > 0:
        log_n_sat0 = float(np.clip(np.log10(c0) / s0, log_lo, log_hi))
    else:  # flat curve: c = N_sat^s -> 0, i.e. N_sat far below the smallest training size
        log_n_sat0 = float(max(np.log10(n.min()) - 6.0, log_lo))

    model = lmfit.Model(_cell_model_log)
    params = model.make_params(
        log_n_sat=dict(value=_inside(log_n_sat0, log_lo, log_hi), min=log_lo, max=log_hi),
        s=dict(value=_inside(s0, s_lo, s_hi), min=s_lo, max=s_hi),
        i_inf=dict(value=_inside(i0, *box["i_inf"]), min=box["i_inf"][0], max=box["i_inf"][1]),
    )
    res = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            candidate = model.fit(y, params, x=n, max_nfev=2000)
            if np.isfinite(candidate.chisqr) and candidate.chisqr <= sse * (1 + 1e-6) + 1e-12:
                res = candidate
        except (ValueError, RuntimeError, OverflowError):
            res = None
        if res is not None and robust:
            # Seeds scatter with heavy tails (one seed can sit a bit away from the others):
            # polish with a soft-L1 loss and keep it if it lowers the mean absolute residual.
            scale = float(np.median(np.abs(res.residual))) or 1e-3
            try:
                polished = model.fit(
                    y,
                    res.params,
                    x=n,
                    method="least_squares",
                    fit_kws={"loss": "soft_l1", "f_scale": scale},
                )
                if np.mean(np.abs(polished.residual)) < np.mean(np.abs(res.residual)):
                    res = polished
            except (ValueError, RuntimeError, OverflowError):
                pass

    if res is None:  # keep the profiled optimum (inside the bounds), without errors
        log_n, s_fit, i_fit = log_n_sat0, float(s0), float(i0)
        errors = (np.nan, np.nan, np.nan)
        success, constrained = bool(np.isfinite(sse)), False
        fitted = _cell_model_log(n, log_n, s_fit, i_fit)
    else:
        p = res.params
        log_n, s_fit, i_fit = p["log_n_sat"].value, p["s"].value, p["i_inf"].value
        with np.errstate(over="ignore"):
            n_sat_err = float(np.power(10.0, log_n) * np.log(10.0) * _stderr(p["log_n_sat"]))
        errors = (n_sat_err, _stderr(p["s"]), _stderr(p["i_inf"]))
        # accepted only if no worse than the profiled optimum: a least-squares optimum inside
        # the box even where the optimiser stops on a ridge along a bound (lmfit: "tolerance
        # too small"), which ``at_bound`` reports
        success = bool(np.isfinite(res.chisqr))
        fitted = res.best_fit
    with np.errstate(over="ignore"):
        n_sat = float(np.power(10.0, log_n))
    values = (n_sat, float(s_fit), float(i_fit))
    constrained = res is not None and _well_constrained(values, errors)
    sizes, means, _ = _level_means(n, y)
    at_bound = tuple(
        name
        for name, v, (lo, hi) in (
            ("n_sat", log_n, (log_lo, log_hi)),
            ("s", s_fit, (s_lo, s_hi)),
            ("i_inf", i_fit, box["i_inf"]),
        )
        if np.isfinite(v) and any(np.isfinite(e) and abs(v - e) <= 1e-4 * max(1.0, abs(e))
                                  for e in (lo, hi))
    )
    fit = CellLawFit(
        x=n,
        mi=y,
        result=res,
        r_squared=_r_squared(y, fitted),
        success=success,
        constrained=bool(constrained),
        n_sat=values[0],
        s=values[1],
        i_inf=values[2],
        n_sat_err=errors[0],
        s_err=errors[1],
        i_inf_err=errors[2],
        mean_abs_residual=float(np.mean(np.abs(y - fitted))),
        r_squared_means=_r_squared(means, _cell_model_log(sizes, log_n, s_fit, i_fit)),
        bounds=box,
        at_bound=at_bound,
    )
    fit.reason = "; ".join(_cell_flags(fit))
    return fit


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


__all__.append("fit_table")


# --------------------------------------------------------------------------------------------
# Joint law: cells × depth
# --------------------------------------------------------------------------------------------
__all__ += [
    "JOINT_FORMS", "JOINT_RULE", "JointLawFit", "cross_validate_joint", "fit_joint_law",
    "joint_law", "joint_noise_params", "select_joint_form",
]

#: Candidate joint forms. Each is Eq. 1 in ``x`` with the cell-number law as its capacity,
#: :math:`I_\max(N) = I_\infty - (N/N_\mathrm{sat})^{-s}`; they differ in how ū moves with N.
JOINT_FORMS = {
    "naive": "one ū for every N (4 parameters)",
    "coupled": "ln ū(N) = ln ū∞ + β (N/N_sat)^(-s): ū moves with the capacity gap (5 parameters)",
    "free": "ln ū(N) = ln ū∞ + β (N/N_sat)^(-b): ū moves with its own exponent b (6 parameters)",
}
_JOINT_NAMES = {
    "naive": ("u_bar", "i_inf", "n_sat", "s"),
    "coupled": ("u_bar", "i_inf", "n_sat", "s", "beta"),
    "free": ("u_bar", "i_inf", "n_sat", "s", "beta", "b"),
}
#: The rule that chooses a form per grid: the lowest Bayesian information criterion among
#: :data:`JOINT_FORMS`, on the points at hand (inside cross-validation: the training folds).
JOINT_RULE = "bic"
_BELOW = {"coupled": "naive", "free": "coupled"}
_LOG_PARAMS = {"u_bar", "n_sat", "s", "b"}  # fitted on a log scale (positive)


def joint_law(n, x, *, u_bar, i_inf, n_sat, s, beta=0.0, b=None):
    r"""Auxiliary information (bits) of a model trained on ``n`` cells measured at depth ``x``.

    .. math::

        I(N, x) = \mathrm{Eq.\,1}\bigl(x;\ \bar u(N),\ I_\max(N)\bigr),\quad
        I_\max(N) = I_\infty - (N/N_\mathrm{sat})^{-s},\quad
        \ln \bar u(N) = \ln \bar u_\infty + \beta\,(N/N_\mathrm{sat})^{-b}

    with ``b = s`` unless given.  At large ``N`` this is Eq. 1 with :math:`(\bar u_\infty,
    I_\infty)`; at large ``x`` it is the cell-number law; ``beta = 0`` is the naive form.

    Examples
    --------
    >>> p = dict(u_bar=500.0, i_inf=3.0, n_sat=200.0, s=0.5, beta=0.8)
    >>> abs(float(joint_law(1e16, 800.0, **p)) - noise_law(800.0, 500.0, 3.0)) < 1e-6
    True
    >>> abs(float(joint_law(800.0, 1e15, **p)) - cell_law(800.0, 200.0, 0.5, 3.0)) < 1e-6
    True
    """
    u, i_max = joint_noise_params(n, u_bar=u_bar, i_inf=i_inf, n_sat=n_sat, s=s, beta=beta, b=b)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return noise_law(x, u, i_max)


def joint_noise_params(n, *, u_bar, i_inf, n_sat, s, beta=0.0, b=None):
    """The parameters (ū(N), I_max(N)) of Eq. 1 at ``n`` training cells under the joint law.

    Examples
    --------
    >>> u, i = joint_noise_params(300.0, u_bar=500.0, i_inf=3.0, n_sat=300.0, s=0.5, beta=1.0)
    >>> round(float(u / 500.0), 4), float(i)
    (2.7183, 2.0)
    """
    n = np.asarray(n, dtype=float)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        ratio = n / n_sat
        i_max = i_inf - np.power(ratio, -s)
        shift = beta * np.power(ratio, -(s if b is None else b))
        u = u_bar * np.exp(np.clip(shift, -50.0, 50.0))
    return u, i_max


def _joint_params(theta, form):
    names = _JOINT_NAMES[form]
    return {
        k: float(np.exp(v)) if k in _LOG_PARAMS else float(v)
        for k, v in zip(names, theta, strict=True)
    }


def _joint_eval(theta, n, x, form):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return joint_law(n, x, **_joint_params(theta, form))


def _fd_jacobian(fun, theta, *, step=1e-6):
    """Central-difference Jacobian of ``fun`` (vector-valued) at ``theta``."""
    theta = np.asarray(theta, dtype=float)
    cols = []
    for k in range(theta.size):
        h = step * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        cols.append((fun(up) - fun(down)) / (2 * h))
    return np.column_stack(cols)


@dataclass
class JointLawFit:
    """Result of :func:`fit_joint_law`.

    Attributes
    ----------
    form
        The joint form (a key of :data:`JOINT_FORMS`).
    params, errors
        Fitted parameters (``u_bar`` is ū∞, the large-N noise scale) and their one-standard
        errors from the fit covariance (delta method for the log-scale ones).
    theta, cov
        The fitted vector on the optimiser's scale (log for positive parameters) and its
        covariance, for sampling (:meth:`sample_params`) and bands (:meth:`band`).
    domain
        The range of ``n`` and of ``x`` the fit saw (beyond it the law extrapolates).
    r_squared
        Coefficient of determination over every point.
    """

    form: str
    n: np.ndarray = field(repr=False)
    x: np.ndarray = field(repr=False)
    mi: np.ndarray = field(repr=False)
    theta: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    params: dict
    errors: dict
    r_squared: float
    success: bool
    domain: dict = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return int(self.mi.size)

    @property
    def bic(self) -> float:
        r"""Bayesian information criterion of the fit, :math:`m \ln(\mathrm{RSS}/m) + k \ln m`
        over its ``m`` points and ``k`` parameters (``nan`` for a fit rebuilt from JSON)."""
        m, k = self.n_points, self.theta.size
        if m == 0:
            return float("nan")
        rss = float(np.sum((self.mi - self.predict(self.n, self.x)) ** 2))
        return float(m * np.log(max(rss, 1e-300) / m) + k * np.log(m))

    @property
    def constrained(self) -> bool:
        """Every error is finite and smaller than its value (``beta`` may be near zero)."""
        return all(
            np.isfinite(self.errors[k]) and (k == "beta" or self.errors[k] < abs(self.params[k]))
            for k in self.params
        )

    def predict(self, n, x):
        """The fitted law at ``n`` cells and depth ``x`` (broadcast)."""
        return joint_law(n, x, **self.params)

    def u_bar_at(self, n):
        """The noise scale ū(N) of Eq. 1 at ``n`` training cells."""
        return joint_noise_params(n, **self.params)[0]

    def i_max_at(self, n):
        """The capacity I_max(N) of Eq. 1 at ``n`` training cells (the cell-number law)."""
        return joint_noise_params(n, **self.params)[1]

    @property
    def noise_edge(self) -> NoiseLawFit:
        """The large-N edge: Eq. 1 with (ū∞, I∞), shown on the points of the largest N."""
        keep = self.n == self.n.max()
        p, e = self.params, self.errors
        fitted = noise_law(self.x[keep], p["u_bar"], p["i_inf"])
        return NoiseLawFit(
            x=self.x[keep], mi=self.mi[keep], result=None,
            r_squared=_r_squared(self.mi[keep], fitted) if keep.sum() > 1 else float("nan"),
            success=self.success, constrained=self.constrained,
            u_bar=p["u_bar"], i_max=p["i_inf"], u_bar_err=e["u_bar"], i_max_err=e["i_inf"],
        )

    @property
    def cell_edge(self) -> CellLawFit:
        """The large-x edge: the cell-number law, shown on the points of the largest x."""
        keep = self.x == self.x.max()
        p, e = self.params, self.errors
        fitted = cell_law(self.n[keep], p["n_sat"], p["s"], p["i_inf"])
        return CellLawFit(
            x=self.n[keep], mi=self.mi[keep], result=None,
            r_squared=_r_squared(self.mi[keep], fitted) if keep.sum() > 1 else float("nan"),
            success=self.success, constrained=self.constrained,
            n_sat=p["n_sat"], s=p["s"], i_inf=p["i_inf"],
            n_sat_err=e["n_sat"], s_err=e["s"], i_inf_err=e["i_inf"],
            mean_abs_residual=float(np.mean(np.abs(self.mi[keep] - fitted))),
        )

    def band(self, n, x, *, sigma: float = 2.0):
        """Lower and upper edges of the ``sigma`` band of the fitted surface (delta method)."""
        n, x = np.broadcast_arrays(np.asarray(n, float), np.asarray(x, float))
        mid = self.predict(n, x)
        jac = _fd_jacobian(lambda t: _joint_eval(t, n.ravel(), x.ravel(), self.form), self.theta)
        var = np.einsum("ij,jk,ik->i", jac, self.cov, jac).reshape(mid.shape)
        half = sigma * np.sqrt(np.clip(var, 0, None))
        return mid - half, mid + half

    def sample_params(self, size: int, *, seed: int = 0) -> list[dict]:
        """``size`` parameter sets drawn from the fit's (log-scale) normal approximation.

        Raises
        ------
        ValueError
            If the fit has no finite covariance (an unconstrained direction, e.g. a model whose
            information does not depend on N at all).
        """
        if not np.all(np.isfinite(self.cov)):
            msg = f"This {self.form!r} fit has no finite covariance to sample from."
            raise ValueError(msg)
        rng = np.random.default_rng(seed)
        vals, vecs = np.linalg.eigh(0.5 * (self.cov + self.cov.T))
        root = vecs * np.sqrt(np.clip(vals, 0, None))  # PSD part: round-off negatives dropped
        draws = self.theta + rng.standard_normal((size, self.theta.size)) @ root.T
        with np.errstate(over="ignore"):
            return [_joint_params(t, self.form) for t in draws]

    def to_dict(self) -> dict:
        """Parameters, errors and the covariance as plain JSON-ready values."""
        return {
            "law": "joint",
            "form": self.form,
            "params": dict(self.params),
            "errors": dict(self.errors),
            "theta": [float(v) for v in self.theta],
            "cov": np.asarray(self.cov, float).tolist(),
            "r_squared": self.r_squared,
            "n_points": self.n_points,
            "success": self.success,
            "domain": {k: [float(v) for v in lims] for k, lims in self.domain.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> JointLawFit:
        """Rebuild a fit saved with :meth:`to_dict` (the data points are not stored)."""
        if not isinstance(d, dict) or d.get("law") != "joint" or d.get("form") not in JOINT_FORMS:
            got = (d.get("law"), d.get("form")) if isinstance(d, dict) else (type(d).__name__,)
            msg = f"Not a saved joint-law fit (law, form = {got!r})."
            raise ValueError(msg)
        form = d["form"]
        names = _JOINT_NAMES[form]
        try:
            theta = np.asarray(d["theta"], float)
            cov = np.asarray(d["cov"], float)
            params = {k: float(v) for k, v in d["params"].items()}
            errors = {k: float(v) for k, v in d["errors"].items()}
            r_squared, success = float(d["r_squared"]), d["success"]
            domain = {k: tuple(float(b) for b in v) for k, v in d.get("domain", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            msg = f"A saved joint-law fit is incomplete or malformed: {err}."
            raise ValueError(msg) from None
        problems = []
        if not isinstance(success, bool):
            problems.append(f"success is {success!r}, not true or false")
        if theta.shape != (len(names),) or not np.isfinite(theta).all():
            problems.append(f"theta must be {len(names)} finite numbers")
        elif set(params) != set(names) or any(
                not np.isclose(params[k], v, rtol=1e-9, atol=0)
                for k, v in _joint_params(theta, form).items()):
            problems.append("its parameters do not follow from its theta (edited?)")
        if cov.shape != (len(names), len(names)):
            problems.append(f"cov must be a {len(names)} x {len(names)} matrix")
        elif not np.allclose(cov, cov.T, equal_nan=True) or (np.diag(cov) < 0).any():
            problems.append("cov is not a covariance (asymmetric or negative variances)")
        if set(errors) != set(names) or any(v < 0 for v in errors.values()):
            problems.append("errors must be one non-negative number (or NaN) per parameter")
        if not np.isfinite(r_squared) or r_squared > 1:
            problems.append(f"r_squared {r_squared!r} is not a coefficient of determination")
        for key, bounds in domain.items():
            if len(bounds) != 2 or not (0 < bounds[0] <= bounds[1] < np.inf):
                problems.append(f"domain {key!r} is not a positive range")
        if problems:
            msg = "Not a valid saved joint-law fit: " + "; ".join(problems) + "."
            raise ValueError(msg)
        empty = np.array([], dtype=float)
        return cls(
            form=form, n=empty, x=empty, mi=empty, theta=theta, cov=cov, params=params,
            errors=errors, r_squared=r_squared, success=success, domain=domain,
        )


def _joint_starts(n, x, y):
    """Starting vectors of the naive form: cell-law parameters from the deepest points, ū grid."""
    top = x >= np.quantile(x, 0.8)
    sizes = np.unique(n[top])
    if sizes.size >= 4:
        means = np.array([y[top & (n == k)].mean() for k in sizes])
        free = {"n_sat": (0.0, np.inf), "i_inf": (-np.inf, np.inf)}
        _, s0, (i0, c0) = _profile_cell_law(sizes, means, np.geomspace(1e-2, 5.0, 120), free)
        log_nsat0 = np.log(c0) / s0 if c0 > 0 else np.log(n.min()) - 3.0
    else:
        s0, i0, log_nsat0 = 0.5, float(y.max()), float(np.log(n.min()))
    i0 = max(i0, float(y.max())) + 0.1
    positive = x[x > 0]
    return [
        np.array([np.log(u), i0, log_nsat0, np.log(s0)])
        for u in np.geomspace(positive.min(), positive.max() * 3, 6)
    ]


def _extend_starts(theta, form):
    """Starts of a richer form from the optimum of the form below it (β = 0 reproduces it)."""
    if form == "coupled":
        return [np.append(theta, beta) for beta in (0.0, -1.0, 1.0)]
    # free from coupled: b starts at s and on either side of it, and, in case ū settles at a
    # rate of its own far from the capacity's, from a shallow and a unit exponent with β = ±1
    log_s = theta[3]
    near = [np.append(theta, log_s + d) for d in (0.0, -np.log(2), np.log(2))]
    apart = [np.append(np.r_[theta[:4], beta], np.log(b)) for beta in (-1.0, 1.0)
             for b in (0.3, 1.0)]
    return near + apart


def fit_joint_law(n, x, mi, *, form: str = "coupled", starts=None,
                  below: JointLawFit | None = None) -> JointLawFit:
    r"""Least-squares fit of the joint cells × depth law (:func:`joint_law`) to a grid.

    Every point is used (each seed separately).  The fit is started from several points —
    cell-number-law parameters profiled on the deepest points, a geometric grid of ū over
    the range of ``x``, and a few values of β (and b) — and the lowest residual wins.
    Errors come from the Jacobian at the optimum, :math:`\mathrm{cov} = \hat\sigma^2
    (J^\top J)^{-1}`.

    Parameters
    ----------
    n
        Training cells of each point; positive.
    x
        Signal-to-noise power of each point (mean UMIs per cell); non-negative.
    mi
        Auxiliary information of each point, bits.
    form
        ``"naive"`` (one ū), ``"coupled"`` (ū moves with the capacity gap; the default),
        ``"free"`` (ū with its own exponent), or ``"bic"`` (:data:`JOINT_RULE`): all three,
        returning the one of lowest BIC (see :func:`select_joint_form`).
    starts
        Optional extra starting vectors on the optimiser's scale.
    below
        A fit of the next simpler form on the same points (``naive`` for ``coupled``,
        ``coupled`` for ``free``) to start from; fitted here when not given.

    Returns
    -------
    JointLawFit

    Raises
    ------
    ValueError
        Mismatched lengths, non-finite values, an unknown form, fewer than 2 distinct ``n``
        or ``x``, or fewer points than twice the parameters.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n, x = (a.ravel() for a in np.meshgrid(np.geomspace(100, 1e5, 8), np.geomspace(10, 1e4, 8)))
    >>> truth = dict(u_bar=600.0, i_inf=2.5, n_sat=300.0, s=0.6, beta=1.0)
    >>> y = joint_law(n, x, **truth) + rng.normal(0, 0.03, n.size)
    >>> fit = fit_joint_law(n, x, y, form="coupled")
    >>> abs(fit.params["i_inf"] - 2.5) < 0.1, abs(fit.params["u_bar"] / 600 - 1) < 0.2
    (True, True)
    """
    from scipy.optimize import least_squares

    if form == JOINT_RULE:
        return select_joint_form(_fit_chain(n, x, mi, tuple(JOINT_FORMS)).values())
    if form not in JOINT_FORMS:
        msg = f"Unknown joint form {form!r}; choose one of {sorted(JOINT_FORMS)} or {JOINT_RULE!r}."
        raise ValueError(msg)
    n, y = _check_xy(n, mi, name_x="n", positive_x=True)
    x, _ = _check_xy(x, mi, name_x="x")
    names = _JOINT_NAMES[form]
    if np.unique(n).size < 2 or np.unique(x).size < 2:
        msg = "A joint fit needs at least 2 distinct training sizes and 2 distinct depths."
        raise ValueError(msg)
    if y.size < 2 * len(names):
        msg = f"A {form!r} joint fit needs at least {2 * len(names)} points (got {y.size})."
        raise ValueError(msg)

    def resid(theta):
        out = _joint_eval(theta, n, x, form) - y
        return np.where(np.isfinite(out), out, 1e3)

    if form == "naive":
        candidates = _joint_starts(n, x, y)
    else:  # nested forms: start from the optimum of the form below, so a richer form never loses
        if below is None or below.form != _BELOW[form]:
            below = fit_joint_law(n, x, y, form=_BELOW[form])
        candidates = _extend_starts(below.theta, form)
    candidates += [np.asarray(t, float) for t in (starts or [])]
    # N_sat at most 10x the largest training size: beyond it the data cannot tell I_inf from
    # a logarithm in N (s -> 0, N_sat -> inf, I_inf -> inf all fit alike); s in [0.01, 10].
    lower = np.full(len(names), -np.inf)
    upper = np.full(len(names), np.inf)
    upper[2] = np.log(10 * n.max())
    lower[3], upper[3] = np.log(0.01), np.log(10.0)
    if form == "free":
        lower[5], upper[5] = np.log(0.01), np.log(10.0)
    best = None
    for start in candidates:
        start = np.clip(start, lower + 1e-9, upper - 1e-9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = least_squares(resid, start, method="trf", bounds=(lower, upper),
                                    x_scale="jac", max_nfev=4000)
            except (ValueError, FloatingPointError):
                continue
        if np.isfinite(res.cost) and (best is None or res.cost < best.cost):
            best = res
    if best is None:  # pragma: no cover - every start failed
        msg = "The joint fit failed from every starting point."
        raise RuntimeError(msg)

    theta = best.x
    params = _joint_params(theta, form)
    dof = max(y.size - theta.size, 1)
    jac = _fd_jacobian(lambda t: _joint_eval(t, n, x, form), theta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cov = np.linalg.inv(jac.T @ jac) * float(np.sum(best.fun**2)) / dof
            ok = bool(np.all(np.isfinite(cov)) and np.all(np.diag(cov) >= 0))
        except np.linalg.LinAlgError:
            cov, ok = np.full((theta.size, theta.size), np.nan), False
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(over="ignore", invalid="ignore"):
        errors = {
            k: float(params[k] * sd[i]) if k in _LOG_PARAMS else float(sd[i])
            for i, k in enumerate(names)
        }
    fitted = _joint_eval(theta, n, x, form)
    return JointLawFit(
        form=form, n=n, x=x, mi=y, theta=theta, cov=cov, params=params, errors=errors,
        r_squared=_r_squared(y, fitted), success=bool(best.success and ok),
        domain={"n": (float(n.min()), float(n.max())), "x": (float(x.min()), float(x.max()))},
    )


def _fit_chain(n, x, mi, forms) -> dict:
    """Fits of ``forms`` (a prefix of naive, coupled, free), each started from the one below."""
    prev, fits = None, {}
    for form in forms:
        prev = fits[form] = fit_joint_law(n, x, mi, form=form, below=prev)
    return fits


def select_joint_form(fits) -> JointLawFit:
    """The fit of lowest BIC among fits of the same points (the rule :data:`JOINT_RULE`).

    Richer forms must lower the residual enough to pay for their parameters, so a grid whose
    noise scale does not move with N (a random projection learns nothing from cells) keeps
    the naive form, and a grid whose noise scale does takes a richer one.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> n, x = (a.ravel() for a in np.meshgrid(np.geomspace(100, 1e5, 6), np.geomspace(10, 1e4, 6)))
    >>> flat = dict(u_bar=400.0, i_inf=2.0, n_sat=200.0, s=0.5)
    >>> y = joint_law(n, x, **flat) + rng.normal(0, 0.02, n.size)
    >>> fit_joint_law(n, x, y, form="bic").form
    'naive'
    >>> y = joint_law(n, x, **flat, beta=1.5) + rng.normal(0, 0.02, n.size)
    >>> fit_joint_law(n, x, y, form="bic").form
    'coupled'
    """
    return min(fits, key=lambda fit: fit.bic)


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
