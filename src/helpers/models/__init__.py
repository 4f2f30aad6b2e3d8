"""The four cell representation models of the paper (Supplementary S.II, Tables S1–S3).

Every model is made by :func:`make_model`, fitted on training cells and then embeds any cells
measured on the same genes::

    from helpers.models import make_model
    model = make_model("SCVI", profile="quick", seed=0)
    model.fit(adata_train)            # raw integer counts in X, genes in var
    Z = model.embed(adata_test)       # (n_cells, 16) float32
    model.config, model.n_parameters

====================  =====  ===============================================================
name                  dim    what it is
====================  =====  ===============================================================
``RandomProjection``  16     Gaussian random projection of raw counts (random_state 42)
``PCA``               16     normalise, log1p, 750 HVGs, standardise, truncated SVD
``SCVI``              16     scvi-tools VAE (1 × 512 hidden, ZINB); posterior-mean latent
``Geneformer``        256    BERT on rank-value encoded genes; mean of the penultimate layer
====================  =====  ===============================================================

Profiles (``profile=``): ``"smoke"`` (seconds on ~500 cells, for CI), ``"quick"`` (the default
book: a few thousand cells on two CPU cores; scVI sees 2,000 highly variable genes, Geneformer
500 and 16 tokens per cell; short step budgets) and ``"paper"`` (Tables S1/S2 exactly, all genes,
512 tokens, the paper's training budget).  The linear models are the same at every profile.
:func:`hyperparameter_table` and :func:`parameter_count_table` regenerate Tables S1–S3 from the
configurations in use.  torch, scvi-tools and transformers are imported only when a neural
model is fitted or counted.
"""

from __future__ import annotations

from helpers._checks import check_seed

from ._common import (
    BaseModel,
    NotFittedError,
    RepresentationModel,
    align_genes,
    check_counts,
    epochs_for_budget,
    select_highly_variable,
    train_val_split,
)
from .esm2 import ESM2_8M, ESM2_35M, ESM2_150M, ESM2Config, ESM2Model
from .geneformer import (
    GeneformerConfig,
    GeneformerModel,
    nonzero_median,
    rank_value_encode,
    resolve_deepspeed_config,
)
from .linear import (
    PCAConfig,
    PCAModel,
    RandomProjectionConfig,
    RandomProjectionModel,
    normalize_log1p,
)
from .mobilenet import MobileNetConfig, MobileNetV2Config, MobileNetV2Model, MobileNetV3Model
from .scvi_model import SCVIConfig, SCVIModel
from .tables import (
    PAPER_GENE_COUNTS,
    PAPER_TABLE_S3,
    hyperparameter_table,
    parameter_count_table,
)

__all__ = [
    "MODEL_NAMES",
    "SEQUENCE_MODEL_NAMES",
    "IMAGE_MODEL_NAMES",
    "BaseModel",
    "NotFittedError",
    "RepresentationModel",
    "make_model",
    "get_model_class",
    "RandomProjectionConfig",
    "RandomProjectionModel",
    "PCAConfig",
    "PCAModel",
    "SCVIConfig",
    "SCVIModel",
    "GeneformerConfig",
    "GeneformerModel",
    "ESM2Config",
    "ESM2Model",
    "MobileNetConfig",
    "MobileNetV2Config",
    "MobileNetV3Model",
    "MobileNetV2Model",
    "hyperparameter_table",
    "parameter_count_table",
    "PAPER_GENE_COUNTS",
    "PAPER_TABLE_S3",
    "rank_value_encode",
    "nonzero_median",
    "resolve_deepspeed_config",
    "normalize_log1p",
    "select_highly_variable",
    "train_val_split",
    "epochs_for_budget",
    "check_counts",
    "align_genes",
]

_REGISTRY: dict[str, type[BaseModel]] = {
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
    for key, cls in _REGISTRY.items():
        if key.lower() == str(name).lower():
            return cls
    msg = f"unknown model {name!r}; choose one of {tuple(_REGISTRY)}"
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
