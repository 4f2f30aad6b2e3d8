"""What a sweep costs before it runs: jobs per model, training samples seen, estimated hours.

The paper's models train for a fixed budget of samples seen (``sample_budget`` of the model's
configuration: 1e7 for scVI, 1e8 for Geneformer), so a fit's cost is the samples it sees divided
by the model's throughput on the hardware at hand. :func:`plan` counts the jobs of a task's grid
at a profile and the samples each sees; throughputs come from finished results (measured on this
machine) or are given, e.g. the GPU measurements of :data:`MEASURED_THROUGHPUT`.

From the command line::

    python -m helpers.sweep price --task sc_protein --profile paper
    python -m helpers.sweep price --task sc_protein --profile paper --throughput Geneformer=1440
"""

from __future__ import annotations

import pandas as pd

from .. import profiles, splits, tasks
from .jobs import grid

__all__ = ["MEASURED_THROUGHPUT", "price", "throughput_from_results"]

#: Training throughput (samples seen per second) measured for the ``paper`` configurations on
#: one NVIDIA H200 (synthetic 12,000 cells × 20,000 genes, bf16 autocast), as recorded in the
#: project's GPU issue: Geneformer 22.5 optimiser steps/s at batch 64, scVI 3.0 s per epoch of
#: 9,600 cells.
MEASURED_THROUGHPUT = {"nvidia-h200": {"Geneformer": 1440.0, "SCVI": 3200.0}}


def _samples_seen(model: str, profile: str, n_fit: int) -> float:
    """Training samples a model sees when fitted on ``n_fit`` samples at a profile."""
    from .. import models
    from ..models import epochs_for_budget

    base = profiles.get(profile).base  # a variant trains with its base profile's settings
    config = models.get_model_class(model).config_class.for_profile(base)
    budget = getattr(config, "sample_budget", None)
    if budget is None:  # the linear models see their training data once
        return float(n_fit)
    epochs = epochs_for_budget(
        n_fit, sample_budget=budget, min_epochs=getattr(config, "min_epochs", 1),
        max_epochs_cap=getattr(config, "max_epochs_cap", None),
    )
    return float(epochs * n_fit)


def throughput_from_results(results: pd.DataFrame) -> dict[str, float]:
    """Samples seen per second of training, per model, measured in finished result rows."""
    out = {}
    for model, rows in results.groupby("model"):
        seen = sum(
            _samples_seen(model, str(r.profile), int(r.n_train)) for r in rows.itertuples()
        )
        seconds = float(rows["fit_seconds"].sum())
        if seconds > 0:
            out[str(model)] = seen / seconds
    return out


def price(
    task, *, profile: str = "paper", models=None, throughput: dict[str, float] | None = None,
    n_samples: int | None = None,
) -> pd.DataFrame:
    """Jobs, samples seen and estimated hours of a task's sweep, per model.

    Parameters
    ----------
    task
        A task name or :class:`helpers.tasks.TaskSpec`.
    profile
        The profile whose grid is counted.
    models
        Models to count (default: the task's).
    throughput
        Samples seen per second of training, per model; models without one get no estimate.
    n_samples
        Samples of the dataset, when it is not at hand (default: the ``n_samples`` recorded in
        the task's source for that profile, or else the loaded data's).  The jobs priced are
        those :func:`~helpers.sweep.jobs` makes (the same :meth:`~helpers.sweep.Grid.points`);
        from a size alone the pool is that of a plain evaluation split.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``jobs``, ``samples_seen`` (all fits together), ``throughput`` and
        ``hours`` (training only; ``NaN`` without a throughput).

    Examples
    --------
    >>> table = price("sc_protein", profile="paper", models=["SCVI"], n_samples=161_764,
    ...              throughput={"SCVI": 3200.0})
    >>> int(table.loc["SCVI", "jobs"])  # 10 levels x 10 sizes x 3 seeds
    300
    """
    spec = tasks.get(task)
    prof = profiles.get(profile)
    models = tuple(spec.models if models is None else models)
    if n_samples is None:
        n_samples = spec.source(prof.base).n_samples  # a large dataset: never loaded to price
    g = grid(spec, profile=prof.name, models=models, n_samples=n_samples)
    points = g.points()  # the very (level, size) points the jobs are made of
    rows = []
    for model in models:
        seen = len(g.seeds) * sum(
            _samples_seen(model, prof.name, splits.fit_size(size)) for _, size in points
        )
        rate = (throughput or {}).get(model, float("nan"))
        rows.append({
            "model": model, "jobs": len(points) * len(g.seeds), "samples_seen": seen,
            "throughput": rate, "hours": seen / rate / 3600,
        })
    return pd.DataFrame(rows).set_index("model")
