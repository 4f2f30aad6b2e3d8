"""The boundary checks shared by the public functions (helpers._checks), and their use (issue 16).

Regression tests: before, the model input check cast sparse values to float32 *before*
checking them and dense values after, so ``3.00000001`` passed when sparse and failed dense,
and ``1e40`` was refused as "NaN or infinite" when sparse but accepted dense (and became inf);
``seed=-1`` reached numpy and gave its bare message (or was taken by ``make_model``).
"""

from __future__ import annotations

import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers import splits
from helpers._checks import check_seed, count_matrix
from helpers.datasets import cells, signals
from helpers.models import check_counts, make_model, train_val_split
from helpers.models.linear import PCAConfig, PCAModel
from helpers.noise import depth_table, downsample, downsample_counts


def as_adata(x) -> ad.AnnData:
    adata = ad.AnnData(x)
    adata.var_names = [f"g{i}" for i in range(adata.n_vars)]
    return adata


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (3.00000001, "whole numbers"),
        (1e40, "2\\*\\*24"),
        (2.0**24, "2\\*\\*24"),
        (np.nan, "finite; found 1 NaN/inf"),
        (-np.inf, "finite"),
        (-1.0, "non-negative"),
        (0.5, "whole numbers"),
    ],
)
@pytest.mark.parametrize("container", ["dense", "csr", "csc"])
def test_model_input_check_agrees_dense_and_sparse(value, match, container):
    x = np.array([[1.0, 0.0, 2.0], [value, 4.0, 0.0]])
    if container != "dense":
        x = sp.csr_matrix(x).asformat(container)
    with pytest.raises(ValueError, match=match):
        check_counts(as_adata(x), name="data")
    with pytest.raises(ValueError, match=match):
        cells.validate_counts(x)


@pytest.mark.parametrize("container", ["dense", "csr", "csc", "coo", "frame"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, np.float16, np.float32])
def test_count_matrix_accepts_counts_in_any_container_and_dtype(container, dtype):
    dense = np.array([[0, 3, 0, 1], [2, 0, 0, 0], [0, 0, 0, 0]], dtype=dtype)
    x = {
        "dense": dense,
        "frame": pd.DataFrame(dense),
        **(
            {}
            if dtype == np.float16
            else {f: sp.csr_matrix(dense).asformat(f) for f in ("csr", "csc", "coo")}
        ),  # noqa: E501
    }.get(container)
    if x is None:
        pytest.skip("scipy.sparse has no float16")
    m = count_matrix(x)
    assert isinstance(m, sp.csr_matrix) and m.dtype == np.float32 and m.has_canonical_format
    np.testing.assert_array_equal(m.toarray(), dense.astype(np.float32))


def test_count_matrix_sums_duplicates_in_its_copy_only():
    x = sp.csr_matrix(
        (np.array([1.0, 2.0, 0.0, 2.0**23]), np.array([1, 1, 0, 2]), np.array([0, 3, 4])),
        shape=(2, 3),
    )
    m = count_matrix(x)
    np.testing.assert_array_equal(m.toarray(), [[0, 3, 0], [0, 0, 2**23]])
    assert x.nnz == 4 and x.indices.tolist() == [1, 1, 0, 2]
    doubled = sp.csr_matrix(
        (np.array([2.0**23, 2.0**23]), np.array([0, 0]), np.array([0, 2])), shape=(1, 1)
    )
    with pytest.raises(ValueError, match="duplicate entries that sum"):
        count_matrix(doubled)


def test_count_matrix_refuses_non_numeric_and_wrong_shapes():
    with pytest.raises(ValueError, match="numeric counts, got dtype <U1"):
        count_matrix(np.array([["a"]]))
    with pytest.raises(ValueError, match="2-D"):
        count_matrix(np.ones(3))


BAD_SEEDS = [-1, np.int64(-3), 1.5, 1.0, "0", None, True]


@pytest.mark.parametrize("seed", BAD_SEEDS)
def test_check_seed_names_what_it_got(seed):
    with pytest.raises(
        ValueError, match=re.escape(f"`seed` must be a non-negative integer, got {seed!r}")
    ):
        check_seed(seed)


def test_check_seed_accepts_integers():
    assert check_seed(0) == 0 and check_seed(np.uint32(7)) == 7 and check_seed(2**70) == 2**70
    assert type(check_seed(np.int64(5))) is int


@pytest.mark.parametrize("seed", BAD_SEEDS)
def test_every_public_boundary_refuses_a_bad_seed(seed):
    x = np.ones((6, 4), dtype=np.int64)
    adata = as_adata(x.astype(np.float32))
    adata.obs["clone"] = [0, 0, 1, 1, 2, 2]
    adata.obs["day"] = [2.0, 6.0, 2.0, 6.0, 4.0, 6.0]
    adata.obsm["spatial"] = np.arange(12.0).reshape(6, 2)
    calls = [
        lambda: make_model("PCA", seed=seed),
        lambda: make_model("SCVI", profile="smoke", seed=seed),
        lambda: PCAModel(PCAConfig(seed=seed)),
        lambda: downsample_counts(x, 0.5, seed=seed),
        lambda: downsample(adata, 0.5, seed=seed, copy=True),
        lambda: depth_table(x, [0.5], seed=seed),
        lambda: splits.evaluation_split(10, n_eval=2, seed=seed),
        lambda: splits.training_subset(np.arange(10), 3, seed=seed),
        lambda: splits.validation_split(np.arange(10), seed=seed),
        lambda: train_val_split(10, train_fraction=0.8, seed=seed),
        lambda: signals.clonal_pairs(adata, seed=seed),
        lambda: signals.spatial_neighbour_pairs(adata, seed=seed, k=2),
        lambda: signals.auxiliary_signal(adata, "day", seed=seed),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="seed.*must be a non-negative integer"):
            call()
