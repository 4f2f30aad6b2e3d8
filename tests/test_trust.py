"""No silent wrong answers: each test is a repro of a way a user could get a wrong number (or a
hang, or a raw traceback) without warning, and fails on the code before it was fixed."""

from __future__ import annotations

import json
import os
import time
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import apply, data, datasets, plan, plots, probe, sweep, tasks
from helpers.sweep import backends, store

QUIET = dict(profile="smoke", progress=False)


def _cells(n=400, genes=60, seed=0):
    """Counts with two cell types (a real signal in obs 'type' and obsm 'protein'), a random
    label column and a second counts layer."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, n)
    mean = np.where(kind[:, None] == 1, rng.gamma(2, 4, genes), rng.gamma(2, 4, genes)[::-1])
    counts = rng.poisson(mean)
    protein = rng.poisson(np.where(kind[:, None] == 1, [30, 2, 9], [2, 30, 9]))
    obs = pd.DataFrame({"type": np.where(kind == 1, "B", "T"),
                        "random": rng.choice(list("abcd"), n)},
                       index=[f"c{i}" for i in range(n)])
    a = ad.AnnData(sp.csr_matrix(counts.astype(np.float32)), obs=obs,
                   obsm={"protein": protein.astype(float)})
    a.layers["other"] = sp.csr_matrix(rng.poisson(mean[rng.permutation(n)]).astype(np.float32))
    return a


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def _full_depth(result):
    r = result.results
    return float(r.loc[r["level"] == r["level"].max(), "mi"].mean())


# --------------------------------------------------------------------------------------------
# 1. a results folder answers the question asked, or is refused
# --------------------------------------------------------------------------------------------
def test_one_folder_never_answers_another_question(tmp_path):
    cells = _cells()
    kw = dict(models=("PCA",), results=tmp_path, name="mine", **QUIET)
    first = _quiet(apply.noise_scaling, cells, "obs:type", **kw)
    assert _full_depth(first) > 0.5  # the cell type is in the counts
    # another signal, layer, log1p or embedding into the same folder: refused, never reused
    for change in (dict(signal="obs:random"), dict(signal="obs:type", layer="other")):
        with pytest.raises(sweep.ResultsMismatchError, match="overwrite=True"):
            _quiet(apply.noise_scaling, cells, **change, **kw)
    vec = dict(kw, results=tmp_path / "vec")
    _quiet(apply.noise_scaling, cells, "obsm:protein", **vec)
    with pytest.raises(sweep.ResultsMismatchError, match="signal's options"):
        _quiet(apply.noise_scaling, cells, "obsm:protein", log1p=False, **vec)
    # with overwrite=True the second question gets its own answer: random labels carry nothing
    second = _quiet(apply.noise_scaling, cells, "obs:random", overwrite=True, **kw)
    assert _full_depth(second) < 0.2 and set(second.results["signal"]) == {"random"}
    table = pd.read_csv(tmp_path / "results.csv")
    assert set(table["signal"]) == {"random"}


def test_an_edited_embedding_is_measured_again_and_a_new_model_may_join(tmp_path):
    cells = _cells()
    kw = dict(models=("PCA",), results=tmp_path, name="mine", **QUIET)

    def two(counts):
        return np.log1p(counts[:, :2].toarray())

    def five(counts):
        return np.log1p(counts[:, :5].toarray())

    _quiet(apply.noise_scaling, cells, "obs:type", **kw)  # PCA alone first
    one = _quiet(apply.noise_scaling, cells, "obs:type", embed=two, embed_name="mine2", **kw)
    assert set(one.results["model"]) == {"PCA", "mine2"}  # a model joins the folder
    with pytest.raises(sweep.ResultsMismatchError, match="model 'mine2' is defined otherwise"):
        _quiet(apply.noise_scaling, cells, "obs:type", embed=five, embed_name="mine2", **kw)


def test_job_ids_hold_the_task_identity():
    spec = tasks.get("sc_protein")
    other = tasks.TaskSpec(**{**spec.__dict__, "name": "sc_protein_raw", "sources": {
        p: tasks.Source(s.loader, s.signal, {"log1p": False}) for p, s in spec.sources.items()}})
    assert spec.fingerprint() != other.fingerprint()
    job = sweep.Job("sc_protein", "PCA", 1.0, 100, 0, "smoke", task_id=other.fingerprint())
    with pytest.raises(ValueError, match="another version of task"):
        sweep.run_job(job)


# --------------------------------------------------------------------------------------------
# 2. labels are labels at any number of classes, whatever they are called
# --------------------------------------------------------------------------------------------
class _Embedded:
    def __init__(self, x):
        self.x = x

    def embed(self, data):
        return self.x[data.obs["i"].to_numpy()]


def _label_case(n_classes, n=1500, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    centres = rng.standard_normal((n_classes, 3)) * 2
    x = centres[labels] + rng.standard_normal((n, 3))
    return x, labels


@settings(max_examples=4, deadline=None, derandomize=True)
@given(n_classes=st.sampled_from([2, 7, 150, 2000]), seed=st.integers(0, 3))
def test_relabelling_classes_leaves_the_mi_alone(n_classes, seed):
    x, labels = _label_case(n_classes, n=3000 if n_classes > 100 else 1000, seed=seed)
    rng = np.random.default_rng(seed + 100)
    names = rng.permutation(n_classes)  # another naming of the same partition
    a = probe.latent_mi(x, labels, seed=0, y_kind="categorical")
    b = probe.latent_mi(x, names[labels], seed=0, y_kind="categorical")
    c = probe.latent_mi(x, np.array([f"class {v}" for v in names[labels]]), seed=0)
    assert abs(a - b) < 0.02 and abs(a - c) < 0.02


def test_the_sweep_probes_many_labels_as_labels():
    """150 classes, named two ways: the sweep's probe reads them as labels both times (it used
    to read integer codes of more than 100 classes as a continuous code)."""
    x, labels = _label_case(150, n=1500)
    data = ad.AnnData(np.zeros((len(x), 1)), obs=pd.DataFrame(
        {"i": np.arange(len(x))}, index=[str(i) for i in range(len(x))]))
    idx = np.arange(len(x))
    reads = []
    for naming in (labels, (labels * 7919) % 150):
        codes = pd.Categorical(naming).codes.astype(np.int64)
        held = tasks.Holdout("labels", 0, idx, idx[:0], idx, codes)
        reads.append(probe.latent_probe(_Embedded(x), data, held)[0]["mi"])
    assert reads[0] == pytest.approx(reads[1], abs=0.02) and reads[0] > 1.0
    with pytest.raises(ValueError, match="y_kind"):  # ambiguous without the kind
        probe.latent_mi(x, labels)


def test_a_column_of_whole_numbers_must_say_its_kind():
    cells = _cells()
    cells.obs["cluster"] = np.arange(cells.n_obs) % 5
    with pytest.raises(ValueError, match="'obs:cluster:labels' or 'obs:cluster:scalar'"):
        apply.parse_signal(cells, "obs:cluster")
    assert apply.parse_signal(cells, "obs:cluster:labels") == ("cluster", "labels")
    cells.obs["time"] = np.linspace(0, 1, cells.n_obs)
    assert apply.parse_signal(cells, "obs:time") == ("time", "scalar")


# --------------------------------------------------------------------------------------------
# 3, 10. names are checked; the book's tasks and models cannot be replaced
# --------------------------------------------------------------------------------------------
def test_names_are_safe_and_the_books_tasks_stay(tmp_path):
    cells = _cells()
    book_task = tasks.get("sc_protein")
    for name in ("../../escaped", "a/b", "", ".hidden", "sc_protein"):
        with pytest.raises(ValueError, match="name"):
            apply.noise_scaling(cells, "obs:type", models=("PCA",), name=name,
                                results=tmp_path, **QUIET)
    assert tasks.get("sc_protein") is book_task and not (tmp_path.parent / "escaped").exists()
    with pytest.raises(ValueError, match="cannot be replaced"):
        tasks.register(tasks.TaskSpec(**{**book_task.__dict__}), replace=True)
    with pytest.raises(ValueError, match="one of the book's models"):
        apply.noise_scaling(cells, "obs:type", embed=lambda c: c[:, :2].toarray(),
                            embed_name="PCA", results=tmp_path, **QUIET)
    with pytest.raises(ValueError, match="Unknown model"):
        apply.noise_scaling(cells, "obs:type", models=("PCAA",), results=tmp_path, **QUIET)


# --------------------------------------------------------------------------------------------
# 4. locks never hang and never crash
# --------------------------------------------------------------------------------------------
def _lock(s, job, body, age=0.0):
    path = s.lock_path(job)
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_malformed_and_oversized_locks_are_stale_not_crashes(tmp_path):
    s = store.Store(tmp_path)
    job = {"seed": 1}
    _lock(s, job, {"host": store.HOST, "pid": 10**30, "token": "x", "since": 0})
    assert not s.claimed(job) and s.claim(job)  # an impossible pid: no OverflowError
    s.release(job)
    _lock(s, job, "{not json", age=60)
    assert not s.claimed(job) and s.claim(job)
    s.release(job)


def test_a_live_holder_that_stopped_beating_is_taken_over(tmp_path):
    s = store.Store(tmp_path, stale_after=30)
    job = {"seed": 2}
    # a live process of this machine (our parent), but its heartbeat stopped long ago
    _lock(s, job, {"host": store.HOST, "pid": os.getppid(), "token": "x", "since": 0},
          age=3600)
    assert not s.claimed(job) and s.claim(job)


def test_a_waiting_writer_says_who_holds_the_job_and_gives_up(tmp_path):
    s = store.Store(tmp_path)
    job = {"seed": 3}
    _lock(s, job, {"host": "elsewhere", "pid": 4242, "token": "x", "since": time.time()})
    with pytest.warns(UserWarning, match=r"elsewhere:4242 since .*waiting for at most 0.3 s"):
        report = backends.execute([job], lambda j: [{"v": 1}], s, timeout=0.3, poll=0.05,
                                  progress=False)
    assert report.pending == [store.job_id(job)]
    assert "elsewhere:4242" in report.holders[store.job_id(job)]


# --------------------------------------------------------------------------------------------
# 5. the planner stands only on sound fits
# --------------------------------------------------------------------------------------------
def test_the_planner_refuses_failed_and_tampered_fits(tmp_path, capsys):
    fit = plan.fit_released("sc_spatial", "PCA", form="naive")
    good = tmp_path / "fit.json"
    plan.save_fit(fit, good)
    assert plan.main(["--fit", str(good), "--budget", "1e9"]) == 0
    assert "bits" in capsys.readouterr().out
    doc = json.loads(good.read_text())
    cases = {
        "failed": {**doc, "success": False},
        "negative": {**doc, "params": {**doc["params"], "i_inf": -1.0}},
        "infinite": {**doc, "theta": [float("inf")] * len(doc["theta"])},
        "edited": {**doc, "params": {**doc["params"], "u_bar": doc["params"]["u_bar"] * 10}},
    }
    for name, bad in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(SystemExit) as err:
            plan.main(["--fit", str(path), "--budget", "1e9"])
        assert err.value.code == 2, name
        out = capsys.readouterr()
        assert "error:" in out.err and "Traceback" not in out.err and "bits" not in out.out
    with pytest.raises(ValueError, match="did not converge"):
        plan.optimal_design(laws_replace(fit, success=False), 1e9)


def laws_replace(fit, **changes):
    import dataclasses

    return dataclasses.replace(fit, **changes)


# --------------------------------------------------------------------------------------------
# 6. shard values are what the sweep wrote
# --------------------------------------------------------------------------------------------
def _edit_shard(s, job, edit):
    path = s.path(job)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


@pytest.mark.parametrize("edit", [
    lambda d: d["rows"][0].update(mi=True),
    lambda d: d["rows"][0].update(mi="0.2"),
    lambda d: d["rows"][0].update(mi=float("inf")),
    lambda d: d["rows"][0].update(mi=-3.0),
    lambda d: d["rows"][0].update(seed=99),  # a row overriding its job's field
    lambda d: d["rows"][0].update(mi=10**400),
    lambda d: d["rows"][0].update(mi={"a": 1}),
], ids=["bool", "string", "inf", "negative", "override", "huge-int", "nested"])
def test_shard_values_are_validated_on_read(tmp_path, edit):
    s = store.Store(tmp_path, validate=sweep.check_rows)
    job = {"task": "t", "seed": 0}
    s.put(job, [{"mi": 0.5, "x": 10.0}])
    _edit_shard(s, job, edit)
    with pytest.raises(store.CorruptShardError):
        s.frame()
    assert s.check() and s.repair() and not s.has(job)


def test_deeply_nested_and_huge_shards_are_damaged_not_crashes(tmp_path):
    s = store.Store(tmp_path, validate=sweep.check_rows)
    job = {"task": "t", "seed": 0}
    s.put(job, [{"mi": 0.5}])
    path = s.path(job)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(store.CorruptShardError):
        s.frame()
    with pytest.raises(ValueError):
        s.put({"task": "t", "seed": 1}, [{"mi": True}])
    with pytest.raises(ValueError, match="override"):
        s.put({"task": "t", "seed": 2}, [{"mi": 0.1, "seed": 5}])


# --------------------------------------------------------------------------------------------
# 7. damage in one task's files never blocks another's
# --------------------------------------------------------------------------------------------
def test_a_corrupt_shard_of_another_task_does_not_block_this_one(tmp_path):
    cells = _cells()
    kw = dict(models=("PCA",), results=tmp_path, **QUIET)
    _quiet(apply.noise_scaling, cells, "obs:type", name="task_b", **kw)
    b_shard = next(p for p in tmp_path.glob("??/*.json")
                   if json.loads(p.read_text())["job"]["task"] == "task_b")
    b_shard.write_text('{"format": "helpers.sweep.shard/1", "rows": [')  # truncated
    with pytest.warns(UserWarning, match="damaged shard"):
        a = apply.noise_scaling(cells, "obs:type", name="task_a", **kw)
    assert len(a.results) and set(a.results["task"]) == {"task_a"}
    table = pd.read_csv(tmp_path / "results.csv")
    assert set(table["task"]) >= {"task_a", "task_b"}  # the sound shards of B stay in it


# --------------------------------------------------------------------------------------------
# 8. outputs are written whole or not at all
# --------------------------------------------------------------------------------------------
def test_a_figure_is_written_atomically(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    target = tmp_path / "noise_law.png"
    plots.save_figure(fig, target)
    before = target.read_bytes()

    def full_disk(fh, **kw):
        fh.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    fig.savefig = full_disk
    with pytest.raises(OSError, match="No space"):
        plots.save_figure(fig, target)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "noise_law.png"]
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# 9. messages that say what is wrong
# --------------------------------------------------------------------------------------------
def test_signals_that_cannot_be_probed_say_why():
    cells = _cells()
    cells.obsm["clr"] = np.log1p(cells.obsm["protein"]) - 1.5
    with pytest.raises(ValueError, match="negative values.*log1p=False"):
        apply.parse_signal(cells, "obsm:clr")
    assert apply.parse_signal(cells, "obsm:clr", log1p=False) == ("clr", "vector")
    cells.obs["age"] = np.linspace(0.5, 3.5, cells.n_obs)
    cells.obs.loc[cells.obs.index[3], "age"] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        apply.parse_signal(cells, "obs:age")
    cells.obsm["words"] = np.array([["a", "b"]] * cells.n_obs)
    with pytest.raises(ValueError, match="not numbers"):
        apply.parse_signal(cells, "obsm:words")
    cells.obsm["sparse"] = sp.csr_matrix(cells.obsm["protein"])
    assert apply.parse_signal(cells, "obsm:sparse") == ("sparse", "vector")


# --------------------------------------------------------------------------------------------
# 11, 12. command lines: ranges checked, one line and status 2 for a user error
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", ["-5", "0", "nan", "inf", "fast"])
def test_plan_refuses_a_throughput_that_is_not_a_rate(rate, capsys):
    from helpers.sweep.__main__ import main

    with pytest.raises(SystemExit) as err:
        main(["plan", "--task", "sc_protein", "--throughput", f"PCA={rate}"])
    assert err.value.code == 2 and "rate must be a finite number" in capsys.readouterr().err


def test_command_lines_fail_early_in_one_line(tmp_path, capsys):
    from helpers.sweep.__main__ import main as sweep_main

    with pytest.raises(SystemExit) as err:
        apply.main([str(tmp_path / "missing.h5ad"), "--signal", "obs:x", "--out", str(tmp_path)])
    assert err.value.code == 2 and "no such file" in capsys.readouterr().err
    path = tmp_path / "cells.h5ad"
    _cells().write_h5ad(path)
    with pytest.raises(SystemExit) as err:
        apply.main([str(path), "--signal", "obs:type", "--model", "PCAA", "--out",
                    str(tmp_path / "o")])
    assert err.value.code == 2 and "unknown model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:  # a user error inside the run: one line, no traceback
        apply.main([str(path), "--signal", "obs:nothing", "--out", str(tmp_path / "o")])
    text = capsys.readouterr().err
    assert err.value.code == 2 and "no column 'nothing'" in text and "Traceback" not in text
    assert len(text.strip().splitlines()) == 1
    with pytest.raises(ValueError):  # --debug shows the real exception
        apply.main([str(path), "--signal", "obs:nothing", "--out", str(tmp_path / "o"),
                    "--debug"])
    with pytest.raises(SystemExit) as err:
        sweep_main(["run", "--task", "sc_protein", "--model", "NoSuchModel"])
    assert err.value.code == 2 and "has no model" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# 13. manifest paths stay inside the cache and the mirror
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["../outside.csv", "/etc/passwd", "a/../../b", "C:/x"])
def test_manifest_paths_are_confined(tmp_path, path):
    manifest = tmp_path / "m.yml"
    manifest.write_text(f"entries:\n  evil:\n    path: '{path}'\n    url: null\n    sha256: null\n")
    with pytest.raises(ValueError, match="stay inside the cache"):
        data.load_manifest(manifest)


# --------------------------------------------------------------------------------------------
# 14. duplicated samples are caught
# --------------------------------------------------------------------------------------------
def test_duplicated_samples_warn_in_the_probe_and_are_dropped_by_apply(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((600, 8)), rng.standard_normal((600, 3))
    with pytest.warns(UserWarning, match="exact copies"):
        probe.latent_mi(np.vstack([x, x]), np.vstack([y, y]), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe.latent_mi(x, y, seed=0)  # no copies: no warning
        # thinned-out samples that embed alike: a few values, each shared by many samples
        few = rng.integers(0, 30, 1200)
        probe.latent_mi(np.c_[few, few % 7].astype(float), (few % 3).astype(float), seed=0)
    cells = _cells()
    doubled = ad.concat([cells, cells[:150]], index_unique="-")
    with pytest.warns(UserWarning, match="150 cell"):
        result = apply.noise_scaling(doubled, "obs:type", models=("PCA",), results=tmp_path,
                                     **QUIET)
    assert result.results["n_eval"].max() <= round(0.4 * cells.n_obs) + 1
    assert datasets.duplicated_rows(doubled.X).sum() == 150
