"""Running a sweep: one job into result rows, a task's missing jobs on a backend, and the fits.

The protocol is the paper's, for every modality: a fixed evaluation set is held out once per
seed and never enters training; each model is trained on a training subset of the corrupted
samples (with a validation split for early stopping) and then embeds the evaluation samples,
and the probe estimates the MI between those embeddings and the auxiliary signal.

>>> import helpers as hp                                        # doctest: +SKIP
>>> results = hp.sweep.run("sc_protein", profile="smoke")       # doctest: +SKIP
>>> noise_fits, cell_fits = hp.sweep.fit(results)               # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .. import laws, profiles, splits, tasks
from ..probe import latent_probe
from .backends import execute
from .jobs import Job, jobs
from .store import (
    Store,
    package_versions,
    results_dir,
    shown_path,
    write_atomic,
    write_csv_atomic,
)

__all__ = [
    "MI_FLOOR",
    "RESULT_COLUMNS",
    "ResultsMismatchError",
    "check_rows",
    "claim_folder",
    "fit",
    "fit_and_save",
    "full_depth_mi",
    "histories",
    "run",
    "run_job",
    "summarise",
]

#: The identifying and measured columns of every result row (the released tables' tidy schema).
RESULT_COLUMNS = [
    "modality", "task", "dataset", "model", "signal", "size", "level", "x", "seed", "mi",
]

# --------------------------------------------------------------------------------------------
# One job
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _holdout(task: str, profile: str, seed: int) -> tasks.Holdout:
    spec = tasks.get(task)
    return tasks.holdout(spec, spec.load(profile), profile=profile, seed=seed)


@functools.lru_cache(maxsize=1)
def _noisy(task: str, profile: str, seed: int, level: float):
    """The corrupted copy of a task's data at one level (kept while jobs at that level run)."""
    spec = tasks.get(task)
    return spec.corrupt(spec.load(profile), level, seed=seed * 1_000_003 + 17)


tasks.on_replace(_holdout.cache_clear)
tasks.on_replace(_noisy.cache_clear)


def _labels(data, signal: str) -> np.ndarray:
    return pd.Categorical(data.obs[signal]).codes.astype(np.int64)


def run_job(job: Job, spec: tasks.TaskSpec | None = None) -> list[dict]:
    """Train and probe the model of one job; the rows it measured.

    A pure function of the job: the task's data, evaluation split, training subset, noise and
    model initialisation all follow from its fields (loaded data, splits and the current noisy
    copy are cached per process, so a worker running many jobs of one task loads them once).
    ``spec`` carries a task that is not in the registry of the process running the job (your
    own data on a Dask worker); it is registered there first.  On Dask it reaches each worker
    once (:func:`~helpers.sweep.backends.execute` scatters the job function), so it is
    registered once per worker and the caches above serve all of that worker's jobs.
    """
    if spec is not None and not tasks.is_registered(spec) and not tasks.builtin(spec.name):
        tasks.register(spec, replace=True)  # a task of yours, on a worker (the book's are there)
    spec = tasks.get(job.task)
    if job.task_id and job.task_id != spec.fingerprint(job.model):
        msg = (f"Job {job.id} was made for another version of task {job.task!r} (fingerprint "
               f"{job.task_id}, the registered one is {spec.fingerprint(job.model)}): its data, "
               "signal or model changed since; make the jobs again (helpers.sweep.jobs).")
        raise ValueError(msg)
    base = profiles.get(job.profile).base  # a variant's data and settings are its base's
    source = spec.source(base)
    held = _holdout(job.task, base, job.seed)
    noisy, x = _noisy(job.task, base, job.seed, job.level)
    train = splits.training_subset(held.train_pool, job.size, seed=job.seed)
    fit_idx, val_idx = splits.validation_split(train, seed=job.seed)
    model = spec.make_model(job.model, profile=base, seed=job.seed)
    supervision = {}
    if spec.supervised:
        labels = _labels(noisy, source.signal)
        supervision = {"y": labels[fit_idx], "y_val": labels[val_idx]}
    t0 = time.perf_counter()
    model.fit(noisy[fit_idx].copy(), val=noisy[val_idx].copy(), progress=False, **supervision)
    t1 = time.perf_counter()
    probe_fn = spec.probe or latent_probe
    measured = probe_fn(model, noisy, held, seed=job.seed)
    t2 = time.perf_counter()
    common = {
        "modality": spec.modality,
        "dataset": source.loader.__name__.removeprefix("load_"),
        "signal": spec.signal_name,
        "x": float(x),
        "n_train": int(fit_idx.size),
        "n_eval": held.n_pairs,
        "fit_seconds": round(t1 - t0, 3),
        "probe_seconds": round(t2 - t1, 3),
        "versions": package_versions(),
    }
    return [{**common, **row, "mi": float(row["mi"])} for row in measured]


# --------------------------------------------------------------------------------------------
# A task's sweep
# --------------------------------------------------------------------------------------------
def run(
    task,
    *,
    profile: str = "quick",
    models=None,
    seeds=None,
    sizes=None,
    backend: str = "serial",
    client=None,
    results=None,
    progress: bool = True,
    overwrite: bool = False,
    wait: float | None = None,
) -> pd.DataFrame:
    """Run every job of a task's sweep that its results folder does not hold yet.

    Parameters
    ----------
    task
        A task name or :class:`helpers.tasks.TaskSpec`.
    profile
        ``"smoke"``, ``"quick"``, ``"paper"`` or a factorial variant (``"quick-factorial"``:
        quick's data and models, every level at every size; :func:`helpers.profiles.factorial`).
    models, seeds, sizes
        Subsets to sweep (default: the task's models, the profile's seeds and the grid's
        training sizes; ``sizes=grid(...).sizes[-1:]`` sweeps the noise curve alone).
    backend
        ``"serial"`` (this process) or ``"dask"`` (a ``dask.distributed`` cluster: ``client``,
        or a local cluster made for the run).
    client
        A ``dask.distributed.Client`` (e.g. of a ``dask_jobqueue.SLURMCluster``).
    results
        The results folder (default ``results/<task>``, see :func:`results_dir`). Each job
        writes one shard atomically, so an interrupted sweep resumes where it stopped and
        several processes can share one folder.  A folder whose results of a task of this
        name measured something else is refused (:class:`ResultsMismatchError`).
    progress
        Show progress while jobs run.
    overwrite
        Discard the folder's results of this task's name when they measured something else,
        instead of refusing the folder.
    wait
        Seconds to wait at most for jobs that other processes are computing (None: until they
        finish, or their holder stops and this call takes them over); then a
        ``TimeoutError`` names the holders.

    Returns
    -------
    pandas.DataFrame
        One row per job of this call and probed signal (:data:`RESULT_COLUMNS` first).
        ``results.csv`` in the results folder gets every row the folder holds from this
        estimator version (:data:`helpers.probe.VERSION`): this call's and those of earlier
        calls with other models, seeds, sizes or profiles (its ``profile`` column tells them
        apart), so sweeping the models one call at a time still leaves the whole table there.
    """
    spec = tasks.get(task)
    folder = Path(results) if results is not None else results_dir(spec.name)
    todo = jobs(spec, profile=profile, models=models, seeds=seeds, sizes=sizes)
    store = Store(folder, validate=check_rows)
    claim_folder(store, spec, overwrite=overwrite)
    fn = run_job if tasks.is_registered(spec) and backend == "serial" else \
        functools.partial(run_job, spec=spec)
    report = execute(todo, fn, store, backend=backend, client=client, progress=progress,
                     timeout=wait)
    if report.pending:
        held = "\n".join(f"  {k}: {v}" for k, v in list(report.holders.items())[:10])
        msg = (f"{len(report.pending)} job(s) of {spec.name!r} were still being computed by "
               f"other processes after waiting {wait:g} s (wait=); rerun to collect them:\n"
               f"{held}")
        raise TimeoutError(msg)
    # this call's rows first: damage elsewhere in the folder never costs them
    frame = _tidy(store.frame(todo))
    write_csv_atomic(_tidy(_current(store.frame(damaged="skip"))), folder / "results.csv")
    return frame


class ResultsMismatchError(ValueError):
    """A results folder holds results of a task of the same name that measured something else
    (other data, signal, signal options, corruption or model definition)."""


def _identity_path(store: Store, name: str) -> Path:
    return store.folder / ".tasks" / f"{name}.json"


def claim_folder(store: Store, spec: tasks.TaskSpec, *, overwrite: bool = False) -> None:
    """Record which task a results folder measures, or refuse a folder that measured another.

    The folder remembers each task's :meth:`~helpers.tasks.TaskSpec.identity` (in
    ``.tasks/<name>.json``).  A task of the same name whose identity differs (a model both
    define differently, another source, signal or corruption; models only one of them has
    do not count) is refused with :class:`ResultsMismatchError`; ``overwrite=True`` deletes
    that task's shards instead and records the new identity.
    """
    path = _identity_path(store, spec.name)
    new = spec.identity()
    if path.is_file():
        try:
            old = json.loads(path.read_text())["identity"]
            changed = _differences(old, new)
        except (ValueError, KeyError, TypeError):
            changed = ["the folder's record of the task is unreadable"]
        if changed and not overwrite:
            msg = (f"The results folder {shown_path(store.folder)} holds results of task "
                   f"{spec.name!r} that measured something else ({'; '.join(changed)}). Give "
                   "another results folder (results=...) or another name, or pass "
                   "overwrite=True to discard those results.")
            raise ResultsMismatchError(msg)
        if changed:
            gone = store.remove(lambda job: job.get("task") == spec.name)
            warnings.warn(f"overwrite=True: discarded {gone} stored result(s) of "
                          f"{spec.name!r} in {shown_path(store.folder)}.", UserWarning,
                          stacklevel=3)
        else:
            new = {**new, "models": {**old.get("models", {}), **new["models"]}}
    doc = {"task": spec.name, "fingerprint": spec.fingerprint(), "identity": new}
    text = json.dumps(doc, indent=1, sort_keys=True)
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, lambda fh: fh.write(text))


def _differences(old: dict, new: dict) -> list[str]:
    """What differs between two task identities, in words (models only one of them has are
    not a difference: a folder may gain models)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key == "models":
            a, b = a or {}, b or {}
            out += [f"model {m!r} is defined otherwise" for m in sorted(set(a) & set(b))
                    if a[m] != b[m]]
        elif key == "sources":
            a, b = a or {}, b or {}
            for profile in sorted(set(a) | set(b)):
                sa, sb = a.get(profile) or {}, b.get(profile) or {}
                what = [f for f in sorted(set(sa) | set(sb)) if sa.get(f) != sb.get(f)]
                if what:
                    names = {"data": "the data", "signal": "the signal", "kind": "its kind",
                             "options": "the signal's options", "loader": "the loader"}
                    out.append(f"{profile} source: " + ", ".join(names.get(w, w) for w in what)
                               + " " + ("differ" if len(what) > 1 else "differs"))
        elif a != b:
            out.append(f"{key} differs")
    return out


#: MI a probe may read below zero on independent data before a stored value counts as damaged
#: (the estimators' null scatter is a few hundredths of a bit; the paper's is larger).
MI_FLOOR = -0.5


def check_rows(job: dict, rows: list) -> None:
    """The schema of a sweep's result rows (:class:`~helpers.sweep.store.Store`'s
    ``validate``): ``mi`` a finite float at least :data:`MI_FLOOR` bits, ``x`` a positive
    number, counts and seconds non-negative numbers, ``signal`` and ``dataset`` text.

    Examples
    --------
    >>> check_rows({}, [{"mi": 0.25, "x": 30.0, "n_eval": 400, "signal": "day"}])
    >>> check_rows({}, [{"mi": "0.2"}])
    Traceback (most recent call last):
    ...
    ValueError: row 0: 'mi' is '0.2' (str), not a float
    """
    def number(value) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    for i, row in enumerate(rows):
        if "mi" not in row:
            raise ValueError(f"row {i} has no 'mi'")
        mi = row["mi"]
        if not isinstance(mi, float):
            raise ValueError(f"row {i}: 'mi' is {mi!r} ({type(mi).__name__}), not a float")
        if not math.isfinite(mi) or mi < MI_FLOOR:
            raise ValueError(f"row {i}: 'mi' is {mi!r} bits, not a finite MI >= {MI_FLOOR}")
        if "x" in row and not (number(row["x"]) and row["x"] > 0):
            raise ValueError(f"row {i}: 'x' is {row['x']!r}, not a positive number")
        for col in ("n_train", "n_eval", "fit_seconds", "probe_seconds"):
            if col in row and not (number(row[col]) and math.isfinite(row[col])
                                   and row[col] >= 0):
                raise ValueError(f"row {i}: {col!r} is {row[col]!r}, not a number >= 0")
        for col in ("signal", "dataset", "modality"):
            if col in row and not isinstance(row[col], str):
                raise ValueError(f"row {i}: {col!r} is {row[col]!r}, not text")


def _current(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows measured by this version of the MI estimator (older shards stay in the folder)."""
    from .. import probe

    if "probe_version" not in frame:
        return frame
    return frame[frame["probe_version"] == probe.VERSION]


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Result columns first, rows ordered by profile, seed, model, size, level (and estimator)."""
    first = [c for c in RESULT_COLUMNS if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    order = ["profile", "seed", "model", "size", "level",
             *(["estimator"] if "estimator" in frame else [])]
    return frame.sort_values([c for c in order if c in frame], ignore_index=True)


# --------------------------------------------------------------------------------------------
# Fits and summaries
# --------------------------------------------------------------------------------------------
def _curve_keys(results: pd.DataFrame, fixed: str) -> list[str]:
    """The columns that name one curve: task, signal, model (and estimator, where the results
    hold several, see :func:`helpers.probe.estimator_probe`) and the value held fixed along it."""
    return ["task", "signal", "model", *(["estimator"] if "estimator" in results else []), fixed]


def _curves(results: pd.DataFrame, *, along: str, fixed: str, min_points: int = 3):
    """Rows of the curves that vary ``along`` one column at a fixed value of another, keeping
    only curves with at least ``min_points`` distinct values (a noise curve needs levels, a
    cell-number curve sizes)."""
    counts = results.groupby(_curve_keys(results, fixed))[along].transform("nunique")
    return results[counts >= min_points]


def fit(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Noise-law fits per (task, signal, model, size) and cell-number fits per level.

    Noise curves are the training sizes swept over at least three noise levels (every seed a
    point); cell-number curves are the levels swept over at least two training sizes (a curve
    with fewer points than a fit needs is returned as a failed row, not dropped).  Results with
    an ``estimator`` column (:func:`helpers.probe.estimator_probe`) get one fit per estimator.
    """
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        msg = f"Results lack the column(s) {missing}; they are not rows of hp.sweep.run."
        raise ValueError(msg)
    noise_fits = laws.fit_table(
        _curves(results, along="level", fixed="size"), _curve_keys(results, "size"),
        law="noise", x="x", y="mi",
    )
    cell_fits = laws.fit_table(
        _curves(results, along="size", fixed="level", min_points=2),
        _curve_keys(results, "level"), law="cell", x="size", y="mi",
    )
    return noise_fits, cell_fits


def summarise(results: pd.DataFrame, noise_fits: pd.DataFrame) -> dict:
    """Headline numbers of a sweep, for a chapter's prose.

    ``falls_with_noise`` is the fraction of the learned models' noise curves (every model but
    random projection) whose MI rises with the x-axis (less noise), by Spearman correlation;
    ``median_r2`` is over the fits that the data constrain (``ok``), ``n_ok_curves`` of them.

    Examples
    --------
    >>> rows = pd.DataFrame({
    ...     "task": "t", "signal": "s", "model": ["PCA"] * 3 + ["SCVI"] * 3, "size": 500,
    ...     "level": [1.0, 0.3, 0.1] * 2, "x": [900, 270, 90] * 2,
    ...     "mi": [1.0, 0.6, 0.2, 0.1, 0.3, 0.5], "fit_seconds": 1.0, "probe_seconds": 1.0})
    >>> summarise(rows, pd.DataFrame({"success": [], "r_squared": []}))["falls_with_noise"]
    0.5
    """
    curves = _curves(results, along="level", fixed="size")
    learned = curves[curves["model"] != "RandomProjection"]
    rho = learned.groupby(_curve_keys(learned, "size"))[["x", "mi"]].apply(
        lambda g: g["x"].corr(g["mi"], method="spearman")
    )
    # one job can measure several rows (a probe per class): count each job's time once
    per_job = results.drop_duplicates(
        [c for c in ("task", "model", "level", "size", "seed") if c in results.columns]
    )
    flag = "ok" if "ok" in noise_fits.columns else "success"
    ok = noise_fits[noise_fits[flag].astype(bool)] if len(noise_fits) else noise_fits
    return {
        "n_rows": int(len(results)),
        "n_noise_curves": int(len(noise_fits)),
        "n_ok_curves": int(len(ok)),
        "median_r2": float(ok["r_squared"].median()) if len(ok) else float("nan"),
        "falls_with_noise": float((rho > 0).mean()) if len(rho) else float("nan"),
        "fit_minutes": float(per_job["fit_seconds"].sum() / 60),
        "probe_minutes": float(per_job["probe_seconds"].sum() / 60),
    }


def fit_and_save(results: pd.DataFrame, out=None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """:func:`fit` and :func:`summarise`, with both fit tables written to ``out`` as CSV
    (default: the task's results folder, :func:`results_dir`)."""
    noise_fits, cell_fits = fit(results)
    if out is None:
        out = results_dir(str(results["task"].iloc[0]))
    for name, fits in (("noise_law_fits", noise_fits), ("cell_law_fits", cell_fits)):
        write_csv_atomic(fits.drop(columns="fit", errors="ignore"), Path(out) / f"{name}.csv")
    return noise_fits, cell_fits, summarise(results, noise_fits)


def histories(results: pd.DataFrame) -> pd.DataFrame:
    """The training records that probes store in result rows (the ``history`` column, JSON:
    :func:`helpers.probe.label_probe`, :func:`helpers.probe.sequence_probe`), one row per job
    and recorded epoch or step, with the job's ``task, model, level, size, seed, x`` where the
    results have them.  A job that wrote several rows (one per signal) counts once.

    Examples
    --------
    >>> rows = pd.DataFrame({"model": ["m", "m"], "level": [1.0, 1.0], "signal": ["a", "b"],
    ...                      "history": ['{"epoch": [1, 2], "loss": [0.9, 0.5]}'] * 2})
    >>> histories(rows)
       epoch  loss model  level
    0      1   0.9     m    1.0
    1      2   0.5     m    1.0
    """
    keys = [c for c in ("task", "model", "level", "size", "seed", "x") if c in results]
    frames = []
    if "history" in results:
        recorded = results[results["history"].map(lambda v: isinstance(v, str))]
        for _, row in recorded.drop_duplicates(keys or None).iterrows():
            hist = pd.DataFrame(json.loads(row["history"]))
            if len(hist):
                frames.append(hist.assign(**{k: row[k] for k in keys}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=keys)


def full_depth_mi(data, signal: str, *, model: str = "PCA", seed: int = 0) -> float:
    """Auxiliary MI (bits) of one representation of every sample without noise: a quick check.

    Fits ``model`` (quick profile) on all samples and probes the MI between the embedding and
    the signal. Use it to see whether a signal is visible at all before sweeping noise; it is
    optimistic for a real sweep (no held-out samples) and only for cell-level signals.
    """
    from .. import datasets, models, probe

    if datasets.signal_kind(signal) == "partner":
        msg = f"full_depth_mi is for sample-level signals; {signal!r} pairs samples."
        raise ValueError(msg)
    aux = datasets.auxiliary_signal(data, signal, seed=seed)
    fitted = models.make_model(model, profile="quick", seed=seed).fit(data)
    return probe.latent_mi(fitted.embed(data[aux.index].copy()), aux.target, seed=seed)
