"""Shared pieces of the four representation models: input checks, gene selection, splits, budgets.

Nothing here imports torch, scvi-tools or transformers, so that ``import helpers.models`` stays
fast; the neural models import their frameworks inside ``fit``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from helpers import profiles
from helpers._checks import check_seed, count_matrix
from helpers._torch import torch_threads

__all__ = [
    "NotFittedError",
    "RepresentationModel",
    "BaseModel",
    "check_counts",
    "align_genes",
    "select_highly_variable",
    "train_val_split",
    "epochs_for_budget",
    "pad_tokens",
]

class NotFittedError(RuntimeError, AttributeError):
    """A fitted attribute (embedding, parameter count) was asked of a model not yet fitted."""


@runtime_checkable
class RepresentationModel(Protocol):
    """What every model offers: ``fit`` on training cells, ``embed`` any cells.

    ``config`` is the dataclass of hyperparameters actually used; ``n_parameters`` is the number
    of trainable parameters (0 for random projection, the number of fitted values for PCA).
    ``n_parameters`` exists once the model is fitted (before, it raises :class:`NotFittedError`,
    an ``AttributeError``), so ``isinstance(model, RepresentationModel)`` holds for fitted models.
    """

    name: str
    config: Any

    def fit(
        self, data, *, y=None, val=None, y_val=None, progress: bool = True
    ) -> RepresentationModel:
        """Fit on the training samples ``data`` (targets ``y``, ``y_val`` for supervised models)."""

    def embed(self, adata) -> np.ndarray:
        """Embed the cells of ``adata`` (raw counts, the fitted genes) as ``n_cells × dim``."""

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters (fitted values for the linear models)."""


class BaseModel:
    """Small base class: config handling, fitted-state checks and the gene list of the fit.

    Subclasses set ``name`` and ``config_class`` and implement ``_fit(X, genes, X_val)`` and
    ``_embed(X)`` on validated CSR count matrices whose columns are the input genes of the fit.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = object

    def __init__(self, config=None, **overrides):
        if config is None:
            config = self.config_class()
        elif not isinstance(config, self.config_class):
            msg = f"config must be a {self.config_class.__name__}, got {type(config).__name__}"
            raise TypeError(msg)
        if overrides:
            config = replace_config(config, **overrides)
        if hasattr(config, "seed"):
            check_seed(config.seed)
        self.config = config
        self.genes_: np.ndarray | None = None
        self.history_: dict[str, list] = {}

    # -- public interface -------------------------------------------------------------------
    def fit(self, data, *, y=None, val=None, y_val=None, progress: bool = True):
        """Fit the model on the cells of ``data``.

        Parameters
        ----------
        data
            AnnData with raw integer counts in ``X`` (dense or sparse) and genes in ``var``.
        y, y_val
            Targets of ``data`` and ``val``; the cell models are unsupervised and ignore them
            (the arguments are part of the protocol that every model of every modality shares).
        val
            Optional AnnData of validation cells (same genes) for early stopping of the neural
            models; by default they split ``data`` 80/20 with ``config.seed``.
        progress
            Show a tqdm progress bar while training.

        Returns
        -------
        The fitted model (``self``).
        """
        X = check_counts(data, name="data")
        genes = np.asarray(data.var_names, dtype=object)
        X_val = None
        if val is not None:
            X_val = align_genes(val, genes, name="val")
        self.genes_ = genes
        try:
            with torch_threads(getattr(self.config, "n_threads", None)):
                self._fit(X, X_val, progress=progress)
        except BaseException:
            self.genes_ = None
            raise
        return self

    def embed(self, adata) -> np.ndarray:
        """Embed the cells of ``adata`` with the transform learnt in :meth:`fit`.

        ``adata`` must contain every gene of the training data (matched by name, any order;
        extra genes are ignored).  Returns a float32 array of shape ``(n_cells, dim)``.
        """
        self._check_fitted()
        X = align_genes(adata, self.genes_, name="adata")
        with torch_threads(getattr(self.config, "n_threads", None)):
            Z = np.asarray(self._embed(X), dtype=np.float32)
        return Z

    def fit_embed(self, data, *, y=None, val=None, progress: bool = True) -> np.ndarray:
        """Fit on ``data`` and return the embedding of the same samples."""
        return self.fit(data, y=y, val=val, progress=progress).embed(data)

    @property
    def is_fitted(self) -> bool:
        return self.genes_ is not None

    @property
    def n_parameters(self) -> int:
        self._check_fitted()
        return int(self._n_parameters())

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        cfg = self.config
        return f"{type(self).__name__}(profile={cfg.profile!r}, seed={cfg.seed}, {state})"

    # -- to implement ------------------------------------------------------------------------
    def _fit(self, X: sp.csr_matrix, X_val: sp.csr_matrix | None, *, progress: bool) -> None:
        raise NotImplementedError

    def _embed(self, X: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _n_parameters(self) -> int:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            msg = f"{self.name} model is not fitted yet: call .fit(data) first"
            raise NotFittedError(msg)


def replace_config(config, **overrides):
    """``dataclasses.replace`` with a clear error for unknown fields."""
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        msg = (
            f"unknown hyperparameter(s) {unknown} for {type(config).__name__}; "
            f"valid: {sorted(fields)}"
        )
        raise ValueError(msg)
    return dataclasses.replace(config, **overrides)


def check_profile(profile: str) -> str:
    """``profile`` if it names one of :data:`helpers.profiles.NAMES`, else ``ValueError``."""
    if profile not in profiles.NAMES:
        msg = f"profile must be one of {profiles.NAMES}, got {profile!r}"
        raise ValueError(msg)
    return profile


def check_counts(adata, *, name: str = "adata") -> sp.csr_matrix:
    """Validate raw counts in ``adata.X`` and return them as a new float32 CSR matrix.

    Raises ``ValueError`` for an empty matrix, duplicated gene names, or values that are not
    finite non-negative integers below 2**24 (normalised or log-transformed data are refused).
    Values are checked in their own dtype, so dense and sparse ``X`` are judged alike, and
    ``adata`` is never modified (duplicates are summed and zeros dropped in the copy only).
    """
    X = getattr(adata, "X", None)
    if X is None or not hasattr(adata, "var_names"):
        msg = f"{name} must be an AnnData with raw counts in .X"
        raise ValueError(msg)
    if adata.n_obs == 0 or adata.n_vars == 0:
        msg = f"{name} is empty ({adata.n_obs} cells x {adata.n_vars} genes)"
        raise ValueError(msg)
    if not adata.var_names.is_unique:
        msg = f"{name}.var_names are not unique; call .var_names_make_unique() first"
        raise ValueError(msg)
    return count_matrix(X, name=f"{name}.X")


def align_genes(adata, genes: np.ndarray, *, name: str = "adata") -> sp.csr_matrix:
    """Counts of ``adata`` restricted and ordered to ``genes`` (by name).

    Raises ``ValueError`` if any gene of ``genes`` is missing from ``adata.var_names``.
    """
    X = check_counts(adata, name=name)
    var = adata.var_names
    if len(var) == len(genes) and np.array_equal(np.asarray(var, dtype=object), genes):
        return X
    idx = var.get_indexer(genes)
    missing = np.asarray(genes)[idx < 0]
    if missing.size:
        shown = ", ".join(map(str, missing[:5]))
        msg = (
            f"{name} lacks {missing.size} of the {len(genes)} genes the model was fitted on "
            f"(e.g. {shown}); embed cells measured on the training genes"
        )
        raise ValueError(msg)
    return X[:, idx].tocsr()


def select_highly_variable(
    X: sp.csr_matrix, n_top_genes: int | None, *, target_sum: float = 1e4
) -> np.ndarray:
    """Indices (ascending) of the ``n_top_genes`` most variable genes of a count matrix.

    Uses scanpy's ``highly_variable_genes(flavor="seurat")`` on per-cell normalised
    (``target_sum``), log1p-transformed counts, ranks genes by normalised dispersion (ties broken
    by gene order) and takes exactly ``n_top_genes``.  ``None`` or ``n_top_genes >= n_genes``
    keeps every gene.
    """
    n_genes = X.shape[1]
    if n_top_genes is None or n_top_genes >= n_genes:
        return np.arange(n_genes)
    if n_top_genes < 1:
        msg = f"n_top_genes must be a positive integer or None, got {n_top_genes}"
        raise ValueError(msg)
    import warnings

    import anndata as ad
    import scanpy as sc

    tmp = ad.AnnData(sp.csr_matrix(X, dtype=np.float32, copy=True))  # any sparse or dense X
    with warnings.catch_warnings():
        # at the lowest depths some cells keep no molecule; they stay all-zero, as they should
        warnings.filterwarnings("ignore", message="Some cells have zero counts")
        sc.pp.normalize_total(tmp, target_sum=target_sum)
    sc.pp.log1p(tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.highly_variable_genes(tmp, flavor="seurat", n_top_genes=n_top_genes)
    disp = tmp.var["dispersions_norm"].to_numpy(dtype=float)
    disp = np.where(np.isfinite(disp), disp, -np.inf)
    order = np.argsort(-disp, kind="stable")
    return np.sort(order[:n_top_genes])


def train_val_split(
    n_cells: int, *, train_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train/validation indices (``train_fraction`` of the cells for training).

    At least one cell goes to training; fewer than 2 cells left for validation gives an empty
    validation set (no early stopping).
    """
    if not 0 < train_fraction <= 1:
        msg = f"train_fraction must be in (0, 1], got {train_fraction}"
        raise ValueError(msg)
    perm = np.random.default_rng(check_seed(seed)).permutation(n_cells)
    n_train = max(1, int(round(train_fraction * n_cells)))
    train, val = np.sort(perm[:n_train]), np.sort(perm[n_train:])
    if val.size < 2:
        return np.arange(n_cells), np.array([], dtype=int)
    return train, val


def epochs_for_budget(
    n_cells: int, *, sample_budget: float, min_epochs: int = 1, max_epochs_cap: int | None = None
) -> int:
    """Number of epochs for a constant training budget, as in the paper's S.II.3–4.

    ``max_epochs = max(min_epochs, floor(sample_budget / n_cells))`` capped at
    ``max_epochs_cap``: the number of cells seen in training (``epochs × n_cells``) is held at
    ``sample_budget`` whatever the dataset size, so for ``n_cells ≥ batch_size`` the number of
    optimiser steps is held near ``sample_budget / batch_size``.  The paper's runs used
    ``sample_budget = 1e7`` for scVI and ``1e8`` for Geneformer (``max(1, int(k · 10^7 / N))``,
    k = 1 and 10).

    Examples
    --------
    >>> epochs_for_budget(5000, sample_budget=1e7)
    2000
    >>> epochs_for_budget(20_000_000, sample_budget=1e7)
    1
    >>> epochs_for_budget(100, sample_budget=1e5, max_epochs_cap=300)
    300
    """
    if n_cells < 1:
        msg = f"n_cells must be positive, got {n_cells}"
        raise ValueError(msg)
    epochs = max(int(min_epochs), int(math.floor(sample_budget / n_cells)))
    if max_epochs_cap is not None:
        epochs = min(epochs, int(max_epochs_cap))
    return max(1, epochs)


def pad_tokens(seqs, pad_id: int):
    """Token sequences of different lengths as one right-padded batch.

    Returns ``(ids, attention_mask)``: ``torch`` int64 tensors of shape ``(len(seqs), longest)``,
    the mask 1 on tokens and 0 on padding.

    Examples
    --------
    >>> ids, mask = pad_tokens([np.array([5, 6, 7]), np.array([8])], pad_id=0)
    >>> ids.tolist(), mask.tolist()
    ([[5, 6, 7], [8, 0, 0]], [[1, 1, 1], [1, 0, 0]])
    """
    import torch

    longest = max(len(s) for s in seqs)
    ids = np.full((len(seqs), longest), pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    ids = torch.from_numpy(ids)
    return ids, (ids != pad_id).long()
