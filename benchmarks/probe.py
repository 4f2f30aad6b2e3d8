"""Benchmark ``helpers.probe.latent_mi`` against the reference ``latentmi`` 0.1.3.

Both estimators run on the same ground-truth samples (:mod:`helpers.groundtruth`) in one run;
the table gives the analytic MI, both estimates, both wall times and the speed ratio.

``latentmi`` pins ``numpy<2``, so it runs in its own virtualenv (``benchmarks/.venv-latentmi``,
created on first use with ``latentmi==0.1.3``, ``numpy<2`` and ``torch``) through a subprocess
that calls ``latentmi.lmi.estimate(X, Y)`` with its default settings (8+8 latent dims, 50%
held out, lr 1e-4, batch 512, up to 300 epochs, patience 30) and reports the mean pointwise MI
of the held-out half.  Timings exclude interpreter start-up and imports on both sides.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/probe.py --quick
    PYTHONPATH=src python benchmarks/probe.py --cases gauss-10k-x100-y5-2bit labels-10k-x100-c5
    PYTHONPATH=src python benchmarks/probe.py --families --ref-threads 1   # critic paths
    PYTHONPATH=src python benchmarks/probe.py --list
    PYTHONPATH=src python benchmarks/probe.py --paper --estimators latentmi paper --json p.jsonl
    PYTHONPATH=src python benchmarks/probe.py --report p.jsonl other.jsonl

``--paper`` runs the five shared inputs on which ``method="paper"`` (the paper's estimator
re-implemented in :mod:`helpers.probe`) is validated against ``latentmi`` itself; the two
sides can run as separate processes (``--estimators latentmi`` / ``--estimators paper``)
whose ``--json`` files ``--report`` merges.  ``LATENTMI_VENV`` points to an existing
virtualenv with ``latentmi==0.1.3`` (default ``benchmarks/.venv-latentmi``, created on use).

The machine's other load changes both timings alike; compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("LATENTMI_VENV", HERE / ".venv-latentmi"))
REFERENCE_REQUIREMENTS = ["latentmi==0.1.3", "numpy<2", "torch"]

# name: (kind, n, params)
CASES = {
    "gauss-10k-x100-y1-1bit": ("gauss", 10_000, dict(dim_x=100, dim_y=1, mi_bits=1.0)),
    "gauss-10k-x100-y5-2bit": ("gauss", 10_000, dict(dim_x=100, dim_y=5, mi_bits=2.0)),
    "gauss-10k-x50-y1-0.25bit": ("gauss", 10_000, dict(dim_x=50, dim_y=1, mi_bits=0.25)),
    "gauss-10k-x1000-y10-4bit": ("gauss", 10_000, dict(dim_x=1000, dim_y=10, mi_bits=4.0)),
    "gauss-10k-x1000-y50-4bit": ("gauss", 10_000, dict(dim_x=1000, dim_y=50, mi_bits=4.0)),
    "gauss-10k-x200-y20-3bit": ("gauss", 10_000, dict(dim_x=200, dim_y=20, mi_bits=3.0)),
    "labels-10k-x100-c5": ("labels", 10_000, dict(dim_x=100, n_classes=5, separation=12.0)),
    "labels-10k-x50-c4-1bit": ("labels", 10_000, dict(dim_x=50, n_classes=4, mi_bits=1.0)),
    "gauss-5k-x100-y5-2bit": ("gauss", 5_000, dict(dim_x=100, dim_y=5, mi_bits=2.0)),
    # shared inputs of method="paper" against latentmi (issue 10)
    "gauss-5k-x50-y1-0.5bit": ("gauss", 5_000, dict(dim_x=50, dim_y=1, mi_bits=0.5)),
    "gauss-5k-x100-y10-1bit-r4": ("gauss", 5_000, dict(dim_x=100, dim_y=10, mi_bits=1.0, rank=4)),
    "labels-5k-x50-c4-1bit": ("labels", 5_000, dict(dim_x=50, n_classes=4, mi_bits=1.0)),
    "labels-5k-x100-c5": ("labels", 5_000, dict(dim_x=100, n_classes=5, separation=12.0)),
    # non-Gaussian ground truth (helpers.groundtruth.cases), where the critic paths are taken
    "student-10k-5x5-df2": ("family", 10_000, dict(name="student-5x5-df2")),
    "student-10k-sparse-5x5-df3": ("family", 10_000, dict(name="student-sparse-5x5-df3-2x0.8")),
    "spiral-10k-5x5": ("family", 10_000, dict(name="spiral-5x5")),
}
FAMILIES = ["student-10k-5x5-df2", "student-10k-sparse-5x5-df3", "spiral-10k-5x5"]
QUICK = ["gauss-10k-x100-y5-2bit", "gauss-10k-x1000-y50-4bit", "labels-10k-x100-c5"]
PAPER = ["gauss-5k-x50-y1-0.5bit", "gauss-5k-x100-y5-2bit", "gauss-5k-x100-y10-1bit-r4",
         "labels-5k-x50-c4-1bit", "labels-5k-x100-c5"]

REFERENCE_SCRIPT = r"""
import sys, time, json, contextlib, io
import numpy as np
import torch
from latentmi import lmi
x = np.load(sys.argv[1]); y = np.load(sys.argv[2]); seed = int(sys.argv[3])
epochs = int(sys.argv[4])
np.random.seed(seed); torch.manual_seed(seed)
t = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    pmis, _, _ = lmi.estimate(x, y, epochs=epochs)
wall = time.perf_counter() - t
print(json.dumps({"mi": float(np.nanmean(pmis)), "wall": wall,
                  "threads": torch.get_num_threads()}))
"""


def ensure_reference_venv() -> Path:
    """Create ``benchmarks/.venv-latentmi`` with the reference package if it is missing."""
    python = VENV / "bin" / "python"
    if python.exists():
        check = subprocess.run([python, "-c", "import latentmi.lmi"], capture_output=True)
        if check.returncode == 0:
            return python
    print(f"creating {VENV} with {' '.join(REFERENCE_REQUIREMENTS)} ...", flush=True)
    venv.create(VENV, with_pip=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *REFERENCE_REQUIREMENTS], check=True)
    return python


def make_case(name: str, seed: int):
    from helpers import groundtruth as gt

    kind, n, params = CASES[name]
    if kind == "gauss":
        x, y, truth = gt.gaussian_lowrank(n, seed=seed, **params)
        y_ref = y
    elif kind == "family":
        case = next(c for c in gt.cases() if c.name == params["name"])
        x, y = case.make(n, seed)
        y_ref, truth = y, case.mi
    else:
        x, y, truth = gt.labelled_mixture(n, seed=seed, **params)
        codes = np.unique(y, return_inverse=True)[1]
        y_ref = np.eye(codes.max() + 1)[codes]  # latentmi needs numbers: one-hot
    return x, y, y_ref, truth


def run_reference(python: Path, x, y_ref, seed: int, threads: int, epochs: int = 300) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        fx, fy = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(fx, x.astype(np.float32))
        np.save(fy, y_ref.astype(np.float32))
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(
            [python, "-c", REFERENCE_SCRIPT, fx, fy, str(seed), str(epochs)],
            capture_output=True, text=True, env=env,
        )
    if proc.returncode != 0:
        msg = f"latentmi failed:\n{proc.stderr[-2000:]}"
        raise RuntimeError(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_ours(x, y, seed: int, threads: int, method: str = "canonical", epochs: int = 300) -> dict:
    from helpers import probe

    t = time.perf_counter()
    mi = probe.latent_mi(x, y, seed=seed, n_threads=threads, method=method, max_epochs=epochs)
    return {"mi": mi, "wall": time.perf_counter() - t}


ESTIMATORS = ("latentmi", "canonical", "paper")


def report(rows: list[dict]) -> None:
    """Print one line per case with every estimator found in ``rows`` and the ratios."""
    by_case: dict[str, dict] = {}
    for r in rows:
        by_case.setdefault(r["case"], {"truth": r["truth"]})[r["estimator"]] = r
    present = [e for e in ESTIMATORS if any(e in v for v in by_case.values())]
    head = f"{'case':28s} {'truth':>6s} " + " ".join(
        f"{e:>9s} {'t[s]':>7s}" for e in present)
    if "latentmi" in present and "paper" in present:
        head += f" {'paper-lmi':>9s}"
    if "latentmi" in present and "canonical" in present:
        head += f" {'speed-up':>8s}"
    print(head)
    print("-" * len(head))
    for case, v in by_case.items():
        line = f"{case:28s} {v['truth']:6.3f} "
        line += " ".join(f"{v[e]['mi']:9.3f} {v[e]['wall']:7.1f}" if e in v else f"{'':9s} "
                         f"{'':7s}" for e in present)
        if "latentmi" in v and "paper" in v:
            line += f" {v['paper']['mi'] - v['latentmi']['mi']:+9.3f}"
        if "latentmi" in v and "canonical" in v:
            line += f" {v['latentmi']['wall'] / v['canonical']['wall']:7.1f}x"
        print(line, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--paper", action="store_true",
                        help=f"the method='paper' validation cases: {', '.join(PAPER)}")
    parser.add_argument("--families", action="store_true",
                        help=f"the non-Gaussian cases: {', '.join(FAMILIES)}")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), help="cases to run")
    parser.add_argument("--estimators", nargs="+", choices=ESTIMATORS,
                        default=["latentmi", "canonical"],
                        help="latentmi (the reference), canonical (helpers.probe's default) "
                             "and/or paper (helpers.probe with method='paper')")
    parser.add_argument("--epochs", type=int, default=300,
                        help="maximum epochs of latentmi and method='paper' (default 300, "
                             "theirs); a smaller number, the same on both sides, makes the "
                             "paper-vs-latentmi check affordable on a CPU.  latentmi cannot "
                             "stop before epoch 31 (patience 30), so its time at --epochs 30 "
                             "or less is a lower bound of its default time")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ref-threads", type=int, default=2,
                        help="torch threads for latentmi (its default is all cores)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for helpers.probe (its default is 1)")
    parser.add_argument("--skip-reference", action="store_true",
                        help="drop latentmi from --estimators")
    parser.add_argument("--json", type=Path, help="also append the rows to this JSON-lines file")
    parser.add_argument("--report", type=Path, nargs="+",
                        help="only print the table of earlier --json files (merged by case)")
    args = parser.parse_args(argv)
    if args.list:
        for name, (kind, n, params) in CASES.items():
            print(f"{name:28s} {kind:6s} n={n:<6d} {params}")
        return 0
    if args.report:
        rows = [json.loads(line) for f in args.report for line in f.read_text().splitlines()
                if line.strip()]
        report(rows)
        return 0
    names = args.cases or (QUICK if args.quick else PAPER if args.paper
                           else FAMILIES if args.families else list(CASES))
    estimators = [e for e in args.estimators if not (args.skip_reference and e == "latentmi")]
    python = ensure_reference_venv() if "latentmi" in estimators else None

    rows = []
    for name in names:
        x, y, y_ref, truth = make_case(name, args.seed)
        for est in estimators:
            if est == "latentmi":
                res = run_reference(python, x, y_ref, args.seed, args.ref_threads, args.epochs)
            else:
                # --epochs caps latentmi and its re-implementation; the default estimator
                # keeps its own settings
                epochs = args.epochs if est == "paper" else 300
                res = run_ours(x, y, args.seed, args.threads, method=est, epochs=epochs)
            row = dict(case=name, truth=truth, estimator=est, mi=res["mi"], wall=res["wall"],
                       seed=args.seed, epochs=args.epochs)
            rows.append(row)
            print(f"# {name} {est}: {res['mi']:.3f} bits ({res['wall']:.1f} s)", flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print()
    report(rows)
    if "latentmi" in estimators and "canonical" in estimators and rows:
        t = {e: sum(r["wall"] for r in rows if r["estimator"] == e) for e in estimators}
        print(f"\ntotal time ratio latentmi / canonical {t['latentmi'] / t['canonical']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
