r"""The cell-number law (Fig. 2a): evaluate, collapse, the authors' bounds and the fit."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

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
    "cell_law",
    "cell_collapse",
    "LINEAR_MODELS",
    "cell_law_bounds",
    "CellLawFit",
    "fit_cell_law",
]


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
