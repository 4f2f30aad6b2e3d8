"""Benchmark the sweep backends: serial vs a 2-worker local Dask cluster on CPU-bound jobs.

Each job fits a logistic regression by full-batch gradient descent (numpy, one thread) to data
drawn from the job's seed and noise level, and returns its accuracy and coefficient error: a
stand-in for one model fit of a sweep with the same shape (pure function of the job, a few rows
out).  Both backends run the same jobs into fresh stores in one run; the script checks that
their rows are identical and prints the wall times and the ratio.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/backends.py               # 16 jobs, 2 workers
    PYTHONPATH=src python benchmarks/backends.py --jobs 8 --workers 2 --n 2000

First ``execute(..., backend="dask")`` makes its own ``LocalCluster`` (start-up included, as a
user pays it); then ``--repeat`` interleaved rounds run the jobs serially and on an already
started cluster, so that the machine's changing load hits both alike; the median ratio is
printed.  On a machine with
two free cores the ideal ratio is 2.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per job: the workers give the cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


@dataclass(frozen=True)
class FitJob:
    """One fit: ``n`` samples × ``d`` features, label noise ``level``, data seed ``seed``."""

    n: int
    d: int
    level: float
    seed: int
    steps: int = 300


def fit_job(job: FitJob) -> list[dict]:
    """Fit a logistic regression by gradient descent; rows: accuracy and coefficient error."""
    rng = np.random.default_rng(job.seed)
    w_true = rng.normal(size=job.d) / np.sqrt(job.d)
    x = rng.normal(size=(job.n, job.d))
    logits = x @ w_true * 4.0
    y = (logits + job.level * rng.logistic(size=job.n) > 0).astype(float)
    w = np.zeros(job.d)
    for _ in range(job.steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        w -= 0.5 * (x.T @ (p - y)) / job.n
    cos = float(w @ w_true / (np.linalg.norm(w) * np.linalg.norm(w_true)))
    acc = float(((x @ w > 0) == (y > 0)).mean())
    return [
        {"signal": "accuracy", "value": acc, "n_train": job.n},
        {"signal": "cosine", "value": cos, "n_train": job.n},
    ]


def make_jobs(count: int, n: int, d: int) -> list[FitJob]:
    """``count`` jobs over noise levels and seeds."""
    levels = np.geomspace(0.1, 10, max(count // 2, 1))
    return [FitJob(n, d, float(levels[i % len(levels)]), i) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n", type=int, default=20000, help="samples per fit")
    parser.add_argument("--d", type=int, default=64, help="features per fit")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved serial/dask rounds")
    args = parser.parse_args()

    from distributed import Client

    from helpers.sweep import Store, execute, local_cluster

    jobs = make_jobs(args.jobs, args.n, args.d)
    print(f"{len(jobs)} jobs (logistic regression, n={args.n}, d={args.d}), {os.cpu_count()} "
          f"cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        def fresh(name: str) -> Store:
            return Store(f"{tmp}/{name}")

        t0 = time.perf_counter()
        reference = fresh("own")
        report = execute(jobs, fit_job, reference, backend="dask", n_workers=args.workers,
                         progress=False)
        t_own = time.perf_counter() - t0
        print(f"dask, own LocalCluster of {args.workers} (with start-up): {t_own:7.2f} s  {report}")

        ratios = []
        with local_cluster(args.workers) as cluster, Client(cluster) as client:
            client.wait_for_workers(args.workers)
            for i in range(args.repeat):  # interleaved, so that the machine's load hits both
                serial, parallel = fresh(f"serial{i}"), fresh(f"dask{i}")
                t0 = time.perf_counter()
                execute(jobs, fit_job, serial, progress=False)
                t_serial = time.perf_counter() - t0
                t0 = time.perf_counter()
                execute(jobs, fit_job, parallel, backend="dask", client=client, progress=False)
                t_dask = time.perf_counter() - t0
                pd.testing.assert_frame_equal(serial.frame(jobs), parallel.frame(jobs))
                pd.testing.assert_frame_equal(serial.frame(jobs), reference.frame(jobs))
                ratios.append(t_serial / t_dask)
                print(f"round {i + 1}: serial {t_serial:6.2f} s, dask {args.workers} workers "
                      f"{t_dask:6.2f} s: ratio serial/dask {ratios[-1]:.2f}x")
    print(f"rows identical in every run; median ratio serial/dask {np.median(ratios):.2f}x "
          f"(own cluster incl. start-up vs last serial: {t_serial / t_own:.2f}x); load average "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
