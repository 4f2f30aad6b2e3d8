"""Throughput of the neural models' input pipelines and training, CPU and GPU, in one run.

Four parts (each can be skipped):

``tokens``
    The CPU side of Geneformer's input pipeline, today's code against the code before the
    pipeline was rewritten (``_ref_*`` below: a copy of ``helpers.models.geneformer`` at commit
    ``e68d950``): gene medians, rank-value tokenisation, and one epoch of collation + BERT
    masking, per cell, on synthetic counts at the quick and the paper settings.  Both paths
    must give identical tokens and identical masked batches (checked).
``curves``
    Validation-loss curves of the same Geneformer fits (fixed synthetic data, several seeds)
    with the model at commit ``e68d950`` (read from git) and with today's model.
``throughput``
    Per neural model (Geneformer, scVI): model-only step throughput (the network stepped on
    ready device tensors), the pipeline throughput of ``fit`` in the same run, their ratio,
    peak GPU memory, and the projected training hours of the paper grid
    (:func:`helpers.sweep.price`) at the pipeline throughput.
``scvi``
    scVI's epoch, broken down into data loading (scvi-tools' ``AnnDataLoader`` over the
    training cells) and compute (forward, backward and optimiser step on ready tensors).

Run::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/gpu_models.py --quick    # CPU, minutes
    PYTHONPATH=src python benchmarks/gpu_models.py                              # GPU sizes
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import subprocess
import sys
import time
import types
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
#: The last commit with the per-cell tokeniser, per-step padding loop and per-step host sync.
REFERENCE_COMMIT = "e68d950"


# --------------------------------------------------------------------------------------------
# The reference: the pipeline as it was at REFERENCE_COMMIT (copied, so it stays callable)
# --------------------------------------------------------------------------------------------
def _ref_scale_rows(X, totals, target_sum):
    scale = np.divide(target_sum, totals, out=np.zeros(len(totals)), where=totals > 0)
    out = sp.csr_matrix(X, dtype=np.float64, copy=True)
    out.data *= np.repeat(scale, np.diff(out.indptr))
    return out


def _ref_nonzero_median(X, *, totals=None, target_sum=1e4):
    X = sp.csr_matrix(X)
    if totals is None:
        totals = np.asarray(X.sum(axis=1)).ravel()
    N = _ref_scale_rows(X, np.asarray(totals, dtype=float), target_sum).tocsc()
    N.eliminate_zeros()
    med = np.full(N.shape[1], np.nan)
    for j in range(N.shape[1]):
        col = N.data[N.indptr[j] : N.indptr[j + 1]]
        if col.size:
            med[j] = np.median(col)
    return med


def _ref_rank_value_encode(X, gene_medians, *, max_len, totals=None, target_sum=1e4):
    X = sp.csr_matrix(X)
    gene_medians = np.asarray(gene_medians, dtype=float)
    if totals is None:
        totals = np.asarray(X.sum(axis=1)).ravel()
    N = _ref_scale_rows(X, np.asarray(totals, dtype=float), target_sum)
    valid = np.isfinite(gene_medians) & (gene_medians > 0)
    inv_med = np.where(valid, 1.0 / np.where(valid, gene_medians, 1.0), 0.0)
    out = []
    for i in range(N.shape[0]):
        lo, hi = N.indptr[i], N.indptr[i + 1]
        idx = N.indices[lo:hi]
        val = N.data[lo:hi] * inv_med[idx]
        keep = val > 0
        idx, val = idx[keep], val[keep]
        order = np.lexsort((idx, -val))[:max_len]
        out.append((idx[order] + 2).astype(np.int64))
    return out


def _ref_pad(seqs):
    import torch

    L = max(len(s) for s in seqs)
    ids = np.full((len(seqs), L), 0, dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    ids = torch.from_numpy(ids)
    return ids, (ids != 0).long()


def _ref_mask_tokens(ids, cfg, n_vocab, generator):
    import torch

    labels = ids.clone()
    candidates = ids != 0
    prob = torch.full(ids.shape, cfg.mask_probability)
    chosen = torch.bernoulli(prob, generator=generator).bool() & candidates
    labels[~chosen] = -100
    ids = ids.clone()
    u = torch.rand(ids.shape, generator=generator)
    to_mask = chosen & (u < cfg.mask_replace_fraction)
    to_random = (
        chosen
        & (u >= cfg.mask_replace_fraction)
        & (u < cfg.mask_replace_fraction + cfg.mask_random_fraction)
    )
    ids[to_mask] = 1
    random_tokens = torch.randint(2, n_vocab, ids.shape, generator=generator)
    ids[to_random] = random_tokens[to_random]
    return ids, labels


def _ref_epoch(seqs, batches, cfg, n_vocab, generator):
    """One epoch of the reference's per-step batch work (pad, mask, the empty-batch check)."""
    out = []
    for b in batches:
        ids, att = _ref_pad([seqs[k] for k in b])
        mids, labels = _ref_mask_tokens(ids, cfg, n_vocab, generator)
        if not bool((labels != -100).any()):
            labels[0, 0] = ids[0, 0]
        out.append((mids, labels))
    return out


def reference_module():
    """``helpers.models.geneformer`` as it was at :data:`REFERENCE_COMMIT` (read from git)."""
    src = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{REFERENCE_COMMIT}:src/helpers/models/geneformer.py"],
        check=True, capture_output=True, text=True,
    ).stdout
    mod = types.ModuleType("helpers.models._geneformer_reference")
    mod.__package__ = "helpers.models"
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(src, f"geneformer.py@{REFERENCE_COMMIT}", "exec"), mod.__dict__)
    return mod


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def synthetic_counts(n_cells: int, n_genes: int, *, target_nnz: int, seed: int = 0, labels=4):
    """Sparse negative-binomial counts with about ``target_nnz`` expressed genes per cell and
    ``labels`` clusters (cluster-specific gene programmes), built in row blocks."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(0.0, 1.5, n_genes)
    lo, hi = 1e-6, 1e6  # scale the means so that about target_nnz genes are non-zero per cell
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        expressed = np.sum(1 - (2 / (2 + mid * base)) ** 2)
        lo, hi = (mid, hi) if expressed < target_nnz else (lo, mid)
    base *= math.sqrt(lo * hi)
    prog = np.exp(rng.normal(0, 1.0, (labels, n_genes)) * (rng.random((labels, n_genes)) < 0.2))
    y = rng.integers(0, labels, n_cells)
    blocks = []
    for lo in range(0, n_cells, 2000):
        hi = min(n_cells, lo + 2000)
        mu = base * prog[y[lo:hi]] * rng.lognormal(0, 0.3, (hi - lo, 1))
        blocks.append(sp.csr_matrix(rng.negative_binomial(2, 2 / (2 + mu)).astype(np.float32)))
    return sp.vstack(blocks).tocsr(), y


def _adata(X, y):
    import anndata as ad

    a = ad.AnnData(X)
    a.var_names = [f"g{j}" for j in range(X.shape[1])]
    a.obs["label"] = y
    return a


def _best(f, repeats: int):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


# --------------------------------------------------------------------------------------------
# Part 1: the CPU side of the Geneformer pipeline, old against new
# --------------------------------------------------------------------------------------------
def tokens_part(settings, repeats: int) -> list[dict]:
    import torch

    from helpers.models.geneformer import (
        GeneformerConfig,
        batch_stream,
        length_grouped_batches,
        nonzero_median,
        rank_value_tokens,
    )

    rows = []
    for name, (n_cells, n_genes, nnz, max_len, batch) in settings.items():
        X, _ = synthetic_counts(n_cells, n_genes, target_nnz=nnz)
        cfg = GeneformerConfig(max_len=max_len, batch_size=batch)
        totals = np.asarray(X.sum(axis=1)).ravel()
        nonzero_median(X[:10], target_sum=1e4)  # compile outside the timings
        rank_value_tokens(X[:10], np.ones(n_genes), max_len=max_len)
        kw = {"totals": totals}
        t_med_old, med_old = _best(partial(_ref_nonzero_median, X, **kw), repeats)
        t_med_new, med = _best(partial(nonzero_median, X, **kw), repeats)
        assert np.array_equal(med_old, med, equal_nan=True), "medians differ"
        kw = {"max_len": max_len, "totals": totals}
        t_tok_old, seqs = _best(partial(_ref_rank_value_encode, X, med, **kw), repeats)
        t_tok_new, (tokens, lengths) = _best(partial(rank_value_tokens, X, med, **kw), repeats)
        assert all(
            np.array_equal(s, t[:n]) for s, t, n in zip(seqs, tokens, lengths, strict=True)
        ), "tokens differ"
        cells = np.flatnonzero(lengths > 0)
        n_vocab = n_genes + 2
        batches = length_grouped_batches(
            lengths[cells], batch, np.random.default_rng(0), group=True
        )
        batches = [cells[b] for b in batches]

        def old_epoch(seqs=seqs, batches=batches, cfg=cfg, n_vocab=n_vocab):
            return _ref_epoch(seqs, batches, cfg, n_vocab, torch.Generator().manual_seed(0))

        def new_epoch(tokens=tokens, lengths=lengths, batches=batches, cfg=cfg, n_vocab=n_vocab):
            rng = np.random.default_rng(0)
            return list(batch_stream(tokens, lengths, batches, cfg, n_vocab, rng,
                                      ensure_label=True))

        t_ep_old, ref = _best(old_epoch, repeats)
        t_ep_new, new = _best(new_epoch, repeats)
        # the same padded batches: the masked ids with the targets put back are the old padding
        chosen_old = chosen_new = 0
        for b, (mids, labels), (nmids, pos, tgt) in zip(batches, ref, new, strict=True):
            padded, _ = _ref_pad([seqs[k] for k in b])
            restored = nmids.flatten().long()
            restored[pos] = tgt
            assert torch.equal(restored.view_as(padded), padded), "collation differs"
            assert mids.shape == nmids.shape
            chosen_old += int((labels != -100).sum())
            chosen_new += len(tgt)
        n_tokens = int(lengths[cells].sum())
        n = X.shape[0]

        def per(t, n=n):
            return 1e6 * t / n

        old_total, new_total = t_tok_old + t_ep_old, t_tok_new + t_ep_new
        rows.append({
            "setting": name, "cells": n, "genes": n_genes, "tokens/cell": float(lengths.mean()),
            "expressed/cell": X.nnz / n, "masked_fraction_old": chosen_old / n_tokens,
            "masked_fraction_new": chosen_new / n_tokens,
            "max_len": max_len, "batch": batch,
            "median_us_old": per(t_med_old), "median_us_new": per(t_med_new),
            "tokenise_us_old": per(t_tok_old), "tokenise_us_new": per(t_tok_new),
            "epoch_us_old": per(t_ep_old), "epoch_us_new": per(t_ep_new),
            "tokenise_ratio": t_tok_old / t_tok_new, "epoch_ratio": t_ep_old / t_ep_new,
            "total_ratio": old_total / new_total,
            "with_medians_ratio": (old_total + t_med_old) / (new_total + t_med_new),
        })
        r = rows[-1]
        print(
            f"[tokens] {name}: {n} cells x {n_genes} genes ({r['expressed/cell']:.0f} expressed "
            f"per cell), {r['tokens/cell']:.0f} tokens/cell (max {max_len}), batch {batch}; "
            f"masked {r['masked_fraction_old']:.3f} / {r['masked_fraction_new']:.3f} of tokens; "
            f"per cell, old -> new:\n"
            f"    gene medians     {r['median_us_old']:8.2f} -> {r['median_us_new']:7.2f} us "
            f"({t_med_old / t_med_new:.1f}x)\n"
            f"    tokenise         {r['tokenise_us_old']:8.2f} -> {r['tokenise_us_new']:7.2f} us "
            f"({r['tokenise_ratio']:.1f}x)\n"
            f"    collate+mask     {r['epoch_us_old']:8.2f} -> {r['epoch_us_new']:7.2f} us "
            f"per epoch ({r['epoch_ratio']:.1f}x)\n"
            f"    tokenise + 1 epoch of collate+mask: {r['total_ratio']:.1f}x lower "
            f"({r['with_medians_ratio']:.1f}x with the medians); same tokens and batches",
            flush=True,
        )
    return rows


# --------------------------------------------------------------------------------------------
# Part 2: validation-loss curves, the model at REFERENCE_COMMIT against today's
# --------------------------------------------------------------------------------------------
def curves_part(seeds, *, n_cells: int, budget: float) -> list[dict]:
    from helpers.models.geneformer import GeneformerConfig, GeneformerModel

    ref = reference_module()
    X, y = synthetic_counts(n_cells, 300, target_nnz=80, seed=1)
    adata = _adata(X, y)
    overrides = {"max_len": 24, "batch_size": 16, "sample_budget": budget, "eval_steps": 50,
                 "n_threads": 1, "max_epochs_cap": 50, "early_stopping_patience": 100}
    rows, curves = [], {}
    for which, cls, cfg_cls in (
        ("reference", ref.GeneformerModel, ref.GeneformerConfig),
        ("today", GeneformerModel, GeneformerConfig),
    ):
        for seed in seeds:
            cfg = cfg_cls.for_profile("smoke", seed=seed)
            import dataclasses

            cfg = dataclasses.replace(cfg, **overrides)
            t = time.perf_counter()
            model = cls(cfg).fit(adata, progress=False)
            seconds = time.perf_counter() - t
            h = model.history_
            curves[which, seed] = np.asarray(h["val_loss"])
            rows.append({"code": which, "seed": seed, "seconds": seconds, "steps": h["step"],
                         "val_loss": h["val_loss"], "train_loss": h["train_loss"]})
            print(f"[curves] {which:9s} seed {seed}: {seconds:5.1f} s, val loss "
                  + " ".join(f"{v:.3f}" for v in h["val_loss"]), flush=True)
    ref_c = np.array([curves["reference", s] for s in seeds])
    new_c = np.array([curves["today", s] for s in seeds])
    if ref_c.ndim == 2 and ref_c.shape == new_c.shape:
        sd = np.sqrt((ref_c.var(axis=0, ddof=1) + new_c.var(axis=0, ddof=1)) / 2)
        diff = new_c.mean(axis=0) - ref_c.mean(axis=0)
        se = sd * np.sqrt(2 / len(seeds))
        print("[curves] step    reference (mean +- SD over seeds)   today             "
              "difference (/ its standard error)")
        for k, step in enumerate(rows[0]["steps"]):
            print(f"[curves] {step:5d}   {ref_c[:, k].mean():.3f} +- {ref_c[:, k].std(ddof=1):.3f}"
                  f"              {new_c[:, k].mean():.3f} +- {new_c[:, k].std(ddof=1):.3f}"
                  f"    {diff[k]:+.3f} ({diff[k] / se[k]:+.1f})")
        print(f"[curves] largest |difference| / standard error over the curve: "
              f"{np.max(np.abs(diff / se)):.1f} (seed noise: below ~2-3)", flush=True)
    return rows


# --------------------------------------------------------------------------------------------
# Part 3: model-only vs pipeline throughput, GPU memory, projected hours
# --------------------------------------------------------------------------------------------
def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device):
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device) -> float:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan


def geneformer_throughput(adata, cfg_overrides: dict, *, steps: int, device) -> dict:
    import torch
    from transformers import BertForMaskedLM

    from helpers.models import make_model
    from helpers.models.geneformer.training import (
        batch_stream,
        length_grouped_batches,
        masked_lm_module,
    )

    # the pipeline: fit() for about `steps` optimiser steps, validation at the end only, after
    # a short fit that pays the one-off start-up (kernels, allocator): ~5x the first time on a CPU
    n = adata.n_obs

    def fit(n_steps):
        return make_model("Geneformer", profile="paper", **{
            **cfg_overrides, "sample_budget": n_steps * cfg_overrides["batch_size"] / 0.8,
            "max_epochs_cap": None, "min_epochs": 1, "eval_steps": 10**9,
        }).fit(adata, progress=False)

    fit(4)
    _peak_reset(device)
    model = fit(steps)
    pipe = model.cells_seen_ / model.train_seconds_
    pipe_mem = _peak_gib(device)
    cfg = model.config

    # the model alone: the same network and optimiser on batches already on the device
    tokens, lengths = model._tokens(sp.csr_matrix(adata.X))
    cells = np.flatnonzero(lengths > 0)
    batches = length_grouped_batches(lengths[cells], cfg.batch_size, np.random.default_rng(0),
                                      group=True)[:16]
    ready = [tuple(t.to(device) for t in b) for b in batch_stream(
        tokens, lengths, [cells[b] for b in batches], cfg, model.gene_idx_.size + 2,
        np.random.default_rng(0), ensure_label=True)]
    torch.manual_seed(0)
    module = masked_lm_module(BertForMaskedLM(cfg.bert_config(model.gene_idx_.size))).to(device)
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, fused=device.type == "cuda")
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    ctx = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext

    def step(b):
        with ctx():
            loss = module(*b)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for b in ready[:3]:
        step(b)
    _sync(device)
    _peak_reset(device)
    k = max(steps // 2, len(ready))
    t = time.perf_counter()
    for i in range(k):
        step(ready[i % len(ready)])
    _sync(device)
    model_only = k * sum(b[0].shape[0] for b in ready) / len(ready) / (time.perf_counter() - t)
    t = time.perf_counter()
    model.embed(adata)
    _sync(device)
    embed_rate = n / (time.perf_counter() - t)
    return {"model": "Geneformer", "model_only_cells_s": model_only, "pipeline_cells_s": pipe,
            "ratio": pipe / model_only, "peak_gib_model_only": _peak_gib(device),
            "peak_gib_pipeline": pipe_mem, "embed_cells_s": embed_rate,
            "steps": model.steps_trained_, "batch": cfg.batch_size}


def _scvi_fit(adata, epochs: int, overrides: dict):
    from helpers.models import make_model

    m = make_model("SCVI", profile="paper", **{
        **overrides, "sample_budget": epochs * adata.n_obs, "max_epochs_cap": epochs,
        "early_stopping": False,
    })
    t = time.perf_counter()
    m.fit(adata, progress=False)
    return m, time.perf_counter() - t


def scvi_throughput(adata, overrides: dict, *, epochs: int, device) -> dict:
    """Pipeline: the time of ``epochs`` more epochs of ``fit`` (difference of two fits after a
    warm-up fit, so that neither start-up nor set-up is counted); model only: forward, backward
    and step on ready device batches; loading: one pass of scvi-tools' data loader over the
    training cells."""
    import torch

    _scvi_fit(adata, 1, overrides)  # one-off start-up, not counted
    _peak_reset(device)
    m1, t1 = _scvi_fit(adata, 1, overrides)
    mk, tk = _scvi_fit(adata, 1 + epochs, overrides)
    pipe_mem = _peak_gib(device)
    n_train = int(round(0.8 * adata.n_obs))
    epoch_s = (tk - t1) / epochs
    scvi_model = mk.model_
    bs = mk.config.batch_size
    idx = np.arange(n_train)
    t = time.perf_counter()
    loader = scvi_model._make_data_loader(
        adata=scvi_model.adata, indices=idx, batch_size=bs, shuffle=True
    )
    batches = list(loader)
    load_s = time.perf_counter() - t
    module = scvi_model.module.to(device)
    module.train()
    ready = [{k: v.to(device) for k, v in b.items()} for b in batches]
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, eps=0.01, weight_decay=1e-6)

    def step(b):
        _, _, losses = module(b, loss_kwargs={"kl_weight": 1.0})
        losses.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(ready[0])
    _sync(device)
    _peak_reset(device)
    t = time.perf_counter()
    for b in ready:
        step(b)
    _sync(device)
    compute_s = time.perf_counter() - t
    return {"model": "SCVI", "model_only_cells_s": n_train / compute_s,
            "pipeline_cells_s": n_train / epoch_s, "ratio": compute_s / epoch_s,
            "peak_gib_model_only": _peak_gib(device), "peak_gib_pipeline": pipe_mem,
            "epoch_s": epoch_s, "loading_s": load_s, "compute_s": compute_s,
            "other_s": epoch_s - load_s - compute_s, "batch": bs, "cells": adata.n_obs,
            "genes": adata.n_vars}


def projected_hours(rates: dict, tasks=("sc_protein", "sc_clonal", "sc_spatial")) -> list[dict]:
    import helpers as hp

    rows = []
    for task in tasks:
        t = hp.sweep.price(task, profile="paper", models=list(rates), throughput=rates)
        for model, r in t.iterrows():
            rows.append({"task": task, "model": model, "jobs": int(r.jobs),
                         "samples_seen": float(r.samples_seen), "hours": float(r.hours)})
            print(f"[plan] {task:11s} {model:10s} {int(r.jobs):4d} jobs, "
                  f"{r.samples_seen:.3g} samples seen, {r.hours:10.1f} h at "
                  f"{rates[model]:.0f} cells/s", flush=True)
    return rows


# --------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CPU sizes (minutes on a shared CPU)")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["tokens", "curves", "throughput", "scvi"])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write every measured row to this JSON file")
    args = ap.parse_args(argv)

    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    print(f"device: {where}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    out: dict = {"device": where}
    if args.quick:
        tok_settings = {"quick": (3000, 2000, 300, 16, 32), "paper": (1000, 20000, 2000, 512, 64)}
        gf = (1500, 2000, 300, {"max_len": 64, "batch_size": 32, "n_top_genes": 500}, 40)
        sc = (2000, 2000, 300, {"n_top_genes": None, "n_threads": 1}, 6)
    else:
        tok_settings = {"quick": (20000, 2000, 300, 16, 32),
                        "paper": (12000, 20000, 2500, 512, 64)}
        gf = (12000, 20000, 2500, {}, 400)
        sc = (12000, 20000, 2500, {}, 3)
    if "tokens" not in args.skip:
        out["tokens"] = tokens_part(tok_settings, args.repeats)
    if "curves" not in args.skip:
        out["curves"] = curves_part(args.seeds, n_cells=800, budget=8000)
    rates = {}
    if "throughput" not in args.skip:
        n, g, nnz, over, steps = gf
        X, y = synthetic_counts(n, g, target_nnz=nnz, seed=3)
        if args.quick:
            over = {**over, "n_threads": 1}
        r = geneformer_throughput(_adata(X, y), over, steps=steps, device=device)
        rates["Geneformer"] = r["pipeline_cells_s"]
        out["geneformer"] = r
        print(f"[throughput] Geneformer ({n} cells x {g} genes, batch {r['batch']}, "
              f"{r['steps']} steps): model only {r['model_only_cells_s']:.0f} cells/s, "
              f"pipeline {r['pipeline_cells_s']:.0f} cells/s, ratio {r['ratio']:.2f}; "
              f"embedding {r['embed_cells_s']:.0f} cells/s; peak GPU memory "
              f"{r['peak_gib_model_only']:.2f} / {r['peak_gib_pipeline']:.2f} GiB", flush=True)
    if "scvi" not in args.skip:
        n, g, nnz, over, epochs = sc
        X, y = synthetic_counts(n, g, target_nnz=nnz, seed=4)
        r = scvi_throughput(_adata(X, y), over, epochs=epochs, device=device)
        rates["SCVI"] = r["pipeline_cells_s"]
        out["scvi"] = r
        print(f"[scvi] {n} cells x {g} genes, batch {r['batch']}: epoch {r['epoch_s']:.2f} s = "
              f"loading {r['loading_s']:.2f} s ({r['loading_s'] / r['epoch_s']:.0%}) + compute "
              f"{r['compute_s']:.2f} s ({r['compute_s'] / r['epoch_s']:.0%}) + other "
              f"{r['other_s']:.2f} s (validation, Lightning); model only "
              f"{r['model_only_cells_s']:.0f} cells/s, pipeline {r['pipeline_cells_s']:.0f} "
              f"cells/s, ratio {r['ratio']:.2f}; peak GPU memory "
              f"{r['peak_gib_model_only']:.2f} / {r['peak_gib_pipeline']:.2f} GiB", flush=True)
    if rates:
        out["plan"] = projected_hours(rates)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    if importlib.util.find_spec("helpers") is None:
        sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
