"""Every chapter, executed end to end at the smoke profile (what CI runs on each change)."""

from pathlib import Path

import jupytext
import papermill as pm
import pytest

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
