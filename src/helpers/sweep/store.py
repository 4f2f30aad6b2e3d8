"""Results stores for parameter sweeps: one typed shard per job, atomic writes, safe sharing.

A sweep is a list of *jobs* (frozen dataclasses: task, model, level, size, seed, …); each job
returns a few tidy rows.  :class:`Store` keeps them in a folder as **one shard per job**, named by
the job's :func:`job_id`, written atomically (temporary file in the same folder, ``fsync``,
``os.replace``).  So

* a killed run loses at most the jobs it was running, never a finished one, and a rerun skips
  what is stored (:meth:`Store.has`);
* several processes or machines (over a shared filesystem) write into one folder without losing
  or duplicating anything: a job has exactly one shard, whoever wrote it; :meth:`Store.claim`
  (``O_EXCL`` lock files with stale-lock recovery) keeps them from computing the same job twice;
* values keep their types: shards are JSON documents that hold ints, floats, strings, bools and
  missing values as written, and :meth:`Store.frame` builds typed columns from them (an integer
  column with a missing value is ``Int64``, ``"007"`` stays the string ``"007"``);
* a damaged (empty, truncated, edited) shard is never read as a row: values that a store never
  writes (nested data, integers beyond int64, a row repeating its job's fields) and values that
  fail the store's ``validate`` schema (the sweep's: :func:`helpers.sweep.check_rows`) make it
  damaged; :meth:`Store.frame` refuses it naming the file (or leaves it out with a warning,
  ``damaged="skip"``), and :meth:`Store.repair` moves it aside so that its job runs again;
* locks cannot hang a writer: a holder's heartbeat refreshes its lock, a lock whose heartbeat
  stopped (or whose process died, or that is no lock at all) is taken over, and a writer
  waiting for a live holder says who it is (:meth:`Store.holder`) and gives up after its
  ``timeout``;
* temporaries left by a killed writer are recognisable (``.<target>~<host>~<pid>~<token>.tmp``)
  and removed the next time the folder is opened (:func:`remove_orphans`).

:func:`write_csv_atomic` writes a single table with the same temporaries.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "HOST",
    "RESULTS_ENV",
    "CorruptShardError",
    "Store",
    "job_fields",
    "job_id",
    "package_versions",
    "remove_orphans",
    "results_dir",
    "shown_path",
    "write_atomic",
    "write_csv_atomic",
]

RESULTS_ENV = "NOISESCALING_RESULTS"
_REPO = Path(__file__).resolve().parents[3]  # the repository (src/helpers/sweep/store.py)

#: The published schema that every single-cell result row carries.
PUBLISHED_COLUMNS = [
    "dataset", "size", "quality", "algorithm", "signal", "seed", "mi_value", "umis_per_cell",
]
__all__.append("PUBLISHED_COLUMNS")

_TRACKED_PACKAGES = (
    "numpy", "scipy", "pandas", "anndata", "scikit-learn", "torch", "scvi-tools",
    "transformers", "lmfit", "noise-scaling-book",
)

SHARD_FORMAT = "helpers.sweep.shard/1"
_SHARD_SUFFIX = ".json"
_TMP_SUFFIX = ".tmp"
_SEP = "~"
#: A temporary of another machine is an orphan once it is this old (a write takes milliseconds).
ORPHAN_AGE_S = 3600.0


class CorruptShardError(ValueError):
    """A shard file that is empty, truncated or not a shard of this store."""


# --------------------------------------------------------------------------------------------
# Folders and versions


def results_dir(*parts: str, create: bool = True) -> Path:
    """Folder for a chapter's results: ``$NOISESCALING_RESULTS`` or ``<repo>/results``.

    The book copies ``<repo>/results`` next to the built HTML, so tidy tables written here are
    published with the book.

    Examples
    --------
    >>> results_dir("published", create=False).name
    'published'
    """
    root = os.environ.get(RESULTS_ENV)
    base = Path(root) if root else _REPO / "results"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a chapter prints it: never the absolute path of the machine that ran it.

    Inside the repository the path is given relative to it (``results/sc_protein``), under
    ``$NOISESCALING_RESULTS`` relative to that (``$NOISESCALING_RESULTS/sc_protein``); anywhere
    else only its last part is shown (``…/sc_protein``).

    Examples
    --------
    >>> shown_path(_REPO / "notebooks" / "theory.md")
    'notebooks/theory.md'
    >>> shown_path("/somewhere/else/runs")
    '…/runs'
    """
    p = Path(path).resolve()
    env = os.environ.get(RESULTS_ENV)
    bases = [(Path(env).resolve(), f"${RESULTS_ENV}")] if env else []
    bases.append((_REPO, ""))
    for base, label in bases:
        if p == base or base in p.parents:
            rel = p.relative_to(base).as_posix()
            return "/".join(x for x in (label, rel) if x and x != ".") or "."
    return f"…/{p.name}"


def package_versions(packages: Iterable[str] = _TRACKED_PACKAGES) -> str:
    """Installed versions of the packages a result depends on, as ``name=version;…``.

    Examples
    --------
    >>> package_versions(["numpy"]).split(";")[1].startswith("numpy=")
    True
    """
    out = [f"python={platform.python_version()}"]
    for name in packages:
        try:
            out.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ";".join(out)


# --------------------------------------------------------------------------------------------
# Atomic writes and their orphans

_HOST = socket.gethostname().replace(_SEP, "-").replace("/", "-") or "localhost"
#: This machine's name as locks and temporaries record it.
HOST = _HOST


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return False  # not a pid any system hands out (an edited or corrupt lock file)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _tmp_name(target: str) -> str:
    return f".{target}{_SEP}{_HOST}{_SEP}{os.getpid()}{_SEP}{secrets.token_hex(4)}{_TMP_SUFFIX}"


def _parse_tmp(name: str) -> tuple[str, str, int] | None:
    """``(target, host, pid)`` of one of our temporaries, or None for any other file."""
    if not (name.startswith(".") and name.endswith(_TMP_SUFFIX)):
        return None
    parts = name[1 : -len(_TMP_SUFFIX)].rsplit(_SEP, 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


def _is_orphan(path: Path, host: str, pid: int, max_age: float) -> bool:
    if host == _HOST:
        return pid != os.getpid() and not _pid_alive(pid)
    try:
        return time.time() - path.stat().st_mtime > max_age
    except FileNotFoundError:
        return False


def remove_orphans(
    folder: str | os.PathLike, *, target: str | None = None, max_age: float = ORPHAN_AGE_S
) -> list[Path]:
    """Delete temporaries that a killed writer left in ``folder``; return what was removed.

    A temporary is ``.<target>~<host>~<pid>~<token>.tmp``.  One written on this machine is an
    orphan when its process is gone; one from another machine when it is older than
    ``max_age`` seconds.  Temporaries of live writers and every other file are left alone.

    Parameters
    ----------
    folder
        Folder to clean (not recursive).
    target
        Only temporaries of this file name.
    max_age
        Age in seconds after which another machine's temporary counts as orphaned.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".r.csv~somehost~1~ab12cd34.tmp").write_text("half a ta")
    >>> import os; _ = os.utime(folder / ".r.csv~somehost~1~ab12cd34.tmp", (0, 0))
    >>> [p.name for p in remove_orphans(folder)]
    ['.r.csv~somehost~1~ab12cd34.tmp']
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        parsed = _parse_tmp(path.name)
        if parsed is None or (target is not None and parsed[0] != target):
            continue
        if _is_orphan(path, parsed[1], parsed[2], max_age):
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def write_atomic(path: str | os.PathLike, write: Callable[[Any], None], *, mode: str = "w",
                 encoding: str | None = None) -> Path:
    """Write a file atomically: ``write(fh)`` fills a named temporary, then ``os.replace``.

    The temporary lies beside ``path`` and is named after the writer (host, pid), so that a
    killed writer's leftovers are recognised and removed by :func:`remove_orphans`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> write_atomic(path, lambda fh: fh.write("hello")).read_text()
    'hello'
    >>> [p.name for p in path.parent.iterdir()]
    ['a.txt']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / _tmp_name(path.name)
    try:
        kwargs = {"newline": "", "encoding": encoding} if "b" not in mode else {}
        with open(tmp, mode.replace("w", "x"), **kwargs) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` to ``path`` as CSV atomically; first remove a killed writer's temporaries.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> write_csv_atomic(pd.DataFrame({"a": [1, 2]}), path).read_text().split()
    ['a', '1', '2']
    """
    path = Path(path)
    remove_orphans(path.parent, target=path.name)
    return write_atomic(path, lambda fh: df.to_csv(fh, index=False))


# --------------------------------------------------------------------------------------------
# Jobs and typed values

_SCALARS = (type(None), bool, int, float, str)


def _plain(value: Any, where: str) -> Any:
    """``value`` as a JSON scalar (None, bool, int, float, str), or a TypeError naming it."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, np.generic):
        return _plain(value.item(), where)
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (_dt.datetime, _dt.date, pd.Timestamp)):
        return value.isoformat()
    msg = (
        f"{where} is {value!r} of type {type(value).__name__}; a results store keeps only "
        "None, bool, int, float and str values."
    )
    raise TypeError(msg)


def job_fields(job: Any) -> dict[str, Any]:
    """The fields of a job (a dataclass instance or a mapping) as plain typed values.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Job:
    ...     model: str
    ...     seed: int
    >>> job_fields(Job("PCA", 0))
    {'model': 'PCA', 'seed': 0}
    """
    if dataclasses.is_dataclass(job) and not isinstance(job, type):
        raw = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
    elif isinstance(job, Mapping):
        raw = dict(job)
    else:
        msg = f"A job must be a dataclass instance or a mapping; got {type(job).__name__}."
        raise TypeError(msg)
    return {str(k): _plain(v, f"Job field {k!r}") for k, v in raw.items()}


def _canonical(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), allow_nan=True)


def job_id(job: Any) -> str:
    """Stable id of a job: 20 hex digits of the SHA-256 of its fields' canonical JSON.

    Types count (``seed=1`` and ``seed=1.0`` are different jobs); field order does not.

    Examples
    --------
    >>> job_id({"model": "PCA", "seed": 0}) == job_id({"seed": 0, "model": "PCA"})
    True
    >>> job_id({"seed": 1}) == job_id({"seed": 1.0})
    False
    >>> len(job_id({"seed": 0}))
    20
    """
    return hashlib.sha256(_canonical(job_fields(job)).encode()).hexdigest()[:20]


def _plain_rows(rows: Any) -> list[dict[str, Any]]:
    if isinstance(rows, pd.DataFrame):
        records = rows.to_dict("records")
    elif isinstance(rows, Mapping):
        records = [rows]
    else:
        try:
            records = list(rows)
        except TypeError:
            msg = f"rows must be a DataFrame or a list of dicts; got {type(rows).__name__}."
            raise TypeError(msg) from None
    out = []
    for i, row in enumerate(records):
        if not isinstance(row, Mapping):
            msg = f"Row {i} is a {type(row).__name__}, not a dict."
            raise TypeError(msg)
        out.append({str(k): _plain(v, f"Row {i} column {k!r}") for k, v in row.items()})
    return out


def _kind(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _typed_column(values: list[Any]) -> pd.Series:
    """A column whose dtype follows the values' Python types (missing values keep the type)."""
    kinds = {_kind(v) for v in values}
    has_missing = "missing" in kinds
    kinds.discard("missing")
    if kinds == {"bool"}:
        return pd.Series(values, dtype="boolean" if has_missing else bool)
    if kinds == {"int"}:
        try:
            return pd.Series(values, dtype="Int64" if has_missing else "int64")
        except (OverflowError, TypeError, ValueError):  # beyond int64
            return pd.Series(values, dtype=object)
    if kinds and kinds <= {"int", "float"}:
        return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
    return pd.Series([None if _kind(v) == "missing" else v for v in values], dtype=object)


def _typed_frame(records: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: _typed_column([r.get(c) for r in records]) for c in columns},
        index=pd.RangeIndex(len(records)),
    )


# --------------------------------------------------------------------------------------------
# Lock heartbeats (one thread per process)

_HELD: dict[Path, str] = {}
_HELD_LOCK = threading.Lock()
_HEARTBEAT: threading.Thread | None = None
HEARTBEAT_S = 30.0
#: A lock file younger than this may still be being written by the process that created it.
_GRACE_S = 5.0


def _beat() -> None:
    while True:
        time.sleep(HEARTBEAT_S)
        with _HELD_LOCK:
            paths = list(_HELD)
        for path in paths:
            try:
                os.utime(path)
            except OSError:
                pass


def _hold(path: Path, token: str) -> None:
    global _HEARTBEAT
    with _HELD_LOCK:
        _HELD[path] = token
        if _HEARTBEAT is None or not _HEARTBEAT.is_alive():
            _HEARTBEAT = threading.Thread(target=_beat, name="store-heartbeat", daemon=True)
            _HEARTBEAT.start()


def _unhold(path: Path) -> None:
    with _HELD_LOCK:
        _HELD.pop(path, None)


# --------------------------------------------------------------------------------------------
# The store


class Store:
    """A folder of results, one atomically written, typed shard per job.

    Opening a store creates the folder and removes temporaries left by killed writers.

    Parameters
    ----------
    folder
        Results folder; shared by every process and machine that works on the sweep.
    stale_after
        Seconds after which a lock no longer refreshed by its holder's heartbeat counts as
        abandoned (a hung holder, or a reused pid).  A lock of a dead process on this machine
        is abandoned at once.
    validate
        ``validate(job_fields, rows)`` raising ``ValueError`` for rows that are not valid
        results (a schema: types, finite values, ranges); checked before a shard is written
        and whenever one is read back, where a failure makes the shard damaged.  Must be
        picklable (a module-level function) for Dask workers.

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Job:
    ...     model: str
    ...     seed: int
    >>> store = Store(tempfile.mkdtemp())
    >>> job = Job("PCA", 7)
    >>> store.has(job)
    False
    >>> store.put(job, [{"signal": "label", "mi": 1.5, "n": 300, "id": "007"}])
    >>> store.put(Job("PCA", 8), [{"signal": "label", "mi": 1.25, "n": None, "id": "012"}])
    >>> store.has(job), store.ids() == {job_id(job), job_id(Job("PCA", 8))}
    (True, True)
    >>> frame = store.frame([Job("PCA", 7), Job("PCA", 8)])
    >>> frame
      model  seed signal    mi     n   id
    0   PCA     7  label  1.50   300  007
    1   PCA     8  label  1.25  <NA>  012
    >>> frame.dtypes.astype(str).tolist()
    ['object', 'int64', 'object', 'float64', 'Int64', 'object']
    """

    def __init__(self, folder: str | os.PathLike, *, stale_after: float = 600.0,
                 validate: Callable[[dict, list], None] | None = None):
        self.folder = Path(folder)
        self.stale_after = float(stale_after)
        self.validate = validate
        self.folder.mkdir(parents=True, exist_ok=True)
        self._locks = self.folder / ".locks"
        self._locks.mkdir(exist_ok=True)
        self._cache: dict[Path, tuple[tuple[int, int], dict]] = {}
        self._tokens: dict[Path, str] = {}
        self.removed_orphans = self.clean()

    def __repr__(self) -> str:
        return f"Store({str(self.folder)!r})"

    def __reduce__(self):
        # Unpickled (on a Dask worker) as one store per folder and process: the folder is
        # cleaned once per process, not once per job.
        return (_reopen, (str(self.folder), self.stale_after, self.validate))

    # paths ----------------------------------------------------------------------------------
    def path(self, job: Any) -> Path:
        """File of a job's shard (``<folder>/<id[:2]>/<id>.json``)."""
        key = job if isinstance(job, str) else job_id(job)
        return self.folder / key[:2] / f"{key}{_SHARD_SUFFIX}"

    def _shard_paths(self) -> list[Path]:
        return sorted(
            p for sub in self.folder.iterdir()
            if sub.is_dir() and len(sub.name) == 2 for p in sub.glob(f"*{_SHARD_SUFFIX}")
        )

    def clean(self) -> list[Path]:
        """Remove orphan temporaries and abandoned locks; return what was removed."""
        removed = []
        for sub in [self.folder, *(p for p in self.folder.iterdir() if p.is_dir())]:
            removed += remove_orphans(sub, max_age=self.stale_after)
        for lock in self._locks.glob("*.lock"):
            if self._stale(lock):
                lock.unlink(missing_ok=True)
                removed.append(lock)
        return removed

    # shards ---------------------------------------------------------------------------------
    def has(self, job: Any) -> bool:
        """Whether the job's shard exists (its content is checked by :meth:`frame`)."""
        return self.path(job).is_file()

    def ids(self) -> set[str]:
        """Ids of the jobs with a shard."""
        return {p.stem for p in self._shard_paths()}

    def __len__(self) -> int:
        return len(self._shard_paths())

    def put(self, job: Any, rows: Any) -> None:
        """Store the rows of one job as its shard, atomically.

        Idempotent: when the job already has a valid shard, it is kept (the first finished
        result stands; :meth:`discard` it to replace it).  A damaged shard is replaced.

        Parameters
        ----------
        job
            The job (dataclass instance or mapping of plain values).
        rows
            A DataFrame or a list of dicts of plain values (None, bool, int, float, str; numpy
            scalars and timestamps are converted); may be empty.
        """
        fields = job_fields(job)
        key = job_id(fields)
        records = _plain_rows(rows)
        _check_records(fields, records, self.validate)
        path = self.path(key)
        if path.is_file():
            try:
                self._read(path)
                return
            except CorruptShardError:
                pass
        doc = {
            "format": SHARD_FORMAT, "id": key, "job": fields, "n_rows": len(records),
            "rows": records,
        }
        text = json.dumps(doc, allow_nan=True, separators=(",", ":"))
        write_atomic(path, lambda fh: fh.write(text))

    def discard(self, job: Any) -> bool:
        """Delete a job's shard so that it runs again; return whether there was one."""
        path = self.path(job)
        self._cache.pop(path, None)
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def remove(self, where: Callable[[dict], bool]) -> int:
        """Delete the shards whose job fields pass ``where``; return how many.  Damaged
        shards are left for :meth:`repair`."""
        gone = 0
        for path in self._shard_paths():
            try:
                job = self._read(path)["job"]
            except CorruptShardError:
                continue
            if where(job):
                self._cache.pop(path, None)
                path.unlink(missing_ok=True)
                gone += 1
        return gone

    def _read(self, path: Path) -> dict:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise CorruptShardError(f"Shard {path} vanished while reading.") from None
        sig = (stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == sig:
            return cached[1]
        doc = _parse_shard(path, path.read_bytes(), self.validate)
        self._cache[path] = (sig, doc)
        return doc

    def check(self, jobs: Iterable[Any] | None = None) -> dict[str, str]:
        """Damaged shards (of ``jobs``, or all) as ``{path: reason}``; empty when all are sound."""
        paths = self._shard_paths() if jobs is None else [
            p for p in (self.path(j) for j in jobs) if p.is_file()
        ]
        bad = {}
        for path in paths:
            try:
                self._read(path)
            except CorruptShardError as err:
                bad[str(path)] = str(err)
        return bad

    def repair(self, jobs: Iterable[Any] | None = None) -> list[Path]:
        """Move damaged shards (of ``jobs``, or all) to ``<folder>/.damaged/``; they run again.

        Returns the new paths of the moved files (kept for inspection, never read as rows).
        """
        moved = []
        bad = self.check(jobs)
        if bad:
            (self.folder / ".damaged").mkdir(exist_ok=True)
        for name in bad:
            src = Path(name)
            dst = self.folder / ".damaged" / f"{src.name}.{int(time.time())}"
            try:
                os.replace(src, dst)
                moved.append(dst)
            except FileNotFoundError:
                pass
            self._cache.pop(src, None)
        return moved

    def frame(self, jobs: Iterable[Any] | None = None, *, damaged: str = "raise") -> pd.DataFrame:
        """Every row of every shard, with the job's fields as typed columns.

        Parameters
        ----------
        jobs
            Only these jobs' rows, in this order, each once (jobs without a shard contribute
            nothing).  By default every shard, ordered by job id.
        damaged
            ``"raise"``: a damaged shard is an error; ``"skip"``: it is left out with a
            warning naming it (one damaged file never hides the others' rows).

        Raises
        ------
        CorruptShardError
            A shard is empty, truncated or damaged (the message names it; :meth:`repair`).
        """
        if damaged not in ("raise", "skip"):
            msg = f"damaged must be 'raise' or 'skip', got {damaged!r}."
            raise ValueError(msg)
        if jobs is None:
            paths = self._shard_paths()
        else:
            paths = [p for p in dict.fromkeys(self.path(j) for j in jobs) if p.is_file()]
        records: list[dict[str, Any]] = []
        job_cols: dict[str, None] = {}
        row_cols: dict[str, None] = {}
        bad = []
        for path in paths:
            try:
                doc = self._read(path)
            except CorruptShardError as err:
                bad.append(str(err))
                continue
            job_cols.update(dict.fromkeys(doc["job"]))
            for row in doc["rows"]:
                row_cols.update(dict.fromkeys(row))
                records.append({**doc["job"], **row})
        if bad:
            msg = (
                f"{len(bad)} damaged shard(s) in {self.folder}; Store.repair() moves them "
                "aside so that their jobs run again:\n" + "\n".join(bad[:10])
            )
            if damaged == "raise":
                raise CorruptShardError(msg)
            import warnings

            warnings.warn(f"Left out: {msg}", UserWarning, stacklevel=2)
        columns = [c for c in job_cols if c not in row_cols] + list(row_cols)
        return _typed_frame(records, columns)

    # claims ---------------------------------------------------------------------------------
    def lock_path(self, job: Any) -> Path:
        """File of a job's lock (``<folder>/.locks/<id>.lock``)."""
        key = job if isinstance(job, str) else job_id(job)
        return self._locks / f"{key}.lock"

    @staticmethod
    def _read_lock(lock: Path) -> tuple[float, dict | None] | None:
        """``(age in seconds, contents)`` of a lock file, contents None when it is no lock
        (edited, half-written, any other content); None when there is no such file."""
        try:
            age = time.time() - lock.stat().st_mtime
            info = json.loads(lock.read_text())
            if not isinstance(info, dict) or not {"host", "pid"} <= set(info):
                info = None
        except FileNotFoundError:
            return None
        except (ValueError, OSError, RecursionError):
            info = None
        return age, info

    def _stale(self, lock: Path) -> bool:
        """Whether a lock is abandoned: its holder on this machine is dead, or its heartbeat
        (the file's time stamp, refreshed every :data:`HEARTBEAT_S`) stopped ``stale_after``
        seconds ago, here or elsewhere (a hung holder, a reused pid).  A lock file that is not
        a lock (edited, half-written, any content) is abandoned once it is a few seconds old."""
        state = self._read_lock(lock)
        if state is None:
            return False
        age, info = state
        if info is None:
            return age > _GRACE_S
        if age > self.stale_after:
            return True
        return str(info["host"]) == _HOST and not _pid_alive(info["pid"])

    def holder(self, job: Any) -> str | None:
        """Who holds a job's lock, in words (``"host:pid since 10:04:31, beat 12 s ago"``), or
        None when nobody does."""
        lock = self.lock_path(job)
        state = self._read_lock(lock)
        if state is None:
            return None
        age, info = state
        try:
            since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            return f"an unreadable lock file {lock.name}"
        return f"{info['host']}:{info['pid']} since {since}, beat {age:.0f} s ago"

    def claim(self, job: Any) -> bool:
        """Take the job's lock (``O_CREAT | O_EXCL``); False when someone alive holds it.

        An abandoned lock (its process on this machine dead, or its heartbeat stopped for
        ``stale_after`` seconds anywhere, or a file that is no lock) is broken and taken.
        While held, a background thread refreshes the lock's time stamp.  Locks only avoid
        duplicate work: a job has one shard whoever writes it.
        """
        lock = self.lock_path(job)
        token = secrets.token_hex(8)
        body = json.dumps({"host": _HOST, "pid": os.getpid(), "token": token,
                           "since": time.time()})
        for _ in range(3):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                if not self._stale(lock):
                    return False
                # Break it by renaming: of several breakers only one succeeds.
                broken = lock.with_name(f"{lock.name}.broken{_SEP}{token}")
                try:
                    os.replace(lock, broken)
                    broken.unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(body)
            self._tokens[lock] = token
            _hold(lock, token)
            return True
        return False

    def release(self, job: Any) -> None:
        """Drop the job's lock if this store object claimed it."""
        lock = self.lock_path(job)
        token = self._tokens.pop(lock, None)
        if token is None:
            return
        _unhold(lock)
        try:
            if json.loads(lock.read_text()).get("token") == token:
                lock.unlink()
        except (FileNotFoundError, ValueError):
            pass

    def claimed(self, job: Any) -> bool:
        """Whether a live holder has the job's lock."""
        lock = self.lock_path(job)
        return lock.exists() and not self._stale(lock)


_OPENED: dict[tuple[str, float, Any], Store] = {}


def _reopen(folder: str, stale_after: float, validate=None) -> Store:
    key = (folder, stale_after, validate)
    if key not in _OPENED:
        _OPENED[key] = Store(folder, stale_after=stale_after, validate=validate)
    return _OPENED[key]


_INT_RANGE = (-(2**63), 2**63 - 1)


def _bad_value(value: Any) -> str | None:
    """Why a value read back is not one a store writes (None if it is)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return None
    if isinstance(value, int):
        return None if _INT_RANGE[0] <= value <= _INT_RANGE[1] else "an integer beyond int64"
    return f"a {type(value).__name__}, not a scalar"


def _check_records(job: dict, rows: list, validate: Callable | None) -> None:
    """The values a store writes and reads back: scalars only (int64 at most), no row repeating
    its job's fields, and the store's ``validate`` schema; a ValueError says what is wrong."""
    for where, values in [("job", job), *((f"row {i}", r) for i, r in enumerate(rows))]:
        for key, value in values.items():
            why = _bad_value(value)
            if why is not None:
                raise ValueError(f"{where} field {key!r} is {why}.")
    for i, row in enumerate(rows):
        clash = sorted(set(row) & set(job))
        if clash:
            msg = f"row {i} repeats the job's field(s) {clash}; a row may not override its job."
            raise ValueError(msg)
    if validate is not None:
        validate(job, rows)


def _parse_shard(path: Path, data: bytes, validate: Callable | None = None) -> dict:
    if not data.strip():
        raise CorruptShardError(f"Shard {path} is empty ({len(data)} bytes).")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise CorruptShardError(
            f"Shard {path} is truncated or not JSON ({len(data)} bytes): {reason}."
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != SHARD_FORMAT:
        raise CorruptShardError(f"{path} is not a {SHARD_FORMAT} shard.")
    rows, job = doc.get("rows"), doc.get("job")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CorruptShardError(f"Shard {path} has no list of rows.")
    if doc.get("n_rows") != len(rows):
        raise CorruptShardError(
            f"Shard {path} holds {len(rows)} rows where its header says {doc.get('n_rows')}."
        )
    if not isinstance(job, dict):
        raise CorruptShardError(f"Shard {path} has no job.")
    try:
        _check_records(job, rows, validate)
        ok = job_id(job) == doc.get("id") and path.stem == doc.get("id")
    except (TypeError, ValueError) as err:
        raise CorruptShardError(f"Shard {path}: {err}") from None
    if not ok:
        raise CorruptShardError(f"Shard {path}: its job does not match its id or file name.")
    return doc
