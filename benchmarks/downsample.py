"""Benchmark binomial thinning: speed against scanpy, and peak memory of the h5ad streaming path.

Part A times ``helpers.noise.downsample_counts`` (one thread) and ``scanpy.pp.downsample_counts``
on the same negative-binomial count matrix, in the same run, best of ``--repeats`` runs each
(interleaved, so both see the same machine load; every run gets a fresh copy of the matrix, not
timed).  Wall time and the process's CPU time are both reported: on a shared machine the
CPU-time ratio is the steadier of the two, as both functions run on one core.  scanpy is
asked for the same *expected* total per cell, ``round(fraction * total_i)``.  The two functions
do not draw from the same distribution: scanpy samples exactly that many molecules per cell
without replacement (a multivariate hypergeometric draw, so the cell total is fixed), while
binomial thinning keeps each molecule independently (cell totals vary as Binomial(total_i, f)),
which is what a shallower sequencing run does.  Both are exact samplers of their own models;
the cost of scanpy's grows with the number of molecules (a permutation of every molecule of a
cell and a sort of the kept ones, cell by cell), ours with the number of non-zero entries.

Part B writes a CSR ``.h5ad`` with ``--stream-cells`` cells chunk by chunk into a temporary
folder (rows are random permutations of a pool of ``--pool-cells`` negative-binomial cells, so
the file is large without being slow to make), then streams it through
``helpers.noise.downsample_h5ad`` in a fresh subprocess that does nothing else and reports its
resident-set high-water mark (``VmHWM``, or ``ru_maxrss`` off Linux).  The same is done for a
file with a tenth of the cells, to show that peak memory does not grow with the number of
cells, and the first rows of the streamed result are checked bit for bit against the in-memory
function.

Run from the repository root::

    PYTHONPATH=src python benchmarks/downsample.py              # both parts, defaults below
    PYTHONPATH=src python benchmarks/downsample.py --quick      # small sizes, a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import sparse

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def nb_matrix(n_obs, n_vars, mean_umis, *, seed, chunk=2000, dtype=np.float32):
    """Gamma-Poisson (negative binomial, shape 2) counts with a log-normal gene profile."""
    rng = np.random.default_rng(seed)
    profile = rng.lognormal(0.0, 2.0, n_vars)
    profile /= profile.sum()
    depth = rng.lognormal(np.log(mean_umis) - 0.08, 0.4, n_obs)  # mean ~ mean_umis
    blocks = []
    for s in range(0, n_obs, chunk):
        lam = depth[s : s + chunk, None] * profile[None, :]
        counts = rng.poisson(rng.gamma(2.0, lam / 2.0))
        blocks.append(sparse.csr_matrix(counts.astype(dtype)))
    return sparse.vstack(blocks, format="csr")


def total(x):
    """Exact sum of a sparse matrix of integer counts (float64 accumulator)."""
    return float(x.data.sum(dtype=np.float64))


def describe(x, label):
    n = x.shape[0]
    umis = total(x)
    print(
        f"{label}: {x.shape[0]:,} cells x {x.shape[1]:,} genes, {x.nnz / n:,.0f} non-zeros/cell, "
        f"{umis / n:,.0f} UMIs/cell ({umis / x.nnz:.2f} UMIs per non-zero), dtype {x.dtype}"
    )


# --------------------------------------------------------------------------------------------
# part A: throughput against scanpy
# --------------------------------------------------------------------------------------------
def part_a(args):
    import anndata as ad
    import scanpy as sc

    from helpers.noise import downsample_counts, kernels, quality_grid

    print("\n=== A. in-memory throughput: helpers.noise vs scanpy.pp.downsample_counts ===")
    t0 = time.perf_counter()
    x = nb_matrix(args.cells, args.genes, args.umis, seed=0)
    print(f"generated in {time.perf_counter() - t0:.1f} s")
    describe(x, "matrix")
    n_obs, molecules = x.shape[0], total(x)
    totals = np.asarray(x.sum(axis=1, dtype=np.float64)).ravel()

    # warm-up: scanpy's numba kernel compiles (or loads its cache) on first use
    small = ad.AnnData(x[:200].copy())
    sc.pp.downsample_counts(small, counts_per_cell=50, random_state=0)
    downsample_counts(x[:200], 0.5, seed=0)

    def timed(func, *args, **kwargs):
        kernels.guide_tables.cache_clear()  # count the per-fraction table set-up every time
        wall, cpu = time.perf_counter(), time.process_time()
        out = func(*args, **kwargs)
        return out, time.perf_counter() - wall, time.process_time() - cpu

    fractions = args.fractions or quality_grid(molecules / n_obs, n_levels=args.levels)
    print(f"fractions: {', '.join(f'{f:.4g}' for f in fractions)}")
    rows = []
    for f in fractions:
        target = np.round(f * totals).astype(int)
        ours, theirs, ours_cpu, theirs_cpu, threaded = [], [], [], [], []
        for rep in range(args.repeats):
            y, wall, cpu = timed(downsample_counts, x.copy(), f, seed=rep)
            ours.append(wall)
            ours_cpu.append(cpu)
            y2, wall, _ = timed(downsample_counts, x.copy(), f, seed=rep, n_jobs=-1)
            threaded.append(wall)
            assert (y2 != y).nnz == 0  # threads never change the result
            adata = ad.AnnData(x.copy())
            _, wall, cpu = timed(
                sc.pp.downsample_counts, adata, counts_per_cell=target, random_state=rep
            )
            theirs.append(wall)
            theirs_cpu.append(cpu)
        kept_ours, kept_scanpy = total(y), total(adata.X)
        # sanity: binomial total within 5 sd of f * total; scanpy hits its targets exactly
        sd = np.sqrt(molecules * f * (1 - f))
        assert abs(kept_ours - f * molecules) < 5 * sd + 1, (kept_ours, f * molecules)
        assert kept_scanpy == target[totals > target].sum() + totals[totals <= target].sum()
        a, b = min(ours), min(theirs)
        a_cpu, b_cpu = min(ours_cpu), min(theirs_cpu)
        rows.append((f, a, b, a_cpu, b_cpu, min(threaded)))
        print(
            f"fraction {f:<7.4g} helpers.noise {a:6.3f} s ({n_obs / a:>9,.0f} cells/s, "
            f"{molecules / a / 1e6:6.1f} M molecules/s) | scanpy {b:6.3f} s "
            f"({n_obs / b:>7,.0f} cells/s, {molecules / b / 1e6:6.1f} M molecules/s) | "
            f"ratio {b / a:5.1f}x wall, {b_cpu / a_cpu:5.1f}x CPU | "
            f"n_jobs=-1: {min(threaded):6.3f} s, {b / min(threaded):5.1f}x"
        )
    # at fraction 1 neither function samples (scanpy only sums, we validate and copy)
    thinned = [r for r in rows if r[0] < 1]
    ratios = [r[2] / r[1] for r in thinned]
    cpu_ratios = [r[4] / r[3] for r in thinned]
    grid_wall = sum(r[2] for r in thinned) / sum(r[1] for r in thinned)
    grid_cpu = sum(r[4] for r in thinned) / sum(r[3] for r in thinned)
    grid_threads = sum(r[2] for r in thinned) / sum(r[5] for r in thinned)
    print(
        f"throughput ratio (scanpy time / ours, best of {args.repeats}) over fractions < 1: "
        f"wall {min(ratios):.1f}x to {max(ratios):.1f}x, CPU time {min(cpu_ratios):.1f}x to "
        f"{max(cpu_ratios):.1f}x; all levels < 1 together (sum of times): wall "
        f"{grid_wall:.1f}x, CPU time {grid_cpu:.1f}x; with every core (n_jobs=-1, "
        f"{os.cpu_count()} CPUs) against scanpy's one: {grid_threads:.1f}x"
    )
    return ratios, grid_wall, grid_threads


# --------------------------------------------------------------------------------------------
# part B: streaming peak memory
# --------------------------------------------------------------------------------------------
def write_big_h5ad(path, n_obs, n_vars, mean_umis, pool_cells, *, seed=1):
    """Write a CSR .h5ad chunk by chunk; rows are permutations of a negative-binomial pool."""
    import h5py
    import pandas as pd
    from anndata.io import sparse_dataset, write_elem

    rng = np.random.default_rng(seed)
    pool = nb_matrix(pool_cells, n_vars, mean_umis, seed=seed)
    obs = pd.DataFrame(index=pd.Index([f"cell{i:07d}" for i in range(n_obs)]))
    var = pd.DataFrame(index=pd.Index([f"gene{j:05d}" for j in range(n_vars)]))
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        write_elem(f, "obs", obs)
        write_elem(f, "var", var)
        write_elem(f, "uns", {})
        first = True
        for start in range(0, n_obs, pool_cells):
            rows = rng.permutation(pool_cells)[: min(pool_cells, n_obs - start)]
            block = pool[rows]
            if first:
                write_elem(
                    f, "X", block, dataset_kwargs={"indptr_dtype": np.int64, "chunks": (1 << 18,)}
                )
                matrix = sparse_dataset(f["X"])
                first = False
            else:
                matrix.append(block)
    return pool


def peak_rss_kib():
    """Resident-set high-water mark of this process, KiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, which starts afresh at ``exec``; ``ru_maxrss``
    would also count the parent's memory at ``fork`` time.  Elsewhere: ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    scale = 1024 if sys.platform == "darwin" else 1  # bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // scale


def stream_child(src, dst, fraction, chunk_size):
    """Runs in a fresh interpreter: import, stream, report the RSS high-water mark."""
    import anndata  # noqa: F401  (imports count in the baseline, not in the streaming)
    import h5py  # noqa: F401

    from helpers.noise import downsample_h5ad

    base = peak_rss_kib()
    t = time.perf_counter()
    downsample_h5ad(src, dst, fraction, seed=0, chunk_size=chunk_size, progress=False)
    wall = time.perf_counter() - t
    print(json.dumps({"baseline_kib": base, "peak_kib": peak_rss_kib(), "wall_s": wall}))


def run_child(src, dst, fraction, chunk_size):
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, __file__, "--_child", str(src), str(dst), str(fraction)]
    if chunk_size is not None:
        cmd += ["--chunk-size", str(chunk_size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def part_b(args):
    import anndata as ad
    from anndata.io import sparse_dataset

    from helpers.noise import BLOCK_ROWS, downsample_counts

    print("\n=== B. streaming .h5ad -> .h5ad: peak memory (fresh subprocess, VmHWM) ===")
    tmp = Path(tempfile.mkdtemp(prefix="noise-bench-", dir=args.tmpdir))
    gib = 1024**2  # KiB per GiB
    results = {}
    try:
        sizes = sorted({max(args.stream_cells // 10, BLOCK_ROWS), args.stream_cells})
        for n_obs in sizes:
            src, dst = tmp / f"full_{n_obs}.h5ad", tmp / f"thin_{n_obs}.h5ad"
            t = time.perf_counter()
            pool = write_big_h5ad(src, n_obs, args.stream_genes, args.stream_umis, args.pool_cells)
            size = src.stat().st_size / 1024**3
            print(
                f"wrote {n_obs:,} cells x {args.stream_genes:,} genes "
                f"({pool.nnz / pool.shape[0]:,.0f} non-zeros/cell, "
                f"{total(pool) / pool.shape[0]:,.0f} UMIs/cell): {size:.2f} GiB "
                f"in {time.perf_counter() - t:.1f} s"
            )
            r = run_child(src, dst, args.stream_fraction, args.chunk_size)
            results[n_obs] = r
            print(
                f"  streamed fraction {args.stream_fraction} in {r['wall_s']:.1f} s "
                f"({n_obs / r['wall_s']:,.0f} cells/s): peak RSS {r['peak_kib'] / gib:.3f} GiB "
                f"(after imports {r['baseline_kib'] / gib:.3f} GiB), "
                f"output {dst.stat().st_size / 1024**3:.2f} GiB"
            )
            # bit-for-bit check of the first rows against the in-memory function
            n_check = min(n_obs, 20 * BLOCK_ROWS)
            full = ad.read_h5ad(src, backed="r")
            head = sparse_dataset(full.file["X"])[0:n_check]
            full.file.close()
            thin = ad.read_h5ad(dst, backed="r")
            got = sparse_dataset(thin.file["X"])[0:n_check]
            realised = float(thin.obs["total_counts"].sum())
            thin.file.close()
            ref = downsample_counts(head, args.stream_fraction, seed=0)
            same = (got != ref).nnz == 0 and np.array_equal(got.indptr, ref.indptr)
            print(f"  first {n_check:,} rows equal the in-memory result: {same}")
            assert same
            print(f"  realised mean UMIs/cell {realised / n_obs:,.1f}")
            src.unlink()
            dst.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    peaks = {n: r["peak_kib"] / gib for n, r in results.items()}
    print(
        "peak RSS by number of cells: "
        + ", ".join(f"{n:,}: {p:.3f} GiB" for n, p in sorted(peaks.items()))
    )
    return peaks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=30_000)
    parser.add_argument("--genes", type=int, default=15_000)
    parser.add_argument("--umis", type=float, default=3_000)
    parser.add_argument(
        "--fractions", type=float, nargs="+", help="default: quality_grid(mean, n_levels=--levels)"
    )
    parser.add_argument("--levels", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stream-cells", type=int, default=1_000_000)
    parser.add_argument("--stream-genes", type=int, default=2_000)
    parser.add_argument("--stream-umis", type=float, default=1_000)
    parser.add_argument("--stream-fraction", type=float, default=0.3)
    parser.add_argument("--pool-cells", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=None, help="default: the helper's")
    parser.add_argument("--tmpdir", default=None, help="folder for the temporary .h5ad files")
    parser.add_argument("--skip-a", action="store_true", help="skip the scanpy comparison")
    parser.add_argument("--skip-b", action="store_true", help="skip the streaming part")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        src, dst, fraction = args._child
        stream_child(src, dst, float(fraction), args.chunk_size)
        return
    if args.quick:
        args.cells, args.genes, args.repeats = 3000, 2000, 1
        args.stream_cells, args.pool_cells = 50_000, 5_000
    from importlib.metadata import version

    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"anndata {version('anndata')}, scanpy {version('scanpy')}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    if not args.skip_a:
        ratios, grid, grid_threads = part_a(args)
        met = {True: "met", False: "NOT met"}
        print(
            f"target >= 10x scanpy: one thread: every fraction {met[min(ratios) >= 10]}, "
            f"whole grid {met[grid >= 10]}; every core: whole grid {met[grid_threads >= 10]}"
        )
    if not args.skip_b:
        peaks = part_b(args)
        print(f"target streaming peak < 2 GiB: {'met' if max(peaks.values()) < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
