"""Tests of helpers.splits: published size grids, evaluation split, nested training subsets,
validation split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import data as hdata
from helpers import splits

# Cells per dataset in the paper (S.I; data_manifest.yml): PBMC (Hao et al. 2021), LARRY
# in vitro, MERFISH S1R1, mouse embryo atlas (about 11.4 million).
PAPER_N_CELLS = {"PBMC": 161_764, "larry": 130_887, "merfish": 67_821, "shendure": 11_400_000}


@pytest.fixture(scope="module")
def published_sizes():
    # through the manifest: cache, then the mirror named by NOISESCALING_DATA_MIRROR
    try:
        path = hdata.fetch("published/collect_mi_results")
    except hdata.DataUnavailableError as err:
        pytest.skip(f"published results not available: {err}")
    table = pd.read_csv(path, usecols=["dataset", "size"])
    return {name: np.sort(g["size"].unique()) for name, g in table.groupby("dataset")}


@pytest.mark.parametrize("dataset", sorted(PAPER_N_CELLS))
def test_size_grid_reproduces_published_grids(published_sizes, dataset):
    grid = splits.size_grid(PAPER_N_CELLS[dataset])
    np.testing.assert_array_equal(grid, published_sizes[dataset])
    assert grid.dtype == np.int64


def test_size_grid_capped_at_available(published_sizes):
    pbmc = published_sizes["PBMC"]
    grid = splits.size_grid(6_855, max_size=100_000)
    np.testing.assert_array_equal(grid, pbmc[pbmc <= 6_855])
    # Default maximum: 6,855 rounded down to one digit; ten log-equal steps from 100.
    grid = splits.size_grid(6_855)
    assert grid[0] == 100 and grid[-1] == 6_000 and grid.size == 10
    ratios = grid[1:] / grid[:-1]
    np.testing.assert_allclose(ratios, 60 ** (1 / 9), rtol=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_available": 1000, "n_sizes": 1}, "n_sizes"),
        ({"n_available": 50}, "min_size"),
        ({"n_available": 1000, "max_size": 100}, "must exceed"),
        ({"n_available": 1000, "min_size": 100, "max_size": 105, "n_sizes": 10}, "distinct"),
    ],
)
def test_size_grid_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        splits.size_grid(**kwargs)


def test_evaluation_split_basic():
    pool, held = splits.evaluation_split(1000, n_eval=200, seed=7)
    assert held.size == 200 and pool.size == 800
    assert np.intersect1d(pool, held).size == 0
    np.testing.assert_array_equal(np.union1d(pool, held), np.arange(1000))
    assert np.all(np.diff(pool) > 0) and np.all(np.diff(held) > 0)
    pool2, held2 = splits.evaluation_split(1000, n_eval=200, seed=7)
    np.testing.assert_array_equal(held, held2)
    _, held3 = splits.evaluation_split(1000, n_eval=200, seed=8)
    assert not np.array_equal(held, held3)


def test_evaluation_split_is_uniform():
    counts = np.zeros(40)
    for seed in range(1000):
        _, held = splits.evaluation_split(40, n_eval=10, seed=seed)
        counts[held] += 1
    np.testing.assert_allclose(counts / 1000, 0.25, atol=0.06)


def test_evaluation_split_groups_and_eligible():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 300, size=1000)
    pool, held = splits.evaluation_split(1000, n_eval=150, seed=1, groups=groups)
    assert np.intersect1d(groups[pool], groups[held]).size == 0  # no group is split
    largest = np.bincount(groups).max()
    assert 150 <= held.size < 150 + largest

    eligible = np.zeros(1000, dtype=bool)
    eligible[:500] = True
    pool, held = splits.evaluation_split(1000, n_eval=100, seed=2, eligible=eligible)
    assert held.size == 100 and held.max() < 500
    # Integer positions work too; with groups, only groups entirely eligible are held out.
    pool, held = splits.evaluation_split(
        1000, n_eval=50, seed=2, groups=groups, eligible=np.arange(500)
    )
    ok = np.bincount(groups, weights=~eligible, minlength=300) == 0
    assert np.all(ok[groups[held]])


def test_evaluation_split_with_pairs_keeps_partners_out_of_training():
    # Chain-like partner structure as in spatial pairs: i -> partner[i].
    rng = np.random.default_rng(3)
    n = 500
    partner = (np.arange(n) + rng.integers(1, 4, size=n)) % n
    partner[::7] = np.arange(0, n, 7)[::-1]
    groups = splits.pair_groups(n, np.arange(n), partner)
    pool, held = splits.evaluation_split(n, n_eval=100, seed=0, groups=groups)
    in_eval = np.isin(np.arange(n), held)
    assert np.all(in_eval[partner[held]])  # partners of eval cells are eval cells
    assert not np.any(in_eval[partner[pool]])


def test_pair_groups():
    g = splits.pair_groups(6, [0, 2, 4], [1, 3, 2])
    assert g[0] == g[1] and g[2] == g[3] == g[4]
    assert len({g[0], g[2], g[5]}) == 3
    with pytest.raises(ValueError, match="same length"):
        splits.pair_groups(6, [0, 1], [1])
    with pytest.raises(ValueError, match="lie in"):
        splits.pair_groups(3, [0], [3])


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((100,), {"n_eval": 100, "seed": 0}, "n_eval must be in"),
        ((100,), {"n_eval": 0, "seed": 0}, "n_eval must be in"),
        ((100,), {"n_eval": 10, "seed": -1}, "seed"),
        ((100,), {"n_eval": 10, "seed": 0, "groups": np.zeros(99)}, "one label per cell"),
        ((100,), {"n_eval": 60, "seed": 0, "eligible": np.arange(50)}, "exceeds"),
        ((100,), {"n_eval": 10, "seed": 0, "groups": np.zeros(100)}, "every cell"),
    ],
)
def test_evaluation_split_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        splits.evaluation_split(*args, **kwargs)


def test_training_subsets_nested_and_disjoint_from_eval():
    pool, held = splits.evaluation_split(5000, n_eval=500, seed=0)
    sizes = splits.size_grid(pool.size, max_size=100_000)
    np.testing.assert_array_equal(sizes, [100, 215, 464, 1000, 2154])
    subsets = splits.training_subsets(pool, sizes, seeds=[42, 2701])
    assert set(subsets) == {(int(s), seed) for s in sizes for seed in (42, 2701)}
    for seed in (42, 2701):
        previous = np.array([], dtype=np.int64)
        for s in sizes:
            idx = subsets[(int(s), seed)]
            assert idx.size == s and np.unique(idx).size == s
            assert np.isin(idx, pool).all()
            assert np.intersect1d(idx, held).size == 0
            assert np.isin(previous, idx).all()  # nested
            previous = idx
    assert not np.array_equal(subsets[(100, 42)], subsets[(100, 2701)])
    again = splits.training_subset(pool, 464, seed=42)
    np.testing.assert_array_equal(again, subsets[(464, 42)])
    # The order of the pool does not matter.
    np.testing.assert_array_equal(splits.training_subset(pool[::-1], 464, seed=42), again)


def test_training_subset_errors():
    with pytest.raises(ValueError, match="size must be in"):
        splits.training_subset(np.arange(10), 11, seed=0)
    with pytest.raises(ValueError, match="size must be in"):
        splits.training_subset(np.arange(10), 0, seed=0)
    with pytest.raises(ValueError, match="repeated"):
        splits.training_subset(np.array([1, 1, 2]), 2, seed=0)


def test_validation_split():
    train = splits.training_subset(np.arange(3000), 1000, seed=5)
    fit, val = splits.validation_split(train, seed=5)
    assert fit.size == 800 and val.size == 200
    assert np.intersect1d(fit, val).size == 0
    np.testing.assert_array_equal(np.union1d(fit, val), train)
    fit2, val2 = splits.validation_split(train, seed=5)
    np.testing.assert_array_equal(val, val2)
    _, val3 = splits.validation_split(train, seed=6)
    assert not np.array_equal(val, val3)
    fit, val = splits.validation_split(train[:3], fraction=0.1, seed=0)
    assert val.size == 1 and fit.size == 2
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ValueError, match="fraction"):
            splits.validation_split(train, fraction=bad, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        splits.validation_split(train[:1], seed=0)
