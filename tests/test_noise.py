"""Tests for helpers.noise: binomial thinning, its grids and tables, and the h5ad streaming path.

Statistical tests use fixed seeds, so each either always passes or always fails; their
tolerances are 5 standard errors (or p > 1e-4), which a correct sampler passes with
probability > 0.9999 per check, while the bugs they guard against (an off-by-one in the
inverse CDF, a table cell resolved to the wrong side, p and 1 - p swapped, correlated
blocks) move the statistic by tens of standard errors.
"""

from __future__ import annotations

import doctest
import math
import os
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats

from helpers.noise import (
    BLOCK_ROWS,
    depth_table,
    downsample,
    downsample_counts,
    downsample_h5ad,
    fractions_for_depth,
    quality_grid,
)
from helpers.noise import counts as noise
from helpers.noise import kernels


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------
def nb_counts(n_obs=3000, n_vars=200, mean_umis=400, seed=0, dtype=np.float32):
    """Small negative-binomial count matrix (CSR) with a heavy-tailed gene profile."""
    rng = np.random.default_rng(seed)
    profile = rng.lognormal(0.0, 1.5, n_vars)
    profile /= profile.sum()
    depth = rng.lognormal(np.log(mean_umis), 0.4, n_obs)
    lam = rng.gamma(2.0, depth[:, None] * profile[None, :] / 2.0)
    x = sparse.csr_matrix(rng.poisson(lam).astype(dtype))
    return x


def replicate_rows(values, n_rep):
    """n_rep identical rows, each holding ``values``: one call gives n_rep independent draws."""
    return np.tile(np.asarray(values), (n_rep, 1))


def z_mean(samples, n, p):
    """z-scores of column means against n p, with SE sqrt(n p q / N)."""
    n_rep = samples.shape[0]
    se = np.sqrt(n * p * (1 - p) / n_rep)
    return (samples.mean(axis=0) - n * p) / np.where(se > 0, se, 1.0)


def z_var(samples, n, p):
    """z-scores of column variances against n p q; SE from the binomial 4th moment."""
    n_rep = samples.shape[0]
    q = 1 - p
    var = n * p * q
    mu4 = n * p * q * (1 + 3 * (n - 2) * p * q)
    se = np.sqrt((mu4 - var**2 * (n_rep - 3) / (n_rep - 1)) / n_rep)
    return (samples.var(axis=0, ddof=1) - var) / np.where(se > 0, se, 1.0)


def chisq_pvalue(samples, n, p):
    """Chi-square goodness of fit of integer samples to Binomial(n, p), bins with E >= 5."""
    samples = np.asarray(samples).ravel()
    k = np.arange(n + 1)
    expected = stats.binom.pmf(k, n, p) * samples.size
    observed = np.bincount(samples.astype(np.int64), minlength=n + 1)[: n + 1]
    assert observed.sum() == samples.size  # no value above n
    # pool the tails (and any thin bins) so that every bin expects at least 5
    edges, acc = [], 0.0
    for i, e in enumerate(expected):
        acc += e
        if acc >= 5:
            edges.append(i + 1)
            acc = 0.0
    edges[-1] = n + 1
    bins = np.split(np.arange(n + 1), edges[:-1])
    obs = np.array([observed[b].sum() for b in bins])
    exp = np.array([expected[b].sum() for b in bins])
    exp *= obs.sum() / exp.sum()
    if len(obs) < 2:
        return 1.0
    return stats.chisquare(obs, exp).pvalue


# --------------------------------------------------------------------------------------------
# exactness of the binomial draws
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.02, 0.3, 0.5, 0.77, 0.999])
def test_moments_match_binomial_for_counts_0_to_50(p):
    counts = np.arange(51)
    draws = downsample_counts(replicate_rows(counts, 2000), p, seed=11)
    assert draws.shape == (2000, 51)
    assert np.all(draws <= counts) and np.all(draws >= 0)
    assert np.all(draws[:, 0] == 0)
    zm = z_mean(draws[:, 1:], counts[1:], p)
    zv = z_var(draws[:, 1:], counts[1:], p)
    assert np.abs(zm).max() < 5, zm
    assert np.abs(zv).max() < 5, zv
    # jointly, the 50 squared z-scores of the means are chi-square(50)
    assert stats.chi2.sf(np.sum(zm**2), df=50) > 1e-4


@pytest.mark.parametrize(
    ("n", "p"),
    [(1, 0.3), (7, 0.3), (50, 0.3), (50, 0.93), (200, 0.5), (254, 0.01), (300, 0.3), (1000, 0.7)],
)
def test_full_distribution_chisquare(n, p):
    # counts <= 254 use the guide table, larger ones Generator.binomial
    draws = downsample_counts(np.full((20_000, 1), n, dtype=np.int64), p, seed=3)
    assert chisq_pvalue(draws, n, p) > 1e-4


def test_rare_outcomes_resolved_at_full_precision():
    # P(keep nothing of 1) = 0.001 lies inside the first 1/256 cell: a sampler that stopped at
    # the table's 8-bit resolution would give 0 or 1/256 = 0.0039 instead of 0.001.
    draws = downsample_counts(np.ones((1_000_000, 1), dtype=np.int32), 0.999, seed=5)
    lost = int((draws == 0).sum())
    assert abs(lost - 1000) < 5 * np.sqrt(1_000_000 * 0.001 * 0.999)
    kept = int(downsample_counts(np.ones((1_000_000, 1), np.int32), 1e-4, seed=6).sum())
    assert abs(kept - 100) < 5 * np.sqrt(100)
    # lower tail of Binomial(200, 0.5): P(X <= 80) = 0.0028, all in the first table cell
    draws = downsample_counts(np.full((200_000, 1), 200), 0.5, seed=7)
    tail = stats.binom.cdf(80, 200, 0.5)
    hits = int((draws <= 80).sum())
    assert abs(hits - tail * 200_000) < 5 * np.sqrt(200_000 * tail)


@pytest.mark.parametrize(("n", "p"), [(254, 0.5), (254, 0.05), (120, 0.97)])
def test_cells_holding_many_cdf_steps_reproduce_the_tails(n, p):
    # the first and last 1/256 cells hold dozens of tail steps of Binomial(n, p): they go
    # through the bisection over the exact CDF, and with 10^6 draws the tails are resolved
    # well enough that a 10% distortion there moves these statistics by > 5 sd
    draws = downsample_counts(np.full((1_000_000, 1), n, dtype=np.int32), p, seed=8).ravel()
    assert chisq_pvalue(draws, n, p) > 1e-4
    low, high = stats.binom.ppf(1 / 300, n, p), stats.binom.isf(1 / 300, n, p)
    for hits, expected in [
        ((draws <= low).sum(), stats.binom.cdf(low, n, p)),  # P(X <= low) >= 1/300
        ((draws >= high).sum(), stats.binom.sf(high - 1, n, p)),  # P(X >= high) >= 1/300
    ]:
        sd = np.sqrt(draws.size * expected * (1 - expected))
        assert abs(hits - draws.size * expected) < 5 * sd


@pytest.mark.parametrize("p", [0.013, 0.5, 0.8])
def test_guide_table_is_the_exact_inverse_cdf(p):
    table, lo, hi, scaled = kernels.guide_tables(p)
    table = table.reshape(256, 256)
    edges = np.arange(257) / 256
    for n in [1, 2, 9, 60, 254]:
        # the table's own CDF (within 1e-13 of scipy's: test_guide_tables_hold_the_binomial_cdf)
        cdf = np.append(scaled[n, :n] / 256, 1.0)
        assert np.max(np.abs(cdf - stats.binom.cdf(np.arange(n + 1), n, p))) < 1e-13
        for c in range(256):
            k = table[n, c]
            if k == kernels.SENTINEL:
                # ambiguous: some CDF step lies strictly inside the cell
                assert lo[n, c] < hi[n, c]
                inside = (cdf[:n] > edges[c]) & (cdf[:n] < edges[c + 1])
                assert inside.sum() == hi[n, c] - lo[n, c]
                continue
            # every u in [c/256, (c+1)/256) inverts to k: CDF(k-1) <= c/256, CDF(k) >= (c+1)/256
            assert k <= n
            assert k == 0 or cdf[k - 1] <= edges[c]
            assert k == n or cdf[k] >= edges[c + 1]
    assert np.all(table[255] == kernels.SENTINEL)
    # each of the n CDF steps makes at most one cell ambiguous: counts of n go to the slow
    # path with probability <= n / 256 (<= 1/256 for the commonest count, 1)
    ambiguous = (table[: kernels.NMAX + 1] == kernels.SENTINEL).sum(axis=1)
    assert np.all(ambiguous <= np.arange(kernels.NMAX + 1))
    assert ambiguous[0] == 0  # (for p = 0.5 the one step of n = 1 sits on a cell edge)


def test_per_cell_fractions_are_binomial():
    p = np.linspace(0.05, 0.95, 2000)
    draws = downsample_counts(replicate_rows(np.arange(0, 51, 10), 2000), p, seed=2)
    n = np.arange(0, 51, 10)[None, :]
    expected = n * p[:, None]
    sd = np.sqrt(n * p[:, None] * (1 - p[:, None]))
    z = (draws - expected).sum(axis=0)[1:] / np.sqrt((sd**2).sum(axis=0)[1:])
    assert np.abs(z).max() < 5
    assert np.all(draws <= n)


def test_mean_umis_per_cell_scale_by_fraction():
    x = nb_counts()
    total = float(x.sum())
    for f in [0.5, 0.1, 0.01]:
        y = downsample_counts(x, f, seed=0)
        assert abs(float(y.sum()) - f * total) < 5 * np.sqrt(total * f * (1 - f))
        per_cell_before = np.asarray(x.sum(axis=1)).ravel()
        per_cell = np.asarray(y.sum(axis=1)).ravel()
        z = (per_cell - f * per_cell_before) / np.sqrt(per_cell_before * f * (1 - f))
        assert abs(z.mean()) < 5 / np.sqrt(len(z))
        assert abs(z.std() - 1) < 0.1


def test_blocks_are_independent_streams():
    # equal rows in different blocks must not get equal draws (a per-block seed collision)
    x = replicate_rows(np.full(64, 20), 2 * BLOCK_ROWS)
    y = downsample_counts(x, 0.5, seed=0)
    assert not np.array_equal(y[:BLOCK_ROWS], y[BLOCK_ROWS:])
    r = np.corrcoef(y[:BLOCK_ROWS].ravel(), y[BLOCK_ROWS:].ravel())[0, 1]
    assert abs(r) < 5 / np.sqrt(BLOCK_ROWS * 64)


# --------------------------------------------------------------------------------------------
# identities, containers, dtypes, determinism
# --------------------------------------------------------------------------------------------
def test_fraction_one_is_identity_and_zero_is_empty():
    x = nb_counts(500, 50)
    same = downsample_counts(x, 1.0, seed=0)
    assert (same != x).nnz == 0 and same.dtype == x.dtype
    empty = downsample_counts(x, 0.0, seed=0)
    assert empty.nnz == 0 and empty.shape == x.shape and empty.format == "csr"
    dense = x.toarray()
    np.testing.assert_array_equal(downsample_counts(dense, 1, seed=0), dense)
    assert not downsample_counts(dense, 0, seed=0).any()


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "csr_array", "csc_array"])
def test_sparse_in_sparse_out_same_format_same_values(fmt):
    x = nb_counts(2500, 120)
    ref = downsample_counts(x.toarray(), 0.37, seed=9)
    if fmt.endswith("_array"):
        xin = sparse.csr_array(x).asformat(fmt[:3])
    else:
        xin = x.asformat(fmt)
    y = downsample_counts(xin, 0.37, seed=9)
    assert sparse.issparse(y) and y.format == xin.format and type(y) is type(xin)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y.toarray(), ref)
    if y.format in ("csr", "csc"):
        assert not np.any(y.data == 0)  # zeros created by thinning are dropped
        assert y.has_canonical_format


def test_dense_in_dense_out_any_layout():
    x = nb_counts(1500, 80).toarray()
    y = downsample_counts(x, 0.2, seed=1)
    assert isinstance(y, np.ndarray) and y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(downsample_counts(np.asfortranarray(x), 0.2, seed=1), y)
    assert np.all(y <= x) and np.all(y == np.round(y))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16, np.uint8, np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = nb_counts(300, 40, mean_umis=100).astype(dtype)
    y = downsample_counts(x, 0.5, seed=0)
    assert y.dtype == dtype
    ref = downsample_counts(x.astype(np.int64), 0.5, seed=0)
    np.testing.assert_array_equal(y.toarray(), ref.toarray())


def test_large_counts_beyond_uint16():
    x = np.array([[70_000, 3, 0, 255, 254]], dtype=np.int64)
    y = downsample_counts(replicate_rows(x[0], 4000), 0.5, seed=0)
    assert np.all(y <= x)
    zm = z_mean(y[:, [0, 1, 3, 4]], np.array([70_000, 3, 255, 254]), 0.5)
    assert np.abs(zm).max() < 5


def test_same_seed_same_result_other_seed_differs():
    x = nb_counts(2000, 100)
    a = downsample_counts(x, 0.3, seed=4)
    b = downsample_counts(x, 0.3, seed=4)
    c = downsample_counts(x, 0.3, seed=5)
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0.1 * a.nnz


def test_result_depends_only_on_block_and_seed():
    x = nb_counts(3 * BLOCK_ROWS, 60)
    y = downsample_counts(x, 0.4, seed=8)
    # a prefix of whole blocks thins to the same rows
    prefix = downsample_counts(x[: 2 * BLOCK_ROWS], 0.4, seed=8)
    assert (prefix != y[: 2 * BLOCK_ROWS]).nnz == 0
    # changing block 0 leaves blocks 1 and 2 alone
    x2 = x.tolil()
    x2[0, :] = 5
    y2 = downsample_counts(x2.tocsr(), 0.4, seed=8)
    assert (y2[BLOCK_ROWS:] != y[BLOCK_ROWS:]).nnz == 0


def test_threads_do_not_change_the_result():
    x = nb_counts(5 * BLOCK_ROWS + 17, 40)
    for f in [0.3, np.linspace(0, 1, x.shape[0])]:
        one = downsample_counts(x, f, seed=1)
        for n_jobs in (2, 3, -1):
            assert (downsample_counts(x, f, seed=1, n_jobs=n_jobs) != one).nnz == 0
        dense = downsample_counts(x.toarray(), f, seed=1, n_jobs=2)
        np.testing.assert_array_equal(dense, one.toarray())


@pytest.mark.parametrize("n_jobs", [0, 1.5, True, "2"])
def test_bad_n_jobs_raises(n_jobs):
    with pytest.raises(ValueError, match="n_jobs"):
        downsample_counts(np.ones((3, 4), dtype=int), 0.5, seed=0, n_jobs=n_jobs)


def _messy_csr(x, *, duplicates: bool):
    """``x`` stored with every row's entries in reverse order, each split in two if asked."""
    data, indices, indptr = [], [], [0]
    for r in range(x.shape[0]):
        row = slice(x.indptr[r], x.indptr[r + 1])
        vals, cols = x.data[row][::-1], x.indices[row][::-1]
        if duplicates:
            half = np.floor(vals / 2)
            vals = np.concatenate([half, vals - half])
            cols = np.concatenate([cols, cols])
        data.append(vals)
        indices.append(cols)
        indptr.append(indptr[-1] + len(vals))
    messy = sparse.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.array(indptr)), shape=x.shape
    )
    assert not messy.has_sorted_indices
    return messy


@pytest.mark.parametrize("duplicates", [False, True])
@pytest.mark.parametrize("p", [0.01, 0.6])  # the skip and the guide-table kernels
def test_non_canonical_csr_equals_canonical(p, duplicates):
    x = nb_counts(400, 30)
    messy = _messy_csr(x, duplicates=duplicates)
    y = downsample_counts(messy, p, seed=2)
    assert y.has_canonical_format
    assert (y != downsample_counts(x, p, seed=2)).nnz == 0
    assert messy.nnz == (2 * x.nnz if duplicates else x.nnz)  # the input is left as it was


def test_guide_tables_hold_the_binomial_cdf():
    n = np.arange(kernels.NMAX + 1)
    for p in (0.1, 0.37, 0.9):
        scaled = kernels.guide_tables(p)[3][: n.size, : n.size]
        cdf = stats.binom.cdf(n[None, :], n[:, None], p)
        below = n[None, :] < n[:, None]
        assert np.all(np.isinf(scaled[~below]))
        assert np.max(np.abs(scaled[below] / 256 - cdf[below])) < 1e-13
    # dyadic probabilities are exact: the CDF of Binomial(8, 1/2) sits on cell edges k/256
    scaled = kernels.guide_tables(0.5)[3]
    exact = np.cumsum([math.comb(8, k) for k in range(8)])
    assert np.array_equal(scaled[8, :8], exact.astype(float))


def test_constant_per_cell_vector_equals_scalar():
    x = nb_counts(1200, 50)
    a = downsample_counts(x, np.full(x.shape[0], 0.25), seed=3)
    assert (a != downsample_counts(x, 0.25, seed=3)).nnz == 0


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([[1.0, -1.0]], "non-negative"),
        ([[1, -2]], "non-negative"),
        ([[1.0, 2.5]], "integers"),
        ([[1.0, np.nan]], "finite"),
        ([[1.0, np.inf]], "finite"),
    ],
)
@pytest.mark.parametrize("container", ["dense", "csr", "csc"])
def test_bad_counts_raise(values, match, container):
    x = np.asarray(values)
    if container != "dense":
        x = sparse.csr_matrix(x).asformat(container)
    with pytest.raises(ValueError, match=match):
        downsample_counts(x, 0.5, seed=0)
    with pytest.raises(ValueError, match=match):
        downsample_counts(x, 1.0, seed=0)  # the identity fast path validates too
    with pytest.raises(ValueError, match=match):
        downsample_counts(x, np.array([0.5]), seed=0)


@pytest.mark.parametrize(
    "x",
    [
        np.array([[True, False]]),
        np.array([["1", "2"]]),
        np.array([[1 + 0j]]),
        np.arange(5),
        np.zeros((2, 2, 2)),
    ],
)
def test_bad_matrix_raises(x):
    with pytest.raises(ValueError, match="dtype|2-D"):
        downsample_counts(x, 0.5, seed=0)


@pytest.mark.parametrize(
    ("fraction", "match"),
    [
        (-0.1, r"\[0, 1\]"),
        (1.5, r"\[0, 1\]"),
        (np.nan, r"\[0, 1\]"),
        (True, "bool"),
        ("half", "numeric"),
        (np.array([0.5, 0.5]), "one value per cell"),
        (np.array([0.5, 1.1, 0.2]), r"\[0, 1\]"),
        (np.array([0.5, np.nan, 0.2]), r"\[0, 1\]"),
        (np.full((3, 1), 0.5), "one value per cell"),
    ],
)
def test_bad_fraction_raises(fraction, match):
    with pytest.raises(ValueError, match=match):
        downsample_counts(np.ones((3, 4), dtype=int), fraction, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, None, "0", True])
def test_bad_seed_raises(seed):
    with pytest.raises(ValueError, match="seed"):
        downsample_counts(np.ones((3, 4), dtype=int), 0.5, seed=seed)


# --------------------------------------------------------------------------------------------
# grids and tables
# --------------------------------------------------------------------------------------------
def test_quality_grid_is_log_spaced_from_one_to_min_umis():
    grid = quality_grid(3000.0, n_levels=9)
    assert grid.shape == (9,) and grid[0] == 1.0 and grid[-1] == 10 / 3000
    assert np.all(np.diff(grid) < 0)
    ratios = grid[1:] / grid[:-1]
    np.testing.assert_allclose(ratios, (10 / 3000) ** (1 / 8), rtol=1e-12)
    np.testing.assert_allclose(quality_grid(500, n_levels=2, min_umis=50), [1.0, 0.1])
    np.testing.assert_array_equal(quality_grid(500, n_levels=1), [1.0])


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((5.0,), {"n_levels": 4}, "at least"),
        ((np.nan,), {"n_levels": 4}, "finite"),
        ((100.0,), {"n_levels": 0}, "n_levels"),
        ((100.0,), {"n_levels": 2.5}, "n_levels"),
        ((100.0,), {"n_levels": 3, "min_umis": 0}, "min_umis"),
    ],
)
def test_quality_grid_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        quality_grid(*args, **kwargs)


def test_depth_table_matches_downsample():
    x = nb_counts(800, 60)
    adata = ad.AnnData(x)
    grid = quality_grid(float(x.sum(axis=1).mean()), n_levels=4)
    table = depth_table(adata, grid, seed=3)
    assert list(table.columns) == [
        "level",
        "fraction",
        "expected_umis_per_cell",
        "umis_per_cell",
        "median_umis_per_cell",
    ]
    mean0 = float(x.sum()) / x.shape[0]
    np.testing.assert_allclose(table["expected_umis_per_cell"], grid * mean0)
    for row in table.itertuples():
        y = downsample_counts(x, row.fraction, seed=3)
        assert row.umis_per_cell == pytest.approx(float(y.sum()) / x.shape[0], rel=1e-12)
    np.testing.assert_allclose(table["umis_per_cell"].iloc[-1], 10, rtol=0.2)
    assert table["umis_per_cell"].iloc[0] == pytest.approx(mean0)
    with pytest.raises(ValueError, match="layer"):
        depth_table(x, grid, layer="counts")


def test_fractions_for_depth():
    x = np.array([[100, 300], [5, 5], [0, 0]])
    frac = fractions_for_depth(x, 40)
    np.testing.assert_allclose(frac, [0.1, 1.0, 1.0])
    y = downsample_counts(nb_counts(2000, 50), fractions_for_depth(nb_counts(2000, 50), 100))
    totals = np.asarray(y.sum(axis=1)).ravel()
    assert abs(totals.mean() - 100) < 5 * 10 / np.sqrt(2000) + 1  # cells above 100 -> ~100
    with pytest.raises(ValueError, match="non-negative"):
        fractions_for_depth(x, -1)


# --------------------------------------------------------------------------------------------
# AnnData wrapper
# --------------------------------------------------------------------------------------------
def test_downsample_anndata_in_place_records():
    x = nb_counts(600, 40)
    adata = ad.AnnData(x.copy())
    assert downsample(adata, 0.3, seed=1) is None
    expected = downsample_counts(x, 0.3, seed=1)
    assert (adata.X != expected).nnz == 0
    totals = np.asarray(expected.sum(axis=1)).ravel()
    np.testing.assert_array_equal(adata.obs["total_counts"].to_numpy(), totals)
    rec = adata.uns["downsample"]
    assert rec["fraction"] == 0.3 and rec["seed"] == 1 and rec["source"] == "X"
    assert rec["umis_per_cell_before"] == pytest.approx(float(x.sum()) / 600)
    assert rec["expected_umis_per_cell"] == pytest.approx(0.3 * float(x.sum()) / 600)
    assert rec["umis_per_cell"] == pytest.approx(totals.mean())


def test_downsample_anndata_layer_key_added_copy_per_cell():
    x = nb_counts(600, 40)
    adata = ad.AnnData(np.log1p(x.toarray()), layers={"counts": x.copy()})
    out = downsample(adata, 0.5, seed=2, layer="counts", key_added="half", copy=True)
    assert "half" not in adata.layers  # copy left the original alone
    assert (out.layers["counts"] != x).nnz == 0
    assert (out.layers["half"] != downsample_counts(x, 0.5, seed=2)).nnz == 0
    assert "total_counts_half" in out.obs and out.uns["half"]["source"] == "counts"
    frac = np.linspace(0.1, 0.9, 600)
    downsample(adata, frac, seed=2, layer="counts")
    assert (adata.layers["counts"] != downsample_counts(x, frac, seed=2)).nnz == 0
    np.testing.assert_array_equal(adata.obs["downsample_fraction"], frac)
    assert adata.uns["downsample"]["fraction"] == "per_cell"
    with pytest.raises(ValueError, match="not found"):
        downsample(adata, 0.5, layer="nope")
    with pytest.raises(ValueError, match="integers"):
        downsample(adata, 0.5)  # X holds log1p values


def test_downsample_rejects_backed(tmp_path):
    ad.AnnData(nb_counts(100, 10)).write_h5ad(tmp_path / "a.h5ad")
    backed = ad.read_h5ad(tmp_path / "a.h5ad", backed="r")
    with pytest.raises(ValueError, match="downsample_h5ad"):
        downsample(backed, 0.5)
    backed.file.close()


# --------------------------------------------------------------------------------------------
# streaming
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def h5ad_file(tmp_path_factory):
    x = nb_counts(5000, 150, seed=4)  # 5000 is not a multiple of BLOCK_ROWS
    obs = pd.DataFrame(
        {"batch": pd.Categorical(np.repeat(["a", "b"], 2500)), "total_counts": 1.0},
        index=[f"cell{i}" for i in range(5000)],
    )
    var = pd.DataFrame(
        {"gene_ids": [f"ENSG{i}" for i in range(150)]}, index=[f"g{i}" for i in range(150)]
    )
    adata = ad.AnnData(x, obs=obs, var=var, uns={"source": "test"}, layers={"counts": x.copy()})
    adata.obsm["X_pca"] = np.zeros((5000, 2))
    path = tmp_path_factory.mktemp("h5") / "full.h5ad"
    adata.write_h5ad(path)
    return path, x


@pytest.mark.parametrize("chunk_size", [1, 1000, 1500, 4096, 100_000, None])
def test_streaming_equals_in_memory_for_any_chunk_size(h5ad_file, tmp_path, chunk_size):
    path, x = h5ad_file
    out = downsample_h5ad(
        path, tmp_path / "thin.h5ad", 0.2, seed=13, chunk_size=chunk_size, progress=False
    )
    assert out == tmp_path / "thin.h5ad"
    y = ad.read_h5ad(out)
    ref = downsample_counts(x, 0.2, seed=13)
    assert sparse.issparse(y.X) and y.X.format == "csr" and y.X.dtype == x.dtype
    np.testing.assert_array_equal(y.X.indptr, ref.indptr)
    np.testing.assert_array_equal(y.X.indices, ref.indices)
    np.testing.assert_array_equal(y.X.data, ref.data)
    # obs / var / uns copied, totals and record added, the rest dropped
    src = ad.read_h5ad(path)
    pd.testing.assert_frame_equal(y.var, src.var)
    pd.testing.assert_series_equal(y.obs["batch"], src.obs["batch"])
    np.testing.assert_array_equal(
        y.obs["total_counts"].to_numpy(), np.asarray(ref.sum(axis=1)).ravel()
    )
    assert y.uns["source"] == "test"
    rec = y.uns["downsample"]
    assert rec["fraction"] == 0.2 and rec["seed"] == 13
    assert rec["umis_per_cell_before"] == pytest.approx(float(x.sum()) / 5000)
    assert rec["umis_per_cell"] == pytest.approx(float(ref.sum()) / 5000)
    assert not y.layers and "X_pca" not in y.obsm
    assert [p.name for p in tmp_path.iterdir()] == ["thin.h5ad"]  # no temp file left


def test_streaming_unsorted_file_equals_in_memory(h5ad_file, tmp_path):
    path, x = h5ad_file
    messy = tmp_path / "messy.h5ad"
    ad.AnnData(x).write_h5ad(messy)
    with h5py.File(messy, "r+") as f:  # reverse the entries of every row on disk
        indptr = f["X/indptr"][:]
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        order = np.lexsort((-np.arange(len(rows)), rows))
        f["X/indices"][:] = f["X/indices"][:][order]
        f["X/data"][:] = f["X/data"][:][order]
    out = downsample_h5ad(messy, tmp_path / "t.h5ad", 0.4, seed=2, progress=False)
    y = ad.read_h5ad(out).X
    ref = downsample_counts(x, 0.4, seed=2)
    np.testing.assert_array_equal(y.indices, ref.indices)
    np.testing.assert_array_equal(y.data, ref.data)


def test_streaming_per_cell_fraction_and_layer(h5ad_file, tmp_path):
    path, x = h5ad_file
    frac = np.random.default_rng(0).uniform(0, 1, 5000)
    out = downsample_h5ad(
        path,
        tmp_path / "t.h5ad",
        frac,
        seed=1,
        layer="counts",
        chunk_size=2100,
        n_jobs=2,
        progress=False,
    )
    y = ad.read_h5ad(out)
    assert (y.X != downsample_counts(x, frac, seed=1)).nnz == 0
    np.testing.assert_array_equal(y.obs["downsample_fraction"].to_numpy(), frac)


def test_streaming_is_atomic(h5ad_file, tmp_path, monkeypatch):
    path, _ = h5ad_file
    dst = tmp_path / "thin.h5ad"
    dst.write_bytes(b"previous result")
    calls = {"n": 0}
    original = noise.thin_csr_rows

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(noise, "thin_csr_rows", failing)
    with pytest.raises(KeyboardInterrupt):
        downsample_h5ad(path, dst, 0.5, seed=0, chunk_size=1024, progress=False)
    assert dst.read_bytes() == b"previous result"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thin.h5ad"]  # no temp file


def test_streaming_bad_input(h5ad_file, tmp_path):
    path, x = h5ad_file
    with pytest.raises(FileNotFoundError):
        downsample_h5ad(tmp_path / "missing.h5ad", tmp_path / "o.h5ad", 0.5)
    with pytest.raises(ValueError, match="differ"):
        downsample_h5ad(path, path, 0.5)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            downsample_h5ad(path, tmp_path / "o.h5ad", 0.5, chunk_size=bad)
    with pytest.raises(ValueError, match="not found"):
        downsample_h5ad(path, tmp_path / "o.h5ad", 0.5, layer="nope")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        downsample_h5ad(path, tmp_path / "o.h5ad", 2.0)
    with pytest.raises(ValueError, match="one value per cell"):
        downsample_h5ad(path, tmp_path / "o.h5ad", np.full(3, 0.5))
    dense = tmp_path / "dense.h5ad"
    ad.AnnData(x[:50].toarray()).write_h5ad(dense)
    with pytest.raises(ValueError, match="CSR"):
        downsample_h5ad(dense, tmp_path / "o.h5ad", 0.5)
    csc = tmp_path / "csc.h5ad"
    ad.AnnData(x[:50].tocsc()).write_h5ad(csc)
    with pytest.raises(ValueError, match="CSR"):
        downsample_h5ad(csc, tmp_path / "o.h5ad", 0.5)
    bad = tmp_path / "bad.h5ad"
    xb = x[:50].copy()
    xb.data[3] = 0.5
    ad.AnnData(xb).write_h5ad(bad)
    with pytest.raises(ValueError, match="integers"):
        downsample_h5ad(bad, tmp_path / "o.h5ad", 0.5)
    assert not (tmp_path / "o.h5ad").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_streamed_file_is_a_valid_h5ad_for_h5py_and_anndata(h5ad_file, tmp_path):
    path, _ = h5ad_file
    out = downsample_h5ad(path, tmp_path / "t.h5ad", 0.5, seed=0, progress=False)
    with h5py.File(out, "r") as f:
        assert f.attrs["encoding-type"] == "anndata"
        assert f["X"].attrs["encoding-type"] == "csr_matrix"
        assert tuple(f["X"].attrs["shape"]) == (5000, 150)
    backed = ad.read_h5ad(out, backed="r")
    assert backed.shape == (5000, 150)
    backed.file.close()


def test_docstring_examples_run():
    os.environ.setdefault("MPLBACKEND", "Agg")
    result = doctest.testmod(noise, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10 and result.failed == 0


def test_module_exports():
    assert set(noise.__all__) >= {
        "downsample_counts",
        "downsample",
        "downsample_h5ad",
        "quality_grid",
        "depth_table",
    }
    assert Path(noise.__file__).name == "counts.py"


@pytest.mark.parametrize(("n", "p"), [(3, 0.04), (40, 0.01), (1000, 0.01), (5, 0.3)])
def test_neighbouring_counts_are_independent(n, p):
    # The small-fraction sampler walks the molecules of a block in order and draws the gaps
    # between kept ones, so a bug there would couple neighbouring counts of a row (and the
    # last count of a row with the first of the next).  Both samplers: every pair of the
    # 4 columns uncorrelated, and each column exactly Binomial(n, p).
    draws = downsample_counts(np.full((40_000, 4), n, dtype=np.int32), p, seed=21)
    corr = np.corrcoef(draws.T)[np.triu_indices(4, 1)]
    assert np.abs(corr).max() < 5 / np.sqrt(40_000), corr
    wrap = np.corrcoef(draws[:-1, 3], draws[1:, 0])[0, 1]  # across the row boundary
    assert abs(wrap) < 5 / np.sqrt(40_000), wrap
    for col in draws.T:
        assert chisq_pvalue(col, n, p) > 1e-4


def test_explicit_zeros_do_not_change_the_result():
    rng = np.random.default_rng(4)
    with_zeros = sparse.random(600, 50, density=0.3, format="csr", random_state=4)
    with_zeros.data = np.ceil(with_zeros.data * 9)
    with_zeros.data[rng.random(with_zeros.nnz) < 0.2] = 0  # stored zeros
    x = with_zeros.copy()
    x.eliminate_zeros()  # the same matrix without them
    assert x.nnz < with_zeros.nnz
    for p in (0.02, 0.4):
        a = downsample_counts(x, p, seed=1)
        b = downsample_counts(with_zeros, p, seed=1)
        assert (a != b).nnz == 0
        assert np.array_equal(downsample_counts(with_zeros.toarray(), p, seed=1), b.toarray())


# --------------------------------------------------------------------------------------------
# every representable fraction (issue 16): tiny fractions, huge counts, every dtype
# --------------------------------------------------------------------------------------------
def issue16_counts():
    """A 300 x 50 CSR matrix of small counts (about 45,000 molecules), as in the issue."""
    x = sparse.random(300, 50, density=0.6, format="csr", random_state=16)
    x.data = np.ceil(x.data * 5)
    return x


@pytest.mark.parametrize("fraction", [5e-324, 1e-300, 1e-30, 1e-20, 1e-12])
@pytest.mark.parametrize("dense", [False, True])
def test_tiny_fractions_never_add_molecules(fraction, dense):
    # Before: the gap to the next kept molecule, floor(log U / log(1 - f)) ~ 1e20+, overflowed
    # int64 to a negative position, so 1e-30 returned *more* molecules than the input (45,064
    # from 45,062, the same for every seed) and 1e-20 turned a 2 into a 3.  The chance that
    # any of these ~45,000 molecules is kept is below 5e-8, so the result must be empty.
    x = issue16_counts()
    xin = x.toarray() if dense else x
    for seed in (0, 1, 2):
        y = downsample_counts(xin, fraction, seed=seed)
        y = y if dense else y.toarray()
        assert np.all(y <= x.toarray())
        assert y.sum() == 0


@pytest.mark.parametrize("p", [3e-7, 9.9e-7])
def test_exact_sampler_is_binomial_for_large_counts(p):
    # Below 1e-6 the exact sampler (a Bernoulli for "anything kept", then the truncated
    # geometric position of the first kept molecule) thins each count.  n p ~ 1-3 kept.
    n = 3_000_000
    draws = downsample_counts(np.full((8000, 1), n, dtype=np.int64), p, seed=3)[:, 0]
    assert np.all(draws <= n)
    k = np.arange(12)
    expected = stats.binom.pmf(k, n, p) * draws.size
    observed = np.bincount(draws, minlength=12)[:12]
    tail = draws.size - observed.sum()
    obs = np.r_[observed[:6], observed[6:].sum() + tail]
    exp = np.r_[expected[:6], draws.size - expected[:6].sum()]
    assert stats.chisquare(obs, exp).pvalue > 1e-4
    assert abs(z_mean(draws[:, None], n, p)[0]) < 5


@pytest.mark.parametrize(("n", "p"), [(2**62, 1e-18), (2**62, 5e-324), (2**40, 0.01)])
def test_huge_counts_are_thinned_exactly(n, p):
    # Counts up to 2**63 with tiny fractions (exact sampler) and with the skip sampler
    # (counts of 2**20 molecules or more are thinned by numpy's binomial, not walked).
    x = np.full((2000, 1), n, dtype=np.int64)
    draws = downsample_counts(x, p, seed=5)[:, 0]
    assert np.all((draws >= 0) & (draws <= n))
    if n * p < 1e-300:
        assert not draws.any()
    else:
        assert abs(z_mean(draws[:, None].astype(float), n, p)[0]) < 5
        assert abs(z_var(draws[:, None].astype(float), n, p)[0]) < 5


def test_exact_bernoulli_resolves_every_bit():
    # bernoulli(q) compares q with a uniform drawn 53 bits at a time; the scripted uniforms
    # below tie with the bits of q (first 0, then the next 53 bits) and decide on the third.
    two53 = 2.0**53

    class Script:
        def __init__(self, values):
            self.values = list(values)

        def random(self):
            return self.values.pop(0)

    def bern(script, q):  # the first 53 bits are drawn by the caller
        return kernels.bernoulli.py_func(script, q, math.floor(script.random() * two53))

    tiny = 5e-324  # 2**-1074: its 53-bit chunks are 0 twenty times, then 2**39 (the last bit)
    assert bern(Script([0.0] * 21), tiny) is True
    assert bern(Script([0.0] * 20 + [(2**39 - 1) / two53]), tiny) is True
    assert bern(Script([0.0] * 20 + [2**39 / two53]), tiny) is False  # U == q exactly
    assert bern(Script([0.0] * 5 + [1.0 / two53]), tiny) is False
    assert bern(Script([1.0 / two53]), tiny) is False
    q = 2.0**-10 + 2.0**-62  # first 53 bits 2**-10, then 2**-9 (as a fraction of 2**-53)
    assert bern(Script([2.0**-10, 2.0**-9 - 2.0**-53]), q) is True  # tie, then U < rest
    assert bern(Script([2.0**-10, 2.0**-9]), q) is False  # U == q exactly
    assert bern(Script([2.0**-10 - 1 / two53]), q) is True
    assert bern(Script([2.0**-10 + 1 / two53]), q) is False


def test_per_cell_tiny_fractions_are_exact():
    # numpy's binomial resolves probabilities to ~2**-53 only (one molecule at 1e-18 is never
    # kept); the per-cell path redraws the counts of fractions below 1e-6 with the exact
    # sampler, which must still be Binomial(n, p) for huge n.
    n, p = 2**62, 1e-18  # n p = 4.6 molecules
    x = np.full((3000, 1), n, dtype=np.int64)
    frac = np.where(np.arange(3000) % 3 == 0, p, 0.5)
    frac[1] = 5e-324
    y = downsample_counts(x, frac, seed=2)[:, 0]
    assert y[1] == 0 and np.all(y <= n)
    tiny = y[frac == p]
    assert abs(z_mean(tiny[:, None].astype(float), n, p)[0]) < 5
    assert abs(z_var(tiny[:, None].astype(float), n, p)[0]) < 5


INT_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


@pytest.mark.parametrize("dtype", [*INT_DTYPES, np.float32, np.float64])
@pytest.mark.parametrize("fraction", [0.0, 5e-324, 1e-20, 3e-7, 0.01, 0.5, 1 - 2**-53, 1.0])
def test_every_dtype_at_every_kind_of_fraction(dtype, fraction):
    x = issue16_counts().toarray().astype(dtype)
    y = downsample_counts(x, fraction, seed=1)
    ys = downsample_counts(sparse.csr_matrix(x), fraction, seed=1)
    assert y.dtype == dtype and ys.dtype == dtype
    np.testing.assert_array_equal(ys.toarray(), y)
    assert np.all(y <= x)
    ref = downsample_counts(x.astype(np.int64), fraction, seed=1)
    np.testing.assert_array_equal(y, ref)  # the dtype never changes the draws
    if fraction == 0.0 or fraction < 1e-12:
        assert not y.any()
    if fraction == 1.0:
        np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble])
def test_unsupported_float_dtypes_get_a_clear_error(dtype):
    if np.dtype(dtype).itemsize == 8:
        pytest.skip("longdouble is double on this platform")
    x = np.ones((3, 2), dtype=dtype)
    with pytest.raises(ValueError, match=f"{np.dtype(dtype)}.*not supported.*astype"):
        downsample_counts(x, 0.5, seed=0)


def test_counts_above_2_63_are_refused():
    x = np.array([[2**63 + 10, 1]], dtype=np.uint64)
    for fraction in (0.5, 0.01, 1e-9, np.array([0.3])):
        with pytest.raises(ValueError, match="2\\*\\*63"):
            downsample_counts(x, fraction, seed=0)
