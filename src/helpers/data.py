"""Data access through ``data_manifest.yml``: a checksummed cache and an offline mirror.

Every file a chapter reads is an entry of the manifest at the repository root (URL, sha256,
size, licence, citation).  :func:`fetch` resolves an entry to a local path, in this order:

1. a verified copy in the cache folder (``NOISESCALING_DATA_CACHE``, default: the user cache
   folder given by :func:`pooch.os_cache`);
2. a verified copy in the offline mirror folder, read in place (``NOISESCALING_DATA_MIRROR``,
   laid out as ``<mirror>/<entry path>``, e.g. ``../shared/data``);
3. a download of the entry's URL through :mod:`pooch`, checked against its sha256 before it
   is moved into the cache (a failed check leaves no file behind).

A checksum mismatch anywhere is a :class:`ChecksumError`; no mirror copy and no network is a
:class:`DataUnavailableError` naming the entry and the mirror setting.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pooch
import yaml

__all__ = [
    "ChecksumError",
    "DataUnavailableError",
    "ManifestEntry",
    "MIRROR_ENV",
    "CACHE_ENV",
    "UNPINNED_ENV",
    "cache_dir",
    "fetch",
    "fetch_group",
    "load_manifest",
    "check_entry_path",
    "clear_manifest_cache",
    "manifest_path",
    "mirror_dir",
    "sha256sum",
]

MIRROR_ENV = "NOISESCALING_DATA_MIRROR"
CACHE_ENV = "NOISESCALING_DATA_CACHE"
MANIFEST_ENV = "NOISESCALING_MANIFEST"
UNPINNED_ENV = "NOISESCALING_ALLOW_UNPINNED"


class ChecksumError(ValueError):
    """A file's sha256 differs from the one recorded in the manifest."""


class DataUnavailableError(RuntimeError):
    """An entry is neither cached, nor in the mirror, nor downloadable."""


@dataclass(frozen=True)
class ManifestEntry:
    """One input file as described in ``data_manifest.yml``."""

    key: str
    path: str
    url: str | None
    sha256: str | None
    size: int | None = None
    licence: str = ""
    citation: str = ""
    description: str = ""
    large: bool = False
    manual: bool = False


def manifest_path() -> Path:
    """Path of the manifest: ``NOISESCALING_MANIFEST`` or ``data_manifest.yml`` at the repo root."""
    if os.environ.get(MANIFEST_ENV):
        return Path(os.environ[MANIFEST_ENV])
    return Path(__file__).resolve().parents[2] / "data_manifest.yml"


@lru_cache(maxsize=8)
def _read_manifest(path: str) -> dict[str, ManifestEntry]:
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    entries = {}
    for key, fields in raw["entries"].items():
        entries[key] = ManifestEntry(key=key, **fields)
        check_entry_path(entries[key].path, key=key)
    return entries


def check_entry_path(path: str, *, key: str = "?") -> str:
    """``path`` if it stays inside the cache and the mirror: relative, with no ``..`` part
    and no drive; a ValueError naming the entry otherwise.

    Examples
    --------
    >>> check_entry_path("published/collect_mi_results.csv")
    'published/collect_mi_results.csv'
    >>> check_entry_path("../../etc/passwd", key="evil")
    Traceback (most recent call last):
    ...
    ValueError: Manifest entry 'evil': path '../../etc/passwd' must be relative and stay inside the cache and the mirror (no '..', no absolute path).
    """
    from pathlib import PurePosixPath, PureWindowsPath

    ok = isinstance(path, str) and path.strip() != ""
    if ok:
        posix, windows = PurePosixPath(path), PureWindowsPath(path)
        ok = (not posix.is_absolute() and not windows.is_absolute() and not windows.drive
              and ".." not in posix.parts and ".." not in windows.parts)
    if not ok:
        msg = (f"Manifest entry {key!r}: path {path!r} must be relative and stay inside the "
               "cache and the mirror (no '..', no absolute path).")
        raise ValueError(msg)
    return path


def clear_manifest_cache() -> None:
    """Forget the manifests read so far (after editing one, or pointing
    ``NOISESCALING_MANIFEST`` elsewhere)."""
    _read_manifest.cache_clear()


def load_manifest(path: str | os.PathLike | None = None) -> dict[str, ManifestEntry]:
    """Read the data manifest.

    Parameters
    ----------
    path
        Manifest file; defaults to :func:`manifest_path`.

    Returns
    -------
    dict
        Entry key → :class:`ManifestEntry`.

    Examples
    --------
    >>> entries = load_manifest()
    >>> entries["published/collect_mi_results"].path
    'published/collect_mi_results.csv'
    """
    return _read_manifest(str(Path(path) if path is not None else manifest_path()))


def cache_dir() -> Path:
    """Cache folder: ``NOISESCALING_DATA_CACHE`` or the user cache folder for this project."""
    return Path(os.environ.get(CACHE_ENV) or pooch.os_cache("noise-scaling"))


def mirror_dir() -> Path | None:
    """Offline mirror folder named by ``NOISESCALING_DATA_MIRROR``, or ``None`` when unset."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser().resolve() if value else None


def sha256sum(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(entry: ManifestEntry, path: Path, origin: str) -> Path:
    actual = sha256sum(path)
    if entry.sha256 is None:
        if os.environ.get(UNPINNED_ENV) != "1":
            msg = (
                f"Entry {entry.key!r} has no pinned sha256 in the manifest, so {path} cannot be "
                f"verified. Set {UNPINNED_ENV}=1 to use it anyway, then record its sha256 "
                f"({actual}) in data_manifest.yml."
            )
            raise ChecksumError(msg)
        print(f"[helpers.data] {entry.key}: unpinned file used, sha256 {actual}")
        return path
    if actual != entry.sha256:
        msg = (
            f"Checksum mismatch for {entry.key!r} in the {origin} ({path}): expected sha256 "
            f"{entry.sha256}, got {actual}. The file is corrupt or not the one the manifest names."
        )
        raise ChecksumError(msg)
    return path


def fetch(key: str, *, manifest: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """Local path of a manifest entry, verified against its sha256.

    Parameters
    ----------
    key
        Entry key in the manifest, e.g. ``"published/collect_mi_results"``.
    manifest
        Manifest file; defaults to :func:`manifest_path`.
    progress
        Show a download progress bar and pooch's line naming the download and where it goes
        (by default a download prints nothing, so no chapter's page shows a machine's path).

    Returns
    -------
    pathlib.Path
        A file in the cache or in the mirror, never a partial download.

    Raises
    ------
    TypeError
        ``key`` is not a non-empty string.
    KeyError
        The key is not in the manifest.
    ChecksumError
        A cached, mirrored or downloaded file does not match the manifest; the message names
        the file to delete or replace.  A corrupt cached file is passed over (with a warning)
        when the mirror holds a valid copy.
    DataUnavailableError
        Not cached, not in the mirror, and the download failed (e.g. offline).

    Examples
    --------
    >>> path = fetch("published/spike_esm2")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'multisize_gisaid_results.csv'
    """
    if not isinstance(key, str) or not key:
        msg = (
            f"`key` must be the name of a data manifest entry (a non-empty str such as "
            f"'published/collect_mi_results'), got {key!r} of type {type(key).__name__}."
        )
        raise TypeError(msg)
    entries = load_manifest(manifest)
    if key not in entries:
        close = [k for k in entries if key.split("/")[-1] in k]
        hint = f" Did you mean {close}?" if close else ""
        msg = f"No entry {key!r} in the data manifest.{hint}"
        raise KeyError(msg)
    entry = entries[key]

    cached = cache_dir() / entry.path
    mirror = mirror_dir()
    mirrored = mirror / entry.path if mirror is not None else None
    if cached.is_file():
        try:
            return _verify(entry, cached, "cache")
        except ChecksumError as err:
            if entry.sha256 is None:  # unpinned, not corrupt: the message says what to do
                raise
            # a corrupt cached copy: a valid mirror copy still serves; else say what to delete
            if mirrored is not None and mirrored.is_file():
                try:
                    path = _verify(entry, mirrored, "mirror")
                except ChecksumError:
                    pass
                else:
                    warnings.warn(
                        f"{err} Using the valid mirror copy {mirrored} instead; delete "
                        f"{cached} to silence this warning.",
                        stacklevel=2,
                    )
                    return path
            msg = (
                f"{err} Delete the corrupt cached file ({cached}) and call fetch({key!r}) "
                "again to download it"
                + (f" or read the mirror ({mirror})." if mirror is not None else ".")
            )
            raise ChecksumError(msg) from None

    if mirrored is not None and mirrored.is_file():
        try:
            return _verify(entry, mirrored, "mirror")
        except ChecksumError as err:
            if entry.sha256 is None:
                raise
            msg = f"{err} Replace the mirror file {mirrored} with a good copy" + (
                f" (from {entry.url})." if entry.url else "."
            )
            raise ChecksumError(msg) from None

    where = (
        f"the mirror {mirror} has no {entry.path}"
        if mirror is not None
        else f"no offline mirror is set ({MIRROR_ENV})"
    )
    if entry.manual or not entry.url:
        msg = (
            f"Entry {entry.key!r} cannot be downloaded and {where}. {entry.description} "
            f"Place the file at <mirror>/{entry.path} or {cached}."
        )
        raise DataUnavailableError(msg)
    if entry.sha256 is None and os.environ.get(UNPINNED_ENV) != "1":
        msg = (
            f"Entry {entry.key!r} is not in the cache ({cached}) and {where}; it has no pinned "
            f"sha256, so it is not downloaded unverified. Set {UNPINNED_ENV}=1 to download "
            f"{entry.url} and record the printed hash in data_manifest.yml."
        )
        raise DataUnavailableError(msg)
    logger = pooch.get_logger()
    level = logger.level
    if not progress:  # pooch logs "Downloading data from <url> to file <cache path>" to stderr,
        logger.setLevel("WARNING")  # which would print a build machine's path into a page
    try:
        downloaded = pooch.retrieve(
            entry.url,
            known_hash=f"sha256:{entry.sha256}" if entry.sha256 else None,
            fname=cached.name,
            path=cached.parent,
            progressbar=progress,
        )
    except ValueError as err:  # pooch's hash mismatch; it has already removed the download
        msg = f"Checksum mismatch downloading {entry.key!r} from {entry.url}: {err}"
        raise ChecksumError(msg) from err
    except Exception as err:  # network errors of every kind
        msg = (
            f"Could not fetch {entry.key!r}: it is not in the cache ({cached}), {where}, and "
            f"downloading {entry.url} failed ({type(err).__name__}: {err}). Offline, point "
            f"{MIRROR_ENV} at a folder holding {entry.path}."
        )
        raise DataUnavailableError(msg) from err
    finally:
        logger.setLevel(level)
    return _verify(entry, Path(downloaded), "download")


def fetch_group(prefix: str, *, manifest: str | os.PathLike | None = None) -> Path:
    """A folder holding every entry whose key starts with ``prefix``, each fetched and verified.

    For inputs that are read as a folder (a model checkpoint: ``config.json``, weights,
    tokenizer files). Each file keeps its base name. When all of them resolve into one folder
    (the mirror or the cache), that folder is returned; otherwise links to them are gathered in
    ``<cache>/groups/<prefix>``.

    Raises
    ------
    KeyError
        No entry has a key starting with ``prefix``.

    Examples
    --------
    >>> fetch_group("esm2/esm2_t6_8M_UR50D/")  # doctest: +SKIP
    PosixPath('.../models/esm2_t6_8M_UR50D')
    """
    keys = [k for k in load_manifest(manifest) if k.startswith(prefix)]
    if not keys:
        msg = f"No entry of the data manifest has a key starting with {prefix!r}."
        raise KeyError(msg)
    paths = [fetch(k, manifest=manifest) for k in keys]
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        msg = f"Entries under {prefix!r} share file names {sorted(names)}; cannot form a folder."
        raise ValueError(msg)
    parents = {p.parent for p in paths}
    if len(parents) == 1:
        return parents.pop()
    folder = cache_dir() / "groups" / prefix.strip("/")
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        link = folder / path.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path.resolve())
    return folder
