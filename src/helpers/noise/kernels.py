"""The thinning kernels behind :mod:`helpers.noise.counts`: validation, the guide tables and the
numba samplers that keep each molecule with probability p, block by block of rows.

Every random number comes from a block's own ``SeedSequence`` (:data:`BLOCK_ROWS` rows), so the
result for a seed does not depend on how many workers or chunks compute it.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from numba import njit
from scipy import sparse

__all__ = [
    "BLOCK_ROWS",
    "NMAX",
    "SENTINEL",
    "bernoulli",
    "build_guide_tables",
    "guide_tables",
    "thin_csr_rows",
]


#: Rows per random-number block; part of the definition of the result for a given seed.
BLOCK_ROWS = 256


#: Tag in every block's ``SeedSequence`` spawn key, so that these streams differ from any
#: other use of the same seed in the project.
_STREAM_TAG = 0x74_68_69_6E  # "thin"


#: Largest count thinned through the guide table; larger ones use ``Generator.binomial``.
NMAX = 254


#: Table value that sends a count to the slow path (ambiguous cell or count > NMAX).
SENTINEL = 255


#: Fractions up to this draw the gaps between kept molecules instead of one byte per count.
_SKIP_BELOW = 0.05


#: Fractions below this use the sampler that is exact at any double (subnormals included).
_EXACT_BELOW = 1e-6


#: Counts of this many molecules or more are not walked molecule by molecule.
_HUGE = 1 << 20


def _check_fraction(fraction, n_obs: int) -> float | np.ndarray:
    """Return a Python float, or a float64 vector of length ``n_obs`` with distinct values."""
    if isinstance(fraction, bool | np.bool_):
        msg = "`fraction` must be a number in [0, 1] or a vector of them, not a bool."
        raise ValueError(msg)
    arr = np.asarray(fraction)
    if arr.dtype.kind not in "iuf":
        msg = f"`fraction` must be numeric, got dtype {arr.dtype}."
        raise ValueError(msg)
    arr = arr.astype(np.float64)
    if arr.ndim == 0:
        value = float(arr)
        if not 0.0 <= value <= 1.0:  # also rejects NaN
            msg = f"`fraction` must lie in [0, 1], got {value!r}."
            raise ValueError(msg)
        return value
    if arr.ndim != 1 or arr.shape[0] != n_obs:
        msg = (
            f"A per-cell `fraction` must be a 1-D vector with one value per cell "
            f"({n_obs}), got shape {arr.shape}."
        )
        raise ValueError(msg)
    if not (np.all(arr >= 0.0) and np.all(arr <= 1.0)):  # also rejects NaN
        msg = "Every per-cell `fraction` must lie in [0, 1] (no NaN)."
        raise ValueError(msg)
    if n_obs and np.all(arr == arr[0]):
        return float(arr[0])  # a constant vector is the scalar case, bit for bit
    return arr


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.kind not in "iuf":
        msg = (
            f"Counts must have an integer or floating dtype, got {dtype}. "
            "Convert boolean or object data to integers first."
        )
        raise ValueError(msg)
    if dtype.kind == "f" and dtype.itemsize not in (4, 8):
        msg = (
            f"Counts of dtype {dtype} are not supported: float16 cannot hold every count that "
            "thinning produces (integers above 2048) and scipy.sparse refuses it, and extended "
            "precision floats have no compiled kernel. Convert with `x.astype(np.float32)` "
            "(exact up to 2**24) or `x.astype(np.float64)`."
        )
        raise ValueError(msg)


def _validate_counts(values: np.ndarray) -> None:
    """Raise a ValueError unless ``values`` are finite, non-negative integers."""
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            msg = "Counts must be finite; found NaN or infinite values."
            raise ValueError(msg)
        if values.size and values.min() < 0:
            msg = "Counts must be non-negative; found negative values."
            raise ValueError(msg)
        if not np.array_equal(values, np.floor(values)):
            msg = (
                "Counts must be integers; found non-integer values (binomial thinning needs "
                "raw UMI counts, not normalised or log-transformed data)."
            )
            raise ValueError(msg)
    elif values.dtype.kind == "i" and values.size and values.min() < 0:
        msg = "Counts must be non-negative; found negative values."
        raise ValueError(msg)
    if values.size and values.dtype.kind in "fu" and values.max() >= 2.0**63:
        msg = "Counts must be below 2**63; found larger values."
        raise ValueError(msg)


def _small_counts(values: np.ndarray) -> np.ndarray:
    """Validated counts as ``uint16`` (saturating at 65535), in one cast and one comparison."""
    with np.errstate(invalid="ignore", over="ignore"):
        small = values.astype(np.uint16)
    # Equality holds only for integer values in [0, 65535]; NaN, inf, negatives and fractions
    # (whose cast is undefined or truncated) all fail it and get the precise check.
    if not np.array_equal(small, values):
        _validate_counts(values)
        small = np.minimum(values, 65535).astype(np.uint16)
    return small


def _block_rng(seed: int, block: int) -> np.random.Generator:
    """Generator of row block ``block``: the block-th child stream of ``seed``."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(_STREAM_TAG, block)))
    )


@njit(cache=True)
def build_guide_tables(p):  # pragma: no cover - compiled; exercised through guide_tables
    """The arrays of :func:`guide_tables` (``table`` not yet flattened)."""
    # cdf[n, j] = P(Binomial(n, p) <= j), 1 for j >= n, by the recurrence
    # P(X_n <= j) = (1 - p) P(X_{n-1} <= j) + p P(X_{n-1} <= j - 1), a convex combination,
    # so each row is non-decreasing in j and within ~n ulp of the exact CDF.
    cdf = np.ones((256, 256))  # row 0: X_0 = 0
    for n in range(1, NMAX + 1):
        cdf[n, 0] = (1.0 - p) * cdf[n - 1, 0]
        for j in range(1, n):
            cdf[n, j] = (1.0 - p) * cdf[n - 1, j] + p * cdf[n - 1, j - 1]
    lo = np.full((256, 256), SENTINEL, dtype=np.uint8)
    hi = np.full((256, 256), SENTINEL, dtype=np.uint8)
    table = np.full((256, 256), SENTINEL, dtype=np.uint8)
    for n in range(NMAX + 1):
        a = 0  # #{j < n : cdf[n, j] <= c / 256}
        b = 0  # #{j < n : cdf[n, j] < (c + 1) / 256}
        for c in range(256):
            while a < n and cdf[n, a] <= c / 256.0:
                a += 1
            while b < n and cdf[n, b] < (c + 1) / 256.0:
                b += 1
            lo[n, c] = a
            hi[n, c] = b
            if a == b:
                table[n, c] = a
    for n in range(NMAX + 1):
        cdf[n, n:] = np.inf  # X = #{j < n : CDF(j) <= u}: no step at j >= n
    cdf[NMAX + 1 :] = np.inf  # counts above NMAX never use the table
    return table, lo, hi, 256.0 * cdf


@lru_cache(maxsize=32)
def guide_tables(p: float):
    """Guide table and exact thresholds for inverting Binomial(n, p), 0 <= n <= NMAX.

    ``table[n << 8 | c]`` is the thinned count when ``u`` lies in ``[c/256, (c+1)/256)`` and
    no CDF step falls inside that cell, else ``SENTINEL``.  ``lo``/``hi`` bound the answer in
    ambiguous cells; ``scaled[n, j] = 256 * CDF_n(j)`` (``inf`` for ``j >= n``).  Rows above
    ``NMAX`` are all ``SENTINEL``.  Built by the CDF recurrence in compiled code, ~0.5 ms
    (``scipy.stats.binom.cdf`` on the same grid took ~13 ms, a tenth of the time to thin 20
    million counts); the CDF is within 1e-13 of scipy's (tested) and exact for dyadic ``p``.
    """
    table, lo, hi, scaled = build_guide_tables(float(p))
    for arr in (table, lo, hi, scaled):
        arr.setflags(write=False)
    return table.ravel(), lo, hi, scaled


def _random_bytes(rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` random bytes: the little-endian bytes of ``ceil(m / 8)`` raw 64-bit draws."""
    raw = rng.bit_generator.random_raw((m + 7) // 8)
    return raw.astype("<u8", copy=False).view(np.uint8)[:m]


@njit(cache=True, nogil=True)
def _thin_rows_kernel(
    values, indices, bounds, p, cells, rng, table, lo, hi, scaled, data_out, indices_out, start,
    counts,
):  # pragma: no cover - compiled; exercised through downsample_counts
    """Binomial(n, p) of every stored count of a block of CSR rows, in one pass.

    Row ``r`` holds ``values[bounds[r]:bounds[r + 1]]``.  The non-zero results and their
    ``indices`` are written from ``data_out[start]`` on and ``counts[r]`` gets the number kept
    in row ``r``.  Returns the position after the last value written, or -1 if any count is
    not a non-negative integer (NaN, inf, negative, fractional or above 2**63).

    The ``q``-th non-zero count ``n`` takes the random byte ``c = cells[q]`` and its result
    from the guide table; in the rare ambiguous cells (and for ``n > NMAX``) a draw from
    ``rng`` resolves it exactly (see :func:`guide_tables`).  Stored zeros take no byte, so
    explicit zeros never change the result.
    """
    filled = start
    q = 0
    bad = False
    for r in range(bounds.size - 1):
        row_start = filled
        for j in range(bounds[r], bounds[r + 1]):
            v = values[j]
            n = np.int64(v)  # NaN and inf give a value != v, as do fractions
            bad |= (v < 0) | (v != n)
            if n == 0:
                continue
            c = np.int64(cells[q])
            q += 1
            row = min(max(n, 0), NMAX + 1)  # clamped, so bad values cannot index outside
            k = np.int64(table[(row << 8) | c])
            if k == SENTINEL:
                if row > NMAX:
                    k = rng.binomial(n, p)
                else:  # X = lo + #{j in [lo, hi) : 256 CDF(j) - c <= u}, u ~ U[0, 1)
                    u = rng.random()
                    k = np.int64(lo[row, c])
                    stop = np.int64(hi[row, c])
                    while k < stop and scaled[row, k] - c <= u:
                        k += 1
            # Branch-free on the (unpredictable) zero test: the value is always written and
            # the output position only advances when it is kept; filled <= start + j.
            data_out[filled] = k
            indices_out[filled] = indices[j]
            filled += k != 0
        counts[r] = filled - row_start
    return -1 if bad else filled


@njit(cache=True, nogil=True)
def _geometric_gap(rng, log_q):  # pragma: no cover - compiled
    """Molecules skipped before the next kept one: ``floor(log(U) / log(1 - p))``, U ~ U(0, 1]."""
    return np.int64(math.floor(math.log(1.0 - rng.random()) / log_q))


@njit(cache=True, nogil=True)
def _skip_rows_kernel(
    values, indices, bounds, p, uniforms, rng, data_out, indices_out, start, counts
):  # pragma: no cover - compiled; exercised through downsample_counts
    """As :func:`_thin_rows_kernel` for small ``p``, by skipping to the next kept molecule.

    The block's molecules are taken in order (row by row, count by count) and the gap to the
    next kept one is drawn directly, ``G = floor(log(U) / log(1 - p))`` with
    ``U ~ U(0, 1]`` (``P(G >= g) = (1 - p)**g``), which keeps every molecule independently
    with probability ``p``: exactly binomial thinning, at the cost of one draw per *kept*
    molecule instead of one per count.  Used for ``_EXACT_BELOW <= p <= _SKIP_BELOW``, where
    a gap is below ``37 / p`` (no int64 overflow) and the 53-bit ``U`` resolves the keep
    probability to a relative ``2**-53 / p < 1e-10``.

    ``gap`` counts the molecules still to skip, relative to the current position, so no
    running total can overflow.  A count of ``_HUGE`` molecules or more is not walked: if the
    next kept molecule lies inside it, the rest of the count is ``Binomial(rest, p)`` and the
    gap from the end of the count is a fresh draw (the geometric law is memoryless).

    With ``uniforms`` (for ``p < _EXACT_BELOW``: one per non-zero count, else empty) each
    count is thinned on its own by :func:`_exact_binomial` instead, which is exact for every
    double ``p`` down to the smallest subnormal, where a 53-bit uniform cannot even resolve the
    keep probability of one molecule.  Most counts keep nothing and are decided by their
    bulk-drawn uniform alone: ~10 ns a count.
    """
    log_q = math.log1p(-p)
    filled = start
    bad = False
    exact = uniforms.size > 0
    reject = -log_q * (1.0 + 2.0**-50)
    used = 0
    gap = np.int64(0) if exact else _geometric_gap(rng, log_q)
    for r in range(bounds.size - 1):
        row_start = filled
        for j in range(bounds[r], bounds[r + 1]):
            v = values[j]
            n = np.int64(v)
            bad |= (v < 0) | (v != n)
            rest = max(n, 0)
            k = 0
            if exact:
                if n != 0:  # as the guide-table kernel: a uniform per non-zero count
                    u = uniforms[min(used, uniforms.size - 1)]
                    used += 1
                    # most counts keep nothing: U >= rest * -log1p(-p) >= P(any kept), decided
                    # here (the same test opens _exact_binomial), without a call
                    if rest and u < rest * reject + 1.1102230246251565e-16:
                        k = _exact_binomial(rest, p, log_q, rng, u)
            elif rest >= _HUGE and gap < rest:
                k = 1 + rng.binomial(rest - gap - 1, p)
                gap = _geometric_gap(rng, log_q)
            else:
                while gap < rest:
                    k += 1
                    rest -= gap + 1
                    gap = _geometric_gap(rng, log_q)
                gap -= rest
            if k:  # rarely true at these fractions, so the branch is well predicted
                data_out[filled] = k
                indices_out[filled] = indices[j]
                filled += 1
        counts[r] = filled - row_start
    return -1 if bad else filled


@njit(cache=True, nogil=True)
def bernoulli(rng, q, first):  # pragma: no cover - compiled
    """True with probability exactly ``q`` (any double in [0, 1], subnormals included).

    ``U < q`` for a uniform ``U`` whose bits are drawn 53 at a time, only as long as they tie
    with the bits of ``q``: ``first`` holds the first 53 bits (an integer-valued float, already
    drawn), and a further draw is needed with probability ``2**-53`` each.
    """
    k = first
    while True:
        scaled = q * 9007199254740992.0  # q * 2**53: exact (a power of two)
        whole = math.floor(scaled)
        if k != whole:
            return k < whole
        q = scaled - whole  # the next bits of q (exact)
        if q <= 0.0:
            return False
        k = math.floor(rng.random() * 9007199254740992.0)  # the next 53 bits, exactly


@njit(cache=True, nogil=True)
def _exact_binomial(n, p, log_q, rng, u):  # pragma: no cover - compiled
    """``Binomial(n, p)`` for tiny ``p`` (``log_q = log1p(-p)``), exact at any double ``p``.

    The first kept molecule of the ``rest`` still to thin exists with probability
    ``q = 1 - (1 - p)**rest`` (an exact Bernoulli, see :func:`bernoulli`); its position is
    the geometric gap truncated to ``[0, rest)``, by inversion; then the same for what is
    after it.  ``u`` is the count's first uniform (drawn in bulk by the caller: numpy fills an
    array ~10x faster than a compiled loop calls the generator); two more draws per kept
    molecule.
    """
    k = 0
    rest = n
    while rest > 0:
        if rest * p > 16.0:  # many kept molecules (only for counts above 1.6e7): numpy
            return k + rng.binomial(rest, p)
        # the first 53 bits of the uniform; as q <= x = -rest * log1p(-p), most counts are
        # decided here without computing q
        first = math.floor(u * 9007199254740992.0)
        x = rest * -log_q
        if first >= x * 9007199254740992.0 * (1.0 + 2.0**-50) + 1.0:
            return k
        q = -math.expm1(-x)
        if not bernoulli(rng, q, first):
            return k
        u = rng.random()
        if q < 1e-150:  # log1p(-u q) = -u q to double precision; avoids subnormal products
            g = u * (q / -log_q)
        else:
            g = math.log1p(-u * q) / log_q
        gap = rest - 1 if g >= 9.0e18 else min(np.int64(g), rest - 1)
        k += 1
        rest -= gap + 1
        u = rng.random()
    return k


@njit(cache=True, nogil=True)
def _exact_binomials(n, p, rng):  # pragma: no cover - compiled
    """:func:`_exact_binomial` of every ``n[i]`` with its own ``p[i]``."""
    out = np.empty(n.size, dtype=np.int64)
    for i in range(n.size):
        out[i] = _exact_binomial(n[i], p[i], math.log1p(-p[i]), rng, rng.random())
    return out


def _thin_rows(
    values, indices, bounds, p: float, tables, rng, data_out, indices_out, start, counts
):
    """Thin a block of CSR rows with one fraction ``0 < p < 1``.

    ``tables`` is ``guide_tables(p)`` for :func:`_thin_rows_kernel`, or ``None`` for the
    small-fraction sampler :func:`_skip_rows_kernel` (exact per count below
    ``_EXACT_BELOW``).  Returns the position in ``data_out`` after the last value written.
    """
    if tables is None:
        # below _EXACT_BELOW, the first uniform of every non-zero count, drawn in bulk
        uniforms = rng.random(np.count_nonzero(values) if p < _EXACT_BELOW else 0)
        stop = _skip_rows_kernel(
            values, indices, bounds, p, uniforms, rng, data_out, indices_out, start, counts
        )
    else:
        table, lo, hi, scaled = tables
        # a byte per non-zero count (so that stored zeros leave the stream untouched)
        cells = _random_bytes(rng, np.count_nonzero(values))
        stop = _thin_rows_kernel(
            values, indices, bounds, p, cells, rng, table, lo, hi, scaled, data_out,
            indices_out, start, counts,
        )
    if stop < 0:
        _validate_counts(values)  # raises with the precise reason
        msg = "Counts must be non-negative integers below 2**63."
        raise ValueError(msg)
    return stop


def _thin_values(values: np.ndarray, p, rng: np.random.Generator):
    """Thin a 1-D array of counts; ``p`` is a float or a per-value float array.

    Returns ``(keep, kept)``: sorted positions of the non-zero results and their values.
    """
    if np.ndim(p) == 0:
        if p == 0.0:
            _small_counts(values)  # validate only
            return np.zeros(0, dtype=np.intp), values[:0].copy()
        _small_counts(values)
        out = values
    else:
        _validate_counts(values)
        n = values.astype(np.int64)
        out = rng.binomial(n, p)
        # numpy's inversion cannot resolve keep probabilities below ~1e-16: redraw the counts
        # of tiny fractions exactly (the draws above are unchanged by this)
        tiny = (p < _EXACT_BELOW) & (n > 0)
        if tiny.any():
            out[tiny] = _exact_binomials(n[tiny], p[tiny], rng)
    keep = np.flatnonzero(out != 0)
    return keep, out.take(keep).astype(values.dtype)


def _check_n_jobs(n_jobs) -> int:
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs == 0:
        msg = f"`n_jobs` must be None, a positive integer or -1 (all CPUs), got {n_jobs!r}."
        raise ValueError(msg)
    if n_jobs < 0:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, (cpus or 1) + 1 + int(n_jobs))  # -1: all, -2: all but one, ...
    return int(n_jobs)


def _map_blocks(func, n_blocks: int, n_jobs: int, consume=None) -> None:
    """Call ``func(b)`` for every block, on ``n_jobs`` threads (the kernels release the GIL).

    ``consume(b, result)`` is called with each result in block order; with one thread right
    after each block, so that only one block's temporaries are alive at a time.
    """
    if n_jobs == 1 or n_blocks < 2:
        for b in range(n_blocks):
            result = func(b)
            if consume is not None:
                consume(b, result)
        return
    with ThreadPoolExecutor(max_workers=min(n_jobs, n_blocks)) as pool:
        for b, result in enumerate(pool.map(func, range(n_blocks))):
            if consume is not None:
                consume(b, result)


def thin_csr_rows(data, indices, indptr, fraction, seed: int, first_block: int, n_jobs=1):
    """Thin CSR rows (``indptr`` from 0) whose first row starts block ``first_block``.

    Returns ``(data, indices, indptr)`` with the zeros left by thinning removed.  Blocks are
    independent, so running them on several threads gives the same result.
    """
    n_rows = len(indptr) - 1
    n_blocks = -(-n_rows // BLOCK_ROWS)
    counts = np.zeros(n_rows, dtype=np.int64)
    # Written in place and shrunk at the end (realloc, no copy): each output page is touched
    # once, where concatenating per-block pieces would touch it twice.
    data_out = np.empty(int(indptr[-1]), dtype=data.dtype)
    indices_out = np.empty(int(indptr[-1]), dtype=indices.dtype)
    filled = 0
    fused = np.ndim(fraction) == 0 and 0 < fraction < 1  # one of the compiled kernels
    # built once, before the threads start; None selects the small-fraction sampler
    tables = guide_tables(fraction) if fused and fraction > _SKIP_BELOW else None
    serial = n_jobs == 1 or n_blocks < 2  # one block at a time: write straight to the output

    def block(b):
        r0 = b * BLOCK_ROWS
        r1 = min(r0 + BLOCK_ROWS, n_rows)
        s, e = int(indptr[r0]), int(indptr[r1])
        bounds = np.asarray(indptr[r0 : r1 + 1], dtype=np.int64) - s
        rng = _block_rng(seed, first_block + b)
        if not fused:
            p = fraction
            if np.ndim(fraction):
                p = np.repeat(fraction[r0:r1], np.diff(bounds))
            keep, kept = _thin_values(data[s:e], p, rng)
            counts[r0:r1] = np.diff(np.searchsorted(keep, bounds, side="left"))
            return kept, np.take(indices[s:e], keep), 0, kept.size
        if serial:
            out_d, out_i, start = data_out, indices_out, filled
        else:
            out_d, out_i, start = np.empty(e - s, data.dtype), np.empty(e - s, indices.dtype), 0
        stop = _thin_rows(
            data[s:e], indices[s:e], bounds, fraction, tables, rng, out_d, out_i, start,
            counts[r0:r1],
        )
        return out_d, out_i, start, stop

    def place(b, result):
        nonlocal filled
        out_d, out_i, start, stop = result
        if out_d is data_out:  # written in place already
            filled = stop
            return
        n = stop - start
        data_out[filled : filled + n] = out_d[start:stop]
        indices_out[filled : filled + n] = out_i[start:stop]
        filled += n

    _map_blocks(block, n_blocks, n_jobs, place)
    data_out = _shrink(data_out, filled)
    indices_out = _shrink(indices_out, filled)
    new_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=new_indptr[1:])
    return data_out, indices_out, new_indptr


def _shrink(arr: np.ndarray, size: int) -> np.ndarray:
    """``arr[:size]`` without keeping the rest alive: in-place realloc, else a copy."""
    try:
        arr.resize(size, refcheck=False)
    except ValueError:  # pragma: no cover - arrays we allocate own their data
        return arr[:size].copy()
    return arr


def _canonical_csr(x):
    x = x.tocsr()
    if not x.has_canonical_format:
        x = x.copy()
        x.sum_duplicates()
    return x


def _check_matrix(x):
    if sparse.issparse(x):
        if x.ndim != 2:
            msg = f"Counts must be a 2-D matrix (cells x genes), got {x.ndim} dimensions."
            raise ValueError(msg)
        _check_dtype(x.dtype)
        return x
    arr = np.asarray(x)
    if arr.ndim != 2:
        msg = f"Counts must be a 2-D matrix (cells x genes), got shape {arr.shape}."
        raise ValueError(msg)
    _check_dtype(arr.dtype)
    return arr
