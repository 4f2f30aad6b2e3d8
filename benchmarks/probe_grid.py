"""Accuracy grid of ``helpers.probe.latent_mi`` on analytic ground truth.

Jointly Gaussian low-rank cases (:func:`helpers.groundtruth.gaussian_lowrank`) over
dim X × dim Y × MI, plus labelled mixtures; prints truth, estimate, error, whether the error
is within the tolerance ``max(0.15, 0.1 · truth)`` and the wall time of each case.

Usage (from the repository root, single-threaded)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_grid.py
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_grid.py --only x1000-y50-0.25
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_grid.py --seeds 0 1 2 \\
        --only x1000-y50 --opts '{"lam": 3.0}'
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from helpers import groundtruth as gt
from helpers import probe

DIMS_X = (10, 100, 1000)
DIMS_Y = (1, 5, 50)
MIS = (0.25, 1.0, 2.0, 4.0)
LABELS = {
    "labels-x100-c5-sep12": dict(dim_x=100, n_classes=5, separation=12.0),
    "labels-x50-c4-1bit": dict(dim_x=50, n_classes=4, mi_bits=1.0),
    "labels-x1000-c3-0.8bit": dict(dim_x=1000, n_classes=3, mi_bits=0.8),
}


def cases(n: int, ranks: tuple[int | None, ...]):
    for dx in DIMS_X:
        for dy in DIMS_Y:
            for mi in MIS:
                for rank in ranks:
                    if rank is not None and rank > min(dx, dy):
                        continue
                    name = f"x{dx}-y{dy}-{mi:g}" + ("" if rank is None else f"-r{rank}")
                    yield name, ("gauss", n, dict(dim_x=dx, dim_y=dy, mi_bits=mi, rank=rank))
    for name, params in LABELS.items():
        yield name, ("labels", n, params)


def make(kind, n, params, seed):
    if kind == "gauss":
        return gt.gaussian_lowrank(n, seed=seed, **params)
    return gt.labelled_mixture(n, seed=seed, **params)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="data = estimator seed")
    ap.add_argument("--only", nargs="*", default=None, help="substrings of case names")
    ap.add_argument("--ranks", nargs="+", default=["default"],
                    help="shared-latent ranks ('default' = min(dim_y, 2))")
    ap.add_argument("--opts", default="{}", help="JSON dict of estimate_mi options")
    ap.add_argument("--no-labels", action="store_true")
    args = ap.parse_args(argv)
    opts = json.loads(args.opts)
    ranks = tuple(None if r == "default" else int(r) for r in args.ranks)
    print(f"# N={args.n} seeds={args.seeds} opts={opts}")
    print(f"{'case':28s} {'seed':>4s} {'truth':>6s} {'est':>6s} {'err':>7s} ok  pairs "
          f"{'t[s]':>6s}")
    n_ok = n_all = 0
    errs = []
    for name, (kind, n, params) in cases(args.n, ranks):
        if kind == "labels" and args.no_labels:
            continue
        if args.only and not any(s in name for s in args.only):
            continue
        for seed in args.seeds:
            x, y, truth = make(kind, n, params, seed)
            t = time.perf_counter()
            res = probe.estimate_mi(x, y, seed=seed, **opts)
            wall = time.perf_counter() - t
            err = res.mi - truth
            ok = abs(err) <= max(0.15, 0.1 * truth)
            n_ok += ok
            n_all += 1
            errs.append(err)
            print(f"{name:28s} {seed:4d} {truth:6.3f} {res.mi:6.3f} {err:+7.3f} "
                  f"{'ok' if ok else '--'}  {res.n_pairs:5d} {wall:6.1f}", flush=True)
    errs = np.array(errs)
    print(f"# within tolerance: {n_ok}/{n_all}; mean |err| {np.abs(errs).mean():.3f}, "
          f"mean err {errs.mean():+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
