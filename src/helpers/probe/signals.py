"""Probes of the tasks: a fitted model's output and a task's signal into MI rows.

Every task's probe has one shape, ``probe(model, data, holdout, *, seed) -> list[dict]``
(each row has ``mi`` in bits and optionally ``signal``), and lives here, below the tasks and
the sweep, which only name it:

* :func:`latent_probe` (the default): latent MI between the embedding of the evaluation
  samples and their signal, read as the kind the task declares (:func:`y_kind`); a partner
  signal is the embedding of each sample's partner (:func:`probe_inputs`);
* :func:`estimator_probe`: the same embeddings read by several estimators (this book's and
  the paper's, which gets the paper's inputs, :func:`paper_signal`);
* :func:`label_probe` and :func:`predicted_label_probe`: the image tasks' 8-class (or 5-way)
  and one-vs-all MI of a fitted classifier (:func:`label_rows`);
* :func:`sequence_probe`: the sequence task's latent MI, averaged over probe seeds.

``holdout`` is a :class:`helpers.tasks.Holdout` (only its attributes are read: ``kind``,
``index``, ``target``), so this module imports neither the tasks nor the models.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd

from .estimator import estimate_mi, latent_mi
from .labels import balanced_one_vs_all, discrete_mi

__all__ = [
    "ESTIMATORS",
    "estimator_probe",
    "label_probe",
    "label_rows",
    "latent_probe",
    "latent_row",
    "paper_signal",
    "predicted_label_probe",
    "probe_inputs",
    "sequence_probe",
    "y_kind",
]

#: The MI estimators a probe can run (``method`` of :func:`helpers.probe.estimate_mi`):
#: this book's (``"canonical"``) and the paper's, ``latentmi`` 0.1.3 re-implemented.
ESTIMATORS = ("canonical", "paper")


def probe_inputs(model, data, held):
    """(x, y) for the probe: embeddings of the evaluation samples and the signal on them.

    Each evaluation sample is embedded once; for partner signals ``y`` is the embedding of each
    sample's partner under the same model.
    """
    partner = held.kind == "partner"
    rows = np.union1d(held.index, held.target) if partner else held.index
    emb = model.embed(data[rows].copy())
    x = emb[np.searchsorted(rows, held.index)] if partner else emb
    y = emb[np.searchsorted(rows, held.target)] if partner else held.target
    return x, y


def latent_probe(model, data, held, *, seed: int = 0) -> list[dict]:
    """The default probe: latent MI between the embedding and the signal (one row)."""
    x, y = probe_inputs(model, data, held)
    return [latent_row(x, y, seed=seed, y_kind=y_kind(held))]


def latent_row(x, y, *, seed: int = 0, **options) -> dict:
    """``{"mi": …, "mi_se": …}``: the latent MI of ``x`` and ``y`` and its standard error."""
    res = estimate_mi(x, y, seed=seed, **options)
    return {"mi": res.mi, "mi_se": res.se}


def y_kind(held) -> str:
    """The probe's ``y_kind`` for a task's signal: its declared kind, never guessed from the
    values (labels are labels at any number of classes; a scalar is continuous)."""
    return "categorical" if held.kind == "labels" else "continuous"


def paper_signal(y, held):
    """The signal as the paper gave it to its estimator: a vector signal (protein counts) raw.

    The tasks probe ``log1p`` of protein counts (:func:`helpers.datasets.auxiliary_signal`,
    the only transform of a signal there); the paper fed ``latentmi`` the raw counts, so the
    transform is undone here.  Labels, scalars and partner embeddings are passed as they are
    (``method="paper"`` one-hot encodes labels itself).

    Examples
    --------
    >>> from helpers.tasks import Holdout
    >>> held = Holdout("vector", 0, *[np.arange(2)] * 3, np.log1p([[0.0, 9.0], [3.0, 1.0]]))
    >>> paper_signal(held.target, held).round(6).tolist()
    [[0.0, 9.0], [3.0, 1.0]]
    """
    return np.expm1(y) if held.kind == "vector" else y


def estimator_probe(methods=ESTIMATORS, **options):
    """A probe that measures the same embeddings with several MI estimators, one row each.

    The model is trained once per job; its embeddings of the evaluation samples go to every
    estimator (with the same seed, hence the same split inside the probe).  Each row carries
    the ``estimator``, its ``epochs`` of network training and its ``estimator_seconds``;
    :func:`fit` fits one curve per estimator.  The ``"paper"`` estimator gets the paper's
    inputs (:func:`paper_signal`: raw protein counts), the others the task's signal.

    Parameters
    ----------
    methods
        Estimator names (:data:`ESTIMATORS`).
    **options
        Keyword arguments of :func:`helpers.probe.estimate_mi` per estimator, e.g.
        ``paper={"max_epochs": 40}``.

    Returns
    -------
    callable
        ``probe(model, data, holdout, *, seed) -> list[dict]``, for :class:`helpers.tasks.TaskSpec`
        (picklable, so it runs on Dask workers).

    Examples
    --------
    >>> probe = estimator_probe(paper={"max_epochs": 20})
    >>> probe.keywords["methods"], probe.keywords["options"]["paper"]
    (('canonical', 'paper'), {'max_epochs': 20})
    >>> estimator_probe(["ksg"])
    Traceback (most recent call last):
    ...
    ValueError: Unknown estimator(s) ['ksg']; choose from ('canonical', 'paper').
    """
    methods = tuple(methods)
    unknown = sorted(set(methods).union(options) - set(ESTIMATORS))
    if unknown or not methods:
        msg = f"Unknown estimator(s) {unknown}; choose from {ESTIMATORS}."
        raise ValueError(msg)
    return functools.partial(_probe_estimators, methods=methods, options=options)


def _probe_estimators(model, data, held, *, seed: int = 0, methods, options) -> list[dict]:
    x, y = probe_inputs(model, data, held)
    rows = []
    for method in methods:
        signal = paper_signal(y, held) if method == "paper" else y
        res = estimate_mi(x, signal, seed=seed, method=method, y_kind=y_kind(held),
                                **options.get(method, {}))
        rows.append({
            "estimator": method, "mi": res.mi, "epochs": len(res.history.get("val_loss", [])),
            "estimator_seconds": round(res.timings["total"], 3),
        })
    return rows


def label_rows(model, eval_data, truth, classes, *, seed: int = 0,
               one_vs_all: tuple[str, ...] = ("predicted",), latent: bool = True,
               probe_options: dict | None = None) -> list[dict]:
    """MI rows of a fitted classifier on evaluation images with class codes ``truth``.

    Parameters
    ----------
    model
        A fitted image model with ``embed`` and ``predict`` (or ``embed_predict``).
    eval_data
        The (noisy) evaluation images.
    truth
        Integer class code of every evaluation image; ``classes`` names the codes.
    seed
        Seeds the balanced resampling and the latent-MI networks.
    one_vs_all
        Which one-vs-all scores per class: ``"predicted"`` (discrete MI of the binarised
        predicted and true labels, the Caltech101 release) and/or ``"latent"`` (latent MI of
        the embedding with the binary label, the TissueMNIST release).
    latent
        Also the latent MI of the embedding with the full label (``all classes``).
    probe_options
        Keyword arguments for :func:`~helpers.probe.estimate_mi`.

    Returns
    -------
    list of dict
        ``signal``, ``mi`` (bits), ``estimator`` (``"latent"``/``"predicted"``) and ``class``.
    """
    unknown = set(one_vs_all) - {"predicted", "latent"}
    if unknown:
        msg = f"one_vs_all takes 'predicted' and/or 'latent', got {sorted(unknown)}"
        raise ValueError(msg)
    opts = {"y_kind": "categorical", **(probe_options or {})}
    truth = np.asarray(truth, dtype=np.int64)
    need_z = latent or "latent" in one_vs_all
    if need_z and hasattr(model, "embed_predict"):
        z, pred = model.embed_predict(eval_data)
    else:
        z = model.embed(eval_data) if need_z else None
        pred = model.predict(eval_data)
    rows = []
    if latent:
        rows.append({"signal": "all classes", "estimator": "latent", "class": "all",
                     **latent_row(z, truth, seed=seed, **opts)})
    rows.append({"signal": "all classes · predicted", "estimator": "predicted", "class": "all",
                 "mi": discrete_mi(truth, pred)})
    for k, name in enumerate(classes):
        if not np.any(truth == k) or np.all(truth == k):
            continue
        idx = balanced_one_vs_all(truth, k, seed=seed + k)
        binary = (truth[idx] == k).astype(int)
        if "predicted" in one_vs_all:
            rows.append({"signal": f"{name} · predicted", "estimator": "predicted",
                         "class": name,
                         "mi": discrete_mi(binary, (pred[idx] == k).astype(int))})
        if "latent" in one_vs_all:
            rows.append({"signal": name, "estimator": "latent", "class": name,
                         **latent_row(z[idx], binary, seed=seed, **opts)})
    return rows


def label_probe(model, data, held, *, seed: int = 0, one_vs_all=None,
                latent: bool = True) -> list[dict]:
    """The image tasks' probe in the sweep's shape ``probe(model, data, holdout, *, seed)``.

    ``data`` is the task's noisy :class:`~helpers.datasets.images.ImageData`, ``held`` its
    :class:`helpers.tasks.Holdout` (evaluation images ``held.index`` with class codes
    ``held.target``).  See :func:`label_rows`; every row also gets the model's training
    record as JSON (``history``).  ``one_vs_all=None`` takes both one-vs-all scores for a
    model of the ``paper`` profile (the TissueMNIST release) and the predicted-label ones
    otherwise (ten latent-MI probes per level do not fit the quick budget).
    """
    if one_vs_all is None:
        paper = getattr(getattr(model, "config", None), "profile", "") == "paper"
        one_vs_all = ("predicted", "latent") if paper else ("predicted",)
    col = data.obs["label"]
    classes = list(col.cat.categories) if isinstance(col.dtype, pd.CategoricalDtype) else sorted(
        set(col))
    rows = label_rows(model, data[held.index], held.target, classes, seed=seed,
                      one_vs_all=one_vs_all, latent=latent)
    history = json.dumps(getattr(model, "history_", {}))
    return [{**row, "history": history} for row in rows]


def predicted_label_probe(model, data, held, *, seed: int = 0) -> list[dict]:
    """:func:`label_probe` from the predicted labels only (the Caltech101 notebooks)."""
    return label_probe(model, data, held, seed=seed, one_vs_all=("predicted",), latent=False)


#: The probed signal of each signal kind in the sequence task (see :func:`sequence_probe`).
_SIGNAL_OF_KIND = {"labels": "lineage", "scalar": "month"}


def sequence_probe(model, data, held, *, seed: int = 0, repeats: int = 3) -> list[dict]:
    """The sequence task's probe: latent MI of the evaluation sequences' embeddings with the
    signal, averaged over ``repeats`` probe seeds, plus what the fit recorded.

    The evaluation sets of the quick data are small (about 120 sequences, of which the probe
    estimates the MI on half), so one probe's split and initialisation move the estimate by
    ~0.1 bit; the mean of ``repeats`` probes (seeds ``seed``, ``seed + 1``, …) of the same
    embeddings is reported as ``mi`` and their standard deviation as ``mi_sd``.  The row names
    its signal from the kind probed (``lineage`` for labels at quick, ``month`` for the scalar
    month at paper) and carries the model's parameter count, optimiser steps, the seconds spent
    embedding the evaluation sequences and, as JSON, its training history (the chapter's
    training curves).
    """
    import json

    x, y = probe_inputs(model, data, held)
    kind = y_kind(held)
    values = [latent_mi(x, y, seed=seed * 1_000 + r, y_kind=kind) for r in range(repeats)]
    return [{
        "mi": float(np.mean(values)),
        "mi_sd": float(np.std(values)),
        "signal": _SIGNAL_OF_KIND.get(held.kind, held.kind),
        "n_parameters": int(model.n_parameters),
        "steps": int(model.steps_trained_),
        "embed_seconds": round(float(model.embed_seconds_), 3),
        "history": json.dumps({k: [round(float(v), 5) for v in vals]
                               for k, vals in model.history_.items()}),
    }]
