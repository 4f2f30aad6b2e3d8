"""The two linear baselines of the paper (Supplementary S.II.1–2): random projection and PCA."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._common import BaseModel, check_profile, select_highly_variable

__all__ = [
    "RandomProjectionConfig",
    "RandomProjectionModel",
    "PCAConfig",
    "PCAModel",
    "normalize_log1p",
]


@dataclass(frozen=True)
class RandomProjectionConfig:
    """Hyperparameters of the random projection (the same at every profile).

    ``random_state`` is fixed at 42 as in the paper, so that every run projects with the same
    matrix; ``seed`` is recorded but does not enter (the projection does not depend on data).
    """

    n_components: int = 16
    random_state: int = 42
    profile: str = "quick"
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str = "quick", *, seed: int = 0) -> RandomProjectionConfig:
        return cls(profile=check_profile(profile), seed=seed)


class RandomProjectionModel(BaseModel):
    """Gaussian random projection of raw counts to 16 dimensions (paper S.II.1).

    ``sklearn.random_projection.GaussianRandomProjection(n_components=16, random_state=42)``
    applied to the counts as they are: no normalisation, no gene selection.  Fitting only fixes
    the number of input genes.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> from helpers.models import make_model
    >>> adata = ad.AnnData(np.random.default_rng(0).poisson(1.0, (50, 30)).astype(np.float32))
    >>> make_model("RandomProjection").fit(adata).embed(adata).shape
    (50, 16)
    """

    name = "RandomProjection"
    config_class = RandomProjectionConfig

    def _fit(self, X, X_val, *, progress):
        from sklearn.random_projection import GaussianRandomProjection

        self.projection_ = GaussianRandomProjection(
            n_components=self.config.n_components, random_state=self.config.random_state
        ).fit(X[: min(5, X.shape[0])])

    def _embed(self, X):
        return np.asarray(self.projection_.transform(X))

    def _n_parameters(self) -> int:
        return 0


@dataclass(frozen=True)
class PCAConfig:
    """Hyperparameters of the PCA baseline (the same at every profile).

    ``n_components = 16`` and the SVD ``random_state = 0x5EED`` follow the authors' methods
    notes (the published S.II.2 leaves them out); 16 is also the dimension of the other 16-d
    embeddings.  ``max_value`` clips standardised values as ``scanpy.pp.scale`` does (``None``:
    no clipping, as the paper describes none).
    """

    n_components: int = 16
    n_top_genes: int | None = 750
    target_sum: float = 1e4
    scale: bool = True
    max_value: float | None = None
    random_state: int = 0x5EED
    profile: str = "quick"
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str = "quick", *, seed: int = 0) -> PCAConfig:
        return cls(profile=check_profile(profile), seed=seed)


def normalize_log1p(X: sp.csr_matrix, *, target_sum: float = 1e4) -> sp.csr_matrix:
    """``log1p`` of counts scaled to ``target_sum`` per cell (cells without counts stay zero).

    Examples
    --------
    >>> import scipy.sparse as sp, numpy as np
    >>> normalize_log1p(sp.csr_matrix(np.array([[1.0, 3.0]])), target_sum=4).toarray()
    array([[0.69314718, 1.38629436]])
    """
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    totals = np.asarray(X.sum(axis=1)).ravel()
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    X = sp.diags(scale) @ X
    X = sp.csr_matrix(X)
    np.log1p(X.data, out=X.data)
    return X


class PCAModel(BaseModel):
    """PCA of standardised log-normalised expression of 750 highly variable genes (S.II.2).

    Fit (training cells only): scale counts to ``target_sum`` per cell, ``log1p``, select the
    ``n_top_genes`` highly variable genes (scanpy, flavor ``"seurat"``), standardise each gene
    with its training mean and SD (ddof = 1, as ``scanpy.pp.scale``), optionally clip at
    ``max_value``, and compute ``n_components`` components with ``sklearn`` ``TruncatedSVD``.
    Embedding new cells applies the same genes, means, SDs and components.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> from helpers.models import make_model
    >>> adata = ad.AnnData(np.random.default_rng(0).poisson(2.0, (80, 40)).astype(np.float32))
    >>> make_model("PCA", n_top_genes=30).fit(adata).embed(adata).shape
    (80, 16)
    """

    name = "PCA"
    config_class = PCAConfig

    def _standardise(self, X: sp.csr_matrix) -> np.ndarray:
        L = normalize_log1p(X, target_sum=self.config.target_sum)[:, self.hvg_idx_].toarray()
        return self._scale(L)

    def _scale(self, L: np.ndarray) -> np.ndarray:
        if self.config.scale:
            L -= self.mean_
            L /= self.sd_
            if self.config.max_value is not None:
                np.clip(L, -np.inf, self.config.max_value, out=L)
        return L

    def _fit(self, X, X_val, *, progress):
        from sklearn.decomposition import TruncatedSVD

        cfg = self.config
        self.hvg_idx_ = select_highly_variable(X, cfg.n_top_genes, target_sum=cfg.target_sum)
        n_hvg = self.hvg_idx_.size
        if n_hvg <= cfg.n_components:
            msg = (
                f"PCA needs more genes than components: {n_hvg} genes for "
                f"{cfg.n_components} components"
            )
            raise ValueError(msg)
        if X.shape[0] < cfg.n_components:
            msg = f"PCA needs at least {cfg.n_components} training cells, got {X.shape[0]}"
            raise ValueError(msg)
        L = normalize_log1p(X, target_sum=cfg.target_sum)[:, self.hvg_idx_].toarray()
        self.mean_ = L.mean(axis=0)
        sd = L.std(axis=0, ddof=1) if L.shape[0] > 1 else np.zeros(n_hvg)
        sd[sd == 0] = 1.0
        self.sd_ = sd
        Z = self._scale(L)
        self.svd_ = TruncatedSVD(n_components=cfg.n_components, random_state=cfg.random_state)
        self.train_embedding_ = self.svd_.fit_transform(Z)

    def fit(self, data, *, y=None, val=None, y_val=None, progress: bool = True):
        super().fit(data, y=y, val=val, y_val=y_val, progress=progress)
        self.hvg_genes_ = self.genes_[self.hvg_idx_]
        return self

    fit.__doc__ = BaseModel.fit.__doc__

    def _embed(self, X):
        return self._standardise(X) @ self.svd_.components_.T

    def _n_parameters(self) -> int:
        n_hvg = self.hvg_idx_.size
        return self.svd_.components_.size + (2 * n_hvg if self.config.scale else 0)
