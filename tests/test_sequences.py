"""Sequences: substitution noise, the spike datasets, and the ESM2 models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers import data as hd
from helpers.datasets.sequences import (
    SequenceData,
    load_gisaid,
    months_since_2020,
    read_fasta,
    split_train_test,
    translate,
)
from helpers.noise.sequences import (
    AMINO_ACIDS,
    corrupt,
    levels,
    rates_for_x,
    substitute,
    substitution_grid,
    substitution_x,
    tolerance,
)

SPIKE_START = "MFVFLVLLPLVSSQCVNLTTRTQLPPAYTNSFTRGVYYPDKVFRSSVLHSTQDLFLPFFSNVTWFHAIHVSGTNGTKRFDNPV"


# --------------------------------------------------------------------------------------------
# Substitution
# --------------------------------------------------------------------------------------------
def _changed(before, after) -> np.ndarray:
    a = np.frombuffer("".join(before).encode(), np.uint8)
    b = np.frombuffer("".join(after).encode(), np.uint8)
    return a != b


@pytest.mark.parametrize("rate", [0.003, 0.2, 0.9])
def test_changed_fraction_is_binomial_p_times_19_over_20(rate):
    """Standard residues change with probability p·19/20 (the replacement may be the original):
    z-test of the total over many independent draws."""
    seqs = [SPIKE_START] * 50
    n = len(SPIKE_START) * len(seqs)
    k = 19 / 20
    counts = np.array([_changed(seqs, substitute(seqs, rate, seed=s)).sum() for s in range(40)])
    mean, var = n * rate * k, n * rate * k * (1 - rate * k)
    z = (counts.sum() - 40 * mean) / np.sqrt(40 * var)
    assert abs(z) < 4, (counts.mean(), mean)
    # and not p (a replacement that always differs): that would be far off at these draws
    wrong = n * rate
    z_wrong = (counts.sum() - 40 * wrong) / np.sqrt(40 * n * rate * (1 - rate))
    assert abs(z_wrong) > 4 or rate < 0.01


def test_replacements_uniform_over_alphabet():
    """Selected residues are uniform over the 20 amino acids: chi-square on the letters at
    p = 1 (every position selected), starting from a one-letter sequence."""
    noisy = substitute(["A" * 5000, "W" * 5000], 1.0, seed=3)
    letters = np.frombuffer("".join(noisy).encode(), np.uint8)
    observed = np.array([(letters == ord(c)).sum() for c in AMINO_ACIDS])
    assert observed.sum() == 10_000
    assert stats.chisquare(observed).pvalue > 1e-3
    assert set(map(chr, np.unique(letters))) <= set(AMINO_ACIDS)


def test_same_seed_same_output_and_input_untouched():
    seqs = np.array([SPIKE_START, SPIKE_START[::-1], "MKV"], dtype=object)
    before = seqs.copy()
    a = substitute(seqs, 0.3, seed=7)
    b = substitute(list(seqs), 0.3, seed=7)
    c = substitute(seqs, 0.3, seed=8)
    assert list(a) == list(b)
    assert list(a) != list(c)
    assert list(seqs) == list(before)
    assert [len(s) for s in a] == [len(s) for s in seqs]
    assert list(substitute(seqs, 0.0, seed=1)) == list(seqs)


def test_blocks_do_not_depend_on_batch_beyond_their_own():
    """A block of 256 sequences substitutes the same whatever follows it."""
    seqs = [SPIKE_START] * 300
    full = substitute(seqs, 0.2, seed=5)
    head = substitute(seqs[:256], 0.2, seed=5)
    assert list(full[:256]) == list(head)


def test_gaps_and_ambiguous_letters():
    """'all' (the authors): X, '-', '*' are selected like residues and always become a standard
    amino acid (changed with probability p); 'alphabet': they are never touched."""
    seq = ["X-*" * 2000]
    rate = 0.4
    hits = np.array([_changed(seq, substitute(seq, rate, seed=s)).sum() for s in range(20)])
    n = 6000 * 20
    z = (hits.sum() - n * rate) / np.sqrt(n * rate * (1 - rate))
    assert abs(z) < 4
    out = substitute(seq, 1.0, seed=0)[0]
    assert set(out) <= set(AMINO_ACIDS)
    kept = substitute(["AX-*C" * 400], 1.0, seed=0, positions="alphabet")[0]
    assert kept[1::5] == "X" * 400 and kept[2::5] == "-" * 400 and kept[3::5] == "*" * 400
    assert set(kept[0::5]) <= set(AMINO_ACIDS) and len(set(kept[0::5])) > 10


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((["MKV"], 1.5), ValueError, r"rate must be in \[0, 1\]"),
        ((["MKV"], "0.1"), TypeError, "rate must be a number"),
        (("MKV", 0.1), TypeError, "not one string"),
        ((["MKv"], 0.1), ValueError, "sequence 0 holds 'v'"),
        ((["MK", "MÄ"], 0.1), ValueError, "sequence 1 holds 'Ä'"),
        (([b"MKV"], 0.1), TypeError, "not a str"),
    ],
)
def test_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        substitute(*args, seed=0)
    with pytest.raises(ValueError, match="positions"):
        substitute(["MKV"], 0.1, seed=0, positions="gaps")


def test_x_axis_and_grid():
    assert substitution_x(0.5) == 1.0
    assert substitution_x(0.0) == np.inf
    np.testing.assert_allclose(substitution_x(rates_for_x([0.01, 3.0, 1e6])), [0.01, 3.0, 1e6])
    grid = substitution_grid()
    # the authors' ten levels (submit_all_gisaid_jobs.sh), highest rate first
    np.testing.assert_allclose(
        grid.round(6),
        [0.999001, 0.990099, 0.909091, 0.5, 0.090909, 0.009901, 0.000999, 0.0001, 0.00001,
         0.000001],
    )


def test_levels_per_profile():
    from helpers import profiles

    paper = levels(None, profiles.get("paper"))
    assert len(paper) == 10 and paper[0] == pytest.approx(1e-6, rel=1e-5)  # cleanest first
    assert np.all(np.diff(paper) > 0)
    assert len(levels(None, "quick")) == 7 and len(levels(None, "smoke")) == 3
    with pytest.raises(ValueError, match="profile"):
        levels(None, "fast")


def test_tolerance_reads_the_fitted_law():
    """On an exact noise-law curve the fit returns its parameters, and the tolerated rate is
    the inverse of the law at 90 % of I_max."""
    from helpers import laws

    x = np.geomspace(1e-2, 1e6, 15)
    df = pd.DataFrame({"model": "m", "x": x, "mi": laws.noise_law(x, 50.0, 2.0)})
    fits = laws.fit_table(df, "model", law="noise", x="x", y="mi")
    row = tolerance(fits).iloc[0]
    assert row["u_bar"] == pytest.approx(50.0, rel=1e-3)
    x90 = laws.invert_noise_law(1.8, 50.0, 2.0)
    assert row["rate_at_fraction"] == pytest.approx(1 / (1 + x90), rel=1e-3)
    assert row["fraction_at_rate"] == pytest.approx(laws.noise_law(999.0, 50.0, 2.0) / 2.0,
                                                    rel=1e-3)


def test_corrupt_returns_copy_and_x():
    data = SequenceData([SPIKE_START] * 4, obs=pd.DataFrame({"month": [0, 1, 2, 3]}))
    noisy, x = corrupt(data, 0.25, seed=2)
    assert x == pytest.approx(3.0)
    assert isinstance(noisy, SequenceData) and len(noisy) == 4
    assert list(data.sequences) == [SPIKE_START] * 4
    assert noisy.obs["month"].tolist() == [0, 1, 2, 3]
    assert any(s != SPIKE_START for s in noisy.sequences)
    with pytest.raises(TypeError, match="SequenceData"):
        corrupt([SPIKE_START], 0.1, seed=0)


# --------------------------------------------------------------------------------------------
# Containers, FASTA, translation, GISAID
# --------------------------------------------------------------------------------------------
def test_sequence_data_container():
    data = SequenceData(["MA", "MB", "MC"], obs=pd.DataFrame({"month": [5, 6, 7]}))
    sub = data[np.array([2, 0])]
    assert list(sub.sequences) == ["MC", "MA"] and sub.obs["month"].tolist() == [7, 5]
    assert len(data[np.array([True, False, True])]) == 2
    copy = data.copy()
    copy.sequences[0] = "XX"
    copy.obs.loc[0, "month"] = -1
    assert data.sequences[0] == "MA" and data.obs["month"].iloc[0] == 5
    with pytest.raises(ValueError, match="obs has 2 rows for 3"):
        SequenceData(["A", "B", "C"], obs=pd.DataFrame({"m": [1, 2]}))
    with pytest.raises(IndexError):
        data[np.array([0.5])]


def test_translate_standard_code():
    # all 64 codons in TCAG order give the standard table
    bases = "TCAG"
    codons = "".join(a + b + c for a in bases for b in bases for c in bases)
    assert translate(codons) == "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
    assert translate("ATGNNNGCYtgg-AA") == "MXXWX"
    assert translate("ATGAA") == "M"


def test_months_and_split():
    assert months_since_2020(["2020-01-15", "2019-12-31", "2021-02-01", "2020-00-01",
                              "2020-02-00", "?"]).tolist() == [0, -1, 13, -9999, -9999, -9999]
    labels = split_train_test(100)
    assert (labels == "test").sum() == 25
    assert list(labels) == list(split_train_test(100))


def _write_gisaid(path: Path, months: list[str]) -> None:
    lines = []
    for i, date in enumerate(months):
        header = f">Spike|hCoV-19/X/{i}/2020|{date}|EPI_ISL_{i}|Original|x|Human"
        lines += [header, "MFVF" + "A" * i]
    path.write_text("\n".join(lines) + "\n")


def test_gisaid_cap_per_month_and_split(tmp_path):
    fasta = tmp_path / "spikeprot.fasta"
    dates = ["2020-03-01"] * 7 + ["2021-01-05"] * 3 + ["2020-03-00", "2020", "2019-12-30"]
    _write_gisaid(fasta, dates)
    data = load_gisaid(fasta, max_per_month=5, test_fraction=0.25)
    # first 5 of March 2020 (file order), all 3 of January 2021, the December 2019 one
    assert data.obs["month"].tolist() == [2] * 5 + [12] * 3 + [-1]
    assert list(data.sequences[:5]) == ["MFVF" + "A" * i for i in range(5)]
    assert (data.obs["split"] == "test").sum() == 3
    assert data.uns["n_months"] == 3


def test_gisaid_with_metadata(tmp_path):
    fasta = tmp_path / "spike.fasta"
    fasta.write_text(">hCoV-19/A/1/2020\nMFVF\n>hCoV-19/A/2/2020\nMFVL\n>hCoV-19/A/3/2020\nMFVK\n")
    meta = tmp_path / "metadata.tsv"
    meta.write_text("Virus name\tCollection date\nhCoV-19/A/1/2020\t2020-04-02\n"
                    "hCoV-19/A/2/2020\t2022-01-10\nhCoV-19/A/3/2020\t2022-01\n")
    data = load_gisaid(fasta, meta)
    assert data.obs["month"].tolist() == [3, 24]


def test_gisaid_missing_names_what_to_supply(tmp_path, monkeypatch):
    monkeypatch.setenv(hd.MIRROR_ENV, str(tmp_path / "empty-mirror"))
    monkeypatch.setenv(hd.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=r"spikeprot.*full/gisaid/spike_sequences\.fasta"):
        load_gisaid()
    bad = tmp_path / "nodates.fasta"
    bad.write_text(">a|b\nMFV\n")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        load_gisaid(bad)


def test_read_fasta(tmp_path):
    path = tmp_path / "x.fasta"
    path.write_text(">one desc\nacg\nTT\n\n>two\nNN\n")
    assert read_fasta(path) == {"one desc": "ACGTT", "two": "NN"}
    path.write_text("ACGT\n>a\nA\n")
    with pytest.raises(ValueError, match="not FASTA"):
        read_fasta(path)


@pytest.mark.skipif(not os.environ.get(hd.MIRROR_ENV), reason="needs the data mirror")
def test_ncov_spike_translation():
    from helpers.datasets.sequences import load_ncov_spike

    data = load_ncov_spike()
    ref = data.sequences[data.obs["strain"].to_numpy() == "Wuhan/Hu-1/2019"][0]
    # the reference spike (UniProt P0DTC2): 1,273 residues, known start, end and D614
    assert len(ref) == 1273 and ref.startswith(SPIKE_START) and ref.endswith("VKLHYT")
    assert ref[613] == "D"
    assert set(data.obs["lineage"]) <= {"D614", "G614", ""}
    assert {len(s) for s in data.sequences} == {1273}
    assert data.uns["filtered"]["S not found"] <= 2
    s1 = load_ncov_spike(residues=(1, 685))
    assert {len(s) for s in s1.sequences} == {685}


# --------------------------------------------------------------------------------------------
# ESM2
# --------------------------------------------------------------------------------------------
def test_tokenize_matches_the_esm2_tokenizer(tmp_path):
    from transformers import EsmTokenizer

    from helpers.models.esm2 import ESM2_VOCAB, tokenize

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(ESM2_VOCAB) + "\n")
    tok = EsmTokenizer(vocab_file=str(vocab))
    seqs = [SPIKE_START, "MKX-*BZ.", "ACDEFGHIKLMNPQRSTVWYUO"]
    for s in seqs:
        assert tokenize([s])[0].tolist() == tok(s)["input_ids"]
    trunc = tok(SPIKE_START, truncation=True, max_length=12)["input_ids"]
    assert tokenize([SPIKE_START], max_length=12)[0].tolist() == trunc


def test_paper_sizes_parameter_counts():
    """The paper's three sizes from their configurations (meta device: no weights).

    The released checkpoints also carry an unused absolute position table (1,026 x hidden;
    current ``transformers`` drops it on load, ``_keys_to_ignore_on_load_unexpected``); with it
    the counts are the 7.8 M / 34 M / 148.8 M that HuggingFace reports and the paper quotes as
    7.8 M, 35 M and 148 M."""
    from helpers.models.esm2 import ESM2_SIZES, PAPER_PARAMETERS, ESM2Config, ESM2Model

    counts = {s: ESM2Model.count_parameters(ESM2Config.for_profile("paper", size=s))
              for s in ESM2_SIZES}
    assert counts == {"8M": 7_512_474, "35M": 33_501_394, "150M": 148_140_154}
    with_table = {s: n + 1026 * ESM2_SIZES[s][2] for s, n in counts.items()}
    assert with_table["8M"] == 7_840_794
    for size, n in with_table.items():
        assert abs(n / PAPER_PARAMETERS[size] - 1) < 0.03, (size, n)


def test_profiles_and_registry():
    from helpers.models import SEQUENCE_MODEL_NAMES, make_model

    for name in SEQUENCE_MODEL_NAMES:
        paper = make_model(name, profile="paper", seed=2)
        assert paper.name == name and paper.config.seed == 2
        assert (paper.config.lr, paper.config.batch_size, paper.config.epochs) == (1e-4, 8, 1)
        assert paper.config.max_length == 1024 and paper.config.mask_probability == 0.15
        assert paper.config.checkpoint.startswith("esm2_t")
        quick = make_model(name, profile="quick")
        assert quick.config.checkpoint is None
    assert make_model("ESM2-8M", profile="quick", epochs=2).config.epochs == 2
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        make_model("ESM2-8M", epoch=2)


def _tiny_sequences(n=24, seed=0):
    rng = np.random.default_rng(seed)
    base = np.array(list(SPIKE_START[:40]))
    seqs, labels = [], []
    for i in range(n):
        s = base.copy()
        s[20] = "D" if i % 2 else "G"
        s[rng.integers(0, 40)] = rng.choice(list(AMINO_ACIDS))
        seqs.append("".join(s))
        labels.append(i % 2)
    return SequenceData(seqs, obs=pd.DataFrame({"label": labels}))


def test_fit_embed_smoke_and_history():
    from helpers.models import make_model

    data = _tiny_sequences()
    model = make_model("ESM2-35M", profile="smoke", seed=1)
    with pytest.raises(AttributeError, match="not fitted"):
        model.embed(data)
    model.fit(data[np.arange(16)], val=data[np.arange(16, 24)], progress=False)
    Z = model.embed(data)
    assert Z.shape == (24, model.config.hidden_size) and np.isfinite(Z).all()
    assert model.history_["step"][-1] == model.steps_trained_ > 0
    assert np.isfinite(model.history_["val_loss"]).all()
    # same seed: same embedding
    again = make_model("ESM2-35M", profile="smoke", seed=1).fit(
        data[np.arange(16)], progress=False)
    np.testing.assert_allclose(again.embed(data), Z, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="SequenceData"):
        model.fit(["MKV"])


def test_pretrained_through_the_manifest(tmp_path, monkeypatch):
    """A tiny ESM2 saved with save_pretrained, listed in a manifest, found in a mirror and
    loaded by the model's from_pretrained path: its weights are the saved ones."""
    import torch
    from transformers import EsmForMaskedLM

    from helpers.models import make_model
    from helpers.models.esm2 import ESM2_VOCAB, esm_config

    torch.manual_seed(0)
    tiny = EsmForMaskedLM(esm_config(1, 16, 2, 32))
    folder = tmp_path / "mirror" / "models" / "esm2_tiny"
    tiny.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(ESM2_VOCAB) + "\n")
    entries = {}
    for f in sorted(folder.iterdir()):
        entries[f"esm2/esm2_tiny/{f.name}"] = {
            "path": f"models/esm2_tiny/{f.name}", "url": None, "sha256": hd.sha256sum(f),
            "licence": "MIT", "citation": "test", "description": "tiny ESM2",
        }
    manifest = tmp_path / "manifest.yml"
    import yaml

    manifest.write_text(yaml.safe_dump({"entries": entries}))
    monkeypatch.setenv("NOISESCALING_MANIFEST", str(manifest))
    monkeypatch.setenv(hd.MIRROR_ENV, str(tmp_path / "mirror"))
    monkeypatch.setenv(hd.CACHE_ENV, str(tmp_path / "cache"))
    assert hd.fetch_group("esm2/esm2_tiny/") == folder.resolve()

    model = make_model("ESM2-8M", profile="smoke", checkpoint="esm2_tiny", lr=0.0)
    data = _tiny_sequences(8)
    model.fit(data, progress=False)  # lr 0: the weights stay the loaded ones
    for name, value in tiny.state_dict().items():
        torch.testing.assert_close(model.module_.state_dict()[name], value)
    assert model.embed(data).shape == (8, 16)

    (folder / "vocab.txt").write_text("A\nB\n")
    entries["esm2/esm2_tiny/vocab.txt"]["sha256"] = hd.sha256sum(folder / "vocab.txt")
    manifest.write_text(yaml.safe_dump({"entries": entries}))
    hd.clear_manifest_cache()
    with pytest.raises(ValueError, match="not the ESM2 vocabulary"):
        make_model("ESM2-8M", profile="smoke", checkpoint="esm2_tiny").fit(data, progress=False)


def test_task_registered_and_probe_rows(monkeypatch):
    """The task spec's ingredients, and one job end to end on a tiny stand-in of its data."""
    from helpers import probe, sweep, tasks

    spec = tasks.get("seq_spike")
    assert spec.modality == "sequence" and spec.x_name == "true/error"
    assert spec.source("quick").signal == "lineage" and spec.source("paper").signal == "month"
    data = _tiny_sequences(260)
    data.obs["lineage"] = np.where(data.obs["label"] == 1, "D614", "G614")
    monkeypatch.setattr(tasks, "_load", lambda name, profile: data)
    held = tasks.holdout(spec, data, profile="smoke", seed=0)
    assert held.kind == "labels" and set(held.target) == {0, 1}
    noisy, x = spec.corrupt(data, 0.01, seed=0)
    assert x == pytest.approx(99.0)
    from helpers.models import make_model

    model = make_model("ESM2-8M", profile="smoke").fit(noisy[held.train_pool], progress=False)
    rows = spec.probe(model, noisy, held, seed=0)
    assert rows[0]["signal"] == "lineage" and np.isfinite(rows[0]["mi"])
    assert rows[0]["n_parameters"] == model.n_parameters and rows[0]["embed_seconds"] > 0
    frame = pd.DataFrame([{**rows[0], "model": "ESM2-8M", "level": 0.01, "size": 156, "seed": 0}])
    h = sweep.histories(frame)
    assert list(h["step"]) == model.history_["step"]
    assert probe.latent_probe is not None


def test_manifest_lists_the_three_checkpoints():
    entries = hd.load_manifest()
    for ckpt in ("esm2_t6_8M_UR50D", "esm2_t12_35M_UR50D", "esm2_t30_150M_UR50D"):
        names = {Path(e.path).name for k, e in entries.items() if k.startswith(f"esm2/{ckpt}/")}
        assert {"config.json", "model.safetensors", "vocab.txt"} <= names

