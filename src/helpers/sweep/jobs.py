"""A sweep as a list of jobs: one trained and probed model per (task, model, level, size, seed).

:func:`grid` works out the levels, training sizes and seeds of a task at a profile;
:func:`jobs` lists the frozen, hashable :class:`Job` objects of that grid, in an order that
lets a serial run reuse each noisy copy of the data for every model and size at that level.

Examples
--------
>>> job = Job("sc_protein", "PCA", 1.0, 500, 0, "quick")
>>> job.id == Job("sc_protein", "PCA", 1.0, 500, 0, "quick").id, len(job.id)
(True, 20)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from .. import probe, profiles, splits, tasks

__all__ = ["Grid", "Job", "grid", "jobs", "probe_name"]


@dataclass(frozen=True, order=True)
class Job:
    """One measurement: a model trained at one noise level and training size, then probed.

    Attributes
    ----------
    task
        A registered task name (:mod:`helpers.tasks`).
    model
        A model name of :func:`helpers.models.make_model`.
    level
        The noise level (a thinning fraction for counts, σ for images, …).
    size
        Training samples (training plus validation split).
    seed
        Seed of the evaluation split, the training subset, the noise and the model.
    profile
        The name of the profile whose grid the job belongs to; its data and hyperparameters are
        those of the profile's ``base`` (a factorial variant such as ``"quick-factorial"`` has
        quick's). The name, not the base, enters the id: shards of a factorial and a
        non-factorial sweep never collide, even at a (level, size) point both grids hold.
    probe_version
        The version of the MI estimator (:data:`helpers.probe.VERSION`, the current one by
        default). It enters the id, so a results store never hands back values an earlier
        estimator measured; they stay on disk, unread, and the job runs again.
    probe
        The task's probe as :func:`probe_name` writes it (``"default"``: the sweep's latent-MI
        probe); it enters the id too, so a task whose probe options change (another estimator,
        another epoch cap) never reuses the values measured with the old ones.
    task_id
        The fingerprint of the task's identity for this model
        (:meth:`helpers.tasks.TaskSpec.fingerprint`: its data, signal and signal options,
        corruption and, for a model of the task's own, that model's definition).  It enters the
        id, so a task of the same name on other data or another signal never reuses these
        values; :func:`jobs` fills it in, and :func:`~helpers.sweep.run_job` refuses a job
        whose task has changed since.
    """

    task: str
    model: str
    level: float
    size: int
    seed: int
    profile: str
    probe_version: str = probe.VERSION
    probe: str = "default"
    task_id: str = ""

    @property
    def id(self) -> str:
        """A stable digest of the job's fields: the name of its results shard."""
        from .store import job_id

        return job_id(self)

    def key(self) -> dict:
        """The job's fields as a dict (the identifying columns of its result rows)."""
        return asdict(self)


@dataclass(frozen=True)
class Grid:
    """The levels, sizes and seeds of a task's sweep at one profile.

    Attributes
    ----------
    levels
        Noise levels, cleanest first.
    sizes
        Training sizes (log-spaced; the last is the largest pool all seeds share).
    seeds, models
        What is swept.
    factorial
        Every level at every size (``paper``), or the noise curve at the largest size plus the
        cell-number curve at the cleanest level (``smoke``, ``quick``).
    n_eval
        Samples held out for the probe.
    """

    levels: tuple[float, ...]
    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    models: tuple[str, ...]
    factorial: bool
    n_eval: int

    def points(self) -> list[tuple[float, int]]:
        """The (level, size) pairs swept, cleanest level first, then by size."""
        if self.factorial:
            pairs = {(lv, s) for lv in self.levels for s in self.sizes}
        else:
            pairs = {(lv, self.sizes[-1]) for lv in self.levels}
            pairs |= {(self.levels[0], s) for s in self.sizes}
        order = {lv: i for i, lv in enumerate(self.levels)}
        return sorted(pairs, key=lambda p: (order[p[0]], p[1]))

    def to_frame(self) -> pd.DataFrame:
        """The grid as a one-column table (for a chapter)."""
        return pd.Series(asdict(self)).to_frame("value")


def grid(task, *, profile: str = "quick", models=None, seeds=None, data=None,
         n_samples: int | None = None) -> Grid:
    """The sweep grid of a task at a profile.

    Levels come from the task (for counts: log-spaced fractions from full depth down to the
    profile's ``min_umis`` per cell); sizes are log-spaced from ``min_size`` to the training
    pool that every seed's evaluation split leaves (partner-aware). At ``paper`` the sizes are
    the released grid's (up to the pool rounded down to one significant digit).

    Parameters
    ----------
    task
        A task name or :class:`helpers.tasks.TaskSpec`.
    profile
        ``"smoke"``, ``"quick"``, ``"paper"``, a factorial variant (``"quick-factorial"``,
        :func:`helpers.profiles.factorial`) or a registered :class:`~helpers.profiles.Profile`.
    models, seeds
        Subsets to sweep (default: the task's models, the profile's seeds).
    data
        The task's data (default: ``task.load(profile)``).
    n_samples
        Instead of ``data``: the dataset's size, to lay out the grid of data that are not at
        hand (:func:`helpers.sweep.price` prices the paper's grids so).  The pool is then the
        samples outside a plain evaluation split, and levels that depend on the data (the
        thinning fractions of counts, which follow the mean depth) are the profile's number of
        them, indexed ``0, 1, …``.
    """
    spec = tasks.get(task)
    prof = profiles.get(profile)
    models = tuple(spec.models if models is None else models)
    if data is None and n_samples is not None:
        return _grid_of_size(spec, prof, models, seeds, int(n_samples))
    data = spec.load(prof.base) if data is None else data
    unknown = sorted(set(models) - set(spec.models))
    if unknown:
        msg = f"Task {spec.name!r} has no model(s) {unknown}; its models: {spec.models}."
        raise ValueError(msg)
    seeds = tuple(int(s) for s in (prof.seeds if seeds is None else seeds))
    if not seeds or min(seeds) < 0:
        msg = f"seeds must be non-negative integers, got {seeds!r}."
        raise ValueError(msg)
    held = [tasks.holdout(spec, data, profile=prof.base, seed=s) for s in seeds]
    pool = min(h.train_pool.size for h in held)
    sizes = _sizes(prof, pool)
    return Grid(
        levels=tuple(float(v) for v in spec.levels(data, prof)),
        sizes=tuple(int(s) for s in sizes),
        seeds=seeds,
        models=models,
        factorial=prof.factorial,
        n_eval=int(held[0].eval_idx.size),
    )


def _sizes(prof, pool: int):
    """A profile's training sizes for a pool of ``pool`` samples (see :func:`grid`)."""
    return splits.size_grid(pool, n_sizes=prof.n_sizes, min_size=min(prof.min_size, pool),
                            max_size=None if prof.factorial else pool)


def _grid_of_size(spec, prof, models, seeds, n_samples: int) -> Grid:
    """The grid of a task whose data are not at hand, from their size alone (see grid)."""
    if n_samples < 2:
        msg = f"n_samples must be at least 2, got {n_samples!r}."
        raise ValueError(msg)
    n_eval = int(round(prof.eval_fraction * n_samples))
    pool = n_samples - n_eval
    sizes = _sizes(prof, pool)
    try:
        levels = tuple(float(v) for v in spec.levels(None, prof))
    except (AttributeError, TypeError, ValueError):  # levels that follow the data
        levels = tuple(float(i) for i in range(prof.n_levels))
    return Grid(
        levels=levels, sizes=tuple(int(s) for s in sizes),
        seeds=tuple(int(s) for s in (prof.seeds if seeds is None else seeds)),
        models=models, factorial=prof.factorial, n_eval=n_eval,
    )


def probe_name(fn) -> str:
    """How a task's probe enters its jobs' ids: ``"default"`` for ``None`` (the sweep's
    latent-MI probe), else the function's name with the arguments bound by ``functools.partial``.

    Examples
    --------
    >>> import functools
    >>> def my_probe(model, data, held, *, seed=0, epochs=10): ...
    >>> probe_name(None), probe_name(my_probe)
    ('default', 'my_probe')
    >>> probe_name(functools.partial(my_probe, epochs=3))
    'my_probe(epochs=3)'
    """
    return "default" if fn is None else tasks.qualified_name(fn, module=False)


def jobs(
    task, *, profile: str = "quick", models=None, seeds=None, sizes=None, data=None
) -> list[Job]:
    """Every job of a task's sweep at a profile (see :func:`grid`), seed by seed, cleanest
    level first; within a level by size and model.

    ``sizes`` keeps the jobs at some of the grid's training sizes only (e.g. its largest,
    ``grid(...).sizes[-1:]``: the noise curve without the cell-number curve).
    """
    spec = tasks.get(task)
    g = grid(spec, profile=profile, models=models, seeds=seeds, data=data)
    name = profiles.get(profile).name
    keep = set(g.sizes) if sizes is None else {int(s) for s in sizes}
    if not keep <= set(g.sizes):
        msg = f"sizes {sorted(keep - set(g.sizes))} are not in the grid's sizes {g.sizes}."
        raise ValueError(msg)
    ids = {model: spec.fingerprint(model) for model in g.models}
    return [
        Job(spec.name, model, level, size, seed, name, probe=probe_name(spec.probe),
            task_id=ids[model])
        for seed in g.seeds
        for level, size in g.points()
        if size in keep
        for model in g.models
    ]
