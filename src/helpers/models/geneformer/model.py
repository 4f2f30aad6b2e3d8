"""Geneformer itself: fit (tokens cached per count matrix), embed, count parameters, and its
loss curves (:func:`loss_curves`)."""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections import OrderedDict

import numpy as np
import scipy.sparse as sp

from ...progress import bar as progress_bar
from .._common import (
    BaseModel,
    epochs_for_budget,
    select_highly_variable,
    train_val_split,
)
from .config import GeneformerConfig, resolve_deepspeed_config
from .tokens import (
    N_SPECIAL_TOKENS,
    nonzero_median,
    rank_value_tokens,
)
from .training import (
    _collate,
    _init_single_process_env,
    _prefetch,
    batch_stream,
    length_grouped_batches,
    masked_lm_module,
)

__all__ = [
    "TOKEN_CACHE",
    "TOKEN_CACHE_BYTES",
    "TOKEN_CACHE_SIZE",
    "GeneformerModel",
    "loss_curves",
]


# --------------------------------------------------------------------------------------------
# Rank-value encoding
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# DeepSpeed configuration
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


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
        from .._common import align_genes

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
        module = masked_lm_module(bert)

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

    from ..._checks import check_seed

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
