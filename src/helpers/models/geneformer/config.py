"""Geneformer's settings per profile (Tables S1/S2) and its DeepSpeed configuration."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .._common import (
    check_profile,
)
from .tokens import (
    N_SPECIAL_TOKENS,
    PAD_TOKEN,
)

__all__ = [
    "GeneformerConfig",
    "resolve_deepspeed_config",
]


@dataclass(frozen=True)
class GeneformerConfig:
    """Hyperparameters of the Geneformer-style BERT (Supplementary Table S1) and its budget.

    Architecture, optimiser, schedule, batch sizes and early stopping are Table S1's; the
    learning rate (blank in the published table) is the authors' 1e-3 (their methods notes), the
    Adam betas/epsilon and gradient clipping are HuggingFace ``Trainer`` defaults (the authors
    trained with ``Trainer``).  Masking is BERT's: 15 % of the gene tokens are chosen, 80 % of
    those become ``<mask>``, 10 % a random gene and 10 % stay (the collator Geneformer uses).

    Training length: ``max_epochs = max(min_epochs, floor(sample_budget / n_cells))`` capped at
    ``max_epochs_cap``; the paper used ``sample_budget = 1e8`` (10 epochs at 10 million cells).
    Validation loss is computed every ``eval_steps`` optimiser steps (with the same masks every
    time) and training stops after ``early_stopping_patience`` evaluations without improvement;
    the best weights are restored.

    ``emb_layer`` chooses the hidden layer the embedding averages, as Geneformer's
    ``EmbExtractor`` does: ``-1`` (the default and the authors' choice) the penultimate layer,
    ``0`` the last, ``-num_hidden_layers`` the token embeddings.  ``torch_compile`` wraps the
    training forward in ``torch.compile`` (off by default: on a CPU and for the short fits of
    the smoke and quick profiles compilation costs more than it saves).

    ``n_threads`` sets ``torch.set_num_threads`` during fit/embed (``None``: unchanged); the
    smoke and quick profiles use one thread: this small model gains little from a second core,
    and on two cores shared with other work two threads measured 7x slower (150 s against 22 s
    for a smoke fit of 576 cells).

    Profiles
    --------
    ``paper``
        Table S1 exactly: all genes, 512 tokens, batch 64, 5,000 warm-up steps, evaluation every
        1,000 steps, ``sample_budget = 1e8``.
    ``quick``
        500 highly variable genes (selected on the training cells), the top 16 genes of each
        cell as tokens, batch 32, the paper's learning rate 1e-3, ``sample_budget = 10,000``
        (two epochs, ~312 optimiser steps, at 5,000 cells), 10 warm-up steps, validation loss
        every 25 steps on at most 200 validation cells.  On a few hundred to a few thousand
        cells a small vocabulary and short sequences let the model learn within a CPU budget:
        measured at full depth on the chapters' training sets (one core, one fit each, when
        this profile was chosen), against the earlier 2,000 genes / 32 tokens / 3e-3 / 5,000
        samples: clonal MI on 507 LARRY cells 0.75 bit against 0.01-0.14 (scVI: 0.73), Klein et al.
        day MI 1.47 against 0.62, PBMC protein MI 2.24 against 1.98, osmFISH spatial MI 0.48
        against 0.10 (with 16 of the 33 genes as tokens, the token *set* differs between cells,
        not only their order), at equal or up to twice the time (25-30 s per fit).  The 3e-3
        learning rate trained no better at 5,000 samples and diverged over longer schedules.
        Far fewer steps than the paper: the quick profile shows the pipeline, not a converged
        Geneformer.  (Those MI values were measured with the last layer as the embedding and
        the earlier per-batch masking draws; the default is now the penultimate layer.)
    ``smoke``
        500 highly variable genes, 32 tokens, batch 16, ``sample_budget = 1,000``, at most 4
        epochs, validation on at most 200 cells: seconds.
    """

    num_hidden_layers: int = 3
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 512
    hidden_act: str = "relu"
    attention_probs_dropout_prob: float = 0.02
    hidden_dropout_prob: float = 0.02
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    max_len: int = 512
    target_sum: float = 1e4
    n_top_genes: int | None = None
    mask_probability: float = 0.15
    mask_replace_fraction: float = 0.8
    mask_random_fraction: float = 0.1
    optimizer: str = "AdamW"
    lr: float = 1e-3
    weight_decay: float = 0.001
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler: str = "linear"
    warmup_steps: int = 5000
    batch_size: int = 64
    eval_batch_size: int = 100
    group_by_length: bool = True
    eval_steps: int = 1000
    eval_max_cells: int | None = None
    early_stopping_patience: int = 5
    train_fraction: float = 0.8
    sample_budget: float = 1e8
    min_epochs: int = 1
    max_epochs_cap: int | None = None
    emb_layer: int = -1
    device: str = "auto"
    deepspeed: str | None = None
    torch_compile: bool = False
    n_threads: int | None = None
    profile: str = "paper"
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str = "quick", *, seed: int = 0) -> GeneformerConfig:
        check_profile(profile)
        return cls(**GENEFORMER_PROFILES[profile], profile=profile, seed=seed)

    def bert_config(self, n_genes: int):
        """The ``transformers.BertConfig`` of this model for ``n_genes`` gene tokens."""
        from transformers import BertConfig

        return BertConfig(
            vocab_size=int(n_genes) + N_SPECIAL_TOKENS,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            max_position_embeddings=self.max_len,
            initializer_range=self.initializer_range,
            layer_norm_eps=self.layer_norm_eps,
            pad_token_id=PAD_TOKEN,
        )



#: What each profile changes of :class:`GeneformerConfig` (``paper``: Tables S1/S2 as they are).
GENEFORMER_PROFILES: dict[str, dict] = {
    "paper": {},
    "quick": {"max_len": 16, "n_top_genes": 500, "batch_size": 32, "warmup_steps": 10,
              "eval_steps": 25, "eval_max_cells": 200, "sample_budget": 1e4,
              "max_epochs_cap": 200, "n_threads": 1},
    "smoke": {"max_len": 32, "n_top_genes": 500, "batch_size": 16, "warmup_steps": 5,
              "eval_steps": 10, "eval_max_cells": 200, "sample_budget": 1e3, "max_epochs_cap": 4,
              "n_threads": 1},
}

def resolve_deepspeed_config(
    source: str | os.PathLike | dict,
    config: GeneformerConfig,
    *,
    total_steps: int,
    world_size: int = 1,
    bf16_supported: bool | None = None,
    cuda_available: bool | None = None,
) -> dict:
    """Fill the ``"auto"`` entries of a DeepSpeed configuration from a Geneformer config.

    ``train_micro_batch_size_per_gpu`` ← ``batch_size`` (64 per device, Table S1),
    ``gradient_accumulation_steps`` ← 1, ``train_batch_size`` ← micro batch × accumulation ×
    ``world_size``, optimiser ``lr``/``weight_decay``/``betas``/``eps``, scheduler warm-up and
    total steps and peak learning rate, ``gradient_clipping`` ← ``max_grad_norm``; mixed
    precision: bf16 where the GPU supports it, fp16 on other GPUs, neither without CUDA.
    Entries that are not ``"auto"`` are kept.

    Examples
    --------
    >>> cfg = GeneformerConfig()
    >>> ds = resolve_deepspeed_config({"train_batch_size": "auto",
    ...     "train_micro_batch_size_per_gpu": "auto"}, cfg, total_steps=100, world_size=4)
    >>> ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"]
    (256, 64)
    """
    if isinstance(source, dict):
        ds = copy.deepcopy(source)
    else:
        ds = json.loads(Path(source).read_text())
    if cuda_available is None or bf16_supported is None:
        try:
            import torch

            cuda = torch.cuda.is_available()
            bf16 = cuda and torch.cuda.is_bf16_supported()
        except ImportError:  # pragma: no cover - torch is a dependency
            cuda = bf16 = False
        cuda_available = cuda if cuda_available is None else cuda_available
        bf16_supported = bf16 if bf16_supported is None else bf16_supported

    def fill(d: dict, key: str, value):
        if d.get(key) == "auto":
            d[key] = value

    fill(ds, "train_micro_batch_size_per_gpu", config.batch_size)
    fill(ds, "gradient_accumulation_steps", 1)
    micro = ds.get("train_micro_batch_size_per_gpu", config.batch_size)
    accum = ds.get("gradient_accumulation_steps", 1)
    fill(ds, "train_batch_size", int(micro) * int(accum) * int(world_size))
    fill(ds, "gradient_clipping", config.max_grad_norm)
    opt = ds.get("optimizer", {}).get("params", {})
    fill(opt, "lr", config.lr)
    fill(opt, "weight_decay", config.weight_decay)
    fill(opt, "betas", [config.adam_beta1, config.adam_beta2])
    fill(opt, "eps", config.adam_epsilon)
    sched = ds.get("scheduler", {}).get("params", {})
    fill(sched, "warmup_min_lr", 0.0)
    fill(sched, "warmup_max_lr", config.lr)
    fill(sched, "warmup_num_steps", int(min(config.warmup_steps, total_steps)))
    fill(sched, "total_num_steps", int(total_steps))
    use_bf16 = bool(cuda_available and bf16_supported)
    if "bf16" in ds:
        fill(ds["bf16"], "enabled", use_bf16)
    if "fp16" in ds:
        fp16_on = bool(cuda_available and not ds.get("bf16", {}).get("enabled", False))
        fill(ds["fp16"], "enabled", fp16_on)
    return ds
