"""Tests for helpers.sweep.store: typed shards, damaged files, orphans, claims, atomic CSV."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.sweep.jobs import Job
from helpers.sweep.store import (
    CorruptShardError,
    Store,
    job_fields,
    job_id,
    remove_orphans,
    write_csv_atomic,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")




def _job(seed: int = 0, level: float = 0.5) -> Job:
    return Job("cells", "PCA", level, 100, seed, "smoke")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _spawn(code: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env)


def _wait_for(predicate, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


# ------------------------------------------------------------------------------------------
# Ids and typed values


def test_job_id_is_stable_typed_and_order_free():
    a = job_id(_job())
    assert a == job_id(_job()) == job_id(dict(reversed(list(job_fields(_job()).items()))))
    assert len(a) == 20 and int(a, 16) >= 0
    assert job_id({"seed": 1}) != job_id({"seed": 1.0}) != job_id({"seed": "1"})
    assert job_id(_job(seed=1)) != a
    # numpy scalars are the plain value they hold
    assert job_id({"seed": np.int64(3), "level": np.float64(0.25)}) == job_id(
        {"seed": 3, "level": 0.25}
    )
    with pytest.raises(TypeError, match="Job field 'x'.*list"):
        job_id({"x": [1, 2]})
    with pytest.raises(TypeError, match="dataclass instance or a mapping"):
        job_id(42)


def test_typed_round_trip(tmp_path):
    store = Store(tmp_path)
    rows_a = [
        {"n": 100, "id": "007", "mi": 1.5, "ok": True, "x": 2.0, "tag": None},
        {"n": None, "id": "010", "mi": float("nan"), "ok": False, "x": 3, "tag": "b"},
    ]
    rows_b = pd.DataFrame({
        "n": pd.array([7], dtype="Int64"), "id": ["0"], "mi": [np.float32(0.25)],
        "ok": [np.bool_(True)], "x": [np.int64(4)], "tag": ["c"],
    })
    store.put(_job(0), rows_a)
    store.put(_job(1, level=1), rows_b)
    frame = store.frame([_job(0), _job(1, level=1), _job(0), _job(9)])  # repeats count once
    assert list(frame.columns) == [
        "task", "model", "level", "size", "seed", "profile", "probe_version", "probe", "task_id",
        "n", "id", "mi",
        "ok", "x", "tag",
    ]
    assert str(frame["n"].dtype) == "Int64"
    assert frame["n"].tolist()[0] == 100 and frame["n"].isna().tolist() == [False, True, False]
    assert frame["id"].tolist() == ["007", "010", "0"]  # strings stay strings
    assert frame["mi"].dtype == np.float64
    np.testing.assert_array_equal(frame["mi"].to_numpy(), [1.5, np.nan, 0.25])
    assert frame["ok"].dtype == bool and frame["ok"].tolist() == [True, False, True]
    assert frame["x"].dtype == np.float64  # a column mixing int and float is float
    assert frame["tag"].tolist() == [None, "b", "c"]
    # job fields: level is 0.5 for one job and the int 1 for the other: float column
    assert frame["level"].tolist() == [0.5, 0.5, 1.0] and frame["level"].dtype == np.float64
    assert frame["size"].dtype == np.int64 and frame["seed"].tolist() == [0, 0, 1]
    # exact float round trip
    store.put(_job(2), [{"v": 0.1 + 0.2, "big": 2**62}])
    again = Store(tmp_path).frame([_job(2)])
    assert again["v"].iloc[0] == 0.1 + 0.2 and again["big"].iloc[0] == 2**62
    # the caller's rows are not modified
    assert rows_a[1]["n"] is None and list(rows_b.columns)[0] == "n"


def test_put_refuses_unstorable_values(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(TypeError, match="Row 0 column 'emb'.*ndarray"):
        store.put(_job(), [{"emb": np.zeros(3)}])
    with pytest.raises(TypeError, match="list of dicts"):
        store.put(_job(), 5)
    assert not store.has(_job()) and store.ids() == set()


def test_put_is_idempotent_and_empty_rows_mark_done(tmp_path):
    store = Store(tmp_path)
    store.put(_job(), [{"mi": 1.0}])
    first = store.path(_job()).read_bytes()
    store.put(_job(), [{"mi": 1.0}])
    store.put(_job(), [{"mi": 9.0}])  # a finished job's shard stands
    assert store.path(_job()).read_bytes() == first
    assert len(store.frame()) == 1 and store.frame()["mi"].tolist() == [1.0]
    assert store.discard(_job()) and not store.has(_job())
    store.put(_job(), [{"mi": 9.0}])
    assert store.frame()["mi"].tolist() == [9.0]
    store.put(_job(5), [])
    assert store.has(_job(5)) and len(store.frame()) == 1 and len(store) == 2
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        f"{job_id(j)}.json" for j in (_job(), _job(5))
    )


@pytest.mark.parametrize("damage", ["empty", "blank", "truncated", "rows", "foreign"])
def test_damaged_shard_is_refused_then_repaired(tmp_path, damage):
    store = Store(tmp_path)
    store.put(_job(0), [{"mi": 1.0}, {"mi": 2.0}])
    store.put(_job(1), [{"mi": 3.0}])
    path = store.path(_job(0))
    text = path.read_text()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "blank":
        path.write_text("\n  \n")
    elif damage == "truncated":
        path.write_text(text[: len(text) - 7])
    elif damage == "rows":  # a row dropped by an editor: the header's count disagrees
        doc = json.loads(text)
        doc["rows"] = doc["rows"][:1]
        path.write_text(json.dumps(doc))
    else:
        path.write_text(json.dumps({"format": "something else"}))
    fresh = Store(tmp_path)
    with pytest.raises(CorruptShardError, match=str(path.name)):
        fresh.frame()
    assert list(fresh.check()) == [str(path)]
    moved = fresh.repair()
    assert len(moved) == 1 and moved[0].parent.name == ".damaged"
    assert not fresh.has(_job(0)) and fresh.frame()["mi"].tolist() == [3.0]
    fresh.put(_job(0), [{"mi": 1.0}, {"mi": 2.0}])  # the job runs again
    assert sorted(fresh.frame()["mi"]) == [1.0, 2.0, 3.0]


def test_put_replaces_a_damaged_shard(tmp_path):
    store = Store(tmp_path)
    store.put(_job(), [{"mi": 1.0}])
    store.path(_job()).write_text('{"format": "helpers.sweep.sh')
    store.put(_job(), [{"mi": 2.0}])
    assert store.frame()["mi"].tolist() == [2.0]


# ------------------------------------------------------------------------------------------
# Orphan temporaries


def test_orphans_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    host = socket.gethostname()
    dead = tmp_path / "ab" / f".abcd.json~{host}~{_dead_pid()}~00ff00ff.tmp"
    dead.parent.mkdir()
    dead.write_text("{half")
    mine = tmp_path / "ab" / f".abce.json~{host}~{os.getpid()}~00ff00fe.tmp"
    mine.write_text("{half")
    remote_old = tmp_path / ".r.csv~elsewhere~12~0000aaaa.tmp"
    remote_old.write_text("x")
    os.utime(remote_old, (time.time() - 7200, time.time() - 7200))
    remote_new = tmp_path / ".r.csv~elsewhere~13~0000aaab.tmp"
    remote_new.write_text("x")
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_text("keep me")
    store = Store(tmp_path)
    assert sorted(p.name for p in store.removed_orphans) == sorted([dead.name, remote_old.name])
    assert mine.exists() and remote_new.exists() and unrelated.exists()
    assert not dead.exists() and not remote_old.exists()


def test_sigkilled_writer_leaves_an_orphan_that_the_next_open_removes(tmp_path):
    """A writer killed in the middle of a shard leaves a temporary; reopening removes it."""
    proc = _spawn(f"""
        import time
        from helpers.sweep import store as st
        def slow(fh):
            fh.write('{{"format": "helpers.sweep.shard/1", "rows": [')
            fh.flush()
            time.sleep(60)
        st.write_atomic({str(tmp_path / "ab" / "x.json")!r}, slow)
    """)
    _wait_for(lambda: any(tmp_path.rglob("*.tmp")))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    orphans = list(tmp_path.rglob("*.tmp"))
    assert len(orphans) == 1 and orphans[0].stat().st_size > 0
    store = Store(tmp_path)
    assert store.removed_orphans == orphans
    assert not list(tmp_path.rglob("*.tmp")) and store.ids() == set()


def test_write_csv_atomic_cleans_a_killed_writers_temporary(tmp_path):
    target = tmp_path / "r.csv"
    proc = _spawn(f"""
        import time
        from helpers.sweep import store as st
        st.write_atomic({str(target)!r}, lambda fh: (fh.write("a,b\\n1,"), fh.flush(),
                                                     time.sleep(60)))
    """)
    _wait_for(lambda: any(tmp_path.glob(".r.csv~*.tmp")))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list(tmp_path.glob(".r.csv~*.tmp"))) == 1
    write_csv_atomic(pd.DataFrame({"a": [1]}), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]
    assert remove_orphans(tmp_path) == []


# ------------------------------------------------------------------------------------------
# Claims


def test_claims_are_exclusive_and_released(tmp_path):
    a, b = Store(tmp_path), Store(tmp_path)
    assert a.claim(_job()) and not b.claim(_job()) and b.claimed(_job())
    b.release(_job())  # not the holder: nothing happens
    assert a.claimed(_job())
    a.release(_job())
    assert not a.claimed(_job()) and b.claim(_job())
    b.release(_job())


def test_lock_of_a_dead_process_is_broken(tmp_path):
    store = Store(tmp_path)
    lock = store.lock_path(_job())
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "token": "x"}))
    assert not store.claimed(_job())
    assert store.claim(_job()) and json.loads(lock.read_text())["pid"] == os.getpid()
    store.release(_job())
    assert not lock.exists()


def test_remote_lock_is_stale_only_when_not_refreshed(tmp_path):
    store = Store(tmp_path, stale_after=60)
    lock = store.lock_path(_job())
    lock.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "x"}))
    assert not store.claim(_job())  # fresh: its holder's heartbeat keeps it young
    os.utime(lock, (time.time() - 120, time.time() - 120))
    assert store.claim(_job())
    store.release(_job())


def test_results_of_an_earlier_estimator_are_not_reused(tmp_path):
    # the probe's version is part of a job's id: a store filled by an earlier estimator
    # answers "not done" for the same point measured now, and keeps the old shard untouched
    from dataclasses import replace

    from helpers import probe

    now = _job()
    assert now.probe_version == probe.VERSION
    before = replace(now, probe_version="2026.11.01")
    store = Store(tmp_path)
    store.put(before, [{"mi": 1.0}])
    assert store.has(before) and not store.has(now)
    store.put(now, [{"mi": 1.2}])
    assert sorted(store.frame([before, now])["mi"]) == [1.0, 1.2]
