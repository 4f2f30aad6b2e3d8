"""Your data, your model: the noise law of any AnnData and any embedding, in one call.

:func:`noise_scaling` turns an AnnData with raw counts and an auxiliary signal into a task of
its own (:class:`helpers.tasks.TaskSpec`), sweeps it like every chapter of the book (binomial
thinning of the counts, models trained at every depth, the probe on a held-out set; resumable,
on Dask when asked), fits the noise law per model and answers how many UMIs per cell reach 90 %
of each model's capacity::

    import helpers as hp
    result = hp.apply.noise_scaling(adata, "obsm:protein", models=("PCA", "SCVI"))
    result.fits                    # ū, I_max, errors, R², UMI90 both ways, per model
    result.plot()

The signal is named as ``"<where>:<key>"``:

=====================  =========================================================================
``"obsm:protein"``     a vector per cell (``log1p`` of counts; ``log1p=False`` keeps raw values)
``"obs:celltype"``     a column of ``obs``: labels if it holds categories or strings, else a number
``"obs:day:labels"``   the same, with the kind forced (``labels`` or ``scalar``)
``"spatial:spatial"``  a partner signal: each cell with a random one of its ``k`` nearest
                       neighbours in the coordinates ``obsm["spatial"]``
=====================  =========================================================================

Your own representation comes as ``embed``: a function ``counts -> embedding`` (``counts`` is the
cells' CSR count matrix) or an object with ``fit`` and ``transform`` (a scikit-learn pipeline, …),
refitted on the training cells of every job; it is probed exactly like the book's models.

From the command line::

    python -m helpers.apply data.h5ad --signal obsm:protein --model PCA --model SCVI --out results/
"""

from __future__ import annotations

import copy
import functools
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import datasets, noise, profiles, sweep, tasks
from ._cli import add_debug, guarded, nonnegative_int

__all__ = ["EmbeddingModel", "NoiseScalingResult", "noise_scaling", "parse_signal"]

#: Fewer cells than this cannot hold out an evaluation set large enough for the probe.
MIN_CELLS = 200
#: Below this many cells (or evaluation pairs) the fits are flagged as not trustworthy.
FEW_CELLS = 1000
#: Below this many mean UMIs per cell the depth grid spans less than a decade.
FEW_UMIS = 100.0


# --------------------------------------------------------------------------------------------
# The signal
# --------------------------------------------------------------------------------------------
def parse_signal(adata, signal: str, *, log1p: bool = True) -> tuple[str, str]:
    """``(key, kind)`` of a signal named ``"obsm:KEY"``, ``"obs:KEY[:KIND]"`` or
    ``"spatial:KEY"``, checked against ``adata``.

    The kind of an ``obs`` column is never guessed from how many values it holds: strings,
    categories and booleans are labels, a column with fractional values is a scalar, and a
    column of whole numbers (cluster ids? days?) must say which it is (``":labels"`` or
    ``":scalar"``).

    Examples
    --------
    >>> import anndata as ad
    >>> obs = pd.DataFrame({"t": ["a", "b", "a"], "day": [1, 2, 3]}, index=list("xyz"))
    >>> a = ad.AnnData(np.ones((3, 2)), obs=obs)
    >>> parse_signal(a, "obs:t"), parse_signal(a, "obs:day:scalar")
    (('t', 'labels'), ('day', 'scalar'))
    >>> parse_signal(a, "obs:day")
    Traceback (most recent call last):
    ...
    ValueError: signal 'obs:day': obs['day'] holds whole numbers (3 distinct), which may be labels or a number: say which, 'obs:day:labels' or 'obs:day:scalar'.
    >>> parse_signal(a, "obsm:protein")
    Traceback (most recent call last):
    ...
    ValueError: signal 'obsm:protein': adata.obsm has no 'protein' (it has: none).
    """
    if not isinstance(signal, str) or ":" not in signal:
        msg = (f"signal must be 'obsm:KEY', 'obs:KEY' or 'spatial:KEY' (e.g. 'obsm:protein'), "
               f"got {signal!r}.")
        raise ValueError(msg)
    where, _, rest = signal.partition(":")
    key, _, forced = rest.partition(":")
    if where in ("obsm", "spatial"):
        _obsm_values(adata, signal, key, log1p=log1p and where == "obsm")
        return key, "vector" if where == "obsm" else "partner"
    if where != "obs":
        msg = f"signal {signal!r}: the part before ':' must be 'obsm', 'obs' or 'spatial'."
        raise ValueError(msg)
    if key not in adata.obs:
        have = ", ".join(map(repr, adata.obs.columns)) or "none"
        msg = f"signal {signal!r}: adata.obs has no column {key!r} (it has: {have})."
        raise ValueError(msg)
    if forced not in ("", "labels", "scalar"):
        msg = f"signal {signal!r}: an obs column is 'labels' or 'scalar', not {forced!r}."
        raise ValueError(msg)
    column = adata.obs[key]
    if column.isna().any():
        msg = f"signal {signal!r}: obs[{key!r}] has {int(column.isna().sum())} missing value(s)."
        raise ValueError(msg)
    if column.nunique() < 2:
        msg = f"signal {signal!r}: obs[{key!r}] has a single value; it carries no information."
        raise ValueError(msg)
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if forced == "scalar" or (not forced and numeric):
        if not numeric:
            msg = (f"signal {signal!r}: obs[{key!r}] is not numeric ({column.dtype}); "
                   f"a scalar signal needs numbers (or probe it as 'obs:{key}:labels').")
            raise ValueError(msg)
        values = column.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            msg = (f"signal {signal!r}: obs[{key!r}] has {int((~np.isfinite(values)).sum())} "
                   "infinite value(s); a scalar signal must be finite.")
            raise ValueError(msg)
        if not forced and np.all(values == np.round(values)):
            msg = (f"signal {signal!r}: obs[{key!r}] holds whole numbers ({column.nunique()} "
                   "distinct), which may be labels or a number: say which, "
                   f"'obs:{key}:labels' or 'obs:{key}:scalar'.")
            raise ValueError(msg)
        return key, "scalar"
    return key, "labels"


def _obsm_values(adata, signal: str, key: str, *, log1p: bool) -> np.ndarray:
    """The matrix ``obsm[key]`` as floats, with a message that says what is wrong with it."""
    import scipy.sparse as sp

    if key not in adata.obsm:
        have = ", ".join(map(repr, adata.obsm)) or "none"
        msg = f"signal {signal!r}: adata.obsm has no {key!r} (it has: {have})."
        raise ValueError(msg)
    raw = adata.obsm[key]
    if sp.issparse(raw):
        raw = raw.toarray()
    raw = raw.to_numpy() if isinstance(raw, pd.DataFrame) else np.asarray(raw)
    if raw.dtype.kind not in "biuf":
        msg = (f"signal {signal!r}: obsm[{key!r}] holds {raw.dtype} values, not numbers; a "
               "vector signal is a numeric matrix (cells × dims).")
        raise ValueError(msg)
    values = raw.astype(np.float64)
    if values.ndim != 2:
        msg = f"signal {signal!r}: obsm[{key!r}] must be a matrix (cells × dims), not {values.shape}."
        raise ValueError(msg)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        msg = f"signal {signal!r}: obsm[{key!r}] has {bad} NaN or infinite value(s)."
        raise ValueError(msg)
    if log1p and values.min() < 0:
        msg = (f"signal {signal!r}: obsm[{key!r}] has negative values (minimum "
               f"{values.min():.3g}), so it is not counts (CLR-normalised?) and log1p cannot be "
               "taken: pass log1p=False to probe the values as they are, or give raw counts.")
        raise ValueError(msg)
    return values


# --------------------------------------------------------------------------------------------
# Your own representation as a model of the sweep
# --------------------------------------------------------------------------------------------
class EmbeddingModel:
    """A user's representation in the models' protocol (``fit`` / ``embed``).

    Parameters
    ----------
    embed
        A function ``counts -> embedding`` (fixed; ``fit`` does nothing), or an object with
        ``fit(counts)`` and ``transform(counts)``, copied afresh and fitted on each job's
        training cells. ``counts`` is a CSR matrix of raw counts, cells × genes.
    name
        The model's name in the results.

    Examples
    --------
    >>> import anndata as ad
    >>> model = EmbeddingModel(lambda counts: np.log1p(counts.toarray())[:, :2], name="log2")
    >>> model.fit(ad.AnnData(np.ones((4, 3)))).embed(ad.AnnData(np.ones((4, 3)))).shape
    (4, 2)
    """

    def __init__(self, embed: Callable | Any, *, name: str = "YourEmbedding"):
        fits = hasattr(embed, "fit") and hasattr(embed, "transform")
        if not (fits or callable(embed)):
            msg = ("embed must be a function counts -> embedding or an object with fit and "
                   f"transform; got {type(embed).__name__}.")
            raise TypeError(msg)
        self.name, self._embed, self._fits = name, embed, fits
        self._fitted = None
        self.config = {"embed": getattr(embed, "__name__", type(embed).__name__)}

    @property
    def identity(self) -> str:
        """What the embedding computes, as a digest: a function's qualified name, code,
        constants, defaults and captured values; an estimator's class and parameters
        (``get_params``).  It enters the ids of this model's jobs, so editing the function or
        the estimator's settings measures afresh instead of reusing the old values.

        Examples
        --------
        >>> a = EmbeddingModel(lambda counts: counts[:, :2].toarray(), name="a")
        >>> b = EmbeddingModel(lambda counts: counts[:, :3].toarray(), name="a")
        >>> a.identity == EmbeddingModel(a._embed, name="a").identity, a.identity == b.identity
        (True, False)
        """
        return _definition_digest(self._embed)

    @staticmethod
    def _counts(data):
        return datasets.validate_counts(data.X, name="counts")

    def fit(self, data, *, y=None, val=None, y_val=None, progress: bool = True):
        """Fit a fresh copy of an estimator on the training cells (a function needs none)."""
        if self._fits:
            try:
                from sklearn.base import clone

                self._fitted = clone(self._embed)
            except TypeError:  # not a scikit-learn estimator
                self._fitted = copy.deepcopy(self._embed)
            self._fitted.fit(self._counts(data))
        return self

    def embed(self, data) -> np.ndarray:
        """The embedding of ``data``'s cells, as a float array (cells × dims)."""
        counts = self._counts(data)
        if self._fits:
            if self._fitted is None:
                msg = f"{self.name} is not fitted yet: call .fit(data) first."
                raise RuntimeError(msg)
            out = self._fitted.transform(counts)
        else:
            out = self._embed(counts)
        out = np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if out.shape[0] != counts.shape[0] or not np.isfinite(out).all():
            msg = (f"{self.name} returned an embedding of shape {out.shape} (finite: "
                   f"{bool(np.isfinite(out).all())}) for {counts.shape[0]} cells.")
            raise ValueError(msg)
        return out


def _stable_repr(value) -> str:
    """``repr`` without memory addresses; functions by their definition, estimators by class
    (their parameters come separately, from ``get_params(deep=True)``)."""
    import re

    if hasattr(value, "__code__"):
        return f"function:{_definition_digest(value)}"
    if hasattr(value, "get_params"):
        return f"estimator:{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, np.ndarray):
        return f"array:{datasets.fingerprint(value)}"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__}[" + ", ".join(map(_stable_repr, value)) + "]"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _definition_digest(obj) -> str:
    """A digest of what a function or an estimator computes (see EmbeddingModel.identity)."""
    parts: list = [type(obj).__module__, type(obj).__qualname__]
    code = getattr(obj, "__code__", None)
    if code is not None:
        def describe(c):
            consts = [describe(k) if hasattr(k, "co_code") else repr(k) for k in c.co_consts]
            return [c.co_code.hex(), consts, list(c.co_names)]

        cells = [cell.cell_contents for cell in (obj.__closure__ or ())]
        parts += [getattr(obj, "__module__", ""), obj.__qualname__, describe(code),
                  _stable_repr(obj.__defaults__), _stable_repr(obj.__kwdefaults__)]
        parts += [_stable_repr(c) for c in cells if c is not obj]
    elif hasattr(obj, "get_params"):
        params = obj.get_params(deep=True)
        parts += [f"{k}={_stable_repr(v)}" for k, v in sorted(params.items())]
    else:
        parts += [f"{k}={_stable_repr(v)}" for k, v in sorted(vars(obj).items())
                  if isinstance(v, (type(None), bool, int, float, str, tuple))]
    return datasets.fingerprint(json.dumps(parts, default=repr))


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------
@dataclass
class NoiseScalingResult:
    """What :func:`noise_scaling` measured and fitted.

    Attributes
    ----------
    task
        The task made for the data (its name is the results folder's).
    results
        Every measurement, one row per trained model (the book's tidy schema).
    fits
        One noise-law fit per model at the largest training size: ``u_bar``, ``i_max`` and
        their errors, ``r_squared``, ``ok`` and ``reason`` (whether the data constrain the fit,
        and why not), ``umi90`` (I_max + log2 0.95, the authors' table definition) and
        ``umi90_text`` (0.9 · I_max, the paper's text); both are NaN for a fit that is not ok.
    cell_fits
        Cell-number-law fits at full depth.
    warnings
        Why a fit may not be trustworthy (too few cells or UMIs, no information at full depth).
    """

    task: tasks.TaskSpec
    results: pd.DataFrame
    fits: pd.DataFrame
    cell_fits: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def plot(self, ax=None):
        """MI against UMIs per cell, one color per model, with the fits and their 2σ bands."""
        import matplotlib.pyplot as plt

        from . import plots

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 3.8))
        plots.plot_noise_curves(ax, self.fits, title=self.task.title)
        return ax

    def _repr_html_(self) -> str:
        cols = ["model", "u_bar", "i_max", "r_squared", "ok", "reason", "umi90", "umi90_text"]
        shown = self.fits[[c for c in cols if c in self.fits.columns]]
        notes = "".join(f"<li>{w}</li>" for w in self.warnings)
        return shown.to_html(index=False) + (f"<ul>{notes}</ul>" if notes else "")


# --------------------------------------------------------------------------------------------
# The call
# --------------------------------------------------------------------------------------------
def _count_layer(adata, layer: str | None):
    """A copy of ``adata`` with the raw counts in ``X`` (checked), never touching the input."""
    import anndata as ad

    if not isinstance(adata, ad.AnnData):
        msg = f"adata must be an AnnData, got {type(adata).__name__}."
        raise TypeError(msg)
    if layer is not None and layer not in adata.layers:
        have = ", ".join(map(repr, adata.layers)) or "none"
        msg = f"adata.layers has no {layer!r} (it has: {have})."
        raise ValueError(msg)
    source = adata.X if layer is None else adata.layers[layer]
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    if source is None:
        msg = f"{where} is empty: put the raw counts in X or name their layer."
        raise ValueError(msg)
    try:
        counts = datasets.validate_counts(source, name=where)
    except ValueError as err:
        values = source.data if hasattr(source, "data") and not isinstance(source, np.ndarray) \
            else np.asarray(source)
        values = np.asarray(values, dtype=np.float64)
        finite = values[np.isfinite(values)]
        hint = ""
        if finite.size and finite.min() >= 0 and finite.max() < 20 and (finite % 1 != 0).any():
            hint = (" It looks log-normalised (non-integer values, maximum "
                    f"{finite.max():.2f}): pass the raw counts, e.g. layer='counts'.")
        raise ValueError(f"{err}{hint}") from None
    out = ad.AnnData(counts, obs=adata.obs.copy(), var=pd.DataFrame(index=adata.var_names.copy()))
    for key, value in adata.obsm.items():
        out.obsm[key] = value.copy()
    return out


def noise_scaling(
    adata,
    signal: str,
    *,
    models: Sequence[str] = ("PCA", "SCVI"),
    embed: Callable | Any | None = None,
    embed_name: str = "YourEmbedding",
    layer: str | None = None,
    profile: str = "quick",
    seed: int = 0,
    results=None,
    backend: str = "serial",
    client=None,
    name: str = "your_data",
    log1p: bool = True,
    k: int = 5,
    progress: bool = True,
    overwrite: bool = False,
) -> NoiseScalingResult:
    """The noise law of your data: sweep sequencing depth, probe the signal, fit per model.

    Parameters
    ----------
    adata
        Raw integer counts in ``X`` (or ``layers[layer]``), cells × genes, and the signal.
    signal
        Where the auxiliary signal is: ``"obsm:KEY"``, ``"obs:KEY"`` (``":labels"`` or
        ``":scalar"`` appended forces the kind) or ``"spatial:KEY"`` (see the module's table).
    models
        The book's models to train (:func:`helpers.models.make_model` names).
    embed, embed_name
        Your own representation (see :class:`EmbeddingModel`) and its name in the results.
    layer
        The layer holding raw counts (default ``X``).
    profile
        ``"smoke"``, ``"quick"`` or ``"paper"``: the depth grid and the models' settings.
    seed
        The seed of the evaluation split, the training subsets, the thinning and the models.
    results
        The results folder (default ``results/<name>``); a rerun resumes where it stopped. A
        folder holding results of ``name`` measured on other data, another signal, layer,
        ``log1p``, ``k`` or another definition of ``embed`` is refused, never reused.
    backend, client
        ``"serial"`` or ``"dask"`` (see :func:`helpers.sweep.run`).
    name
        The task's name (its results folder): letters, digits, ``_``, ``-``, ``.``; not the
        name of one of the book's tasks.
    log1p
        Probe ``log1p`` of an ``obsm`` vector (protein counts); ``False`` keeps its values.
    k
        Neighbours to choose a partner from, for a ``"spatial:KEY"`` signal.
    progress
        Show progress while the sweep runs.
    overwrite
        Discard the results of an earlier call under ``name`` in ``results`` that measured
        something else (other data, signal or settings) instead of refusing the folder.

    Returns
    -------
    NoiseScalingResult

    Raises
    ------
    ValueError
        Counts that are not raw counts (floats, negatives, NaN, log-normalised data), a signal
        that does not exist, carries one value or is of an ambiguous kind, too few cells for
        the probe, an unknown model, an unsafe name, or a results folder that holds another
        question's results (:class:`helpers.sweep.ResultsMismatchError`).

    Warns
    -----
    UserWarning
        Cells that are exact copies of others (left out), too few cells or UMIs, no
        information at full depth.
    """
    from . import models as _models

    name = tasks.check_name(name, what="name")
    if tasks.builtin(name):
        msg = (f"name={name!r} is one of the book's tasks; give your data a name of its own "
               "(it names the results folder).")
        raise ValueError(msg)
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        msg = f"seed must be a non-negative integer, got {seed!r}."
        raise ValueError(msg)
    profiles.get(profile)
    models = tuple(models)
    known = _models.MODEL_NAMES
    unknown = [m for m in models if m not in known]
    if unknown:
        msg = f"Unknown model(s) {unknown}; the book's cell models are {known}."
        raise ValueError(msg)
    if embed is not None:
        tasks.check_name(embed_name, what="embed_name")
        if embed_name.lower() in {m.lower() for m in _models.names()}:
            msg = (f"embed_name={embed_name!r} is the name of one of the book's models; name "
                   "your embedding otherwise, so that its results are never mistaken for it.")
            raise ValueError(msg)
    counts = _count_layer(adata, layer)
    key, kind = parse_signal(counts, signal, log1p=log1p)
    if kind in ("vector", "partner"):
        counts.obsm[key] = _obsm_values(counts, signal, key, log1p=False)
    dropped = _drop_duplicates(counts, key, kind)
    if dropped is not None:
        counts = counts[~dropped].copy()
    if counts.n_obs < MIN_CELLS:
        msg = (f"{counts.n_obs} cells are too few: the probe needs an evaluation set of at "
               f"least a few hundred cells (give at least {MIN_CELLS}).")
        raise ValueError(msg)
    extra, identities = {}, {}
    if embed is not None:
        model = EmbeddingModel(embed, name=embed_name)  # checks embed's type now
        extra[embed_name] = functools.partial(_copy_of, model)
        identities[embed_name] = model.identity
    names = models + tuple(extra)
    if not names:
        msg = "Give at least one model or an embed function."
        raise ValueError(msg)
    options = {"log1p": log1p} if kind == "vector" else {"k": k} if kind == "partner" else {}
    def loader():
        return counts

    loader.__name__ = f"load_{name}"  # the dataset's name in the result rows
    signal_values = counts.obsm[key] if kind in ("vector", "partner") else counts.obs[key]
    data_id = datasets.fingerprint(counts.X, signal_values, f"layer={layer}")
    source = tasks.Source(loader, key, options, note="your data", kind=kind,
                          fingerprint=data_id)
    spec = tasks.TaskSpec(
        name=name, modality="cell", title=f"{key} MI", sources={"quick": source, "paper": source},
        corrupt=noise.thin, levels=tasks.count_levels, x_name="umis_per_cell",
        x_label="UMIs per cell", models=names, extra_models=extra, model_identities=identities,
    )
    tasks.register(spec, replace=True)
    frame = sweep.run(spec, profile=profile, seeds=(int(seed),), backend=backend, client=client,
                      results=results, progress=progress, overwrite=overwrite)
    noise_fits, cell_fits = sweep.fit(frame)
    largest = noise_fits[noise_fits["size"] == noise_fits["size"].max()].reset_index(drop=True)
    notes = _warnings(counts, frame, spec)
    if dropped is not None:
        notes.insert(0, f"{int(dropped.sum())} cell(s) repeated another cell exactly (the same "
                        "counts and signal) and were left out: copies on both sides of the "
                        "evaluation split inflate the MI.")
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return NoiseScalingResult(spec, frame, largest, cell_fits, notes)


def _copy_of(model, *, profile, seed):
    """A fresh copy of your embedding for one job (the factory of its extra model)."""
    return copy.copy(model)


def _drop_duplicates(counts, key: str, kind: str) -> np.ndarray | None:
    """The cells that repeat an earlier cell exactly (counts and signal), or None if none."""
    signal = None
    if kind == "vector":
        signal = counts.obsm[key]
    elif kind in ("labels", "scalar"):
        signal = counts.obs[key].astype(str).to_numpy()
    dup = datasets.duplicated_rows(counts.X, signal)
    return dup if dup.any() else None


def _warnings(counts, frame: pd.DataFrame, spec: tasks.TaskSpec) -> list[str]:
    """Why the fits may not be trustworthy, in words."""
    notes = []
    n_eval = int(frame["n_eval"].min())
    if counts.n_obs < FEW_CELLS or n_eval < FEW_CELLS // 3:
        notes.append(f"Only {counts.n_obs} cells ({n_eval} probed): the MI estimates are noisy; "
                     "a trustworthy fit wants a few thousand cells.")
    mean_umis = float(np.asarray(counts.X.sum(axis=1)).mean())
    if mean_umis < FEW_UMIS:
        notes.append(f"Only {mean_umis:.0f} UMIs per cell on average: the depth grid spans "
                     "less than a decade, so saturation can hardly be seen.")
    full = frame[np.isclose(frame["level"], frame["level"].max())]
    if len(full) and full["mi"].max() < 0.05:
        notes.append(f"At full depth the signal holds at most {full['mi'].max():.3f} bits for "
                     f"every model: {spec.title} carries (almost) no information here.")
    return notes


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------
_CLI_EPILOG = """\
signals:
  obsm:KEY          a vector per cell in adata.obsm[KEY] (protein counts: log1p is probed)
  obs:KEY[:KIND]    a column of adata.obs; labels for categories/strings, else a number
  spatial:KEY       each cell paired with one of its k nearest neighbours in obsm[KEY]

writes (into --out):
  results.csv        one row per trained model (the book's tidy schema), and its shards
  noise_law_fits.csv one noise-law fit per model: u_bar, i_max, errors, R², UMI90 both ways
  noise_law.png      MI against UMIs per cell with the fits

example:
  python -m helpers.apply cite.h5ad --signal obsm:protein --model PCA --model SCVI --out res/
"""


def main(argv=None) -> int:
    """``python -m helpers.apply DATA.h5ad --signal ... [--model ...] --out DIR``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m helpers.apply",
        description="Fit the measurement-noise scaling law to your own data: thin the counts "
                    "of an .h5ad file to a grid of depths, train each model at every depth, "
                    "probe the auxiliary MI of the signal and fit Eq. 1 per model.",
        epilog=_CLI_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data", help="an .h5ad file with raw counts in X (or --layer)")
    parser.add_argument("--signal", required=True, help="where the signal is (see below)")
    parser.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help="RandomProjection, PCA, SCVI or Geneformer (repeatable; "
                             "default PCA and SCVI)")
    parser.add_argument("--layer", help="the layer holding raw counts (default X)")
    parser.add_argument("--profile", default="quick", choices=list(profiles.NAMES),
                        help="grid and model settings (default quick)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="seed (default 0)")
    parser.add_argument("--out", required=True, help="results folder (created; resumable)")
    parser.add_argument("--backend", default="serial", choices=["serial", "dask"],
                        help="run jobs here or on a local Dask cluster (default serial)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard results in --out that measured other data or settings")
    add_debug(parser)
    args = parser.parse_args(argv)

    from pathlib import Path

    from . import models as _models

    path = Path(args.data)
    if not path.is_file():
        parser.error(f"no such file: {path}")
    unknown = [m for m in (args.models or ()) if m not in _models.MODEL_NAMES]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(_models.MODEL_NAMES)}")
    return guarded(parser, args, lambda: _cli_run(args, path))


def _cli_run(args, path) -> int:
    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    from . import plots

    try:
        adata = ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as err:
        msg = f"{path} is not a readable .h5ad file ({type(err).__name__}: {err})"
        raise ValueError(msg) from None
    result = noise_scaling(
        adata, args.signal, models=tuple(args.models or ("PCA", "SCVI")),
        layer=args.layer, profile=args.profile, seed=args.seed, results=args.out,
        backend=args.backend, name=tasks.check_name(path.stem.replace(" ", "_"), what="the "
                                                    "file's name (it names the task)"),
        progress=True, overwrite=args.overwrite,
    )
    out = Path(args.out)
    sweep.write_csv_atomic(result.fits.drop(columns="fit", errors="ignore"),
                           out / "noise_law_fits.csv")
    plots.save_figure(result.plot().figure, out / "noise_law.png", dpi=150)
    shown = ["model", "u_bar", "i_max", "r_squared", "ok", "umi90", "umi90_text"]
    print(result.fits[[c for c in shown if c in result.fits.columns]].to_string(index=False))
    print(f"written to {out}/: results.csv, noise_law_fits.csv, noise_law.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
