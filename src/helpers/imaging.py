"""The paper's image tasks end to end: load → noise → fine-tune MobileNet → probe → fit.

Each :class:`ImageTask` holds the ingredients of one (dataset, corruption) pair in the shape of
the book's task specs (``helpers.tasks``): a loader per profile, the corruption
``corrupt(data, level, *, seed) -> (noisy, x)``, the noise levels per profile, the x-axis of
the released table, the models, the probe and the released counterpart.  :func:`run_task`
is the serial sweep over levels (one job = one level × model × seed: noise train and
evaluation images, fit on the noisy training images, probe the noisy evaluation images),
writing tidy rows with the shared results columns.

=========================  =====================================================================
task                       what it is
=========================  =====================================================================
``tissuemnist_gaussian``   TissueMNIST (paper) / Fashion-MNIST (smoke, quick), Gaussian σ, x = 1/σ
``tissuemnist_pixelate``   same data, pixelation by F then resize back, x = 1/F²
``caltech101_gaussian``    Caltech101 5 classes, MobileNetV2, Gaussian σ, x = 1/σ² (paper only)
``caltech101_pixelate``    same data, pooled small images, x = 1/F (paper only)
=========================  =====================================================================

The probe (:func:`label_probe`) reports, for the evaluation images, the latent MI of the
embedding with the class label (``all classes``), the discrete MI of predicted with true
labels (``all classes · predicted``) and, per class, the one-vs-all MI after balanced
resampling, from the predicted labels (``<class> · predicted``) and, where asked, from the
embedding (``<class>``: the TissueMNIST release's ``ova_mi_continuous``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from . import laws, probe
from .datasets.images import (
    ImageData,
    load_caltech101,
    load_fashion_mnist,
    load_tissuemnist,
)
from .noise.images import CORRUPTIONS, ImageCorruption, x_value

__all__ = [
    "ImageTask",
    "TASKS",
    "effective_resolution",
    "fit_curves",
    "label_probe",
    "published_counterpart",
    "run_task",
    "summarise",
]

RESULT_COLUMNS = [
    "modality", "task", "dataset", "model", "signal", "size", "level", "x", "seed", "mi",
    "profile", "n_train", "n_eval", "fit_seconds", "embed_seconds", "probe_seconds", "versions",
]


def label_probe(model, noisy_eval: ImageData, target: str = "label", *, seed: int = 0,
                one_vs_all: tuple[str, ...] = ("predicted",), latent: bool = True,
                probe_options: dict | None = None) -> list[dict]:
    """MI of a fitted classifier's evaluation images with their class labels.

    Parameters
    ----------
    model
        A fitted image model with ``embed`` and ``predict``.
    noisy_eval
        Evaluation images (noised like the training images) with ``obs[target]``.
    target
        Label column.
    seed
        Seeds the balanced resampling and the latent-MI networks.
    one_vs_all
        Which one-vs-all scores per class: ``"predicted"`` (discrete MI of the binarised
        predicted and true labels, the Caltech101 release) and/or ``"latent"`` (latent MI of
        the embedding with the binary label, the TissueMNIST release).
    latent
        Also the latent MI of the embedding with the full label (``all classes``).
    probe_options
        Keyword arguments for :func:`helpers.probe.estimate_mi`.

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
    col = noisy_eval.obs[target]
    classes = list(col.cat.categories) if isinstance(col.dtype, pd.CategoricalDtype) else sorted(
        set(col))
    truth = np.asarray(pd.Categorical(col, categories=classes).codes, dtype=np.int64)
    need_z = latent or "latent" in one_vs_all
    if need_z and hasattr(model, "embed_predict"):
        z, pred = model.embed_predict(noisy_eval)
    else:
        z = model.embed(noisy_eval) if need_z else None
        pred = model.predict(noisy_eval)
    rows = []
    if latent:
        rows.append({"signal": "all classes", "estimator": "latent", "class": "all",
                     "mi": probe.latent_mi(z, truth, seed=seed, **opts)})
    rows.append({"signal": "all classes · predicted", "estimator": "predicted", "class": "all",
                 "mi": probe.discrete_mi(truth, pred)})
    for k, name in enumerate(classes):
        if not np.any(truth == k) or np.all(truth == k):
            continue
        idx = probe.balanced_one_vs_all(truth, k, seed=seed + k)
        binary = (truth[idx] == k).astype(int)
        if "predicted" in one_vs_all:
            rows.append({"signal": f"{name} · predicted", "estimator": "predicted",
                         "class": name,
                         "mi": probe.discrete_mi(binary, (pred[idx] == k).astype(int))})
        if "latent" in one_vs_all:
            rows.append({"signal": name, "estimator": "latent", "class": name,
                         "mi": probe.latent_mi(z[idx], binary, seed=seed, **opts)})
    return rows


def _levels(grid: dict) -> Callable:
    def levels(data, profile: str) -> tuple:
        if profile not in grid:
            msg = f"no noise levels for profile {profile!r}; have {sorted(grid)}"
            raise ValueError(msg)
        return tuple(grid[profile])

    return levels


def _sigma_grid(lo: float, hi: float, n: int) -> tuple[float, ...]:
    return tuple(float(f"{v:.6g}") for v in np.logspace(lo, hi, n))


#: Fashion-MNIST sizes per profile (train, evaluation), class-stratified.
_FASHION = {"smoke": (300, 200), "quick": (2500, 1000)}


@dataclass(frozen=True)
class ImageTask:
    """Ingredients of one image task (the fields of a ``helpers.tasks`` spec)."""

    name: str
    title: str
    loader: dict
    corrupt: ImageCorruption
    levels: Callable
    x_name: str
    x_label: str
    models: dict
    probe: Callable
    paper: dict
    modality: str = "image"
    signal: str = "label"
    signal_kind: str = "labels"
    colour: str = "#1D4289"
    notes: dict = field(default_factory=dict)

    def load(self, profile: str) -> ImageData:
        if self.loader.get(profile) is None:
            msg = f"task {self.name!r} has no loader for profile {profile!r}"
            raise ValueError(msg)
        return self.loader[profile]()


_tissue_loaders = {
    "smoke": partial(load_fashion_mnist, n_train=_FASHION["smoke"][0],
                     n_test=_FASHION["smoke"][1]),
    "quick": partial(load_fashion_mnist, n_train=_FASHION["quick"][0],
                     n_test=_FASHION["quick"][1]),
    "paper": partial(load_tissuemnist, size=224),
}
_caltech_loaders = {"smoke": None, "quick": None, "paper": load_caltech101}
_tissue_probe_paper = partial(label_probe, one_vs_all=("predicted", "latent"))

#: The four image tasks of the paper (Fig. 2g, h; S.I.4–5; Table S4).
TASKS = {
    "tissuemnist_gaussian": ImageTask(
        name="tissuemnist_gaussian",
        title="TissueMNIST · Gaussian",
        loader=_tissue_loaders,
        corrupt=CORRUPTIONS["tissuemnist_gaussian"],
        levels=_levels({"smoke": _sigma_grid(-2, 2, 3), "quick": _sigma_grid(-2, 2, 6),
                        "paper": _sigma_grid(-2, 2, 10)}),
        x_name="1/sigma", x_label=r"$1/\sigma$ (pixel noise SD$^{-1}$)",
        models={"smoke": ("MobileNetV3",), "quick": ("MobileNetV3",),
                "paper": ("MobileNetV3",)},
        probe=label_probe,
        paper={"loader": "tissuemnist", "task": "TissueMNIST · Gaussian"},
        notes={"paper_probe": _tissue_probe_paper},
    ),
    "tissuemnist_pixelate": ImageTask(
        name="tissuemnist_pixelate",
        title="TissueMNIST · Pixelation",
        loader=_tissue_loaders,
        corrupt=CORRUPTIONS["tissuemnist_pixelate"],
        levels=_levels({"smoke": (1, 4, 14), "quick": (1, 2, 4, 7, 14, 28),
                        "paper": (2, 4, 7, 8, 14, 16, 28, 32, 56, 112, 224)}),
        x_name="1/F^2", x_label=r"$1/F^2$ (pixelation factor$^{-2}$)",
        models={"smoke": ("MobileNetV3",), "quick": ("MobileNetV3",),
                "paper": ("MobileNetV3",)},
        probe=label_probe,
        paper={"loader": "tissuemnist", "task": "TissueMNIST · Pixelation"},
        notes={"paper_probe": _tissue_probe_paper},
    ),
    "caltech101_gaussian": ImageTask(
        name="caltech101_gaussian",
        title="Caltech101 · Gaussian",
        loader=_caltech_loaders,
        corrupt=CORRUPTIONS["caltech101_gaussian"],
        levels=_levels({"paper": _sigma_grid(-1, 2, 10)}),
        x_name="1/sigma^2", x_label=r"$1/\sigma^2$",
        models={"paper": ("MobileNetV2",)},
        probe=partial(label_probe, latent=False),
        paper={"loader": "caltech101", "task": "Caltech101 · Gaussian"},
        notes={"epochs": 5},
    ),
    "caltech101_pixelate": ImageTask(
        name="caltech101_pixelate",
        title="Caltech101 · Pixelation",
        loader=_caltech_loaders,
        corrupt=CORRUPTIONS["caltech101_pixelate"],
        levels=_levels({"paper": (1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 200)}),
        x_name="1/F", x_label=r"$1/F$",
        models={"paper": ("MobileNetV2",)},
        probe=partial(label_probe, latent=False),
        paper={"loader": "caltech101", "task": "Caltech101 · Pixelation"},
        notes={"epochs": 10},
    ),
}


def run_task(task: ImageTask | str, *, profile: str = "quick", seed: int = 0, data=None,
             table=None, progress: bool = False, **model_overrides):
    """Sweep one image task over its noise levels; tidy results and training curves.

    For every level: noise the training and the evaluation images (independent noise,
    seeds ``seed`` and ``seed + 1``), fit each model on the noisy training images (the noisy
    evaluation images give the per-epoch validation curve; nothing is selected on them), and
    probe the noisy evaluation images.  Levels already in ``table`` (a
    :class:`helpers.sweep.ResultsTable`) are skipped, so an interrupted run resumes.

    Returns
    -------
    (results, curves)
        ``results``: one row per level × model × probed signal with the shared results
        columns; ``curves``: one row per level × model × epoch (train loss and accuracy,
        validation loss and accuracy, seconds).
    """
    from .models import make_model
    from .sweep import package_versions

    task = TASKS[task] if isinstance(task, str) else task
    data = task.load(profile) if data is None else data
    train, test = data.split("train"), data.split("test")
    probe_fn = task.notes.get("paper_probe", task.probe) if profile == "paper" else task.probe
    versions = package_versions()
    rows, curves = [], []
    done = table.frame() if table is not None else None
    for level in task.levels(data, profile):
        for model_name in task.models[profile]:
            key = {"task": task.name, "model": model_name, "level": float(level), "seed": seed}
            if done is not None and len(done) and (
                (done["task"] == task.name) & (done["model"] == model_name)
                & np.isclose(done["level"].astype(float), float(level))
                & (done["seed"] == seed)).any():
                continue
            noisy_train, x = task.corrupt(train, level, seed=seed)
            noisy_test, _ = task.corrupt(test, level, seed=seed + 1)
            overrides = dict(model_overrides)
            if profile == "paper" and "epochs" in task.notes:
                overrides.setdefault("epochs", task.notes["epochs"])
            model = make_model(model_name, profile=profile, seed=seed, **overrides)
            t0 = time.perf_counter()
            model.fit(noisy_train, val=noisy_test, progress=progress)
            t1 = time.perf_counter()
            probed = probe_fn(model, noisy_test, task.signal, seed=seed)
            t2 = time.perf_counter()
            hist = pd.DataFrame(model.history_).assign(**key, x=x)
            curves.append(hist)
            new = [{
                "modality": task.modality, "task": task.name,
                "dataset": data.uns.get("name", ""), "model": model_name,
                "signal": r["signal"], "size": len(noisy_train), "level": float(level),
                "x": float(x), "seed": seed, "mi": float(r["mi"]), "profile": profile,
                "n_train": len(noisy_train), "n_eval": len(noisy_test),
                "fit_seconds": t1 - t0, "embed_seconds": np.nan, "probe_seconds": t2 - t1,
                "versions": versions, "estimator": r.get("estimator", ""),
                "class": r.get("class", ""),
            } for r in probed]
            if table is not None:
                table.append(new)
            rows.extend(new)
    results = pd.DataFrame(rows)
    if table is not None:
        full = table.frame()
        results = full[(full["task"] == task.name) & (full["seed"] == seed)].reset_index(
            drop=True)
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    return results, curves


def fit_curves(results: pd.DataFrame) -> pd.DataFrame:
    """Noise-law fit of every (task, model, signal) curve over its finite-x points."""
    finite = results[np.isfinite(results["x"].astype(float))]
    return laws.fit_table(finite, ["task", "model", "signal"], law="noise", x="x", y="mi")


def published_counterpart(task: ImageTask | str) -> pd.DataFrame:
    """The released points of the same task, with ``signal`` named as :func:`label_probe`.

    TissueMNIST's ``8-class MI`` becomes ``all classes`` and its one-vs-all scores (latent MI
    of the embedding) keep the class name; Caltech101's one-vs-all scores are discrete MI of
    predicted labels, so they get the ``· predicted`` suffix.
    """
    from . import published

    task = TASKS[task] if isinstance(task, str) else task
    loader = getattr(published, task.paper["loader"])
    df = loader()
    df = df[df["task"] == task.paper["task"]].copy()
    if task.paper["loader"] == "tissuemnist":
        df["signal"] = df["label"].replace({"8-class MI": "all classes"})
    else:
        df["signal"] = df["label"].str.removeprefix("Class ") + " · predicted"
    df["task"] = task.name
    return df.reset_index(drop=True)


def effective_resolution(u_bar: float, *, x_axis: str, size: int) -> float:
    """Image side (pixels) at which a pixelation curve reaches its noise scale ``ū``.

    At ``x = ū`` Eq. 1 sits ``½ log2(2 / (1 + 2^{-2 I_max}))`` (≈ 0.5 bit) below capacity:
    pooling by more than the matching factor ``F*`` costs more than that.  With ``x = 1/F²``,
    ``F* = 1/√ū``; with ``x = 1/F``, ``F* = 1/ū``; the effective resolution is ``size / F*``.

    Examples
    --------
    >>> round(effective_resolution(0.13, x_axis="1/F", size=240), 1)  # the draft's ~31 x 31
    31.2
    >>> effective_resolution(0.0625, x_axis="1/F^2", size=224)
    56.0
    """
    if not np.isfinite(u_bar) or u_bar <= 0:
        return float("nan")
    if x_axis == "1/F^2":
        factor = 1.0 / np.sqrt(u_bar)
    elif x_axis == "1/F":
        factor = 1.0 / u_bar
    else:
        msg = f"effective resolution needs a pixelation x-axis ('1/F' or '1/F^2'), got {x_axis!r}"
        raise ValueError(msg)
    return float(size / factor)


def summarise(results: pd.DataFrame, fits: pd.DataFrame) -> dict:
    """Headline numbers for the chapter: curves, median R², how many curves fall with noise."""
    finite = results[np.isfinite(results["x"].astype(float))]
    rho = finite.groupby(["task", "model", "signal"])[["x", "mi"]].apply(
        lambda g: g["x"].corr(g["mi"], method="spearman"))
    ok = fits[fits["success"].astype(bool)] if len(fits) else fits
    per_job = results.drop_duplicates(["task", "model", "level", "seed"])
    return {
        "n_curves": int(len(fits)),
        "n_models_trained": int(len(per_job)),
        "median_r2": float(ok["r_squared"].median()) if len(ok) else float("nan"),
        "falls_with_noise": float((rho > 0).mean()) if len(rho) else float("nan"),
        "fit_minutes": float(per_job["fit_seconds"].sum() / 60),
        "probe_minutes": float(per_job["probe_seconds"].sum() / 60),
    }


def x_of(level: float, task: ImageTask | str) -> float:
    """The x-axis value of a level of a task."""
    task = TASKS[task] if isinstance(task, str) else task
    return x_value(level, task.x_name)
