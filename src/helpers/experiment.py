"""One single-cell task end to end: noising → representations → auxiliary MI → results table.

A chapter calls :func:`design` for its profile's grid, :func:`run_sweep` to fill a resumable
:class:`~helpers.sweep.ResultsTable` (one row per quality, training size, algorithm and seed),
and :func:`fit_sweep` for the noise-law and cell-number-law fits of the rows.

The protocol is the paper's: a fixed evaluation set is held out once per dataset and seed and
never enters training; each model is fitted on a training subset of the (downsampled) cells
with a validation split for early stopping, then embeds the evaluation cells, and the probe
estimates the MI between those embeddings and the auxiliary signal.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from tqdm import tqdm

from . import datasets, laws, noise, splits
from .sweep import PUBLISHED_COLUMNS, ResultsTable, package_versions, write_csv_atomic

__all__ = [
    "Design",
    "Task",
    "design",
    "fit_and_save",
    "fit_sweep",
    "full_depth_mi",
    "load_task",
    "prepare_task",
    "published_counterpart",
    "run_sweep",
    "summarise",
]

ALGORITHMS = ("RandomProjection", "PCA", "SCVI", "Geneformer")


@dataclass(frozen=True)
class Design:
    """The grid a chapter sweeps at one profile.

    Attributes
    ----------
    fractions
        Downsampling fractions (quality levels), 1 first.
    noise_sizes
        Training sizes at which the full quality grid is swept (noise curves).
    cell_sizes
        Training sizes swept at full quality only (cell-number curves).
    seeds
        Seeds; each seed has its own evaluation set, training subsets and model initialisation.
    algorithms
        Representation models.
    n_eval
        Cells held out for evaluation (the probe's samples).
    """

    fractions: tuple[float, ...]
    noise_sizes: tuple[int, ...]
    cell_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    algorithms: tuple[str, ...] = ALGORITHMS
    n_eval: int = 2000

    def points(self):
        """Every (fraction, size) pair of the design, without repeats."""
        pairs = {(f, s) for f in self.fractions for s in self.noise_sizes}
        pairs |= {(1.0, s) for s in self.cell_sizes}
        return sorted(pairs, key=lambda p: (-p[0], p[1]))

    def to_frame(self) -> pd.DataFrame:
        return pd.Series({k: v for k, v in asdict(self).items()}).to_frame("value")


_PROFILE_GRID = {
    # quality levels, cell-number sizes, seeds, evaluation fraction, cells kept (None: all)
    "smoke": dict(n_levels=3, n_cell_sizes=2, seeds=(0,), eval_fraction=0.4, max_cells=1200),
    # quick: one seed and 6 + 3 grid points per model keep a chapter near 5 minutes on two
    # cores (measured per row: scVI ~7 s, Geneformer ~20 s, probe ~5 s at ~2,400 cells)
    "quick": dict(n_levels=6, n_cell_sizes=4, seeds=(0,), eval_fraction=0.35, max_cells=None),
    "paper": dict(n_levels=15, n_cell_sizes=10, seeds=(0, 1, 2), eval_fraction=0.2,
                  max_cells=None),
}


def load_task(dataset: str, *, profile: str = "quick", seed: int = 0) -> ad.AnnData:
    """Load a dataset for a profile (a random subset of cells at ``smoke``).

    Parameters
    ----------
    dataset
        A name for :func:`helpers.datasets.load_dataset`.
    profile
        ``"smoke"`` keeps a seeded random subset of cells so that a chapter runs in seconds.
    """
    adata = datasets.load_dataset(dataset, profile=profile)
    keep = _PROFILE_GRID[profile]["max_cells"]
    if keep is not None and adata.n_obs > keep:
        idx = np.sort(np.random.default_rng(seed).choice(adata.n_obs, keep, replace=False))
        adata = adata[idx].copy()
    return adata


def design(
    adata: ad.AnnData,
    *,
    profile: str = "quick",
    n_eval: int | None = None,
    algorithms=ALGORITHMS,
    max_train: int | None = None,
    min_umis: float = 10.0,
    seeds=None,
    signal: str | None = None,
    signal_options: dict | None = None,
) -> Design:
    """The sweep grid for a dataset at a profile.

    Quality levels are log-spaced fractions from 1 down to ``min_umis`` / (mean UMIs per cell),
    as in the paper; cell-number sizes are log-spaced from 100 to the training pool.

    Parameters
    ----------
    adata
        Raw counts in ``X``.
    profile
        ``"smoke"``, ``"quick"`` or ``"paper"``.
    n_eval
        Cells held out for evaluation; default a profile-dependent fraction of the cells.
    algorithms
        Models to sweep.
    max_train
        Cap on training cells (default: every cell outside the evaluation set).
    min_umis
        Mean UMIs per cell at the lowest quality.
    seeds
        Seeds to sweep (default: the profile's).
    signal, signal_options
        The auxiliary signal: for partner signals the evaluation set holds whole groups of
        partners, so the training pool can be smaller than ``n_obs - n_eval``; the sizes are
        then capped by the smallest pool over the seeds.
    """
    if profile not in _PROFILE_GRID:
        msg = f"Unknown profile {profile!r}; choose one of {sorted(_PROFILE_GRID)}."
        raise ValueError(msg)
    grid = _PROFILE_GRID[profile]
    n = adata.n_obs
    n_eval = int(n_eval or round(grid["eval_fraction"] * n))
    seeds = tuple(grid["seeds"] if seeds is None else seeds)
    pool = n - n_eval
    if signal is not None:
        pool = min(
            prepare_task(adata, signal, n_eval=n_eval, seed=s, **(signal_options or {}))
            .train_pool.size
            for s in seeds
        )
    largest = min(pool, max_train) if max_train else pool
    mean_umis = float(np.asarray(adata.X.sum(axis=1)).mean())
    fractions = noise.quality_grid(mean_umis, n_levels=grid["n_levels"], min_umis=min_umis)
    cell_sizes = splits.size_grid(
        largest, n_sizes=grid["n_cell_sizes"], min_size=min(100, largest), max_size=largest
    )
    return Design(
        fractions=tuple(float(f) for f in fractions),
        noise_sizes=(int(largest),),
        cell_sizes=tuple(int(s) for s in cell_sizes),
        seeds=seeds,
        algorithms=tuple(algorithms),
        n_eval=n_eval,
    )


@dataclass
class Task:
    """A dataset's auxiliary-MI task for one seed: the evaluation set and the signal on it."""

    signal: str
    kind: str
    seed: int
    eval_idx: np.ndarray = field(repr=False)
    train_pool: np.ndarray = field(repr=False)
    index: np.ndarray = field(repr=False)
    target: np.ndarray = field(repr=False)

    @property
    def n_pairs(self) -> int:
        return int(self.index.size)


def prepare_task(
    adata: ad.AnnData, signal: str, *, n_eval: int, seed: int, **signal_options
) -> Task:
    """Hold out the evaluation set for one seed and put the auxiliary signal on it.

    For partner signals the pairs are drawn on all cells first and kept together (both
    cells of a pair are on the same side of the split), and only pairs inside the
    evaluation set are probed.  ``signal_options`` go to
    :func:`helpers.datasets.auxiliary_signal` (e.g. ``per_clone``).
    """
    kind = datasets.signal_kind(signal)
    groups = eligible = None
    if kind == "partner":
        pairs = datasets.auxiliary_signal(adata, signal, seed=seed, **signal_options)
        groups = splits.pair_groups(adata.n_obs, pairs.index, pairs.target)
        eligible = np.union1d(pairs.index, pairs.target)
    train_pool, eval_idx = splits.evaluation_split(
        adata.n_obs, n_eval=n_eval, seed=seed, groups=groups, eligible=eligible
    )
    aux = datasets.auxiliary_signal(
        adata, signal, seed=seed, restrict_to=eval_idx, **signal_options
    )
    return Task(signal, kind, seed, eval_idx, train_pool, aux.index, aux.target)


def full_depth_mi(
    adata: ad.AnnData, signal: str, *, algorithm: str = "PCA", seed: int = 0
) -> float:
    """Auxiliary MI (bits) of one representation of every cell at full depth: a quick check.

    Fits ``algorithm`` (quick profile) on all cells and probes the MI between the embedding
    and the signal with :func:`helpers.probe.latent_mi`.  Use it to see whether a signal is
    visible in expression at all before sweeping depths; it is optimistic for a real sweep
    (no held-out cells) and is only meant for vector, scalar and label signals.

    Examples
    --------
    >>> full_depth_mi(load_task("shendure"), "day")  # doctest: +SKIP
    1.41
    """
    from .models import make_model
    from .probe import latent_mi

    if datasets.signal_kind(signal) == "partner":
        msg = f"full_depth_mi is for cell-level signals; {signal!r} pairs cells."
        raise ValueError(msg)
    aux = datasets.auxiliary_signal(adata, signal, seed=seed)
    model = make_model(algorithm, profile="quick", seed=seed).fit(adata)
    return latent_mi(model.embed(adata[aux.index].copy()), aux.target, seed=seed)


def _probe_inputs(model, adata: ad.AnnData, task: Task):
    """(x, y) for the probe: embeddings of the evaluation cells and the signal on them.

    Each evaluation cell is embedded once; for partner signals ``y`` is the embedding of
    each cell's partner under the same model.
    """
    partner = task.kind == "partner"
    cells = np.union1d(task.index, task.target) if partner else task.index
    emb = model.embed(adata[cells].copy())
    row = np.searchsorted(cells, task.index) if partner else np.arange(cells.size)
    x = emb[row]
    y = emb[np.searchsorted(cells, task.target)] if partner else task.target
    return x, y


def run_sweep(
    adata: ad.AnnData,
    *,
    dataset: str,
    signal: str,
    grid: Design,
    table: ResultsTable,
    profile: str,
    published_signal: str | None = None,
    signal_options: dict | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Fill ``table`` with one auxiliary-MI row per quality, size, algorithm and seed.

    Rows already in the table are skipped, so an interrupted sweep resumes where it stopped;
    each finished row is written atomically.

    Returns
    -------
    pandas.DataFrame
        The table's rows for this dataset and signal.
    """
    from . import models, probe  # torch-heavy: imported when a sweep actually runs

    signal_name = published_signal or signal
    versions = package_versions()
    todo = [
        (seed, fraction, size, algorithm)
        for seed in grid.seeds
        for fraction, size in grid.points()
        for algorithm in grid.algorithms
    ]
    bar = tqdm(total=len(todo), disable=not progress, desc=f"{dataset}/{signal_name}")
    for seed in grid.seeds:
        task = prepare_task(
            adata, signal, n_eval=grid.n_eval, seed=seed, **(signal_options or {})
        )
        for fraction in sorted({f for f, _ in grid.points()}, reverse=True):
            sizes = [s for f, s in grid.points() if f == fraction]
            keys = [
                dict(dataset=dataset, size=s, quality=round(fraction, 7), algorithm=a,
                     signal=signal_name, seed=seed)
                for s in sizes for a in grid.algorithms
            ]
            pending = [k for k in keys if not table.done(k)]
            bar.update(len(keys) - len(pending))
            if not pending:
                continue
            noisy = noise.downsample(adata, fraction, seed=seed * 1_000_003 + 17, copy=True)
            umis = float(np.asarray(noisy.X.sum(axis=1)).mean())
            for key in pending:
                train = splits.training_subset(task.train_pool, key["size"], seed=seed)
                fit_idx, val_idx = splits.validation_split(train, seed=seed)
                model = models.make_model(key["algorithm"], profile=profile, seed=seed)
                t0 = time.perf_counter()
                model.fit(noisy[fit_idx].copy(), val=noisy[val_idx].copy(), progress=False)
                t1 = time.perf_counter()
                x, y = _probe_inputs(model, noisy, task)
                t2 = time.perf_counter()
                mi = probe.latent_mi(x, y, seed=seed)
                t3 = time.perf_counter()
                table.append({
                    **key,
                    "mi_value": mi,
                    "umis_per_cell": umis,
                    "profile": profile,
                    "n_eval_pairs": task.n_pairs,
                    "n_train": int(fit_idx.size),
                    "fit_seconds": round(t1 - t0, 3),
                    "embed_seconds": round(t2 - t1, 3),
                    "probe_seconds": round(t3 - t2, 3),
                    "versions": versions,
                })
                bar.update(1)
    bar.close()
    df = table.frame
    return df[(df["dataset"] == dataset) & (df["signal"] == signal_name)].reset_index(drop=True)


def fit_sweep(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Noise-law fits per (algorithm, size) and cell-number-law fits per (algorithm, quality).

    Noise curves are the training sizes swept over at least three quality levels; cell-number
    curves are the full-quality rows (a fit needs at least four points; a curve with fewer is
    returned as a failed row, not dropped).
    """
    missing = [c for c in PUBLISHED_COLUMNS if c not in results.columns]
    if missing:
        msg = f"Results lack the published column(s) {missing}."
        raise ValueError(msg)
    noise_fits = laws.fit_table(
        _noise_curve_rows(results), ["dataset", "signal", "algorithm", "size"], law="noise",
        x="umis_per_cell",
    )
    full = results[np.isclose(results["quality"], 1.0)]
    cell_fits = laws.fit_table(
        full, ["dataset", "signal", "algorithm", "quality"], law="cell", x="size"
    )
    return noise_fits, cell_fits


def _noise_curve_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the noise curves: training sizes swept over at least three quality levels
    (not the cell-number sizes, which have one)."""
    levels = results.groupby("size")["quality"].nunique()
    return results[results["size"].isin(levels[levels >= 3].index)]


def published_counterpart(paper_dataset: str, published_signal: str) -> tuple[pd.DataFrame, int]:
    """The paper's noise-law fits for the same task at its largest training size.

    Returns
    -------
    (fits, size)
        A ``fit_table`` of the released points (one row per algorithm) and the training size.
    """
    from . import published

    sc = published.single_cell(include_cell_type=True)
    sub = sc[(sc["dataset"] == paper_dataset) & (sc["signal"] == published_signal)]
    size = int(sub["size"].max())
    fits = laws.fit_table(sub[sub["size"] == size], ["algorithm"], law="noise", x="x", y="mi")
    return fits, size


def summarise(results: pd.DataFrame, noise_fits: pd.DataFrame) -> dict:
    """Headline numbers of a sweep, for the chapter's prose.

    ``falls_with_depth`` is the fraction of the learned models' noise curves (PCA, scVI,
    Geneformer; one per training size swept over the quality grid) whose MI rises with UMIs
    per cell (positive Spearman correlation over the quality grid).

    Examples
    --------
    >>> rows = pd.DataFrame({
    ...     "algorithm": ["PCA"] * 4 + ["SCVI"] * 4, "size": [500, 500, 500, 100] * 2,
    ...     "quality": [1.0, 0.3, 0.1, 1.0] * 2, "umis_per_cell": [900, 270, 90, 900] * 2,
    ...     "mi_value": [1.0, 0.6, 0.2, 0.7, 0.1, 0.3, 0.5, 0.1],
    ...     "fit_seconds": 1.0, "probe_seconds": 1.0})
    >>> summarise(rows, pd.DataFrame({"success": [], "r_squared": []}))["falls_with_depth"]
    0.5
    """
    curves = _noise_curve_rows(results)
    learned = curves[curves["algorithm"].isin(["PCA", "SCVI", "Geneformer"])]
    rho = learned.groupby(["algorithm", "size"])[["umis_per_cell", "mi_value"]].apply(
        lambda g: g["umis_per_cell"].corr(g["mi_value"], method="spearman")
    )
    ok = noise_fits[noise_fits["success"].astype(bool)]
    return {
        "n_rows": int(len(results)),
        "n_noise_curves": int(len(noise_fits)),
        "median_r2": float(ok["r_squared"].median()) if len(ok) else float("nan"),
        "falls_with_depth": float((rho > 0).mean()) if len(rho) else float("nan"),
        "fit_minutes": float(results["fit_seconds"].sum() / 60),
        "probe_minutes": float(results["probe_seconds"].sum() / 60),
    }


def fit_and_save(results: pd.DataFrame, out) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """:func:`fit_sweep` and :func:`summarise`, with both fit tables written to ``out`` as CSV."""
    noise_fits, cell_fits = fit_sweep(results)
    write_csv_atomic(noise_fits.drop(columns="fit"), Path(out) / "noise_law_fits.csv")
    write_csv_atomic(cell_fits.drop(columns="fit"), Path(out) / "cell_law_fits.csv")
    return noise_fits, cell_fits, summarise(results, noise_fits)
