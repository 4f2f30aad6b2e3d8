"""Supplementary Tables S1–S3 generated from the configurations the models actually use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from ._common import BaseModel, check_profile

__all__ = [
    "PAPER_GENE_COUNTS",
    "PAPER_TABLE_S3",
    "hyperparameter_table",
    "parameter_count_table",
]

#: Input genes per dataset of the paper.  LARRY: the 25,289 genes of the released in-vitro
#: matrix; PBMC: the 20,729 genes of the Hao et al. 2021 object distributed by scvi-tools;
#: MERFISH: 649 (S.I.1); Shendure: 45,525, the number that reproduces the authors' exact
#: Geneformer count (13,480,151 = vocabulary 45,527 × 257 + 1,779,712).  With these numbers both
#: models match Table S3 to the printed digit, except scVI on MERFISH (see
#: :func:`parameter_count_table`).
PAPER_GENE_COUNTS: dict[str, int] = {
    "Larry": 25_289,
    "MERFISH": 649,
    "PBMC": 20_729,
    "Shendure": 45_525,
}

#: The published Supplementary Table S3 (millions of parameters), for comparison only.
PAPER_TABLE_S3: dict[str, dict[str, float]] = {
    "Larry": {"SCVI": 64.9, "Geneformer": 8.3},
    "MERFISH": {"SCVI": 1.3, "Geneformer": 1.9},
    "PBMC": {"SCVI": 53.2, "Geneformer": 7.1},
    "Shendure": {"SCVI": 116.8, "Geneformer": 13.5},
}


def _budget(cfg) -> str:
    cap = f", at most {cfg.max_epochs_cap}" if cfg.max_epochs_cap is not None else ""
    return (
        f"Dynamic: max({cfg.min_epochs}, floor({cfg.sample_budget:.0e} / n_cells)){cap}"
    ).replace("e+0", "e")


def _genes(cfg) -> str:
    n = getattr(cfg, "n_top_genes", None)
    return "All genes" if n is None else f"{n} highly variable genes (training cells)"


def _rows_geneformer(c) -> list[tuple[str, str, object]]:
    return [
        ("Model Architecture", "Number of layers", c.num_hidden_layers),
        ("Model Architecture", "Hidden dimension", c.hidden_size),
        ("Model Architecture", "Attention heads", c.num_attention_heads),
        ("Model Architecture", "Intermediate size", c.intermediate_size),
        ("Model Architecture", "Max sequence length", f"{c.max_len} tokens"),
        (
            "Model Architecture",
            "Activation function",
            "ReLU" if c.hidden_act == "relu" else c.hidden_act,
        ),
        ("Model Architecture", "Attention dropout", c.attention_probs_dropout_prob),
        ("Model Architecture", "Hidden dropout", c.hidden_dropout_prob),
        ("Model Architecture", "Initializer range", c.initializer_range),
        ("Model Architecture", "Layer norm epsilon", c.layer_norm_eps),
        ("Training Hyperparameters", "Learning rate", c.lr),
        ("Training Hyperparameters", "Optimizer", c.optimizer),
        ("Training Hyperparameters", "Weight decay", c.weight_decay),
        ("Training Hyperparameters", "Train batch size (per device)", c.batch_size),
        ("Training Hyperparameters", "Eval batch size (per device)", c.eval_batch_size),
        ("Learning Rate Schedule", "LR scheduler type", c.lr_scheduler.capitalize()),
        ("Learning Rate Schedule", "Warmup steps", c.warmup_steps),
        ("Training Configuration", "Evaluation strategy", "Steps"),
        ("Training Configuration", "Evaluation steps", c.eval_steps),
        (
            "Training Configuration",
            "Validation cells per evaluation",
            "All" if c.eval_max_cells is None else c.eval_max_cells,
        ),
        ("Training Configuration", "Max epochs", _budget(c)),
        ("Training Configuration", "Group by length", c.group_by_length),
        (
            "Training Configuration",
            "Train/Val split",
            f"{c.train_fraction:.0%} / {1 - c.train_fraction:.0%}",
        ),
        ("Early Stopping", "Early stopping", "Based on validation loss"),
        ("Early Stopping", "Patience", f"{c.early_stopping_patience} evaluations"),
        (
            "Masked Language Modelling",
            "Masking",
            f"{c.mask_probability:.0%} of gene tokens "
            f"({c.mask_replace_fraction:.0%} <mask>, {c.mask_random_fraction:.0%} random, "
            f"{1 - c.mask_replace_fraction - c.mask_random_fraction:.0%} kept)",
        ),
        ("Tokenisation", "Genes", _genes(c)),
        (
            "Tokenisation",
            "Encoding",
            f"rank value (counts / cell total x {c.target_sum:g}, / gene non-zero median)",
        ),
    ]


def _rows_scvi(c) -> list[tuple[str, str, object]]:
    likelihood = {"zinb": "Zero-inflated negative binomial (ZINB)", "nb": "Negative binomial"}
    return [
        ("Model Architecture", "Hidden size", c.n_hidden),
        ("Model Architecture", "Latent dimension", c.n_latent),
        ("Model Architecture", "Number of hidden layers", c.n_layers),
        ("Model Architecture", "Dropout rate", c.dropout_rate),
        (
            "Model Architecture",
            "Dispersion",
            "Gene-specific" if c.dispersion == "gene" else c.dispersion,
        ),
        (
            "Model Architecture",
            "Gene likelihood",
            likelihood.get(c.gene_likelihood, c.gene_likelihood),
        ),
        ("Model Architecture", "Latent distribution", c.latent_distribution.capitalize()),
        ("Training Hyperparameters", "Learning rate", c.lr),
        ("Training Hyperparameters", "Optimizer", c.optimizer),
        ("Training Hyperparameters", "Weight decay", c.weight_decay),
        ("Training Hyperparameters", "Adam epsilon", c.eps),
        ("Training Hyperparameters", "Batch size", c.batch_size),
        (
            "Learning Rate Schedule",
            "LR scheduler",
            "Reduce on plateau" if c.reduce_lr_on_plateau else "None",
        ),
        (
            "Learning Rate Schedule",
            "LR scheduler metric",
            "Validation ELBO"
            if c.lr_scheduler_metric == "elbo_validation"
            else c.lr_scheduler_metric,
        ),
        (
            "Learning Rate Schedule",
            "LR factor / patience",
            f"{c.lr_factor} / {c.lr_patience} epochs",
        ),
        ("Learning Rate Schedule", "Minimum LR", c.lr_min),
        ("KL Annealing", "KL warmup epochs", c.n_epochs_kl_warmup),
        ("KL Annealing", "Max KL weight", c.max_kl_weight),
        ("KL Annealing", "Min KL weight", c.min_kl_weight),
        (
            "Training Configuration",
            "Train/Val split",
            f"{c.train_fraction:.0%} / {1 - c.train_fraction:.0%}",
        ),
        ("Training Configuration", "Shuffle split", c.shuffle_split),
        ("Training Configuration", "Max epochs", _budget(c)),
        ("Training Configuration", "Genes", _genes(c)),
        (
            "Early Stopping",
            "Early stopping",
            "Based on validation ELBO" if c.early_stopping else "Off",
        ),
        ("Early Stopping", "Patience", f"{c.early_stopping_patience} epochs"),
        ("Early Stopping", "Min delta", c.early_stopping_min_delta),
    ]


def _rows_pca(c) -> list[tuple[str, str, object]]:
    return [
        (
            "Preprocessing",
            "Per-cell normalisation",
            f"counts scaled to {c.target_sum:g} per cell, log1p",
        ),
        ("Preprocessing", "Highly variable genes", c.n_top_genes if c.n_top_genes else "All genes"),
        (
            "Preprocessing",
            "Standardisation",
            "per gene, training mean and SD" if c.scale else "None",
        ),
        (
            "Preprocessing",
            "Clip standardised values at",
            c.max_value if c.max_value is not None else "No clipping",
        ),
        ("Decomposition", "Method", "sklearn TruncatedSVD"),
        ("Decomposition", "Components", c.n_components),
        ("Decomposition", "Random state", c.random_state),
    ]


def _rows_rp(c) -> list[tuple[str, str, object]]:
    return [
        ("Projection", "Method", "sklearn GaussianRandomProjection"),
        ("Projection", "Components", c.n_components),
        ("Projection", "Random state", c.random_state),
        ("Projection", "Input", "raw counts (no normalisation, all genes)"),
    ]


def _rows_mobilenet(c) -> list[tuple[str, str, object]]:
    base = {"v3_small": "MobileNetV3-Small", "v2": "MobileNetV2"}.get(c.arch, c.arch)
    return [
        ("Model Architecture", "Base model", base),
        (
            "Model Architecture",
            "Weight initialization",
            "ImageNet pretrained (IMAGENET1K_V1)" if c.pretrained else "random (from scratch)",
        ),
        ("Model Architecture", "Input Channels", "3 (grayscale converted by repeating)"),
        ("Training Hyperparameters", "Optimizer", "Adam"),
        ("Training Hyperparameters", "Learning rate", c.lr),
        ("Training Hyperparameters", "Weight decay", c.weight_decay),
        ("Training Hyperparameters", "Finetuning objective", "CrossEntropyLoss"),
        ("Training Hyperparameters", "Batch size", c.batch_size),
        ("Training Hyperparameters", "Epochs", c.epochs),
        (
            "Training Hyperparameters",
            "Batch-norm re-estimation",
            f"{c.bn_recalibrate} training images" if c.bn_recalibrate else "none",
        ),
        ("Embedding Extraction", "Representation", "Last layer before classifier"),
    ]


def _rows_esm2(c) -> list[tuple[str, str, object]]:
    start = f"pretrained {c.checkpoint}" if c.checkpoint else (
        f"from scratch ({c.num_hidden_layers} layers, hidden {c.hidden_size}, "
        f"{c.num_attention_heads} heads)")
    return [
        (
            "Model Architecture",
            "Base model",
            f"ESM2 ({c.size} parameters)" if c.checkpoint else f"ESM2 architecture (stand-in for {c.size})",
        ),
        ("Model Architecture", "Weights", start),
        (
            "Model Architecture",
            "Finetuning objective",
            f"Masked Language Modeling ({c.mask_probability:.0%} masking)",
        ),
        ("Model Architecture", "Max sequence length", c.max_length),
        ("Hyperparameters", "Optimizer", "AdamW"),
        ("Hyperparameters", "Learning rate", c.lr),
        ("Hyperparameters", "Weight decay", c.weight_decay),
        ("Hyperparameters", "Batch size", c.batch_size),
        ("Hyperparameters", "Epochs", c.epochs),
        (
            "Embedding Extraction",
            "Pooling method",
            "Mean pooling of last hidden state"
            + (" (special tokens included)" if c.pool_special_tokens else ""),
        ),
        (
            "Embedding Extraction",
            "Embedded length",
            f"first {c.embed_max_length} tokens" if c.embed_max_length else "whole sequence",
        ),
    ]


_ROWS = {
    "Geneformer": _rows_geneformer,
    "SCVI": _rows_scvi,
    "PCA": _rows_pca,
    "RandomProjection": _rows_rp,
    "MobileNetV3": _rows_mobilenet,
    "MobileNetV2": _rows_mobilenet,
    "ESM2-8M": _rows_esm2,
    "ESM2-35M": _rows_esm2,
    "ESM2-150M": _rows_esm2,
}


def hyperparameter_table(name_or_model, *, profile: str = "paper") -> pd.DataFrame:
    """Hyperparameter table of a model (Tables S1, S2, S4, S5: Geneformer, SCVI, MobileNet, ESM2).

    Parameters
    ----------
    name_or_model
        A model name (any of :func:`helpers.models.names`, e.g. ``"SCVI"``, ``"ESM2-8M"``) — its
        configuration at ``profile`` is tabulated — or a model instance, whose own configuration
        (with any overrides) is tabulated and ``profile`` is ignored.
    profile
        ``"smoke"``, ``"quick"`` or ``"paper"``.

    Returns
    -------
    DataFrame with columns ``section``, ``parameter``, ``value`` (values as strings).

    Examples
    --------
    >>> t = hyperparameter_table("Geneformer", profile="paper")
    >>> t.set_index("parameter").loc["Max sequence length", "value"]
    '512 tokens'
    """
    from .registry import make_model

    if isinstance(name_or_model, BaseModel):
        model = name_or_model
    else:
        model = make_model(name_or_model, profile=check_profile(profile))
    rows = _ROWS[model.name](model.config)
    return pd.DataFrame(
        [(s, p, str(v)) for s, p, v in rows], columns=["section", "parameter", "value"]
    )


def parameter_count_table(
    gene_counts: Mapping[str, int] | None = None,
    *,
    profile: str = "paper",
    models: Iterable[str] = ("SCVI", "Geneformer"),
    compare: bool = True,
) -> pd.DataFrame:
    """Trainable parameters per dataset (Table S3), counted by instantiating the models.

    Each model is built for the dataset's gene number with its configuration at ``profile``
    (on PyTorch's ``meta`` device, so even 117 M parameters cost no memory) and its parameters
    are counted.

    Parameters
    ----------
    gene_counts
        ``{dataset: number of input genes}``; default :data:`PAPER_GENE_COUNTS`.
    profile
        Profile whose configuration is instantiated (``"paper"`` for Table S3; note that the
        quick profile also selects 2,000 genes, which the gene numbers here bypass).
    models
        Model names to count.
    compare
        Add the published Table S3 values (millions) for datasets named there.

    Returns
    -------
    DataFrame indexed by dataset with ``n_genes``, ``<model>`` (exact counts), ``<model> (M)``
    and, with ``compare``, ``<model> (M), paper``.

    Notes
    -----
    With :data:`PAPER_GENE_COUNTS` the counts agree with Table S3 to the printed digit for LARRY,
    PBMC and Shendure (both models) and for Geneformer on MERFISH.  scVI on MERFISH gives 1.69 M
    for 649 genes where the paper prints 1.3 M; 1.3 M corresponds to 476–514 input genes
    (Geneformer's 1.9 M is consistent with those too), so the MERFISH runs probably used fewer
    genes than the 649 the text states.

    Examples
    --------
    >>> parameter_count_table({"toy": 100}, compare=False).loc["toy", "Geneformer"]
    np.int64(1805926)
    """
    from .registry import get_model_class

    check_profile(profile)
    gene_counts = dict(PAPER_GENE_COUNTS if gene_counts is None else gene_counts)
    rows = []
    for dataset, n_genes in gene_counts.items():
        row = {"dataset": dataset, "n_genes": int(n_genes)}
        for name in models:
            cls = get_model_class(name)
            if not hasattr(cls, "count_parameters"):
                msg = f"{name} has no gene-dependent parameter count"
                raise ValueError(msg)
            cfg = cls.config_class.for_profile(profile)
            n = int(cls.count_parameters(n_genes, cfg))
            row[cls.name] = n
            row[f"{cls.name} (M)"] = round(n / 1e6, 1)
            if compare and dataset in PAPER_TABLE_S3 and cls.name in PAPER_TABLE_S3[dataset]:
                row[f"{cls.name} (M), paper"] = PAPER_TABLE_S3[dataset][cls.name]
        rows.append(row)
    return pd.DataFrame(rows).set_index("dataset")
