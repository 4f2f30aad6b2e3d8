r"""Plan an experiment with the joint cells × depth law: what a budget buys.

A design is a number of cells :math:`N` and a depth :math:`x` (mean UMIs per cell).  It costs

.. math::

    C(N, x) = C_\mathrm{fixed} + N\,(c_\mathrm{cell} + x\,c_\mathrm{UMI}),

and a fitted law (:class:`helpers.laws.JointLawFit`, or a noise and a cell-number law combined
with :func:`law_from_marginals`) predicts the auxiliary information it yields.  Two questions:

* :func:`optimal_design` — the design on the budget line :math:`C = B` with the most
  information (a one-dimensional search over :math:`\ln N`: a dense grid, then Brent's method);
* :func:`cheapest_design` — the cheapest design that reaches a target (bits, or a fraction of
  the capacity :math:`I_\infty`): for each :math:`N` the depth is the inverse of Eq. 1
  (:func:`helpers.laws.invert_noise_law`), so again a search over :math:`\ln N` only.

Both carry an interval from the fit: parameters are drawn from the fit's covariance
(:meth:`~helpers.laws.JointLawFit.sample_params`) and the question is answered again for each
draw; :func:`bootstrap_fits` refits resampled grid cells instead, to check that interval.

The command line answers the same questions for a released task or a fit saved to disk::

    python -m helpers.plan --task protein --model SCVI --budget 1e9 --cost-per-read 1
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from . import laws
from ._cli import USER_ERRORS, add_debug, nonnegative_float, nonnegative_int, positive_float

__all__ = [
    "Costs",
    "Design",
    "allocation_curve",
    "bootstrap_fits",
    "brute_force_design",
    "cheapest_design",
    "check_fit",
    "design_table",
    "fit_released",
    "law_from_marginals",
    "load_fit",
    "main",
    "optimal_design",
    "released_fits",
    "save_fit",
]

def _released_title(task: str) -> str:
    """The released table's task name of a registered task (``sc_protein`` → ``Protein MI``);
    a short name (``protein``) or the released name itself also works."""
    from . import tasks

    cells = {n: tasks.get(n).title for n in tasks.names(modality="cell") if tasks.get(n).paper}
    titles = set(cells.values())
    key = task if task in cells or task in titles else f"sc_{task.lower()}"
    if key in cells:
        return cells[key]
    if key in titles:
        return key
    msg = f"Unknown released task {task!r}; choose one of {sorted(cells)} (or {sorted(titles)})."
    raise ValueError(msg)


@dataclass(frozen=True)
class Costs:
    """What a design costs: per cell, per UMI and a fixed part, in one currency.

    Parameters
    ----------
    per_cell
        Cost of capturing and preparing one cell's library.
    per_umi
        Cost of one detected UMI (sequencing cost per read × reads per UMI).
    fixed
        Cost paid once, whatever the design.

    Examples
    --------
    >>> c = Costs.from_reads(per_cell=0.0, per_read=1.0, reads_per_umi=3.0)
    >>> c.per_umi, c.total(1000, 2000)
    (3.0, 6000000.0)
    """

    per_cell: float = 0.0
    per_umi: float = 1.0
    fixed: float = 0.0

    def __post_init__(self):
        for name in ("per_cell", "per_umi", "fixed"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                msg = f"Costs.{name} must be a finite non-negative number (got {value!r})."
                raise ValueError(msg)
        if self.per_umi == 0 and self.per_cell == 0:
            msg = "Costs need a positive per_cell or per_umi cost (both are 0)."
            raise ValueError(msg)

    @classmethod
    def from_reads(cls, *, per_cell: float = 0.0, per_read: float, reads_per_umi: float,
                   fixed: float = 0.0) -> Costs:
        """Costs from a price per sequencing read and the reads spent per detected UMI."""
        if not reads_per_umi >= 1:
            msg = f"reads_per_umi must be at least 1 (got {reads_per_umi!r})."
            raise ValueError(msg)
        return cls(per_cell=per_cell, per_umi=per_read * reads_per_umi, fixed=fixed)

    def total(self, cells, umis_per_cell):
        """Cost of ``cells`` cells at ``umis_per_cell`` mean UMIs per cell."""
        cells = np.asarray(cells, dtype=float)
        out = self.fixed + cells * (self.per_cell + np.asarray(umis_per_cell, float) * self.per_umi)
        return out if out.ndim else float(out)

    def depth_on_budget(self, cells, budget):
        """The depth (UMIs per cell) that spends ``budget`` on ``cells`` cells (NaN if none)."""
        cells = np.asarray(cells, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = ((budget - self.fixed) / cells - self.per_cell) / self.per_umi
        return np.where(x > 0, x, np.nan)

    def max_cells(self, budget) -> float:
        """The most cells the budget pays for (at vanishing depth)."""
        left = budget - self.fixed
        return float(left / self.per_cell) if self.per_cell > 0 else float("inf")

    def cells_for(self, budget, umis_per_cell) -> float:
        """The cells at which ``budget`` buys exactly ``umis_per_cell`` UMIs per cell."""
        return float((budget - self.fixed) / (self.per_cell + umis_per_cell * self.per_umi))


@dataclass(frozen=True)
class Design:
    """An experimental design with its predicted information and cost.

    ``*_lo`` / ``*_hi`` are the edges of the central ``level`` interval over the fit's
    uncertainty (NaN when not computed); ``pred_lo`` / ``pred_hi`` the 90 % predictive
    interval of the MI an experiment of this design would measure
    (:meth:`helpers.laws.JointLawFit.interval`: the fit's uncertainty, the seed scatter and
    the law's error beyond the fitted cells, calibrated on the released grids);
    ``extrapolated`` says the design lies outside the cells or depths the law was fitted on;
    ``beyond_calibration`` that it lies further beyond the fitted cells than that calibration
    was tested (more than about one decade), so even the predictive interval is a guess;
    ``at_limit`` that it sits on an edge of the cells or depths searched, so the law would
    go further if allowed.
    """

    cells: float
    umis_per_cell: float
    mi: float
    cost: float
    i_inf: float
    mi_lo: float = float("nan")
    mi_hi: float = float("nan")
    cells_lo: float = float("nan")
    cells_hi: float = float("nan")
    umis_lo: float = float("nan")
    umis_hi: float = float("nan")
    level: float = 0.95
    extrapolated: bool = False
    at_limit: bool = False
    pred_lo: float = float("nan")
    pred_hi: float = float("nan")
    beyond_calibration: bool = False

    @property
    def fraction_of_capacity(self) -> float:
        return self.mi / self.i_inf

    def to_dict(self) -> dict:
        return {**asdict(self), "fraction_of_capacity": self.fraction_of_capacity}

    def __str__(self) -> str:
        band = (f" [{self.mi_lo:.2f}, {self.mi_hi:.2f}]" if np.isfinite(self.mi_lo) else "")
        if np.isfinite(self.pred_lo):
            band += f", 90% predictive {self.pred_lo:.2f}–{self.pred_hi:.2f}"
        flag = " (extrapolated beyond the fitted grid)" if self.extrapolated else ""
        flag += (" (further beyond the fitted cells than the intervals were calibrated for)"
                 if self.beyond_calibration else "")
        flag += " (at the edge of the designs searched)" if self.at_limit else ""
        return (f"{self.cells:,.0f} cells × {self.umis_per_cell:,.0f} UMIs per cell → "
                f"{self.mi:.2f} bits{band} ({100 * self.fraction_of_capacity:.0f}% of "
                f"I∞ = {self.i_inf:.2f}) for {self.cost:,.4g}{flag}")


# --------------------------------------------------------------------------------------------
# Laws
# --------------------------------------------------------------------------------------------
def law_from_marginals(noise: laws.NoiseLawFit, cell: laws.CellLawFit, *,
                       n_ref: float) -> laws.JointLawFit:
    """The naive joint law built from a noise-law fit and a cell-number-law fit.

    The noise curve was measured at ``n_ref`` training cells: its capacity is the cell law's
    :math:`I_\\max(N)` at ``n_ref``, so :math:`I_\\infty = I_\\max + (n_\\mathrm{ref}/
    N_\\mathrm{sat})^{-s}`, with :math:`N_\\mathrm{sat}` and :math:`s` from the cell law and one
    ū for every N.  The two fits are taken as independent for the covariance.

    Examples
    --------
    >>> x = np.repeat(np.geomspace(10, 1e4, 10), 2)
    >>> noise = laws.fit_noise_law(x, laws.noise_law(x, 500.0, 2.0) + 0.01 * np.sin(x))
    >>> n = np.repeat(np.geomspace(100, 1e5, 10), 2)
    >>> cell = laws.fit_cell_law(n, laws.cell_law(n, 200.0, 0.5, 2.2) + 0.01 * np.cos(n))
    >>> law = law_from_marginals(noise, cell, n_ref=1e5)
    >>> round(float(law.predict(1e5, 1e9)), 1)
    2.0
    """
    if not (noise.ok and cell.ok):
        msg = "law_from_marginals needs two constrained fits (a flagged fit was passed)."
        raise ValueError(msg)
    gap = (n_ref / cell.n_sat) ** (-cell.s)
    params = {"u_bar": noise.u_bar, "i_inf": noise.i_max + gap, "n_sat": cell.n_sat, "s": cell.s}
    theta = np.array([np.log(noise.u_bar), params["i_inf"], np.log(cell.n_sat), np.log(cell.s)])
    sd = np.array([noise.u_bar_err / noise.u_bar, noise.i_max_err, cell.n_sat_err / cell.n_sat,
                   cell.s_err / cell.s])
    errors = {"u_bar": noise.u_bar_err, "i_inf": noise.i_max_err, "n_sat": cell.n_sat_err,
              "s": cell.s_err}
    empty = np.array([], dtype=float)
    return laws.JointLawFit(
        form="naive", n=empty, x=empty, mi=empty, theta=theta, cov=np.diag(sd**2),
        params=params, errors=errors, r_squared=float("nan"), success=True,
        domain={"n": (float(cell.x.min()), float(cell.x.max())),
                "x": (float(noise.x.min()), float(noise.x.max()))},
    )


def fit_released(task: str, model: str, *, form: str = "coupled") -> laws.JointLawFit:
    """Fit the joint law to one released single-cell grid (every size, quality and seed).

    Parameters
    ----------
    task
        A single-cell task of :mod:`helpers.tasks` (``sc_protein``, or ``protein`` for short) or
        the released task name (``"Protein MI"``…).
    model
        ``RandomProjection``, ``PCA``, ``SCVI`` or ``Geneformer``.
    form
        The joint form (see :data:`helpers.laws.JOINT_FORMS`).

    Examples
    --------
    >>> fit = fit_released("temporal", "SCVI")  # doctest: +SKIP
    """
    from . import published

    name = _released_title(task)
    sc = published.single_cell()
    grid = sc[(sc["task"] == name) & (sc["model"] == model)]
    if grid.empty:
        msg = f"No released grid for model {model!r}; choose one of {sorted(set(sc['model']))}."
        raise ValueError(msg)
    return laws.fit_joint_law(grid["size"], grid["x"], grid["mi"], form=form)


def released_fits(*, form: str = "coupled") -> dict:
    """The joint law fitted to every released single-cell grid, keyed by ``(task, model)``."""
    from . import published

    sc = published.single_cell()
    return {
        key: laws.fit_joint_law(g["size"], g["x"], g["mi"], form=form)
        for key, g in sc.groupby(["task", "model"], sort=True)
    }


def design_table(fits: dict, budget: float, *, costs: Costs = Costs(), reads_per_umi=None,
                 n_range=(10.0, 1e9), max_depth: float | None = None,
                 within: float | None = None, uncertainty=200, seed: int = 0) -> pd.DataFrame:
    """The optimal design of each fit for one budget, one row per fit.

    Parameters
    ----------
    fits
        Joint laws keyed by a tuple (e.g. ``(task, model)`` from :func:`released_fits`) or a
        string.
    budget, costs, n_range, max_depth, within, uncertainty, seed
        As in :func:`optimal_design`.
    reads_per_umi
        When given, the depth is also reported in sequencing reads per cell (with
        :class:`helpers.sequencing.SequencingCosts` it is reported through the library's
        complexity instead).

    Returns
    -------
    pandas.DataFrame
        The keys (``task``, ``model`` for pairs), the :class:`Design` fields and, for each
        fit, ``umi90`` of its large-N edge (the depth that reaches 90 % of I∞ with unlimited
        cells); ``refused`` says why a fit no design can stand on (:func:`check_fit`: not
        converged, a parameter not finite or not positive) has no design (its other columns
        are missing), and is empty for the others.
    """
    rows = []
    for key, fit in fits.items():
        ident = dict(zip(("task", "model"), key, strict=False)) if isinstance(key, tuple) else {
            "name": key}
        try:
            check_fit(fit)
        except ValueError as err:  # no design stands on this fit: say so in its row
            rows.append({**ident, "refused": str(err)})
            continue
        d = optimal_design(fit, budget, costs=costs, n_range=n_range, max_depth=max_depth,
                           within=within, uncertainty=uncertainty, seed=seed)
        row = {**ident, **d.to_dict(), "umi90": laws.umi90(fit.params["u_bar"],
                                                            fit.params["i_inf"]),
               "refused": ""}
        if hasattr(costs, "reads_per_cell"):  # reads through the library's complexity
            row["reads_per_cell"] = costs.reads_per_cell(d.umis_per_cell)
        elif reads_per_umi is not None:
            row["reads_per_cell"] = d.umis_per_cell * reads_per_umi
        rows.append(row)
    return pd.DataFrame(rows)


def save_fit(fit: laws.JointLawFit, path) -> Path:
    """Write a fit to ``path`` as JSON, atomically (a temporary file renamed into place)."""
    from .sweep.store import write_atomic

    text = json.dumps(fit.to_dict(), indent=1)
    return write_atomic(path, lambda fh: fh.write(text))


def load_fit(path) -> laws.JointLawFit:
    """Read a fit written by :func:`save_fit`, checked (a malformed, edited or failed fit is a
    ValueError naming the file)."""
    try:
        with open(path) as fh:
            doc = json.load(fh)
        return check_fit(laws.JointLawFit.from_dict(doc))
    except (ValueError, RecursionError) as err:  # json.JSONDecodeError is a ValueError
        msg = f"{path}: {err}"
        raise ValueError(msg) from None


# --------------------------------------------------------------------------------------------
# Searches
# --------------------------------------------------------------------------------------------
def check_fit(fit: laws.JointLawFit) -> laws.JointLawFit:
    """``fit`` if a design can stand on it: converged, and every parameter a finite number
    with ū∞, I∞, N_sat and s positive; else a ValueError that says what is wrong.

    Examples
    --------
    >>> import dataclasses
    >>> fit = fit_released("sc_spatial", "PCA", form="naive")
    >>> check_fit(fit) is fit
    True
    >>> check_fit(dataclasses.replace(fit, success=False))
    Traceback (most recent call last):
    ...
    ValueError: The joint-law fit did not converge (success=False): no design can stand on it; refit it (on more points, another form).
    """
    if not isinstance(fit, laws.JointLawFit):
        msg = f"A design needs a joint-law fit (helpers.laws.JointLawFit), got {type(fit).__name__}."
        raise TypeError(msg)
    if not fit.success:
        msg = ("The joint-law fit did not converge (success=False): no design can stand on it; "
               "refit it (on more points, another form).")
        raise ValueError(msg)
    bad = [f"{k} = {v!r}" for k, v in fit.params.items()
           if not np.isfinite(v) or (k in ("u_bar", "i_inf", "n_sat", "s") and v <= 0)]
    if bad:
        msg = (f"The joint-law fit has parameters no design can stand on ({', '.join(bad)}): "
               "ū∞, I∞, N_sat and s must be finite and positive.")
        raise ValueError(msg)
    return fit


def _limits(fit, n_range, max_depth, within):
    """Cell range and depth limit, narrowed to ``within`` times the fitted grid when given."""
    check_fit(fit)
    if within is None:
        return n_range, max_depth
    if not within >= 1 or not fit.domain:
        msg = f"within must be >= 1 and needs a fit that knows its grid (got {within!r})."
        raise ValueError(msg)
    (n_lo, n_hi), (_, x_hi) = fit.domain["n"], fit.domain["x"]
    n_range = (max(n_range[0], n_lo / within), min(n_range[1], n_hi * within))
    depth = x_hi * within
    return n_range, depth if max_depth is None else min(max_depth, depth)


def _cell_bounds(costs: Costs, budget: float | None, n_range,
                 max_depth: float | None = None) -> tuple[float, float]:
    lo, hi = float(n_range[0]), float(n_range[1])
    if max_depth is not None and not max_depth > 0:
        msg = f"max_depth must be positive (got {max_depth!r})."
        raise ValueError(msg)
    if budget is not None:
        most = costs.max_cells(budget)
        if most < lo:
            msg = (f"The budget ({budget:,.4g}) buys at most {most:,.4g} cells, fewer than the "
                   f"fewest searched ({lo:,.4g}): raise the budget or lower --min-cells.")
            raise ValueError(msg)
        if not np.isfinite(costs.depth_on_budget(lo, budget)):
            msg = (f"The budget ({budget:,.4g}) pays for the fewest cells searched ({lo:,.4g}) "
                   "but leaves nothing for reads: raise the budget.")
            raise ValueError(msg)
        hi = min(hi, most * (1 - 1e-9))
        if costs.per_umi == 0:
            msg = "optimal_design needs a positive per_umi cost (depth would be free)."
            raise ValueError(msg)
        if max_depth is not None:  # no deeper than max_depth: at least this many cells
            lo = max(lo, costs.cells_for(budget, max_depth))
            if lo >= hi:  # the budget buys more than the allowed box: its corner, under budget
                return hi, hi
    if not (0 < lo < hi):
        msg = f"No cells to search: the cell range is ({lo:g}, {hi:g})."
        raise ValueError(msg)
    return lo, hi


def _argmax_log(fun, lo, hi, *, points=400):
    """Maximise ``fun(ln N)`` (vectorised) over ``[ln lo, ln hi]``: a grid, then Brent."""
    grid = np.linspace(np.log(lo), np.log(hi), points)
    vals = np.asarray(fun(grid), dtype=float)
    vals = np.where(np.isfinite(vals), vals, -np.inf)
    k = int(np.argmax(vals))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, points - 1)]
    if b > a and np.isfinite(vals[k]):
        def loss(t):  # a finite penalty where no design exists (Brent cannot take inf - inf)
            value = float(fun(np.array([t]))[0])
            return -value if np.isfinite(value) else 1e300

        res = minimize_scalar(loss, bounds=(a, b), method="bounded", options={"xatol": 1e-7})
        if res.fun < 1e300 and -res.fun >= vals[k]:
            return float(res.x), float(-res.fun)
    return float(grid[k]), float(vals[k])


def _best_on_budget(params, budget, costs, lo, hi, max_depth=None):
    limit = np.inf if max_depth is None else max_depth

    def depth(n):
        return np.minimum(costs.depth_on_budget(n, budget), limit)

    def mi_of(log_n):
        n = np.exp(log_n)
        x = depth(n)
        return np.where(np.isfinite(x), laws.joint_law(n, np.nan_to_num(x), **params), -np.inf)

    log_n, mi = _argmax_log(mi_of, lo, hi)
    n = float(np.exp(log_n))
    return n, float(depth(n)), mi


def _cheapest_for(params, target, costs, lo, hi, max_depth=None):
    limit = np.inf if max_depth is None else max_depth

    def neg_cost(log_n):
        u, i_max = laws.joint_noise_params(np.exp(log_n), **params)
        reachable = target < i_max  # sizes whose capacity exceeds the target
        x = np.full(np.shape(i_max), np.inf)
        if np.any(reachable):
            x[reachable] = laws.invert_noise_law(
                target, np.broadcast_to(u, x.shape)[reachable], np.asarray(i_max)[reachable]
            )
        return np.where(reachable & (x <= limit), -costs.total(np.exp(log_n), x), -np.inf)

    log_n, neg = _argmax_log(neg_cost, lo, hi)
    if not np.isfinite(neg):
        return float("nan"), float("nan"), float("inf")
    n = float(np.exp(log_n))
    u, i_max = laws.joint_noise_params(n, **params)
    return n, float(laws.invert_noise_law(target, u, i_max)), -neg


def _interval(values, level):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    q = (1 - level) / 2
    return float(np.quantile(values, q)), float(np.quantile(values, 1 - q))


def _extrapolated(fit, n, x) -> bool:
    dom = getattr(fit, "domain", {}) or {}
    if not dom:
        return False
    (n_lo, n_hi), (x_lo, x_hi) = dom["n"], dom["x"]
    return not (n_lo <= n <= n_hi and x_lo <= x <= x_hi)


def _draws(fit, uncertainty, seed):
    if isinstance(uncertainty, int):
        if uncertainty <= 0:
            return []
        try:
            return fit.sample_params(uncertainty, seed=seed)
        except (ValueError, np.linalg.LinAlgError):  # no covariance: no interval (NaN edges)
            return []
    return [f.params if hasattr(f, "params") else dict(f) for f in uncertainty]


def _spread(draws, n, x, level, solve) -> dict:
    """Interval edges over parameter draws: the information of design (n, x) under each
    draw, and the design ``solve(params) -> (cells, depth, _)`` each draw would choose."""
    if not draws:
        return {}
    at_design = [float(laws.joint_law(n, x, **p)) for p in draws]
    ns, xs, _ = zip(*(solve(p) for p in draws), strict=True)
    out = {}
    for names, values in ((("mi_lo", "mi_hi"), at_design), (("cells_lo", "cells_hi"), ns),
                          (("umis_lo", "umis_hi"), xs)):
        out |= dict(zip(names, _interval(values, level), strict=True))
    return out


def _predictive(fit: laws.JointLawFit, n: float, x: float) -> dict:
    """The design's 90 % predictive interval and whether it lies beyond the calibration."""
    from .laws import calibration

    if not (np.isfinite(n) and np.isfinite(x)):
        return {}
    try:
        lo, hi = fit.interval(n, x, level=0.9)
    except FileNotFoundError:  # no shipped calibration: no predictive interval
        return {}
    beyond = float(calibration.decades_beyond(fit, n)) > calibration.CALIBRATED_DECADES
    return {"pred_lo": float(lo), "pred_hi": float(hi), "beyond_calibration": bool(beyond)}


def optimal_design(fit: laws.JointLawFit, budget: float, *, costs: Costs = Costs(),
                   n_range=(10.0, 1e9), max_depth: float | None = None,
                   within: float | None = None, uncertainty=200, level: float = 0.95,
                   seed: int = 0) -> Design:
    """The (cells, UMIs per cell) on the budget line with the most predicted information.

    Parameters
    ----------
    fit
        A joint law (:func:`helpers.laws.fit_joint_law`, :func:`law_from_marginals`,
        :func:`load_fit`).
    budget
        Total budget, in the units of ``costs``.
    costs
        Per-cell, per-UMI and fixed costs (default: 1 per UMI, cells free — a read budget).
    n_range
        Range of cells searched (the law extrapolates beyond its fitted grid; the result says
        so in ``extrapolated``).
    max_depth
        The deepest design allowed, UMIs per cell (a cell's library holds a finite number of
        molecules); ``None`` for no limit.
    within
        Search only designs within this factor of the grid the law was fitted on (cells and
        depth both); ``None`` to extrapolate freely.
    uncertainty
        Number of parameter draws from the fit's covariance (0: no interval), or a list of
        fits (e.g. from :func:`bootstrap_fits`) whose parameters are used instead.
    level
        Central probability of the intervals.
    seed
        Seed of the parameter draws.

    Returns
    -------
    Design
        The optimum of the fitted law (under budget at the corner of the allowed cells and
        depth when the budget buys more than they allow), with intervals over the draws: the
        information of the *chosen* design under each draw (``mi_lo``/``mi_hi``) and where
        each draw would put the optimum (``cells_lo`` … ``umis_hi``).

    Examples
    --------
    >>> params = {"u_bar": 500.0, "i_inf": 3.0, "n_sat": 300.0, "s": 0.5}
    >>> fit = laws.JointLawFit.from_dict({"law": "joint", "form": "naive", "params": params,
    ...     "errors": dict.fromkeys(params, 0.0), "cov": [[0] * 4] * 4, "r_squared": 1.0,
    ...     "theta": [np.log(500.0), 3.0, np.log(300.0), np.log(0.5)], "success": True})
    >>> d = optimal_design(fit, 1e8, uncertainty=0)
    >>> round(d.cells * d.umis_per_cell / 1e8, 6), d.mi > 2
    (1.0, True)
    """
    if not (np.isfinite(budget) and budget > costs.fixed):
        msg = f"The budget ({budget!r}) must exceed the fixed cost ({costs.fixed!r})."
        raise ValueError(msg)
    n_range, max_depth = _limits(fit, n_range, max_depth, within)
    lo, hi = _cell_bounds(costs, budget, n_range, max_depth)
    n, x, mi = _best_on_budget(fit.params, budget, costs, lo, hi, max_depth)
    spread = _spread(_draws(fit, uncertainty, seed), n, x, level,
                     lambda p: _best_on_budget(p, budget, costs, lo, hi, max_depth))
    return Design(cells=n, umis_per_cell=x, mi=mi, cost=costs.total(n, x),
                  i_inf=fit.params["i_inf"], level=level,
                  extrapolated=_extrapolated(fit, n, x),
                  at_limit=bool(np.isclose(n, lo, rtol=1e-4) or np.isclose(n, hi, rtol=1e-4)),
                  **spread, **_predictive(fit, n, x))


def cheapest_design(fit: laws.JointLawFit, *, target: float | None = None,
                    fraction: float | None = None, costs: Costs = Costs(),
                    n_range=(10.0, 1e9), max_depth: float | None = None,
                    within: float | None = None, uncertainty=200, level: float = 0.95,
                    seed: int = 0) -> Design:
    """The cheapest (cells, UMIs per cell) whose predicted information reaches a target.

    Parameters
    ----------
    fit
        A joint law.
    target, fraction
        The information to reach, in bits, or as a fraction of the capacity :math:`I_\\infty`
        (give exactly one).
    costs, n_range, max_depth, within, uncertainty, level, seed
        As in :func:`optimal_design`; the interval is over the cost each draw needs
        (reported in ``cells_*``/``umis_*`` for the design and ``mi_*`` for the information
        the nominal design reaches under each draw).

    Returns
    -------
    Design
        ``cost`` is ``inf`` when no design in ``n_range`` reaches the target.

    Examples
    --------
    >>> params = {"u_bar": 500.0, "i_inf": 3.0, "n_sat": 300.0, "s": 0.5}
    >>> fit = laws.JointLawFit.from_dict({"law": "joint", "form": "naive", "params": params,
    ...     "errors": dict.fromkeys(params, 0.0), "cov": [[0] * 4] * 4, "r_squared": 1.0,
    ...     "theta": [np.log(500.0), 3.0, np.log(300.0), np.log(0.5)], "success": True})
    >>> d = cheapest_design(fit, fraction=0.8, uncertainty=0)
    >>> round(d.mi / 3.0, 6)
    0.8
    """
    if (target is None) == (fraction is None):
        msg = "Give exactly one of target (bits) or fraction (of I_inf)."
        raise ValueError(msg)
    i_inf = fit.params["i_inf"]
    if fraction is not None:
        if not 0 < fraction < 1:
            msg = f"fraction must lie in (0, 1) (got {fraction!r})."
            raise ValueError(msg)
        target = fraction * i_inf
    if not 0 < target < i_inf:
        msg = f"target must lie in (0, I_inf = {i_inf:.3g}) bits (got {target!r})."
        raise ValueError(msg)
    n_range, max_depth = _limits(fit, n_range, max_depth, within)
    lo, hi = _cell_bounds(costs, None, n_range, max_depth)
    n, x, cost = _cheapest_for(fit.params, target, costs, lo, hi, max_depth)
    spread = {}
    if np.isfinite(cost):
        spread = _spread(_draws(fit, uncertainty, seed), n, x, level,
                         lambda p: _cheapest_for(p, target, costs, lo, hi, max_depth)
                         if target < p["i_inf"] else (np.nan, np.nan, np.nan))
    mi = float(fit.predict(n, x)) if np.isfinite(cost) else float("nan")
    edge = bool(np.isclose(n, lo, rtol=1e-4) or np.isclose(n, hi, rtol=1e-4)
                or (max_depth is not None and np.isclose(x, max_depth, rtol=1e-4)))
    return Design(cells=n, umis_per_cell=x, mi=mi, cost=cost, i_inf=i_inf, level=level,
                  extrapolated=bool(np.isfinite(cost) and _extrapolated(fit, n, x)),
                  at_limit=edge, **spread, **_predictive(fit, n, x))


def brute_force_design(fit: laws.JointLawFit, budget: float, *, costs: Costs = Costs(),
                       n_range=(10.0, 1e9), max_depth: float | None = None,
                       points: int = 200_001) -> Design:
    """The best of ``points`` designs spread evenly in ln N along the budget line.

    The reference that :func:`optimal_design` is tested against; no interval.
    """
    lo, hi = _cell_bounds(costs, budget, n_range, max_depth)
    n = np.exp(np.linspace(np.log(lo), np.log(hi), points))
    x = np.minimum(costs.depth_on_budget(n, budget), np.inf if max_depth is None else max_depth)
    mi = np.where(np.isfinite(x), fit.predict(n, np.nan_to_num(x, nan=0.0)), -np.inf)
    k = int(np.argmax(mi))
    return Design(cells=float(n[k]), umis_per_cell=float(x[k]), mi=float(mi[k]),
                  cost=costs.total(n[k], x[k]), i_inf=fit.params["i_inf"])


def allocation_curve(fit: laws.JointLawFit, budgets, *, costs: Costs = Costs(),
                     n_range=(10.0, 1e9), max_depth: float | None = None,
                     within: float | None = None, uncertainty=0,
                     seed: int = 0) -> pd.DataFrame:
    """The optimal design for each budget, one row per budget (see :func:`optimal_design`)."""
    rows = []
    for b in np.asarray(budgets, dtype=float):
        d = optimal_design(fit, float(b), costs=costs, n_range=n_range, max_depth=max_depth,
                           within=within, uncertainty=uncertainty, seed=seed)
        rows.append({"budget": float(b), **d.to_dict()})
    return pd.DataFrame(rows)


def bootstrap_fits(n, x, mi, *, form: str = "coupled", replicates: int = 100,
                   seed: int = 0) -> list[laws.JointLawFit]:
    """Refit the joint law to grids resampled cell by cell (all seeds of a cell together).

    The resampling unit is the (``n``, ``x``) cell, so replicate seeds stay together; the
    fits' parameters can be passed to :func:`optimal_design` as ``uncertainty``.
    """
    n, x, mi = (np.asarray(a, dtype=float).ravel() for a in (n, x, mi))
    cells, cell_of = np.unique(np.column_stack([n, x]), axis=0, return_inverse=True)
    cell_of = np.asarray(cell_of).ravel()
    members = [np.flatnonzero(cell_of == c) for c in range(len(cells))]
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(replicates):
        pick = np.concatenate([members[c] for c in rng.integers(0, len(cells), len(cells))])
        if np.unique(n[pick]).size < 2 or np.unique(x[pick]).size < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(laws.fit_joint_law(n[pick], x[pick], mi[pick], form=form))
    return fits


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
_DESCRIPTION = """\
Plan a single-cell experiment with the joint cells × depth scaling law.

Fits the joint law to a released task (every training size, depth and seed of the paper's
table) or reads a fit saved with ``--save`` (JSON), then answers one question:

* ``--budget B``: the number of cells and UMIs per cell that maximise the predicted auxiliary
  information for a total cost B;
* ``--target BITS`` or ``--fraction F``: the cheapest design that reaches BITS, or a fraction F
  of the model's capacity I∞.

Costs are in any one currency: ``--cost-per-cell``, ``--cost-per-umi`` (or ``--cost-per-read``
with ``--reads-per-umi``) and ``--fixed-cost``.  With the defaults (1 per UMI, cells free) the
budget is a number of UMIs.  The interval comes from the fit's parameter covariance.
"""

_EPILOG = """\
examples:
  python -m helpers.plan --task protein --model SCVI --budget 1e9
  python -m helpers.plan --task temporal --model Geneformer --budget 1e10 \\
      --cost-per-read 1 --reads-per-umi 3.4 --cost-per-cell 2000
  python -m helpers.plan --task spatial --model PCA --fraction 0.9 --save spatial_pca.json
  python -m helpers.plan --fit spatial_pca.json --budget 5e8 --json
  python -m helpers.plan --task temporal --model SCVI --budget 20000 \
      --cost-per-read 2e-7 --cellranger 50000 0.6 12000 --cost-per-lane 1500
"""


def _fraction(text: str) -> float:
    """An argparse type: a fraction of the capacity, in (0, 1)."""
    value = positive_float(text)
    if not value < 1:
        msg = f"{text!r} is not a fraction in (0, 1)"
        raise argparse.ArgumentTypeError(msg)
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m helpers.plan", description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("law (one of)")
    src.add_argument("--task", help="a single-cell task of the registry (sc_protein, sc_clonal, "
                     "sc_temporal, sc_spatial; or protein … for short)")
    src.add_argument("--model", help="model of the released task: RandomProjection, PCA, SCVI, "
                     "Geneformer")
    src.add_argument("--fit", type=Path, help="a joint-law fit saved as JSON (see --save)")
    src.add_argument("--form", default="coupled",
                     choices=[*sorted(laws.JOINT_FORMS), laws.JOINT_RULE],
                     help="joint form fitted to a released task (default: %(default)s)")
    q = p.add_argument_group("question (one of)")
    q.add_argument("--budget", type=positive_float, help="total budget: maximise information")
    q.add_argument("--target", type=positive_float, help="information to reach, bits: minimise cost")
    q.add_argument("--fraction", type=_fraction, help="fraction of I∞ to reach: minimise cost")
    c = p.add_argument_group("costs")
    c.add_argument("--cost-per-cell", type=nonnegative_float, default=0.0,
                   help="cost of one cell's library (default: %(default)s)")
    c.add_argument("--cost-per-umi", type=positive_float, default=None,
                   help="cost of one detected UMI (default: 1, or from --cost-per-read)")
    c.add_argument("--cost-per-read", type=positive_float, default=None,
                   help="cost of one sequencing read (needs --reads-per-umi)")
    c.add_argument("--reads-per-umi", type=positive_float, default=None,
                   help="reads sequenced per detected UMI (1 / (1 - sequencing saturation))")
    c.add_argument("--fixed-cost", type=nonnegative_float, default=0.0,
                   help="cost paid once (default: %(default)s)")
    lib = p.add_argument_group(
        "sequencing: UMIs saturate with reads (with --cost-per-read; one way to give the "
        "library's complexity)")
    lib.add_argument("--molecules-per-cell", type=positive_float, default=None,
                     help="distinct molecules in one cell's library")
    lib.add_argument("--pilot", type=positive_float, nargs=2, default=None,
                     metavar=("READS", "UMIS"), help="a pilot's mean reads and UMIs per cell")
    lib.add_argument("--cellranger", type=positive_float, nargs=3, default=None,
                     metavar=("READS", "SATURATION", "UMIS"),
                     help="Cell Ranger's mean reads per cell, sequencing saturation (0–1) "
                     "and median UMIs per cell")
    lib.add_argument("--cost-per-lane", type=nonnegative_float, default=0.0,
                     help="cost of one lane (chip channel) of captured cells "
                     "(default: %(default)s)")
    lib.add_argument("--cells-per-lane", type=positive_float, default=10_000.0,
                     help="most recovered cells per lane (default: %(default)g)")
    lib.add_argument("--max-doublets", type=_fraction, default=0.05,
                     help="largest multiplet rate accepted, at 0.8%% per 1,000 cells "
                     "(default: %(default)s)")
    o = p.add_argument_group("output")
    o.add_argument("--min-cells", type=positive_float, default=10.0,
                   help="fewest cells searched (default: %(default)s)")
    o.add_argument("--max-cells", type=positive_float, default=1e9,
                   help="most cells searched (default: %(default)g)")
    o.add_argument("--max-umis-per-cell", type=positive_float, default=None,
                   help="deepest design allowed, UMIs per cell (default: no limit)")
    o.add_argument("--within", type=positive_float, default=None,
                   help="search only within this factor of the fitted grid's cells and depths "
                   "(default: extrapolate freely)")
    o.add_argument("--draws", type=nonnegative_int, default=200,
                   help="parameter draws for the interval; 0 for none (default: %(default)s)")
    o.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the draws (default: %(default)s)")
    o.add_argument("--save", type=Path, help="write the fitted law to this JSON file")
    o.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_debug(p)
    return p


def _library_from(args, parser):
    from .sequencing import LibraryComplexity

    given = [v is not None for v in (args.molecules_per_cell, args.pilot, args.cellranger)]
    if sum(given) > 1:
        parser.error("give the library once: --molecules-per-cell, --pilot or --cellranger")
    if args.molecules_per_cell is not None:
        return LibraryComplexity(args.molecules_per_cell)
    if args.pilot is not None:
        return LibraryComplexity.from_pilot(*args.pilot)
    if args.cellranger is not None:
        reads, saturation, umis = args.cellranger
        return LibraryComplexity.from_cellranger(
            mean_reads_per_cell=reads, sequencing_saturation=saturation,
            median_umis_per_cell=umis)
    return None


def _costs_from(args, parser):
    library = _library_from(args, parser)
    if library is not None:
        from .sequencing import SequencingCosts

        if args.cost_per_read is None or args.cost_per_umi is not None or \
                args.reads_per_umi is not None:
            parser.error("a library's complexity prices reads: give --cost-per-read, without "
                         "--cost-per-umi or --reads-per-umi")
        return SequencingCosts(library, per_read=args.cost_per_read,
                               per_lane=args.cost_per_lane, per_cell=args.cost_per_cell,
                               fixed=args.fixed_cost, cells_per_lane=args.cells_per_lane,
                               max_doublets=args.max_doublets)
    if args.cost_per_lane:
        parser.error("--cost-per-lane needs the library's complexity (--molecules-per-cell, "
                     "--pilot or --cellranger)")
    if args.cost_per_read is not None:
        if args.cost_per_umi is not None or args.reads_per_umi is None:
            parser.error("--cost-per-read needs --reads-per-umi and excludes --cost-per-umi")
        return Costs.from_reads(per_cell=args.cost_per_cell, per_read=args.cost_per_read,
                                reads_per_umi=args.reads_per_umi, fixed=args.fixed_cost)
    per_umi = 1.0 if args.cost_per_umi is None else args.cost_per_umi
    return Costs(per_cell=args.cost_per_cell, per_umi=per_umi, fixed=args.fixed_cost)


def main(argv=None) -> int:
    """Entry point of ``python -m helpers.plan`` (see ``--help``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.fit is None) == (args.task is None):
        parser.error("give either --task (with --model) or --fit")
    if args.task is not None and args.model is None:
        parser.error("--task needs --model")
    questions = [v is not None for v in (args.budget, args.target, args.fraction)]
    if sum(questions) > 1:
        parser.error("ask one question: --budget, --target or --fraction")
    try:
        costs = _costs_from(args, parser)
        fit = (load_fit(args.fit) if args.fit is not None
               else fit_released(args.task, args.model, form=args.form))
        if args.save is not None:
            save_fit(fit, args.save)
        n_range = (args.min_cells, args.max_cells)
        if args.budget is not None:
            design = optimal_design(fit, args.budget, costs=costs, n_range=n_range,
                                    max_depth=args.max_umis_per_cell, within=args.within,
                                    uncertainty=args.draws, seed=args.seed)
        elif any(questions):
            design = cheapest_design(fit, target=args.target, fraction=args.fraction,
                                     costs=costs, n_range=n_range,
                                     max_depth=args.max_umis_per_cell, within=args.within,
                                     uncertainty=args.draws, seed=args.seed)
        else:
            design = None
    except USER_ERRORS as err:
        if args.debug:
            raise
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(err).split())} (--debug shows "
                       "the traceback)\n")
    if args.json:
        out = {"law": fit.to_dict(), "design": None if design is None else design.to_dict()}
        if design is not None and hasattr(costs, "reads_per_cell"):
            out["design"]["reads_per_cell"] = costs.reads_per_cell(design.umis_per_cell)
            out["design"]["lanes"] = costs.lanes(design.cells)
        print(json.dumps(out, indent=1, default=float))
    else:
        p = fit.params
        print(f"law: {fit.form}, ū∞ = {p['u_bar']:,.0f} UMIs/cell, I∞ = {p['i_inf']:.2f} bits, "
              f"N_sat = {p['n_sat']:,.0f}, s = {p['s']:.2f}"
              + (f", β = {p['beta']:.2f}" if "beta" in p else ""))
        if design is not None:
            print(design)
            if hasattr(costs, "reads_per_cell"):
                print(f"sequencing: {costs.reads_per_cell(design.umis_per_cell):,.0f} reads "
                      f"per cell (saturation "
                      f"{costs.library.saturation(costs.reads_per_cell(design.umis_per_cell)):.0%}"
                      f"), {costs.lanes(design.cells):,.0f} lanes of at most "
                      f"{costs.lane_capacity:,.0f} cells")
            if np.isfinite(design.cells_lo):
                print(f"{100 * design.level:.0f}% interval: {design.cells_lo:,.0f}–"
                      f"{design.cells_hi:,.0f} cells, {design.umis_lo:,.0f}–"
                      f"{design.umis_hi:,.0f} UMIs per cell")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
