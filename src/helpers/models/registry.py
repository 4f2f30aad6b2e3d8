"""Every model by its paper name: the one place a name becomes a class (:func:`make_model`)."""

from __future__ import annotations

from .._checks import check_seed
from ._common import BaseModel
from .esm2 import ESM2_8M, ESM2_35M, ESM2_150M
from .geneformer import GeneformerModel
from .linear import PCAModel, RandomProjectionModel
from .mobilenet import MobileNetV2Model, MobileNetV3Model
from .scvi_model import SCVIModel

__all__ = [
    "IMAGE_MODEL_NAMES",
    "MODEL_NAMES",
    "SEQUENCE_MODEL_NAMES",
    "get_model_class",
    "make_model",
    "names",
]

#: Name → model class.
MODELS: dict[str, type[BaseModel]] = {
    "RandomProjection": RandomProjectionModel,
    "PCA": PCAModel,
    "SCVI": SCVIModel,
    "Geneformer": GeneformerModel,
    "ESM2-8M": ESM2_8M,
    "ESM2-35M": ESM2_35M,
    "ESM2-150M": ESM2_150M,
    "MobileNetV3": MobileNetV3Model,
    "MobileNetV2": MobileNetV2Model,
}

#: The single-cell algorithm names of the paper's result tables.
MODEL_NAMES = ("RandomProjection", "PCA", "SCVI", "Geneformer")
#: The protein language models (Supplementary S.II.6), one per ESM2 size.
SEQUENCE_MODEL_NAMES = ("ESM2-8M", "ESM2-35M", "ESM2-150M")
#: The image models (fit on ImageData with labels; see ``models.mobilenet``).
IMAGE_MODEL_NAMES = ("MobileNetV3", "MobileNetV2")


def get_model_class(name: str) -> type[BaseModel]:
    """The model class registered as ``name`` (case-insensitive)."""
    for key, cls in MODELS.items():
        if key.lower() == str(name).lower():
            return cls
    msg = f"unknown model {name!r}; choose one of {tuple(MODELS)}"
    raise ValueError(msg)


def make_model(name: str, *, profile: str = "quick", seed: int = 0, **overrides) -> BaseModel:
    """Make an unfitted model by its paper name with the hyperparameters of a profile.

    Parameters
    ----------
    name
        ``"RandomProjection"``, ``"PCA"``, ``"SCVI"`` or ``"Geneformer"`` (case-insensitive).
    profile
        ``"smoke"``, ``"quick"`` (default) or ``"paper"``.
    seed
        Seed of every random choice of the fit (validation split, initialisation, batches,
        masks).  The linear models' matrices are fixed by their ``random_state`` as in the paper.
    **overrides
        Hyperparameters to change, by config field name (e.g. ``n_top_genes=None``,
        ``max_len=128``); an unknown name is a ``ValueError``.

    Examples
    --------
    >>> model = make_model("Geneformer", profile="paper")
    >>> model.config.max_len, model.config.batch_size
    (512, 64)
    >>> make_model("SCVI", profile="quick", max_epochs_cap=50).config.max_epochs_cap
    50
    """
    cls = get_model_class(name)
    config = cls.config_class.for_profile(profile, seed=check_seed(seed))
    return cls(config, **overrides)


def names() -> tuple[str, ...]:
    """Every registered model name.

    Examples
    --------
    >>> names()[:4]
    ('RandomProjection', 'PCA', 'SCVI', 'Geneformer')
    """
    return tuple(MODELS)
