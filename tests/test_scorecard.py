"""The claims registry, its verdicts, and the checklist of the paper's figures and tables."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import helpers as hp
from helpers import scorecard

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


def _labels() -> dict[str, str]:
    """Every figure name and reference target of every chapter → its chapter."""
    out = {}
    for nb in NOTEBOOKS.glob("*.md"):
        text = nb.read_text()
        for label in re.findall(r"^\s*name: (\S+)$", text, flags=re.M):
            out[label] = nb.stem
        for label in re.findall(r'^:name: "?([^"\s]+)"?$', text, flags=re.M):
            out[label] = nb.stem
        for label in re.findall(r"^\(([\w:-]+)\)=$", text, flags=re.M):
            out[label] = nb.stem
    return out


def test_the_registry_has_forty_claims_each_located_and_measured_or_explained():
    claims = scorecard.claims()
    assert len(claims) >= 40
    assert len({c.id for c in claims}) == len(claims)
    for c in claims:
        assert c.where.get("draft") or c.where.get("latest"), c.id
        assert c.released or c.ours or c.untestable, c.id
    # both versions are covered
    assert sum(bool(c.where.get("draft")) for c in claims) >= 10
    assert sum(bool(c.where.get("latest")) for c in claims) >= 30


def test_every_figure_and_table_of_both_versions_has_a_counterpart_in_the_book():
    labels = _labels()
    figs = scorecard.figures()
    items = set(figs["item"])
    for item in [
        "Fig. 1",
        *[f"Fig. 2{p}" for p in "abcdefghi"],
        "Fig. S1",
        "Fig. S2",
        "Box 1",
        *[f"Table S{k}" for k in range(1, 7)],
    ]:
        assert item in items, item
    for draft in [f"Fig. 1{p}" for p in "abcdefgh"]:
        assert draft in set(figs["draft"]), draft
    for r in figs.itertuples():
        assert r.label in labels, f"{r.item}: no figure or target {r.label!r} in the chapters"
        assert labels[r.label] == r.chapter, (r.item, labels[r.label])
    for c in scorecard.claims():
        if c.figure:
            assert c.figure in labels, (c.id, c.figure)


@pytest.mark.parametrize(
    "paper, value, kwargs, expected",
    [
        (1670, 1673, {"rel": 0.01}, "reproduced"),
        (1670, 3964, {"rel": 0.01}, "differs"),
        (0.913, 0.93, {"abs_": 0.01, "se": 0.01}, "within scatter"),
        (0.913, 0.95, {"abs_": 0.01, "se": 0.008}, "differs"),
        ((2.5, 12.8), (2.58, 12.8), {"rel": 0.05}, "reproduced"),
        ((0.6, 1.1), (0.4, 1.1), {"rel": 0.1}, "differs"),
        (1000, 879.0, {"kind": "at_most"}, "reproduced"),
        (1000, 2600.0, {"kind": "at_most"}, "differs"),
        (0.95, 0.98, {"kind": "at_least"}, "reproduced"),
        (True, False, {}, "differs"),
        (True, np.bool_(True), {}, "reproduced"),
        (5, None, {}, "not testable here"),
        (None, 0.9, {}, "not testable here"),
        (5, float("nan"), {}, "not testable here"),
    ],
)
def test_verdict(paper, value, kwargs, expected):
    assert scorecard.verdict(paper, value, **kwargs) == expected


def test_an_unknown_measure_or_an_unexplained_claim_is_refused():
    with pytest.raises(ValueError, match="unknown measure"):
        scorecard.Claim(id="x", claim="c", where={"latest": "Abstract"}, topic="t", released="nope")
    with pytest.raises(ValueError, match="what would test it"):
        scorecard.Claim(id="x", claim="c", where={"latest": "Abstract"}, topic="t")
    with pytest.raises(ValueError, match="neither version"):
        scorecard.Claim(id="x", claim="c", where={}, topic="t", untestable="because")


@pytest.fixture(scope="module")
def card(released):
    return scorecard.score(
        profile="quick", released=released, ours=scorecard.Ours("quick", results="/nonexistent")
    )


def test_every_claim_gets_a_verdict_and_a_reason(card):
    assert set(card["verdict"]) <= set(scorecard.VERDICTS)
    assert (card["reason"].str.len() > 20).all()
    untestable = card[card["verdict"] == "not testable here"]
    assert untestable["reason"].str.contains("would|needs", case=False, regex=True).all()
    # sorted by verdict
    order = [scorecard.VERDICTS.index(v) for v in card["verdict"]]
    assert order == sorted(order)


def test_the_released_numbers_that_pin_the_text(card):
    """Numbers the book's prose rests on, recomputed from the released tables."""
    by = card.set_index("id")
    assert by.loc["models-fitted", "released"] == "1,673"  # configurations; 3,964 with seeds
    assert by.loc["sc-curves", "released"] == "160"
    assert by.loc["other-curves", "released"] == "33"
    assert by.loc["image-r2-caltech", "released"] == "0.984"
    assert by.loc["image-r2-kidney", "released"] == "0.979"
    assert by.loc["pca-over-geneformer", "verdict"] == "reproduced"
    assert by.loc["imax-gap", "verdict"] == "reproduced"
    # errata: under Table S6's own definition the atlas's depth is not enough for scVI
    assert by.loc["temporal-depth-sufficient", "verdict"] == "differs"
    assert "SCVI 2,815 vs 2,500" in by.loc["temporal-depth-sufficient", "reason"]
    assert by.loc["geneformer-above-umi90", "verdict"] == "differs"
    # our runs absent: said, not invented
    assert "not run at the 'quick' profile" in by.loc["scvi-above-geneformer", "reason"]
    assert by.loc["scvi-above-geneformer", "ours"] == ""


def _rows(task, signal, laws_by_model, depth=2000.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for model, (u_bar, i_max) in laws_by_model.items():
        for level in np.geomspace(1.0, 0.005, 8):
            x = depth * level
            for s in range(2):
                rows.append(
                    {
                        "modality": "cell",
                        "task": task,
                        "dataset": "d",
                        "model": model,
                        "signal": signal,
                        "size": 1000,
                        "level": level,
                        "x": x,
                        "seed": s,
                        "mi": hp.laws.noise_law(x, u_bar, i_max) + rng.normal(0, 0.01),
                        "profile": "quick",
                        "probe_version": hp.probe.VERSION,
                    }
                )
    return pd.DataFrame(rows)


def test_our_runs_are_read_from_the_results_folders_and_fitted(tmp_path, released):
    laws = {"PCA": (800.0, 2.0), "SCVI": (200.0, 3.0), "Geneformer": (100.0, 2.5)}
    folder = tmp_path / "sc_protein"
    folder.mkdir()
    rows = _rows("sc_protein", "protein_counts", laws)
    other = rows.assign(profile="smoke", mi=0.0)  # another profile in the same folder: ignored
    pd.concat([rows, other]).to_csv(folder / "results.csv", index=False)
    ours = scorecard.Ours("quick", results=tmp_path)
    assert ours.missing(["sc_protein", "sc_clonal"]) == ["sc_clonal"]
    fits = ours.fig2_fits.set_index("model")
    assert set(ours.fig2_fits["task"]) == {"Protein MI"}
    for model, (u_bar, i_max) in laws.items():
        assert fits.loc[model, "u_bar"] == pytest.approx(u_bar, rel=0.1)
        assert fits.loc[model, "i_max"] == pytest.approx(i_max, abs=0.05)
    by = scorecard.score(profile="quick", ours=ours, released=released).set_index("id")
    assert by.loc["geneformer-most-robust", "ours_verdict"] == "reproduced"
    assert by.loc["scvi-above-geneformer", "ours_verdict"] == "reproduced"
    assert by.loc["nonlinear-more-robust", "ours_verdict"] == "reproduced"
    assert float(by.loc["geneformer-ubar-1000", "ours"]) == pytest.approx(100, rel=0.1)
    assert by.loc["geneformer-ubar-1000", "ours_verdict"] == "reproduced"
    s6 = ours.umi90_table().set_index("model")
    assert s6.loc["PCA", "actual"] == pytest.approx(2000.0)
    assert s6.loc["PCA", "umi90"] == pytest.approx(
        hp.laws.umi90(*fits.loc["PCA", ["u_bar", "i_max"]]), rel=1e-9
    )


def test_the_markdown_links_every_claim_to_its_figure(card):
    md = scorecard.markdown(card)
    assert md.count("\n- ") == len(card) - 1 or md.count("- *") == len(card)
    assert "{ref}`Fig. 2f <fig-2f-bars>`" in md
    for v in scorecard.VERDICTS:
        if (card["verdict"] == v).any():
            assert f"**{v.capitalize()}**" in md
