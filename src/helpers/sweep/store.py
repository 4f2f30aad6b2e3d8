"""Resumable, atomic tidy results tables for parameter sweeps.

A sweep (noise level × model × training size × seed) appends one row per finished
measurement to a CSV table.  Every write replaces the file atomically (write to a temporary
file in the same folder, ``fsync``, ``os.replace``), so an interrupted run never leaves a
truncated table, and a rerun skips the rows already present.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

__all__ = [
    "RESULTS_ENV",
    "ResultsTable",
    "package_versions",
    "results_dir",
    "shown_path",
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
    """Installed versions of the packages a result depends on, as ``name=version;…``."""
    out = [f"python={platform.python_version()}"]
    for name in packages:
        try:
            out.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ";".join(out)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` to ``path`` as CSV atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            df.to_csv(fh, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class ResultsTable:
    """A tidy CSV table of results that a sweep appends to and resumes from.

    Parameters
    ----------
    path
        CSV file; created on the first :meth:`append`.
    key
        Columns that identify one measurement (e.g. ``dataset, size, quality, algorithm,
        signal, seed``); :meth:`done` answers whether a key is already recorded.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> table = ResultsTable(pathlib.Path(tempfile.mkdtemp()) / "r.csv", key=["model", "seed"])
    >>> table.done({"model": "PCA", "seed": 0})
    False
    >>> table.append({"model": "PCA", "seed": 0, "mi_value": 1.5})
    >>> table.done({"model": "PCA", "seed": 0}), len(table.frame)
    (True, 1)
    """

    def __init__(self, path: str | os.PathLike, *, key: Iterable[str]):
        self.path = Path(path)
        self.key = list(key)
        self._frame = pd.read_csv(self.path) if self.path.is_file() else pd.DataFrame()
        self._done = {self._key_of(row) for row in self._frame.to_dict("records")}

    def _key_of(self, row: Mapping) -> tuple:
        missing = [k for k in self.key if k not in row]
        if missing:
            msg = f"Result row lacks key column(s) {missing}."
            raise ValueError(msg)
        return tuple(str(row[k]) for k in self.key)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows recorded so far."""
        return self._frame.copy()

    def done(self, row: Mapping) -> bool:
        """Whether a measurement with this key is already recorded."""
        return self._key_of(row) in self._done

    def append(self, rows: Mapping | Iterable[Mapping]) -> None:
        """Record one or more rows, stamped with the time, and rewrite the table atomically.

        Rows whose key is already present are not duplicated.
        """
        rows = [rows] if isinstance(rows, Mapping) else list(rows)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        new = []
        for row in rows:
            k = self._key_of(row)
            if k in self._done:
                continue
            self._done.add(k)
            new.append({**row, "recorded_at": row.get("recorded_at", stamp)})
        if not new:
            return
        self._frame = pd.concat([self._frame, pd.DataFrame(new)], ignore_index=True)
        write_csv_atomic(self._frame, self.path)
