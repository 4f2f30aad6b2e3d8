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

from . import config, model, tokens, training
from .config import GeneformerConfig, resolve_deepspeed_config
from .model import TOKEN_CACHE, TOKEN_CACHE_BYTES, TOKEN_CACHE_SIZE, GeneformerModel, loss_curves
from .tokens import (
    MASK_TOKEN,
    N_SPECIAL_TOKENS,
    PAD_TOKEN,
    nonzero_median,
    rank_value_encode,
    rank_value_tokens,
)
from .training import batch_stream, bernoulli_positions, length_grouped_batches, mask_block

__all__ = [
    "GeneformerConfig",
    "GeneformerModel",
    "MASK_TOKEN",
    "N_SPECIAL_TOKENS",
    "PAD_TOKEN",
    "loss_curves",
    "nonzero_median",
    "rank_value_encode",
    "rank_value_tokens",
    "resolve_deepspeed_config",
]
