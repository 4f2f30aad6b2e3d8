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

Each has a *factorial variant* (:func:`factorial`): the same data and model settings, every
level at every size, under its own name (``quick-factorial``; ``paper`` is factorial already).
A job records its profile by name only (:class:`helpers.sweep.Job`), so a grid that differs
from a registered profile must have a registered name of its own: :func:`get` refuses a changed
copy that keeps the old name, whose jobs would share ids with the registered grid's.

Examples
--------
>>> from helpers import profiles
>>> profiles.get("paper").factorial, profiles.get("paper").seeds
(True, (0, 1, 2))
>>> variant = profiles.factorial("quick")
>>> variant.name, variant.base, variant.factorial
('quick-factorial', 'quick', True)
>>> profiles.get("fast")
Traceback (most recent call last):
...
ValueError: Unknown profile 'fast'; choose one of ['paper', 'quick', 'quick-factorial', \
'smoke', 'smoke-factorial'].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import pandas as pd

__all__ = ["NAMES", "VARIANTS", "PerProfile", "Profile", "base_of", "factorial", "get", "table"]


@dataclass(frozen=True)
class Profile:
    """The grid of a sweep at one profile.

    Attributes
    ----------
    name
        ``"smoke"``, ``"quick"``, ``"paper"`` or a variant's name (``"quick-factorial"``).
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
    base
        The profile (one of :data:`NAMES`) whose data and model hyperparameters the grid uses:
        the profile itself, or the one a variant is derived from.
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
    base: str | None = None

    def __post_init__(self):
        if self.base is None:
            object.__setattr__(self, "base", self.name)


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

# The factorial variants: the base profile's data and model settings, every level at every size.
# A joint cells x depth law is cross-validated on its (size, level) cells in folds, and each
# training fold must hold the richest joint form's 2 x 6 points: smoke's 3 levels x 2 sizes are
# too few, so its variant sweeps 4 x 4 cells (4 folds of 12 training cells); quick's 6 x 4 = 24
# cells allow 5 folds.
_VARIANTS = {
    "smoke-factorial": replace(_PROFILES["smoke"], name="smoke-factorial", base="smoke",
                               factorial=True, n_levels=4, n_sizes=4),
    "quick-factorial": replace(_PROFILES["quick"], name="quick-factorial", base="quick",
                               factorial=True),
}

#: The variants' names (see :func:`factorial`).
VARIANTS = tuple(_VARIANTS)

_ALL = {**_PROFILES, **_VARIANTS}


def get(profile: str | Profile) -> Profile:
    """The registered :class:`Profile` called ``profile`` (a profile's or a variant's name).

    A :class:`Profile` is returned as it is if it is the registered profile of its name;
    a changed copy (``dataclasses.replace(get("quick"), factorial=True)``) is refused, since
    its jobs would carry the registered profile's name and share ids and shards with it.
    """
    if isinstance(profile, Profile):
        known = _ALL.get(profile.name)
        if known != profile:
            msg = (
                f"Profile {profile.name!r} is not the registered profile of that name; a job "
                "records only the name, so a changed grid would share its jobs' ids. Use a "
                f"registered profile or variant ({sorted(_ALL)}), e.g. factorial('quick')."
            )
            raise ValueError(msg)
        return known
    if profile not in _ALL:
        msg = f"Unknown profile {profile!r}; choose one of {sorted(_ALL)}."
        raise ValueError(msg)
    return _ALL[profile]


def base_of(profile: str | Profile) -> str:
    """The base profile (one of :data:`NAMES`) whose data, levels and settings a profile or
    variant uses: what every per-profile choice keys on, never a variant's own name.

    Examples
    --------
    >>> base_of("quick-factorial"), base_of(get("paper")), base_of("smoke")
    ('quick', 'paper', 'smoke')
    """
    return get(profile).base


@dataclass(frozen=True)
class PerProfile:
    """A task's noise levels as data: one tuple per base profile, read through
    :func:`base_of` (a variant gets its base's), in the shape of a task's ``levels(data,
    profile)``.

    Examples
    --------
    >>> levels = PerProfile({"smoke": (1.0, 0.1), "quick": (1.0, 0.3, 0.1), "paper": (1.0,)})
    >>> levels(None, "quick-factorial"), levels(None, get("smoke"))
    ((1.0, 0.3, 0.1), (1.0, 0.1))
    """

    table: dict

    def __post_init__(self):
        missing = sorted(set(NAMES) - set(self.table))
        if missing:
            msg = f"PerProfile needs levels for every base profile; missing {missing}."
            raise ValueError(msg)
        object.__setattr__(self, "table", {k: tuple(float(v) for v in vals)
                                           for k, vals in self.table.items()})

    def __call__(self, data, profile) -> tuple[float, ...]:
        del data  # the task interface: these levels do not depend on the data
        return self.table[base_of(profile)]

    def __hash__(self):
        return hash(tuple(sorted(self.table.items())))


def factorial(profile: str | Profile) -> Profile:
    """The factorial variant of a profile: its data and model settings, every noise level at
    every training size (``paper`` is factorial already and is returned as it is).

    The variant has its own name (``quick-factorial``), which its jobs record, so a factorial
    and a non-factorial sweep never share a job id, even in one results folder.
    """
    prof = get(profile)
    if prof.factorial:
        return prof
    return _VARIANTS[f"{prof.base}-factorial"]


def table(*, variants: bool = False) -> pd.DataFrame:
    """Every profile's grid, one row each (for the book; ``variants=True`` adds the factorial
    variants)."""
    chosen = _ALL if variants else _PROFILES
    return pd.DataFrame([asdict(p) for p in chosen.values()]).set_index("name")
