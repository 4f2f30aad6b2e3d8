"""scVI (scvi-tools ``scvi.model.SCVI``), the paper's shallow architecture (S.II.4, Table S2)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np

from ..progress import enabled as progress_enabled
from ._common import (
    BaseModel,
    check_profile,
    epochs_for_budget,
    select_highly_variable,
    train_val_split,
)

__all__ = ["SCVIConfig", "SCVIModel"]


@dataclass(frozen=True)
class SCVIConfig:
    """Hyperparameters of scVI (Supplementary Table S2) and of its training budget.

    Architecture and training values are Table S2's.  The values the published table leaves
    blank are the authors' (methods notes in their working repository): learning rate 1e-3,
    weight decay 1e-6, minimum learning rate 1e-6; these are also scvi-tools' defaults.  The
    plateau schedule's factor (0.6) and patience (30 epochs) are scvi-tools' defaults.

    Training length: ``max_epochs = max(min_epochs, floor(sample_budget / n_cells))`` capped at
    ``max_epochs_cap`` (:func:`~helpers.models.epochs_for_budget`), with ``n_cells`` the number of
    cells given to ``fit``; the paper used ``sample_budget = 1e7`` (one epoch at 10 million cells).

    ``n_threads`` sets ``torch.set_num_threads`` during fit/embed (``None``: unchanged); the
    smoke and quick profiles use one thread (two threads on two shared cores measured 7x
    slower: 17 s against 2.3 s for a smoke fit of 576 cells).

    Profiles
    --------
    ``paper``
        Table S2 exactly, all genes, ``sample_budget = 1e7``, no epoch cap (2,000 epochs at
        5,000 cells unless early stopping ends training first: a GPU job).
    ``quick``
        2,000 highly variable genes (selected on the training cells), ``sample_budget = 1e5``
        (20 epochs, 160 steps at 5,000 cells), at most 200 epochs.  One epoch at 5,000 cells
        costs ~1.1 s at 2,000 genes and ~14 s at 20,000 on two free CPU cores, so a quick fit
        takes ~20–25 s (measured 50–65 s on two cores shared with other jobs).
    ``smoke``
        500 highly variable genes, ``sample_budget = 5e3``, at most 10 epochs: seconds on ~500
        cells.
    """

    n_hidden: int = 512
    n_latent: int = 16
    n_layers: int = 1
    dropout_rate: float = 0.1
    dispersion: str = "gene"
    gene_likelihood: str = "zinb"
    latent_distribution: str = "normal"
    optimizer: str = "Adam"
    lr: float = 1e-3
    weight_decay: float = 1e-6
    eps: float = 0.01
    batch_size: int = 512
    reduce_lr_on_plateau: bool = True
    lr_scheduler_metric: str = "elbo_validation"
    lr_factor: float = 0.6
    lr_patience: int = 30
    lr_min: float = 1e-6
    n_epochs_kl_warmup: int = 1
    max_kl_weight: float = 1.0
    min_kl_weight: float = 0.0
    train_fraction: float = 0.8
    shuffle_split: bool = True
    early_stopping: bool = True
    early_stopping_monitor: str = "elbo_validation"
    early_stopping_patience: int = 5
    early_stopping_min_delta: float = 0.01
    sample_budget: float = 1e7
    min_epochs: int = 1
    max_epochs_cap: int | None = None
    n_top_genes: int | None = None
    embed_batch_size: int = 1024
    accelerator: str = "auto"
    n_threads: int | None = None
    profile: str = "paper"
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str = "quick", *, seed: int = 0) -> SCVIConfig:
        check_profile(profile)
        return cls(**SCVI_PROFILES[profile], profile=profile, seed=seed)

    def architecture_kwargs(self) -> dict:
        """Keyword arguments of ``scvi.model.SCVI`` / ``scvi.module.VAE`` for the architecture."""
        return {
            "n_hidden": self.n_hidden,
            "n_latent": self.n_latent,
            "n_layers": self.n_layers,
            "dropout_rate": self.dropout_rate,
            "dispersion": self.dispersion,
            "gene_likelihood": self.gene_likelihood,
            "latent_distribution": self.latent_distribution,
        }


@contextlib.contextmanager
def _quiet_lightning(printed: io.StringIO | None = None):
    """Lightning's and scvi-tools' loggers at ERROR and their warnings off while training.

    scvi-tools' early-stopping callback ``print``s its reason on teardown (no logger to set), so
    standard output is captured into ``printed`` when one is given (only when no progress bar
    shows: Lightning draws its bar on standard output).
    """
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "scvi")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            contextlib.redirect_stdout(printed)
            if printed is not None
            else contextlib.nullcontext(),
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings("ignore", module=r"(lightning|pytorch_lightning|scvi)")
            warnings.filterwarnings(
                "ignore", message=r".*(num_workers|does not have many workers).*"
            )
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


#: What each profile changes of :class:`SCVIConfig` (``paper``: Tables S1/S2 as they are).
SCVI_PROFILES: dict[str, dict] = {
    "paper": {},
    "quick": {"n_top_genes": 2000, "sample_budget": 1e5, "max_epochs_cap": 200, "n_threads": 1},
    "smoke": {"n_top_genes": 500, "sample_budget": 5e3, "max_epochs_cap": 10, "n_threads": 1},
}


class SCVIModel(BaseModel):
    """scVI variational autoencoder; the embedding is the posterior mean of the 16-d latent.

    ``scvi.model.SCVI`` with one hidden layer of 512 units, 16 latent dimensions, dropout 0.1,
    gene-specific dispersion and a ZINB likelihood, trained with Adam (eps 0.01) in batches of
    512 on 80 % of the given cells, KL warm-up over the first epoch, a reduce-on-plateau
    learning-rate schedule and early stopping on the validation ELBO (patience 5, min delta
    0.01).  Raw counts go in unchanged (all genes at the paper profile; 2,000 highly variable
    genes selected on the training cells at the quick profile).  Uses a GPU when one is
    available (``accelerator="auto"``, one device).

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> from helpers.models import make_model
    >>> adata = ad.AnnData(np.random.default_rng(0).poisson(2.0, (200, 50)).astype(np.float32))
    >>> model = make_model("SCVI", profile="smoke").fit(adata, progress=False)
    >>> model.embed(adata).shape
    (200, 16)
    """

    name = "SCVI"
    config_class = SCVIConfig

    def _fit(self, X, X_val, *, progress):
        import anndata as ad
        import scvi

        cfg = self.config
        self.gene_idx_ = select_highly_variable(X, cfg.n_top_genes)
        X = X[:, self.gene_idx_].tocsr()
        X = X[np.asarray(X.sum(axis=1)).ravel() > 0]  # cells without counts carry no signal
        if X_val is not None:
            X_val = X_val[:, self.gene_idx_].tocsr()
            X_val = X_val[np.asarray(X_val.sum(axis=1)).ravel() > 0]
            train_idx = np.arange(X.shape[0])
            val_idx = np.arange(X.shape[0], X.shape[0] + X_val.shape[0])
            import scipy.sparse as sp

            X_all = sp.vstack([X, X_val]).tocsr()
        else:
            X_all = X
            train_idx, val_idx = train_val_split(
                X.shape[0], train_fraction=cfg.train_fraction, seed=cfg.seed
            )
        if X_all.shape[0] < 2:
            msg = "SCVI needs at least 2 cells with counts to train"
            raise ValueError(msg)
        if train_idx.size % cfg.batch_size == 1:  # a batch of one cell breaks BatchNorm
            if val_idx.size:
                val_idx = np.sort(np.append(val_idx, train_idx[-1]))
            train_idx = train_idx[:-1]
        has_val = val_idx.size >= 2
        n_cells = X_all.shape[0]
        self.max_epochs_ = epochs_for_budget(
            n_cells,
            sample_budget=cfg.sample_budget,
            min_epochs=cfg.min_epochs,
            max_epochs_cap=cfg.max_epochs_cap,
        )

        adata = ad.AnnData(X_all)
        adata.var_names = [str(g) for g in self.genes_[self.gene_idx_]]
        show_bar = progress and progress_enabled()
        printed = None if show_bar else io.StringIO()
        with _quiet_lightning(printed):
            scvi.settings.seed = cfg.seed
            scvi.model.SCVI.setup_anndata(adata)
            model = scvi.model.SCVI(adata, **cfg.architecture_kwargs())
            plan_kwargs = {
                "optimizer": cfg.optimizer,
                "lr": cfg.lr,
                "weight_decay": cfg.weight_decay,
                "eps": cfg.eps,
                "n_epochs_kl_warmup": cfg.n_epochs_kl_warmup,
                "max_kl_weight": cfg.max_kl_weight,
                "min_kl_weight": cfg.min_kl_weight,
                "reduce_lr_on_plateau": cfg.reduce_lr_on_plateau and has_val,
                "lr_scheduler_metric": cfg.lr_scheduler_metric,
                "lr_factor": cfg.lr_factor,
                "lr_patience": cfg.lr_patience,
                "lr_min": cfg.lr_min,
            }
            trainer_kwargs = {}
            if cfg.early_stopping and has_val:
                trainer_kwargs.update(
                    early_stopping=True,
                    early_stopping_monitor=cfg.early_stopping_monitor,
                    early_stopping_patience=cfg.early_stopping_patience,
                    early_stopping_min_delta=cfg.early_stopping_min_delta,
                )
            model.train(
                max_epochs=self.max_epochs_,
                accelerator=cfg.accelerator,
                devices=1,
                batch_size=cfg.batch_size,
                datasplitter_kwargs={
                    "external_indexing": [
                        train_idx,
                        val_idx if has_val else np.array([], dtype=int),
                        np.array([], dtype=int),
                    ]
                },
                plan_kwargs=plan_kwargs,
                check_val_every_n_epoch=1 if has_val else None,
                enable_progress_bar=show_bar,
                **trainer_kwargs,
            )
        self.model_ = model
        self.stop_reason_ = (printed.getvalue().strip() or None) if printed else None
        self.history_ = {
            key: df.iloc[:, 0].astype(float).tolist()
            for key, df in model.history.items()
            if key in ("elbo_train", "elbo_validation", "reconstruction_loss_train")
        }
        self.epochs_trained_ = len(self.history_.get("elbo_train", []))

    def _embed(self, X):
        import anndata as ad

        adata = ad.AnnData(X[:, self.gene_idx_].tocsr())
        adata.var_names = [str(g) for g in self.genes_[self.gene_idx_]]
        with _quiet_lightning():
            return self.model_.get_latent_representation(
                adata, give_mean=True, batch_size=self.config.embed_batch_size
            )

    def _n_parameters(self) -> int:
        return sum(p.numel() for p in self.model_.module.parameters())

    @staticmethod
    def count_parameters(n_genes: int, config: SCVIConfig | None = None) -> int:
        """Trainable parameters of scVI for ``n_genes`` input genes (no batch covariates).

        Instantiates ``scvi.module.VAE`` with the configuration's architecture on PyTorch's
        ``meta`` device (no memory is allocated) and counts its parameters.
        """
        import torch
        from scvi.module import VAE

        config = config or SCVIConfig()
        with torch.device("meta"):
            module = VAE(n_input=int(n_genes), **config.architecture_kwargs())
        return sum(p.numel() for p in module.parameters())
