"""The task registry: one specification per (modality, dataset, signal, corruption).

A task is everything a sweep needs to know to measure one noise curve family: which data to
load at each profile, which auxiliary signal to probe, how to corrupt the measurements and what
the noise law's x-axis is, which models apply, and which curves of the paper's released tables
it reproduces. Chapters, the sweep, the planner and the command lines read tasks from here and
nowhere else::

    import helpers as hp
    task = hp.tasks.get("sc_protein")
    data = task.load("quick")               # the container of the task (AnnData for cells)
    hp.tasks.describe(task, data)            # what the data are
    results = hp.sweep.run(task, profile="quick")

Examples
--------
>>> from helpers import tasks
>>> [name for name in tasks.names(modality="cell") if name.startswith("sc_")]
['sc_clonal', 'sc_protein', 'sc_spatial', 'sc_temporal']
>>> spec = tasks.get("sc_temporal")
>>> spec.source("quick").signal, spec.source("paper").signal, spec.signal_name
('day', 'author_day', 'author_day')
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import datasets, noise, probe, profiles, splits

__all__ = [
    "Holdout",
    "PaperRef",
    "Source",
    "TaskSpec",
    "builtin",
    "check_name",
    "count_levels",
    "describe",
    "get",
    "holdout",
    "is_registered",
    "names",
    "on_replace",
    "published_fits",
    "published_points",
    "qualified_name",
    "register",
    "table",
    "temporary",
    "unregister",
    "variant",
]


@dataclass(frozen=True)
class Source:
    """What a task reads at one profile.

    Attributes
    ----------
    loader
        A function of no arguments returning the task's data container (AnnData for cells,
        :class:`helpers.datasets.images.ImageData`, …), e.g. :func:`helpers.datasets.load_pbmc10k`.
    signal
        The auxiliary signal's name in the container (``obs`` column, ``obsm`` key or a partner
        signal of :func:`helpers.datasets.auxiliary_signal`).
    options
        Keyword arguments for :func:`helpers.datasets.auxiliary_signal` (e.g. ``per_clone``).
    note
        One line on what the data are (and, for a stand-in, what it stands in for).
    n_samples
        How many samples the loader returns, where known without loading (the paper's large
        datasets), so that a sweep can be costed before its data are downloaded.
    kind
        The signal's kind when it is not a signal the datasets know by name
        (:data:`helpers.datasets.SIGNAL_KINDS`), e.g. for your own data.
    fingerprint
        A digest of the data the loader returns (counts and signal), where the loader's name
        does not pin them down: your own AnnData (:func:`helpers.datasets.fingerprint`).  The
        book's loaders read checksummed files of the data manifest, so their name is their
        identity and this stays empty.
    """

    loader: Callable[[], Any]
    signal: str
    options: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    n_samples: int | None = None
    kind: str | None = None
    fingerprint: str = ""

    def identity(self) -> dict:
        """What of this source determines a result: the loader (by qualified name), the
        data's fingerprint, the signal, its kind and its options.

        Examples
        --------
        >>> Source(len, "day", {"log1p": False}).identity()
        {'loader': 'builtins.len', 'data': '', 'signal': 'day', 'kind': 'scalar', 'options': {'log1p': False}}
        """
        return {
            "loader": _qualified(self.loader), "data": self.fingerprint, "signal": self.signal,
            "kind": self.signal_kind(),
            "options": {str(k): _plain_repr(v) for k, v in sorted(self.options.items())},
        }

    def signal_kind(self) -> str:
        """``"vector"``, ``"labels"``, ``"scalar"`` or ``"partner"``."""
        return self.kind or datasets.signal_kind(self.signal)

    def signal_options(self) -> dict:
        """Keyword arguments of :func:`helpers.datasets.auxiliary_signal` for this source."""
        return {**self.options, **({"kind": self.kind} if self.kind else {})}


@dataclass(frozen=True)
class PaperRef:
    """The curves of the paper's released tables that a task reproduces (or stands in for).

    Attributes
    ----------
    dataset, signal
        The released table's dataset and signal (``"PBMC"``, ``"protein_counts"``).
    table
        Which released table (:mod:`helpers.published`): ``"single_cell"``, ``"spike_esm2"``,
        ``"tissuemnist"`` or ``"caltech101"``.
    title
        For the image tables: the curve family's ``task`` there (``"TissueMNIST · Gaussian"``).
    """

    dataset: str
    signal: str
    table: str = "single_cell"
    title: str = ""


@dataclass(frozen=True)
class TaskSpec:
    """One auxiliary-MI task: its data, signal, corruption, models and paper counterpart.

    Attributes
    ----------
    name
        Registry name (``"sc_protein"``); also the results folder's name.
    modality
        ``"cell"``, ``"image"`` or ``"sequence"``.
    title
        The task's name in the paper's figures (``"Protein MI"``).
    sources
        Profile → :class:`Source`. ``"quick"`` and ``"paper"`` are required; ``"smoke"``
        defaults to the quick source, subsampled by the profile's ``max_samples``.
    corrupt
        ``corrupt(data, level, *, seed) -> (noisy, x)``: the measurement noise at ``level`` and
        the noise law's x-axis value there; never modifies ``data``.
    levels
        ``levels(data, profile) -> tuple``: the noise levels of a profile, cleanest first.
    x_name, x_label
        The x-axis as named in the released tables and as labelled on plots.
    models
        The representation models that apply (names for :func:`helpers.models.make_model`).
    paper
        The released curves this task reproduces, or ``None``.
    probe
        ``probe(model, data, holdout, *, seed) -> list[dict]``: MI rows (``mi`` and optionally
        ``signal``) for one fitted model; ``None`` probes the latent MI between the embedding
        and the signal (:func:`helpers.probe.latent_probe`).
    supervised
        Whether models are trained with the signal's labels (``fit(data, y=...)``).
    color, marker
        How the task is drawn.
    extra_models
        Models of this task only, by name: functions ``(profile=..., seed=...) -> model``
        (e.g. your own embedding, see :mod:`helpers.apply`); other names go to
        :func:`helpers.models.make_model`.
    model_identities
        For an extra model whose factory's name does not pin down what it computes (your own
        embedding), a digest of its definition (:func:`helpers.apply.EmbeddingModel`); it
        enters the ids of that model's jobs.
    """

    name: str
    modality: str
    title: str
    sources: Mapping[str, Source]
    corrupt: Callable[..., tuple[Any, float]]
    levels: Callable[[Any, profiles.Profile], tuple[float, ...]]
    x_name: str
    x_label: str
    models: tuple[str, ...]
    paper: PaperRef | None = None
    probe: Callable[..., list[dict]] | None = None
    supervised: bool = False
    color: str = "#4C72B0"
    marker: str = "o"
    extra_models: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    model_identities: Mapping[str, str] = field(default_factory=dict)

    def identity(self, model: str | None = None) -> dict:
        """Everything of the task that determines a job's result, beside the job's own fields
        (model, level, size, seed, profile, probe): each profile's source, the corruption,
        whether training is supervised and, for ``model``, where the task defines it itself
        (an extra model), that model's identity.

        Presentation (title, colors, the models listed, the paper's counterpart) is left out:
        changing it changes no number.  Two tasks with equal identities give the same results
        for the same jobs; :func:`helpers.sweep.run` refuses a results folder that holds the
        results of a task of the same name with another identity.

        Examples
        --------
        >>> spec = get("sc_protein")
        >>> sorted(spec.identity())
        ['corrupt', 'models', 'sources', 'supervised']
        >>> spec.identity()["sources"]["quick"]["signal"]
        'protein_counts'
        """
        models = self.extra_models if model is None else (
            {model: self.extra_models[model]} if model in self.extra_models else {})
        return {
            "sources": {p: s.identity() for p, s in sorted(self.sources.items())},
            "corrupt": _qualified(self.corrupt),
            "supervised": bool(self.supervised),
            "models": {name: self.model_identities.get(name, _qualified(factory))
                       for name, factory in sorted(models.items())},
        }

    def fingerprint(self, model: str | None = None) -> str:
        """A short digest of :meth:`identity` (16 hex digits): it enters every job's id.

        Examples
        --------
        >>> spec = get("sc_protein")
        >>> spec.fingerprint() == get("sc_protein").fingerprint(), len(spec.fingerprint())
        (True, 16)
        >>> import dataclasses
        >>> other = dataclasses.replace(spec, sources={**spec.sources, "quick": dataclasses.replace(
        ...     spec.sources["quick"], options={"log1p": False})})
        >>> other.fingerprint() == spec.fingerprint()
        False
        """
        import hashlib
        import json

        text = json.dumps(self.identity(model), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def make_model(self, name: str, *, profile: str, seed: int):
        """An unfitted model of this task by name, with a profile's settings."""
        if name in self.extra_models:
            return self.extra_models[name](profile=profile, seed=seed)
        from . import models

        return models.make_model(name, profile=profile, seed=seed)

    def source(self, profile: str) -> Source:
        """The :class:`Source` of a profile (smoke reads the quick source; a variant reads its
        base profile's)."""
        name = profiles.get(profile).base
        if name in self.sources:
            return self.sources[name]
        return self.sources["quick"]

    @property
    def signal_name(self) -> str:
        """The signal's name in result rows: the released table's name where there is one."""
        return self.paper.signal if self.paper is not None else self.sources["quick"].signal

    def signal_kind(self, profile: str = "quick") -> str:
        """``"vector"``, ``"labels"``, ``"scalar"`` or ``"partner"``."""
        return self.source(profile).signal_kind()

    def load(self, profile: str = "quick"):
        """The task's data at ``profile`` (cached per process; never modify it in place).

        ``smoke`` keeps a fixed random subset of ``max_samples`` samples (seed 0), so that
        every seed of a smoke sweep sees the same data.
        """
        base = profiles.get(profile).base
        if _REGISTRY.get(self.name) is self:
            return _load(self.name, base)
        return _read(self, base)  # a spec that is not (or no longer) registered: not cached


def qualified_name(fn, *, module: bool = True, render=repr) -> str:
    """The name of a function as identities record it: ``module.qualname`` (``qualname``
    alone with ``module=False``); a ``functools.partial`` adds its bound arguments, each
    written by ``render``.

    Examples
    --------
    >>> import functools
    >>> qualified_name(functools.partial(len, 3, key="x"))
    "builtins.len(3, key='x')"
    >>> qualified_name(functools.partial(len, 3), module=False)
    'len(3)'
    """
    if isinstance(fn, functools.partial):
        bound = [render(a) for a in fn.args]
        bound += [f"{k}={render(v)}" for k, v in sorted(fn.keywords.items())]
        inner = qualified_name(fn.func, module=module, render=render)
        return f"{inner}({', '.join(bound)})"
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    if not module:
        return name
    return f"{getattr(fn, '__module__', None) or type(fn).__module__}.{name}"


def _qualified(fn) -> str:
    """A task part's name in its identity: :func:`qualified_name`, options as plain values."""
    return qualified_name(fn, render=lambda v: str(_plain_repr(v)))


def _plain_repr(value) -> Any:
    """A JSON-able stand-in for an option's value (its repr where it is not a plain scalar)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if callable(value):
        return _qualified(value)
    return repr(value)


_REGISTRY: dict[str, TaskSpec] = {}
_BUILTIN: frozenset[str] = frozenset()  # set at the end of this module
_ON_REPLACE: list[Callable[[], None]] = []  # caches keyed by task name, cleared on replace


#: A task name: a letter or digit, then letters, digits, ``_``, ``-`` or ``.`` (64 at most). It
#: names a results folder, so it can hold no path separator and no ``..``.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"


def check_name(name: str, *, what: str = "A task name") -> str:
    """``name`` if it is a safe task name (:data:`NAME_PATTERN`), else a ValueError.

    Examples
    --------
    >>> check_name("my_cite-seq.v2")
    'my_cite-seq.v2'
    >>> check_name("../../escaped")
    Traceback (most recent call last):
    ...
    ValueError: A task name must be letters, digits, '_', '-' or '.' (starting with a letter or digit, at most 64), not '../../escaped': it names a results folder.
    """
    import re

    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name) or ".." in name:
        msg = (f"{what} must be letters, digits, '_', '-' or '.' (starting with a letter or "
               f"digit, at most 64), not {name!r}: it names a results folder.")
        raise ValueError(msg)
    return name


def register(spec: TaskSpec, *, replace: bool = False) -> TaskSpec:
    """Add a task to the registry.

    A name may be registered once, unless ``replace=True`` (which also forgets the data the
    process has cached for that name).  The book's own tasks (:func:`builtin`) are never
    replaced: a task of yours needs a name of its own (:func:`variant` makes a renamed copy).
    """
    if not isinstance(spec, TaskSpec):
        msg = f"register() takes a TaskSpec, got {type(spec).__name__}."
        raise TypeError(msg)
    check_name(spec.name)
    current = _REGISTRY.get(spec.name)
    if current is not None and current is not spec:
        if spec.name in _BUILTIN:
            msg = (f"{spec.name!r} is one of the book's tasks and cannot be replaced; register "
                   "yours under another name (helpers.tasks.variant makes a renamed copy).")
            raise ValueError(msg)
        if not replace:
            msg = f"A task called {spec.name!r} is already registered."
            raise ValueError(msg)
        _forget_cached()
    missing = {"quick", "paper"} - set(spec.sources)
    if missing:
        msg = f"Task {spec.name!r} lacks a source for profile(s) {sorted(missing)}."
        raise ValueError(msg)
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a task of yours from the registry (the book's own tasks stay)."""
    if name in _BUILTIN:
        msg = f"{name!r} is one of the book's tasks; it cannot be removed."
        raise ValueError(msg)
    if _REGISTRY.pop(name, None) is not None:
        _forget_cached()


def is_registered(spec: TaskSpec) -> bool:
    """Whether this very spec (not only its name) is the registered one."""
    return _REGISTRY.get(spec.name) is spec


def builtin(name: str) -> bool:
    """Whether ``name`` is one of the book's own tasks (registered by this module)."""
    return name in _BUILTIN


@contextlib.contextmanager
def temporary(spec: TaskSpec):
    """Register a task for the duration of a ``with`` block (tests, one-off sweeps).

    Examples
    --------
    >>> import dataclasses
    >>> with temporary(dataclasses.replace(get("sc_protein"), name="tmp_protein")) as spec:
    ...     spec.name in names()
    True
    >>> "tmp_protein" in names()
    False
    """
    register(spec, replace=True)
    try:
        yield spec
    finally:
        if _REGISTRY.get(spec.name) is spec:
            unregister(spec.name)


def on_replace(clear: Callable[[], None]) -> None:
    """Call ``clear`` whenever a task is replaced or removed (caches keyed by task name)."""
    _ON_REPLACE.append(clear)


def _forget_cached() -> None:
    _load.cache_clear()
    for clear in _ON_REPLACE:
        clear()


def variant(task: str | TaskSpec, *, name: str, **changes) -> TaskSpec:
    """A registered copy of a task under a new name, with some of its fields changed.

    The copy reads the same data with the same splits, noise and models (they follow from the
    seeds, not the name), so its jobs train the same representations as the task's; its
    results go to their own folder.  A variant of the same name registered earlier is
    replaced.

    Examples
    --------
    >>> spec = variant("sc_protein", name="sc_protein_pca", models=("PCA",))
    >>> spec.models, spec.sources == get("sc_protein").sources
    (('PCA',), True)
    >>> unregister("sc_protein_pca")
    """
    import dataclasses

    base = get(task)
    if name == base.name:
        msg = f"A variant of {base.name!r} needs a name of its own."
        raise ValueError(msg)
    return register(dataclasses.replace(base, name=name, **changes), replace=True)


def get(name: str | TaskSpec) -> TaskSpec:
    """The registered task called ``name`` (a :class:`TaskSpec` is returned as it is)."""
    if isinstance(name, TaskSpec):
        return name
    if name not in _REGISTRY:
        msg = f"Unknown task {name!r}; registered tasks: {names()}."
        raise ValueError(msg)
    return _REGISTRY[name]


def names(*, modality: str | None = None) -> list[str]:
    """Registered task names (of one modality), sorted."""
    return sorted(n for n, s in _REGISTRY.items() if modality in (None, s.modality))


def table() -> pd.DataFrame:
    """Every registered task, one row each: modality, data per profile, signal, x-axis, models."""
    rows = []
    for spec in (_REGISTRY[n] for n in names()):
        quick, paper = spec.source("quick"), spec.source("paper")
        rows.append({
            "task": spec.name,
            "modality": spec.modality,
            "title": spec.title,
            "quick data": quick.note,
            "paper data": paper.note,
            "signal": spec.signal_name,
            "kind": spec.signal_kind(),
            "x": spec.x_label,
            "models": ", ".join(spec.models),
        })
    return pd.DataFrame(rows).set_index("task")


@functools.lru_cache(maxsize=4)
def _load(name: str, profile: str):
    return _read(get(name), profile)


def _read(spec: TaskSpec, profile: str):
    data = spec.source(profile).loader()
    keep = profiles.get(profile).max_samples
    if keep is not None and len(data) > keep:
        idx = np.sort(np.random.default_rng(0).choice(len(data), keep, replace=False))
        data = data[idx].copy()
    return data


# --------------------------------------------------------------------------------------------
# The evaluation set of one seed
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Holdout:
    """The evaluation samples of one seed, the training pool, and the signal on the evaluation set.

    ``index`` are the evaluation samples probed; ``target`` their signal values, or for partner
    signals the positions of their partners (embedded by the same model).
    """

    kind: str
    seed: int
    eval_idx: np.ndarray = field(repr=False)
    train_pool: np.ndarray = field(repr=False)
    index: np.ndarray = field(repr=False)
    target: np.ndarray = field(repr=False)

    @property
    def n_pairs(self) -> int:
        """Number of probed samples (pairs, for a partner signal)."""
        return int(self.index.size)


def holdout(task: str | TaskSpec, data, *, profile: str = "quick", seed: int = 0) -> Holdout:
    """Hold out the evaluation set of one seed and put the auxiliary signal on it.

    The evaluation set is a fixed fraction (the profile's ``eval_fraction``) of the samples.
    For partner signals the pairs are drawn on all samples first and kept together (both
    samples of a pair are on the same side of the split), and only pairs inside the evaluation
    set are probed.
    """
    spec = get(task)
    source = spec.source(profile)
    n_eval = int(round(profiles.get(profile).eval_fraction * len(data)))
    kind = source.signal_kind()
    groups = eligible = None
    if kind == "partner":
        pairs = datasets.auxiliary_signal(data, source.signal, seed=seed, **source.signal_options())
        groups = splits.pair_groups(len(data), pairs.index, pairs.target)
        eligible = np.union1d(pairs.index, pairs.target)
    train_pool, eval_idx = splits.evaluation_split(
        len(data), n_eval=n_eval, seed=seed, groups=groups, eligible=eligible
    )
    aux = datasets.auxiliary_signal(
        data, source.signal, seed=seed, restrict_to=eval_idx, **source.signal_options()
    )
    return Holdout(kind, seed, eval_idx, train_pool, aux.index, aux.target)


# --------------------------------------------------------------------------------------------
# Describing a task's data and its paper counterpart
# --------------------------------------------------------------------------------------------
def describe(task: str | TaskSpec, data, *, profile: str = "quick") -> pd.Series:
    """What a task's data are: samples, features, depth, and the signal (for the chapters)."""
    spec = get(task)
    source = spec.source(profile)
    out = {"samples": len(data)}
    if spec.modality == "image":
        out = {"dataset": data.uns.get("name", source.note), "images": len(data),
               "classes": len(data.classes),
               "image (C x H x W)": " x ".join(map(str, data.shape[1:])),
               "pixel range": f"{data.images.min():.2f} … {data.images.max():.2f}"}
        return pd.Series(out, name=spec.title)
    if spec.modality == "cell":
        umis = np.asarray(data.X.sum(axis=1)).ravel()
        out |= {"genes": data.n_vars, "median UMIs per cell": float(np.median(umis))}
    kind = source.signal_kind()
    if kind == "vector":
        out[f"{source.signal} dimensions"] = int(np.shape(data.obsm[source.signal])[1])
    elif kind in ("labels", "scalar"):
        out[f"{source.signal} values"] = int(pd.Series(data.obs[source.signal]).nunique())
    else:
        pairs = datasets.auxiliary_signal(data, source.signal, seed=0, **source.signal_options())
        out["partner pairs"] = int(pairs.index.size)
    return pd.Series(out, name=spec.title)


def published_points(task: str | TaskSpec) -> pd.DataFrame:
    """The released points of a task's paper counterpart (:attr:`TaskSpec.paper`), tidy.

    Single-cell tasks: every size and seed of the released grid of their dataset and signal;
    the sequence task: the ESM2 table; image tasks: their curve family, with ``signal`` named
    as :func:`helpers.probe.label_probe` names it (TissueMNIST's ``8-class MI`` is ``all
    classes``, its one-vs-all scores keep the class name; Caltech101's one-vs-all scores are
    discrete MI of predicted labels: ``<class> · predicted``).

    Examples
    --------
    >>> sorted(set(published_points("tissuemnist_pixelate")["signal"]))[-2:]
    ['Thick Ascending Limb', 'all classes']
    """
    from . import published

    spec = get(task)
    ref = spec.paper
    if ref is None:
        msg = f"Task {spec.name!r} has no counterpart in the released tables."
        raise ValueError(msg)
    if ref.table == "single_cell":
        sc = published.single_cell(include_cell_type=True)
        return sc[(sc["dataset"] == ref.dataset) & (sc["signal"] == ref.signal)].reset_index(
            drop=True)
    if ref.table == "spike_esm2":
        return published.spike_esm2()
    if ref.table not in ("tissuemnist", "caltech101"):
        msg = f"Unknown released table {ref.table!r} for task {spec.name!r}."
        raise ValueError(msg)
    df = getattr(published, ref.table)()
    df = df[df["task"] == ref.title].copy()
    if ref.table == "tissuemnist":
        df["signal"] = df["label"].replace({"8-class MI": "all classes"})
    else:
        df["signal"] = df["label"].str.removeprefix("Class ") + " · predicted"
    df["task"] = spec.name
    return df.reset_index(drop=True)


def published_fits(task: str | TaskSpec, *, size: str | int = "largest"):
    """The paper's noise-law fits for a task's released curves (at one training size, for the
    single-cell tasks).

    Returns
    -------
    (fits, size)
        A :func:`helpers.laws.fit_table` of the released points, one row per model (per
        signal for the image tasks), and the training size used (``None`` for images).
    """
    from . import laws

    spec = get(task)
    points = published_points(spec)
    if spec.paper.table == "spike_esm2":
        fits = laws.fit_table(points, ["model"], law="noise", x="x", y="mi")
        return fits, _GISAID_TRAINING_SEQUENCES
    if spec.paper.table != "single_cell":
        return laws.fit_table(points, ["task", "signal"], law="noise", x="x", y="mi"), None
    chosen = int(points["size"].max()) if size == "largest" else int(size)
    fits = laws.fit_table(points[points["size"] == chosen], ["algorithm"], law="noise", x="x",
                          y="mi")
    return fits, chosen


# --------------------------------------------------------------------------------------------
# The single-cell tasks (Fig. 2a-f; Supplementary S.I.1-3)
# --------------------------------------------------------------------------------------------
def count_levels(adata, profile: profiles.Profile) -> tuple[float, ...]:
    """Log-spaced thinning fractions from 1 down to ``min_umis`` UMIs per cell (the paper's)."""
    mean_umis = float(np.asarray(adata.X.sum(axis=1)).mean())
    grid = noise.quality_grid(mean_umis, n_levels=profile.n_levels, min_umis=profile.min_umis)
    return tuple(float(f) for f in grid)


_CELL_MODELS = ("RandomProjection", "PCA", "SCVI", "Geneformer")
_CELL = dict(
    modality="cell", corrupt=noise.thin, levels=count_levels, x_name="umis_per_cell",
    x_label="UMIs per cell", models=_CELL_MODELS,
)

register(TaskSpec(
    name="sc_protein", title="Protein MI", color="#4C72B0", marker="o",
    sources={
        "quick": Source(datasets.load_pbmc10k, "protein_counts",
                        note="10x PBMC 10k CITE-seq (14 proteins), for Hao et al. 2021"),
        "paper": Source(datasets.load_hao2021_pbmc, "protein_counts", n_samples=161_764,
                        note="Hao et al. 2021 CITE-seq PBMCs as distributed by scvi-tools"),
    },
    paper=PaperRef("PBMC", "protein_counts"), **_CELL,
))
register(TaskSpec(
    name="sc_clonal", title="Clonal MI", color="#DD8452", marker="s",
    sources={
        # one early-late pair per clone (the paper's rule) leaves 117 pairs on the 781-cell
        # subset: every cell of a clone with a mate is paired instead (627 pairs)
        "quick": Source(datasets.load_larry_subset, "clone", {"per_clone": "any_mate"},
                        note="781-cell LARRY subset (CoSpar test data)"),
        "paper": Source(datasets.load_larry_full, "clone", {"per_clone": "one"},
                        n_samples=130_887,
                        note="LARRY in-vitro haematopoiesis, all 130,887 cells"),
    },
    paper=PaperRef("larry", "clone"), **_CELL,
))
register(TaskSpec(
    name="sc_temporal", title="Temporal MI", color="#55A868", marker="^",
    sources={
        "quick": Source(datasets.load_klein2015, "day",
                        note="Klein et al. 2015 mESC time course (days 0-7), for the embryo atlas"),
        "paper": Source(datasets.load_qiu2024_embryo, "author_day",
                        note="Qiu et al. 2024 mouse embryo atlas (opened backed: ~11M cells)"),
    },
    paper=PaperRef("shendure", "author_day"), **_CELL,
))
register(TaskSpec(
    name="sc_spatial", title="Spatial MI", color="#C44E52", marker="D",
    sources={
        "quick": Source(datasets.load_osmfish, "ng_idx",
                        note="osmFISH somatosensory cortex (33 genes), for Vizgen MERFISH"),
        "paper": Source(datasets.load_merfish_s1r1, "ng_idx", n_samples=67_821,
                        note="Vizgen MERFISH mouse brain, slice 1 replicate 1"),
    },
    paper=PaperRef("merfish", "ng_idx"), **_CELL,
))


# --------------------------------------------------------------------------------------------
# The sequence task (Fig. 2i; Supplementary S.I.6, S.II.6)
# --------------------------------------------------------------------------------------------
#: The paper's training sequences: 75 % of 63,374 GISAID spikes (train_test_split, seed 42).
_GISAID_TRAINING_SEQUENCES = 47_530


def _sequence_task() -> TaskSpec:
    from .datasets import sequences as seqdata
    from .probe import sequence_probe
    from .noise import sequences as seqnoise

    return TaskSpec(
        name="seq_spike", modality="sequence", title="Spike sequences",
        color="#702F8A", marker="P",
        sources={
            # the month carries no signal over the six months of the public example (its
            # spikes differ almost only at residue 614): the quick data probe the D614G lineage
            "quick": Source(seqdata.load_ncov_spike_s1, "lineage",
                            note="S1 of the nextstrain example spikes (GenBank, 2019-12 to "
                                 "2020-05), D614/G614 lineage, for GISAID"),
            "paper": Source(seqdata.load_gisaid, "month", n_samples=63_374,  # the paper's S.I.6
                            note="your GISAID spike export, <= 1,000 per month, to 04/2025"),
        },
        corrupt=seqnoise.corrupt, levels=seqnoise.levels,
        x_name="true/error", x_label="correct / substituted residues, (1 − p)/p",
        models=("ESM2-8M", "ESM2-35M", "ESM2-150M"),
        paper=PaperRef("gisaid", "month", table="spike_esm2"),
        probe=sequence_probe,
    )


register(_sequence_task())


# --------------------------------------------------------------------------------------------
# The image tasks (Fig. 2g, h; Supplementary S.I.4-5, S.II.5, Table S4)
# --------------------------------------------------------------------------------------------
def _image_tasks() -> None:
    from . import imaging
    from .datasets import images
    from .noise.images import CORRUPTIONS

    fashion = Source(images.load_fashion_mnist_subset, "label", kind="labels",
                     note="3,500 Fashion-MNIST images (Debian package), for TissueMNIST")
    common = dict(modality="image", supervised=True, probe=probe.label_probe)
    tissue = Source(images.load_tissuemnist, "label", kind="labels", n_samples=212_746,
                    note="MedMNIST v2 TissueMNIST 224 x 224, official train + test")
    caltech = Source(images.load_caltech101, "label", kind="labels", n_samples=2_707,
                     note="Caltech101, the 5 largest classes, 240 x 240")
    register(TaskSpec(
        name="tissuemnist_gaussian", title="TissueMNIST · Gaussian", color="#1D4289",
        marker="o", sources={"quick": fashion, "paper": tissue},
        corrupt=CORRUPTIONS["tissuemnist_gaussian"], levels=imaging.levels_tissue_gaussian,
        x_name="1/sigma", x_label=r"$1/\sigma$ (pixel noise SD$^{-1}$)",
        models=("MobileNetV3",), paper=PaperRef("TissueMNIST", "label", "tissuemnist",
                                                  "TissueMNIST · Gaussian"),
        **common,
    ))
    register(TaskSpec(
        name="tissuemnist_pixelate", title="TissueMNIST · Pixelation", color="#4F7CC4",
        marker="s", sources={"quick": fashion, "paper": tissue},
        corrupt=CORRUPTIONS["tissuemnist_pixelate"], levels=imaging.levels_tissue_pixelate,
        x_name="1/F^2", x_label=r"$1/F^2$ (pixelation factor$^{-2}$)",
        models=("MobileNetV3",), paper=PaperRef("TissueMNIST", "label", "tissuemnist",
                                                  "TissueMNIST · Pixelation"),
        **common,
    ))
    caltech_common = dict(common, probe=probe.predicted_label_probe)
    register(TaskSpec(
        name="caltech101_gaussian", title="Caltech101 · Gaussian", color="#EB7F54",
        marker="^", sources={"quick": fashion, "paper": caltech},
        corrupt=CORRUPTIONS["caltech101_gaussian"], levels=imaging.levels_caltech_gaussian,
        x_name="1/sigma^2", x_label=r"$1/\sigma^2$", models=("MobileNetV2",),
        paper=PaperRef("Caltech101", "label", "caltech101", "Caltech101 · Gaussian"),
        **caltech_common,
    ))
    register(TaskSpec(
        name="caltech101_pixelate", title="Caltech101 · Pixelation", color="#F2AF4A",
        marker="D", sources={"quick": fashion, "paper": caltech},
        corrupt=CORRUPTIONS["caltech101_pixelate"], levels=imaging.levels_caltech_pixelate,
        x_name="1/F", x_label=r"$1/F$", models=("MobileNetV2",),
        paper=PaperRef("Caltech101", "label", "caltech101", "Caltech101 · Pixelation"),
        extra_models={"MobileNetV2": _caltech_resolution_model}, **caltech_common,
    ))


def _caltech_resolution_model(*, profile: str, seed: int):
    """MobileNetV2 of the Caltech101 resolution notebook: 10 epochs at paper (5 for noise)."""
    from . import models

    model = models.make_model("MobileNetV2", profile=profile, seed=seed)
    if profile == "paper":
        model = models.make_model("MobileNetV2", profile=profile, seed=seed, epochs=10)
    return model


_image_tasks()

_BUILTIN = frozenset(_REGISTRY)
