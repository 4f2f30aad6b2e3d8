"""Simulated sequencing depth: binomial thinning of UMI counts.

The paper lowers the quality of a single-cell dataset by keeping every captured molecule
independently with probability ``fraction`` (binomial thinning): a count :math:`n` becomes
:math:`\\mathrm{Binomial}(n, f)`, so the mean UMIs per cell scale by exactly ``f`` and the
thinned data are what a shallower sequencing run of the same cells would have produced.
The noise levels form a log-spaced grid of fractions from 1 down to ``10 / mean UMIs per
cell`` (:func:`quality_grid`) and every level is reported by its realised mean UMIs per cell
(``umis_per_cell``, the paper's x-axis; :func:`depth_table`).

===========================  ==================================================================
:func:`downsample_counts`    thin a dense or sparse count matrix (the work horse)
:func:`downsample`           the same on an :class:`~anndata.AnnData`, scanpy style, with records
:func:`downsample_h5ad`      the same from one ``.h5ad`` file to another, streamed in row chunks
:func:`quality_grid`         the paper's log-spaced grid of fractions
:func:`depth_table`          expected and realised mean UMIs per cell for each fraction
:func:`fractions_for_depth`  per-cell fractions that bring every cell to a target depth
===========================  ==================================================================

How the random numbers are drawn (the same everywhere)
------------------------------------------------------
Rows are cut into fixed blocks of :data:`BLOCK_ROWS` (256) cells.  Block ``b`` gets its own
generator, ``numpy.random.Generator(PCG64(SeedSequence(seed, spawn_key=(TAG, b))))`` — an
independent stream derived from ``seed`` exactly as ``SeedSequence.spawn`` derives children —
and thins the block's non-zero counts in row-major order (the order of a canonical CSR
matrix).  The result of a cell therefore depends only on ``seed``, the index of its block and
the counts of the block, never on how the rows were batched: dense input, CSR, CSC, any
number of threads (``n_jobs``) and the streamed ``.h5ad`` path give bit-identical results,
whatever ``chunk_size`` is (the streaming chunk is rounded up to a whole number of blocks).
A prefix of whole blocks thins exactly as it does inside the full matrix.

How one block is thinned (scalar ``fraction``)
----------------------------------------------
``numpy``'s ``Generator.binomial`` costs ~80 ns a count, no faster than scanpy's
molecule-by-molecule loop.  Two exact samplers, compiled with :mod:`numba`, walk the block's
stored counts once and write the kept ones straight into the output (no temporaries):

* ``fraction > 0.05``: each thinned count is drawn by *inversion* of the binomial CDF with a
  guide table.  One random byte ``c`` per non-zero count ``n`` locates the uniform variate
  ``u = (c + V) / 256`` in one of 256 cells, and a precomputed table (built once per fraction
  from the binomial CDF) gives the answer whenever no CDF step of
  ``Binomial(n, f)`` falls inside that cell — a count ``n`` misses with probability at most
  ``n / 256``, in practice for < 1 % of the counts of a UMI matrix.  Those draw
  ``V ~ U[0, 1)`` in double precision and are resolved against the exact CDF, so the result is
  exactly ``Binomial(n, f)`` up to double-precision rounding of the CDF (the same accuracy as
  ``numpy``'s own inversion sampler).  Counts above 254 use ``Generator.binomial``.
* ``1e-6 <= fraction <= 0.05``: the block's molecules are taken in order and the gap to the
  next kept one is drawn directly (geometric, ``floor(log U / log(1 - f))``), which keeps every
  molecule independently with probability ``f`` and costs one draw per *kept* molecule.
* ``fraction < 1e-6``, down to the smallest subnormal (5e-324): a 53-bit uniform can no longer
  resolve the keep probability (and the gaps, ~1e20 and more, would overflow 64-bit integers),
  so each count ``n`` draws "is any molecule kept?" as an exact Bernoulli of
  ``1 - (1 - f)**n`` (the uniform's bits are drawn only while they tie with the probability's),
  then the position of the first kept molecule, and so on.  One uniform per count, drawn in
  bulk; in practice as fast as the other samplers.

Counts of 2**20 molecules or more are not walked molecule by molecule (numpy's binomial thins
the rest of such a count); counts must be below 2**63.  float16 and extended-precision floats
are refused with a clear error (float16 cannot hold the thinned counts above 2048).

Stored zeros draw nothing, so explicit zeros in a sparse matrix never change the result.
A per-cell vector of fractions uses ``Generator.binomial`` on every count (slower, still exact).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from helpers._checks import check_seed

from .kernels import (
    BLOCK_ROWS,
    _canonical_csr,
    _check_dtype,
    _check_fraction,
    _check_matrix,
    _check_n_jobs,
    _map_blocks,
    thin_csr_rows,
)

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "BLOCK_ROWS",
    "CHUNK_NNZ",
    "depth_table",
    "downsample",
    "downsample_counts",
    "downsample_h5ad",
    "fractions_for_depth",
    "quality_grid",
    "thin",
]

#: Default number of non-zeros per chunk read by :func:`downsample_h5ad`.
CHUNK_NNZ = 1 << 23


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# the thinning kernel
# --------------------------------------------------------------------------------------------


def downsample_counts(x, fraction, *, seed: int = 0, n_jobs: int | None = None):
    """Binomially thin integer counts: keep every molecule independently with ``fraction``.

    Each count :math:`n` becomes a draw from :math:`\\mathrm{Binomial}(n, f)`, independently
    for every cell and gene.  This is the paper's simulated lower sequencing depth: the
    expected UMIs of every cell scale by exactly ``f``.  (Unlike
    :func:`scanpy.pp.downsample_counts`, which draws a fixed total per cell without
    replacement, the per-cell total here is itself random, ``Binomial(total, f)``.)

    Parameters
    ----------
    x
        Counts, cells x genes: a dense array or any :mod:`scipy.sparse` matrix or array.
        Integer dtypes, or floating dtypes holding integer values.
    fraction
        Probability of keeping each molecule, in ``[0, 1]``; or one value per cell.
    seed
        Non-negative integer seed; the result depends only on ``seed`` and the data (see the
        module notes for the block-wise random streams).
    n_jobs
        Threads working on row blocks in parallel: ``None``/1 for one, -1 for every CPU.
        Never changes the result.

    Returns
    -------
    The thinned counts with the input's dtype (a float input comes back as the same float
    dtype holding integer values) and container: dense in, dense out; a sparse matrix comes
    back in the same format with the zeros created by thinning removed.

    Raises
    ------
    ValueError
        For counts that are negative, non-integer, NaN or infinite; a non-numeric dtype;
        a fraction outside ``[0, 1]``; a per-cell vector of the wrong length; a bad seed.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> from helpers.noise import downsample_counts
    >>> x = sparse.random(500, 300, density=0.2, format="csr", random_state=0)
    >>> x.data = np.ceil(x.data * 20)
    >>> y = downsample_counts(x, 0.25, seed=0)
    >>> y.format, y.dtype, (y > x).nnz == 0
    ('csr', dtype('float64'), True)
    >>> round(float(y.sum() / x.sum()), 2)
    0.25
    """
    seed = check_seed(seed)
    n_jobs = _check_n_jobs(n_jobs)
    x = _check_matrix(x)
    fraction = _check_fraction(fraction, x.shape[0])
    if sparse.issparse(x):
        csr = _canonical_csr(x)
        data, indices, indptr = thin_csr_rows(
            csr.data, csr.indices, csr.indptr, fraction, seed, first_block=0, n_jobs=n_jobs
        )
        out = type(csr)((data, indices, indptr), shape=csr.shape)
        out.has_sorted_indices = True
        return out.asformat(x.format)
    out = np.zeros_like(x)

    def block(b):  # each block of rows as CSR through the same kernel: identical results
        rows = slice(b * BLOCK_ROWS, (b + 1) * BLOCK_ROWS)
        csr = sparse.csr_array(x[rows])
        p = fraction[rows] if np.ndim(fraction) else fraction
        data, indices, indptr = thin_csr_rows(csr.data, csr.indices, csr.indptr, p, seed, b)
        out[rows] = sparse.csr_array((data, indices, indptr), shape=csr.shape).toarray()

    _map_blocks(block, -(-x.shape[0] // BLOCK_ROWS), n_jobs)
    return out


# --------------------------------------------------------------------------------------------
# grids and tables
# --------------------------------------------------------------------------------------------
def _row_totals(x) -> np.ndarray:
    return np.asarray(x.sum(axis=1), dtype=np.float64).ravel()


def _counts_of(data, layer: str | None):
    from anndata import AnnData

    if isinstance(data, AnnData):
        if data.isbacked:
            msg = "Backed AnnData is not supported here; use `downsample_h5ad` to stream files."
            raise ValueError(msg)
        if layer is None:
            if data.X is None:
                msg = "`adata.X` is empty; pass `layer=` naming the raw counts."
                raise ValueError(msg)
            return data.X
        if layer not in data.layers:
            msg = f"Layer {layer!r} not found; available: {list(data.layers)}."
            raise ValueError(msg)
        return data.layers[layer]
    if layer is not None:
        msg = "`layer` can only be given with an AnnData."
        raise ValueError(msg)
    return data


def quality_grid(mean_umis_per_cell: float, *, n_levels: int, min_umis: float = 10) -> np.ndarray:
    """The paper's noise grid: log-spaced fractions from 1 down to ``min_umis / mean``.

    Parameters
    ----------
    mean_umis_per_cell
        Mean UMIs per cell of the full-depth data.
    n_levels
        Number of levels (the chapters' profile knob sets it).
    min_umis
        Mean UMIs per cell at the lowest quality (the paper uses 10).

    Returns
    -------
    Descending float64 fractions; the first is exactly 1, the last exactly
    ``min_umis / mean_umis_per_cell``.

    Examples
    --------
    >>> from helpers.noise import quality_grid
    >>> quality_grid(1000, n_levels=3).tolist()
    [1.0, 0.1, 0.01]
    """
    mean = float(mean_umis_per_cell)
    low = float(min_umis)
    if isinstance(n_levels, bool) or not isinstance(n_levels, int | np.integer) or n_levels < 1:
        msg = f"`n_levels` must be a positive integer, got {n_levels!r}."
        raise ValueError(msg)
    if not (np.isfinite(low) and low > 0):
        msg = f"`min_umis` must be a positive number, got {min_umis!r}."
        raise ValueError(msg)
    if not (np.isfinite(mean) and mean >= low):
        msg = (
            f"`mean_umis_per_cell` ({mean_umis_per_cell!r}) must be finite and at least "
            f"`min_umis` ({min_umis!r})."
        )
        raise ValueError(msg)
    if n_levels == 1:
        return np.ones(1)
    grid = np.geomspace(1.0, low / mean, int(n_levels))
    grid[0], grid[-1] = 1.0, low / mean
    return grid


def fractions_for_depth(data, umis_per_cell: float, *, layer: str | None = None) -> np.ndarray:
    """Per-cell fractions that thin every cell to ``umis_per_cell`` expected UMIs.

    Cells already at or below the target keep everything (fraction 1; empty cells too).

    Examples
    --------
    >>> import numpy as np
    >>> from helpers.noise import fractions_for_depth
    >>> fractions_for_depth(np.array([[10, 30], [2, 3]]), 20).tolist()
    [0.5, 1.0]
    """
    x = _check_matrix(_counts_of(data, layer))
    target = float(umis_per_cell)
    if not (np.isfinite(target) and target >= 0):
        msg = f"`umis_per_cell` must be a non-negative number, got {umis_per_cell!r}."
        raise ValueError(msg)
    totals = _row_totals(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(totals > target, target / totals, 1.0)
    return frac


def depth_table(
    data,
    fractions: Sequence[float] | np.ndarray,
    *,
    seed: int = 0,
    layer: str | None = None,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Expected and realised mean UMIs per cell for each fraction of a grid.

    The realised depth is that of ``downsample_counts(x, fraction, seed=seed)``, i.e. of the
    very matrix :func:`downsample` produces with the same seed.

    Parameters
    ----------
    data
        AnnData (counts in ``X`` or ``layers[layer]``) or a count matrix.
    fractions
        Fractions, e.g. from :func:`quality_grid`.
    seed
        Seed passed to :func:`downsample_counts` for every level.
    layer
        Layer holding the counts when ``data`` is an AnnData.
    n_jobs
        Threads, as in :func:`downsample_counts`.

    Returns
    -------
    One row per fraction: ``level``, ``fraction``, ``expected_umis_per_cell``
    (fraction x full-depth mean), ``umis_per_cell`` (realised mean, the paper's x-axis) and
    ``median_umis_per_cell``.

    Examples
    --------
    >>> import numpy as np
    >>> from helpers.noise import depth_table
    >>> x = np.random.default_rng(0).poisson(5.0, size=(200, 100))
    >>> table = depth_table(x, [1.0, 0.1], seed=0)
    >>> table[["fraction", "expected_umis_per_cell"]].round(1).values.tolist()
    [[1.0, 498.2], [0.1, 49.8]]
    """
    x = _check_matrix(_counts_of(data, layer))
    levels = np.asarray(fractions, dtype=np.float64).ravel()
    full = _row_totals(x).mean() if x.shape[0] else np.nan
    rows = []
    for level, f in enumerate(levels):
        totals = _row_totals(downsample_counts(x, float(f), seed=seed, n_jobs=n_jobs))
        rows.append(
            {
                "level": level,
                "fraction": float(f),
                "expected_umis_per_cell": float(f) * full,
                "umis_per_cell": totals.mean() if totals.size else np.nan,
                "median_umis_per_cell": np.median(totals) if totals.size else np.nan,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# AnnData
# --------------------------------------------------------------------------------------------
def _record(fraction, seed: int, source: str, before: float, expected: float, after: float):
    scalar = np.ndim(fraction) == 0
    return {
        "method": "binomial_thinning",
        "fraction": float(fraction) if scalar else "per_cell",
        "mean_fraction": float(np.mean(fraction)) if not scalar else float(fraction),
        "seed": int(seed),
        "block_rows": BLOCK_ROWS,
        "source": source,
        "umis_per_cell_before": float(before),
        "expected_umis_per_cell": float(expected),
        "umis_per_cell": float(after),
    }


def downsample(
    adata: AnnData,
    fraction,
    *,
    seed: int = 0,
    layer: str | None = None,
    key_added: str | None = None,
    copy: bool = False,
    n_jobs: int | None = None,
) -> AnnData | None:
    """Binomially thin the counts of an AnnData (scanpy style).

    Parameters
    ----------
    adata
        In-memory AnnData with raw counts in ``X`` or ``layers[layer]``.
    fraction
        Probability of keeping each molecule, or one value per cell.
    seed
        Non-negative integer seed (see :func:`downsample_counts`).
    layer
        Read counts from this layer instead of ``X``.
    key_added
        Write the thinned counts to ``layers[key_added]`` and leave the source untouched;
        by default the source (``X`` or ``layers[layer]``) is overwritten.
    copy
        Return a modified copy instead of working in place.
    n_jobs
        Threads, as in :func:`downsample_counts`.

    Returns
    -------
    ``None``, or the copy if ``copy=True``.  Sets

    ``adata.X`` or ``adata.layers[layer | key_added]``
        the thinned counts (same dtype and format as the source);
    ``adata.obs['total_counts']`` (``'total_counts_<key_added>'`` with ``key_added``)
        realised UMIs per cell after thinning;
    ``adata.obs['downsample_fraction']``
        only for a per-cell ``fraction``;
    ``adata.uns['downsample']`` (``uns[key_added]`` with ``key_added``)
        fraction, seed, source and the mean UMIs per cell before, expected and realised.

    Examples
    --------
    >>> import anndata as ad
    >>> import numpy as np
    >>> from helpers.noise import downsample
    >>> adata = ad.AnnData(np.random.default_rng(0).poisson(4.0, size=(100, 50)).astype(float))
    >>> downsample(adata, 0.5, seed=0)
    >>> round(adata.uns["downsample"]["umis_per_cell"] / 100, 1)
    1.0
    """
    counts = _check_matrix(_counts_of(adata, layer))
    frac = _check_fraction(fraction, counts.shape[0])
    seed = check_seed(seed)
    if copy:
        adata = adata.copy()
        counts = _counts_of(adata, layer)
    before = _row_totals(counts)
    thinned = downsample_counts(counts, frac, seed=seed, n_jobs=n_jobs)
    totals = _row_totals(thinned)
    if key_added is not None:
        adata.layers[key_added] = thinned
    elif layer is not None:
        adata.layers[layer] = thinned
    else:
        adata.X = thinned
    obs_key = "total_counts" if key_added is None else f"total_counts_{key_added}"
    adata.obs[obs_key] = totals
    if np.ndim(frac):
        adata.obs["downsample_fraction"] = frac
    n = max(len(before), 1)
    adata.uns[key_added or "downsample"] = _record(
        frac, seed, layer or "X", before.sum() / n, (before * frac).sum() / n, totals.sum() / n
    )
    return adata if copy else None


def thin(adata: AnnData, fraction: float, *, seed: int = 0) -> tuple[AnnData, float]:
    """The count corruption of the sweeps: a thinned copy and its mean UMIs per cell.

    This is :func:`downsample` with ``copy=True`` in the shape every corruption of the book
    shares, ``corrupt(data, level, *, seed) -> (noisy, x)``: ``level`` is the fraction of
    molecules kept and ``x``, the noise law's x-axis, the realised mean UMIs per cell.

    Examples
    --------
    >>> import anndata as ad
    >>> import numpy as np
    >>> from helpers.noise import thin
    >>> adata = ad.AnnData(np.full((20, 10), 8.0))
    >>> noisy, umis = thin(adata, 0.25, seed=0)
    >>> round(umis / 20), float(adata.X.sum())
    (1, 1600.0)
    """
    noisy = downsample(adata, fraction, seed=seed, copy=True)
    return noisy, float(np.asarray(noisy.X.sum(axis=1)).mean())


# --------------------------------------------------------------------------------------------
# streaming .h5ad -> .h5ad
# --------------------------------------------------------------------------------------------
def downsample_h5ad(
    src_path: str | os.PathLike,
    dst_path: str | os.PathLike,
    fraction,
    *,
    seed: int = 0,
    layer: str | None = None,
    chunk_size: int | None = None,
    compression: str | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> Path:
    """Thin the counts of an ``.h5ad`` file into a new ``.h5ad``, streaming row chunks.

    Only ``chunk_size`` rows of counts are in memory at any time (plus one float per cell for
    the totals), so peak memory does not grow with the number of cells.  The result is bit
    for bit ``downsample_counts(X, fraction, seed=seed)`` of the whole matrix.

    Parameters
    ----------
    src_path
        Source ``.h5ad``; the counts (``X`` or ``layers[layer]``) must be stored as CSR.
    dst_path
        Destination ``.h5ad``; written to a temporary file in the same folder and moved into
        place with :func:`os.replace`, so an interrupted run leaves no partial destination.
    fraction
        Probability of keeping each molecule, or one value per cell.
    seed
        Non-negative integer seed (see :func:`downsample_counts`).
    layer
        Read counts from ``layers[layer]`` instead of ``X``.
    chunk_size
        Rows per read; rounded up to a multiple of :data:`BLOCK_ROWS`. Never changes the result.
        By default, enough rows for about :data:`CHUNK_NNZ` (8 million) non-zeros, between 1
        and 64 blocks.
    compression
        h5py compression of the written matrix (e.g. ``"gzip"``); none by default.
    n_jobs
        Threads thinning the blocks of a chunk, as in :func:`downsample_counts`.
    progress
        Show a progress bar.

    Returns
    -------
    The destination path.  It holds the thinned counts as CSR ``X``; ``obs`` (plus
    ``total_counts``, the realised UMIs per cell, and ``downsample_fraction`` for a per-cell
    fraction), ``var`` and ``uns`` (plus ``uns['downsample']``) copied from the source.
    ``layers``, ``raw``, ``obsm``/``varm``/``obsp``/``varp`` are dropped: they describe the
    full-depth data.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import anndata as ad
    >>> import numpy as np
    >>> from scipy import sparse
    >>> from helpers.noise import downsample_counts, downsample_h5ad
    >>> x = sparse.random(3000, 40, density=0.3, format="csr", random_state=1)
    >>> x.data = np.ceil(10 * x.data)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     full, thin = pathlib.Path(tmp, "full.h5ad"), pathlib.Path(tmp, "thin.h5ad")
    ...     ad.AnnData(x).write_h5ad(full)
    ...     out = downsample_h5ad(full, thin, 0.3, seed=7, chunk_size=1000, progress=False)
    ...     y = ad.read_h5ad(out).X
    >>> (y != downsample_counts(x, 0.3, seed=7)).nnz
    0
    """
    import h5py
    from anndata.io import sparse_dataset, write_elem
    from tqdm.auto import tqdm

    seed = check_seed(seed)
    n_jobs = _check_n_jobs(n_jobs)
    src, dst = Path(src_path), Path(dst_path)
    if not src.is_file():
        msg = f"Source file {str(src)!r} does not exist."
        raise FileNotFoundError(msg)
    if dst.exists() and dst.resolve() == src.resolve():
        msg = "`dst_path` must differ from `src_path` (the source is read while writing)."
        raise ValueError(msg)
    if chunk_size is not None and (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int | np.integer)
        or chunk_size < 1
    ):
        msg = f"`chunk_size` must be a positive integer or None, got {chunk_size!r}."
        raise ValueError(msg)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        with h5py.File(src, "r") as fin, h5py.File(tmp, "w") as fout:
            where = "X" if layer is None else f"layers/{layer}"
            if where not in fin:
                msg = f"{where!r} not found in {str(src)!r}."
                raise ValueError(msg)
            elem = fin[where]
            if dict(elem.attrs).get("encoding-type") != "csr_matrix":
                msg = (
                    f"{where!r} in {str(src)!r} must be stored as a CSR sparse matrix "
                    f"(encoding-type {dict(elem.attrs).get('encoding-type')!r})."
                )
                raise ValueError(msg)
            counts = sparse_dataset(elem)
            n_obs, n_vars = counts.shape
            dtype = elem["data"].dtype
            _check_dtype(dtype)
            frac = _check_fraction(fraction, n_obs)
            if chunk_size is None:
                per_row = elem["data"].shape[0] / max(n_obs, 1)
                chunk_size = int(np.clip(CHUNK_NNZ / max(per_row, 1.0), 1, 64 * BLOCK_ROWS))
            step = -(-int(chunk_size) // BLOCK_ROWS) * BLOCK_ROWS

            group = fout.create_group("X")
            group.attrs["encoding-type"] = "csr_matrix"
            group.attrs["encoding-version"] = "0.1.0"
            group.attrs["shape"] = (n_obs, n_vars)
            ds_kw = {"maxshape": (None,), "chunks": (1 << 18,), "compression": compression}
            out_data = group.create_dataset("data", shape=(0,), dtype=dtype, **ds_kw)
            out_indices = group.create_dataset(
                "indices", shape=(0,), dtype=elem["indices"].dtype, **ds_kw
            )
            out_indptr = group.create_dataset("indptr", shape=(n_obs + 1,), dtype=np.int64)
            out_indptr[0] = 0
            totals = np.zeros(n_obs, dtype=np.float64)
            nnz, before, expected = 0, 0.0, 0.0
            starts = range(0, n_obs, step)
            for start in tqdm(starts, disable=not progress, desc="downsample", unit="chunk"):
                stop = min(start + step, n_obs)
                chunk = _canonical_csr(counts[start:stop])  # as the in-memory path does
                chunk_frac = frac if np.ndim(frac) == 0 else frac[start:stop]
                data, indices, indptr = thin_csr_rows(
                    chunk.data, chunk.indices, chunk.indptr, chunk_frac, seed,
                    first_block=start // BLOCK_ROWS, n_jobs=n_jobs,
                )  # fmt: skip
                chunk_totals = _row_totals(chunk)
                before += chunk_totals.sum()
                expected += (chunk_totals * chunk_frac).sum()
                del chunk
                out_data.resize((nnz + data.size,))
                out_data[nnz:] = data
                out_indices.resize((nnz + indices.size,))
                out_indices[nnz:] = indices
                out_indptr[start + 1 : stop + 1] = indptr[1:] + nnz
                nnz += data.size
                cumulative = np.concatenate([[0.0], np.cumsum(data, dtype=np.float64)])
                totals[start:stop] = cumulative[indptr[1:]] - cumulative[indptr[:-1]]

            for key in ("obs", "var", "uns"):
                if key in fin:
                    fin.copy(fin[key], fout, key)
            if "uns" not in fout:
                write_elem(fout, "uns", {})
            n = max(n_obs, 1)
            record = _record(frac, seed, where, before / n, expected / n, totals.sum() / n)
            _put_elem(fout["uns"], "downsample", record, write_elem)
            _put_obs_column(fout["obs"], "total_counts", totals, write_elem)
            if np.ndim(frac):
                _put_obs_column(fout["obs"], "downsample_fraction", frac, write_elem)
            fout.attrs["encoding-type"] = "anndata"
            fout.attrs["encoding-version"] = "0.1.0"
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst


def _put_elem(group, key: str, value, write_elem) -> None:
    if key in group:
        del group[key]
    write_elem(group, key, value)


def _put_obs_column(obs, name: str, values: np.ndarray, write_elem) -> None:
    import h5py

    _put_elem(obs, name, values, write_elem)
    order = [c.decode() if isinstance(c, bytes) else str(c) for c in obs.attrs["column-order"]]
    if name not in order:
        order.append(name)
    obs.attrs["column-order"] = np.array(order, dtype=h5py.string_dtype())
