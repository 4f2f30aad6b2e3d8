"""One chapter's grid, serially and on local Dask workers, in one run.

Runs every job of a task's sweep (default: ``sc_temporal`` at ``quick``, all four models) twice
into fresh results folders — once in this process (``backend="serial"``), once on a
``LocalCluster`` of ``--workers`` single-threaded worker processes — and prints both wall times,
their ratio, and whether the two runs measured exactly the same rows.

    PYTHONPATH=src NOISESCALING_DATA_MIRROR=../shared/data python benchmarks/sweep.py
    PYTHONPATH=src python benchmarks/sweep.py --task sc_protein --profile smoke --models PCA SCVI

The workers each run one job at a time with one torch thread (the models' setting at smoke and
quick), so on a machine with ``W`` free cores the ideal ratio is about ``min(W, workers)`` when
the serial run is held to one thread too (``OMP_NUM_THREADS=1``); with more BLAS threads the
serial run already uses several cores for its numpy work.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="sc_temporal")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import distributed

    import helpers as hp

    spec = hp.tasks.get(args.task)
    spec.load(args.profile)  # load once, outside both timings
    n_jobs = len(hp.sweep.jobs(spec, profile=args.profile, models=args.models))
    print(f"{args.task} at {args.profile}: {n_jobs} jobs")
    measured = ["task", "model", "level", "size", "seed", "x", "mi"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        serial = hp.sweep.run(spec, profile=args.profile, models=args.models,
                              results=Path(tmp) / "serial", progress=False)
        t_serial = time.perf_counter() - t0
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                      processes=True, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            t0 = time.perf_counter()
            dask = hp.sweep.run(spec, profile=args.profile, models=args.models, backend="dask",
                                client=client, results=Path(tmp) / "dask", progress=False)
            t_dask = time.perf_counter() - t0
    same = serial[measured].equals(dask[measured])
    keys = ["task", "model", "level", "size", "seed", "signal"]
    both = serial.merge(dask, on=keys, suffixes=("_serial", "_dask"))
    both["abs_diff"] = (both["mi_serial"] - both["mi_dask"]).abs()
    print("largest |MI serial - MI dask| per model (bits):")
    print(both.groupby("model")["abs_diff"].max().to_string())
    print(pd.Series({
        "serial (s)": round(t_serial, 1),
        f"dask, {args.workers} workers (s)": round(t_dask, 1),
        "speed-up": round(t_serial / t_dask, 2),
        "identical rows": same,
    }).to_string())


if __name__ == "__main__":
    main()
