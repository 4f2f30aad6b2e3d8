"""Which of the paper's claims hold: a registry of claims, the evidence for each, and a verdict.

The claims are data (``claims.yml`` beside this module): one entry per claim, with its words,
where it stands in each version of the paper, the paper's number, and the names of the
measures that recompute it from the released tables (:class:`Released`) and from this book's
own runs (:class:`Ours`).  :func:`score` evaluates every measure and compares it with the
paper's number::

    reproduced          the recomputed number agrees within the claim's tolerance
    within scatter      it does not, but lies within two standard errors of the paper's
    differs             it lies outside both
    not testable here   neither evidence can be computed here; the entry says what would test it

The same file lists every figure and table of both versions of the paper with the label of its
counterpart in the book (:func:`figures`), which the tests check against the chapters.

Examples
--------
>>> verdict(1670, 1673, rel=0.01)
'reproduced'
>>> verdict((2.5, 12.8), (2.5, 12.4), rel=0.05)
'reproduced'
>>> verdict(1000, 420.0, kind="at_most")
'reproduced'
>>> verdict(0.913, 0.95, abs_=0.01, se=0.008)
'differs'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

__all__ = [
    "VERDICTS",
    "Claim",
    "Measured",
    "Ours",
    "Released",
    "claims",
    "figures",
    "markdown",
    "measures",
    "score",
    "verdict",
]

#: The verdicts, in the order the scorecard sorts them.
VERDICTS = ("reproduced", "within scatter", "differs", "not testable here")

_REGISTRY_FILE = Path(__file__).with_name("claims.yml")
_KINDS = ("equal", "at_most", "at_least")


# --------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One claim of the paper (an entry of ``claims.yml``).

    ``paper`` is a number, a ``(low, high)`` range, ``True`` (a statement that the measure
    checks) or ``None`` (its number did not survive in the text we hold).  ``kind`` says how a
    number compares: ``equal`` (within ``rel``/``abs`` tolerance), ``at_most`` or ``at_least``
    (a bound the paper states).  ``released`` and ``ours`` name measures (:func:`measures`);
    ``untestable`` says what would test a claim neither can measure here.
    """

    id: str
    claim: str
    where: dict
    topic: str
    paper: Any = True
    kind: str = "equal"
    rel: float | None = None
    abs: float | None = None
    released: str | None = None
    ours: str | None = None
    figure: str | None = None
    note: str = ""
    untestable: str = ""

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise ValueError(f"claim {self.id!r}: kind must be one of {_KINDS}, not {self.kind!r}")
        if not (self.where.get("draft") or self.where.get("latest")):
            raise ValueError(f"claim {self.id!r} says where it is in neither version of the paper")
        if not (self.released or self.ours or self.untestable):
            raise ValueError(
                f"claim {self.id!r} has no measure and does not say what would test it"
            )
        for name in (self.released, self.ours):
            if name is not None and name not in _MEASURES:
                raise ValueError(f"claim {self.id!r} names the unknown measure {name!r}")


def _load() -> dict:
    with open(_REGISTRY_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def claims() -> list[Claim]:
    """Every claim of the registry, validated (unique ids, known measures, a location).

    Examples
    --------
    >>> len(claims()) >= 40
    True
    """
    out = []
    for raw in _load()["claims"]:
        paper = raw.get("paper", True)
        if isinstance(paper, list):
            raw = {**raw, "paper": tuple(paper)}
        out.append(Claim(**raw))
    ids = [c.id for c in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"claims.yml repeats the id(s) {dup}")
    return out


def figures() -> pd.DataFrame:
    """Every figure and table of both versions of the paper, with its counterpart in the book.

    Returns
    -------
    pandas.DataFrame
        ``item`` (the latest version's name, e.g. ``Fig. 2f``), ``draft`` (the draft's name or
        empty), ``what``, ``label`` (the figure, table or section label in the book),
        ``chapter`` and ``source`` (``released tables``, ``our runs`` or ``analytic``).
    """
    return pd.DataFrame(_load()["figures"]).fillna("")


# --------------------------------------------------------------------------------------------
# Evidence
# --------------------------------------------------------------------------------------------
@dataclass
class Measured:
    """A recomputed number (or range, or truth value) with its standard error and a detail."""

    value: Any
    se: float | None = None
    detail: str = ""


class Released:
    """The released tables, refitted once: every measure of the ``released`` column reads these.

    The fits are those of :ref:`chapter:published` (the same calls on the same tables).
    """

    @cached_property
    def noise_fits(self) -> pd.DataFrame:
        from . import laws, published

        keys = ["modality", "task", "model", "size", "curve"]
        return laws.fit_table(published.noise_curves(), keys, law="noise", x="x", y="mi")

    @cached_property
    def largest(self) -> pd.DataFrame:
        """Single-cell noise fits at each task's largest training size."""
        sc = self.noise_fits[self.noise_fits["modality"] == "Single cell"]
        return sc.loc[sc.groupby("task")["size"].transform("max") == sc["size"]].reset_index(
            drop=True
        )

    @cached_property
    def single_cell(self) -> pd.DataFrame:
        from . import published

        return published.single_cell(include_cell_type=True)

    @cached_property
    def cell_fits(self) -> pd.DataFrame:
        from . import laws

        keys = ["dataset", "task", "algorithm", "quality"]
        return laws.fit_table(self.single_cell, keys, law="cell", x="size", y="mi_value")

    @cached_property
    def full_depth(self) -> pd.DataFrame:
        """Cell-number fits at full depth of the four tasks of Fig. 2 (cell type left out)."""
        f = self.cell_fits
        return f[np.isclose(f["quality"], 1.0) & (f["task"] != "Cell type MI")].reset_index(
            drop=True
        )

    @cached_property
    def s6(self) -> pd.DataFrame:
        from . import published

        return published.table_s6(self.largest[["task", "model", "u_bar", "i_max", "ok", "reason"]])

    @cached_property
    def caltech_5way(self) -> pd.DataFrame:
        """Noise fits of the Caltech101 5-class curves (left out of the paper's per-class fits)."""
        from . import laws, published

        cal = published.caltech101(include_all=True)
        cal = cal[cal["label"] == "Class all"]
        return laws.fit_table(cal, ["task", "curve"], law="noise", x="x", y="mi")


def _fig2_task(task: str) -> str:
    """A task of ours by the name of its counterpart in Fig. 2 (``sc_protein`` → ``Protein MI``)."""
    from . import published, tasks

    return published.SIGNAL_TASK.get(tasks.get(task).paper.signal, task)


class Ours:
    """This book's own runs at one profile, read from the chapters' results folders.

    Nothing is computed here but fits: a task whose chapter has not run at ``profile`` (its
    folder holds no rows of this profile and estimator version) has no evidence, and the
    scorecard says which chapter to run.

    Parameters
    ----------
    profile
        The profile whose runs are read (the book's: ``quick``).
    results
        The folder that holds one results folder per task (default: :func:`sweep.results_dir`'s
        parent, ``results/`` or ``$NOISESCALING_RESULTS``).
    """

    CELL_TASKS = ("sc_protein", "sc_clonal", "sc_temporal", "sc_spatial")

    def __init__(self, profile: str = "quick", results: str | Path | None = None):
        from . import sweep

        self.profile = profile
        self.root = Path(results) if results is not None else sweep.results_dir("x").parent

    def results(self, task: str) -> pd.DataFrame | None:
        """The rows of ``task`` at this profile and estimator version, or ``None``."""
        from . import probe

        path = self.root / task / "results.csv"
        if not path.exists():
            return None
        rows = pd.read_csv(path)
        keep = rows["profile"] == self.profile
        if "probe_version" in rows:
            keep &= rows["probe_version"].astype(str) == probe.VERSION
        rows = rows[keep]
        return rows if len(rows) else None

    def missing(self, tasks) -> list[str]:
        """Which of ``tasks`` have no rows at this profile."""
        return [t for t in tasks if self.results(t) is None]

    @cached_property
    def cell_noise_fits(self) -> pd.DataFrame | None:
        """Noise fits of the four single-cell chapters, at each task's largest training size."""
        from . import sweep

        parts = [self.results(t) for t in self.CELL_TASKS]
        parts = [p for p in parts if p is not None]
        if not parts:
            return None
        fits, _ = sweep.fit(pd.concat(parts, ignore_index=True))
        return fits.loc[fits.groupby("task")["size"].transform("max") == fits["size"]].reset_index(
            drop=True
        )

    @cached_property
    def fig2_fits(self) -> pd.DataFrame | None:
        """:attr:`cell_noise_fits` of each task's main signal, in the names of Fig. 2."""
        fits = self.cell_noise_fits
        if fits is None:
            return None
        fits = fits[fits["signal"] == fits.groupby("task")["signal"].transform("first")].copy()
        fits["task"] = fits["task"].map(_fig2_task)
        return fits.reset_index(drop=True)

    def umi90_table(self) -> pd.DataFrame | None:
        """Supplementary Table S6 of our runs: UMI90 (table definition) of every ok fit of
        :attr:`fig2_fits` beside the depth of the data at full depth (mean UMIs per cell)."""
        fits = self.fig2_fits
        if fits is None:
            return None
        depth = {}
        for name in self.CELL_TASKS:
            rows = self.results(name)
            if rows is not None:
                full = rows["level"] == rows["level"].max()
                depth[_fig2_task(name)] = float(rows.loc[full, "x"].mean())
        out = fits[["task", "model", "u_bar", "i_max", "ok"]].copy()
        out["umi90"] = [f.umi90_of("table") for f in fits["fit"]]
        out["actual"] = out["task"].map(depth)
        out["exceeds_actual"] = out["umi90"] > out["actual"]
        return out

    def noise_fits(self, task: str) -> pd.DataFrame | None:
        from . import sweep

        rows = self.results(task)
        return None if rows is None else sweep.fit(rows)[0]


# --------------------------------------------------------------------------------------------
# Measures: name → function(evidence) → Measured (None where the evidence is absent)
# --------------------------------------------------------------------------------------------
_MEASURES: dict[str, Callable] = {}


def _measure(name: str):
    def register(fn):
        _MEASURES[name] = fn
        return fn

    return register


def measures() -> list[str]:
    """The names of every measure a claim can use."""
    return sorted(_MEASURES)


_TASK_WORD = {
    "Protein MI": "protein",
    "Clonal MI": "clonal",
    "Temporal MI": "temporal",
    "Spatial MI": "spatial",
    "Cell type MI": "cell type",
}


def _by_task(frame: pd.DataFrame, value: str, model_col: str = "model") -> pd.DataFrame:
    return frame.pivot_table(index="task", columns=model_col, values=value, aggfunc="first")


def _listing(series: pd.Series, fmt: str = "{:.3g}") -> str:
    return "; ".join(f"{_TASK_WORD.get(k, k)} {fmt.format(v)}" for k, v in series.items())


# counts and scope ---------------------------------------------------------------------------
@_measure("released.n_models")
def _n_models(ev: Released):
    from . import published

    sc = ev.single_cell
    configs = sc.groupby(["dataset", "algorithm", "size", "quality"]).ngroups
    runs = published.run_counts()
    other = int(runs.drop("Single cell").sum())
    return Measured(
        configs + other,
        detail=(
            f"{configs:,} single-cell configurations (dataset × model × size × depth) + "
            f"{other} image and sequence runs; counting every seed, the tables hold "
            f"{int(runs.sum()):,} trained models"
        ),
    )


@_measure("released.n_sc_curves")
def _n_sc_curves(ev: Released):
    n = int((ev.noise_fits["modality"] == "Single cell").sum())
    return Measured(n, detail=f"{n} single-cell noise curves (task × model × training size)")


@_measure("released.n_other_curves")
def _n_other_curves(ev: Released):
    other = int((ev.noise_fits["modality"] != "Single cell").sum())
    five_way = len(ev.caltech_5way)
    return Measured(
        other + five_way,
        detail=(
            f"{other} image and sequence curves the paper fits per class, plus the {five_way} "
            "Caltech101 5-class curves"
        ),
    )


@_measure("released.n_sc_constrained")
def _n_sc_constrained(ev: Released):
    sc = ev.noise_fits[ev.noise_fits["modality"] == "Single cell"]
    n = int(sc["constrained"].sum())
    return Measured(n, detail=f"{n} of {len(sc)} single-cell curves have a constrained I_max")


@_measure("released.n_cell_collapse")
def _n_cell_collapse(ev: Released):
    from . import published

    n = len(published.collapsed_cell_curves(ev.cell_fits))
    return Measured(
        n,
        detail="ok cell-number fits of Geneformer, scVI and PCA on the four tasks at quality ≥ 0.1",
    )


@_measure("released.sample_size_orders")
def _orders(ev: Released):
    sizes = ev.single_cell["size"].astype(float)
    span = float(np.log10(sizes.max() / sizes.min()))
    return Measured(span, detail=f"training sizes {sizes.min():,.0f} to {sizes.max():,.0f} cells")


def _largest_size(task):
    def fn(ev: Released):
        sc = ev.single_cell
        n = float(sc.loc[sc["task"] == task, "size"].max())
        return Measured(math.log10(n), detail=f"largest training set {n:,.0f} cells")

    return fn


for _task, _key in [
    ("Temporal MI", "temporal"),
    ("Protein MI", "protein"),
    ("Clonal MI", "clonal"),
    ("Spatial MI", "spatial"),
]:
    _MEASURES[f"released.log10_cells_{_key}"] = _largest_size(_task)


# noise-law parameters (Fig. 2f) -------------------------------------------------------------
def _on_fits(name: str, *models: str, ours: bool = True):
    """Register a statistic of the single-cell noise fits at the largest training size as
    ``released.<name>`` (the released tables' :attr:`Released.largest`) and, with ``ours``, as
    ``ours.<name>`` (our :attr:`Ours.fig2_fits`, where our runs hold every one of ``models``)."""

    def register(fn):
        _MEASURES[f"released.{name}"] = lambda ev: fn(ev.largest)
        if ours:
            _MEASURES[f"ours.{name}"] = lambda ev: (
                fn(ev.fig2_fits) if _need(ev.fig2_fits, models) else None
            )
        return fn

    return register


def _need(fits, models) -> bool:
    return fits is not None and set(models) <= set(fits["model"])


@_on_fits("geneformer_ubar_max", "Geneformer")
def _gf_ubar_max(fits):
    u = _by_task(fits[fits["ok"]], "u_bar").get("Geneformer", pd.Series(dtype=float)).dropna()
    left = sorted(set(fits.loc[(fits["model"] == "Geneformer") & ~fits["ok"], "task"]))
    if u.empty:
        return None
    return Measured(
        float(u.max()),
        detail="Geneformer ū: "
        + _listing(u, "{:,.0f}")
        + (
            f" (not constrained, left out: {', '.join(_TASK_WORD.get(t, t) for t in left)})"
            if left
            else ""
        ),
    )


def _u_bar(row, detail: str) -> Measured:
    """A fit's ū with its standard error; ``detail`` formats the two."""
    u, err = float(row["u_bar"]), float(row["u_bar_err"])
    return Measured(u, se=err, detail=detail.format(u, err))


@_measure("released.scvi_protein_ubar")
def _scvi_protein(ev: Released):
    row = ev.largest.query("task == 'Protein MI' and model == 'SCVI'").iloc[0]
    return _u_bar(row, "scVI ū on protein MI {:,.0f} ± {:,.0f}")


@_on_fits("scvi_low_ubar_tasks", ours=False)
def _scvi_low(fits):
    u = _by_task(fits, "u_bar")
    low = u["SCVI"] < 1000
    return Measured(int(low.sum()), detail="scVI ū: " + _listing(u["SCVI"], "{:,.0f}"))


@_on_fits("pca_over_geneformer_ubar", ours=False)
def _pca_over_gf(fits):
    u = _by_task(fits, "u_bar")
    ratio = u["PCA"] / u["Geneformer"]
    return Measured(
        (float(ratio.min()), float(ratio.max())),
        detail="PCA ū / Geneformer ū: " + _listing(ratio, "{:.1f}"),
    )


def _imax_gap(fits):
    i = _by_task(fits, "i_max")
    gap = i["SCVI"] - i["Geneformer"]
    return gap, "scVI − Geneformer I_max (bits): " + _listing(gap, "{:+.2f}")


@_on_fits("scvi_minus_geneformer_imax", ours=False)
def _gap_range(fits):
    gap, detail = _imax_gap(fits)
    return Measured((float(gap.min()), float(gap.max())), detail=detail)


@_on_fits("scvi_above_geneformer_every_task", "SCVI", "Geneformer")
def _scvi_above(fits):
    gap, detail = _imax_gap(fits)
    return Measured(bool((gap > 0).all()), detail=detail)


@_on_fits("geneformer_lowest_ubar", "Geneformer", "PCA")
def _gf_most_robust(fits):
    u = _by_task(fits[fits["ok"]], "u_bar")
    best = u.idxmin(axis=1)
    return Measured(bool((best == "Geneformer").all()), detail="lowest ū: " + _listing(best, "{}"))


@_on_fits("pca_less_robust_than_learned", "Geneformer", "SCVI", "PCA")
def _pca_least_robust(fits):
    u = _by_task(fits, "u_bar")
    worse = (u["PCA"] > u["Geneformer"]) & (u["PCA"] > u["SCVI"])
    return Measured(
        bool(worse.all()),
        detail="PCA ū / min(learned ū): "
        + _listing(u["PCA"] / u[["Geneformer", "SCVI"]].min(axis=1), "{:.1f}"),
    )


@_on_fits("geneformer_below_linear", "Geneformer", "PCA", "RandomProjection")
def _gf_below_linear(fits):
    i = _by_task(fits, "i_max")
    below = i[["PCA", "RandomProjection"]].max(axis=1) > i["Geneformer"]
    return Measured(
        bool(below.any()),
        detail="tasks where a linear baseline's I_max exceeds Geneformer's: "
        + (", ".join(_TASK_WORD.get(t, t) for t in below[below].index) or "none"),
    )


@_measure("released.pca_spatial_hockey_stick")
def _hockey(ev: Released):
    row = ev.largest.query("task == 'Spatial MI' and model == 'PCA'").iloc[0]
    return Measured(not bool(row["ok"]), detail=f"PCA on spatial MI: {row['reason'] or 'ok'}")


# cell-number law (Supplementary S.III) ------------------------------------------------------
@_measure("released.cell_iinf_gap")
def _iinf_gap(ev: Released):
    i = _by_task(ev.full_depth, "i_inf", "algorithm")
    gap = i["SCVI"] - i["Geneformer"]
    return Measured(
        (float(gap.min()), float(gap.max())),
        detail="scVI − Geneformer I_∞: " + _listing(gap, "{:+.2f}"),
    )


@_measure("released.cell_scvi_highest_iinf")
def _scvi_highest(ev: Released):
    i = _by_task(ev.full_depth, "i_inf", "algorithm")
    best = i.idxmax(axis=1)
    return Measured(bool((best == "SCVI").all()), detail="highest I_∞: " + _listing(best, "{}"))


@_measure("released.cell_pca_vs_geneformer")
def _pca_vs_gf(ev: Released):
    i = _by_task(ev.full_depth, "i_inf", "algorithm")
    higher = i["PCA"] > i["Geneformer"]
    expected = pd.Series(
        {"Protein MI": False, "Temporal MI": False, "Clonal MI": True, "Spatial MI": True}
    )
    agree = bool((higher.reindex(expected.index) == expected).all())
    return Measured(
        agree, detail="PCA I_∞ − Geneformer I_∞: " + _listing(i["PCA"] - i["Geneformer"], "{:+.2f}")
    )


@_measure("released.cell_pca_nsat_max")
def _pca_nsat(ev: Released):
    n = _by_task(ev.full_depth, "n_sat", "algorithm")["PCA"]
    return Measured(float(n.max()), detail="PCA N_sat: " + _listing(n, "{:,.0f}"))


@_measure("released.cell_nsat_below_size")
def _nsat_below(ev: Released):
    f = ev.full_depth[
        ev.full_depth["ok"] & ev.full_depth["algorithm"].isin(["Geneformer", "SCVI", "PCA"])
    ]
    largest = ev.single_cell.groupby("task")["size"].max()
    below = f["n_sat"].to_numpy() < largest.reindex(f["task"]).to_numpy()
    return Measured(
        float(below.mean()),
        detail=f"{int(below.sum())} of {len(f)} ok full-depth fits have N_sat below the largest "
        "training set",
    )


@_measure("released.cell_pca_largest_s")
def _pca_s(ev: Released):
    s = _by_task(ev.full_depth[ev.full_depth["algorithm"] != "RandomProjection"], "s", "algorithm")
    best = s.idxmax(axis=1)
    return Measured(bool((best == "PCA").all()), detail="largest s: " + _listing(best, "{}"))


@_measure("released.cell_r2_draft_rule")
def _cell_r2(ev: Released):
    from . import published

    r2 = published.cell_r2_summary(published.learned_cell_curves(ev.cell_fits))
    return Measured(
        r2["mean"],
        se=r2["sem"],
        detail=f"mean ± sem over {r2['n']} curves: {r2['mean']:.3f} ± {r2['sem']:.3f}",
    )


@_measure("released.cell_r2_eight_curves")
def _cell_r2_eight(ev: Released):
    f = ev.full_depth[ev.full_depth["algorithm"].isin(["Geneformer", "SCVI"])]
    r2 = f["r_squared_means"].astype(float)
    return Measured(
        float(r2.mean()),
        se=float(r2.sem()),
        detail=(
            f"{len(f)} full-depth learned-model curves: mean R² {r2.mean():.3f} ± "
            f"{r2.sem():.3f}, lowest {r2.min():.3f}"
        ),
    )


# noise law: fit and collapse ----------------------------------------------------------------
@_measure("released.sc_median_r2")
def _sc_r2(ev: Released):
    sc = ev.noise_fits[(ev.noise_fits["modality"] == "Single cell") & ev.noise_fits["constrained"]]
    return Measured(
        float(sc["r_squared"].median()),
        detail=f"median over {len(sc)} constrained curves, lowest {sc['r_squared'].min():.3f}",
    )


@_measure("ours.sc_median_r2")
def _o_sc_r2(ev: Ours):
    fits = ev.cell_noise_fits
    if fits is None:
        return None
    ok = fits[fits["ok"]]
    return Measured(
        float(ok["r_squared"].median()),
        detail=f"median over {len(ok)} ok curves of {len(fits)} "
        f"({', '.join(sorted(set(fits['task'])))})",
    )


@_measure("released.collapse_r2")
def _r_collapse(ev: Released):
    from . import laws

    good = ev.noise_fits.loc[ev.noise_fits["ok"], "fit"]
    return Measured(
        laws.collapse_r2(good),
        detail=f"pooled R² of {len(good)} ok curves against the universal curve",
    )


@_measure("ours.collapse_r2")
def _o_collapse(ev: Ours):
    fits = ev.cell_noise_fits
    if fits is None or not fits["ok"].any():
        return None
    from . import laws

    good = fits.loc[fits["ok"], "fit"]
    return Measured(
        laws.collapse_r2(good), detail=f"pooled R² of our {len(good)} ok single-cell curves"
    )


def _rises(curves: pd.DataFrame, keys) -> pd.Series:
    return curves.groupby(keys)[["x", "mi"]].apply(
        lambda g: g["x"].corr(g["mi"], method="spearman")
    )


@_measure("released.sc_curves_rise")
def _r_rise(ev: Released):
    from . import published

    sc = published.noise_curves()
    sc = sc[sc["modality"] == "Single cell"]
    rho = _rises(sc, ["curve"])
    return Measured(
        float((rho > 0).mean()),
        detail=f"{int((rho > 0).sum())} of {len(rho)} curves rise with depth (Spearman)",
    )


@_measure("ours.sc_curves_rise")
def _o_rise(ev: Ours):
    parts = [ev.results(t) for t in ev.CELL_TASKS]
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    rows = pd.concat(parts, ignore_index=True)
    rows = rows[rows["size"] == rows.groupby("task")["size"].transform("max")]
    rho = _rises(rows, ["task", "signal", "model"])
    return Measured(
        float((rho > 0).mean()),
        detail=f"{int((rho > 0).sum())} of {len(rho)} of our curves rise with depth",
    )


@_measure("analytic.half_bit_fraction")
def _seventy(ev: Released):
    from . import laws

    ok = ev.largest[ev.largest["ok"]]
    frac = 2.0 ** (
        laws.noise_law(ok["u_bar"].to_numpy(), ok["u_bar"].to_numpy(), ok["i_max"].to_numpy())
        - ok["i_max"].to_numpy()
    )
    return Measured(
        float(np.median(frac)),
        detail=f"2^(I(ū) − I_max) over {len(ok)} fits: {frac.min():.3f}–{frac.max():.3f}",
    )


# UMI90 and the Discussion (Table S6) --------------------------------------------------------
@_measure("released.s6_max_rel_diff")
def _s6(ev: Released):
    d = 100 * float(ev.s6["rel_diff"].abs().max())
    return Measured(
        d, detail=f"largest relative difference from the authors' u90 notebook: {d:.3f} %"
    )


def _exceeds(ev: Released, model: str, definition: str = "table") -> pd.Series:
    s = ev.s6.set_index(["task", "model"])
    return s.xs(model, level="model")[f"{definition}_exceeds_actual"].astype(bool)


@_measure("released.geneformer_below_umi90_nowhere")
def _gf_umi90(ev: Released):
    table, text = _exceeds(ev, "Geneformer", "table"), _exceeds(ev, "Geneformer", "text")
    names = lambda s: ", ".join(_TASK_WORD.get(t, t) for t in s[s].index) or "none"  # noqa: E731
    return Measured(
        not bool(table.any()),
        detail=(
            f"Geneformer's UMI90 exceeds the actual depth for {names(table)} (table definition), "
            f"{names(text)} (text definition)"
        ),
    )


@_measure("released.scvi_umi90_exceeds_three")
def _scvi_umi90(ev: Released):
    ex = _exceeds(ev, "SCVI")
    three = ["Protein MI", "Spatial MI", "Clonal MI"]
    return Measured(
        bool(ex.reindex(three).all()),
        detail="scVI UMI90 above the actual depth for: "
        + ", ".join(_TASK_WORD.get(t, t) for t in ex[ex].index),
    )


@_measure("released.temporal_depth_sufficient")
def _temporal(ev: Released):
    s = ev.s6.set_index(["task", "model"])
    rows = s.xs("Temporal MI", level="task")
    over = rows[rows["table_exceeds_actual"].astype(bool) & rows["ok"].astype(bool)]
    return Measured(
        over.empty,
        detail="temporal MI, UMI90 (table) against the actual depth: "
        + "; ".join(f"{m} {r.umi90_table:,.0f} vs {r.actual:,.0f}" for m, r in rows.iterrows()),
    )


@_measure("released.protein_spatial_limited")
def _limited(ev: Released):
    ex = _exceeds(ev, "SCVI")
    return Measured(
        bool(ex[["Protein MI", "Spatial MI"]].all()),
        detail="scVI UMI90 above the actual depth: "
        + ", ".join(_TASK_WORD.get(t, t) for t in ex[ex].index),
    )


# images and sequences (Fig. 2g–i) -----------------------------------------------------------
def _image_r2(dataset):
    def fn(ev: Released):
        img = ev.noise_fits[ev.noise_fits["task"].str.startswith(dataset)]
        return Measured(
            float(img["r_squared"].mean()),
            se=float(img["r_squared"].sem()),
            detail=f"mean R² over {len(img)} curves (median {img['r_squared'].median():.3f})",
        )

    return fn


_MEASURES["released.image_r2_caltech"] = _image_r2("Caltech101")
_MEASURES["released.image_r2_kidney"] = _image_r2("TissueMNIST")


@_measure("released.image_r2_min")
def _image_min(ev: Released):
    img = ev.noise_fits[ev.noise_fits["modality"] == "Image"]
    return Measured(
        float(img["r_squared"].min()),
        detail=f"lowest of {len(img)} image curves: {img.loc[img['r_squared'].idxmin(), 'curve']}",
    )


@_measure("ours.image_r2_median")
def _o_image(ev: Ours):
    fits = [ev.noise_fits(t) for t in ("tissuemnist_gaussian", "tissuemnist_pixelate")]
    fits = [f for f in fits if f is not None and len(f)]
    if not fits:
        return None
    f = pd.concat(fits)
    ok = f[f["ok"]]
    return Measured(
        float(ok["r_squared"].median()) if len(ok) else float("nan"),
        detail=f"median over {len(ok)} ok of {len(f)} curves of the images chapter",
    )


@_measure("released.caltech_5way_ubar")
def _cal_ubar(ev: Released):
    row = ev.caltech_5way[ev.caltech_5way["curve"].str.contains("Pixelation")].iloc[0]
    return _u_bar(row, "5-class pixelation ū = {:.3f} ± {:.3f} (x = 1/F)")


@_measure("released.caltech_5way_resolution")
def _cal_res(ev: Released):
    from . import imaging

    u = _cal_ubar(ev).value
    side = imaging.effective_resolution(u, x_axis="1/F", size=240)
    return Measured(side, detail=f"240 / F* with F* = 1/ū = {1 / u:.2f}")


@_measure("released.caltech_5way_imax_vs_log2_5")
def _cal_imax(ev: Released):
    i = ev.caltech_5way.set_index("curve")["i_max"]
    gap = float((i - np.log2(5)).abs().max())
    return Measured(
        gap,
        detail="5-class I_max: "
        + "; ".join(f"{k.split(' · ')[1]} {v:.2f}" for k, v in i.items())
        + f" against log2 5 = {np.log2(5):.2f} bits",
    )


def _steepest(prefix, label):
    def fn(ev: Released):
        f = ev.noise_fits[ev.noise_fits["task"] == prefix]
        f = f[~f["curve"].str.endswith(("8-class MI", "Class all"))]
        u = f.set_index("curve")["u_bar"].sort_values(ascending=False)
        rank = [c.endswith(label) for c in u.index].index(True) + 1
        return Measured(
            rank == 1,
            detail=f"{label}: ū rank {rank} of {len(u)} (largest: {u.index[0].split(' · ')[-1]})",
        )

    return fn


_MEASURES["released.caltech_watch_steepest"] = _steepest("Caltech101 · Pixelation", "Class 94")
_MEASURES["released.tissue_podocyte_steepest"] = _steepest("TissueMNIST · Pixelation", "Podocytes")


@_measure("released.spike_stable_rate")
def _spike(ev: Released):
    f = ev.noise_fits[
        (ev.noise_fits["modality"] == "Sequence") & (ev.noise_fits["model"] == "ESM2-8M")
    ].iloc[0]
    x = f["u_bar"] / (2 ** (2 * 0.1) - 1)  # Eq. 1 is 0.1 bit below capacity here (large I_max)
    rate = 1 / (1 + x)
    return Measured(
        rate,
        detail=f"ESM2-8M loses 0.1 bit of its capacity at a substitution rate of 1 in "
        f"{1 / rate:,.0f} (ū = {f['u_bar']:.1f} correct per substituted residue)",
    )


def _r2_listing(f) -> str:
    pairs = zip(f["model"], f["r_squared"], strict=True)
    return "R²: " + "; ".join(f"{m} {r:.3f}" for m, r in pairs)


@_measure("released.spike_r2_min")
def _spike_r2(ev: Released):
    f = ev.noise_fits[ev.noise_fits["modality"] == "Sequence"]
    return Measured(
        float(f["r_squared"].min()),
        detail=_r2_listing(f),
    )


@_measure("ours.spike_r2_min")
def _o_spike(ev: Ours):
    f = ev.noise_fits("seq_spike")
    if f is None or not len(f):
        return None
    return Measured(
        float(f["r_squared"].min()),
        detail=_r2_listing(f),
    )


@_measure("released.spike_sizes")
def _spike_sizes(ev: Released):
    from . import published

    sizes = sorted(set(published.spike_esm2()["model"]))
    return Measured(len(sizes), detail=", ".join(sizes))


@_measure("ours.spike_sizes")
def _o_spike_sizes(ev: Ours):
    rows = ev.results("seq_spike")
    if rows is None:
        return None
    sizes = sorted(set(rows["model"]))
    return Measured(len(sizes), detail="run at this profile: " + ", ".join(sizes))


# theory (Box 1, S.IV, S.V) ------------------------------------------------------------------
@_measure("analytic.box1_identity")
def _box1(ev):
    from . import laws, theory

    x = np.logspace(-3, 3, 61)
    worst = 0.0
    for sy, su in [(3.0, 1.0), (0.5, 2.0), (10.0, 0.1)]:
        u_bar, i_max = theory.noise_law_parameters(sy, su)
        worst = max(
            worst,
            float(np.max(np.abs(theory.channel_mi(x, sy, su) - laws.noise_law(x, u_bar, i_max)))),
        )
    return Measured(
        worst,
        detail=f"largest |Box 1 channel − Eq. 1| over three channels and 61 SNRs: {worst:.1e} bit",
    )


@_measure("analytic.poisson_snr")
def _poisson(ev):
    from . import theory

    depths = np.array([100.0, 1000.0, 5000.0])
    snr = theory.poisson_power_snr(depths, n_cells=20000)
    ratio = snr / depths
    return Measured(
        float(np.max(np.abs(ratio - 1))),
        detail="mean²/variance ÷ UMIs per cell at "
        + ", ".join(f"{d:,.0f}: {r:.3f}" for d, r in zip(depths, ratio, strict=False)),
    )


# model sizes (Table S3) ---------------------------------------------------------------------
def _param_range(model):
    def fn(ev):
        from . import models

        t = models.parameter_count_table(profile="paper")
        col = f"{model} (M)"
        return Measured(
            (float(t[col].min()), float(t[col].max())),
            detail=f"{model} (M): " + "; ".join(f"{k} {v:.1f}" for k, v in t[col].items()),
        )

    return fn


_MEASURES["analytic.scvi_parameters"] = _param_range("SCVI")
_MEASURES["analytic.geneformer_parameters"] = _param_range("Geneformer")


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------
def _close(p, v, rel, abs_, se) -> str:
    allowed = max(abs_ or 0.0, (rel or 0.0) * abs(p))
    if abs(v - p) <= allowed:
        return "reproduced"
    if se is not None and np.isfinite(se) and abs(v - p) <= 2 * se:
        return "within scatter"
    return "differs"


def verdict(
    paper,
    value,
    *,
    kind: str = "equal",
    rel: float | None = None,
    abs_: float | None = None,
    se: float | None = None,
) -> str:
    """Compare a recomputed value with the paper's (see the module docstring for the verdicts).

    ``paper`` ``True`` checks a truth value; a ``(low, high)`` pair compares both ends;
    ``kind="at_most"``/``"at_least"`` check a bound the paper states.
    """
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "not testable here"
    if paper is True or isinstance(value, (bool, np.bool_)):
        return "reproduced" if bool(value) else "differs"
    if paper is None:
        return "not testable here"
    if isinstance(paper, tuple):
        ends = [_close(p, v, rel, abs_, None) for p, v in zip(paper, value, strict=False)]
        return "reproduced" if all(e == "reproduced" for e in ends) else "differs"
    if kind == "at_most":
        return "reproduced" if value <= paper * (1 + (rel or 0)) + (abs_ or 0) else "differs"
    if kind == "at_least":
        return "reproduced" if value >= paper * (1 - (rel or 0)) - (abs_ or 0) else "differs"
    return _close(float(paper), float(value), rel, abs_, se)


def _show(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "holds" if value else "does not hold"
    if isinstance(value, tuple):
        return "–".join(_show(v) for v in value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-2):
        return f"{v:.2g}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def markdown(card: pd.DataFrame) -> str:
    """The scored claims as MyST Markdown: one section per verdict, one item per claim, each
    linked to the figure or table that shows it (for ``{glue:md}`` with ``:format: myst``)."""
    names = dict(zip(figures()["label"], figures()["item"], strict=False))
    out = []
    for v in VERDICTS:
        sub = card[card["verdict"] == v]
        if sub.empty:
            continue
        out.append(f"**{v.capitalize()}** ({len(sub)})\n")
        for r in sub.itertuples():
            where = "; ".join(
                f"{k}: {w}" for k, w in (("draft", r.draft), ("latest", r.latest)) if w
            )
            paper = f" The paper: {r.paper}." if r.paper else ""
            link = (
                f" See {{ref}}`{names.get(r.figure, 'this figure')} <{r.figure}>`."
                if r.figure
                else ""
            )
            ours = f" Our runs: *{r.ours_verdict}*." if r.ours_verdict else ""
            out.append(f"- *{r.claim}* ({where}).{paper} {r.reason}{ours}{link}")
        out.append("")
    return "\n".join(out)


def score(
    *,
    profile: str = "quick",
    released: Released | None = None,
    ours: Ours | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Every claim with its numbers and verdicts, sorted by verdict.

    Parameters
    ----------
    profile
        The profile of our own runs (:class:`Ours`).
    released, ours
        Evidence objects to reuse (default: fresh ones; ``Released`` refits the tables once).

    Returns
    -------
    pandas.DataFrame
        One row per claim: ``id, topic, claim, draft, latest, paper, released, ours, verdict,
        ours_verdict, reason, figure``; ``verdict`` is that of the released tables where they
        measure the claim, else that of our runs.
    """
    from .progress import bar

    released = Released() if released is None else released
    ours = Ours(profile) if ours is None else ours
    # a measure's prefix → the column it fills, the evidence it reads and how the reason names it
    sources = {
        "released": ("released", released, "released tables"),
        "ours": ("ours", ours, f"our runs ({profile})"),
        "analytic": ("ours", released, "computed here"),
    }
    rows = []
    for c in bar(claims(), desc="claims", disable=not progress):
        measured, who = {"released": None, "ours": None}, {}
        for name in filter(None, (c.released, c.ours)):
            column, evidence, label = sources[name.split(".")[0]]
            measured[column], who[column] = _MEASURES[name](evidence), label
        judged = {
            k: (
                verdict(c.paper, m.value, kind=c.kind, rel=c.rel, abs_=c.abs, se=m.se)
                if m is not None
                else None
            )
            for k, m in measured.items()
        }
        main = judged["released"] or judged["ours"] or "not testable here"
        parts = []
        for k, m in measured.items():
            if m is not None:
                parts.append(f"{who[k]}: {_show(m.value)}" + (f" ({m.detail})" if m.detail else ""))
        if c.ours and measured["ours"] is None:
            parts.append(f"our runs: not run at the {profile!r} profile here")
        if main == "not testable here":
            parts.append(c.untestable or "no measure")
        if c.note:
            parts.append(c.note)
        rows.append(
            {
                "id": c.id,
                "topic": c.topic,
                "claim": c.claim,
                "draft": c.where.get("draft") or "",
                "latest": c.where.get("latest") or "",
                "paper": ""
                if c.paper is True
                else "lost in the text"
                if c.paper is None
                else (
                    ("≤ " if c.kind == "at_most" else "≥ " if c.kind == "at_least" else "")
                    + _show(c.paper)
                ),
                "released": _show(measured["released"].value) if measured["released"] else "",
                "ours": _show(measured["ours"].value) if measured["ours"] else "",
                "verdict": main,
                "ours_verdict": judged["ours"] or "",
                "reason": ". ".join(p.rstrip(".") for p in parts) + ".",
                "figure": c.figure or "",
            }
        )
    out = pd.DataFrame(rows)
    out["verdict"] = pd.Categorical(out["verdict"], categories=VERDICTS, ordered=True)
    return out.sort_values(["verdict", "topic"], kind="stable", ignore_index=True)
