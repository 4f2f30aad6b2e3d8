"""A Geneformer-style BERT on rank-value encoded cells (Supplementary S.II.3, Table S1).

The rank-value encoding and the training loop are written here (no dependency on the
``geneformer`` package); the network is ``transformers.BertForMaskedLM``.

Rank-value encoding (Theodoris et al. 2023)
    Counts are scaled per cell to ``target_sum`` (1e4), divided by each gene's median over the
    training cells in which it is expressed (its *non-zero median*), and the cell's expressed
    genes are sorted by that value, highest first (ties: lower gene index first).  The first
    ``max_len`` gene tokens are the cell's sequence.  Token ids: ``0 = <pad>``, ``1 = <mask>``,
    ``2 + j`` for gene ``j`` of the fitted genes; there is no ``<cls>`` token (the cell embedding
    is a mean over gene tokens), so the vocabulary has ``n_genes + 2`` entries, which reproduces
    the paper's parameter counts (Table S3) exactly.

Multi-GPU training with DeepSpeed
    The paper trained Geneformer on several GPUs with DeepSpeed.  Give the model a DeepSpeed
    JSON configuration (``configs/deepspeed_geneformer.json``: ZeRO stage 2, AdamW, linear
    warm-up/decay, fp16/bf16 chosen from the hardware) and start the script that fits it with
    the DeepSpeed launcher, one process per GPU::

        # train_geneformer.py
        import anndata as ad
        from helpers.models import make_model
        adata = ad.read_h5ad("train.h5ad")
        model = make_model("Geneformer", profile="paper",
                           deepspeed="configs/deepspeed_geneformer.json").fit(adata)

        $ deepspeed --num_gpus 8 train_geneformer.py

    The ``"auto"`` entries of the JSON are filled from the model's configuration by
    :func:`resolve_deepspeed_config` (64 cells per GPU as in Table S1, learning rate, weight decay,
    warm-up and total steps), every process trains on its own share of each epoch's batches and
    the validation loss is averaged over processes before the early-stopping decision.  The
    configuration asks for PyTorch's AdamW (``"torch_adam": true``), so no DeepSpeed extension has
    to be compiled.  Started without the launcher (e.g. ``model.fit`` in a notebook on one GPU),
    the model sets up a one-process group itself.  This path needs ``pip install deepspeed`` and
    CUDA GPUs: ``tests/test_models.py::test_geneformer_trains_with_deepspeed_like_the_plain_path``
    runs it where both exist and is skipped, saying which is missing, elsewhere (it has not yet
    run on a GPU: no GPU was available where this was written).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numba import njit

from ..progress import bar as progress_bar
from ._common import (
    BaseModel,
    check_profile,
    epochs_for_budget,
    select_highly_variable,
    train_val_split,
)

__all__ = [
    "PAD_TOKEN",
    "MASK_TOKEN",
    "N_SPECIAL_TOKENS",
    "GeneformerConfig",
    "GeneformerModel",
    "loss_curves",
    "nonzero_median",
    "rank_value_encode",
    "rank_value_tokens",
    "resolve_deepspeed_config",
]

PAD_TOKEN = 0
MASK_TOKEN = 1
N_SPECIAL_TOKENS = 2


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
        if profile == "paper":
            return cls(profile=profile, seed=seed)
        if profile == "quick":
            return cls(
                max_len=16,
                n_top_genes=500,
                batch_size=32,
                warmup_steps=10,
                eval_steps=25,
                eval_max_cells=200,
                sample_budget=1e4,
                max_epochs_cap=200,
                n_threads=1,
                profile=profile,
                seed=seed,
            )
        return cls(
            max_len=32,
            n_top_genes=500,
            batch_size=16,
            warmup_steps=5,
            eval_steps=10,
            eval_max_cells=200,
            sample_budget=1e3,
            max_epochs_cap=4,
            n_threads=1,
            profile=profile,
            seed=seed,
        )

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


# --------------------------------------------------------------------------------------------
# Rank-value encoding
# --------------------------------------------------------------------------------------------
def _scale_rows(X: sp.csr_matrix, totals: np.ndarray, target_sum: float) -> sp.csr_matrix:
    scale = np.divide(target_sum, totals, out=np.zeros(len(totals)), where=totals > 0)
    out = sp.csr_matrix(X, dtype=np.float64, copy=True)
    out.data *= np.repeat(scale, np.diff(out.indptr))
    return out


def nonzero_median(
    X: sp.csr_matrix, *, totals: np.ndarray | None = None, target_sum: float = 1e4
) -> np.ndarray:
    """Per-gene median of per-cell normalised counts over the cells expressing the gene.

    ``totals`` are the cells' total counts used for the normalisation (default: row sums of
    ``X``).  Genes expressed in no cell get ``nan``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1, 0], [3, 1], [0, 0]], dtype=float))
    >>> nonzero_median(X, target_sum=1.0)
    array([0.875, 0.25 ])
    """
    X = sp.csr_matrix(X)
    if totals is None:
        totals = np.asarray(X.sum(axis=1)).ravel()
    N = _scale_rows(X, np.asarray(totals, dtype=float), target_sum).tocsc()
    N.eliminate_zeros()
    N.sort_indices()
    med = np.full(N.shape[1], np.nan)
    _column_medians(N.data, N.indptr, med)
    return med


@njit(cache=True, nogil=True)
def _column_medians(data, indptr, out):  # pragma: no cover - compiled; via nonzero_median
    for j in range(indptr.size - 1):
        lo, hi = indptr[j], indptr[j + 1]
        if hi > lo:
            out[j] = np.median(data[lo:hi])


@njit(cache=True, nogil=True)
def _bucket_of(bits, lo, shift):  # pragma: no cover - compiled
    return (bits - lo) >> shift


@njit(cache=True, nogil=True)
def _shift_for(span, n_buckets):  # pragma: no cover - compiled
    shift = 0
    while (span >> shift) >= n_buckets:
        shift += 1
    return shift


@njit(cache=True, nogil=True)
def _rank_value_kernel(data, indices, indptr, scale, inv_med, max_len, flat, lengths):
    # pragma: no cover - compiled; exercised through rank_value_tokens
    """Per row: values ``data * scale[row] * inv_med[gene]``; the positive ones in descending
    order (ties: ascending gene), the first ``max_len`` written to ``flat[row * max_len:]`` as
    gene + N_SPECIAL_TOKENS.

    Positive float64 values order as their bit patterns (int64), so both steps bucket on bits
    (few unpredictable branches): when a row has more than ``max_len`` values, a 1,024-bucket
    histogram finds the bucket holding the ``max_len``-th largest and only the values from that
    bucket up are kept; those are placed by a finer bucket pass into nearly sorted order, which
    an insertion sort (comparing value, then gene) completes.
    """
    width = max_len
    for i in range(indptr.size - 1):
        width = max(width, indptr[i + 1] - indptr[i])
    vals = np.empty(width)
    genes = np.empty(width, np.int64)
    sel_v = np.empty(width)
    sel_g = np.empty(width, np.int64)
    out_v = np.empty(width)
    out_g = np.empty(width, np.int64)
    n_coarse = 1024
    counts = np.zeros(max(n_coarse, 2 * width) + 1, np.int64)
    for i in range(indptr.size - 1):
        k = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            v = data[p] * scale[i] * inv_med[j]
            vals[k] = v
            genes[k] = j
            k += v > 0  # branch-free: kept only when positive
        if k == 0:
            lengths[i] = 0
            continue
        bits = vals[:k].view(np.int64)
        lo, hi = bits[0], bits[0]
        for q in range(k):
            lo = min(lo, bits[q])
            hi = max(hi, bits[q])
        # 1. keep the values from the bucket of the max_len-th largest up (in gene order)
        if k > max_len:
            shift = _shift_for(hi - lo, n_coarse)
            counts[:n_coarse] = 0
            for q in range(k):
                counts[_bucket_of(bits[q], lo, shift)] += 1
            acc, cut = 0, n_coarse - 1
            while acc + counts[cut] < max_len:
                acc += counts[cut]
                cut -= 1
            c = 0
            for q in range(k):
                sel_v[c] = vals[q]
                sel_g[c] = genes[q]
                c += _bucket_of(bits[q], lo, shift) >= cut
        else:
            c = k
            sel_v[:k] = vals[:k]
            sel_g[:k] = genes[:k]
        # 2. bucket the kept values in descending order (stable: gene order within a bucket)
        sb = sel_v[:c].view(np.int64)
        lo, hi = sb[0], sb[0]
        for q in range(c):
            lo = min(lo, sb[q])
            hi = max(hi, sb[q])
        nb = 2 * c
        shift = _shift_for(hi - lo, nb)
        counts[: nb + 1] = 0
        for q in range(c):
            counts[1 + ((hi - sb[q]) >> shift)] += 1
        for t in range(nb):
            counts[t + 1] += counts[t]
        for q in range(c):
            t = (hi - sb[q]) >> shift
            out_v[counts[t]] = sel_v[q]
            out_g[counts[t]] = sel_g[q]
            counts[t] += 1
        # 3. insertion sort finishes the order inside buckets: value descending, gene ascending
        for q in range(1, c):
            x, y = out_v[q], out_g[q]
            r = q - 1
            while r >= 0 and (out_v[r] < x or (out_v[r] == x and out_g[r] > y)):
                out_v[r + 1] = out_v[r]
                out_g[r + 1] = out_g[r]
                r -= 1
            out_v[r + 1] = x
            out_g[r + 1] = y
        n = min(c, max_len)
        base = i * max_len
        for t in range(n):
            flat[base + t] = out_g[t] + 2
        lengths[i] = n


def rank_value_tokens(
    X: sp.csr_matrix,
    gene_medians: np.ndarray,
    *,
    max_len: int,
    totals: np.ndarray | None = None,
    target_sum: float = 1e4,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank-value encode cells into a padded token matrix (the form the training loop uses).

    The same encoding as :func:`rank_value_encode`, computed in one compiled pass over the CSR
    rows (no Python loop per cell).  Returns ``(tokens, lengths)``: ``tokens`` is an int32
    array ``n_cells x max_len`` whose row ``i`` holds the cell's ``lengths[i]`` tokens followed
    by ``<pad>`` (0).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[5, 0, 2, 2], [0, 1, 0, 0]], dtype=float))
    >>> tokens, lengths = rank_value_tokens(X, np.array([10.0, 1.0, 1.0, 2.0]), max_len=3,
    ...                                     target_sum=1.0)
    >>> tokens.tolist(), lengths.tolist()
    ([[4, 5, 2], [3, 0, 0]], [3, 1])
    """
    X = sp.csr_matrix(X)
    gene_medians = np.asarray(gene_medians, dtype=float)
    if gene_medians.shape != (X.shape[1],):
        msg = f"gene_medians has shape {gene_medians.shape}, expected ({X.shape[1]},)"
        raise ValueError(msg)
    if max_len < 1:
        msg = f"max_len must be positive, got {max_len}"
        raise ValueError(msg)
    if totals is None:
        totals = np.asarray(X.sum(axis=1)).ravel()
    totals = np.asarray(totals, dtype=float)
    if not X.has_sorted_indices:
        X = X.copy()
        X.sort_indices()
    scale = np.divide(target_sum, totals, out=np.zeros(len(totals)), where=totals > 0)
    valid = np.isfinite(gene_medians) & (gene_medians > 0)
    inv_med = np.where(valid, 1.0 / np.where(valid, gene_medians, 1.0), 0.0)
    flat = np.zeros(X.shape[0] * int(max_len), dtype=np.int32)
    lengths = np.zeros(X.shape[0], dtype=np.int64)
    _rank_value_kernel(
        X.data.astype(np.float64, copy=False), X.indices, X.indptr, scale, inv_med,
        int(max_len), flat, lengths,
    )
    return flat.reshape(X.shape[0], int(max_len)), lengths


def rank_value_encode(
    X: sp.csr_matrix,
    gene_medians: np.ndarray,
    *,
    max_len: int,
    totals: np.ndarray | None = None,
    target_sum: float = 1e4,
) -> list[np.ndarray]:
    """Rank-value encode cells into gene-token sequences (Geneformer's tokenisation).

    Each cell's counts are scaled to ``target_sum`` (using ``totals``, default the row sums),
    divided by ``gene_medians``, and its expressed genes are sorted by that value in descending
    order (ties: lower gene index first); the first ``max_len`` are kept.  Genes whose median
    is not a positive finite number (never expressed in training) are left out.  Token id of
    gene ``j`` is ``j + 2`` (``0 = <pad>``, ``1 = <mask>``).  One array per cell; the padded
    matrix the model trains on is :func:`rank_value_tokens`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[5, 0, 2, 2], [0, 1, 0, 0]], dtype=float))
    >>> medians = np.array([10.0, 1.0, 1.0, 2.0])
    >>> [t.tolist() for t in rank_value_encode(X, medians, max_len=3, target_sum=1.0)]
    [[4, 5, 2], [3]]
    """
    tokens, lengths = rank_value_tokens(
        X, gene_medians, max_len=max_len, totals=totals, target_sum=target_sum
    )
    return [row[:n].astype(np.int64) for row, n in zip(tokens, lengths, strict=True)]


# --------------------------------------------------------------------------------------------
# DeepSpeed configuration
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
def _masked_lm_module(bert_mlm):
    """Wrap ``BertForMaskedLM`` so that the vocabulary logits are computed only at masked tokens.

    ``forward(input_ids, positions, targets)`` takes the flat positions
    (``row * length + column``) of the masked tokens and their original ids; the loss equals
    ``BertForMaskedLM(..., labels=labels).loss`` (mean cross-entropy over the masked positions)
    without materialising ``batch × length × vocabulary`` logits, which dominate memory and time
    for 20,000–45,000 gene vocabularies, and without a boolean index (a host synchronisation on
    a GPU: the positions come ready from the batch loader).  The attention mask is computed
    from the ids (``<pad>`` is 0; masking never produces it), on the device.
    """
    import torch
    from torch import nn

    class MaskedLM(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, positions, targets):
            attention_mask = input_ids != PAD_TOKEN
            hidden = self.model.bert(input_ids, attention_mask=attention_mask).last_hidden_state
            picked = hidden.flatten(0, 1).index_select(0, positions)
            logits = self.model.cls(picked)
            return nn.functional.cross_entropy(logits.float(), targets)

        @torch.no_grad()
        def embed(self, input_ids, emb_layer: int = -1):
            """Mean over each cell's tokens of hidden layer ``n_layers + emb_layer`` (Geneformer's
            ``EmbExtractor`` convention: 0 the last layer, -1 the penultimate one)."""
            n_layers = self.model.config.num_hidden_layers
            attention_mask = input_ids != PAD_TOKEN
            out = self.model.bert(
                input_ids, attention_mask=attention_mask, output_hidden_states=emb_layer != 0
            )
            hidden = out.last_hidden_state if emb_layer == 0 else out.hidden_states[
                n_layers + emb_layer
            ]
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            s = (hidden * m).sum(1)
            n = m.sum(1).clamp(min=1)
            return (s / n).float()

    return MaskedLM(bert_mlm)


#: Token matrices of the last few count matrices tokenised, keyed by content (counts, genes,
#: medians, length, scale): the training cells are tokenised once per fit, and embedding the
#: same cells again (or another model with the same genes and medians) reuses them.
#: At most ``TOKEN_CACHE_SIZE`` entries and ``TOKEN_CACHE_BYTES`` bytes of tokens are kept.
TOKEN_CACHE: OrderedDict = OrderedDict()
TOKEN_CACHE_SIZE = 4
TOKEN_CACHE_BYTES = 2 * 2**30


def _digest(*arrays) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _collate(tokens: np.ndarray, lengths: np.ndarray, idx: np.ndarray):
    """Token ids of the cells ``idx`` padded to their longest (one gather, no per-cell loop).

    ``tokens`` is the ``n_cells x max_len`` matrix of :func:`rank_value_tokens`; returns an
    int32 tensor ``len(idx) x max(lengths[idx])``.
    """
    import torch

    return torch.from_numpy(tokens[idx, : int(lengths[idx].max())])


def length_grouped_batches(lengths: np.ndarray, batch_size: int, rng, *, group: bool):
    """Shuffled batches; with ``group``, sorted by length within mega-batches of 50 batches
    (as HuggingFace's ``LengthGroupedSampler``) so that padding is small."""
    perm = rng.permutation(len(lengths))
    if group:
        mega = 50 * batch_size
        chunk = np.arange(len(perm)) // mega
        # longest first within each mega-batch; stable, so equal lengths keep their shuffle
        perm = perm[np.lexsort((-lengths[perm], chunk))]
    batches = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    order = rng.permutation(len(batches))
    return [batches[k] for k in order]


def bernoulli_positions(n: int, p: float, rng) -> np.ndarray:
    """Ascending positions in ``range(n)`` of independent Bernoulli(``p``) successes, drawn as
    geometric gaps (about ``n * p`` draws instead of ``n``)."""
    if p <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if p >= 1:
        return np.arange(n, dtype=np.int64)
    m = int(n * p + 6 * math.sqrt(n * p * (1 - p)) + 16)
    pos = np.cumsum(rng.geometric(p, size=m)) - 1
    while pos[-1] < n - 1:  # rare: the draw fell short of the end
        pos = np.concatenate([pos, pos[-1] + np.cumsum(rng.geometric(p, size=m))])
    return pos[: np.searchsorted(pos, n)]


def mask_block(ids: np.ndarray, cfg: GeneformerConfig, n_vocab: int, rng):
    """BERT masking of the non-pad tokens of a block of padded token rows (numpy, whole block).

    Each non-pad token is chosen independently with probability ``mask_probability``; a chosen
    token becomes ``<mask>`` with probability ``mask_replace_fraction``, a uniformly drawn gene
    token with probability ``mask_random_fraction`` and stays otherwise (the collator Geneformer
    uses).  Returns ``(masked ids, positions, targets)``: a masked copy of ``ids``, the flat
    positions of the chosen tokens (ascending) and their original ids; ``ids`` is not modified.
    """
    flat = np.ascontiguousarray(ids).reshape(-1)
    pos = bernoulli_positions(flat.size, cfg.mask_probability, rng)
    pos = pos[flat[pos] != PAD_TOKEN]
    targets = flat[pos].astype(np.int64)
    masked = flat.copy()
    u = rng.random(pos.size)
    to_mask = u < cfg.mask_replace_fraction
    masked[pos[to_mask]] = MASK_TOKEN
    to_random = ~to_mask & (u < cfg.mask_replace_fraction + cfg.mask_random_fraction)
    masked[pos[to_random]] = rng.integers(
        N_SPECIAL_TOKENS, n_vocab, int(to_random.sum()), dtype=masked.dtype
    )
    return masked.reshape(ids.shape), pos, targets


def batch_stream(tokens, lengths, batches, cfg, n_vocab, rng, *, ensure_label, block=16384):
    """Masked batches ``(ids, positions, targets)`` as CPU tensors (int32 ids, int64 others).

    ``batches`` are arrays of rows of ``tokens`` (``n x max_len``, :func:`rank_value_tokens`).
    Work is done per block of consecutive batches (about ``block`` cells): one gather of their
    token rows, one masking draw (:func:`mask_block`) and one pass over the masked positions;
    a batch is then views of the block, padded to its own longest cell.  ``positions`` are the
    flat indices (``row * length + column``) of the masked tokens in the batch and ``targets``
    their original ids.  With ``ensure_label``, a batch without a masked token takes its first
    token as the target (so that every process steps alike); without, it is skipped.
    """
    import torch

    i = 0
    while i < len(batches):
        sizes = np.fromiter((len(b) for b in batches[i:]), dtype=np.int64, count=-1)
        n_take = max(1, int(np.searchsorted(np.cumsum(sizes), block, side="right")))
        group, sizes = batches[i : i + n_take], sizes[:n_take]
        i += n_take
        starts = np.concatenate([[0], np.cumsum(sizes)])
        rows = np.concatenate(group)
        row_len = lengths[rows]
        blens = np.maximum.reduceat(row_len, starts[:-1])
        ids = tokens[rows, : int(blens.max())]
        masked, flat_pos, targets = mask_block(ids, cfg, n_vocab, rng)
        r, c = np.divmod(flat_pos, ids.shape[1])
        which = np.repeat(np.arange(n_take), sizes)[r]
        positions = (r - starts[which]) * blens[which] + c
        bounds = np.searchsorted(r, starts)
        for k in range(n_take):
            s, e, L = starts[k], starts[k + 1], blens[k]
            a, b = bounds[k], bounds[k + 1]
            if a == b:
                if not ensure_label:
                    continue
                pos, tgt = np.zeros(1, np.int64), ids[s, :1].astype(np.int64)
            else:
                pos, tgt = positions[a:b], targets[a:b]
            yield torch.from_numpy(masked[s:e, :L]), torch.from_numpy(pos), torch.from_numpy(tgt)


def _prefetch(batches, device, *, depth: int = 4):
    """Yield ``batches`` (tuples of CPU tensors) on ``device``.

    On a GPU a background thread prepares the next ``depth`` batches in pinned memory while the
    current one trains, and copies are asynchronous; elsewhere batches are made as they are
    needed (on a CPU a second thread would only compete with the model for the cores).
    """
    if device.type != "cuda":
        for batch in batches:
            yield tuple(t.to(device) for t in batch)
        return
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work():
        try:
            for batch in batches:
                item = tuple(t.contiguous().pin_memory() for t in batch)
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as err:  # pragma: no cover - surfaced in the consumer
            q.put(err)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):  # pragma: no cover
                raise item
            yield tuple(t.to(device, non_blocking=True) for t in item)
    finally:
        stop.set()
        thread.join()


def _init_single_process_env() -> None:
    """Environment of a one-process distributed group, unless a launcher has set it."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(
        RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )


class GeneformerModel(BaseModel):
    """Geneformer-style BERT (masked gene-token modelling); embedding = mean of a hidden layer.

    Fit: select genes (all at the paper profile, 500 highly variable at quick), compute each
    gene's non-zero median over the training cells, rank-value encode the cells, split them
    80/20 (unless ``val`` is given), and train ``BertForMaskedLM`` (3 layers, hidden 256,
    4 heads, intermediate 512, ReLU) with 15 % BERT masking, AdamW, linear warm-up and decay,
    length-grouped batches and early stopping on the validation loss.  Embed: encode the cells
    with the training medians and average hidden layer ``n_layers + emb_layer`` over each
    cell's gene tokens (256 dimensions); a cell with no expressed gene gets the zero vector.

    ``emb_layer`` follows Geneformer's ``EmbExtractor``: ``-1`` (the default, as the authors
    used) is the penultimate layer, ``0`` the last, ``-n_layers`` the token embeddings.

    The input pipeline: cells are tokenised once per fit into a padded token matrix (compiled,
    no Python loop per cell; the tokens of the last few matrices seen are cached, so embedding
    the training cells again costs nothing); each batch is one gather from that matrix and
    whole-tensor masking; the training loss is accumulated on the device and read once per
    evaluation (every ``eval_steps`` steps), so a GPU step never waits for the host; on a GPU a
    background thread prepares batches in pinned memory ahead of the model.  ``torch_compile=True``
    wraps the training forward in ``torch.compile`` (off by default).

    Runs on a GPU when one is available (bf16 autocast where supported), CPU otherwise; see the
    module docstring for multi-GPU training with DeepSpeed.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> from helpers.models import make_model
    >>> adata = ad.AnnData(np.random.default_rng(0).poisson(1.0, (100, 40)).astype(np.float32))
    >>> model = make_model("Geneformer", profile="smoke", sample_budget=200)
    >>> model = model.fit(adata, progress=False)
    >>> model.embed(adata).shape
    (100, 256)
    """

    name = "Geneformer"
    config_class = GeneformerConfig

    # -- tokenisation ---------------------------------------------------------------------------
    def tokenize(self, adata) -> list[np.ndarray]:
        """Token sequences of the cells of ``adata`` with the fitted genes and medians."""
        from ._common import align_genes

        self._check_fitted()
        tokens, lengths = self._tokens(align_genes(adata, self.genes_, name="adata"))
        return [row[:n].astype(np.int64) for row, n in zip(tokens, lengths, strict=True)]

    def _tokens(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, lengths)`` of :func:`rank_value_tokens`, cached by content."""
        key = (
            _digest(X.data, X.indices, X.indptr, np.asarray(X.shape)),
            _digest(self.gene_idx_, self.gene_medians_),
            self.config.max_len,
            self.config.target_sum,
        )
        hit = TOKEN_CACHE.get(key)
        if hit is not None:
            TOKEN_CACHE.move_to_end(key)
            return hit
        totals = np.asarray(X.sum(axis=1)).ravel()
        out = rank_value_tokens(
            X[:, self.gene_idx_],
            self.gene_medians_,
            max_len=self.config.max_len,
            totals=totals,
            target_sum=self.config.target_sum,
        )
        out[0].flags.writeable = False
        out[1].flags.writeable = False
        if out[0].nbytes <= TOKEN_CACHE_BYTES:
            TOKEN_CACHE[key] = out
        while len(TOKEN_CACHE) > TOKEN_CACHE_SIZE or (
            sum(t.nbytes for t, _ in TOKEN_CACHE.values()) > TOKEN_CACHE_BYTES
        ):
            TOKEN_CACHE.popitem(last=False)
        return out

    # -- training -------------------------------------------------------------------------------
    def _device(self):
        import torch

        if self.config.device != "auto":
            return torch.device(self.config.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _check_emb_layer(self) -> int:
        layer, n = self.config.emb_layer, self.config.num_hidden_layers
        if not isinstance(layer, int | np.integer) or not -n <= int(layer) <= 0:
            msg = (
                f"emb_layer must be an integer from {-n} (token embeddings) to 0 (last layer); "
                f"-1 is the penultimate layer; got {layer!r}"
            )
            raise ValueError(msg)
        return int(layer)

    def _fit(self, X, X_val, *, progress):
        cfg = self.config
        self._check_emb_layer()
        self.gene_idx_ = select_highly_variable(X, cfg.n_top_genes, target_sum=cfg.target_sum)
        totals = np.asarray(X.sum(axis=1)).ravel()
        self.gene_medians_ = nonzero_median(
            X[:, self.gene_idx_], totals=totals, target_sum=cfg.target_sum
        )
        tokens, lengths = self._tokens(X)
        nonempty = np.flatnonzero(lengths > 0)
        if X_val is not None:
            train = (tokens, lengths, nonempty)
            v_tokens, v_lengths = self._tokens(X_val)
            val = (v_tokens, v_lengths, np.flatnonzero(v_lengths > 0))
        else:
            tr, va = train_val_split(
                len(nonempty), train_fraction=cfg.train_fraction, seed=cfg.seed
            )
            train = (tokens, lengths, nonempty[tr])
            val = (tokens, lengths, nonempty[va])
        if not train[2].size:
            msg = "Geneformer needs training cells with at least one expressed gene"
            raise ValueError(msg)
        self._train(train, val, n_cells=train[2].size + val[2].size, progress=progress)

    def _train(self, train, val, *, n_cells: int, progress: bool):
        """Train on ``train`` / ``val``: ``(tokens, lengths, cells)`` each, ``cells`` the rows
        of the token matrix that take part."""
        import torch
        from transformers import BertForMaskedLM, get_linear_schedule_with_warmup

        cfg = self.config
        n_genes = self.gene_idx_.size
        n_vocab = n_genes + N_SPECIAL_TOKENS
        distributed = cfg.deepspeed is not None
        if distributed:
            _init_single_process_env()
        world = int(os.environ.get("WORLD_SIZE", "1")) if distributed else 1
        rank = int(os.environ.get("RANK", "0")) if distributed else 0

        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        mask_rng = np.random.default_rng([cfg.seed, 0])
        bert = BertForMaskedLM(cfg.bert_config(n_genes))
        module = _masked_lm_module(bert)

        tr_tokens, tr_lengths_all, tr_cells = train
        lengths = tr_lengths_all[tr_cells]
        n_batches = math.ceil(tr_cells.size / cfg.batch_size)
        steps_per_epoch = max(1, n_batches // world) if distributed else n_batches
        self.max_epochs_ = epochs_for_budget(
            n_cells,
            sample_budget=cfg.sample_budget,
            min_epochs=cfg.min_epochs,
            max_epochs_cap=cfg.max_epochs_cap,
        )
        total_steps = self.max_epochs_ * steps_per_epoch
        warmup = min(cfg.warmup_steps, total_steps)

        no_decay = ("bias", "LayerNorm.weight")
        groups = [
            {
                "params": [p for n, p in module.named_parameters() if not n.endswith(no_decay)],
                "weight_decay": cfg.weight_decay,
            },
            {
                "params": [p for n, p in module.named_parameters() if n.endswith(no_decay)],
                "weight_decay": 0.0,
            },
        ]
        if distributed:
            try:
                import deepspeed
            except ImportError as err:  # pragma: no cover - needs GPUs and deepspeed
                msg = "deepspeed=... needs the deepspeed package (pip install deepspeed) and GPUs"
                raise ImportError(msg) from err
            ds_config = resolve_deepspeed_config(
                cfg.deepspeed, cfg, total_steps=total_steps, world_size=world
            )
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local_rank)
            engine, _, _, _ = deepspeed.initialize(
                model=module, model_parameters=groups, config=ds_config
            )
            device = engine.device
            train_module = engine
            optimizer = scheduler = None
            autocast_dtype = None
        else:
            device = self._device()
            module.to(device)
            train_module = torch.compile(module, dynamic=True) if cfg.torch_compile else module
            optimizer = torch.optim.AdamW(
                groups,
                lr=cfg.lr,
                betas=(cfg.adam_beta1, cfg.adam_beta2),
                eps=cfg.adam_epsilon,
                fused=device.type == "cuda",
            )
            scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
            autocast_dtype = (
                torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
            )

        def autocast():
            if autocast_dtype is None:
                import contextlib

                return contextlib.nullcontext()
            return torch.autocast(device_type=device.type, dtype=autocast_dtype)

        # validation batches: fixed cells, order and masks, made once and kept on the device
        va_tokens, va_lengths_all, va_cells = val
        if cfg.eval_max_cells is not None and va_cells.size > cfg.eval_max_cells:
            keep = np.sort(
                np.random.default_rng(cfg.seed + 2).choice(
                    va_cells.size, cfg.eval_max_cells, replace=False
                )
            )
            va_cells = va_cells[keep]
        va_cells = va_cells[np.argsort(-va_lengths_all[va_cells], kind="stable")]
        val_batches = [
            tuple(t.to(device) for t in batch)
            for batch in batch_stream(
                va_tokens, va_lengths_all,
                [va_cells[i : i + cfg.eval_batch_size]
                 for i in range(0, va_cells.size, cfg.eval_batch_size)],
                cfg, n_vocab, np.random.default_rng([cfg.seed, 1]), ensure_label=False,
            )
        ]

        def evaluate() -> float:
            module.eval()
            tot = torch.zeros((), dtype=torch.float64, device=device)
            n = 0
            with torch.no_grad():
                for mids, pos, tgt in val_batches:
                    with autocast():
                        loss = module(mids, pos, tgt)
                    tot += loss.double() * tgt.numel()
                    n += tgt.numel()
            module.train()
            value = float(tot) / max(n, 1)
            if distributed:
                t = torch.tensor([value], device=device)
                torch.distributed.all_reduce(t)
                value = float(t) / world
            return value

        history = {"step": [], "train_loss": [], "val_loss": []}
        best, best_state, bad = math.inf, None, 0
        has_val = len(val_batches) > 0
        step, seen, n_running, stop = 0, 0, 0, False
        running = torch.zeros((), dtype=torch.float64, device=device)
        module.train()
        bar = progress_bar(total_steps, desc="Geneformer", disable=not progress or rank != 0)
        t_start = time.perf_counter()
        for _epoch in range(self.max_epochs_):
            batches = length_grouped_batches(
                lengths, cfg.batch_size, rng, group=cfg.group_by_length
            )
            if distributed:
                batches = batches[: steps_per_epoch * world][rank::world]
            stream = batch_stream(
                tr_tokens, tr_lengths_all, [tr_cells[b] for b in batches], cfg, n_vocab, mask_rng,
                ensure_label=True,
            )
            for mids, pos, tgt in _prefetch(stream, device):
                with autocast():
                    loss = train_module(mids, pos, tgt)
                if distributed:
                    engine.backward(loss)
                    engine.step()
                else:
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                step += 1
                seen += mids.shape[0]
                running += loss.detach().double()  # stays on the device: no host sync per step
                n_running += 1
                bar.update(1)
                last = step == total_steps
                if step % cfg.eval_steps == 0 or last:
                    history["step"].append(step)
                    history["train_loss"].append(float(running) / n_running)
                    running.zero_()
                    n_running = 0
                    if has_val:
                        v = evaluate()
                        history["val_loss"].append(v)
                        bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}", val=f"{v:.3f}")
                        if v < best:
                            best, bad = v, 0
                            best_state = {
                                k: t.detach().to("cpu", copy=True)
                                for k, t in module.state_dict().items()
                            }
                        else:
                            bad += 1
                            if bad >= cfg.early_stopping_patience:
                                stop = True
                                break
            if stop:
                break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        # the training loop's wall time (evaluations included) and the cells it stepped on
        self.train_seconds_ = time.perf_counter() - t_start
        self.cells_seen_ = seen
        bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        self.module_ = module
        self.device_ = device
        self.autocast_dtype_ = autocast_dtype
        self.history_ = history
        self.steps_trained_ = step
        self.best_val_loss_ = best if has_val else float("nan")

    # -- embedding ------------------------------------------------------------------------------
    def _embed(self, X):
        import torch

        emb_layer = self._check_emb_layer()
        tokens, lengths = self._tokens(X)
        Z = np.zeros((len(lengths), self.config.hidden_size), dtype=np.float32)
        nonempty = np.flatnonzero(lengths > 0)
        order = nonempty[np.argsort(-lengths[nonempty], kind="stable")]
        bs = self.config.eval_batch_size
        chunks = [order[i : i + bs] for i in range(0, len(order), bs)]
        out = []
        self.module_.eval()
        with torch.no_grad():
            for (ids,) in _prefetch(
                ((_collate(tokens, lengths, idx),) for idx in chunks), self.device_
            ):
                if self.autocast_dtype_ is not None:
                    with torch.autocast(device_type=self.device_.type, dtype=self.autocast_dtype_):
                        out.append(self.module_.embed(ids, emb_layer))
                else:
                    out.append(self.module_.embed(ids, emb_layer))
        if out:
            Z[order] = torch.cat(out).cpu().numpy()  # one copy back to the host
        return Z

    def _n_parameters(self) -> int:
        return self.module_.model.num_parameters()

    @staticmethod
    def count_parameters(n_genes: int, config: GeneformerConfig | None = None) -> int:
        """Trainable parameters of the BERT for ``n_genes`` gene tokens (+ 2 special tokens).

        Instantiates ``BertForMaskedLM`` on PyTorch's ``meta`` device (no memory allocated);
        the output layer is tied to the token embeddings and counted once, as
        ``model.num_parameters()`` does.
        """
        import torch
        from transformers import BertForMaskedLM

        config = config or GeneformerConfig()
        with torch.device("meta"):
            model = BertForMaskedLM(config.bert_config(n_genes))
        return model.num_parameters()


# --------------------------------------------------------------------------------------------
# Training curves across noise levels (Supplementary Fig. S1)
# --------------------------------------------------------------------------------------------
def loss_curves(data, levels, *, corrupt, profile: str = "quick", seed: int = 0, **overrides):
    """Geneformer's training and validation loss at each noise level of one dataset.

    For every ``level``, ``corrupt(data, level, seed=seed)`` gives the noisy cells and the
    level's x value (for counts :func:`helpers.noise.thin`: mean UMIs per cell); a Geneformer of
    ``profile`` (with ``overrides``) is fitted on them (its own 80/20 validation split) and its
    ``history_`` becomes rows.  ``data`` is not modified.

    Returns
    -------
    pandas.DataFrame
        One row per evaluation: ``level``, ``x``, ``step``, ``train_loss``, ``val_loss``, and
        per fit ``best_val_loss``, ``steps_trained``, ``n_cells``, ``fit_seconds``.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> from helpers.noise import thin
    >>> cells = ad.AnnData(np.random.default_rng(0).poisson(3.0, (60, 30)).astype(np.float32))
    >>> curves = loss_curves(cells, [1.0, 0.3], corrupt=thin, profile="smoke",
    ...                      sample_budget=60, eval_steps=2)
    >>> sorted(curves["level"].unique().tolist()), list(curves.columns[:5])
    ([0.3, 1.0], ['level', 'x', 'step', 'train_loss', 'val_loss'])
    """
    import pandas as pd

    from .._checks import check_seed

    rows = []
    for level in levels:
        noisy, x = corrupt(data, level, seed=seed)
        config = GeneformerConfig.for_profile(profile, seed=check_seed(seed))
        model = GeneformerModel(config, **overrides)  # as make_model("Geneformer", ...) does
        t = time.perf_counter()
        model.fit(noisy, progress=False)
        seconds = time.perf_counter() - t
        h = model.history_
        for k, step in enumerate(h["step"]):
            rows.append({
                "level": float(level), "x": float(x), "step": int(step),
                "train_loss": float(h["train_loss"][k]),
                "val_loss": float(h["val_loss"][k]) if k < len(h["val_loss"]) else math.nan,
                "best_val_loss": float(model.best_val_loss_),
                "steps_trained": int(model.steps_trained_), "n_cells": int(noisy.n_obs),
                "fit_seconds": seconds,
            })
    return pd.DataFrame(rows)
