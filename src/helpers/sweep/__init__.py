"""A task's sweep as jobs: the grid, running the jobs (serially or on Dask), and their results.

``jobs``
    :class:`Job` (task, model, level, size, seed, profile), :func:`grid` and :func:`jobs`.
``run``
    :func:`run_job` (one job → its result rows), :func:`run` (a task's missing jobs into its
    results folder), :func:`fit` / :func:`fit_and_save` (noise and cell-number laws),
    :func:`summarise`.
``store``
    :class:`Store` (one typed, atomically written shard per job; safe to share between
    processes and machines), :func:`job_id`, :func:`results_dir`, :func:`write_csv_atomic`.
``cost``
    :func:`plan`: jobs, samples seen and estimated hours of a grid, before it runs.
``backends``
    :func:`execute` runs the missing jobs of a sweep serially or on Dask (a ``LocalCluster``
    or any ``Client``, e.g. dask-jobqueue's ``SLURMCluster``) and returns a :class:`Report`.
"""

from __future__ import annotations

from .backends import *  # noqa: F401,F403
from .backends import __all__ as _backends_all
from .cost import *  # noqa: F401,F403
from .cost import __all__ as _cost_all
from .jobs import *  # noqa: F401,F403
from .jobs import __all__ as _jobs_all
from .run import *  # noqa: F401,F403
from .run import __all__ as _run_all
from .store import *  # noqa: F401,F403
from .store import __all__ as _store_all

__all__ = [*_store_all, *_backends_all, *_jobs_all, *_run_all, *_cost_all]
