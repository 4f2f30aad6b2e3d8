"""What an estimate returns (:class:`ProbeResult`), and the estimator's version."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "VERSION",
    "MIN_EVAL",
    "MIN_TRAIN",
    "ProbeResult",
]


#: Version of this module's estimates: changed whenever a default estimate changes, so that a
#: sweep's results store (whose job ids include it, :class:`helpers.sweep.Job`) never reuses
#: values measured by an earlier estimator.
VERSION = "2026.12.07.1"


MIN_EVAL = 50


MIN_TRAIN = 50


@dataclass
class ProbeResult:
    """Everything :func:`estimate_mi` computed.

    Attributes
    ----------
    mi
        Estimated mutual information in bits (the mean of ``pmi``).
    pmi
        Pointwise MI (bits) of each evaluation sample, aligned with ``eval_idx``.
    train_idx, val_idx, eval_idx
        Sample indices used to fit the networks, to early-stop them and fit the canonical
        directions, and to estimate the MI.
    n_pairs
        Number of canonical latent pairs used for the reported estimate.
    mi_by_pairs
        KSG estimate (bits) on the evaluation samples: of each canonical pair alone with
        ``select="sum"`` (of the path the first half reports), otherwise of the ``m`` leading
        pairs jointly, ``m = 1 … len``.
    canonical_corr
        Canonical correlations of the latents on the validation part.
    latent_x, latent_y
        Latents of all samples (``latent_y`` is ``None`` for class labels).
    embedding_x, embedding_y
        Canonical coordinates of the evaluation samples that entered KSG (``embedding_y``
        is the integer class code for labels).
    y_kind
        ``"continuous"`` or ``"categorical"``.
    history
        ``{"train_loss": [...], "val_loss": [...]}`` per epoch (val loss in eval mode).
    best_epoch
        Epoch whose weights were restored (0-based; -1 if no network was trained).
    timings
        Seconds spent in ``"fit"``, ``"ksg"`` and ``"total"``.
    params
        The options used.
    """

    mi: float
    pmi: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    eval_idx: np.ndarray
    n_pairs: int
    mi_by_pairs: np.ndarray
    canonical_corr: np.ndarray
    latent_x: np.ndarray
    latent_y: np.ndarray | None
    embedding_x: np.ndarray
    embedding_y: np.ndarray
    y_kind: str
    history: dict = field(default_factory=dict)
    best_epoch: int = -1
    timings: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def se(self) -> float:
        """Standard error (bits) of :attr:`mi`: the spread of the pointwise terms over
        ``sqrt(n_eval)``.  It is the sampling error of the held-out average, not the scatter
        from retraining on another split or seed (``benchmarks/probe_grid.py --seeds`` measures
        that: similar in size on the grids there)."""
        n = self.pmi.size
        return float(self.pmi.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")

    @property
    def n_train(self) -> int:
        return int(self.train_idx.size)

    @property
    def n_eval(self) -> int:
        return int(self.eval_idx.size)
