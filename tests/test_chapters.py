"""Every chapter, executed end to end at the smoke profile (what CI runs on each change)."""

from pathlib import Path

import jupytext
import numpy as np
import pandas as pd
import papermill as pm
import pytest

import helpers as hp

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.md"))


def test_every_chapter_is_in_the_table_of_contents():
    toc = (Path(__file__).parents[1] / "_toc.yml").read_text()
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in toc, nb.name


def test_every_chapter_has_one_parameters_cell_with_a_profile():
    for nb in NOTEBOOKS:
        cells = jupytext.read(nb).cells
        tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, nb.name
        assert "profile = " in tagged[0].source, nb.name


def test_every_chapter_round_trips_through_jupytext_with_its_parameters(tmp_path):
    """What a JupyterLab user does: open the text chapter as a notebook, save it, and get the
    same chapter back (the parameters cell tagged, so papermill can still inject values)."""
    for nb in NOTEBOOKS:
        notebook = jupytext.read(nb)
        ipynb = tmp_path / f"{nb.stem}.ipynb"
        jupytext.write(notebook, ipynb)
        back = jupytext.read(ipynb)
        assert [c.source for c in back.cells] == [c.source for c in notebook.cells], nb.name
        tags = [c.metadata.get("tags", []) for c in back.cells]
        assert sum("parameters" in t for t in tags) == 1, nb.name
        assert [c.metadata for c in back.cells] == [c.metadata for c in notebook.cells], nb.name
        again = jupytext.reads(jupytext.writes(back, fmt="md:myst"), fmt="md:myst")
        assert [c.source for c in again.cells] == [c.source for c in notebook.cells], nb.name


@pytest.mark.chapter
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_chapter_runs_at_smoke_profile(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("NOISESCALING_RESULTS", str(tmp_path / "results"))
    source = tmp_path / f"{notebook.stem}.ipynb"
    jupytext.write(jupytext.read(notebook), source)
    pm.execute_notebook(
        str(source),
        str(tmp_path / f"{notebook.stem}-out.ipynb"),
        parameters={"profile": "smoke"},
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    written = list((tmp_path / "results").rglob("*.csv"))
    assert written or notebook.stem == "theory", "a chapter with results writes a tidy table"
    cells = jupytext.read(notebook).cells
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    namespace: dict = {}
    exec(params[0].source, namespace)  # the chapter's defaults: which task it sweeps
    task = namespace.get("task")
    if notebook.stem == "estimators":
        (table,) = (tmp_path / "results").glob(f"{task}_estimators_*epochs/results.csv")
        _check_estimators_outcome(table)
    elif task in hp.tasks.names() and notebook.stem != "scale":
        _check_sweep_outcome(task, tmp_path / "results" / task / "results.csv")


def _check_sweep_outcome(task, table):
    """A task chapter at smoke: one row per job with finite values, and for the learned models
    more information at the cleanest level than at the noisiest."""
    results = pd.read_csv(table)
    jobs = hp.sweep.jobs(task, profile="smoke", models=sorted(set(results["model"])))
    assert len(results) >= len(jobs), f"{len(results)} rows for {len(jobs)} jobs"
    assert np.isfinite(results[["x", "mi"]].to_numpy(dtype=float)).all()
    largest = results[results["size"] == results["size"].max()]
    learned = largest[largest["model"].isin(["PCA", "SCVI"])]
    for model, curve in learned.groupby("model"):
        cleanest = curve.loc[curve["x"].idxmax(), "mi"]
        noisiest = curve.loc[curve["x"].idxmin(), "mi"]
        assert cleanest > noisiest, f"{task}/{model}: MI {cleanest:.3f} <= {noisiest:.3f}"


def _check_estimators_outcome(table):
    """The estimators chapter at smoke: every trained model probed by both estimators (the
    paper's capped), finite values, and PCA's MI by this book's estimator falling with noise."""
    results = pd.read_csv(table)
    per_model = results.groupby(["model", "level"])["estimator"].agg(sorted)
    assert all(e == ["canonical", "paper"] for e in per_model), per_model
    assert results["size"].nunique() == 1  # the noise curve alone: nothing trained twice
    assert np.isfinite(results[["x", "mi"]].to_numpy(dtype=float)).all()
    assert (results.loc[results["estimator"] == "paper", "epochs"] <= 3).all()
    pca = results[(results["model"] == "PCA") & (results["estimator"] == "canonical")]
    cleanest, noisiest = pca.loc[pca["x"].idxmax(), "mi"], pca.loc[pca["x"].idxmin(), "mi"]
    assert cleanest > noisiest, f"PCA: MI {cleanest:.3f} <= {noisiest:.3f}"
