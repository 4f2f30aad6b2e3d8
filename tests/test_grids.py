"""Every task's grid at every profile: valid levels, and a price for exactly the jobs that run."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import data as hdata
from helpers import imaging, profiles, sweep, tasks

PROFILES = [*profiles.NAMES[:2], *profiles.VARIANTS]  # paper's data are not at hand here


def _data(spec, profile):
    try:
        return spec.load(profiles.base_of(profile))
    except hdata.DataUnavailableError as err:
        pytest.skip(f"data not available: {err}")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", tasks.names())
def test_every_level_is_valid_for_its_corruption(name, profile):
    """Each job's noise level corrupts the task's data (a few samples) without error, and a
    variant sweeps its base profile's levels (the count tasks: its own number of them)."""
    spec = tasks.get(name)
    data = _data(spec, profile)
    g = sweep.grid(spec, profile=profile, data=data)
    few = data[np.arange(8)].copy()
    xs = [spec.corrupt(few, level, seed=0)[1] for level in g.levels]
    assert len(set(xs)) == len(xs) and all(x > 0 for x in xs)
    base = profiles.base_of(profile)
    if spec.modality != "cell" and base != profile:
        assert g.levels == sweep.grid(spec, profile=base, data=data).levels


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", tasks.names())
def test_the_price_is_of_the_jobs_that_run(name, profile):
    spec = tasks.get(name)
    data = _data(spec, profile)
    table = sweep.price(spec, profile=profile)
    jobs = sweep.jobs(spec, profile=profile, data=data)
    assert int(table["jobs"].sum()) == len(jobs)
    for model in spec.models:
        assert int(table.loc[model, "jobs"]) == sum(j.model == model for j in jobs)


@pytest.mark.parametrize(("name", "n_jobs"), [
    ("caltech101_pixelate", 12 * 10 * 3),   # the notebook's 12 factors up to 240 pixels
    ("tissuemnist_pixelate", 11 * 10 * 3),  # the paper's 11 divisors of 224
    ("tissuemnist_gaussian", 10 * 10 * 3),
    ("seq_spike", 10 * 10 * 3 * 3),        # three ESM2 sizes
    ("sc_protein", 10 * 10 * 3 * 4),        # four models
])
def test_the_paper_grid_is_priced_from_its_size_alone(name, n_jobs):
    spec = tasks.get(name)
    table = sweep.price(spec, profile="paper", n_samples=spec.source("paper").n_samples)
    assert int(table["jobs"].sum()) == n_jobs


def test_caltech_paper_levels_follow_the_images_side():
    assert imaging.levels_caltech_pixelate(None, "paper")[-1] == 200
    assert len(imaging.levels_tissue_gaussian(None, "quick-factorial")) == 6
    assert len(imaging.levels_tissue_gaussian(None, "smoke-factorial")) == 3
