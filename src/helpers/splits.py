"""Training-size grids, a fixed held-out evaluation set, training subsets and validation splits.

The paper learns representations on training subsets of increasing size and measures
auxiliary MI on one fixed held-out set per dataset, so that differences in MI come from the
representations and not from the estimator's sample. The pieces:

* :func:`size_grid`: the log-spaced training sizes of the published results;
* :func:`evaluation_split`: the fixed evaluation set, optionally by groups so that paired cells
  (see :func:`pair_groups`) are never split between evaluation and training;
* :func:`training_subset` / :func:`training_subsets`: nested subsets of the training pool
  (for one seed, every larger subset contains the smaller ones);
* :func:`validation_split`: the 80/20 fit/validation split for early stopping (Table S2).

Every random choice is seeded; the three kinds of draw use independent random streams
(``numpy.random.SeedSequence([seed, purpose])``), so reusing one seed for all of them does not
correlate the evaluation set with the training subsets.

Examples
--------
>>> sizes = size_grid(6_855, max_size=100_000)   # the paper's PBMC grid, capped at the data
>>> sizes.tolist()
[100, 215, 464, 1000, 2154, 4641]
>>> pool, eval_idx = evaluation_split(6_855, n_eval=1_000, seed=0)
>>> subsets = training_subsets(pool, sizes, seeds=[0, 1])
>>> fit_idx, val_idx = validation_split(subsets[(1000, 0)], seed=0)
>>> len(fit_idx), len(val_idx)
(800, 200)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from helpers._checks import check_seed

__all__ = [
    "evaluation_split",
    "fit_size",
    "pair_groups",
    "size_grid",
    "training_subset",
    "training_subsets",
    "validation_split",
    "VALIDATION_FRACTION",
]

_EVAL, _TRAIN, _VAL = 1, 2, 3  # purposes, mixed into the seed

#: Fraction of a job's training samples held out for validation (early stopping), Table S2.
VALIDATION_FRACTION = 0.2


def _rng(seed: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([check_seed(seed), purpose]))


def _floor_one_digit(n: int) -> int:
    """``n`` rounded down to one significant digit: 67,821 → 60,000; 161,764 → 100,000."""
    scale = 10 ** (len(str(int(n))) - 1)
    return (int(n) // scale) * scale


def size_grid(
    n_available: int, *, n_sizes: int = 10, min_size: int = 100, max_size: int | None = None
) -> np.ndarray:
    """Log-spaced training sizes, as in the published results.

    ``n_sizes`` sizes equally spaced in log from ``min_size`` to ``max_size``, truncated to
    integers (the published grids truncate: 4641.59 → 4641). Sizes larger than
    ``n_available`` are dropped, so a grid can be reused on a smaller dataset.

    Parameters
    ----------
    n_available
        Number of cells available for training.
    n_sizes
        Number of sizes from ``min_size`` to ``max_size`` (before dropping those above
        ``n_available``).
    min_size
        Smallest size.
    max_size
        Largest size; by default ``n_available`` rounded down to one significant digit, which
        gives the published grids from the dataset sizes: PBMC (161,764 cells) and LARRY
        (130,887) 100 … 100,000; MERFISH (67,821) 100 … 60,000; the embryo atlas (~11.4M)
        100 … 10,000,000.

    Returns
    -------
    numpy.ndarray
        Strictly increasing ``int64`` sizes.

    Examples
    --------
    >>> size_grid(67_821).tolist()
    [100, 203, 414, 843, 1716, 3494, 7113, 14480, 29475, 60000]
    >>> size_grid(6_855, max_size=100_000).tolist()
    [100, 215, 464, 1000, 2154, 4641]
    """
    n_available = int(n_available)
    if n_sizes < 2:
        msg = f"n_sizes must be at least 2, got {n_sizes}."
        raise ValueError(msg)
    if min_size < 1 or min_size > n_available:
        msg = f"min_size must be in [1, n_available={n_available}], got {min_size}."
        raise ValueError(msg)
    if max_size is None:
        max_size = _floor_one_digit(n_available)
    if max_size <= min_size:
        msg = f"max_size ({max_size}) must exceed min_size ({min_size})."
        raise ValueError(msg)
    grid = np.logspace(np.log10(min_size), np.log10(max_size), n_sizes)
    sizes = np.floor(grid * (1 + 1e-12)).astype(np.int64)  # guard 999.9999… → 1000
    if np.any(np.diff(sizes) <= 0):
        msg = f"{n_sizes} sizes between {min_size} and {max_size} are not all distinct."
        raise ValueError(msg)
    return sizes[sizes <= n_available]


def pair_groups(n_cells: int, idx_a, idx_b) -> np.ndarray:
    """Group label per cell such that paired cells share a group.

    Groups are the connected components of the graph whose edges are the pairs
    ``(idx_a[i], idx_b[i])``; unpaired cells are groups of one. Pass the result as ``groups``
    to :func:`evaluation_split` so that no evaluation cell has its partner in training.

    Examples
    --------
    >>> pair_groups(5, [0, 1], [1, 3]).tolist()
    [0, 0, 1, 0, 2]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a = np.asarray(idx_a, dtype=np.int64).ravel()
    b = np.asarray(idx_b, dtype=np.int64).ravel()
    if a.shape != b.shape:
        msg = f"idx_a and idx_b must have the same length, got {a.size} and {b.size}."
        raise ValueError(msg)
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_cells):
        msg = f"pair indices must lie in [0, {n_cells})."
        raise ValueError(msg)
    graph = coo_matrix((np.ones(a.size), (a, b)), shape=(n_cells, n_cells))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def evaluation_split(
    n_cells: int, *, n_eval: int, seed: int, groups=None, eligible=None
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed held-out evaluation set and the training pool (all other cells).

    Parameters
    ----------
    n_cells
        Number of cells in the dataset.
    n_eval
        Size of the evaluation set. With ``groups``, whole groups are drawn until at least
        ``n_eval`` cells are held out, so the set can exceed ``n_eval`` by less than the
        largest group.
    seed
        Seed; the same (n_cells, n_eval, seed, groups, eligible) always give the same split.
    groups
        Optional group label per cell (e.g. from :func:`pair_groups`): a group is held out
        whole or not at all.
    eligible
        Optional boolean mask or integer positions of the cells that may be held out (e.g. the
        cells of the probe's pairs); with ``groups``, a group is eligible only if all its
        cells are.

    Returns
    -------
    train_pool_idx, eval_idx
        Sorted, disjoint integer positions covering all cells.

    Raises
    ------
    ValueError
        ``n_eval`` not in [1, n_cells) or larger than the eligible cells, or inputs of the
        wrong length.

    Examples
    --------
    >>> pool, held = evaluation_split(10, n_eval=4, seed=0, groups=[0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    >>> len(held), len(pool), set(held.tolist()) & set(pool.tolist())
    (4, 6, set())
    """
    n_cells = int(n_cells)
    if not 1 <= n_eval < n_cells:
        msg = f"n_eval must be in [1, n_cells={n_cells}), got {n_eval}."
        raise ValueError(msg)
    if groups is None:
        labels = np.arange(n_cells)
    else:
        labels = np.asarray(groups)
        if labels.shape != (n_cells,):
            msg = f"groups must have one label per cell ({n_cells}), got shape {labels.shape}."
            raise ValueError(msg)
        labels = np.unique(labels, return_inverse=True)[1].ravel()
    n_groups = int(labels.max()) + 1
    size = np.bincount(labels, minlength=n_groups)
    ok_group = np.ones(n_groups, dtype=bool)
    if eligible is not None:
        mask = np.asarray(eligible)
        if mask.dtype != bool:
            positions = mask.astype(np.int64)
            mask = np.zeros(n_cells, dtype=bool)
            mask[positions] = True
        if mask.shape != (n_cells,):
            msg = f"eligible must be a mask of length {n_cells} or integer positions."
            raise ValueError(msg)
        ok_group = np.bincount(labels, weights=~mask, minlength=n_groups) == 0
    candidates = np.flatnonzero(ok_group)
    available = int(size[candidates].sum())
    if n_eval > available:
        msg = f"n_eval={n_eval} exceeds the {available} cells eligible for evaluation."
        raise ValueError(msg)
    order = _rng(seed, _EVAL).permutation(candidates)
    n_take = int(np.searchsorted(np.cumsum(size[order]), n_eval) + 1)
    held = np.zeros(n_groups, dtype=bool)
    held[order[:n_take]] = True
    in_eval = held[labels]
    if in_eval.all():
        msg = "The evaluation set would take every cell; lower n_eval or use smaller groups."
        raise ValueError(msg)
    return np.flatnonzero(~in_eval), np.flatnonzero(in_eval)


def training_subset(train_pool_idx, size: int, *, seed: int) -> np.ndarray:
    """A random training subset of the pool, nested across sizes for one seed.

    The pool is shuffled once per seed and the subset is its first ``size`` cells, so for a
    given seed a larger subset always contains the smaller ones.

    Parameters
    ----------
    train_pool_idx
        Integer positions available for training (from :func:`evaluation_split`).
    size
        Number of cells, 1 ≤ size ≤ len(train_pool_idx).
    seed
        Seed of the shuffle.

    Returns
    -------
    numpy.ndarray
        Sorted integer positions, a subset of ``train_pool_idx``.

    Examples
    --------
    >>> small = training_subset(np.arange(100), 10, seed=3)
    >>> large = training_subset(np.arange(100), 50, seed=3)
    >>> bool(np.isin(small, large).all())
    True
    """
    pool = np.asarray(train_pool_idx, dtype=np.int64).ravel()
    if np.unique(pool).size != pool.size:
        msg = "train_pool_idx must not contain repeated cells."
        raise ValueError(msg)
    size = int(size)
    if not 1 <= size <= pool.size:
        msg = f"size must be in [1, {pool.size}] (the training pool), got {size}."
        raise ValueError(msg)
    shuffled = np.sort(pool)[_rng(seed, _TRAIN).permutation(pool.size)]
    return np.sort(shuffled[:size])


def training_subsets(
    train_pool_idx, sizes: Iterable[int], *, seeds: Sequence[int]
) -> dict[tuple[int, int], np.ndarray]:
    """Training subsets for every (size, seed): nested across sizes for each seed.

    Returns
    -------
    dict
        ``(size, seed)`` → sorted integer positions (see :func:`training_subset`).

    Examples
    --------
    >>> subsets = training_subsets(np.arange(1000), [100, 215, 464], seeds=[42, 2701])
    >>> sorted(subsets)[:2], len(subsets[(215, 42)])
    ([(100, 42), (100, 2701)], 215)
    """
    sizes = [int(s) for s in sizes]
    return {
        (s, int(seed)): training_subset(train_pool_idx, s, seed=seed)
        for seed in seeds
        for s in sizes
    }


def fit_size(n: int, *, fraction: float = VALIDATION_FRACTION) -> int:
    """How many of ``n`` training cells :func:`validation_split` leaves for fitting.

    Examples
    --------
    >>> fit_size(10), fit_size(2), fit_size(1003)
    (8, 1, 802)
    """
    return int(n) - min(max(int(round(fraction * int(n))), 1), int(n) - 1)


def validation_split(
    train_idx, *, fraction: float = VALIDATION_FRACTION, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training cells into fit and validation cells (80/20 by default, Table S2).

    Parameters
    ----------
    train_idx
        Integer positions of the training subset.
    fraction
        Fraction held out for validation, in (0, 1); rounded to whole cells, at least one in
        each part.
    seed
        Seed of the shuffle.

    Returns
    -------
    fit_idx, val_idx
        Sorted, disjoint integer positions whose union is ``train_idx``.

    Examples
    --------
    >>> fit, val = validation_split(np.arange(10), seed=0)
    >>> len(fit), len(val)
    (8, 2)
    """
    idx = np.asarray(train_idx, dtype=np.int64).ravel()
    if not 0 < fraction < 1:
        msg = f"fraction must be in (0, 1), got {fraction}."
        raise ValueError(msg)
    if idx.size < 2:
        msg = f"need at least 2 training cells to split off validation cells, got {idx.size}."
        raise ValueError(msg)
    if np.unique(idx).size != idx.size:
        msg = "train_idx must not contain repeated cells."
        raise ValueError(msg)
    n_val = idx.size - fit_size(idx.size, fraction=fraction)
    shuffled = np.sort(idx)[_rng(seed, _VAL).permutation(idx.size)]
    return np.sort(shuffled[n_val:]), np.sort(shuffled[:n_val])
