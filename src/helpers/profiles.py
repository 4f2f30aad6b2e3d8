"""The three run profiles, in one table: ``smoke``, ``quick`` and ``paper``.

A profile says how much of a task a sweep covers: how many noise levels, which training sizes,
which seeds, how many samples are held out for the probe and how many are kept at all. The
models' hyperparameters per profile live with each model's configuration
(``Config.for_profile``); everything about the *grid* is here.

=========  ==================================================================================
profile    what it is for
=========  ==================================================================================
``smoke``  seconds per chapter: continuous integration, a first look at a new task
``quick``  the default book on two CPU cores: one seed, a short grid on small real datasets
``paper``  the paper's full factorial grid (10 levels × 10 training sizes × 3 seeds) on the
           full datasets, for a GPU cluster (see the "Running at scale" chapter)
=========  ==================================================================================

Examples
--------
>>> from helpers import profiles
>>> profiles.get("paper").factorial, profiles.get("paper").seeds
(True, (0, 1, 2))
>>> profiles.get("fast")
Traceback (most recent call last):
...
ValueError: Unknown profile 'fast'; choose one of ['paper', 'quick', 'smoke'].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

__all__ = ["NAMES", "Profile", "get", "table"]


@dataclass(frozen=True)
class Profile:
    """The grid of a sweep at one profile.

    Attributes
    ----------
    name
        ``"smoke"``, ``"quick"`` or ``"paper"``.
    n_levels
        Noise levels per curve (for counts: log-spaced fractions from full depth down to
        ``min_umis`` per cell, as in the paper).
    n_sizes
        Training sizes per cell-number curve (log-spaced from ``min_size`` to the pool).
    min_size
        Smallest training size (capped by the pool).
    seeds
        Seeds; each has its own evaluation set, training subsets, noise and initialisation.
    eval_fraction
        Fraction of the samples held out for the probe.
    max_samples
        Samples kept from a dataset (a seeded random subset), or ``None`` for all.
    factorial
        ``True``: every level at every training size (the released grid, from which the noise
        law is fitted at each size and the cell-number law at each level). ``False``: the noise
        curve at the largest size and the cell-number curve at full quality only.
    min_umis
        Mean UMIs per cell at the lowest quality of a count task.
    """

    name: str
    n_levels: int
    n_sizes: int
    seeds: tuple[int, ...]
    eval_fraction: float
    max_samples: int | None
    factorial: bool
    min_size: int = 100
    min_umis: float = 10.0


_PROFILES = {
    # quick: one seed and 6 levels + 4 sizes per model keep a single-cell chapter near 5 minutes
    # on two cores (measured per row: scVI ~7 s, Geneformer ~20-30 s, probe ~5 s at ~2,400 cells)
    "smoke": Profile("smoke", n_levels=3, n_sizes=2, seeds=(0,), eval_fraction=0.4,
                     max_samples=1200, factorial=False),
    "quick": Profile("quick", n_levels=6, n_sizes=4, seeds=(0,), eval_fraction=0.35,
                     max_samples=None, factorial=False),
    # paper: the released single-cell table's grid (10 qualities x 10 sizes x 3 seeds)
    "paper": Profile("paper", n_levels=10, n_sizes=10, seeds=(0, 1, 2), eval_fraction=0.2,
                     max_samples=None, factorial=True),
}

#: The profile names, in order of cost.
NAMES = ("smoke", "quick", "paper")


def get(profile: str | Profile) -> Profile:
    """The :class:`Profile` called ``profile`` (a :class:`Profile` is returned as it is)."""
    if isinstance(profile, Profile):
        return profile
    if profile not in _PROFILES:
        msg = f"Unknown profile {profile!r}; choose one of {sorted(_PROFILES)}."
        raise ValueError(msg)
    return _PROFILES[profile]


def table() -> pd.DataFrame:
    """Every profile's grid, one row each (for the book)."""
    return pd.DataFrame([asdict(p) for p in _PROFILES.values()]).set_index("name")
