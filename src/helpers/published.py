"""The paper's released per-model results, as tidy tables on the noise law's x-axis.

Every loader reads its files through :func:`helpers.data.fetch` and returns one row per
measured point with the columns

``modality, task, model, size, curve, level, x, mi``

where ``x`` is the signal-to-noise power of Eq. 1, put on the axis exactly as the paper does
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
    "SIGNAL_TASK",
    "TISSUE_CLASSES",
    "caltech101",
    "noise_curves",
    "single_cell",
    "spike_esm2",
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
                    "model": "MobileNetV3",
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
