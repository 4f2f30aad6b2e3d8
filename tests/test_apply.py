"""helpers.apply: the noise law of your own AnnData and embedding, from Python and the shell."""

from __future__ import annotations

import subprocess
import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from helpers import apply, probe, sweep, tasks
from helpers import data as hdata


def _task_data(name):
    try:
        return tasks.get(name).load("smoke")
    except hdata.DataUnavailableError as err:
        pytest.skip(f"data not available: {err}")


@pytest.fixture(scope="module")
def cite():
    """A small real CITE-seq dataset: 1,200 PBMCs with 14 protein counts in obsm."""
    return _cite("smoke")


def _cite(profile):
    try:
        a = tasks.get("sc_protein").load(profile)
    except hdata.DataUnavailableError as err:
        pytest.skip(f"data not available: {err}")
    return ad.AnnData(a.X.copy(), obs=a.obs.copy(), var=a.var.copy(),
                      obsm={"protein": a.obsm["protein_counts"].copy()})


@pytest.mark.slow
def test_cite_seq_protein_law_fits_for_pca(tmp_path):
    cite = _cite("quick")  # the 10x PBMC 10k CITE-seq run (6,855 cells, 14 proteins)
    before = cite.X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = apply.noise_scaling(cite, "obsm:protein", models=("PCA",), profile="quick",
                                     results=tmp_path, progress=False)
    fit = result.fits.set_index("model").loc["PCA"]
    assert np.isfinite([fit["u_bar"], fit["i_max"]]).all() and fit["r_squared"] >= 0.9
    assert bool(fit["ok"]), fit["reason"]
    assert fit["umi90"] > fit["umi90_text"] > 0  # I_max + log2 0.95 sits above 0.9 I_max here
    assert (cite.X != before).nnz == 0  # the user's data are untouched
    assert (result.results["mi"] > 0).all() and (tmp_path / "results.csv").is_file()


def test_labels_and_spatial_partners_work(tmp_path):
    larry = _task_data("sc_clonal")
    labelled = ad.AnnData(larry.X.copy(), obs=larry.obs[["day"]].astype(str).copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        by_label = apply.noise_scaling(labelled, "obs:day", models=("PCA",), profile="smoke",
                                       results=tmp_path / "labels", progress=False)
    assert by_label.task.signal_kind() == "labels" and by_label.results["mi"].notna().all()
    osm = _task_data("sc_spatial")
    tissue = ad.AnnData(osm.X.copy(), obsm={"xy": osm.obsm["spatial"].copy()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        by_place = apply.noise_scaling(tissue, "spatial:xy", models=("PCA",), profile="smoke",
                                       results=tmp_path / "spatial", progress=False)
    assert by_place.task.signal_kind() == "partner"
    full = by_place.results[by_place.results["level"] == 1.0]
    assert (full["mi"] > 0.1).all()  # neighbours share information at full depth


def test_your_embedding_is_probed_exactly_like_by_hand(cite, tmp_path):
    def embed(counts):
        return np.log1p(np.asarray(counts[:, :40].todense()))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = apply.noise_scaling(cite, "obsm:protein", models=(), embed=embed,
                                     embed_name="mine", profile="smoke", results=tmp_path,
                                     progress=False)
    row = result.results[(result.results["level"] == 1.0)].sort_values("size").iloc[-1]
    spec = result.task
    data = spec.load("smoke")
    held = tasks.holdout(spec, data, profile="smoke", seed=0)
    noisy, _ = spec.corrupt(data, 1.0, seed=17)
    x = embed(noisy[held.index].X)
    assert probe.latent_mi(x, held.target, seed=0) == row["mi"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: ad.AnnData(a.X.toarray() + 0.5, obsm=a.obsm), "whole numbers"),
        (lambda a: ad.AnnData(np.log1p(a.X.toarray()), obsm=a.obsm), "log-normalised"),
        (lambda a: ad.AnnData(-a.X.toarray(), obsm=a.obsm), "non-negative"),
        (lambda a: ad.AnnData(np.where(a.X.toarray() > 5, np.nan, a.X.toarray()), obsm=a.obsm),
         "finite"),
    ],
)
def test_bad_counts_get_a_clear_error_and_nothing_is_written(cite, tmp_path, change, message):
    bad = change(cite[:300].copy())
    with pytest.raises(ValueError, match=message):
        apply.noise_scaling(bad, "obsm:protein", results=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_bad_signals_and_sizes_get_a_clear_error(cite, tmp_path):
    small = cite[:300].copy()
    small.obs["one"] = "a"
    cases = [
        ("obsm:nope", "obsm has no 'nope'"),
        ("obs:nope", "obs has no column 'nope'"),
        ("obs:one", "single value"),
        ("protein", "must be 'obsm:KEY'"),
    ]
    for signal, message in cases:
        with pytest.raises(ValueError, match=message):
            apply.noise_scaling(small, signal, results=tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="too few"):
        apply.noise_scaling(cite[:150].copy(), "obsm:protein", results=tmp_path / "r")
    with pytest.raises(TypeError, match="embed must be"):
        apply.noise_scaling(small, "obsm:protein", embed=42, results=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_command_line_on_an_h5ad_file(cite, tmp_path):
    path = tmp_path / "cite.h5ad"
    ad.AnnData(sparse.csr_matrix(cite.X), obsm={"protein": cite.obsm["protein"]}).write_h5ad(path)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "helpers.apply", str(path), "--signal", "obsm:protein",
         "--model", "PCA", "--profile", "smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "PCA" in done.stdout
    fits = pd.read_csv(out / "noise_law_fits.csv")
    assert list(fits["model"]) == ["PCA"] and (out / "noise_law.png").is_file()
    assert len(sweep.Store(out).frame()) == len(pd.read_csv(out / "results.csv"))
    helped = subprocess.run([sys.executable, "-m", "helpers.apply", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert "obsm:KEY" in helped.stdout and "--signal" in helped.stdout
