"""Command line of the sweeps: ``python -m helpers.sweep {plan,run} --task NAME ...``.

``plan``
    Print the jobs, training samples seen and estimated hours of a task's grid at a profile.
``run``
    Run a task's missing jobs into its results folder (serially or on a local Dask cluster).
"""

from __future__ import annotations

import argparse
import sys

from .. import profiles, tasks
from .cost import MEASURED_THROUGHPUT, plan
from .run import run


def _throughputs(pairs: list[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            msg = f"--throughput takes MODEL=SAMPLES_PER_SECOND, got {pair!r}"
            raise SystemExit(msg) from None
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.sweep",
        description="Plan or run the sweep of one task (see `hp.tasks.names()`).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_plan = sub.add_parser("plan", help="jobs, samples seen and estimated hours of a grid")
    p_run = sub.add_parser("run", help="run a task's missing jobs into its results folder")
    for p in (p_plan, p_run):
        p.add_argument("--task", required=True, choices=tasks.names(), help="task name")
        p.add_argument("--profile", default="paper", choices=[*profiles.NAMES, *profiles.VARIANTS])
        p.add_argument("--model", action="append", dest="models", help="model (repeatable)")
    p_plan.add_argument(
        "--throughput", action="append", default=[], metavar="MODEL=SAMPLES_PER_S",
        help="training throughput per model (default: the H200 measurements)",
    )
    p_plan.add_argument("--n-samples", type=int, help="dataset size, if not loadable here")
    p_run.add_argument("--backend", default="serial", choices=["serial", "dask"])
    p_run.add_argument("--results", help="results folder (default results/<task>)")
    args = parser.parse_args(argv)
    if args.command == "plan":
        rates = {**MEASURED_THROUGHPUT["nvidia-h200"], **_throughputs(args.throughput)}
        table = plan(args.task, profile=args.profile, models=args.models, throughput=rates,
                     n_samples=args.n_samples)
        print(table.round(1).to_string())
        print(f"total: {int(table['jobs'].sum())} jobs, {table['hours'].sum():.1f} hours "
              "of training (models with a throughput)")
    else:
        frame = run(args.task, profile=args.profile, models=args.models, backend=args.backend,
                    results=args.results)
        print(f"{len(frame)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
