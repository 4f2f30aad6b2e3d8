"""The paper's released per-model results, as tidy tables on the noise law's x-axis.

Every loader reads its files through :func:`helpers.data.fetch` and returns one row per
measured point with the columns

``modality, task, model, size, curve, level, x, mi``

where ``x`` is the signal-to-noise power of Eq. 1, put on the axis exactly as the authors'
analysis notebooks do
(see ``published/README.md`` of the data mirror): single cell ``x = umis_per_cell``;
sequences ``x = true/error``; Caltech101 Gaussian ``x = 1/Scale²``, resolution ``x = 1/Factor``;
TissueMNIST Gaussian ``x = 1/S``, pixelation ``x = 1/F²``.  Because the two image tables do
not share one convention, a fitted ``u_bar`` compares only within one table.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .data import fetch, load_manifest

__all__ = [
    "AUTHORS_UMI90",
    "LEARNED_MODELS",
    "SIGNAL_TASK",
    "TISSUE_CLASSES",
    "actual_depth",
    "caltech101",
    "cell_r2_summary",
    "collapsed_cell_curves",
    "estimator_audit",
    "learned_cell_curves",
    "model_comparisons",
    "noise_curves",
    "run_counts",
    "single_cell",
    "spike_esm2",
    "table_s6",
    "tissuemnist",
]

#: Published signal name → the task name used in the paper's figures.
SIGNAL_TASK = {
    "protein_counts": "Protein MI",
    "clone": "Clonal MI",
    "author_day": "Temporal MI",
    "ng_idx": "Spatial MI",
    "celltype.l3": "Cell type MI",
}

#: TissueMNIST class index → cell type (MedMNIST v2 label names).
TISSUE_CLASSES = {
    0: "Collecting Duct",
    1: "Distal Convoluted Tubule",
    2: "Glomerular endothelial",
    3: "Interstitial endothelial",
    4: "Leukocytes",
    5: "Podocytes",
    6: "Proximal Tubule",
    7: "Thick Ascending Limb",
}

_COLUMNS = ["modality", "task", "model", "size", "curve", "level", "x", "mi"]


def single_cell(*, include_cell_type: bool = False) -> pd.DataFrame:
    """Single-cell auxiliary MI, one row per dataset, size, quality, algorithm, signal and seed.

    Parameters
    ----------
    include_cell_type
        Keep the PBMC cell-type MI rows (the paper leaves them out of its fits).

    Returns
    -------
    pandas.DataFrame
        The published columns (``dataset, size, quality, algorithm, signal, seed, mi_value,
        umis_per_cell``) plus the tidy ones (``modality="Single cell"``, ``task``, ``model``,
        ``curve``, ``level=quality``, ``x=umis_per_cell``, ``mi=mi_value``).
    """
    df = pd.read_csv(fetch("published/collect_mi_results"))
    if not include_cell_type:
        df = df[df["signal"] != "celltype.l3"].reset_index(drop=True)
    task = df["signal"].map(SIGNAL_TASK)
    return df.assign(
        modality="Single cell",
        task=task,
        model=df["algorithm"],
        curve=task + " · " + df["algorithm"] + " · " + df["size"].astype(str) + " cells",
        level=df["quality"],
        x=df["umis_per_cell"].astype(float),
        mi=df["mi_value"],
    )


def spike_esm2() -> pd.DataFrame:
    """ESM2 on SARS-CoV-2 spike sequences: MI with collection month per substitution rate."""
    raw = pd.read_csv(fetch("published/spike_esm2"))
    model = "ESM2-" + raw["model_size"]
    return pd.DataFrame(
        {
            "modality": "Sequence",
            "task": "Spike · collection month",
            "model": model,
            "size": np.nan,
            "curve": "Spike · " + model,
            "level": raw["noise_level"],
            "x": raw["true/error"].astype(float),
            "mi": raw["mutual_information"],
        }
    )


def caltech101(*, include_all: bool = False) -> pd.DataFrame:
    """MobileNet on five Caltech101 classes: one-vs-all MI per class under two kinds of noise.

    Parameters
    ----------
    include_all
        Keep the 5-class (``all``) rows, which the paper leaves out of its fits.
    """
    frames = []
    for noise, key, level_col in (
        ("Gaussian", "published/caltech101_gaussian", "Scale"),
        ("Pixelation", "published/caltech101_resolution", "Factor"),
    ):
        raw = pd.read_csv(fetch(key), index_col=0)
        if not include_all:
            raw = raw[raw["Class label"].astype(str) != "all"]
        level = raw[level_col].astype(float)
        x = 1.0 / level**2 if noise == "Gaussian" else 1.0 / level
        label = "Class " + raw["Class label"].astype(str)
        frames.append(
            pd.DataFrame(
                {
                    "modality": "Image",
                    "task": f"Caltech101 · {noise}",
                    # the authors' Caltech101 notebooks fine-tune torchvision's mobilenet_v2
                    # (as the main text says; Supplementary S.II.5 names MobileNetV3 for both)
                    "model": "MobileNetV2",
                    "size": np.nan,
                    "curve": f"Caltech101 · {noise} · " + label,
                    "level": level,
                    "x": x,
                    "mi": raw["MI"].astype(float),
                    "label": label,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def tissuemnist(*, include_clean: bool = False) -> pd.DataFrame:
    """MobileNet on TissueMNIST: 8-class MI and one-vs-all MI per class under two noises.

    The one-vs-all scores are the ``ova_mi_continuous_Class_k`` columns (MI of the continuous
    representation with the binary label), as in the paper's fits.  The clean images have no
    finite x and are left out unless ``include_clean``.
    """
    keys = [k for k in load_manifest() if k.startswith("published/tissuemnist_")]
    rows = []
    for key in keys:
        token = key.removeprefix("published/tissuemnist_")
        raw = pd.read_csv(fetch(key)).iloc[0]
        if token == "clean":
            if not include_clean:
                continue
            noise, level, x = "Clean", 0.0, np.inf
        elif token.startswith("pix_"):
            level = float(re.fullmatch(r"pix_(\d+)x", token).group(1))
            noise, x = "Pixelation", 1.0 / level**2
        else:
            level = float(token.removeprefix("gauss_"))
            noise, x = "Gaussian", 1.0 / level
        scores = {"8-class MI": raw["mi_score"]}
        for k, name in TISSUE_CLASSES.items():
            col = f"ova_mi_continuous_Class_{k}"
            if col in raw.index and pd.notna(raw[col]):
                scores[name] = raw[col]
        for label, mi in scores.items():
            rows.append(
                {
                    "modality": "Image",
                    "task": f"TissueMNIST · {noise}",
                    "model": "MobileNetV3",
                    "size": np.nan,
                    "curve": f"TissueMNIST · {noise} · {label}",
                    "level": level,
                    "x": x,
                    "mi": float(mi),
                    "label": label,
                }
            )
    return pd.DataFrame(rows).sort_values(["curve", "level"], ignore_index=True)


def noise_curves() -> pd.DataFrame:
    """Every published noise curve the paper fits, in one tidy table.

    Single-cell curves are one per task, algorithm and training size (cell-type MI left
    out); sequence curves one per ESM2 size; image curves one per class and noise type
    (Caltech101 ``all`` rows left out; TissueMNIST 8-class score kept).

    Returns
    -------
    pandas.DataFrame
        Columns ``modality, task, model, size, curve, level, x, mi`` (and ``label`` for
        images), one row per measured point.
    """
    parts = [single_cell()[_COLUMNS], spike_esm2(), caltech101(), tissuemnist()]
    return pd.concat(parts, ignore_index=True)


def run_counts() -> pd.Series:
    """How many trained models each released table holds.

    Single cell: distinct (dataset, size, quality, algorithm, seed), since one PBMC model is
    probed for two signals; sequences: one per ESM2 size and substitution rate; images: one
    per noise type and level (the one-vs-all scores of a model share a row), clean included.

    Examples
    --------
    >>> run_counts().to_dict()  # doctest: +SKIP
    {'Single cell': 3891, 'Sequence': 29, 'Caltech101': 22, 'TissueMNIST': 22}
    """
    sc = single_cell(include_cell_type=True)
    keys = ["dataset", "size", "quality", "algorithm", "seed"]
    cal = caltech101(include_all=True)
    tissue = tissuemnist(include_clean=True)
    return pd.Series({
        "Single cell": sc.groupby(keys).ngroups,
        "Sequence": len(spike_esm2()),
        "Caltech101": cal.groupby(["task", "level"]).ngroups,
        "TissueMNIST": tissue.groupby(["task", "level"]).ngroups,
    }, name="trained models")


# --------------------------------------------------------------------------------------------
# The paper's derived tables, recomputed from our fits
# --------------------------------------------------------------------------------------------
#: Supplementary Table S6 as the authors computed it (UMI90 by the table definition,
#: :math:`I = I_\max + \log_2 0.95`; mean of their fits at the largest training size), in
#: UMIs per cell, copied from the printed output of ``analysis/u90.ipynb`` of g-kl/noise-scaling
#: at commit fc1b1da (the paper's text has the table's values stripped).  Reference values to
#: compare our refit with; nothing is computed from them.
AUTHORS_UMI90 = {
    ("Temporal MI", "Geneformer"): 2571.69,
    ("Temporal MI", "PCA"): 5606.36,
    ("Temporal MI", "RandomProjection"): 8012.47,
    ("Temporal MI", "SCVI"): 2815.46,
    ("Clonal MI", "Geneformer"): 4212.89,
    ("Clonal MI", "PCA"): 20190.04,
    ("Clonal MI", "RandomProjection"): 7339.64,
    ("Clonal MI", "SCVI"): 5073.33,
    ("Spatial MI", "Geneformer"): 2212.04,
    ("Spatial MI", "PCA"): 32107.48,
    ("Spatial MI", "RandomProjection"): 1339.94,
    ("Spatial MI", "SCVI"): 5000.44,
    ("Protein MI", "Geneformer"): 8090.07,
    ("Protein MI", "PCA"): 46266.58,
    ("Protein MI", "RandomProjection"): 46989.55,
    ("Protein MI", "SCVI"): 44958.50,
    ("Cell type MI", "Geneformer"): 4228.60,
    ("Cell type MI", "PCA"): 15491.45,
    ("Cell type MI", "RandomProjection"): 34352.42,
    ("Cell type MI", "SCVI"): 8112.99,
}

#: The learned (neural-network) models, whose cell-number curves the paper summarises.
LEARNED_MODELS = ("Geneformer", "SCVI")


def actual_depth(sc: pd.DataFrame | None = None) -> pd.Series:
    """Mean UMIs per cell of each single-cell task at full depth (quality 1), indexed by task.

    Examples
    --------
    >>> actual_depth()["Spatial MI"]  # doctest: +SKIP
    367.0
    """
    sc = single_cell(include_cell_type=True) if sc is None else sc
    full = sc[np.isclose(sc["quality"], 1.0)]
    return full.groupby("task")["umis_per_cell"].max().astype(float).rename("actual UMIs per cell")


def _check_columns(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        msg = f"{what} lacks the column(s) {missing} (has {list(df.columns)})."
        raise ValueError(msg)


def table_s6(noise_fits: pd.DataFrame, depth: pd.Series | None = None) -> pd.DataFrame:
    """Supplementary Table S6 from our fits, beside the authors' values: one row per task × model.

    Parameters
    ----------
    noise_fits
        A :func:`helpers.laws.fit_table` of noise fits with ``task`` and ``model`` keys, one
        curve per pair (the paper uses the largest training size of each task).
    depth
        Actual UMIs per cell by task (default: :func:`actual_depth`).

    Returns
    -------
    pandas.DataFrame
        ``task, model, u_bar, i_max, umi90_table`` (ours, table definition), ``umi90_authors``
        (:data:`AUTHORS_UMI90`), ``rel_diff`` (ours / authors − 1), ``umi90_text`` (ours, text
        definition), ``actual`` (depth), ``table_exceeds_actual``, ``text_exceeds_actual``,
        ``ok`` and ``reason`` of the fit.  UMI90 is computed from the fitted parameters for
        every curve, flagged or not, so that the table lines up with the authors'; ``ok``
        and ``reason`` say which values rest on a fit the data do not constrain.
    """
    from . import laws

    _check_columns(noise_fits, ["task", "model", "u_bar", "i_max", "ok", "reason"], "noise_fits")
    if noise_fits.duplicated(["task", "model"]).any():
        msg = "noise_fits must hold one curve per task and model (e.g. the largest size)."
        raise ValueError(msg)
    depth = actual_depth() if depth is None else depth

    def _umi90(u, i, definition):
        try:
            return float(laws.umi90(u, i, definition=definition))
        except ValueError:
            return np.nan

    rows = []
    for r in noise_fits.itertuples(index=False):
        table = _umi90(r.u_bar, r.i_max, "table")
        text = _umi90(r.u_bar, r.i_max, "text")
        authors = AUTHORS_UMI90.get((r.task, r.model), np.nan)
        actual = float(depth.get(r.task, np.nan))
        rows.append({
            "task": r.task, "model": r.model, "u_bar": r.u_bar, "i_max": r.i_max,
            "umi90_table": table, "umi90_authors": authors, "rel_diff": table / authors - 1,
            "umi90_text": text, "actual": actual,
            "table_exceeds_actual": table > actual, "text_exceeds_actual": text > actual,
            "ok": bool(r.ok), "reason": r.reason,
        })
    return pd.DataFrame(rows)


def estimator_audit(noise_fits: pd.DataFrame, published_fits: pd.DataFrame) -> pd.DataFrame:
    """How the paper's MI estimator moves ``I_max`` and ``ū``, and the published fits re-read.

    ``noise_fits`` hold, for each model, one noise curve measured with this book's estimator
    (``estimator == "canonical"``) and one with the paper's (``"paper"``) on the *same*
    representations (:func:`helpers.probe.estimator_probe`).  The paper's estimator shifts the
    capacity by ``d_i_max = I_max(paper) − I_max(canonical)`` bits and scales the noise scale
    by ``u_bar_ratio = ū(paper) / ū(canonical)``.  Applying the inverse shift to the published
    fits (made with the paper's estimator) gives an *estimate* of what this book's estimator
    would have read on the paper's representations: ``i_max_corrected = I_max − d_i_max`` and
    ``u_bar_corrected = ū / u_bar_ratio``.  It assumes that the estimator's bias carries over
    from this book's data and sample size to the paper's.

    Parameters
    ----------
    noise_fits
        A :func:`helpers.laws.fit_table` with ``model``, ``estimator``, ``u_bar``, ``i_max``
        (and optionally ``ok``) columns, one curve per model and estimator.
    published_fits
        The released fits of the same task (:func:`helpers.tasks.published_fits`), with
        ``algorithm`` (or ``model``), ``u_bar`` and ``i_max``.

    Returns
    -------
    pandas.DataFrame
        One row per model measured both ways: ``i_max_canonical``, ``i_max_paper``,
        ``d_i_max``, ``u_bar_canonical``, ``u_bar_paper``, ``u_bar_ratio``, ``both_ok``, the
        published ``i_max_published`` and ``u_bar_published`` and their corrected values.

    Examples
    --------
    >>> ours = pd.DataFrame({"model": ["PCA", "PCA"], "estimator": ["canonical", "paper"],
    ...                      "u_bar": [100.0, 200.0], "i_max": [3.0, 2.5]})
    >>> paper = pd.DataFrame({"algorithm": ["PCA"], "u_bar": [5000.0], "i_max": [4.0]})
    >>> row = estimator_audit(ours, paper).iloc[0]
    >>> row[["d_i_max", "u_bar_ratio", "i_max_corrected", "u_bar_corrected"]].tolist()
    [-0.5, 2.0, 4.5, 2500.0]
    """
    _check_columns(noise_fits, ["model", "estimator", "u_bar", "i_max"], "noise_fits")
    if noise_fits.duplicated(["model", "estimator"]).any():
        msg = "noise_fits must hold one curve per model and estimator (e.g. the largest size)."
        raise ValueError(msg)
    if not {"canonical", "paper"} <= set(noise_fits["estimator"]):
        msg = "noise_fits need curves of both the 'canonical' and the 'paper' estimator."
        raise ValueError(msg)
    fits = noise_fits.assign(ok=noise_fits["ok"] if "ok" in noise_fits else True)
    wide = fits.pivot(index="model", columns="estimator", values=["i_max", "u_bar", "ok"])
    out = pd.DataFrame({
        "i_max_canonical": wide["i_max", "canonical"], "i_max_paper": wide["i_max", "paper"],
        "u_bar_canonical": wide["u_bar", "canonical"], "u_bar_paper": wide["u_bar", "paper"],
        "both_ok": wide["ok", "canonical"].astype(bool) & wide["ok", "paper"].astype(bool),
    }).dropna(subset=["i_max_canonical", "i_max_paper"])
    out["d_i_max"] = out["i_max_paper"] - out["i_max_canonical"]
    out["u_bar_ratio"] = out["u_bar_paper"] / out["u_bar_canonical"]
    key = "algorithm" if "algorithm" in published_fits else "model"
    released = published_fits.set_index(key)[["i_max", "u_bar"]].add_suffix("_published")
    out = out.join(released, how="left")
    out["i_max_corrected"] = out["i_max_published"] - out["d_i_max"]
    out["u_bar_corrected"] = out["u_bar_published"] / out["u_bar_ratio"]
    return out.rename_axis("model").reset_index()


def model_comparisons(noise_fits: pd.DataFrame) -> pd.DataFrame:
    """The paper's model comparisons per task, from noise fits at one training size per task.

    Returns one row per task with Geneformer's ``u_bar``, the ratio of PCA's ``u_bar`` to
    Geneformer's (the paper: 2.5–12.8-fold) and the capacity gap scVI − Geneformer in bits
    (the paper: 0.4–1.4 bit).  With an ``ok`` column in ``noise_fits``, ``all_ok`` says
    whether the three fits of the task are all ``ok`` (a comparison resting on a flagged fit
    compares an extrapolated parameter).

    Examples
    --------
    >>> fits = pd.DataFrame({"task": ["T"] * 3, "model": ["PCA", "Geneformer", "SCVI"],
    ...                      "u_bar": [900.0, 300.0, 400.0], "i_max": [1.0, 1.5, 2.0]})
    >>> model_comparisons(fits).drop(columns="task").round(2).iloc[0].tolist()
    [300.0, 3.0, 0.5]
    """
    _check_columns(noise_fits, ["task", "model", "u_bar", "i_max"], "noise_fits")
    u = noise_fits.pivot(index="task", columns="model", values="u_bar")
    i = noise_fits.pivot(index="task", columns="model", values="i_max")
    out = pd.DataFrame({
        "geneformer_u_bar": u["Geneformer"],
        "pca_over_geneformer_u_bar": u["PCA"] / u["Geneformer"],
        "scvi_minus_geneformer_i_max": i["SCVI"] - i["Geneformer"],
    })
    if "ok" in noise_fits.columns:
        ok = noise_fits.pivot(index="task", columns="model", values="ok")
        out["all_ok"] = ok[["PCA", "Geneformer", "SCVI"]].astype(bool).all(axis=1)
    return out.reset_index()


def learned_cell_curves(cell_fits: pd.DataFrame, *, min_quality: float = 0.1) -> pd.DataFrame:
    """The cell-number curves the paper summarises: learned models at quality ≥ ``min_quality``.

    The draft's rule (R² "across n = 44 model and task combinations"): every Geneformer and
    scVI curve, all five signals, at a downsampling quality of at least 0.1 (the authors'
    Fig. 2b leaves out "datasets downsampled by more than one order of magnitude").
    """
    _check_columns(cell_fits, ["algorithm", "quality"], "cell_fits")
    keep = cell_fits["algorithm"].isin(LEARNED_MODELS) & (cell_fits["quality"] >= min_quality)
    return cell_fits[keep].reset_index(drop=True)


def collapsed_cell_curves(cell_fits: pd.DataFrame, *, min_quality: float = 0.1) -> pd.DataFrame:
    """The cell-number curves of the collapse panel (Fig. 2b; the draft's Fig. 1b).

    The caption's rule: "54 different cell number scaling curves across three model families and
    four datasets. Datasets with transcript counts downsampled by more than one order of
    magnitude are omitted" — Geneformer, scVI and PCA on the four tasks of Fig. 2 (cell type
    left out) at a quality of at least ``min_quality``, with a fit the data constrain (``ok``).
    It differs from the rule of the draft's R² statement (:func:`learned_cell_curves`).
    """
    _check_columns(cell_fits, ["algorithm", "quality", "task", "ok"], "cell_fits")
    keep = (cell_fits["algorithm"].isin([*LEARNED_MODELS, "PCA"]) & (cell_fits["quality"] >= min_quality)
            & (cell_fits["task"] != "Cell type MI") & cell_fits["ok"].astype(bool))
    return cell_fits[keep].reset_index(drop=True)


def cell_r2_summary(cell_fits: pd.DataFrame) -> dict:
    """Mean and standard error of R² over cell-number fits, as the authors compute it.

    R² is that of the fit against the mean over seeds at each size (``r_squared_means``, the
    authors' ``cell_number_scaling.ipynb``); the standard error is that of the mean.

    Returns
    -------
    dict
        ``n``, ``mean``, ``sem``, ``min`` and, for comparison, ``mean_all_points`` (R² over
        every seed's point).
    """
    _check_columns(cell_fits, ["r_squared_means", "r_squared"], "cell_fits")
    r2 = cell_fits["r_squared_means"].astype(float)
    return {
        "n": int(r2.size),
        "mean": float(r2.mean()),
        "sem": float(r2.sem()),
        "min": float(r2.min()),
        "mean_all_points": float(cell_fits["r_squared"].astype(float).mean()),
    }
