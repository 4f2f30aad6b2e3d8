"""Accuracy grid of ``helpers.probe.latent_mi`` on analytic ground truth, and its null reading.

Jointly Gaussian low-rank cases (:func:`helpers.groundtruth.gaussian_lowrank`) over
dim X × dim Y × shared rank × MI × N, plus labelled mixtures; prints truth, estimate, error,
whether the error is within the tolerance ``max(0.15, 0.1 · truth)``, the number of canonical
pairs used and the wall time of each case.  ``--null`` instead estimates the MI of
independent ``x`` and ``y`` (truth 0) over several seeds and prints the mean; ``--pairs`` the
bias and spread of 1-D KSG and of the Gaussian copula on one weakly dependent Gaussian pair.

Usage (from the repository root, single-threaded; the full grid takes hours on a shared
machine, so select cases)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_grid.py --dims-x 100 \\
        --dims-y 20 50 --ranks 1 4 8 --mis 0.25 1 4 --n 5000 10000
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_grid.py --only x1000-y50-0.25
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_grid.py --null --seeds 0 1 2 3 4
    PYTHONPATH=src python benchmarks/probe_grid.py --pairs --n 1250 --seeds $(seq 0 39)
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_grid.py --opts '{"select": "max"}'
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from helpers import groundtruth as gt
from helpers import probe

DIMS_X = (10, 100, 1000)
DIMS_Y = (1, 5, 10, 20, 50)
RANKS = (1, 2, 3, 4, 5, 6, 7, 8)
MIS = (0.25, 1.0, 2.0, 4.0)
NS = (5000, 10000)
LABELS = {
    "labels-x100-c5-sep12": dict(dim_x=100, n_classes=5, separation=12.0),
    "labels-x50-c4-1bit": dict(dim_x=50, n_classes=4, mi_bits=1.0),
    "labels-x1000-c3-0.8bit": dict(dim_x=1000, n_classes=3, mi_bits=0.8),
}
NULL = ((16, 16), (100, 10))
PAIR_RHOS = (0.0, 0.1, 0.15, 0.2, 0.4)


def cases(ns, dims_x, dims_y, ranks, mis, labels=True):
    for n in ns:
        for dx in dims_x:
            for dy in dims_y:
                for rank in ranks:
                    if rank > min(dx, dy):
                        continue
                    for mi in mis:
                        name = f"n{n}-x{dx}-y{dy}-r{rank}-{mi:g}"
                        yield name, ("gauss", n, dict(dim_x=dx, dim_y=dy, mi_bits=mi, rank=rank))
        if labels:
            for name, params in LABELS.items():
                yield f"n{n}-{name}", ("labels", n, params)


def make(kind, n, params, seed):
    if kind == "gauss":
        return gt.gaussian_lowrank(n, seed=seed, **params)
    return gt.labelled_mixture(n, seed=seed, **params)


def run_null(args, opts) -> None:
    print(f"{'dims':>8s} {'n':>6s} " + " ".join(f"{'s' + str(s):>7s}" for s in args.seeds)
          + f" {'mean':>7s} {'sd':>6s}")
    for dx, dy in NULL:
        for n in args.n:
            vals = []
            for seed in args.seeds:
                rng = np.random.default_rng([seed, 99])
                x, y = rng.standard_normal((n, dx)), rng.standard_normal((n, dy))
                vals.append(probe.latent_mi(x, y, seed=seed, **opts))
            vals = np.array(vals)
            print(f"{dx:>3d}/{dy:<4d} {n:6d} " + " ".join(f"{v:+7.3f}" for v in vals)
                  + f" {vals.mean():+7.3f} {vals.std(ddof=1) if len(vals) > 1 else 0:6.3f}",
                  flush=True)


def run_pairs(args) -> None:
    """Bias and spread of 1-D KSG and of the Gaussian copula on one weakly dependent pair."""
    print(f"{'rho':>5s} {'n':>6s} {'truth':>7s} {'KSG mean':>9s} {'sd':>6s} "
          f"{'copula mean':>12s} {'sd':>6s}   ({len(args.seeds)} seeds)")
    for rho in PAIR_RHOS:
        truth = -0.5 * np.log2(1 - rho**2)
        for n in args.n:
            ksg, cop = [], []
            for seed in args.seeds:
                rng = np.random.default_rng([seed, 98])
                x = rng.standard_normal(n)
                y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
                ksg.append(probe.ksg_mi(x[:, None], y[:, None], seed=seed).mean())
                cop.append(probe.copula_mi(x, y, seed=seed).mean())
            ksg, cop = np.array(ksg), np.array(cop)
            print(f"{rho:5.2f} {n:6d} {truth:7.4f} {ksg.mean():9.4f} {ksg.std(ddof=1):6.4f} "
                  f"{cop.mean():12.4f} {cop.std(ddof=1):6.4f}", flush=True)


def run_families(args, opts) -> None:
    """The non-Gaussian grid (:func:`helpers.groundtruth.cases`), tolerance max(0.1, 10 %)."""
    print(f"{'case':34s} {'n':>6s} {'seed':>4s} {'truth':>6s} {'est':>6s} {'err':>7s} ok "
          f"{'t[s]':>6s} paths")
    rows = []
    for case in gt.cases():
        if args.only and not any(s in case.name for s in args.only):
            continue
        for n in args.n:
            for seed in args.seeds:
                x, y = case.make(n, seed)
                t = time.perf_counter()
                res = probe.estimate_mi(x, y, seed=seed, y_kind="continuous", **opts)
                wall = time.perf_counter() - t
                err = res.mi - case.mi
                ok = bool(abs(err) <= max(0.1, 0.1 * case.mi))
                paths = "/".join(p[0] for p in res.params["latent_paths"] or ["-"])
                rows.append(dict(case=case.name, family=case.family, n=n, seed=seed,
                                 truth=case.mi, est=res.mi, err=err, ok=ok, wall=wall,
                                 paths=paths, opts=opts))
                print(f"{case.name:34s} {n:6d} {seed:4d} {case.mi:6.3f} {res.mi:6.3f} "
                      f"{err:+7.3f} {'ok' if ok else '--'} {wall:6.1f} {paths}", flush=True)
                if args.json:
                    with open(args.json, "a") as fh:
                        fh.write(json.dumps(rows[-1]) + "\n")
    if not rows:
        return
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["above"] = frame.err > np.maximum(0.1, 0.1 * frame.truth)
    summary = frame.groupby("family").agg(cases=("ok", "size"), within=("ok", "sum"),
                                          above=("above", "sum"),
                                          mean_abs_err=("err", lambda e: e.abs().mean()),
                                          wall=("wall", "mean"))
    print(summary.round(3).to_string())
    print(f"# within tolerance: {int(frame.ok.sum())}/{len(frame)}; above the truth by more: "
          f"{int(frame.above.sum())}; mean |err| {frame.err.abs().mean():.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[5000], help=f"sample sizes {NS}")
    ap.add_argument("--dims-x", type=int, nargs="+", default=list(DIMS_X))
    ap.add_argument("--dims-y", type=int, nargs="+", default=list(DIMS_Y))
    ap.add_argument("--ranks", type=int, nargs="+", default=list(RANKS),
                    help="shared-latent ranks (cases with rank > min(dim x, dim y) are skipped)")
    ap.add_argument("--mis", type=float, nargs="+", default=list(MIS), help="MI in bits")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="data = estimator seed")
    ap.add_argument("--only", nargs="*", default=None, help="substrings of case names")
    ap.add_argument("--opts", default="{}", help="JSON dict of estimate_mi options")
    ap.add_argument("--no-labels", action="store_true")
    ap.add_argument("--null", action="store_true",
                    help=f"independent x, y of dims {NULL} instead of the grid")
    ap.add_argument("--pairs", action="store_true",
                    help=f"one Gaussian pair at rho {PAIR_RHOS}: KSG and the copula, --seeds")
    ap.add_argument("--families", action="store_true",
                    help="the non-Gaussian grid of helpers.groundtruth.cases() instead")
    ap.add_argument("--json", help="append one JSON line per case to this file")
    args = ap.parse_args(argv)
    opts = json.loads(args.opts)
    print(f"# seeds={args.seeds} opts={opts}")
    if args.null:
        run_null(args, opts)
        return 0
    if args.pairs:
        run_pairs(args)
        return 0
    if args.families:
        run_families(args, opts)
        return 0
    print(f"{'case':30s} {'seed':>4s} {'truth':>6s} {'est':>6s} {'err':>7s} ok  pairs "
          f"{'t[s]':>6s} paths")
    n_ok = n_all = 0
    errs = []
    grid = cases(args.n, args.dims_x, args.dims_y, args.ranks, args.mis, not args.no_labels)
    for name, (kind, n, params) in grid:
        if args.only and not any(s in name for s in args.only):
            continue
        for seed in args.seeds:
            x, y, truth = make(kind, n, params, seed)
            t = time.perf_counter()
            res = probe.estimate_mi(x, y, seed=seed, **opts)
            wall = time.perf_counter() - t
            err = res.mi - truth
            paths = "/".join(p[0] for p in res.params["latent_paths"] or ["-"])
            ok = bool(abs(err) <= max(0.15, 0.1 * truth))
            n_ok += ok
            n_all += 1
            errs.append(err)
            print(f"{name:30s} {seed:4d} {truth:6.3f} {res.mi:6.3f} {err:+7.3f} "
                  f"{'ok' if ok else '--'}  {res.n_pairs:5d} {wall:6.1f} {paths}", flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(dict(case=name, seed=seed, truth=truth, est=res.mi,
                                             ok=ok, pairs=res.n_pairs, wall=wall, paths=paths,
                                             opts=opts)) + "\n")
    errs = np.array(errs) if errs else np.zeros(1)
    print(f"# within tolerance: {n_ok}/{n_all}; mean |err| {np.abs(errs).mean():.3f}, "
          f"mean err {errs.mean():+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
