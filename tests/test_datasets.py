"""Tests of helpers.datasets: quick loaders on the real mirror files, pairing, probe targets,
count validation, and the paper-profile loaders on tiny synthetic files with the same layout."""

from __future__ import annotations

import gzip
import os
import shutil
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
import yaml
from sklearn.neighbors import NearestNeighbors

from helpers import data as hdata
from helpers import datasets as ds

# ------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_env(tmp_path_factory):
    """An empty cache, so that files come from the mirror (NOISESCALING_DATA_MIRROR) or a
    verified download, never from a stale cache."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get(hdata.CACHE_ENV):
            mp.setenv(hdata.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
        yield


def _load(loader, **kwargs):
    try:
        return loader(**kwargs)
    except hdata.DataUnavailableError as err:  # offline machine without the mirror
        pytest.skip(f"data not available: {err}")


@pytest.fixture(scope="module")
def pbmc(real_env):
    return _load(ds.load_pbmc10k)


@pytest.fixture(scope="module")
def larry(real_env):
    return _load(ds.load_larry_subset)


@pytest.fixture(scope="module")
def osmfish(real_env):
    return _load(ds.load_osmfish)


@pytest.fixture(scope="module")
def klein(real_env):
    return _load(ds.load_klein2015)


def _assert_raw_counts(adata):
    assert sp.isspmatrix_csr(adata.X) or isinstance(adata.X, sp.csr_array)
    assert adata.X.dtype == np.float32
    values = adata.X.data
    assert values.size > 0
    assert np.all(values == np.round(values))
    assert values.min() >= 1  # explicit zeros removed, no negatives
    assert np.all(np.asarray(adata.X.sum(axis=1)).ravel() > 0)


def _median_umis(adata):
    return float(np.median(np.asarray(adata.X.sum(axis=1)).ravel()))


# ------------------------------------------------------------------------------------------
# Quick-profile loaders on the real files
# ------------------------------------------------------------------------------------------


def test_pbmc10k_shapes_counts_and_orientation(pbmc):
    assert pbmc.shape == (6855, 4000)
    _assert_raw_counts(pbmc)
    assert abs(_median_umis(pbmc) - 660) <= 5  # README: median ~660 UMI/cell
    prot = pbmc.obsm["protein_counts"]
    assert prot.shape == (6855, 14)
    names = list(pbmc.uns["protein_names"])
    assert len(names) == 14 and names[:2] == ["CD127_TotalSeqB", "CD14_TotalSeqB"]
    assert np.all(prot == np.round(prot)) and prot.min() >= 0
    # First cell of the source CSVs (features x cells): CD127 = 7, CD14 = 491.
    assert pbmc.obs_names[0] == "AAACCCAAGATTGTGA-1"
    assert prot[0, 0] == 7 and prot[0, 1] == 491
    assert pbmc.var_names[:3].tolist() == ["AL645608.8", "HES4", "ISG15"]
    assert pbmc.uns["dataset"]["name"] == "pbmc10k"


def test_larry_subset_counts_recovered(larry, real_env):
    assert larry.shape == (781, 2481)
    _assert_raw_counts(larry)
    assert abs(_median_umis(larry) - 980) <= 10  # README: median ~980 UMI/cell
    # Each cell's smallest count is 1, and the counts rescaled to the source's per-cell total
    # reproduce the source's normalised values.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.OldFormatWarning)
        src = ad.read_h5ad(hdata.fetch("larry/cospar_subset"))
    x = larry.X.tocsr()
    row_min = np.minimum.reduceat(x.data, x.indptr[:-1])
    assert np.all(row_min == 1)
    src_x = sp.csr_matrix(src.X)
    scale = np.asarray(src_x.sum(axis=1)).ravel() / np.asarray(x.sum(axis=1)).ravel()
    rebuilt = sp.diags(scale) @ x.astype(np.float64)
    assert abs(rebuilt - src_x).max() < 1e-3 * src_x.max()
    assert (x != 0).sum() == (src_x != 0).sum()


def test_larry_subset_obs_and_clones(larry):
    assert larry.obs["day"].dtype == np.float64
    assert larry.obs["day"].value_counts().to_dict() == {6.0: 431, 4.0: 316, 2.0: 34}
    clones = sp.csr_matrix(larry.obsm["X_clone"])
    assert clones.shape == (781, 339)
    # Every cell of this subset is in exactly one clone; obs["clone"] is its column.
    assert np.all(np.diff(clones.indptr) == 1)
    assert np.array_equal(larry.obs["clone"].to_numpy(), clones.indices)


def test_klein2015_counts_and_days(klein):
    # numbers measured on the tmscc 0.3.0 copy of GSE65525 (1,000 cells x 900 genes)
    assert klein.shape == (1000, 900)
    _assert_raw_counts(klein)
    assert klein.X.max() == 2309
    assert _median_umis(klein) == 5648.5
    assert klein.obs["day"].value_counts().to_dict() == {0.0: 359, 7.0: 292, 4.0: 248, 2.0: 101}
    # labels belong to the right cells: pluripotency falls and Krt18 rises after LIF withdrawal
    means = pd.DataFrame(
        klein[:, ["Dppa5a", "Krt18"]].X.toarray(), columns=["Dppa5a", "Krt18"]
    ).groupby(klein.obs["day"].to_numpy()).mean()
    assert means["Dppa5a"].is_monotonic_decreasing and means.loc[0.0, "Dppa5a"] > 30
    assert means.loc[7.0, "Krt18"] > 50 * means.loc[2.0, "Krt18"]
    assert klein.uns["dataset"]["manifest_keys"] == ["klein2015/tmscc_sdist"]


def test_clonal_pairs_one_early_one_late_per_clone(larry):
    clone = larry.obs["clone"].to_numpy()
    day = larry.obs["day"].to_numpy()
    eligible = np.intersect1d(clone[day < 6], clone[day == 6])
    assert eligible.size == 117
    early, late = ds.clonal_pairs(larry, seed=0)
    assert early.shape == late.shape == (117,)
    assert np.array_equal(clone[early], clone[late])
    assert np.array_equal(np.sort(clone[early]), eligible)  # one pair per eligible clone
    assert set(day[early]) <= {2.0, 4.0} and set(day[late]) == {6.0}
    # Deterministic by seed; another seed picks other cells in clones with several choices.
    e2, l2 = ds.clonal_pairs(larry, seed=0)
    assert np.array_equal(early, e2) and np.array_equal(late, l2)
    e3, l3 = ds.clonal_pairs(larry, seed=1)
    assert np.array_equal(clone[e3], clone[early])
    assert not (np.array_equal(early, e3) and np.array_equal(late, l3))


def test_clonal_pairs_choice_is_uniform():
    # One clone: 2 early cells, 3 late cells; over many seeds each cell is picked evenly.
    obs = pd.DataFrame(
        {"clone": [5] * 5 + [7], "day": [2, 4, 6, 6, 6, 6]}, index=[f"c{i}" for i in range(6)]
    )
    a = ad.AnnData(obs=obs)
    picks_e, picks_l = [], []
    for seed in range(600):
        e, late = ds.clonal_pairs(a, seed=seed)
        assert e.size == 1
        picks_e.append(e[0])
        picks_l.append(late[0])
    freq_e = np.bincount(picks_e, minlength=2)[:2] / 600
    freq_l = np.bincount(picks_l, minlength=5)[2:5] / 600
    assert np.all(np.abs(freq_e - 1 / 2) < 0.07)
    assert np.all(np.abs(freq_l - 1 / 3) < 0.07)


def test_osmfish_cleaning(osmfish, real_env):
    assert osmfish.shape == (5903, 33)
    _assert_raw_counts(osmfish)
    info = osmfish.uns["dataset"]
    assert info["n_empty_removed"] == 41 and info["n_duplicates_removed"] == 527
    assert osmfish.obsm["spatial"].shape == (5903, 2)
    assert {"Region", "ClusterName"} <= set(osmfish.obs.columns)
    assert len(np.unique(osmfish.obsm["spatial"], axis=0)) == osmfish.n_obs
    assert osmfish.obs_names.is_unique
    raw = ds.load_osmfish(drop_duplicates=False)
    assert raw.shape == (6471 - 41, 33)


def test_spatial_neighbour_pairs_real(osmfish):
    xy = osmfish.obsm["spatial"]
    partner = ds.spatial_neighbour_pairs(osmfish, seed=0, k=5)
    n = osmfish.n_obs
    assert partner.shape == (n,)
    assert not np.any(partner == np.arange(n))
    # Independent check with scikit-learn: the partner is within the 5 nearest other cells.
    dist, nbrs = NearestNeighbors(n_neighbors=6).fit(xy).kneighbors(xy)
    d_partner = np.linalg.norm(xy[partner] - xy, axis=1)
    assert np.all(d_partner <= dist[:, 5] * (1 + 1e-12))
    # The rank of the chosen neighbour is uniform over 1..5.
    rank = np.argmax(nbrs[:, 1:] == partner[:, None], axis=1)
    freq = np.bincount(rank, minlength=5) / n
    assert np.all(np.abs(freq - 0.2) < 0.03)
    assert np.array_equal(partner, ds.spatial_neighbour_pairs(osmfish, seed=0, k=5))
    assert not np.array_equal(partner, ds.spatial_neighbour_pairs(osmfish, seed=1, k=5))


def test_spatial_neighbour_pairs_duplicate_positions_never_self():
    xy = np.array([[0.0, 0.0]] * 4 + [[5.0, 5.0], [6.0, 5.0]])
    a = ad.AnnData(obsm={"spatial": xy})
    for seed in range(20):
        p = ds.spatial_neighbour_pairs(a, seed=seed, k=2)
        assert not np.any(p == np.arange(6))
        assert set(p[:4]) <= {0, 1, 2, 3}
    with pytest.raises(ValueError, match="k < n_cells"):
        ds.spatial_neighbour_pairs(a, seed=0, k=6)
    with pytest.raises(ValueError, match="no 'xy'"):
        ds.spatial_neighbour_pairs(a, seed=0, key="xy")


# ------------------------------------------------------------------------------------------
# Probe targets and the task table
# ------------------------------------------------------------------------------------------


def test_auxiliary_signal_vector(pbmc):
    sig = ds.auxiliary_signal(pbmc, "protein_counts")
    assert np.array_equal(sig.index, np.arange(pbmc.n_obs))
    np.testing.assert_allclose(sig.target, np.log1p(pbmc.obsm["protein_counts"]))
    raw = ds.auxiliary_signal(pbmc, "protein_counts", log1p=False, restrict_to=[3, 1])
    assert raw.index.tolist() == [1, 3]
    np.testing.assert_array_equal(raw.target, pbmc.obsm["protein_counts"][[1, 3]])


def test_auxiliary_signal_partner_and_scalar(larry, osmfish):
    sig = ds.auxiliary_signal(larry, "clone", seed=4)
    early, late = ds.clonal_pairs(larry, seed=4)
    assert np.array_equal(sig.index, early) and np.array_equal(sig.target, late)
    subset = np.concatenate([early[:10], late[:10], late[20:30]])
    r = ds.auxiliary_signal(larry, "clone", seed=4, restrict_to=subset)
    assert np.array_equal(r.index, early[:10]) and np.array_equal(r.target, late[:10])

    day = ds.auxiliary_signal(larry, "day")
    np.testing.assert_array_equal(day.target, larry.obs["day"].to_numpy())

    ng = ds.auxiliary_signal(osmfish, "ng_idx", seed=2)
    assert np.array_equal(ng.target, ds.spatial_neighbour_pairs(osmfish, seed=2))
    keep = np.arange(0, osmfish.n_obs, 2)
    r = ds.auxiliary_signal(osmfish, "ng_idx", seed=2, restrict_to=keep)
    assert np.isin(r.index, keep).all() and np.isin(r.target, keep).all()
    assert np.array_equal(r.target, ng.target[r.index])


def test_auxiliary_signal_labels_and_errors():
    obs = pd.DataFrame({"celltype.l3": ["B", "T", "B", "NK"]}, index=list("abcd"))
    a = ad.AnnData(obs=obs)
    sig = ds.auxiliary_signal(a, "celltype.l3")
    assert sig.target.tolist() == [0, 2, 0, 1]  # category codes, alphabetical
    with pytest.raises(ValueError, match="Unknown signal"):
        ds.auxiliary_signal(a, "nonsense")
    with pytest.raises(ValueError, match="no 'day'"):
        ds.auxiliary_signal(a, "day")
    with pytest.raises(ValueError, match="no 'protein_counts'"):
        ds.auxiliary_signal(a, "protein_counts")
    b = ad.AnnData(obs=pd.DataFrame({"day": [2.0, 6.0]}, index=["x", "y"]))
    with pytest.raises(ValueError, match="no 'day' sample left"):
        ds.auxiliary_signal(b, "day", restrict_to=np.array([], dtype=int))


def test_load_dataset_registry(real_env, osmfish):
    a = _load(ds.load_dataset, name="osmfish")
    assert a.uns["dataset"]["name"] == "osmfish" and a.shape == osmfish.shape
    assert set(ds.dataset_names()) >= {"pbmc10k", "larry_subset", "klein2015", "osmfish"}
    with pytest.raises(ValueError, match="Unknown dataset"):
        ds.load_dataset("nonsense")


# ------------------------------------------------------------------------------------------
# Count validation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.array([[1.0, -1.0]]), "non-negative"),
        (np.array([[1.0, np.nan]]), "finite"),
        (np.array([[1.0, np.inf]]), "finite"),
        (np.array([[1.0, 2.5]]), "whole numbers"),
        (np.array([[2.0**24]]), "2\\*\\*24"),
    ],
)
def test_validate_counts_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        ds.validate_counts(bad)
    with pytest.raises(ValueError, match=match):
        ds.validate_counts(sp.csr_matrix(bad))


def test_counts_from_normalised_roundtrip_and_rejects():
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.8, size=(200, 50)).astype(np.float64)
    counts[np.arange(200), rng.integers(0, 50, 200)] = 1  # every cell has a singleton
    counts[7] = 0  # an empty cell stays empty
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    normed = (counts / totals * 1e4).astype(np.float32)  # float32 like the LARRY files
    back = ds.counts_from_normalised(sp.csr_matrix(normed))
    np.testing.assert_array_equal(back.toarray(), counts)
    assert back.dtype == np.float32
    with pytest.raises(ValueError, match="not per-cell linearly normalised"):
        ds.counts_from_normalised(np.log1p(normed))
    with pytest.raises(ValueError, match="non-negative"):
        ds.counts_from_normalised(-normed)


# ------------------------------------------------------------------------------------------
# Paper-profile loaders: clear errors when absent, and synthetic files with the real layout
# ------------------------------------------------------------------------------------------


@pytest.fixture
def empty_env(tmp_path, monkeypatch):
    """A mirror and a cache without any of the large files, and no network."""
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv(hdata.MIRROR_ENV, str(tmp_path / "mirror"))
    monkeypatch.setenv(hdata.CACHE_ENV, str(tmp_path / "cache"))

    def offline(*args, **kwargs):
        raise ConnectionError("no network in this test")

    monkeypatch.setattr(hdata.pooch, "retrieve", offline)
    return tmp_path / "mirror"


PAPER_LOADERS = [
    ds.load_hao2021_pbmc,
    ds.load_larry_full,
    ds.load_merfish_s1r1,
    ds.load_qiu2024_embryo,
]


@pytest.mark.parametrize("loader", PAPER_LOADERS)
def test_paper_loaders_absent_data(loader, empty_env, monkeypatch):
    # Allowed to use unpinned files, the loader tries to download and reports the data absent.
    monkeypatch.setenv(hdata.UNPINNED_ENV, "1")
    with pytest.raises(hdata.DataUnavailableError, match="mirror"):
        loader()
    # By default an unpinned entry is not downloaded unverified: still "unavailable", and why.
    monkeypatch.delenv(hdata.UNPINNED_ENV)
    with pytest.raises(hdata.DataUnavailableError, match="no pinned\nsha256|no pinned sha256"):
        loader()


def _place(mirror: Path, key: str) -> Path:
    path = mirror / hdata.load_manifest()[key].path
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def synthetic_env(empty_env, monkeypatch):
    monkeypatch.setenv(hdata.UNPINNED_ENV, "1")
    return empty_env


def _write_mtx_gz(path: Path, matrix) -> None:
    plain = path.with_suffix("")  # drop .gz
    scipy.io.mmwrite(str(plain), sp.coo_matrix(matrix))
    written = plain if plain.exists() else Path(str(plain) + ".mtx")
    with open(written, "rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    written.unlink()


def test_load_larry_full_synthetic(synthetic_env):
    rng = np.random.default_rng(1)
    n, g = 60, 30
    counts = rng.poisson(1.0, size=(n, g)).astype(np.float64)
    counts[:, 0] = 1  # a singleton in every cell
    normed = counts / counts.sum(axis=1, keepdims=True) * counts.sum(axis=1).mean()
    _write_mtx_gz(
        _place(synthetic_env, "larry/state_fate_invitro_counts"), normed.astype(np.float32)
    )
    clone_of = np.repeat(np.arange(20), 3)  # 20 clones of 3 cells
    clone_of[-3:] = -1  # the last clone's three cells have no clone barcode
    rows = np.flatnonzero(clone_of >= 0)
    clones = sp.coo_matrix((np.ones(rows.size), (rows, clone_of[rows])), shape=(n, 20))
    _write_mtx_gz(_place(synthetic_env, "larry/state_fate_invitro_clones"), clones)
    day = np.tile([2, 4, 6], n // 3)
    meta = pd.DataFrame(
        {
            "Library": "d2_1",
            "Cell barcode": [f"BC{i}" for i in range(n)],
            "Time point": day,
            "Cell type annotation": "undiff",
        }
    )
    with gzip.open(_place(synthetic_env, "larry/state_fate_invitro_metadata"), "wt") as fh:
        meta.to_csv(fh, sep="\t", index=False)
    with gzip.open(_place(synthetic_env, "larry/state_fate_invitro_genes"), "wt") as fh:
        fh.write("\n".join(f"Gene{j}" for j in range(g)) + "\n")

    a = ds.load_larry_full()
    assert a.shape == (n, g)
    np.testing.assert_array_equal(a.X.toarray(), counts)
    assert a.var_names[0] == "Gene0" and a.obs_names[0] == "d2_1:BC0"
    np.testing.assert_array_equal(a.obs["day"], day.astype(float))
    np.testing.assert_array_equal(a.obs["clone"], clone_of)
    early, late = ds.clonal_pairs(a, seed=0)
    assert early.size == 19 and np.array_equal(clone_of[early], clone_of[late])


def test_load_merfish_synthetic(synthetic_env):
    rng = np.random.default_rng(2)
    ids = [f"{10**12 + i}" for i in range(12)]
    genes = ["Gad1", "Slc17a7", "Blank-1", "Pvalb", "Blank-2"]
    counts = pd.DataFrame(
        rng.poisson(3, size=(12, 5)), index=pd.Index(ids, name="cell"), columns=genes
    )
    counts.iloc[4] = 0  # an empty cell is removed
    counts.to_csv(_place(synthetic_env, "vizgen/merfish_s1r1_counts"))
    meta = pd.DataFrame(
        {
            "fov": 0,
            "volume": 1.0,
            "center_x": rng.uniform(0, 100, 12),
            "center_y": rng.uniform(0, 100, 12),
        },
        index=ids,
    )
    meta_path = _place(synthetic_env, "vizgen/merfish_s1r1_metadata")
    meta.iloc[::-1].to_csv(meta_path)  # other row order: aligned by cell id

    a = ds.load_merfish_s1r1()
    keep = [i for i in range(12) if i != 4]
    assert a.var_names.tolist() == ["Gad1", "Slc17a7", "Pvalb"]
    assert a.obs_names.tolist() == [ids[i] for i in keep]
    np.testing.assert_array_equal(
        a.X.toarray(), counts[["Gad1", "Slc17a7", "Pvalb"]].to_numpy()[keep]
    )
    np.testing.assert_allclose(a.obsm["spatial"], meta[["center_x", "center_y"]].to_numpy()[keep])
    assert a.uns["dataset"]["n_empty_removed"] == 1

    meta.iloc[:-1].to_csv(meta_path)  # one cell missing from the metadata
    with pytest.raises(ValueError, match="same cell ids"):
        ds.load_merfish_s1r1()


def test_load_hao2021_synthetic(synthetic_env):
    rng = np.random.default_rng(3)
    n = 40
    genes = ["MT-CO1", "CD3E", "MS4A1", "LYZ"]
    x = rng.poisson([5, 30, 30, 30], size=(n, 4)).astype(np.float32)
    x[0, 0] = 500  # high mitochondrial fraction: filtered
    names = ["CD4-1", "CD4-2", "Notch-1", "Notch-2", "CD8"] + [f"P{i}" for i in range(160)]
    protein = pd.DataFrame(
        rng.poisson(20, size=(n, len(names))).astype(np.float64),
        columns=names,
        index=[f"cell{i}" for i in range(n)],
    )
    obs = pd.DataFrame(
        {"celltype.l2": ["CD4 T"] * n, "celltype.l3": ["CD4 TCM_1"] * n}, index=protein.index
    )
    obs.loc["cell1", "celltype.l2"] = "Doublet"
    src = ad.AnnData(X=sp.csr_matrix(x), obs=obs, var=pd.DataFrame(index=genes))
    src.obsm["protein_counts"] = protein
    src.write_h5ad(_place(synthetic_env, "hao2021/pbmc_cite_seq"))

    a = ds.load_hao2021_pbmc(apply_filters=False)
    pn = list(a.uns["protein_names"])
    assert pn[:4] == ["CD4", "Notch-1", "Notch-2", "CD8"] and len(pn) == 164
    np.testing.assert_array_equal(
        a.obsm["protein_counts"][:, 0], protein["CD4-1"] + protein["CD4-2"]
    )
    assert a.shape == (n, 4) and "celltype.l3" in a.obs
    f = ds.load_hao2021_pbmc()
    assert f.obs_names.tolist() == [f"cell{i}" for i in range(2, n)]  # MT-high, doublet


def test_load_qiu2024_synthetic(synthetic_env):
    x = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0], [4, 0, 0]], dtype=np.float32))
    obs = pd.DataFrame({"day": ["E8.5", "E10.0", "P0"]}, index=["a", "b", "c"])
    path = _place(synthetic_env, "qiu2024/mouse_embryo_atlas")
    ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=["g1", "g2", "g3"])).write_h5ad(path)
    a = ds.load_qiu2024_embryo()
    assert a.isbacked
    np.testing.assert_array_equal(a.obs["author_day"], [8.5, 10.0, 19.0])
    sig = ds.auxiliary_signal(a, "author_day")
    np.testing.assert_array_equal(sig.target, [8.5, 10.0, 19.0])
    np.testing.assert_array_equal(a[[0, 2]].to_memory().X.toarray(), x[[0, 2]].toarray())
    a.file.close()

    ad.AnnData(X=x * 0.5, obs=obs, var=pd.DataFrame(index=["g1", "g2", "g3"])).write_h5ad(path)
    with pytest.raises(ValueError, match="whole numbers"):
        ds.load_qiu2024_embryo()


@pytest.fixture
def unpinned_pbmc(tmp_path, monkeypatch):
    """A manifest whose PBMC 10k entries are unpinned, so that test files can stand in."""
    manifest = yaml.safe_load(hdata.manifest_path().read_text())
    for key in ("pbmc10k/rna", "pbmc10k/protein"):
        manifest["entries"][key]["sha256"] = None
    (tmp_path / "manifest.yml").write_text(yaml.safe_dump(manifest))
    monkeypatch.setenv("NOISESCALING_MANIFEST", str(tmp_path / "manifest.yml"))
    monkeypatch.setenv(hdata.MIRROR_ENV, str(tmp_path / "mirror"))
    monkeypatch.setenv(hdata.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(hdata.UNPINNED_ENV, "1")

    def write(rna: pd.DataFrame, protein: pd.DataFrame) -> None:
        for key, table in (("pbmc10k/rna", rna), ("pbmc10k/protein", protein)):
            dest = tmp_path / "mirror" / manifest["entries"][key]["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(dest)  # features x cells, gzip from the .gz suffix

    return write


def test_pbmc10k_layout_and_barcode_checks(unpinned_pbmc):
    rng = np.random.default_rng(4)
    cells = [f"BC{i}-1" for i in range(8)]
    rna = pd.DataFrame(
        rng.poisson(2, size=(5, 8)).astype(float), columns=cells, index=[f"G{j}" for j in range(5)]
    )
    protein = pd.DataFrame(
        rng.poisson(50, size=(3, 8)).astype(float), columns=cells, index=["CD3", "CD4", "CD8"]
    )
    unpinned_pbmc(rna, protein)
    a = ds.load_pbmc10k()
    np.testing.assert_array_equal(a.X.toarray(), rna.to_numpy().T)
    np.testing.assert_array_equal(a.obsm["protein_counts"], protein.to_numpy().T)
    assert a.obs_names.tolist() == cells and a.var_names.tolist() == list(rna.index)

    swapped = cells[1:2] + cells[:1] + cells[2:]
    unpinned_pbmc(rna, protein[swapped])  # same barcodes, other order
    with pytest.raises(ValueError, match="same cell barcodes in the same order"):
        ds.load_pbmc10k()
    unpinned_pbmc(rna, protein.iloc[:, :-1])  # a cell missing
    with pytest.raises(ValueError, match="1 only in RNA"):
        ds.load_pbmc10k()
    bad = rna.copy()
    bad.iloc[0, 0] = 0.5  # normalised, not raw
    unpinned_pbmc(bad, protein)
    with pytest.raises(ValueError, match="whole numbers"):
        ds.load_pbmc10k()


@pytest.mark.parametrize("per_clone", ["every_early", "any_mate"])
def test_clonal_pairing_variants(per_clone):
    obs = pd.DataFrame(
        {"clone": [0, 0, 0, 1, 1, 2, 3, 3, -1], "day": [2, 4, 6, 4, 6, 6, 2, 2, 6]},
        index=[f"c{i}" for i in range(9)],
    )
    a = ad.AnnData(obs=obs)
    idx, partner = ds.clonal_pairs(a, seed=3, per_clone=per_clone)
    clone = obs["clone"].to_numpy()
    assert (clone[idx] == clone[partner]).all() and (idx != partner).all()
    if per_clone == "every_early":  # every early cell of clones seen early and late, to a late cell
        assert sorted(idx.tolist()) == [0, 1, 3]
        assert set(obs["day"].to_numpy()[partner]) == {6}
    else:  # every cell of a clone with two or more cells
        assert sorted(idx.tolist()) == [0, 1, 2, 3, 4, 6, 7]
    with pytest.raises(ValueError, match="per_clone"):
        ds.clonal_pairs(a, seed=0, per_clone="all")
