"""Run a sweep's jobs, here or on a Dask cluster, into a :class:`~helpers.sweep.store.Store`.

:func:`execute` runs ``fn(job) -> rows`` for every job that has no shard yet.  Each job runs
through :func:`execute_job` *where it is computed*: it claims the job's lock, calls ``fn``, writes
the shard and releases the lock.  So

* ``backend="serial"`` runs the jobs one after another in this process;
* ``backend="dask"`` submits them to a ``dask.distributed`` cluster: a ``LocalCluster`` made for
  the call, or any ``Client`` you pass (``dask_jobqueue.SLURMCluster``/``PBSCluster``, Kubernetes,
  …); workers write their shards to the shared results folder themselves, so a lost client or
  worker loses no finished job (Dask reschedules a lost worker's jobs), and rerunning
  :func:`execute` only computes what is missing;
* jobs that need a GPU ask for a worker resource (``resources={"GPU": 1}``): Dask then runs one
  of them at a time on each worker started with ``--resources GPU=1``;
* several :func:`execute` calls, in several processes or on several machines, may share one
  results folder: a job claimed by a live process elsewhere is not computed twice but waited
  for, and taken over if its holder dies.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..progress import bar as progress_bar
from .store import Store, job_id

__all__ = ["WORKER_ENV", "Report", "execute", "local_cluster", "execute_job"]

BACKENDS = ("serial", "dask")


@dataclass
class Report:
    """What :func:`execute` did.

    Attributes
    ----------
    total
        Distinct jobs asked for.
    ran
        Jobs computed by this call.
    skipped
        Jobs already in the store when they came up.
    waited
        Jobs that another process was computing, finished while this call waited.
    failed
        ``{job id: error}`` of jobs whose function raised (with ``errors="report"``).
    pending
        Ids still unfinished (only when ``timeout`` ran out while others held them).
    holders
        ``{job id: who holds its lock}`` for the pending jobs (:meth:`Store.holder`).
    rows
        Rows written by this call.
    seconds
        Wall time of the call.
    backend
        ``"serial"`` or ``"dask"``.
    """

    total: int = 0
    ran: int = 0
    skipped: int = 0
    waited: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    holders: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    seconds: float = 0.0
    backend: str = "serial"

    @property
    def complete(self) -> bool:
        """Whether every job asked for is now in the store."""
        return not self.failed and not self.pending

    def __str__(self) -> str:
        text = (
            f"{self.total} jobs: {self.ran} ran ({self.rows} rows), {self.skipped} already "
            f"stored, {self.waited} finished elsewhere; {self.seconds:.1f} s on {self.backend}"
        )
        if self.failed:
            text += f"; {len(self.failed)} failed"
        if self.pending:
            text += f"; {len(self.pending)} still running elsewhere"
        return text


def execute_job(job: Any, fn: Callable[[Any], Any], store: Store) -> tuple[str, Any]:
    """Run one job here and store its rows: ``("ran", n_rows)``, ``("skipped", 0)`` or
    ``("claimed", 0)`` when a live process elsewhere holds it.

    This is what each worker executes; the rows never travel back to the caller.

    Examples
    --------
    >>> import tempfile
    >>> store = Store(tempfile.mkdtemp())
    >>> execute_job({"seed": 3}, lambda job: [{"twice": 2 * job["seed"]}], store)
    ('ran', 1)
    >>> execute_job({"seed": 3}, lambda job: [{"twice": 2 * job["seed"]}], store)
    ('skipped', 0)
    >>> store.frame()
       seed  twice
    0     3      6
    """
    if store.has(job):
        return "skipped", 0
    if not store.claim(job):
        return "claimed", 0
    try:
        if store.has(job):  # finished by its previous holder just before we claimed it
            return "skipped", 0
        rows = fn(job)
        if rows is None:
            msg = f"The job function returned None for job {job!r}; it must return rows."
            raise TypeError(msg)
        store.put(job, rows)
        return "ran", len(rows)
    finally:
        store.release(job)


def _serial(jobs, fn, store, errors) -> Iterator[tuple[Any, str, Any]]:
    for job in jobs:
        try:
            yield (job, *execute_job(job, fn, store))
        except Exception as err:
            if errors == "raise":
                raise
            yield job, "failed", f"{type(err).__name__}: {err}"


def _dask(jobs, fn, store, client, resources, errors) -> Iterator[tuple[Any, str, Any]]:
    from distributed import as_completed

    token = os.urandom(4).hex()
    # ``fn`` goes to the cluster once, not with every job: it may carry data (the task spec of
    # your own AnnData in ``hp.apply.noise_scaling``), which would otherwise be pickled into
    # each job's task.  Broadcast, every worker holds a copy before the jobs start.
    shared = client.scatter(fn, broadcast=True, hash=False)
    futures = {}
    try:
        for job in jobs:
            res = resources(job) if callable(resources) else resources
            future = client.submit(
                execute_job, job, shared, store, key=f"sweep-job-{job_id(job)}-{token}",
                pure=False, resources=res or None,
            )
            futures[future] = job
        for future in as_completed(futures):
            job = futures[future]
            if future.status == "error":
                if errors == "raise":
                    future.result()  # raises the worker's exception
                err = future.exception()
                yield job, "failed", f"{type(err).__name__}: {err}"
            else:
                yield (job, *future.result())
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
        shared.release()


#: Environment for Dask worker processes running sweep jobs; :func:`local_cluster` sets it,
#: and a cluster's job script should export it (``SLURMCluster(job_script_prologue=[…])``).
#: The nanny sets ``MALLOC_TRIM_THRESHOLD_``, which turns off glibc's dynamic mmap threshold:
#: every array over 128 kB is then mapped and unmapped afresh, and a numpy fit took 0.33 s of
#: CPU instead of 0.14 s; a fixed threshold at glibc's dynamic maximum restores it.  The
#: worker's statistical profiler (a dashboard feature) samples every 10 ms: off.
WORKER_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
}


def local_cluster(
    n_workers: int | None = None,
    *,
    resources: Mapping[str, float] | None = None,
    **kwargs: Any,
):
    """A ``distributed.LocalCluster`` of single-threaded worker processes for sweeps.

    Workers get :data:`WORKER_ENV` (unless Dask's configuration already sets those variables),
    no statistical profiler, and, when given, ``resources`` each (e.g. ``{"GPU": 1}`` with one
    worker per GPU).

    Parameters
    ----------
    n_workers
        Worker processes (Dask's default: one per core).
    resources
        Resources every worker offers.
    **kwargs
        Passed on to ``LocalCluster`` (e.g. ``processes=False`` for threads in this process).

    Examples
    --------
    >>> from distributed import Client
    >>> with local_cluster(1, processes=False) as cluster, Client(cluster) as client:
    ...     len(client.scheduler_info()["workers"])
    1
    """
    import dask
    from distributed import LocalCluster

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    extra = {k: v for k, v in WORKER_ENV.items() if k not in environ}
    options = {"threads_per_worker": 1, "processes": True, "dashboard_address": ":0", **kwargs}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {**environ, **extra},
                          "distributed.worker.profile.enabled": False}):
        return LocalCluster(n_workers=n_workers, resources=dict(resources or {}) or None,
                            **options)


def _repair_listed(store: Store, jobs: list) -> None:
    bad = store.check(jobs)
    if bad:
        moved = store.repair(jobs)
        warnings.warn(
            f"Moved {len(moved)} damaged shard(s) to {store.folder / '.damaged'}; their jobs "
            "run again:\n" + "\n".join(list(bad.values())[:5]),
            stacklevel=3,
        )


def _warn_waiting(claimed: list, store: Store, timeout: float | None) -> None:
    """One warning for the jobs that other processes hold: who holds the first, how long this
    call waits."""
    limit = "until they finish" if timeout is None else f"for at most {timeout:g} s (timeout=)"
    key, holder = job_id(claimed[0]), store.holder(claimed[0]) or "another process"
    what = (f"Job {key} is being computed by {holder}" if len(claimed) == 1 else
            f"{len(claimed)} jobs are being computed by other processes (e.g. job {key} by "
            f"{holder})")
    warnings.warn(f"{what}; waiting {limit}. A holder that stops beating is taken over after "
                  f"{store.stale_after:g} s.", UserWarning, stacklevel=3)


def execute(
    jobs: Iterable[Any],
    fn: Callable[[Any], Any],
    store: Store | str | os.PathLike,
    *,
    backend: str = "serial",
    client: Any = None,
    n_workers: int | None = None,
    resources: Mapping[str, float] | Callable[[Any], Mapping[str, float] | None] | None = None,
    progress: bool = True,
    errors: str = "raise",
    poll: float = 1.0,
    timeout: float | None = None,
) -> Report:
    """Run ``fn(job) -> rows`` for every job not yet in ``store``; each job writes its shard.

    Parameters
    ----------
    jobs
        Frozen, hashable jobs (dataclasses or mappings of plain values); duplicates run once.
    fn
        The per-job function, returning a list of dicts or a DataFrame.  For ``"dask"`` it
        must be picklable (module-level functions are; cloudpickle handles closures); it is
        sent to the cluster once (scattered to every worker), not with each job, so it may
        carry data, such as a task spec that holds its AnnData.
    store
        A :class:`~helpers.sweep.store.Store` or its folder.
    backend
        ``"serial"`` (in this process) or ``"dask"``.
    client
        A ``distributed.Client`` for ``"dask"``; by default a :func:`local_cluster` with
        ``n_workers`` single-threaded worker processes is made and closed for this call (so
        call :func:`execute` under ``if __name__ == "__main__":`` in scripts, as for any
        multiprocessing).
    n_workers
        Workers of the ``LocalCluster`` made when ``client`` is None (Dask's default: cores).
    resources
        Worker resources each job needs, e.g. ``{"GPU": 1}``, or a function of the job that
        returns them.  A ``LocalCluster`` made here gives each worker these resources.
    progress
        Show a progress bar while jobs finish.
    errors
        ``"raise"`` re-raises the first job's exception (finished shards stay); ``"report"``
        records failures in :attr:`Report.failed` and goes on.
    poll, timeout
        Seconds between looks at jobs that other processes hold, and how long at most to wait
        for them (None: until they finish or their holder dies and this call takes them over).

    Returns
    -------
    Report
        Counts of jobs run, skipped and waited for; :meth:`Store.frame` has the rows.

    Examples
    --------
    >>> import tempfile
    >>> jobs = [{"seed": s} for s in range(4)]
    >>> square = lambda job: [{"square": job["seed"] ** 2}]
    >>> store = Store(tempfile.mkdtemp())
    >>> print(execute(jobs[:2], square, store, progress=False))  # doctest: +ELLIPSIS
    2 jobs: 2 ran (2 rows), 0 already stored, 0 finished elsewhere; ... s on serial
    >>> report = execute(jobs, square, store, progress=False)
    >>> report.ran, report.skipped
    (2, 2)
    >>> store.frame(jobs)["square"].tolist()
    [0, 1, 4, 9]
    """
    if backend not in BACKENDS:
        msg = f"backend must be one of {BACKENDS}; got {backend!r}."
        raise ValueError(msg)
    if errors not in ("raise", "report"):
        msg = f"errors must be 'raise' or 'report'; got {errors!r}."
        raise ValueError(msg)
    if client is not None and backend != "dask":
        msg = f"A client was given with backend={backend!r}; use backend='dask'."
        raise ValueError(msg)
    if not callable(fn):
        msg = f"fn must be callable; got {type(fn).__name__}."
        raise TypeError(msg)
    store = store if isinstance(store, Store) else Store(store)
    start = time.perf_counter()

    unique: dict[str, Any] = {}
    for job in jobs:
        unique.setdefault(job_id(job), job)
    todo = list(unique.values())
    _repair_listed(store, todo)
    report = Report(total=len(todo), backend=backend)
    done_before = [j for j in todo if store.has(j)]
    report.skipped = len(done_before)
    queue = [j for j in todo if not store.has(j)]

    own_cluster = None
    if backend == "dask" and client is None and queue:
        from distributed import Client

        worker_res = dict(resources) if isinstance(resources, Mapping) else None
        own_cluster = local_cluster(n_workers, resources=worker_res)
        client = Client(own_cluster)

    bar = progress_bar(len(todo), initial=report.skipped, desc="sweep", unit="job",
                       disable=not progress)
    waiting: list[Any] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while queue or waiting:
            if queue:
                results = (
                    _serial(queue, fn, store, errors) if backend == "serial"
                    else _dask(queue, fn, store, client, resources, errors)
                )
                claimed = []
                for job, status, info in results:
                    if status == "claimed":
                        claimed.append(job)
                        continue
                    if status == "ran":
                        report.ran += 1
                        report.rows += info
                    elif status == "skipped":
                        report.skipped += 1
                    else:
                        report.failed[job_id(job)] = info
                    bar.update(1)
                queue = []
                if claimed:
                    _warn_waiting(claimed, store, timeout)
                    waiting += claimed
            if not waiting:
                break
            if deadline is not None and time.monotonic() > deadline:
                report.pending = [job_id(j) for j in waiting]
                report.holders = {job_id(j): store.holder(j) or "nobody (just released)"
                                  for j in waiting}
                break
            time.sleep(poll)
            held = []
            for job in waiting:
                if store.has(job):
                    report.waited += 1
                    bar.update(1)
                elif store.claimed(job):
                    held.append(job)
                else:  # its holder died or failed: take it over
                    queue.append(job)
            waiting = held
    finally:
        bar.close()
        if own_cluster is not None:
            client.close()
            own_cluster.close()
    report.seconds = time.perf_counter() - start
    return report
