"""No public function that takes user data modifies it (issue 16).

Every call below gets the awkward inputs a user may hand over — a float64 CSR with explicit
zeros, duplicate entries and unsorted indices, its CSC and COO forms, a dense int64 array, an
AnnData with ``obs``/``obsm``/``layers``, index arrays — and the test hashes the bytes of
``data``, ``indices``, ``indptr``, ``obs``, ``obsm`` (and every other array it can reach)
before and after.  Before the fix, ``make_model("PCA").fit(adata)`` on such a CSR lowered the
caller's total from 38,709 to 33,133: ``check_counts`` made a float32 matrix that shared the
caller's ``indices``/``indptr`` and then summed duplicates and dropped zeros in place.
"""

from __future__ import annotations

import hashlib

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers import splits
from helpers.datasets import cells, signals
from helpers.models import (
    align_genes,
    check_counts,
    make_model,
    nonzero_median,
    normalize_log1p,
    rank_value_encode,
    resolve_deepspeed_config,
    select_highly_variable,
)
from helpers.noise import (
    depth_table,
    downsample,
    downsample_counts,
    downsample_h5ad,
    fractions_for_depth,
)

N_CELLS, N_GENES = 120, 40


# --------------------------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------------------------
def _feed(h, obj) -> None:
    """Feed every byte (and the layout) of ``obj`` that a mutation could change into ``h``."""
    if obj is None:
        h.update(b"None")
    elif sp.issparse(obj):
        h.update(f"{type(obj).__name__}{obj.shape}{obj.dtype}".encode())
        if obj.format == "coo":
            for arr in (obj.data, obj.row, obj.col):
                _feed(h, arr)
        else:
            for arr in (obj.data, obj.indices, obj.indptr):
                _feed(h, arr)
    elif isinstance(obj, np.ndarray):
        h.update(f"{obj.shape}{obj.dtype}{obj.strides}".encode())
        if obj.dtype == object:
            h.update(repr(obj.tolist()).encode())
        else:
            h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, pd.DataFrame):
        h.update(repr(list(obj.columns)).encode() + repr(list(obj.dtypes)).encode())
        _feed(h, np.asarray(obj.index, dtype=object))
        for col in obj.columns:
            _feed(h, np.asarray(obj[col], dtype=object))
    elif isinstance(obj, pd.Index | pd.Series):
        _feed(h, np.asarray(obj, dtype=object))
    elif isinstance(obj, ad.AnnData):
        _feed(h, obj.X)
        for part in (obj.obs, obj.var):
            _feed(h, part)
        for mapping in (obj.obsm, obj.layers, obj.uns):
            h.update(repr(sorted(mapping.keys())).encode())
            for key in sorted(mapping.keys()):
                _feed(h, mapping[key])
    elif isinstance(obj, dict):
        for key in sorted(obj):
            h.update(str(key).encode())
            _feed(h, obj[key])
    elif isinstance(obj, list | tuple):
        for item in obj:
            _feed(h, item)
    else:
        h.update(repr(obj).encode())


def digest(*objs) -> str:
    h = hashlib.sha256()
    for obj in objs:
        _feed(h, obj)
    return h.hexdigest()


def assert_untouched(func, *args, **kwargs):
    """Call ``func`` and assert that none of its arguments changed; return its result."""
    before = digest(args, kwargs)
    out = func(*args, **kwargs)
    assert digest(args, kwargs) == before, f"{getattr(func, '__name__', func)} changed its input"
    return out


# --------------------------------------------------------------------------------------------
# awkward inputs
# --------------------------------------------------------------------------------------------
def awkward_csr(seed: int = 0, n_cells: int = N_CELLS, n_genes: int = N_GENES) -> sp.csr_matrix:
    """float64 CSR with explicit zeros, duplicate entries and unsorted indices in every row."""
    rng = np.random.default_rng(seed)
    dense = rng.negative_binomial(2, 0.3, size=(n_cells, n_genes)).astype(np.float64)
    dense[:, : n_genes // 4] *= 3  # some genes much more variable
    rows, data, idx = [0], [], []
    for row in dense:
        cols = np.flatnonzero(row)
        vals = row[cols].copy()
        # split every other count into two duplicate entries, add explicit zeros, shuffle
        split = cols[::2]
        half = np.floor(row[split] / 2)
        vals[::2] -= half
        cols = np.r_[cols, split, rng.choice(n_genes, 3)]
        vals = np.r_[vals, half, np.zeros(3)]
        order = rng.permutation(cols.size)
        idx.extend(cols[order])
        data.extend(vals[order])
        rows.append(len(idx))
    m = sp.csr_matrix(
        (np.array(data), np.array(idx, dtype=np.int32), np.array(rows, dtype=np.int32)),
        shape=dense.shape,
    )
    assert not m.has_canonical_format
    np.testing.assert_array_equal(m.toarray(), dense)
    return m


def containers(seed: int = 0):
    """The same counts as awkward CSR (float64, int64), CSC, COO, CSR array and dense arrays."""
    m = awkward_csr(seed)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    parts = (m.data.copy(), m.indices.copy(), m.indptr.copy())
    return {
        "csr": m,
        "csc": m.tocsc(copy=True),
        "coo": sp.coo_matrix((m.data.copy(), (rows, m.indices.copy())), shape=m.shape),
        "csr_array": sp.csr_array(parts, shape=m.shape),
        "csr_int64": m.astype(np.int64),  # the same duplicates, zeros and order
        "int64": m.toarray().astype(np.int64),
        "float32": np.asfortranarray(m.toarray().astype(np.float32)),
    }


CONTAINERS = ["csr", "csc", "coo", "csr_array", "csr_int64", "int64", "float32"]
ADATA_CONTAINERS = [k for k in CONTAINERS if k != "coo"]  # AnnData refuses COO


def awkward_adata(kind: str = "csr", seed: int = 0) -> ad.AnnData:
    X = containers(seed)[kind]
    adata = ad.AnnData(X)
    adata.var_names = [f"g{i}" for i in range(adata.n_vars)]
    adata.obs_names = [f"c{seed}_{i}" for i in range(adata.n_obs)]
    rng = np.random.default_rng(seed + 100)
    adata.obs["day"] = rng.choice([2.0, 4.0, 6.0], adata.n_obs)
    adata.obs["clone"] = rng.integers(-1, 15, adata.n_obs)
    adata.obs["celltype"] = pd.Categorical(rng.choice(["T", "B", "NK"], adata.n_obs))
    adata.obsm["protein_counts"] = rng.poisson(5.0, (adata.n_obs, 4)).astype(np.float64)
    adata.obsm["spatial"] = rng.normal(size=(adata.n_obs, 2))
    adata.layers["counts"] = containers(seed)["csr"].copy()
    return adata


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------
LINEAR = {"RandomProjection": {}, "PCA": {"n_top_genes": 30}}
NEURAL = {
    "SCVI": {"sample_budget": 400, "max_epochs_cap": 1, "n_threads": 1},
    "Geneformer": {"max_len": 8, "batch_size": 16, "sample_budget": 200, "eval_steps": 5,
                   "n_threads": 1},
}  # fmt: skip


def test_issue16_pca_fit_no_longer_corrupts_the_callers_matrix():
    adata = awkward_adata("csr")
    total = adata.X.sum()
    make_model("PCA", n_top_genes=30).fit(adata, progress=False)
    assert adata.X.sum() == total  # before: explicit zeros and duplicates rewrote the indices
    first = make_model("PCA", n_top_genes=30).fit(adata, progress=False).embed(adata)
    again = make_model("PCA", n_top_genes=30).fit(adata, progress=False).embed(adata)
    np.testing.assert_array_equal(first, again)  # refitting the same object gives the same


@pytest.mark.parametrize("kind", ADATA_CONTAINERS)
@pytest.mark.parametrize("name", list(LINEAR))
def test_linear_models_leave_their_input_alone(name, kind):
    train, other = awkward_adata(kind, seed=0), awkward_adata(kind, seed=1)
    model = make_model(name, **LINEAR[name])
    assert_untouched(model.fit, train, val=other, progress=False)
    assert_untouched(model.embed, other)
    assert_untouched(model.fit_embed, train, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NEURAL))
def test_neural_models_leave_their_input_alone(name):
    train, other = awkward_adata("csr", seed=0), awkward_adata("int64", seed=1)
    model = make_model(name, profile="smoke", **NEURAL[name])
    assert_untouched(model.fit, train, val=other, progress=False)
    assert_untouched(model.embed, other)
    if name == "Geneformer":
        assert_untouched(model.tokenize, other)


@pytest.mark.parametrize("kind", ADATA_CONTAINERS)
def test_model_input_helpers_leave_their_input_alone(kind):
    adata = awkward_adata(kind)
    X = assert_untouched(check_counts, adata)
    assert X.has_canonical_format and not np.any(X.data == 0)
    np.testing.assert_array_equal(X.toarray(), awkward_csr().toarray())
    genes = np.asarray(adata.var_names[::-1], dtype=object)
    assert_untouched(align_genes, adata, genes)
    raw = adata.X
    if sp.issparse(raw):
        assert_untouched(normalize_log1p, raw)
        assert_untouched(select_highly_variable, raw, 10)
    csr = awkward_csr()
    totals = np.asarray(csr.sum(axis=1)).ravel()
    medians = assert_untouched(nonzero_median, csr, totals=totals)
    medians = np.nan_to_num(medians, nan=1.0)
    assert_untouched(rank_value_encode, csr, medians, max_len=5, totals=totals)


def test_deepspeed_config_leaves_the_callers_dict_alone():
    source = {
        "train_batch_size": "auto",
        "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto"}},
        "scheduler": {"params": {"total_num_steps": "auto"}},
        "bf16": {"enabled": "auto"},
    }
    config = make_model("Geneformer", profile="smoke").config
    out = assert_untouched(
        resolve_deepspeed_config, source, config, total_steps=10, cuda_available=False,
        bf16_supported=False,
    )  # fmt: skip
    assert out["optimizer"]["params"]["lr"] == config.lr and source["train_batch_size"] == "auto"


# --------------------------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", CONTAINERS)
@pytest.mark.parametrize("fraction", [0.0, 1e-30, 0.02, 0.4, 1.0, "per_cell"])
def test_downsample_counts_leaves_its_input_alone(kind, fraction):
    x = containers()[kind]
    if fraction == "per_cell":
        fraction = np.linspace(0.0, 1.0, x.shape[0])
    assert_untouched(downsample_counts, x, fraction, seed=3)


@pytest.mark.parametrize("kind", ["csr", "int64"])
def test_noise_tables_and_anndata_paths_leave_their_input_alone(kind, tmp_path):
    adata = awkward_adata(kind)
    assert_untouched(depth_table, adata, [1.0, 0.3, 1e-9], seed=0)
    assert_untouched(depth_table, adata.X, np.array([0.5]), seed=0)
    assert_untouched(fractions_for_depth, adata, 20.0)
    assert_untouched(fractions_for_depth, adata, 20.0, layer="counts")
    frac = np.linspace(0.1, 0.9, adata.n_obs)
    copy = assert_untouched(downsample, adata, frac, seed=0, copy=True)
    assert copy is not adata
    # in place with key_added: only the new layer, obs column and uns entry are added
    before = digest(adata.X, adata.obsm, adata.layers["counts"], adata.obs["day"])
    downsample(adata, 0.5, seed=0, key_added="thin")
    assert digest(adata.X, adata.obsm, adata.layers["counts"], adata.obs["day"]) == before
    # the streamed path reads its source file and never writes it
    src = tmp_path / "src.h5ad"
    ad.AnnData(awkward_csr().astype(np.float32), obs=adata.obs[["day"]]).write_h5ad(src)
    before = src.read_bytes()
    downsample_h5ad(src, tmp_path / "dst.h5ad", frac, seed=0, progress=False)
    assert src.read_bytes() == before


# --------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", CONTAINERS)
def test_count_validation_leaves_its_input_alone(kind):
    x = containers()[kind]
    out = assert_untouched(cells.validate_counts, x)
    np.testing.assert_array_equal(out.toarray(), awkward_csr().toarray())
    frame = pd.DataFrame(awkward_csr().toarray())
    assert_untouched(cells.validate_counts, frame)
    normalised = sp.csr_matrix(np.array([[2.5, 0.0, 7.5, 0.0], [0.0, 0.4, 0.8, 0.0]]))
    normalised.data = np.r_[normalised.data, 0.0]  # an explicit zero ...
    normalised.indices = np.r_[normalised.indices, 3].astype(normalised.indices.dtype)
    normalised.indptr[-1] += 1  # ... at the end of the last row
    assert_untouched(cells.counts_from_normalised, normalised)
    assert_untouched(cells.counts_from_normalised, normalised.toarray())


@pytest.mark.parametrize("signal", ["protein_counts", "celltype.l3", "day", "clone", "ng_idx"])
@pytest.mark.parametrize("restrict", [False, True])
def test_signals_leave_their_input_alone(signal, restrict):
    adata = awkward_adata("csr")
    adata.obs["celltype.l3"] = adata.obs["celltype"]
    restrict_to = np.arange(0, adata.n_obs, 2) if restrict else None
    kw = {"restrict_to": restrict_to}
    if signal == "clone":
        kw["per_clone"] = "any_mate"
    out = assert_untouched(signals.auxiliary_signal, adata, signal, seed=1, **kw)
    # the result never aliases the caller's arrays
    for arr in out:
        for source in [*adata.obsm.values(), *(adata.obs[c].to_numpy() for c in adata.obs)]:
            assert not np.shares_memory(arr, source)


@pytest.mark.parametrize("per_clone", ["one", "every_early", "any_mate"])
def test_clonal_and_spatial_pairs_leave_their_input_alone(per_clone):
    adata = awkward_adata("csr")
    assert_untouched(signals.clonal_pairs, adata, seed=0, per_clone=per_clone)
    assert_untouched(signals.spatial_neighbour_pairs, adata, seed=0, k=3)


# --------------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------------
def test_splits_leave_their_input_alone():
    a, b = np.array([5, 1, 9, 3]), np.array([2, 2, 8, 7])
    groups = assert_untouched(splits.pair_groups, 20, a, b)
    eligible = np.zeros(20, dtype=bool)
    eligible[::2] = True
    assert_untouched(splits.evaluation_split, 20, n_eval=4, seed=0, groups=groups)
    pool, _ = assert_untouched(splits.evaluation_split, 20, n_eval=4, seed=0, eligible=eligible)
    assert_untouched(splits.evaluation_split, 20, n_eval=4, seed=0, eligible=np.arange(0, 20, 3))
    unsorted_pool = pool[::-1].copy()
    assert_untouched(splits.training_subset, unsorted_pool, 5, seed=0)
    assert_untouched(splits.training_subsets, unsorted_pool, [3, 5], seeds=[0, 1])
    assert_untouched(splits.validation_split, unsorted_pool, seed=0)
