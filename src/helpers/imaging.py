"""The paper's image tasks: their noise levels and the image-specific readouts.

The four image tasks (Fig. 2g, h; Supplementary S.I.4–5, S.II.5, Table S4) are registered in
:mod:`helpers.tasks` from the pieces here and run by :func:`helpers.sweep.run` like every
other task (one job = one noise level × training size × model × seed: the whole dataset is
noised once per level, a MobileNet is trained with the labels on the job's training subset,
and the evaluation images are probed):

=========================  =====================================================================
task                       what it is
=========================  =====================================================================
``tissuemnist_gaussian``   TissueMNIST (paper) / Fashion-MNIST (smoke, quick), Gaussian σ, x = 1/σ
``tissuemnist_pixelate``   same data, pixelation by F then resize back, x = 1/F²
``caltech101_gaussian``    Caltech101 5 classes, MobileNetV2, Gaussian σ, x = 1/σ²
``caltech101_pixelate``    same data, pooled small images, x = 1/F
=========================  =====================================================================

:func:`helpers.probe.label_probe` reports, for the evaluation images, the latent MI of the embedding with
the class label (``all classes``), the discrete MI of predicted with true labels
(``all classes · predicted``) and, per class, the one-vs-all MI after balanced resampling,
from the predicted labels (``<class> · predicted``) and, where asked, from the embedding
(``<class>``: the TissueMNIST release's ``ova_mi_continuous``).  Each row also carries the
model's training record (``history``, JSON), read back by :func:`helpers.sweep.histories`.  Their
released counterparts are :func:`helpers.tasks.published_points` and
:func:`helpers.tasks.published_fits`, as for every task.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import profiles

__all__ = [
    "effective_resolution",
    "levels_caltech_gaussian",
    "levels_caltech_pixelate",
    "levels_tissue_gaussian",
    "levels_tissue_pixelate",
]


def _sigma_grid(lo: float, hi: float, n: int) -> tuple[float, ...]:
    return tuple(float(f"{v:.6g}") for v in np.logspace(lo, hi, n))


#: σ on the paper's logspace(−2, 2) grid: 10 levels at paper, 6 at quick, 3 at smoke.
levels_tissue_gaussian = profiles.PerProfile({
    "smoke": _sigma_grid(-2, 2, 3), "quick": _sigma_grid(-2, 2, 6),
    "paper": _sigma_grid(-2, 2, 10),
})


def levels_tissue_pixelate(data, profile) -> tuple[float, ...]:
    """Pooling factors: the paper's 11 divisors of 224, or the divisors of a 28-pixel image."""
    name = profiles.base_of(profile)  # a variant sweeps its base profile's levels
    if name == "paper":
        return (2, 4, 7, 8, 14, 16, 28, 32, 56, 112, 224)
    side = int(min(data.images.shape[-2:]))
    divisors = tuple(f for f in (1, 2, 4, 7, 14, 28, 56, 112, 224) if f <= side and side % f == 0)
    return divisors if name == "quick" else divisors[::2]


#: σ on the Caltech101 notebook's logspace(−1, 2, 10) grid (fewer at smoke/quick).
levels_caltech_gaussian = profiles.PerProfile({
    "smoke": _sigma_grid(-1, 2, 3), "quick": _sigma_grid(-1, 2, 6),
    "paper": _sigma_grid(-1, 2, 10),
})


#: The side of the paper profile's Caltech101 images (the notebook resizes them to 240 × 240),
#: for costing a grid whose data are not at hand.
CALTECH_SIDE = 240


def levels_caltech_pixelate(data, profile) -> tuple[float, ...]:
    """The Caltech101 notebook's factors (those not larger than the images; ``data=None``:
    the paper's 240-pixel images)."""
    side = CALTECH_SIDE if data is None else int(min(data.images.shape[-2:]))
    grid = tuple(f for f in (1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 200) if f <= side)
    return grid if profiles.base_of(profile) == "paper" else grid[::2]


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


def job_minutes(results: pd.DataFrame) -> dict:
    """Training and probing minutes summed once per job (a job writes one row per signal)."""
    keys = [c for c in ("task", "model", "level", "size", "seed", "profile") if c in results]
    jobs = results.drop_duplicates(keys)
    return {"fit_minutes": float(jobs["fit_seconds"].sum() / 60),
            "probe_minutes": float(jobs["probe_seconds"].sum() / 60),
            "n_models_trained": int(len(jobs))}


__all__ += ["job_minutes"]
