"""Command line of the sweeps: ``python -m helpers.sweep {price,run} --task NAME ...``.

``price`` (or ``plan``, its earlier name)
    Print the jobs, training samples seen and estimated hours of a task's grid at a profile
    (experimental design, cells × depth for a budget, is ``python -m helpers.plan``).
``run``
    Run a task's missing jobs into its results folder (serially or on a local Dask cluster).
"""

from __future__ import annotations

import argparse
import sys

from .. import profiles, tasks
from .._cli import add_debug, guarded, positive_float
from .cost import MEASURED_THROUGHPUT, price
from .run import run


def _throughput(pair: str) -> tuple[str, float]:
    """An argparse type: ``MODEL=SAMPLES_PER_SECOND`` with a finite rate > 0."""
    name, sep, value = pair.partition("=")
    if not sep or not name:
        msg = f"--throughput takes MODEL=SAMPLES_PER_SECOND, got {pair!r}"
        raise argparse.ArgumentTypeError(msg)
    try:
        return name, positive_float(value)
    except argparse.ArgumentTypeError:
        msg = f"--throughput {pair!r}: the rate must be a finite number of samples per second > 0"
        raise argparse.ArgumentTypeError(msg) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.sweep",
        description="Plan or run the sweep of one task (see `hp.tasks.names()`).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_price = sub.add_parser("price", aliases=["plan"],
                            help="jobs, samples seen and estimated hours of a grid")
    p_run = sub.add_parser("run", help="run a task's missing jobs into its results folder")
    for p in (p_price, p_run):
        p.add_argument("--task", required=True, choices=tasks.names(), help="task name")
        p.add_argument("--profile", default="paper", choices=[*profiles.NAMES, *profiles.VARIANTS])
        p.add_argument("--model", action="append", dest="models", help="model (repeatable)")
        add_debug(p)
    p_price.add_argument(
        "--throughput", action="append", default=[], metavar="MODEL=SAMPLES_PER_S",
        type=_throughput, help="training throughput per model (default: the H200 measurements)",
    )
    p_price.add_argument("--n-samples", type=positive_float,
                        help="dataset size, if not loadable here")
    p_run.add_argument("--backend", default="serial", choices=["serial", "dask"])
    p_run.add_argument("--results", help="results folder (default results/<task>)")
    args = parser.parse_args(argv)
    pricing = args.command in ("price", "plan")  # argparse records the alias typed
    target = p_price if pricing else p_run
    if args.models:
        spec = tasks.get(args.task)
        unknown = [m for m in args.models if m not in spec.models]
        if unknown:
            target.error(f"task {args.task!r} has no model(s) {unknown}; its models: "
                         f"{', '.join(spec.models)}")
    return guarded(target, args, lambda: _price(args) if pricing else _run(args))


def _price(args) -> int:
    rates = {**MEASURED_THROUGHPUT["nvidia-h200"], **dict(args.throughput)}
    n_samples = None if args.n_samples is None else int(args.n_samples)
    table = price(args.task, profile=args.profile, models=args.models, throughput=rates,
                 n_samples=n_samples)
    print(table.round(1).to_string())
    print(f"total: {int(table['jobs'].sum())} jobs, {table['hours'].sum():.1f} hours "
          "of training (models with a throughput)")
    return 0


def _run(args) -> int:
    frame = run(args.task, profile=args.profile, models=args.models, backend=args.backend,
                results=args.results)
    print(f"{len(frame)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
