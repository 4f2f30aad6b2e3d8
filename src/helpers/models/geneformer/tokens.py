"""Geneformer's tokeniser: rank-value encoding of counts against per-gene medians (numba)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

__all__ = [
    "PAD_TOKEN",
    "MASK_TOKEN",
    "N_SPECIAL_TOKENS",
    "nonzero_median",
    "rank_value_tokens",
    "rank_value_encode",
]


PAD_TOKEN = 0


MASK_TOKEN = 1


N_SPECIAL_TOKENS = 2


def _scale_rows(X: sp.csr_matrix, totals: np.ndarray, target_sum: float) -> sp.csr_matrix:
    scale = np.divide(target_sum, totals, out=np.zeros(len(totals)), where=totals > 0)
    out = sp.csr_matrix(X, dtype=np.float64, copy=True)
    out.data *= np.repeat(scale, np.diff(out.indptr))
    return out


def nonzero_median(
    X: sp.csr_matrix, *, totals: np.ndarray | None = None, target_sum: float = 1e4
) -> np.ndarray:
    """Per-gene median of per-cell normalised counts over the cells expressing the gene.

    ``totals`` are the cells' total counts used for the normalisation (default: row sums of
    ``X``).  Genes expressed in no cell get ``nan``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1, 0], [3, 1], [0, 0]], dtype=float))
    >>> nonzero_median(X, target_sum=1.0)
    array([0.875, 0.25 ])
    """
    X = sp.csr_matrix(X)
    if totals is None:
        totals = np.asarray(X.sum(axis=1)).ravel()
    N = _scale_rows(X, np.asarray(totals, dtype=float), target_sum).tocsc()
    N.eliminate_zeros()
    N.sort_indices()
    med = np.full(N.shape[1], np.nan)
    _column_medians(N.data, N.indptr, med)
    return med


@njit(cache=True, nogil=True)
def _column_medians(data, indptr, out):  # pragma: no cover - compiled; via nonzero_median
    for j in range(indptr.size - 1):
        lo, hi = indptr[j], indptr[j + 1]
        if hi > lo:
            out[j] = np.median(data[lo:hi])


@njit(cache=True, nogil=True)
def _bucket_of(bits, lo, shift):  # pragma: no cover - compiled
    return (bits - lo) >> shift


@njit(cache=True, nogil=True)
def _shift_for(span, n_buckets):  # pragma: no cover - compiled
    shift = 0
    while (span >> shift) >= n_buckets:
        shift += 1
    return shift


@njit(cache=True, nogil=True)
def _rank_value_kernel(data, indices, indptr, scale, inv_med, max_len, flat, lengths):
    # pragma: no cover - compiled; exercised through rank_value_tokens
    """Per row: values ``data * scale[row] * inv_med[gene]``; the positive ones in descending
    order (ties: ascending gene), the first ``max_len`` written to ``flat[row * max_len:]`` as
    gene + N_SPECIAL_TOKENS.

    Positive float64 values order as their bit patterns (int64), so both steps bucket on bits
    (few unpredictable branches): when a row has more than ``max_len`` values, a 1,024-bucket
    histogram finds the bucket holding the ``max_len``-th largest and only the values from that
    bucket up are kept; those are placed by a finer bucket pass into nearly sorted order, which
    an insertion sort (comparing value, then gene) completes.
    """
    width = max_len
    for i in range(indptr.size - 1):
        width = max(width, indptr[i + 1] - indptr[i])
    vals = np.empty(width)
    genes = np.empty(width, np.int64)
    sel_v = np.empty(width)
    sel_g = np.empty(width, np.int64)
    out_v = np.empty(width)
    out_g = np.empty(width, np.int64)
    n_coarse = 1024
    counts = np.zeros(max(n_coarse, 2 * width) + 1, np.int64)
    for i in range(indptr.size - 1):
        k = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            v = data[p] * scale[i] * inv_med[j]
            vals[k] = v
            genes[k] = j
            k += v > 0  # branch-free: kept only when positive
        if k == 0:
            lengths[i] = 0
            continue
        bits = vals[:k].view(np.int64)
        lo, hi = bits[0], bits[0]
        for q in range(k):
            lo = min(lo, bits[q])
            hi = max(hi, bits[q])
        # 1. keep the values from the bucket of the max_len-th largest up (in gene order)
        if k > max_len:
            shift = _shift_for(hi - lo, n_coarse)
            counts[:n_coarse] = 0
            for q in range(k):
                counts[_bucket_of(bits[q], lo, shift)] += 1
            acc, cut = 0, n_coarse - 1
            while acc + counts[cut] < max_len:
                acc += counts[cut]
                cut -= 1
            c = 0
            for q in range(k):
                sel_v[c] = vals[q]
                sel_g[c] = genes[q]
                c += _bucket_of(bits[q], lo, shift) >= cut
        else:
            c = k
            sel_v[:k] = vals[:k]
            sel_g[:k] = genes[:k]
        # 2. bucket the kept values in descending order (stable: gene order within a bucket)
        sb = sel_v[:c].view(np.int64)
        lo, hi = sb[0], sb[0]
        for q in range(c):
            lo = min(lo, sb[q])
            hi = max(hi, sb[q])
        nb = 2 * c
        shift = _shift_for(hi - lo, nb)
        counts[: nb + 1] = 0
        for q in range(c):
            counts[1 + ((hi - sb[q]) >> shift)] += 1
        for t in range(nb):
            counts[t + 1] += counts[t]
        for q in range(c):
            t = (hi - sb[q]) >> shift
            out_v[counts[t]] = sel_v[q]
            out_g[counts[t]] = sel_g[q]
            counts[t] += 1
        # 3. insertion sort finishes the order inside buckets: value descending, gene ascending
        for q in range(1, c):
            x, y = out_v[q], out_g[q]
            r = q - 1
            while r >= 0 and (out_v[r] < x or (out_v[r] == x and out_g[r] > y)):
                out_v[r + 1] = out_v[r]
                out_g[r + 1] = out_g[r]
                r -= 1
            out_v[r + 1] = x
            out_g[r + 1] = y
        n = min(c, max_len)
        base = i * max_len
        for t in range(n):
            flat[base + t] = out_g[t] + 2
        lengths[i] = n


def rank_value_tokens(
    X: sp.csr_matrix,
    gene_medians: np.ndarray,
    *,
    max_len: int,
    totals: np.ndarray | None = None,
    target_sum: float = 1e4,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank-value encode cells into a padded token matrix (the form the training loop uses).

    The same encoding as :func:`rank_value_encode`, computed in one compiled pass over the CSR
    rows (no Python loop per cell).  Returns ``(tokens, lengths)``: ``tokens`` is an int32
    array ``n_cells x max_len`` whose row ``i`` holds the cell's ``lengths[i]`` tokens followed
    by ``<pad>`` (0).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[5, 0, 2, 2], [0, 1, 0, 0]], dtype=float))
    >>> tokens, lengths = rank_value_tokens(X, np.array([10.0, 1.0, 1.0, 2.0]), max_len=3,
    ...                                     target_sum=1.0)
    >>> tokens.tolist(), lengths.tolist()
    ([[4, 5, 2], [3, 0, 0]], [3, 1])
    """
    X = sp.csr_matrix(X)
    gene_medians = np.asarray(gene_medians, dtype=float)
    if gene_medians.shape != (X.shape[1],):
        msg = f"gene_medians has shape {gene_medians.shape}, expected ({X.shape[1]},)"
        raise ValueError(msg)
    if max_len < 1:
        msg = f"max_len must be positive, got {max_len}"
        raise ValueError(msg)
    if totals is None:
        totals = np.asarray(X.sum(axis=1)).ravel()
    totals = np.asarray(totals, dtype=float)
    if not X.has_sorted_indices:
        X = X.copy()
        X.sort_indices()
    scale = np.divide(target_sum, totals, out=np.zeros(len(totals)), where=totals > 0)
    valid = np.isfinite(gene_medians) & (gene_medians > 0)
    inv_med = np.where(valid, 1.0 / np.where(valid, gene_medians, 1.0), 0.0)
    flat = np.zeros(X.shape[0] * int(max_len), dtype=np.int32)
    lengths = np.zeros(X.shape[0], dtype=np.int64)
    _rank_value_kernel(
        X.data.astype(np.float64, copy=False), X.indices, X.indptr, scale, inv_med,
        int(max_len), flat, lengths,
    )
    return flat.reshape(X.shape[0], int(max_len)), lengths


def rank_value_encode(
    X: sp.csr_matrix,
    gene_medians: np.ndarray,
    *,
    max_len: int,
    totals: np.ndarray | None = None,
    target_sum: float = 1e4,
) -> list[np.ndarray]:
    """Rank-value encode cells into gene-token sequences (Geneformer's tokenisation).

    Each cell's counts are scaled to ``target_sum`` (using ``totals``, default the row sums),
    divided by ``gene_medians``, and its expressed genes are sorted by that value in descending
    order (ties: lower gene index first); the first ``max_len`` are kept.  Genes whose median
    is not a positive finite number (never expressed in training) are left out.  Token id of
    gene ``j`` is ``j + 2`` (``0 = <pad>``, ``1 = <mask>``).  One array per cell; the padded
    matrix the model trains on is :func:`rank_value_tokens`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[5, 0, 2, 2], [0, 1, 0, 0]], dtype=float))
    >>> medians = np.array([10.0, 1.0, 1.0, 2.0])
    >>> [t.tolist() for t in rank_value_encode(X, medians, max_len=3, target_sum=1.0)]
    [[4, 5, 2], [3]]
    """
    tokens, lengths = rank_value_tokens(
        X, gene_medians, max_len=max_len, totals=totals, target_sum=target_sum
    )
    return [row[:n].astype(np.int64) for row, n in zip(tokens, lengths, strict=True)]
