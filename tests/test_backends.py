"""Tests for helpers.sweep.backends: resuming after SIGKILL, concurrent writers, Dask = serial."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.sweep import Job, Report, Store, execute, execute_job, job_id

HERE = Path(__file__).resolve().parent
SRC = str(HERE.parent / "src")




JOBS = [
    Job("cells", model, level, size, seed, "smoke")
    for model in ("PCA", "scVI")
    for level in (0.1, 0.5, 1.0)
    for size in (100, 1000)
    for seed in (0, 1)
]  # 24 jobs


def rows_of(job: Job) -> list[dict]:
    """A deterministic job: a small least-squares fit whose data depend on the job."""
    rng = np.random.default_rng([job.seed, job.size, int(job.level * 10), len(job.model)])
    x = rng.normal(size=(job.size, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) * job.level + rng.normal(size=job.size)
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    return [
        {"signal": "first", "mi": float(coef[0]), "n_train": job.size, "tag": f"{job.seed:03d}"},
        {"signal": "second", "mi": float(coef[1]), "n_train": None, "tag": "x"},
    ]


def slow_rows(job: Job) -> list[dict]:
    time.sleep(float(os.environ.get("SWEEP_TEST_DELAY", "0.1")))
    return rows_of(job)


def _sweep_process(folder: Path, delay: float, out: Path | None = None) -> subprocess.Popen:
    code = f"""
        import json
        from helpers.sweep import Store, execute
        from test_backends import JOBS, slow_rows
        report = execute(JOBS, slow_rows, Store({str(folder)!r}), progress=False, poll=0.05)
        if {str(out) if out else None!r}:
            with open({str(out)!r}, "w") as fh:
                json.dump(report.__dict__, fh)
    """
    env = {
        **os.environ, "SWEEP_TEST_DELAY": str(delay),
        "PYTHONPATH": os.pathsep.join([SRC, str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The rows of an uninterrupted serial run."""
    store = Store(tmp_path_factory.mktemp("reference"))
    report = execute(JOBS, rows_of, store, progress=False)
    assert (report.ran, report.skipped, report.rows) == (24, 0, 48)
    return store.frame(JOBS)


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".lock"))]


def test_reference_frame_is_typed(reference):
    assert len(reference) == 48
    assert str(reference["n_train"].dtype) == "Int64" and reference["tag"].iloc[2] == "001"
    assert reference["size"].dtype == np.int64 and reference["level"].dtype == np.float64
    # the fit is real: at level 1 the first coefficient is close to 1
    first = reference[(reference.signal == "first") & (reference.level == 1.0)]
    assert np.allclose(first["mi"], 1.0, atol=0.2)


def test_serial_resumes_and_reports(tmp_path, reference):
    store = Store(tmp_path)
    half = JOBS[::2]
    assert execute(half, rows_of, store, progress=False).ran == 12
    report = execute(JOBS + JOBS[:3], rows_of, store, progress=False)  # duplicates run once
    assert isinstance(report, Report) and report.complete
    assert (report.total, report.ran, report.skipped, report.waited) == (24, 12, 12, 0)
    pd.testing.assert_frame_equal(store.frame(JOBS), reference)
    assert execute(JOBS, rows_of, store, progress=False).ran == 0


def test_errors_raise_or_are_reported(tmp_path):
    def flaky(job):
        if job.seed == 1:
            raise RuntimeError(f"bad seed {job.seed}")
        return rows_of(job)

    store = Store(tmp_path)
    with pytest.raises(RuntimeError, match="bad seed 1"):
        execute(JOBS[:4], flaky, store, progress=False)
    assert store.ids() == {job_id(JOBS[0])}  # the job before the failure is kept
    report = execute(JOBS[:4], flaky, store, progress=False, errors="report")
    assert report.ran == 1 and report.skipped == 1 and not report.complete
    assert set(report.failed) == {job_id(JOBS[1]), job_id(JOBS[3])}
    assert "RuntimeError: bad seed 1" in report.failed[job_id(JOBS[1])]
    assert _leftovers(tmp_path) == []  # locks released after failures too
    with pytest.raises(ValueError, match="backend must be one of"):
        execute(JOBS, rows_of, store, backend="mpi")
    with pytest.raises(TypeError, match="must return rows"):
        execute(JOBS[5:6], lambda job: None, store, progress=False)


def test_damaged_shard_is_moved_aside_and_rerun(tmp_path, reference):
    store = Store(tmp_path)
    execute(JOBS, rows_of, store, progress=False)
    store.path(JOBS[3]).write_text(store.path(JOBS[3]).read_text()[:40])
    with pytest.warns(UserWarning, match="damaged shard"):
        report = execute(JOBS, rows_of, store, progress=False)
    assert report.ran == 1 and report.skipped == 23
    pd.testing.assert_frame_equal(store.frame(JOBS), reference)


def test_sigkill_mid_run_then_rerun_finishes_only_the_missing_jobs(tmp_path, reference):
    store = Store(tmp_path)
    proc = _sweep_process(tmp_path, delay=0.15)
    end = time.monotonic() + 60
    while len(store.ids()) < 6 and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    done = store.ids()
    assert 6 <= len(done) < 24  # killed mid-run
    assert len(list((tmp_path / ".locks").glob("*.lock"))) == 1  # the job it was running

    ran = []
    report = execute(JOBS, lambda job: ran.append(job) or rows_of(job), Store(tmp_path),
                     progress=False)
    assert report.ran == len(ran) == 24 - len(done)
    assert {job_id(j) for j in ran} == {job_id(j) for j in JOBS} - done
    assert report.skipped == len(done)
    pd.testing.assert_frame_equal(Store(tmp_path).frame(JOBS), reference)
    assert _leftovers(tmp_path) == []


def test_two_processes_on_one_folder_store_every_row_once(tmp_path, reference):
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    folder = tmp_path / "results"
    procs = [_sweep_process(folder, delay=0.1, out=out) for out in outs]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    reports = [json.loads(out.read_text()) for out in outs]
    for r in reports:
        assert r["ran"] + r["skipped"] + r["waited"] == 24 and not r["pending"]
    assert sum(r["ran"] for r in reports) == 24  # no job computed twice
    store = Store(folder)
    assert len(store) == 24
    frame = store.frame(JOBS)
    assert not frame.duplicated(["model", "level", "size", "seed", "signal"]).any()
    pd.testing.assert_frame_equal(frame, reference)
    assert _leftovers(folder) == []


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=False, dashboard_address=":0",
        resources={"GPU": 1},
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_gives_exactly_the_serial_rows(tmp_path, reference, client):
    store = Store(tmp_path)
    execute(JOBS[:5], rows_of, store, progress=False)
    report = execute(JOBS, rows_of, store, backend="dask", client=client, progress=False)
    assert (report.ran, report.skipped, report.backend) == (19, 5, "dask")
    pd.testing.assert_frame_equal(store.frame(JOBS), reference)
    assert len(client.scheduler_info()["workers"]) == 2


def test_dask_gpu_resource_runs_one_job_per_worker_at_a_time(tmp_path, client):
    def timed(job):
        from distributed import get_worker

        start = time.monotonic()
        time.sleep(0.05)
        return [{"worker": get_worker().address, "start": start, "end": time.monotonic()}]

    store = Store(tmp_path)
    report = execute(JOBS[:8], timed, store, backend="dask", client=client,
                     resources={"GPU": 1}, progress=False)
    assert report.ran == 8
    frame = store.frame().sort_values("start")
    assert frame["worker"].nunique() == 2  # two threads per worker, one GPU each
    for _, runs in frame.groupby("worker"):
        assert (runs["start"].to_numpy()[1:] >= runs["end"].to_numpy()[:-1]).all()


def test_dask_local_cluster_made_for_the_call(tmp_path, reference):
    store = Store(tmp_path)
    report = execute(JOBS[:4], rows_of, store, backend="dask", n_workers=1, progress=False)
    assert report.ran == 4
    pd.testing.assert_frame_equal(store.frame(JOBS[:4]), reference.iloc[:8])


class Shipped:
    """Stands for data that a job function carries (the task spec of a user's AnnData): counts
    how often this process pickles it."""

    pickled = 0

    def __reduce__(self):
        Shipped.pickled += 1
        return (Shipped, ())


def rows_carrying(job: Job, payload: Shipped) -> list[dict]:
    assert isinstance(payload, Shipped)
    return rows_of(job)


def test_dask_ships_the_job_function_once_not_with_every_job(tmp_path, reference):
    # worker processes: whatever reaches them is pickled here, in the client's process
    Shipped.pickled = 0
    fn = functools.partial(rows_carrying, payload=Shipped())
    report = execute(JOBS[:8], fn, Store(tmp_path), backend="dask", n_workers=2, progress=False)
    assert report.ran == 8
    assert Shipped.pickled == 1  # scattered once (sent with each job: 16 times)
    pd.testing.assert_frame_equal(Store(tmp_path).frame(JOBS[:8]), reference.iloc[:16])


def test_execute_job_skips_a_job_held_by_a_live_process(tmp_path):
    store, other = Store(tmp_path), Store(tmp_path)
    assert other.claim(JOBS[0])
    assert execute_job(JOBS[0], rows_of, store) == ("claimed", 0)
    report = execute(JOBS[:1], rows_of, store, progress=False, poll=0.01, timeout=0.05)
    assert report.pending == [job_id(JOBS[0])] and not report.complete
    other.release(JOBS[0])
    report = execute(JOBS[:1], rows_of, store, progress=False)
    assert report.ran == 1
