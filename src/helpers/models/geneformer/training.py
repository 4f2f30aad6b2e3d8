"""Geneformer's masked-language-model training: the BERT module, batches grouped by length,
masks, and a prefetching batch stream."""

from __future__ import annotations

import math
import os

import numpy as np

from .config import GeneformerConfig
from .tokens import (
    MASK_TOKEN,
    N_SPECIAL_TOKENS,
    PAD_TOKEN,
)

__all__ = [
    "batch_stream",
    "bernoulli_positions",
    "length_grouped_batches",
    "mask_block",
    "masked_lm_module",
]


def masked_lm_module(bert_mlm):
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
