"""Every task's MI at one profile, as a table to compare before and after a change.

Runs the sweep of every registered task (or ``--tasks``) at ``--profile`` (default ``smoke``)
into a fresh results folder and writes one row per measured value (task, model, level, size,
seed, signal, mi) to ``--out``; ``--compare BEFORE AFTER`` reads two such tables and prints, per
task and model, how many values moved and by how much::

    PYTHONPATH=src NOISESCALING_DATA_MIRROR=$PWD/../shared/data \\
        python benchmarks/smoke_mi.py --out /tmp/after.csv
    python benchmarks/smoke_mi.py --compare /tmp/before.csv /tmp/after.csv
    python benchmarks/smoke_mi.py --released --out /tmp/fits.csv   # the released tables' fits

Rows are matched by what they measure, not by job id (ids change whenever a job's identity
gains a field), so the comparison holds across such changes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

KEYS = ["task", "model", "level", "size", "seed", "signal"]


def measure(tasks: list[str] | None, profile: str, out: Path) -> pd.DataFrame:
    import helpers as hp

    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in tasks or hp.tasks.names():
            t0 = time.perf_counter()
            frame = hp.sweep.run(name, profile=profile, results=Path(tmp) / name,
                                 progress=False)
            extra = ["estimator"] if "estimator" in frame else []
            frames.append(frame[KEYS + extra + ["x", "mi"]])
            print(f"{name}: {len(frame)} values, {time.perf_counter() - t0:.0f} s", flush=True)
    table = pd.concat(frames, ignore_index=True)
    table.to_csv(out, index=False)
    return table


def released(out: Path) -> pd.DataFrame:
    """Every fit of the released tables: the noise law per published curve and the joint law
    per single-cell task and model, one row per fitted parameter."""
    import helpers as hp

    curves = hp.published.noise_curves()
    fits = hp.laws.fit_table(curves, ["modality", "task", "model", "size", "curve"],
                             law="noise", x="x", y="mi")
    rows = []
    for _, f in fits.iterrows():
        for p in ("u_bar", "i_max", "u_bar_err", "i_max_err", "r_squared"):
            rows.append({"kind": "noise", "key": f"{f['task']}|{f['model']}|{f['size']}|"
                         f"{f['curve']}", "param": p, "value": float(f[p])})
    for (task, model), fit in hp.plan.released_fits().items():
        for p, v in fit.params.items():
            rows.append({"kind": "joint", "key": f"{task}|{model}", "param": p,
                         "value": float(v)})
    table = pd.DataFrame(rows)
    table.to_csv(out, index=False)
    print(f"{len(fits)} noise fits, {len(hp.plan.released_fits())} joint fits")
    return table


def compare_released(before: Path, after: Path) -> int:
    a, b = pd.read_csv(before), pd.read_csv(after)
    both = a.merge(b, on=["kind", "key", "param"], suffixes=("_before", "_after"))
    same = (both["value_before"] == both["value_after"]) | (
        both["value_before"].isna() & both["value_after"].isna())
    print(f"{int(same.sum())} of {len(both)} fitted parameters bit-identical "
          f"({len(a)} and {len(b)} in the two tables)")
    return 0


def compare(before: Path, after: Path) -> int:
    a, b = pd.read_csv(before), pd.read_csv(after)
    keys = KEYS + (["estimator"] if "estimator" in a and "estimator" in b else [])
    both = a.merge(b, on=keys, how="outer", suffixes=("_before", "_after"), indicator=True)
    only = both[both["_merge"] != "both"]
    both = both[both["_merge"] == "both"].copy()
    both["diff"] = both["mi_after"] - both["mi_before"]
    summary = both.groupby(["task", "model"]).agg(
        values=("diff", "size"), moved=("diff", lambda d: int((d != 0).sum())),
        largest_abs=("diff", lambda d: float(d.abs().max())), mean=("diff", "mean"),
    )
    pd.set_option("display.width", 140)
    print(summary.to_string())
    print(f"{int((both['diff'] != 0).sum())} of {len(both)} values moved; largest |diff| "
          f"{both['diff'].abs().max():.6f} bit; {len(only)} rows in one table only")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--released", action="store_true",
                        help="the fits of the released tables instead of a sweep")
    args = parser.parse_args()
    if args.compare:
        return (compare_released if args.released else compare)(*args.compare)
    if args.released:
        if args.out is None:
            parser.error("give --out")
        released(args.out)
        return 0
    if args.out is None:
        parser.error("give --out (where to write the table) or --compare BEFORE AFTER")
    measure(args.tasks, args.profile, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
