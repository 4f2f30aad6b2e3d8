"""The representation models of the book: the paper's four cell models (Supplementary S.II,
Tables S1–S3), the protein language models (ESM2, three sizes) and the image models
(MobileNetV3-Small, MobileNetV2); :func:`names` lists all nine.

Every model is made by :func:`make_model` (``models.registry``), fitted on training samples
and then embeds any samples measured alike; for the cell models::

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
from .registry import (
    IMAGE_MODEL_NAMES,
    MODEL_NAMES,
    SEQUENCE_MODEL_NAMES,
    get_model_class,
    make_model,
    names,
)
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
    "names",
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
    "ESM2_8M",
    "ESM2_35M",
    "ESM2_150M",
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
