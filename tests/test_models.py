"""Tests of helpers.models: the four representation models and Tables S1–S3.

Synthetic counts: negative-binomial expression of a few clusters (cluster-specific gene
programmes), so that an embedding that keeps the biology separates the clusters.
"""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import KNeighborsClassifier

from helpers import models as hm
from helpers import profiles
from helpers.models import (
    GeneformerConfig,
    GeneformerModel,
    SCVIConfig,
    SCVIModel,
    epochs_for_budget,
    hyperparameter_table,
    make_model,
    nonzero_median,
    parameter_count_table,
    rank_value_encode,
    resolve_deepspeed_config,
    train_val_split,
)

REPO = Path(__file__).resolve().parents[1]
N_GENES = 120
N_CLUSTERS = 4


def synthetic_counts(n_cells: int, *, seed: int, n_genes: int = N_GENES, sparse: bool = True):
    """NB counts from N_CLUSTERS clusters; the programmes are fixed (seed 0), cells vary."""
    prog_rng = np.random.default_rng(0)
    base = prog_rng.lognormal(-0.5, 1.0, n_genes)
    active = prog_rng.random((N_CLUSTERS, n_genes)) < 0.25
    programme = np.exp(prog_rng.normal(0.0, 1.2, (N_CLUSTERS, n_genes)) * active)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLUSTERS, n_cells)
    size = rng.lognormal(0.0, 0.3, n_cells)[:, None]
    mu = base * programme[labels] * size
    r = 5.0
    X = rng.negative_binomial(r, r / (r + mu)).astype(np.float32)
    adata = ad.AnnData(sp.csr_matrix(X) if sparse else X)
    adata.var_names = [f"gene{i}" for i in range(n_genes)]
    adata.obs_names = [f"s{seed}_c{i}" for i in range(n_cells)]
    adata.obs["label"] = labels
    return adata


@pytest.fixture(scope="module")
def train():
    return synthetic_counts(400, seed=1)


@pytest.fixture(scope="module")
def test_cells():
    return synthetic_counts(200, seed=2)


def knn_accuracy(Z_train, y_train, Z_test, y_test) -> float:
    clf = KNeighborsClassifier(n_neighbors=15).fit(Z_train, y_train)
    return float((clf.predict(Z_test) == y_test).mean())


# Small budgets so that the neural models train in seconds on a shared CPU.
SCVI_FAST = {"sample_budget": 4000, "max_epochs_cap": 10, "n_threads": 1}
GF_FAST = {"max_len": 24, "batch_size": 16, "sample_budget": 800, "eval_steps": 10, "n_threads": 1}


# --------------------------------------------------------------------------------------------
# Interface, profiles, configuration
# --------------------------------------------------------------------------------------------
def test_make_model_names_and_profiles():
    assert hm.MODEL_NAMES == ("RandomProjection", "PCA", "SCVI", "Geneformer")
    for name in hm.MODEL_NAMES:
        for profile in profiles.NAMES:
            model = make_model(name, profile=profile, seed=3)
            assert model.name == name
            assert model.config.profile == profile
            assert model.config.seed == 3
            assert not model.is_fitted
    assert isinstance(make_model("scvi"), SCVIModel)  # case-insensitive
    with pytest.raises(ValueError, match="unknown model"):
        make_model("UMAP")
    with pytest.raises(ValueError, match="profile"):
        make_model("PCA", profile="fast")
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        make_model("SCVI", n_hiden=128)
    assert make_model("Geneformer", max_len=128).config.max_len == 128


def test_paper_profile_is_table_s1_and_s2():
    g = make_model("Geneformer", profile="paper").config
    assert (g.num_hidden_layers, g.hidden_size, g.num_attention_heads, g.intermediate_size) == (
        3,
        256,
        4,
        512,
    )
    assert (g.max_len, g.hidden_act, g.attention_probs_dropout_prob, g.hidden_dropout_prob) == (
        512,
        "relu",
        0.02,
        0.02,
    )
    assert (g.initializer_range, g.layer_norm_eps, g.weight_decay) == (0.02, 1e-12, 0.001)
    assert (g.batch_size, g.eval_batch_size, g.warmup_steps, g.eval_steps) == (64, 100, 5000, 1000)
    assert (g.early_stopping_patience, g.mask_probability, g.n_top_genes) == (5, 0.15, None)
    assert g.sample_budget == 1e8
    s = make_model("SCVI", profile="paper").config
    assert (s.n_hidden, s.n_latent, s.n_layers, s.dropout_rate) == (512, 16, 1, 0.1)
    assert (s.dispersion, s.gene_likelihood, s.latent_distribution) == ("gene", "zinb", "normal")
    assert (s.eps, s.batch_size, s.n_epochs_kl_warmup, s.train_fraction) == (0.01, 512, 1, 0.8)
    assert (s.early_stopping_patience, s.early_stopping_min_delta) == (5, 0.01)
    assert (s.lr, s.weight_decay, s.n_top_genes, s.sample_budget) == (1e-3, 1e-6, None, 1e7)
    q = make_model("SCVI", profile="quick").config
    assert q.n_top_genes == 2000 and q.sample_budget < s.sample_budget


def test_epochs_for_budget_matches_paper_formula():
    # the authors' formula: max(1, int(k * 1e7 / N)), k = 1 (scVI) and 10 (Geneformer)
    for n in (100, 1_000, 4_642, 10_000, 215_443, 10_000_000):
        assert epochs_for_budget(n, sample_budget=1e7) == max(1, int(1e7 / n))
        assert epochs_for_budget(n, sample_budget=1e8) == max(1, int(10 * 1e7 / n))
    assert epochs_for_budget(100, sample_budget=1e7, max_epochs_cap=50) == 50
    assert epochs_for_budget(10**9, sample_budget=1e7, min_epochs=3) == 3


def test_train_val_split_is_seeded_and_disjoint():
    tr, va = train_val_split(101, train_fraction=0.8, seed=5)
    tr2, va2 = train_val_split(101, train_fraction=0.8, seed=5)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert len(tr) == 81 and len(va) == 20
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(101))
    assert not np.array_equal(train_val_split(101, train_fraction=0.8, seed=6)[1], va)


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors(train):
    model = make_model("PCA", n_top_genes=50)
    with pytest.raises(hm.NotFittedError, match="not fitted"):
        model.embed(train)
    with pytest.raises(hm.NotFittedError):
        model.n_parameters  # noqa: B018
    bad = train.copy()
    bad.X = bad.X.astype(np.float32)
    bad.X.data[0] = 0.5
    with pytest.raises(ValueError, match="non-integer"):
        model.fit(bad)
    bad.X.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad)
    bad.X.data[0] = -1
    with pytest.raises(ValueError, match="negative"):
        model.fit(bad)
    log = train.copy()
    log.X = np.log1p(log.X.toarray())
    with pytest.raises(ValueError, match="non-integer"):
        make_model("RandomProjection").fit(log)
    dup = train.copy()
    dup.var_names = ["g"] * dup.n_vars
    with pytest.raises(ValueError, match="not unique"):
        model.fit(dup)

    model.fit(train)
    assert isinstance(model, hm.RepresentationModel)
    missing = train[:, 5:].copy()
    with pytest.raises(ValueError, match="lacks 5 of the 120 genes"):
        model.embed(missing)
    renamed = train.copy()
    renamed.var_names = [f"other{i}" for i in range(renamed.n_vars)]
    with pytest.raises(ValueError, match="lacks"):
        model.embed(renamed)
    with pytest.raises(ValueError, match="lacks"):
        make_model("SCVI").fit(train, val=missing)


def test_embed_matches_genes_by_name(train, test_cells):
    model = make_model("PCA", n_top_genes=50).fit(train)
    Z = model.embed(test_cells)
    perm = np.random.default_rng(0).permutation(test_cells.n_vars)
    shuffled = test_cells[:, perm].copy()
    np.testing.assert_allclose(model.embed(shuffled), Z, rtol=1e-5, atol=1e-5)
    extra = ad.concat([test_cells, synthetic_counts(200, seed=2, n_genes=130)[:, 120:]], axis=1)
    assert extra.n_vars == 130
    np.testing.assert_allclose(model.embed(extra), Z, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Random projection and PCA
# --------------------------------------------------------------------------------------------
def test_random_projection_is_sklearn_on_raw_counts(train, test_cells):
    from sklearn.random_projection import GaussianRandomProjection

    model = make_model("RandomProjection", seed=7).fit(train)
    Z = model.embed(test_cells)
    ref = GaussianRandomProjection(n_components=16, random_state=42).fit(train.X)
    expected = test_cells.X.toarray() @ ref.components_.T
    assert Z.shape == (200, 16) and Z.dtype == np.float32
    np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-3)
    # the matrix is fixed by random_state=42 (paper), whatever the seed; dense input is the same
    dense = test_cells.copy()
    dense.X = dense.X.toarray()
    np.testing.assert_array_equal(make_model("RandomProjection", seed=0).fit(train).embed(dense), Z)
    assert model.n_parameters == 0


def test_pca_equals_independent_scanpy_pipeline(train, test_cells):
    import scanpy as sc
    from sklearn.decomposition import TruncatedSVD

    model = make_model("PCA", n_top_genes=40).fit(train)
    # independent computation with scanpy on the training cells
    ref = train.copy()
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    sc.pp.highly_variable_genes(ref, flavor="seurat", n_top_genes=40)
    hvg = ref.var_names[ref.var["highly_variable"]]
    assert ref.var["highly_variable"].sum() == 40
    assert list(model.hvg_genes_) == list(hvg)
    L = ref[:, hvg].X.toarray().astype(np.float64)
    mean, sd = L.mean(0), L.std(0, ddof=1)
    svd = TruncatedSVD(n_components=16, random_state=0x5EED).fit((L - mean) / sd)
    np.testing.assert_allclose(model.embed(train), svd.transform((L - mean) / sd), atol=1e-4)
    np.testing.assert_allclose(model.embed(train), model.train_embedding_, atol=1e-4)
    # new cells: the training genes, means, SDs and components, nothing refitted
    tst = test_cells.copy()
    sc.pp.normalize_total(tst, target_sum=1e4)
    sc.pp.log1p(tst)
    Lt = tst[:, hvg].X.toarray().astype(np.float64)
    np.testing.assert_allclose(
        model.embed(test_cells), ((Lt - mean) / sd) @ svd.components_.T, atol=1e-4
    )
    assert model.n_parameters == 16 * 40 + 2 * 40


def test_pca_genes_and_scaling_come_from_training_cells_only(train, test_cells):
    model = make_model("PCA", n_top_genes=40).fit(train)
    hvg_before, Z_train = model.hvg_genes_.copy(), model.embed(train)
    # embedding wildly different cells changes nothing that was fitted
    j = int(np.flatnonzero(~np.isin(train.var_names, model.hvg_genes_))[0])
    gene = train.var_names[j]
    weird = test_cells.copy()
    X = weird.X.toarray()
    X[::2, j] = 500
    weird.X = sp.csr_matrix(X)
    model.embed(weird)
    assert list(model.hvg_genes_) == list(hvg_before)
    np.testing.assert_array_equal(model.embed(train), Z_train)
    # the gene selection differs when the test cells are part of the fit
    joint = make_model("PCA", n_top_genes=40).fit(ad.concat([train, weird]))
    assert gene in joint.hvg_genes_ and gene not in model.hvg_genes_


def test_pca_and_rp_carry_cluster_signal(train, test_cells):
    # chance is 0.25; cells scrambled by a row-order bug would land there
    for name, threshold in (("PCA", 0.9), ("RandomProjection", 0.75)):
        model = make_model(name, n_top_genes=60) if name == "PCA" else make_model(name)
        model.fit(train)
        acc = knn_accuracy(
            model.embed(train), train.obs["label"], model.embed(test_cells), test_cells.obs["label"]
        )
        assert acc > threshold, (name, acc)


# --------------------------------------------------------------------------------------------
# Rank-value encoding
# --------------------------------------------------------------------------------------------
def test_rank_value_encoding_hand_example():
    # cell totals: 20, 10, 0; target_sum 10 → cell 0 scaled by 0.5, cell 1 by 1
    X = sp.csr_matrix(
        np.array(
            [
                [10, 0, 4, 4, 2, 0],
                [0, 6, 2, 0, 2, 0],
                [0, 0, 0, 0, 0, 0],
            ],
            dtype=float,
        )
    )
    medians = np.array([10.0, 2.0, 1.0, 2.0, 1.0, np.nan])
    # cell 0 values: g0 5/10=0.5, g2 2/1=2, g3 2/2=1, g4 1/1=1 → g2, g3, g4 (tie: lower index), g0
    # cell 1 values: g1 6/2=3, g2 2/1=2, g4 2/1=2 → g1, g2, g4
    tokens = rank_value_encode(X, medians, max_len=10, target_sum=10)
    assert [t.tolist() for t in tokens] == [[4, 5, 6, 2], [3, 4, 6], []]
    assert [t.tolist() for t in rank_value_encode(X, medians, max_len=2, target_sum=10)] == [
        [4, 5],
        [3, 4],
        [],
    ]
    # a gene without a training median (nan) is never a token
    X2 = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 7.0]]))
    assert rank_value_encode(X2, medians, max_len=5).pop().tolist() == []
    with pytest.raises(ValueError, match="shape"):
        rank_value_encode(X, medians[:3], max_len=5)


def test_nonzero_median_hand_example():
    X = sp.csr_matrix(np.array([[2, 0, 2], [1, 1, 2], [0, 0, 4], [6, 0, 2]], dtype=float))
    # scaled to 1 per cell: rows /4, /4, /4, /8
    med = nonzero_median(X, target_sum=1.0)
    np.testing.assert_allclose(
        med, [np.median([0.5, 0.25, 0.75]), 0.25, np.median([0.5, 0.5, 1.0, 0.25])]
    )
    assert np.isnan(nonzero_median(sp.csr_matrix(np.array([[1.0, 0.0]])))[1])


def test_geneformer_tokenizer_uses_training_medians():
    # gene a is high everywhere in training (median large), gene b is rare but present
    train = ad.AnnData(np.array([[8, 1, 1], [8, 1, 1], [8, 2, 0]], dtype=np.float32))
    train.var_names = ["a", "b", "c"]
    model = make_model("Geneformer", profile="smoke", sample_budget=3, max_len=8, n_threads=1).fit(
        train, progress=False
    )
    # training medians (cells scaled to 1e4): a = 8/10, b = 1/10, c = 1/10 (x 1e4)
    np.testing.assert_allclose(model.gene_medians_, [8000.0, 1000.0, 1000.0])
    new = ad.AnnData(np.array([[4, 1, 0], [1, 0, 1]], dtype=np.float32))
    new.var_names = ["a", "b", "c"]
    # cell 0: a 4/5/0.8 = 1, b 1/5/0.1 = 2 → b, a ; cell 1: a 0.5/0.8, c 0.5/0.1 → c, a
    assert [t.tolist() for t in model.tokenize(new)] == [[3, 2], [4, 2]]


# --------------------------------------------------------------------------------------------
# Neural models (small budgets)
# --------------------------------------------------------------------------------------------
def test_scvi_fits_embeds_deterministically_with_signal(train, test_cells):
    m1 = make_model("SCVI", profile="smoke", seed=0, **SCVI_FAST).fit(train, progress=False)
    Z = m1.embed(test_cells)
    assert Z.shape == (200, 16) and np.isfinite(Z).all()
    assert m1.max_epochs_ == 10 and 1 <= m1.epochs_trained_ <= 10
    assert m1.history_["elbo_validation"][-1] < m1.history_["elbo_validation"][0]
    m2 = make_model("SCVI", profile="smoke", seed=0, **SCVI_FAST).fit(train, progress=False)
    np.testing.assert_allclose(m2.embed(test_cells), Z, rtol=1e-4, atol=1e-4)
    acc = knn_accuracy(m1.embed(train), train.obs["label"], Z, test_cells.obs["label"])
    assert acc > 0.85, acc  # chance: 0.25
    assert m1.n_parameters == SCVIModel.count_parameters(N_GENES, m1.config)
    # a cell without counts still gets a finite embedding
    empty = test_cells[:3].copy()
    empty.X = sp.csr_matrix(empty.shape, dtype=np.float32)
    assert np.isfinite(m1.embed(empty)).all()


def test_scvi_external_validation_and_seed(train, test_cells):
    cfg = {**SCVI_FAST, "max_epochs_cap": 3}
    m = make_model("SCVI", profile="smoke", seed=0, **cfg)
    m.fit(train, val=test_cells, progress=False)
    assert m.embed(test_cells).shape == (200, 16)
    assert len(m.history_["elbo_validation"]) == m.epochs_trained_
    m1 = make_model("SCVI", profile="smoke", seed=1, **cfg).fit(train, progress=False)
    m0 = make_model("SCVI", profile="smoke", seed=0, **cfg).fit(train, progress=False)
    assert not np.allclose(m1.embed(test_cells), m0.embed(test_cells), atol=1e-3)


def test_geneformer_fits_embeds_deterministically_with_signal(train, test_cells):
    m1 = make_model("Geneformer", profile="smoke", seed=0, **GF_FAST).fit(train, progress=False)
    Z = m1.embed(test_cells)
    assert Z.shape == (200, 256) and np.isfinite(Z).all()
    assert m1.max_epochs_ == 2 and m1.steps_trained_ == 2 * 20
    assert len(m1.history_["val_loss"]) == 4
    m2 = make_model("Geneformer", profile="smoke", seed=0, **GF_FAST).fit(train, progress=False)
    np.testing.assert_allclose(m2.embed(test_cells), Z, rtol=1e-4, atol=1e-4)
    acc = knn_accuracy(m1.embed(train), train.obs["label"], Z, test_cells.obs["label"])
    assert acc > 0.75, acc  # chance: 0.25
    assert m1.n_parameters == GeneformerModel.count_parameters(N_GENES, m1.config)
    # a cell without counts has no tokens: the zero vector
    empty = test_cells[:2].copy()
    empty.X = sp.csr_matrix(empty.shape, dtype=np.float32)
    np.testing.assert_array_equal(m1.embed(empty), 0.0)


def test_geneformer_external_validation_and_hvg_subset(train, test_cells):
    m = make_model(
        "Geneformer", profile="smoke", seed=0, n_top_genes=50, **{**GF_FAST, "sample_budget": 400}
    )
    m.fit(train, val=test_cells, progress=False)
    assert m.gene_idx_.size == 50
    assert m.n_parameters == GeneformerModel.count_parameters(50, m.config)
    tokens = m.tokenize(test_cells)
    assert max(max(t) for t in tokens if len(t)) < 50 + 2
    assert all(len(t) <= 24 for t in tokens)
    assert m.embed(test_cells).shape == (200, 256)


def test_geneformer_embeds_the_layer_asked_for(train, test_cells):
    """emb_layer follows Geneformer's EmbExtractor: -1 the penultimate layer (default), 0 the
    last, -n_layers the token embeddings; each is the mean over the cell's tokens."""
    import dataclasses

    import torch

    m = make_model("Geneformer", profile="smoke", seed=0, **{**GF_FAST, "sample_budget": 200})
    assert m.config.emb_layer == -1
    m.fit(train, progress=False)
    cells = test_cells[:30]
    tokens = m.tokenize(cells)
    bert = m.module_.model.bert
    n_layers = m.config.num_hidden_layers
    expected = {}
    with torch.no_grad():
        for layer in (-1, 0, -n_layers):
            rows = []
            for t in tokens:
                ids = torch.as_tensor(t, dtype=torch.long)[None]
                hs = bert(ids, output_hidden_states=True).hidden_states  # embeddings + layers
                rows.append(hs[n_layers + layer][0].mean(0).numpy())
            expected[layer] = np.array(rows)
    Z = {}
    for layer in (-1, 0, -n_layers):
        m.config = dataclasses.replace(m.config, emb_layer=layer)
        Z[layer] = m.embed(cells)
        np.testing.assert_allclose(Z[layer], expected[layer], rtol=1e-4, atol=1e-5)
    # the layers differ: the default is not the last layer
    assert np.abs(Z[-1] - Z[0]).max() > 1e-2
    for bad in (1, -n_layers - 1, 0.5):
        m.config = dataclasses.replace(m.config, emb_layer=bad)
        with pytest.raises(ValueError, match="emb_layer"):
            m.embed(cells)
    with pytest.raises(ValueError, match="emb_layer"):
        make_model("Geneformer", profile="smoke", emb_layer=2).fit(train, progress=False)


def test_geneformer_tokens_are_cached_by_content(train):
    from helpers.models import geneformer as gf

    m = make_model("Geneformer", profile="smoke", seed=0, **{**GF_FAST, "sample_budget": 100})
    m.fit(train, progress=False)
    X = hm.check_counts(train)
    first = m._tokens(X)
    assert m._tokens(X.copy()) is first  # same counts, genes and medians: no second pass
    assert not first[0].flags.writeable  # shared between callers: read-only
    other = X.copy()
    other.data[0] += 1
    assert m._tokens(other) is not first
    assert len(gf.TOKEN_CACHE) <= gf.TOKEN_CACHE_SIZE


def _deepspeed_skip_reason() -> str | None:
    import importlib.util

    import torch

    if importlib.util.find_spec("deepspeed") is None:
        return "deepspeed is not installed (pip install deepspeed; it needs CUDA GPUs)"
    if not torch.cuda.is_available():
        return "no CUDA GPU: the DeepSpeed path trains on GPUs only"
    return None


@pytest.mark.skipif(_deepspeed_skip_reason() is not None,
                    reason=str(_deepspeed_skip_reason()))
def test_geneformer_trains_with_deepspeed_like_the_plain_path(train, test_cells):
    """ZeRO-2 with the project's configuration, one process: the loss curve follows the plain
    path's and the embedding keeps the clusters."""
    cfg = {**GF_FAST, "sample_budget": 1600, "eval_steps": 10}
    plain = make_model("Geneformer", profile="smoke", seed=0, **cfg).fit(train, progress=False)
    ds = make_model(
        "Geneformer", profile="smoke", seed=0,
        deepspeed=str(REPO / "configs" / "deepspeed_geneformer.json"), **cfg,
    ).fit(train, progress=False)
    assert ds.steps_trained_ >= 2 * cfg["eval_steps"] and len(ds.history_["val_loss"]) >= 2
    v_ds, v_plain = np.array(ds.history_["val_loss"]), np.array(plain.history_["val_loss"])
    assert np.isfinite(v_ds).all() and v_ds.min() < v_ds[0]
    assert abs(v_ds.min() - v_plain.min()) < 0.1 * v_plain.min()
    Z = ds.embed(test_cells)
    acc = knn_accuracy(ds.embed(train), train.obs["label"], Z, test_cells.obs["label"])
    assert acc > 0.75, acc


# --------------------------------------------------------------------------------------------
# Parameter counts (Table S3) against independent formulas
# --------------------------------------------------------------------------------------------
def scvi_formula(G: int, H: int = 512, L: int = 16) -> int:
    """scVI (1 hidden layer, no covariates): z/l encoders, decoder with 3 gene heads, px_r."""
    fc = lambda n_in: n_in * H + H + 2 * H  # noqa: E731  (linear + batch norm)
    z_encoder = fc(G) + 2 * (H * L + L)
    l_encoder = fc(G) + 2 * (H + 1)
    decoder = fc(L) + 3 * (H * G + G)
    return z_encoder + l_encoder + decoder + G


def bert_formula(G: int, P: int, H: int = 256, I: int = 512, n_layers: int = 3) -> int:  # noqa: E741
    """BertForMaskedLM with tied output embeddings, vocabulary G + 2, P positions."""
    V = G + 2
    embeddings = V * H + P * H + 2 * H + 2 * H
    layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    head = (H * H + H) + 2 * H + V
    return embeddings + n_layers * layer + head


@pytest.mark.parametrize("G", [17, 649, 2000])
def test_parameter_counts_match_independent_formulas(G):
    assert SCVIModel.count_parameters(G, SCVIConfig()) == scvi_formula(G)
    assert GeneformerModel.count_parameters(G, GeneformerConfig()) == bert_formula(G, 512)
    assert GeneformerModel.count_parameters(G, GeneformerConfig(max_len=64)) == bert_formula(G, 64)


def test_parameter_count_table_reproduces_table_s3():
    t = parameter_count_table()
    assert list(t.index) == ["Larry", "MERFISH", "PBMC", "Shendure"]
    assert t.loc["Shendure", "Geneformer"] == 13_480_151  # the authors' logged count
    for dataset in t.index:
        for name in ("SCVI", "Geneformer"):
            got, paper = t.loc[dataset, f"{name} (M)"], t.loc[dataset, f"{name} (M), paper"]
            if (dataset, name) == ("MERFISH", "SCVI"):
                assert got == pytest.approx(1.7) and paper == 1.3  # documented discrepancy
            else:
                assert got == pytest.approx(paper, abs=0.05), (dataset, name)
    assert t.loc["Larry", "SCVI"] == scvi_formula(25_289)
    small = parameter_count_table(
        {"toy": 100}, models=["Geneformer"], profile="quick", compare=False
    )
    quick_len = GeneformerConfig.for_profile("quick").max_len  # position embeddings
    assert small.loc["toy", "Geneformer"] == bert_formula(100, quick_len)
    assert "Geneformer (M), paper" not in small.columns


def test_hyperparameter_tables_follow_the_configs():
    s1 = hyperparameter_table("Geneformer", profile="paper").set_index("parameter")["value"]
    assert s1["Number of layers"] == "3" and s1["Max sequence length"] == "512 tokens"
    assert s1["Activation function"] == "ReLU" and s1["Warmup steps"] == "5000"
    assert s1["Train batch size (per device)"] == "64" and s1["Learning rate"] == "0.001"
    assert s1["Max epochs"].startswith("Dynamic: max(1, floor(1e8 / n_cells))")
    quick = hyperparameter_table("Geneformer", profile="quick").set_index("parameter")["value"]
    assert quick["Max sequence length"] == "16 tokens"
    s2 = hyperparameter_table("SCVI", profile="paper").set_index("parameter")["value"]
    assert s2["Hidden size"] == "512" and s2["Latent dimension"] == "16"
    assert s2["Gene likelihood"].startswith("Zero-inflated") and s2["Adam epsilon"] == "0.01"
    assert s2["Patience"] == "5 epochs" and s2["Min delta"] == "0.01"
    custom = make_model("SCVI", profile="paper", n_hidden=128)
    assert hyperparameter_table(custom).set_index("parameter").loc["Hidden size", "value"] == "128"
    for name in ("PCA", "RandomProjection"):
        assert len(hyperparameter_table(name)) >= 4


# --------------------------------------------------------------------------------------------
# DeepSpeed configuration
# --------------------------------------------------------------------------------------------
def test_deepspeed_config_resolves_from_the_model_config():
    path = REPO / "configs" / "deepspeed_geneformer.json"
    raw = json.loads(path.read_text())
    assert raw["zero_optimization"]["stage"] == 2
    cfg = make_model("Geneformer", profile="paper").config
    ds = resolve_deepspeed_config(
        path, cfg, total_steps=20_000, world_size=4, cuda_available=True, bf16_supported=False
    )
    assert "auto" not in json.dumps(ds)
    assert ds["train_micro_batch_size_per_gpu"] == 64
    assert ds["train_batch_size"] == 64 * 4
    assert ds["optimizer"]["params"]["lr"] == cfg.lr
    assert ds["optimizer"]["params"]["weight_decay"] == 0.001
    assert ds["scheduler"]["params"]["warmup_num_steps"] == 5000
    assert ds["scheduler"]["params"]["total_num_steps"] == 20_000
    assert ds["fp16"]["enabled"] is True and ds["bf16"]["enabled"] is False
    ds_bf16 = resolve_deepspeed_config(
        path, cfg, total_steps=100, cuda_available=True, bf16_supported=True
    )
    assert ds_bf16["bf16"]["enabled"] is True and ds_bf16["fp16"]["enabled"] is False
    assert ds_bf16["scheduler"]["params"]["warmup_num_steps"] == 100  # never above total


# --------------------------------------------------------------------------------------------
# Geneformer training internals: masking and length-grouped batches
# --------------------------------------------------------------------------------------------
def test_bert_masking_proportions_and_pads():
    from helpers.models.geneformer import MASK_TOKEN, PAD_TOKEN, mask_block

    cfg = GeneformerConfig()
    ids = np.random.default_rng(0).integers(2, 1002, (400, 100)).astype(np.int32)
    ids[:, 80:] = PAD_TOKEN
    before = ids.copy()
    masked, pos, targets = mask_block(ids, cfg, 1002, np.random.default_rng(1))
    np.testing.assert_array_equal(ids, before)  # the input is not modified
    chosen = np.zeros(ids.size, bool)
    chosen[pos] = True
    chosen = chosen.reshape(ids.shape)
    assert np.all(np.diff(pos) > 0)  # ascending, no repeats
    assert not chosen[:, 80:].any()  # pads are never masked
    np.testing.assert_array_equal(targets, ids[chosen])  # targets are the original tokens
    np.testing.assert_array_equal(masked[~chosen], ids[~chosen])  # the rest is untouched
    assert chosen[:, :80].mean() == pytest.approx(0.15, abs=0.005)
    to_mask = (masked == MASK_TOKEN) & chosen
    kept = (masked == ids) & chosen
    replaced = chosen & ~to_mask & ~kept
    n = chosen.sum()
    assert to_mask.sum() / n == pytest.approx(0.8, abs=0.02)
    # 10 % random genes (a random draw equal to the original counts as kept: ~0.1 % of them)
    assert replaced.sum() / n == pytest.approx(0.1, abs=0.015)
    assert kept.sum() / n == pytest.approx(0.1, abs=0.015)
    assert (masked[replaced] >= 2).all() and (masked[replaced] < 1002).all()
    # every position is chosen independently: a per-column rate is flat too
    col = chosen[:, :80].mean(axis=0)
    assert col.min() > 0.09 and col.max() < 0.21


def test_bernoulli_positions_are_independent_successes():
    from helpers.models.geneformer import bernoulli_positions

    rng = np.random.default_rng(3)
    for n, p in ((1, 0.5), (7, 0.15), (200_000, 0.15), (1000, 0.999)):
        pos = bernoulli_positions(n, p, rng)
        assert pos.min(initial=0) >= 0 and pos.max(initial=0) < n
        assert np.all(np.diff(pos) > 0)
    pos = bernoulli_positions(200_000, 0.15, rng)
    assert pos.size / 200_000 == pytest.approx(0.15, abs=0.003)
    gaps = np.diff(pos)
    assert gaps.mean() == pytest.approx(1 / 0.15, rel=0.02)  # geometric gaps
    assert (gaps == 1).mean() == pytest.approx(0.15, abs=0.01)
    assert bernoulli_positions(10, 0.0, rng).size == 0
    assert bernoulli_positions(10, 1.0, rng).tolist() == list(range(10))


def _reference_rank_value(X, medians, max_len, target_sum):
    """Per-cell rank-value encoding written plainly (the earlier implementation)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    totals = np.asarray(X.sum(axis=1)).ravel()
    out = []
    for i in range(X.shape[0]):
        row = X[i]
        idx, cnt = row.indices, row.data
        scale = target_sum / totals[i] if totals[i] > 0 else 0.0
        med = medians[idx]
        ok = np.isfinite(med) & (med > 0)
        val = np.where(ok, cnt * scale * (1.0 / np.where(ok, med, 1.0)), 0.0)
        keep = val > 0
        idx, val = idx[keep], val[keep]
        order = np.lexsort((idx, -val))[:max_len]
        out.append((idx[order] + 2).tolist())
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_value_tokens_match_a_plain_per_cell_encoding(seed):
    from helpers.models.geneformer import rank_value_tokens

    rng = np.random.default_rng(seed)
    n_cells, n_genes = 300, 400
    # small integer counts and medians from a short list: many exact ties between genes
    dense = rng.poisson(rng.gamma(0.3, 2.0, (n_cells, n_genes)))
    dense[:5] = 0  # cells without counts
    dense[5, :] = 3  # a cell where every gene ties
    X = sp.csr_matrix(dense.astype(np.float32))
    medians = rng.choice([0.5, 1.0, 2.0, 4.0, np.nan, 0.0], n_genes)
    for max_len in (1, 7, 64, 400):
        tokens, lengths = rank_value_tokens(X, medians, max_len=max_len, target_sum=10.0)
        want = _reference_rank_value(X, medians, max_len, 10.0)
        assert tokens.shape == (n_cells, max_len) and tokens.dtype == np.int32
        assert lengths.tolist() == [len(w) for w in want]
        assert [t[:n].tolist() for t, n in zip(tokens, lengths, strict=True)] == want
        assert all((t[n:] == 0).all() for t, n in zip(tokens, lengths, strict=True))
    # unsorted CSR indices give the same tokens
    shuffled = X.copy()
    for i in range(n_cells):
        lo, hi = shuffled.indptr[i], shuffled.indptr[i + 1]
        perm = rng.permutation(hi - lo) + lo
        shuffled.indices[lo:hi] = shuffled.indices[perm]
        shuffled.data[lo:hi] = shuffled.data[perm]
    shuffled.has_sorted_indices = False
    got, _ = rank_value_tokens(shuffled, medians, max_len=64, target_sum=10.0)
    np.testing.assert_array_equal(got, rank_value_tokens(X, medians, max_len=64,
                                                         target_sum=10.0)[0])


def test_batch_stream_collates_each_cell_once_with_little_padding():
    import torch

    from helpers.models.geneformer import batch_stream, length_grouped_batches

    rng = np.random.default_rng(0)
    n, max_len = 500, 40
    lengths = rng.integers(1, max_len + 1, n)
    tokens = np.zeros((n, max_len), np.int32)
    for i, L in enumerate(lengths):
        tokens[i, :L] = rng.integers(2, 300, L)
    rows = rng.permutation(n)[:450]  # a subset of the matrix, as a train split
    batches = [rows[b] for b in length_grouped_batches(lengths[rows], 16, rng, group=True)]
    cfg = GeneformerConfig()
    seen, n_chosen = [], 0
    out = list(batch_stream(tokens, lengths, batches, cfg, 300, np.random.default_rng(1),
                             ensure_label=True, block=100))
    assert len(out) == len(batches)
    for b, (ids, pos, tgt) in zip(batches, out, strict=True):
        assert ids.shape == (len(b), lengths[b].max())  # padded to its own longest cell
        restored = ids.flatten().long()
        restored[pos] = tgt
        np.testing.assert_array_equal(restored.view(ids.shape).numpy(),
                                      tokens[b, : lengths[b].max()])
        assert pos.dtype == tgt.dtype == torch.int64 and len(pos) >= 1
        seen.extend(b.tolist())
        n_chosen += len(pos)
    assert sorted(seen) == sorted(rows.tolist())
    assert n_chosen / lengths[rows].sum() == pytest.approx(0.15, abs=0.02)


def test_length_grouped_batches_cover_every_cell_once():
    from helpers.models.geneformer import length_grouped_batches

    lengths = np.random.default_rng(0).integers(1, 64, 1000)
    for group in (True, False):
        batches = length_grouped_batches(lengths, 16, np.random.default_rng(1), group=group)
        flat = np.concatenate(batches)
        assert np.array_equal(np.sort(flat), np.arange(1000))
        assert all(len(b) <= 16 for b in batches)
    grouped = length_grouped_batches(lengths, 16, np.random.default_rng(1), group=True)
    spread = np.mean([np.ptp(lengths[b]) for b in grouped if len(b) == 16])
    ungrouped = length_grouped_batches(lengths, 16, np.random.default_rng(1), group=False)
    assert spread < 0.25 * np.mean([np.ptp(lengths[b]) for b in ungrouped if len(b) == 16])
