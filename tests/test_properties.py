"""Property-based tests (Hypothesis) of the boundary functions that take user data (issue 16).

Random dense and sparse count matrices of every accepted dtype — with explicit zeros, duplicate
entries and unsorted indices, crossing the 256-row random-number blocks and the 254-count guide
table — and fractions from the smallest subnormal to 1 must keep the invariants:

* the caller's matrix is never modified;
* the result has the input's container, format, dtype and shape, holds whole numbers, and
  ``0 <= kept <= input`` entry by entry (fraction 0 keeps nothing, 1 keeps everything);
* dense and sparse input give the same draws;
* over many draws the kept counts have the binomial mean and variance (5 standard errors);
* the model input check judges dense and sparse input alike and never modifies either.

The examples are fixed (``derandomize=True``, a fixed number per test) and no example database
is written, so the suite is deterministic and runs in well under a minute on one core.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.models import check_counts
from helpers.noise import downsample_counts

# Hypothesis keeps a cache of source constants under .hypothesis/ even without an example
# database: keep it out of the repository too (an explicit setting wins).
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "hypothesis-noise-scaling")
)

FIXED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INT_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
DTYPES = [*INT_DTYPES, np.float32, np.float64]
#: Fractions at every boundary of the samplers, and the extremes of the doubles.
SPECIAL_FRACTIONS = [
    0.0,
    5e-324,
    2.0**-1022,
    1e-300,
    1e-30,
    1e-20,
    2.0**-53,
    1e-9,
    1e-6 * (1 - 2**-52),
    1e-6,
    0.05,
    0.05 + 2**-56,
    0.5,
    1 - 2**-53,
    1.0,
]
fractions = st.one_of(
    st.sampled_from(SPECIAL_FRACTIONS),
    st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=True),
    st.floats(-300, 0).map(lambda e: 10.0**e),
)


def digest(x) -> str:
    h = hashlib.sha256()
    if sp.issparse(x):
        parts = (x.data, x.row, x.col) if x.format == "coo" else (x.data, x.indices, x.indptr)
        h.update(f"{x.format}{x.shape}{x.dtype}".encode())
    else:
        parts = (x,)
    for arr in parts:
        h.update(f"{arr.dtype}{arr.shape}".encode() + np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@st.composite
def count_matrices(draw, *, max_rows: int = 300, max_cols: int = 6, dtypes=DTYPES):
    """``(x, dense)``: a count matrix in a random container and its canonical dense values."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    top = 300 if dtype.itemsize > 1 else 100  # int8 holds 127; 300 crosses the table's 254
    n_rows = draw(st.sampled_from([0, 1, 3, 17, 255, 256, 257, max_rows]))
    n_cols = draw(st.integers(1, max_cols))
    n_entries = draw(st.integers(0, 3 * n_rows * n_cols // 2 + 1)) if n_rows else 0
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = rng.integers(0, max(n_rows, 1), n_entries)
    cols = rng.integers(0, n_cols, n_entries)
    # mostly small counts, some zeros (explicit zeros once sparse), a few large ones
    vals = np.where(rng.random(n_entries) < 0.1, 0, rng.geometric(0.3, n_entries))
    vals = np.where(rng.random(n_entries) < 0.03, rng.integers(0, top, n_entries), vals)
    if dtype.itemsize >= 4 and draw(st.booleans()):  # huge counts, walked by no sampler
        vals = np.where(rng.random(n_entries) < 0.02, 2**22 + rng.integers(0, 9, n_entries), vals)
    dense = np.zeros((n_rows, n_cols), dtype=np.int64)
    np.add.at(dense, (rows, cols), vals)  # duplicates add up
    container = draw(st.sampled_from(["dense", "dense_f", "csr", "csc", "coo", "csr_array"]))
    info = np.iinfo(dtype) if dtype.kind in "iu" else None
    if info is not None and dense.max(initial=0) > info.max:  # duplicates overflow the dtype
        dense = np.minimum(dense, info.max)
        container = "dense"
    if container.startswith("dense"):
        x = dense.astype(dtype)
        if container == "dense_f":
            x = np.asfortranarray(x)
    else:
        order = rng.permutation(n_entries)  # unsorted, with duplicates and explicit zeros
        coo = sp.coo_matrix(
            (vals[order].astype(dtype), (rows[order], cols[order])), shape=(n_rows, n_cols)
        )
        if container == "coo":
            x = coo
        elif container == "csr_array":
            x = sp.csr_array(_csr_keep_duplicates(coo))
        elif container == "csr":
            x = _csr_keep_duplicates(coo)
        else:  # a CSC is the transpose of the CSR of the transpose, structure and all
            x = _csr_keep_duplicates(coo.T).T
    return x, dense


def _csr_keep_duplicates(coo: sp.coo_matrix) -> sp.csr_matrix:
    """CSR with the COO's duplicates, explicit zeros and (row-wise) unsorted order kept."""
    order = np.argsort(coo.row, kind="stable")
    indptr = np.r_[0, np.cumsum(np.bincount(coo.row, minlength=coo.shape[0]))]
    return sp.csr_matrix(
        (coo.data[order], coo.col[order].astype(np.int32), indptr.astype(np.int32)),
        shape=coo.shape,
    )


def values_of(y) -> np.ndarray:
    return y.toarray() if sp.issparse(y) else np.asarray(y)


# --------------------------------------------------------------------------------------------
# thinning
# --------------------------------------------------------------------------------------------
@settings(FIXED, max_examples=120)
@given(count_matrices(), fractions, st.integers(0, 2**63))
def test_thinning_invariants(matrix, fraction, seed):
    x, dense = matrix
    before = digest(x)
    y = downsample_counts(x, fraction, seed=seed)
    assert digest(x) == before  # never modified
    assert type(y) is type(x) and y.shape == x.shape and y.dtype == x.dtype
    if sp.issparse(x):
        assert y.format == x.format
    got = values_of(y).astype(np.int64)
    assert np.all(got >= 0) and np.all(got <= dense)
    if sp.issparse(y) and y.format in ("csr", "csc"):
        assert not np.any(y.data == 0) and y.has_canonical_format
    if fraction == 0.0 or dense.sum() * fraction < 1e-12:  # P(anything kept) < 1e-12
        assert not got.any()
    if fraction == 1.0:
        np.testing.assert_array_equal(got, dense)
    # the container never changes the draws
    np.testing.assert_array_equal(
        values_of(downsample_counts(dense.astype(x.dtype), fraction, seed=seed)), got
    )


@settings(FIXED, max_examples=40)
@given(count_matrices(max_rows=300, dtypes=[np.int32, np.float64]), st.integers(0, 2**32))
def test_per_cell_fractions_invariants(matrix, seed):
    x, dense = matrix
    rng = np.random.default_rng(seed)
    frac = rng.choice(SPECIAL_FRACTIONS, size=x.shape[0])
    before = digest(x)
    y = values_of(downsample_counts(x, frac, seed=seed)).astype(np.int64)
    assert digest(x) == before
    assert np.all(y >= 0) and np.all(y <= dense)
    assert not y[frac == 0].any()
    np.testing.assert_array_equal(y[frac == 1], dense[frac == 1])
    tiny = frac * dense.sum(axis=1) < 1e-12
    assert not y[tiny].any()


@settings(FIXED, max_examples=40)
@given(
    st.one_of(st.integers(1, 300), st.sampled_from([1, 254, 255, 2**20, 2**40])),
    st.one_of(st.sampled_from(SPECIAL_FRACTIONS[1:-1]), st.floats(1e-9, 1 - 1e-9)),
    st.integers(0, 2**32),
)
def test_binomial_moments(n, p, seed):
    # 3000 independent draws of Binomial(n, p) (one count per row, across 12 blocks):
    # the mean within 5 standard errors of n p and the variance within 5 of n p (1 - p).
    reps = 3000
    draws = downsample_counts(np.full((reps, 1), n, dtype=np.int64), p, seed=seed)[:, 0]
    assert np.all((draws >= 0) & (draws <= n))
    mean, var = n * p, n * p * (1 - p)
    if mean * reps < 1e-9:  # nothing may be kept
        assert not draws.any()
        return
    se_mean = np.sqrt(var / reps)
    assert abs(draws.mean() - mean) <= 5 * se_mean + 1e-12 * mean
    mu4 = var * (1 + 3 * (n - 2) * p * (1 - p))
    se_var = np.sqrt(max(mu4 - var**2 * (reps - 3) / (reps - 1), 0.0) / reps)
    if se_var > 0 and mean * reps > 50:  # enough kept molecules for the variance to be normal
        assert abs(draws.var(ddof=1) - var) <= 5 * se_var + 1e-9 * var


# --------------------------------------------------------------------------------------------
# the model input check
# --------------------------------------------------------------------------------------------
weird_values = st.sampled_from(
    [0.0, 1.0, 3.0, 3.00000001, 0.5, -1.0, 1e40, 2.0**24, 2.0**24 - 1, np.nan, np.inf, 1e-300]
)


@settings(FIXED, max_examples=60)
@given(count_matrices(max_rows=40, dtypes=[np.int64, np.float64]), weird_values, st.data())
def test_model_input_check_judges_dense_and_sparse_alike(matrix, value, data):
    x, dense = matrix
    if x.shape[0] == 0:
        return
    values = dense.astype(np.float64)
    i = data.draw(st.integers(0, values.shape[0] - 1))
    j = data.draw(st.integers(0, values.shape[1] - 1))
    values[i, j] = value
    outcomes = []
    for container in (values, sp.csr_matrix(values), sp.csc_matrix(values)):
        adata = ad.AnnData(container)
        adata.var_names = [f"g{k}" for k in range(adata.n_vars)]
        before = digest(container)
        try:
            out = check_counts(adata)
        except ValueError as err:
            outcomes.append(("error", str(err)))
        else:
            outcomes.append(("ok", out.toarray().tobytes()))
            assert out.dtype == np.float32 and out.has_canonical_format
            np.testing.assert_array_equal(out.toarray(), values)
        assert digest(container) == before
    assert outcomes[0] == outcomes[1] == outcomes[2]
    valid = np.isfinite(value) and value >= 0 and value == np.round(value) and value < 2**24
    assert (outcomes[0][0] == "ok") == (valid and values.max() < 2**24)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
