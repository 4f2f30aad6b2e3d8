"""helpers.sweep.shown_path: chapters never print the absolute path of the machine."""

from __future__ import annotations

from pathlib import Path

from helpers import sweep


def test_repo_paths_are_relative(monkeypatch):
    monkeypatch.delenv(sweep.RESULTS_ENV, raising=False)
    out = sweep.results_dir("sc_protein", create=False)
    assert out.is_absolute()
    assert sweep.shown_path(out) == "results/sc_protein"
    assert sweep.shown_path(Path(__file__)) == "tests/test_shown_path.py"


def test_results_env_is_named_not_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv(sweep.RESULTS_ENV, str(tmp_path / "runs"))
    out = sweep.results_dir("sc_clonal")
    shown = sweep.shown_path(out)
    assert shown == "$NOISESCALING_RESULTS/sc_clonal"
    assert str(tmp_path) not in shown
    assert sweep.shown_path(tmp_path / "runs") == "$NOISESCALING_RESULTS"


def test_elsewhere_only_the_last_part(tmp_path):
    shown = sweep.shown_path(tmp_path / "elsewhere" / "table.csv")
    assert shown == "…/table.csv"
    assert str(tmp_path) not in shown
