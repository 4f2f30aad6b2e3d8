r"""The noise law (Eq. 1; Box 1): evaluate, invert, UMI90, collapse and fit."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import lmfit
import numpy as np

from .common import (
    _check_xy,
    _data_flags,
    _LawFit,
    _level_means,
    _r_squared,
    _stderr,
    _well_constrained,
)

__all__ = [
    "noise_law",
    "invert_noise_law",
    "UMI90_DEFINITIONS",
    "umi90",
    "universal_noise_curve",
    "noise_collapse",
    "collapse_r2",
    "NoiseLawFit",
    "noise_flags",
    "fit_noise_law",
]


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


def collapse_r2(fits) -> float:
    """Pooled :math:`R^2` of noise-law fits collapsed onto :func:`universal_noise_curve`.

    ``fits`` are :class:`NoiseLawFit` objects (e.g. the ``fit`` column of a
    :func:`helpers.laws.fit_table`, ``ok`` rows); every fitted point of every curve counts once.

    Examples
    --------
    >>> x = np.geomspace(10.0, 1e4, 8)
    >>> fits = [fit_noise_law(x, noise_law(x, u, 2.0)) for u in (100.0, 1000.0)]
    >>> round(collapse_r2(fits), 6)
    1.0
    """
    pairs = [f.collapse() for f in fits]
    z = np.concatenate([p[0] for p in pairs])
    y = np.concatenate([p[1] for p in pairs])
    return _r_squared(y, universal_noise_curve(z))


def _noise_model(x, u_bar, i_max):
    return noise_law(x, u_bar, i_max)


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
