"""helpers.tasks and helpers.profiles: the registry, the profile table, the evaluation split."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from helpers import data as hdata
from helpers import datasets, profiles, published, tasks


def test_registry_covers_the_single_cell_tasks_of_the_paper():
    # the book's own (hp.apply registers your data's tasks beside them)
    cells = [tasks.get(n) for n in ("sc_clonal", "sc_protein", "sc_spatial", "sc_temporal")]
    assert {t.title for t in cells} == {"Protein MI", "Clonal MI", "Temporal MI", "Spatial MI"}
    for spec in cells:
        # every task's paper counterpart names curves that exist in the released table
        assert spec.paper.signal in published.SIGNAL_TASK
        assert published.SIGNAL_TASK[spec.paper.signal] == spec.title
        for profile in profiles.NAMES:
            source = spec.source(profile)
            assert datasets.signal_kind(source.signal) == spec.signal_kind(profile)
            assert source.loader.__name__ in {f"load_{n}" for n in datasets.dataset_names()}
    assert tasks.get("sc_clonal").source("paper").options == {"per_clone": "one"}
    assert tasks.get("sc_clonal").source("smoke").options == {"per_clone": "any_mate"}


def test_registry_refuses_bad_names_and_specs():
    with pytest.raises(ValueError, match="Unknown task 'nope'"):
        tasks.get("nope")
    spec = tasks.get("sc_protein")
    with pytest.raises(ValueError, match="one of the book's tasks and cannot be replaced"):
        tasks.register(tasks.TaskSpec(**{**spec.__dict__, "title": "other"}), replace=True)
    with tasks.temporary(tasks.TaskSpec(**{**spec.__dict__, "name": "mine"})):
        with pytest.raises(ValueError, match="already registered"):
            tasks.register(tasks.TaskSpec(**{**spec.__dict__, "name": "mine"}))
    with pytest.raises(ValueError, match="lacks a source"):
        tasks.register(tasks.TaskSpec(**{**spec.__dict__, "name": "x", "sources": {}}))
    with pytest.raises(TypeError, match="TaskSpec"):
        tasks.register({"name": "x"})


def test_profiles_table():
    t = profiles.table()
    assert list(t.index) == ["smoke", "quick", "paper"]
    paper = profiles.get("paper")
    grid = (paper.n_levels, paper.n_sizes, paper.seeds, paper.factorial)
    assert grid == (10, 10, (0, 1, 2), True)
    with pytest.raises(ValueError, match="Unknown profile"):
        profiles.get("huge")


def test_table_lists_every_task():
    t = tasks.table()
    assert set(t.index) == set(tasks.names())
    assert set(t["kind"]) >= {"vector", "scalar", "partner"}


@pytest.fixture(scope="module")
def osmfish_smoke():
    try:
        return tasks.get("sc_spatial").load("smoke")
    except hdata.DataUnavailableError as err:
        pytest.skip(f"data not available: {err}")


def test_smoke_subsample_is_fixed_and_cached(osmfish_smoke):
    assert len(osmfish_smoke) == profiles.get("smoke").max_samples
    assert tasks.get("sc_spatial").load("smoke") is osmfish_smoke


def test_holdout_keeps_partners_together(osmfish_smoke):
    held = tasks.holdout("sc_spatial", osmfish_smoke, profile="smoke", seed=0)
    n = len(osmfish_smoke)
    # whole groups of partners move together, so the size is met to within a group or two
    assert abs(held.eval_idx.size - round(profiles.get("smoke").eval_fraction * n)) <= 5
    assert np.intersect1d(held.eval_idx, held.train_pool).size == 0
    # every probed pair lies inside the evaluation set, never across the split
    assert np.isin(held.index, held.eval_idx).all() and np.isin(held.target, held.eval_idx).all()
    assert held.kind == "partner" and held.n_pairs > 100


def test_doctests():
    for module in (tasks, profiles):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0
