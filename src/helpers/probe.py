"""Auxiliary mutual information between a representation and a held-out signal (latent MI).

The paper's performance metric is ``I(X; Y)`` between a learned representation ``X``
(cells × d) and an auxiliary signal ``Y`` the model never saw, estimated by *latent mutual
information* (LMI; Gowri et al., NeurIPS 2024): compress ``X`` and ``Y`` separately to a few
latent dimensions with paired autoencoders regularised by cross-prediction, then estimate the
MI of the latents with the Kraskov–Stögbauer–Grassberger (KSG) k-nearest-neighbour estimator.
This module is a fast re-implementation on torch + scipy that fixes the biases of the
reference package ``latentmi`` 0.1.3 (see ``benchmarks/probe.py`` for the comparison):

* the networks are fit on a training part (with its own early-stopping validation part, the
  validation loss computed in eval mode) and the best epoch's weights are really restored;
  the MI is estimated on the held-out evaluation part only;
* encoders have a linear skip path and the cross-predictors are linear, so the information
  the latents share is (close to) linearly aligned;
* before KSG, the latents are put in canonical (CCA) coordinates fitted on the fitting part
  — an invertible linear map per side, which leaves their MI unchanged — and KSG is run on
  each canonical pair alone; the leading pairs up to the last clearly informative one are
  summed (``select="sum"``), chosen by cross-fitting on held-out samples (the validation
  part and the other half of the evaluation part), and pairs that depend on each other are
  grouped and estimated jointly.  The sum is exact when the pairs are independent of each
  other, as for jointly Gaussian latents, whose canonical pairs are; KSG on several pairs
  jointly is biased low, the more so the more dimensions and bits (the true 4 leading pairs
  of a rank-4, 4-bit Gaussian read 3.2 bits jointly at N = 5,000, 3.9 summed; 8 pairs of a
  rank-8 case 1.9 and 3.7).  Choosing the pairs on samples they are not scored on keeps the
  estimate unbiased on independent data, where the earlier maximum over the ``m`` leading
  pairs read +0.03 to +0.05 bit.  Class labels, a single discrete variable, get the mixed
  KSG on the ``m`` leading canonical coordinates of ``X``, ``m`` chosen on the validation
  part;
* beside the networks, a linear path: ridge-regularised canonical directions of the inputs
  themselves, cross-fitted: for each half of the evaluation part they are fitted on every
  other sample (the training part and the other half), the ridge (from CCA to the singular
  directions of the cross-covariance) chosen by 3-fold cross-validation there, and their
  pairs kept where the held-out correlation of those folds is clearly non-zero (z > 3).  For
  each half the path whose kept pairs read more on the samples that chose them is reported,
  so the choice never sees the samples it is scored on.  Information spread thinly over many
  shared directions is where networks trained on a few thousand samples lose most (rank 8 at
  1 bit, dim X 100, dim Y 50, N = 5,000: 0.68 bit from the networks alone);
* each kept pair on its own is read by its Gaussian copula (:func:`copula_mi`, a lower bound
  on the MI of continuous variables), or by 1-D KSG where KSG reads clearly more (by 4 sd of
  its spread on independent data) on the samples that chose the pairs.  On a weak pair KSG
  scatters 5–6 times as much as the copula and reads a little low (ρ = 0.15 on 1,250 samples,
  40 seeds: sd 0.031 against 0.0055 bit, means 0.011 and 0.016 for a truth of 0.016;
  ``benchmarks/probe_grid.py --pairs``), which matters when a quarter of a bit is spread over
  eight pairs; the copula is exact for Gaussian pairs, and KSG keeps what is not Gaussian;
* ``Y`` that is already low-dimensional (a scalar such as time, or up to ``latent_dims // 2``
  columns) is used as its own latent (lossless) and class labels are handled as a discrete
  variable (cross-entropy head, KSG in the mixed discrete–continuous form of Ross 2014).

Inputs are standardised per column on the training part (constant ``X`` columns are dropped,
values clipped at ±10 sd as in ``latentmi``), and ``X`` wider than ``pca_dims`` (128) columns
is reduced to its leading principal components before the networks; transforms such as
``log1p`` of counts are the caller's business.

``method="paper"`` is the estimator the paper used, ``latentmi`` 0.1.3 re-implemented here
(its numpy < 2 pin keeps the package itself out of this environment): paired autoencoders of
its width (1024/512/256 hidden units, 8 + 8 latents with a final LeakyReLU, cross decoders
with dropout 0.5), its scaling (z-scores over all samples, clipped at ±10), its training (Adam
lr 1e-4, batch 512, ≤ 300 epochs, early stopping on the evaluation half with patience 30 and
the weights of the stopping epoch kept, as latentmi's stopper effectively does), KSG on all
8 + 8 latents of the evaluation half, class labels one-hot encoded.  Nothing is transformed:
protein counts go in raw, as in the paper.  ``benchmarks/probe.py --paper`` runs it beside
``latentmi`` itself.

Example
-------
>>> from helpers import groundtruth as gt, probe
>>> x, y, truth = gt.gaussian_lowrank(3000, dim_x=40, dim_y=2, mi_bits=1.0, seed=0)
>>> est = probe.latent_mi(x, y, seed=0)
>>> abs(est - truth) < 0.2
True
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, ndtri
from scipy.stats import rankdata

from ._torch import torch_threads

__all__ = [
    "VERSION",
    "ProbeResult",
    "copula_mi",
    "estimate_mi",
    "ksg_mi",
    "latent_mi",
    "make_split",
]

#: Version of this module's estimates: changed whenever a default estimate changes, so that a
#: sweep's results store (whose job ids include it, :class:`helpers.sweep.Job`) never reuses
#: values measured by an earlier estimator.
VERSION = "2026.12.01.2"

_LOG2 = np.log(2.0)
MIN_EVAL = 50
MIN_TRAIN = 50


# ----------------------------------------------------------------------------- results


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
    def n_train(self) -> int:
        return int(self.train_idx.size)

    @property
    def n_eval(self) -> int:
        return int(self.eval_idx.size)


# ----------------------------------------------------------------------------- KSG


def _jitter(a: np.ndarray, rng: np.random.Generator, rel: float = 1e-10) -> np.ndarray:
    scale = np.maximum(np.abs(a).max(axis=0), 1.0)
    return a + rel * scale * rng.random(a.shape)


def ksg_mi(
    x: np.ndarray,
    y: np.ndarray,
    *,
    k: int = 3,
    discrete_y: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Pointwise KSG mutual information (bits), estimator 1 with the max norm.

    ``pmi_i = ψ(k) + ψ(N) − ψ(n_x,i + 1) − ψ(n_y,i + 1)``, where ``ε_i`` is the distance to
    the ``k``-th neighbour in the joint space (Chebyshev norm) and ``n_x,i``, ``n_y,i`` count
    the other samples strictly closer than ``ε_i`` in each marginal.  With ``discrete_y`` the
    labels define the ``Y`` metric (0 within a class, ∞ across), which is the mixed
    discrete–continuous estimator of Ross (2014).  A tiny deterministic jitter (1e-10 of the
    scale) breaks ties.  The mean of the result is the MI estimate.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((4000, 1))
    >>> y = 0.8 * x + 0.6 * rng.standard_normal((4000, 1))
    >>> round(float(ksg_mi(x, y).mean()), 1)  # truth -½ log2(1 - 0.64) = 0.74
    0.7
    """
    x = np.asarray(x, dtype=float)
    x = x.reshape(len(x), -1)
    n = len(x)
    if k < 1 or k >= n:
        msg = f"k must be between 1 and n - 1 = {n - 1}, got {k}"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    x = _jitter(x, rng)
    if discrete_y:
        codes = np.unique(np.asarray(y).ravel(), return_inverse=True)[1]
        if len(codes) != n:
            msg = "x and y must have the same number of samples"
            raise ValueError(msg)
        counts = np.bincount(codes)
        single = counts[codes] < 2
        if single.any():  # a class seen once carries no neighbour: estimate on the others
            keep = ~single
            if keep.sum() <= 1:
                msg = "every class has a single sample; the MI cannot be estimated"
                raise ValueError(msg)
            out = np.empty(n)
            out[keep] = ksg_mi(x[keep], np.asarray(y).ravel()[keep], k=k, discrete_y=True,
                               seed=seed)
            out[single] = out[keep].mean()  # so that the mean is the estimate on the others
            return out
        # classes smaller than k + 1 use their own k_c = size - 1 (as scikit-learn's mixed MI)
        kc = np.minimum(k, counts - 1)[codes]
        eps = np.empty(n)
        ny = counts[codes].astype(float)
        for c in np.unique(codes):
            idx = np.flatnonzero(codes == c)
            kk = int(min(k, idx.size - 1))
            d, _ = cKDTree(x[idx]).query(x[idx], k=kk + 1, p=np.inf)
            eps[idx] = d[:, kk]
    else:
        y = np.asarray(y, dtype=float)
        y = _jitter(y.reshape(len(y), -1), rng)
        if len(y) != n:
            msg = "x and y must have the same number of samples"
            raise ValueError(msg)
        d, _ = cKDTree(np.hstack([x, y])).query(np.hstack([x, y]), k=k + 1, p=np.inf)
        eps = d[:, k]
    radius = np.nextafter(eps, 0)  # strictly closer than eps
    nx = cKDTree(x).query_ball_point(x, radius, p=np.inf, return_length=True)
    if not discrete_y:
        ny = cKDTree(y).query_ball_point(y, radius, p=np.inf, return_length=True)
        kc = k
    return (digamma(kc) + digamma(n) - digamma(nx) - digamma(ny)) / _LOG2


# ----------------------------------------------------------------------------- splits


def make_split(
    n: int, *, eval_frac: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Reproducible random split of ``n`` samples into (training, evaluation) indices.

    Use it once per data set and pass ``eval_idx`` to every :func:`latent_mi` call so that
    differences between models are differences in the representations, not in the split.

    Examples
    --------
    >>> train, test = make_split(10, eval_frac=0.3, seed=0)
    >>> len(train), len(test), sorted(set(train) | set(test)) == list(range(10))
    (7, 3, True)
    """
    if not 0 < eval_frac < 1:
        msg = f"eval_frac must be in (0, 1), got {eval_frac}"
        raise ValueError(msg)
    perm = np.random.default_rng([seed, 7]).permutation(n)
    n_eval = int(round(n * eval_frac))
    if n_eval < 1 or n_eval >= n:
        msg = f"eval_frac={eval_frac} leaves an empty part for n={n}"
        raise ValueError(msg)
    return np.sort(perm[n_eval:]), np.sort(perm[:n_eval])


def _as_index(idx, n: int, name: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.dtype == bool:
        if idx.shape != (n,):
            msg = f"boolean {name} must have length {n}"
            raise ValueError(msg)
        return np.flatnonzero(idx)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        msg = f"{name} must be a 1-D integer index array or boolean mask"
        raise ValueError(msg)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        msg = f"{name} has indices outside [0, {n})"
        raise ValueError(msg)
    if np.unique(idx).size != idx.size:
        msg = f"{name} has repeated indices"
        raise ValueError(msg)
    return idx


# ----------------------------------------------------------------------------- inputs


def _check_x(x) -> np.ndarray:
    if hasattr(x, "toarray"):
        x = x.toarray()
    x = np.asarray(x)
    if x.dtype == object or not np.issubdtype(x.dtype, np.number):
        msg = "x must be numeric"
        raise ValueError(msg)
    x = x.astype(np.float64, copy=False)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        msg = f"x must be 1-D or 2-D (cells × features), got shape {x.shape}"
        raise ValueError(msg)
    if not np.all(np.isfinite(x)):
        msg = "x contains NaN or infinite values"
        raise ValueError(msg)
    return x


def _align_y(x, y):
    """Order a pandas ``y`` like ``x``: by index when both have one, refuse ambiguous cases.

    ``x`` with an index (a pandas object) and ``y`` with an index: ``y`` is reordered to
    ``x``'s index, which must hold the same labels.  ``y`` with an index other than
    ``0 … n−1`` against an unindexed ``x`` is refused, since matching it by position would
    silently pair the wrong samples.  Returns ``y`` (a new object, or the input itself when
    nothing needed changing).
    """
    y_index = getattr(y, "index", None)
    if y_index is None or not hasattr(y_index, "equals"):
        return y
    import pandas as pd

    x_index = getattr(x, "index", None)
    if x_index is None or not hasattr(x_index, "equals"):
        if y_index.equals(pd.RangeIndex(len(y_index))):
            return y
        msg = (
            "y has a pandas index that is not 0 … n−1 while x has none, so the samples cannot "
            "be matched by label; pass x with the same index (a DataFrame) to align them by "
            "index, or y.to_numpy() to match them by position"
        )
        raise ValueError(msg)
    if y_index.equals(x_index):
        return y
    if not (x_index.is_unique and y_index.is_unique):
        msg = "x and y have different indices and one of them has repeated labels"
        raise ValueError(msg)
    if len(x_index) != len(y_index) or not x_index.isin(y_index).all():
        missing = x_index[~x_index.isin(y_index)][:3].tolist()
        msg = (
            f"x and y have different index labels (e.g. {missing} of x are not in y); "
            "they must hold the same samples"
        )
        raise ValueError(msg)
    return y.loc[x_index]


def _prepare_y(y, y_kind: str):
    """Return (kind, array): float (n, p) for continuous, int codes (n,) for categorical."""
    if hasattr(y, "toarray"):
        y = y.toarray()
    is_categorical_dtype = str(getattr(y, "dtype", "")) == "category"
    y = np.asarray(y)
    if y_kind not in ("auto", "continuous", "categorical"):
        msg = f"y_kind must be 'auto', 'continuous' or 'categorical', got {y_kind!r}"
        raise ValueError(msg)
    if y_kind == "auto":
        if y.ndim == 1 and (is_categorical_dtype or y.dtype.kind in "OUSb"):
            y_kind = "categorical"
        elif y.ndim == 1 and y.dtype.kind in "iu":
            if np.unique(y).size > 100:
                msg = (f"y is an integer array with {np.unique(y).size} distinct values: labels "
                       "or a number? Say which with y_kind='categorical' or 'continuous'")
                raise ValueError(msg)
            y_kind = "categorical"
        else:
            y_kind = "continuous"
    if y_kind == "categorical":
        if y.ndim != 1:
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            else:
                msg = "categorical y must be 1-D (one label per sample)"
                raise ValueError(msg)
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            msg = "y contains NaN or infinite values"
            raise ValueError(msg)
        if y.dtype.kind == "O" and any(v is None or (isinstance(v, float) and v != v) for v in y):
            msg = "y contains missing labels (None or NaN)"
            raise ValueError(msg)
        # codes in order of first appearance: the same partition of the samples gives the
        # same codes, hence the same estimate, whatever the classes are called
        import pandas as pd

        codes = pd.factorize(y.astype(object) if y.dtype.kind == "O" else y)[0]
        return "categorical", codes.astype(np.int64)
    if y.dtype.kind not in "biuf":
        msg = "continuous y must be numeric"
        raise ValueError(msg)
    y = y.astype(np.float64, copy=False)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        msg = f"y must be 1-D or 2-D, got shape {y.shape}"
        raise ValueError(msg)
    if not np.all(np.isfinite(y)):
        msg = "y contains NaN or infinite values"
        raise ValueError(msg)
    return "continuous", y


#: Exact copies of training samples among the evaluation samples above which the probe
#: warns: this fraction of them, with at least this many distinct copied values (a few
#: repeated values are expected: cells emptied by thinning embed alike).
COPY_FRACTION, COPY_DISTINCT = 0.05, 10


def _warn_copies(x: np.ndarray, y: np.ndarray, train_idx, eval_idx) -> int:
    """Warn when evaluation samples are exact copies (x and y) of training samples: the
    networks then recognise them instead of generalising, and the MI is inflated (duplicated
    cells read 3.4 bits on independent data).  Returns how many evaluation samples are
    copies."""
    rows = np.ascontiguousarray(np.column_stack([x, np.asarray(y, float).reshape(len(x), -1)]))
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    copied = np.isin(keys[eval_idx], keys[train_idx])
    n_copied = int(copied.sum())
    if n_copied >= COPY_FRACTION * len(eval_idx):
        distinct = np.unique(keys[eval_idx][copied]).size
        if distinct >= COPY_DISTINCT:
            warnings.warn(
                f"{n_copied} of {len(eval_idx)} evaluation samples ({distinct} distinct) are "
                "exact copies of training samples (the same x and y): duplicated samples "
                "inflate the MI estimate. Remove the duplicates first (e.g. "
                "helpers.datasets.duplicated_rows).", UserWarning, stacklevel=3)
    return n_copied


def _standardise(a: np.ndarray, ref: np.ndarray, clip: float = 10.0):
    mean = ref.mean(axis=0)
    sd = ref.std(axis=0)
    keep = sd > 1e-12 * np.maximum(np.abs(mean), 1.0)
    out = (a[:, keep] - mean[keep]) / sd[keep]
    return np.clip(out, -clip, clip), keep


# ----------------------------------------------------------------------------- networks


def _build(torch, dim_x, dim_y, kx, ky, hidden, y_kind, n_classes, dropout=0.0, in_drop=0.0):
    nn = torch.nn

    class Encoder(nn.Module):
        """MLP with a linear skip path: z = W x + MLP(x)."""

        def __init__(self, d_in, d_out):
            super().__init__()
            self.drop = nn.Dropout(in_drop)
            self.lin = nn.Linear(d_in, d_out)
            self.mlp = nn.Sequential(
                nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden // 2), nn.GELU(), nn.Dropout(dropout),
                nn.Linear(hidden // 2, d_out),
            )

        def forward(self, v):
            v = self.drop(v)
            return self.lin(v) + self.mlp(v)

    def decoder(d_in, d_out):
        return nn.Sequential(nn.Linear(d_in, hidden // 2), nn.GELU(), nn.Linear(hidden // 2, d_out))

    class Paired(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc_x = Encoder(dim_x, kx)
            self.dec_x = decoder(kx, dim_x)
            if y_kind == "categorical":
                self.cross_xy = nn.Linear(kx, n_classes)
            else:
                self.cross_xy = nn.Linear(kx, dim_y)
            self.encode_y = ky is not None
            if self.encode_y:
                self.enc_y = Encoder(dim_y, ky)
                self.dec_y = decoder(ky, dim_y)
                self.cross_yx = nn.Linear(ky, dim_x)

        def latents(self, xb, yb):
            zx = self.enc_x(xb)
            zy = self.enc_y(yb) if self.encode_y else None
            return zx, zy

        def loss(self, xb, yb, alpha, lam, parts=False):
            f = torch.nn.functional
            ax, ay = alpha if isinstance(alpha, tuple) else (alpha, alpha)
            zx, zy = self.latents(xb, yb)
            auto = ax * f.mse_loss(self.dec_x(zx), xb)
            if y_kind == "categorical":
                cross = f.cross_entropy(self.cross_xy(zx), yb)
            else:
                cross = f.mse_loss(self.cross_xy(zx), yb)
            if self.encode_y:
                auto = auto + ay * f.mse_loss(self.dec_y(zy), yb)
                cross = cross + f.mse_loss(self.cross_yx(zy), xb)
            if parts:
                return auto, cross
            return auto + lam * cross

    return Paired()


def _train(torch, model, xt, yt, xv, yv, *, lr, batch_size, max_epochs, patience, alpha, lam,
           weight_decay, gen, progress, monitor="total"):
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.3, patience=max(patience // 3, 1), threshold=1e-4
    )
    n = len(xt)
    best, best_state, best_epoch, bad = np.inf, None, -1, 0
    history = {"train_loss": [], "val_loss": [], "val_cross": []}
    epochs = range(max_epochs)
    if progress:
        from .progress import bar

        epochs = bar(epochs, desc="latent MI", leave=False)
    for epoch in epochs:
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            b = perm[start : start + batch_size]
            loss = model.loss(xt[b], yt[b], alpha, lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        model.eval()
        with torch.no_grad():
            v_auto, v_cross = model.loss(xv, yv, alpha, lam, parts=True)
        val_total = (v_auto + lam * v_cross).item()
        val = v_cross.item() if monitor == "cross" else val_total
        history["train_loss"].append(total / n)
        history["val_loss"].append(val_total)
        history["val_cross"].append(v_cross.item())
        sched.step(val)
        if best_state is None or val < best - 1e-5 * abs(best):
            best, best_epoch, bad = val, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return history, best_epoch


# ----------------------------------------------------------------------------- the paper's LMI


def _paper_hidden(d: int) -> int:
    """latentmi's first hidden width: 1024, or the power of two below ``d`` when ``d > 2048``."""
    return 1024 if d <= 2048 else int(2 ** np.floor(np.log2(d)))


def _build_paper(torch, dim_x: int, dim_y: int, latent: int):
    """Paired autoencoders with cross-predictive decoders, shaped as in ``latentmi.models.AECross``.

    Encoders ``d → L → L/2 → L/4 → latent`` (LeakyReLU 0.2 after every layer, the latent
    included), decoders ``latent → L/4 → L/2 → L → d``, cross decoders the same with dropout
    0.5 before every linear layer; Xavier-uniform weights and zero biases.
    """
    nn = torch.nn

    def act():
        return nn.LeakyReLU(negative_slope=0.2)

    def encoder(d, width):
        return nn.Sequential(nn.Linear(d, width), act(), nn.Linear(width, width // 2), act(),
                             nn.Linear(width // 2, width // 4), act(),
                             nn.Linear(width // 4, latent), act())

    def decoder(d, width, drop):
        sizes = [latent, width // 4, width // 2, width]
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += ([nn.Dropout(0.5)] if drop else []) + [nn.Linear(a, b), act()]
        layers += ([nn.Dropout(0.5)] if drop else []) + [nn.Linear(width, d)]
        return nn.Sequential(*layers)

    class PaperPaired(nn.Module):
        def __init__(self):
            super().__init__()
            lx, ly = _paper_hidden(dim_x), _paper_hidden(dim_y)
            self.enc_x, self.enc_y = encoder(dim_x, lx), encoder(dim_y, ly)
            self.dec_x, self.dec_y = decoder(dim_x, lx, False), decoder(dim_y, ly, False)
            self.cross_yx, self.cross_xy = decoder(dim_x, lx, True), decoder(dim_y, ly, True)
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.zeros_(module.bias)

        def latents(self, xb, yb):
            return self.enc_x(xb), self.enc_y(yb)

        def loss(self, xb, yb):
            mse = torch.nn.functional.mse_loss
            zx, zy = self.latents(xb, yb)
            auto = mse(self.dec_x(zx), xb) + mse(self.dec_y(zy), yb)
            cross = mse(self.cross_yx(zy), xb) + mse(self.cross_xy(zx), yb)
            return cross + auto  # lam = alpha = 1

    return PaperPaired()


def _train_paper(torch, model, xt, yt, xv, yv, *, lr, batch_size, max_epochs, patience, gen):
    """latentmi's training loop: Adam, early stopping on ``(xv, yv)``, no weights restored.

    The validation loss is the mean of the per-batch losses in training mode (dropout on),
    as in ``latentmi.lmi.train``.  latentmi's early stopper keeps a *reference* to the live
    ``state_dict`` rather than a copy, so "restoring the best weights" loads the current
    ones: the network used is the one at the stopping epoch, which this loop reproduces.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)
    model.train()
    history = {"train_loss": [], "val_loss": []}
    best, best_epoch, bad = np.inf, -1, 0
    n, nv = len(xt), len(xv)
    for epoch in range(max_epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            b = perm[start : start + batch_size]
            loss = model.loss(xt[b], yt[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        with torch.no_grad():
            vperm = torch.randperm(nv, generator=gen)
            val = float(np.mean([
                model.loss(xv[vperm[s : s + batch_size]], yv[vperm[s : s + batch_size]]).item()
                for s in range(0, nv, batch_size)
            ]))
        history["train_loss"].append(total / n)
        history["val_loss"].append(val)
        if val < best:
            best, best_epoch, bad = val, epoch, 0
        else:
            bad += 1
            if bad >= patience:
                break
    model.eval()
    return history, best_epoch


def _paper_standardise(a: np.ndarray) -> np.ndarray:
    """latentmi's scaling: z-score over all samples, constant columns to 0, clip at ±10."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.nan_to_num((a - a.mean(axis=0)) / a.std(axis=0))
    return np.clip(z, -10.0, 10.0)


def _estimate_paper(x, kind, yarr, *, seed, train_idx, eval_idx, k, latent_dims, lr,
                    batch_size, max_epochs, patience, n_threads, t0):
    """``method="paper"`` of :func:`estimate_mi` (see there)."""
    import torch

    if kind == "categorical":
        yarr = np.eye(int(yarr.max()) + 1)[yarr]  # one-hot, every class, as the paper
    xs, ys = _paper_standardise(x), _paper_standardise(yarr)
    latent = max(latent_dims // 2, 1)
    with torch_threads(n_threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = _build_paper(torch, xs.shape[1], ys.shape[1], latent)
        tx = torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32))
        ty = torch.from_numpy(np.ascontiguousarray(ys, dtype=np.float32))
        tr, ev = torch.from_numpy(train_idx), torch.from_numpy(eval_idx)
        history, best_epoch = _train_paper(
            torch, model, tx[tr], ty[tr], tx[ev], ty[ev], lr=lr, batch_size=batch_size,
            max_epochs=max_epochs, patience=patience, gen=gen,
        )
        with torch.no_grad():
            zx_t, zy_t = model.latents(tx, ty)
        zx, zy = zx_t.numpy().astype(np.float64), zy_t.numpy().astype(np.float64)
    t_fit = time.perf_counter() - t0
    ex, ey = zx[eval_idx], zy[eval_idx]
    pmi = ksg_mi(ex, ey, k=k, seed=seed)
    t_total = time.perf_counter() - t0
    params = dict(method="paper", seed=seed, latent_dims=2 * latent, k=k, lr=lr,
                  batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                  n_threads=n_threads, epochs_run=len(history["val_loss"]))
    return ProbeResult(
        mi=float(np.mean(pmi)), pmi=pmi, train_idx=train_idx, val_idx=eval_idx,
        eval_idx=eval_idx, n_pairs=latent, mi_by_pairs=np.array([pmi.mean()]),
        canonical_corr=np.array([]), latent_x=zx, latent_y=zy, embedding_x=ex, embedding_y=ey,
        y_kind=kind, history=history, best_epoch=best_epoch,
        timings={"fit": t_fit, "ksg": t_total - t_fit, "total": t_total}, params=params,
    )


# ----------------------------------------------------------------------------- CCA


def _inv_sqrt(c: np.ndarray, rel: float = 1e-8) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    floor = rel * max(w.max(), 1e-300)
    w = np.where(w > floor, w, np.inf)  # drop (numerically) degenerate directions
    return (v / np.sqrt(w)) @ v.T


def _cca(a: np.ndarray, b: np.ndarray, *, dims: int | None = None, g: float = 0.0):
    """Canonical directions of (a, b): returns mean_a, Wa, mean_b, Wb, correlations.

    ``g`` shrinks both covariances towards a multiple of the identity,
    ``(1 − g) C + g tr(C)/p I`` (ridge CCA: ``g = 0`` is CCA, ``g = 1`` the singular directions
    of the cross-covariance, PLS-SVD; the returned "correlations" are then the singular values
    of the shrunk problem); ``dims`` keeps the leading directions only.
    """
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    a0, b0 = a - ma, b - mb
    n = len(a)

    def shrink(c):
        return (1 - g) * c + g * np.trace(c) / len(c) * np.eye(len(c)) if g else c

    ia, ib = _inv_sqrt(shrink(a0.T @ a0 / n)), _inv_sqrt(shrink(b0.T @ b0 / n))
    u, s, vt = np.linalg.svd(ia @ (a0.T @ b0 / n) @ ib)
    r = min(a.shape[1], b.shape[1], len(s) if dims is None else dims)
    return ma, ia @ u[:, :r], mb, ib @ vt.T[:, :r], np.clip(s[:r], 0, 1)


def _matched_corr(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``pa`` with the same column of ``pb``."""
    pa, pb = pa - pa.mean(axis=0), pb - pb.mean(axis=0)
    den = np.sqrt((pa**2).sum(axis=0) * (pb**2).sum(axis=0))
    return (pa * pb).sum(axis=0) / np.where(den > 0, den, np.inf)


# ----------------------------------------------------------------------------- estimator


def estimate_mi(
    x,
    y,
    *,
    seed: int = 0,
    y_kind: str = "auto",
    eval_idx=None,
    train_idx=None,
    eval_frac: float = 0.5,
    val_frac: float = 0.2,
    latent_dims: int = 16,
    hidden: int = 128,
    k: int = 3,
    max_pairs: int | None = None,
    select: str = "sum",
    alpha: float | tuple[float, float] = 3.0,
    lam: float = 1.0,
    lr: float | None = None,
    batch_size: int = 512,
    max_epochs: int = 300,
    patience: int | None = None,
    weight_decay: float = 0.0,
    dropout: float = 0.2,
    in_drop: float = 0.0,
    cca_on: str = "fit",
    monitor: str = "total",
    pca_dims: int | None = 128,
    n_threads: int | None = 1,
    progress: bool = False,
    method: str = "canonical",
    group_tol: float = 0.05,
    linear: bool = True,
) -> ProbeResult:
    """Latent mutual information between ``x`` and ``y`` with all intermediate results.

    Parameters
    ----------
    x
        Representation, ``(n, d)`` numeric (a 1-D array is one feature).
    y
        Auxiliary signal: class labels (``(n,)`` of any hashable values), a scalar per sample
        (``(n,)`` floats, e.g. time), or a vector per sample (``(n, p)``, e.g. protein
        abundances or a partner cell's representation).
    seed
        Seeds the split, the network initialisation, the batch order and the KSG jitter.
        Same seed and data give the same estimate; the global RNG states are left untouched.
    y_kind
        ``"auto"`` (strings, booleans, categoricals and integer arrays with ≤ 100 distinct
        values are labels; floats are continuous; an integer array with more distinct values
        is ambiguous and an error), ``"categorical"`` or ``"continuous"``.  Labels are coded
        in order of first appearance, so renaming the classes never changes the estimate.
    eval_idx, train_idx
        Fixed evaluation samples (indices or boolean mask).  The networks are fit on
        ``train_idx`` (default: all samples not in ``eval_idx``) and the MI is estimated on
        ``eval_idx`` only.  Default: a seeded random split with ``eval_frac`` held out
        (:func:`make_split`).
    eval_frac
        Fraction of samples held out for the MI estimate when ``eval_idx`` is not given.
    val_frac
        Fraction of the training part used for early stopping and for the canonical
        directions.
    latent_dims
        Total latent dimensions (split evenly between ``x`` and ``y``; ``x`` gets all of them
        up to ``latent_dims // 2`` when ``y`` is not encoded).  A continuous ``y`` with at most
        ``latent_dims // 2`` columns is its own latent; labels are used as such.
    hidden
        Width of the first hidden layer (the second has ``hidden // 2``).
    k
        Neighbours in KSG.
    max_pairs
        Largest number of canonical pairs given to KSG (default: all).
    select
        ``"sum"`` (default): each canonical pair alone (its Gaussian copula, or 1-D KSG where
        that reads clearly more on held-out samples), summed over the leading pairs up to the
        last one whose estimate on held-out samples is clearly positive (exact for
        independent pairs, e.g. Gaussian latents; labels use ``"heldout"``); canonical
        pairs that depend on each other (KSG estimate of their MI above ``group_tol`` bits on
        the training part) are grouped and estimated jointly;
        ``"heldout"``: KSG on the ``m`` leading pairs jointly, ``m`` chosen on the
        validation part;
        ``"max"``: the largest joint estimate over ``m = 1 … max_pairs`` on the evaluation
        part (the earlier default: biased upwards on independent data);
        ``"all"``: KSG on all latent coordinates, whitened.
    alpha, lam
        Weights of the autoencoding (reconstruction) and cross-prediction losses; ``alpha``
        may be a pair ``(alpha_x, alpha_y)``.  Losses are mean squared errors per standardised
        column (cross-entropy for labels).  ``alpha = 3`` leans the ``x`` latents towards the
        principal subspace, which regularises encoders of wide ``x`` on few samples.
    lr, batch_size, max_epochs, patience, weight_decay
        Adam settings (``lr`` default 3e-3, ``patience`` 12; with ``method="paper"``
        1e-4 and 30); the learning rate is cut 3× after ``patience // 3`` epochs without a
        better validation loss, training stops after ``patience`` such epochs and the best
        epoch's weights (a deep copy) are restored.
    dropout, in_drop
        Dropout in the encoders' hidden layers and on the encoder inputs (training only;
        validation and encoding run in eval mode).
    pca_dims
        ``x`` with more (standardised) columns than this is projected onto its ``pca_dims``
        leading principal axes, fitted on the fitting part (scores not whitened), before the
        networks; ``None`` keeps every column.  The latents (8 per side) are pulled towards the
        leading variance directions by the reconstruction loss anyway, and the projection
        removes most first-layer weights of wide encoders, which otherwise overfit the few
        thousand fitting samples and lose weak shared signal (``dim x = 1000``,
        ``dim y = 50``, 0.25 bits at N = 5000: 0.05–0.09 bits without, 0.13–0.17 with).
        It is lossy only for information outside the leading 128 variance directions.
    cca_on
        Part whose latents define the canonical directions: ``"fit"`` (default; the
        validation part then stays free for choosing the pairs), ``"val"`` or ``"train"``
        (fit + val).
    n_threads
        torch intra-op threads during the call (restored afterwards); default 1, because the
        networks are small and extra threads only pay off on an otherwise idle machine
        (``None``: leave torch's setting).
    progress
        Show a tqdm bar over epochs.
    group_tol
        Bits of estimated dependence between two canonical pairs above which
        ``select="sum"`` estimates them jointly rather than adding them.
    linear
        Also estimate through the linear path (ridge-canonical directions of the inputs,
        cross-fitted on every sample but the half they are scored on, pairs kept where their
        held-out correlation is clearly non-zero) and report, on each half of the evaluation
        part, the path whose pairs read more on the samples that chose them (continuous
        ``y`` with ``select="sum"`` only).  ``params["latent_paths"]`` says which path each
        half used; ``params["pair_groups"]`` are the first half's.
    method
        ``"canonical"`` (default): this module's estimator, described above;
        ``"paper"``: ``latentmi`` 0.1.3's method as the paper used it (see the module
        docstring); it uses ``latent_dims``, ``k``, ``lr``, ``batch_size``, ``max_epochs``,
        ``patience`` and ``n_threads`` and ignores the other options.

    Returns
    -------
    ProbeResult
        ``mi`` (bits), pointwise MI, indices, latents, canonical correlations, training
        history and timings.

    Notes
    -----
    Scale matters only through the standardisation: apply ``log1p`` or other transforms to
    counts before calling.  A pandas ``y`` is aligned to a pandas ``x`` by index (same labels
    required); a ``y`` whose index is not ``0 … n−1`` against an unindexed ``x`` is refused.
    For a fair comparison of representations of the same cells, fix the evaluation cells once
    (``train, test = make_split(n, seed=...)``) and pass ``eval_idx=test`` with the same
    ``seed`` for every representation.

    Examples
    --------
    >>> import numpy as np
    >>> from helpers import groundtruth as gt
    >>> x, labels, truth = gt.labelled_mixture(2000, dim_x=20, n_classes=3, separation=12.0)
    >>> res = estimate_mi(x, labels, seed=0)
    >>> res.y_kind, abs(res.mi - truth) < 0.15, res.pmi.shape == (res.n_eval,)
    ('categorical', True, True)
    """
    import torch

    t0 = time.perf_counter()
    from ._checks import check_seed

    seed = check_seed(seed)
    y = _align_y(x, y)
    x = _check_x(x)
    kind, yarr = _prepare_y(y, y_kind)
    n = len(x)
    if len(yarr) != n:
        msg = f"x and y have different numbers of samples ({n} and {len(yarr)})"
        raise ValueError(msg)
    if cca_on not in ("val", "fit", "train"):
        msg = f"cca_on must be 'val', 'fit' or 'train', got {cca_on!r}"
        raise ValueError(msg)
    if method not in ("canonical", "paper"):
        msg = f"method must be 'canonical' or 'paper', got {method!r}"
        raise ValueError(msg)
    if lr is None:
        lr = 1e-4 if method == "paper" else 3e-3
    if patience is None:
        patience = 30 if method == "paper" else 12
    if select not in ("sum", "heldout", "max", "all"):
        msg = f"select must be 'sum', 'heldout', 'max' or 'all', got {select!r}"
        raise ValueError(msg)
    if pca_dims is not None and int(pca_dims) < 1:
        msg = f"pca_dims must be None or >= 1, got {pca_dims!r}"
        raise ValueError(msg)
    if latent_dims < 2 or k < 1 or hidden < 4:
        msg = "latent_dims must be >= 2, k >= 1 and hidden >= 4"
        raise ValueError(msg)

    # ---- split
    if eval_idx is None:
        if train_idx is not None:
            msg = "train_idx needs eval_idx"
            raise ValueError(msg)
        if n < MIN_TRAIN + MIN_EVAL:
            msg = f"need at least {MIN_TRAIN + MIN_EVAL} samples, got {n}"
            raise ValueError(msg)
        train_idx, eval_idx = make_split(n, eval_frac=eval_frac, seed=seed)
    else:
        eval_idx = _as_index(eval_idx, n, "eval_idx")
        if train_idx is None:
            train_idx = np.setdiff1d(np.arange(n), eval_idx)
        else:
            train_idx = _as_index(train_idx, n, "train_idx")
            if np.intersect1d(train_idx, eval_idx).size:
                msg = "train_idx and eval_idx overlap"
                raise ValueError(msg)
    if eval_idx.size < MIN_EVAL or train_idx.size < MIN_TRAIN:
        msg = (
            f"need at least {MIN_TRAIN} training and {MIN_EVAL} evaluation samples, got "
            f"{train_idx.size} and {eval_idx.size}"
        )
        raise ValueError(msg)
    _warn_copies(x, yarr, train_idx, eval_idx)
    if method == "paper":
        return _estimate_paper(
            x, kind, yarr, seed=seed, train_idx=train_idx, eval_idx=eval_idx, k=k,
            latent_dims=latent_dims, lr=lr, batch_size=batch_size, max_epochs=max_epochs,
            patience=patience, n_threads=n_threads, t0=t0,
        )
    rng = np.random.default_rng([seed, 11])
    perm = rng.permutation(train_idx)
    n_val = max(int(round(val_frac * perm.size)), 20)
    val_idx, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

    # ---- standardise on the fitting part
    xs, keep = _standardise(x, x[fit_idx])
    if xs.shape[1] == 0:
        msg = "x is constant on the training samples"
        raise ValueError(msg)
    if pca_dims is not None and xs.shape[1] > pca_dims:
        xs = _pca_project(xs, fit_idx, int(pca_dims))
    if kind == "categorical":
        n_classes = int(yarr.max()) + 1
        present = np.unique(yarr[eval_idx])
        if np.unique(yarr).size < 2:
            msg = "y has a single class: the mutual information is 0 and cannot be estimated"
            raise ValueError(msg)
        if present.size < 2:
            msg = "y has a single class on the evaluation samples"
            raise ValueError(msg)
        ys = yarr
    else:
        sd = yarr[fit_idx].std(axis=0)
        if np.all(sd <= 1e-12 * np.maximum(np.abs(yarr[fit_idx].mean(axis=0)), 1.0)):
            msg = "y is constant: the mutual information is 0 and cannot be estimated"
            raise ValueError(msg)
        ys, _ = _standardise(yarr, yarr[fit_idx])
        n_classes = 0
    half = max(latent_dims // 2, 1)
    if kind == "categorical":
        kx, ky = half, None
    elif ys.shape[1] <= half:
        kx, ky = half, None
    else:
        kx, ky = half, latent_dims - half

    # ---- fit the paired networks (deterministic, global RNG restored)
    with torch_threads(n_threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = _build(torch, xs.shape[1], ys.shape[1] if kind != "categorical" else 0,
                       kx, ky, hidden, kind, n_classes, dropout, in_drop)
        tx = torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32))
        ty = (torch.from_numpy(ys).long() if kind == "categorical"
              else torch.from_numpy(np.ascontiguousarray(ys, dtype=np.float32)))
        fit_t, val_t = torch.from_numpy(fit_idx), torch.from_numpy(val_idx)
        history, best_epoch = _train(
            torch, model, tx[fit_t], ty[fit_t], tx[val_t], ty[val_t], lr=lr,
            batch_size=batch_size, max_epochs=max_epochs, patience=patience, alpha=alpha,
            lam=lam, weight_decay=weight_decay, gen=gen, progress=progress, monitor=monitor,
        )
        with torch.no_grad():
            zx_t, zy_t = model.latents(tx, ty if ky is not None else None)
        zx = zx_t.numpy().astype(np.float64)
        zy = zy_t.numpy().astype(np.float64) if zy_t is not None else None
    t_fit = time.perf_counter() - t0

    # ---- canonical coordinates (fitted on the validation part), KSG on the evaluation part
    if kind == "categorical":
        onehot = np.eye(n_classes)[ys][:, 1:]
        yrep = onehot
    else:
        yrep = zy if zy is not None else ys
    discrete = kind == "categorical"
    groups, path_names = None, None
    if select == "all":
        ex = _whiten_apply(zx, val_idx, eval_idx)
        ey = ys[eval_idx] if discrete else _whiten_apply(yrep, val_idx, eval_idx)
        pmi = ksg_mi(ex, ey, k=k, discrete_y=discrete, seed=seed)
        by_pairs, corr, n_pairs = np.array([pmi.mean()]), np.array([]), zx.shape[1]
    else:
        ref = {"val": val_idx, "fit": fit_idx, "train": train_idx}[cca_on]
        ma, wa, mb, wb, corr = _cca(zx[ref], yrep[ref])
        m_max = wa.shape[1] if max_pairs is None else max(1, min(int(max_pairs), wa.shape[1]))
        ex_all = (zx[eval_idx] - ma) @ wa[:, :m_max]
        ey_all = ys[eval_idx] if discrete else (yrep[eval_idx] - mb) @ wb[:, :m_max]
        if select == "sum" and not discrete:
            def project(idx):
                return (zx[idx] - ma) @ wa[:, :m_max], (yrep[idx] - mb) @ wb[:, :m_max]

            opts = dict(k=k, seed=seed, tol=group_tol)
            (vx, vy), (tx, ty) = project(val_idx), project(train_idx)
            in_a = np.random.default_rng([seed, 13]).permutation(eval_idx.size)
            halves = (np.flatnonzero(in_a < eval_idx.size // 2),
                      np.flatnonzero(in_a >= eval_idx.size // 2))
            readings, path_names, lin_x, lin_y = [], [], None, None
            for j, h in enumerate(halves):
                o = halves[1 - j]
                # network pairs: chosen on the validation part and the other half
                reading = _read_pairs(
                    ex_all[h], ey_all[h], np.vstack([vx, ex_all[o]]),
                    np.vstack([vy, ey_all[o]]), tx, ty, choose="ksg", **opts,
                )
                path_names.append("network")
                if linear:
                    # linear pairs: fitted (and chosen, held out) on every sample but this half
                    lx, ly, hx, hy = _linear_canonical(
                        xs, ys, np.union1d(train_idx, eval_idx[o]), half, seed=seed)
                    if lin_x is None:
                        lin_x = np.zeros((eval_idx.size, lx.shape[1]))
                        lin_y = np.zeros((eval_idx.size, ly.shape[1]))
                    lin_x[h], lin_y[h] = lx[eval_idx[h]], ly[eval_idx[h]]
                    lin = _read_pairs(lin_x[h], lin_y[h], hx, hy, hx, hy,
                                      choose="correlation", **opts)
                    if lin.score > reading.score:
                        reading, path_names[-1] = lin, "linear"
                readings.append(reading)
            pmi = np.zeros(len(eval_idx))
            for h, reading in zip(halves, readings, strict=True):
                pmi[h] = reading.pmi
            same = [r for r, p in zip(readings, path_names, strict=True) if p == path_names[0]]
            by_pairs = np.concatenate([r.one_d for r in same], axis=1).mean(axis=1)
            groups = readings[0].groups
            chosen = np.array(sorted(i for g in groups for i in g), dtype=int)
            n_pairs = int(chosen.size)
            if path_names[0] == "network":
                ex, ey = ex_all[:, chosen], ey_all[:, chosen]
            else:
                ex, ey = lin_x[:, chosen], lin_y[:, chosen]
                corr = np.abs(_matched_corr(lin_x, lin_y))
        else:
            by_pairs, pmis = [], []
            for m in range(1, m_max + 1):
                ey = ey_all if discrete else ey_all[:, :m]
                p = ksg_mi(ex_all[:, :m], ey, k=k, discrete_y=discrete, seed=seed)
                by_pairs.append(p.mean())
                pmis.append(p)
            by_pairs = np.array(by_pairs)
            if select == "max":
                best = int(np.argmax(by_pairs))
            else:  # "heldout" (and "sum" for labels): m chosen on the validation part
                vx = (zx[val_idx] - ma) @ wa[:, :m_max]
                vy = ys[val_idx] if discrete else (yrep[val_idx] - mb) @ wb[:, :m_max]
                val_m = [ksg_mi(vx[:, :m], vy if discrete else vy[:, :m], k=k,
                                discrete_y=discrete, seed=seed).mean()
                         for m in range(1, m_max + 1)]
                best = int(np.argmax(val_m))
            pmi, n_pairs = pmis[best], best + 1
            ex = ex_all[:, :n_pairs]
            ey = ey_all if discrete else ey_all[:, :n_pairs]
    t_total = time.perf_counter() - t0
    params = dict(
        seed=seed, y_kind=y_kind, eval_frac=eval_frac, val_frac=val_frac,
        latent_dims=latent_dims, latent_x=kx, latent_y=ky, hidden=hidden, k=k,
        max_pairs=max_pairs, select=select, alpha=alpha, lam=lam, lr=lr,
        batch_size=batch_size, max_epochs=max_epochs, patience=patience,
        weight_decay=weight_decay, dropout=dropout, in_drop=in_drop, cca_on=cca_on,
        pca_dims=pca_dims, n_threads=n_threads, kept_x_columns=int(keep.sum()),
        method=method, group_tol=group_tol, pair_groups=groups, linear=linear,
        latent_paths=path_names,
        network_x_columns=int(xs.shape[1]),
    )
    return ProbeResult(
        mi=float(np.mean(pmi)), pmi=pmi, train_idx=fit_idx, val_idx=val_idx, eval_idx=eval_idx,
        n_pairs=int(n_pairs), mi_by_pairs=by_pairs, canonical_corr=corr, latent_x=zx,
        latent_y=zy, embedding_x=ex, embedding_y=ey, y_kind=kind, history=history,
        best_epoch=best_epoch,
        timings={"fit": t_fit, "ksg": t_total - t_fit, "total": t_total}, params=params,
    )


def copula_mi(x, y, *, seed: int = 0) -> np.ndarray:
    """Pointwise Gaussian-copula mutual information (bits) of two one-dimensional samples.

    Each variable is replaced by its normal scores (ranks, after the same tie-breaking jitter as
    :func:`ksg_mi`, mapped through the standard normal quantile) and the MI of a bivariate
    Gaussian with their correlation ``ρ`` (0 when negative) is returned pointwise,
    ``log2 φ_ρ(a, b) / (φ(a) φ(b))``, whose mean is ``−½ log2(1 − ρ²)``.  MI is unchanged by a
    monotone map of either variable, and among joint laws with Gaussian marginals and a given
    correlation the Gaussian has the largest entropy, so for continuous variables this is a
    *lower bound* on their MI (Ince et al. 2017), exact for a Gaussian pair.  On weak
    dependence it scatters far less than KSG (ρ = 0.15 on 1,250 samples, 40 seeds: sd 0.0055
    bit against KSG's 0.031, means 0.016 and 0.011 for a truth of 0.016).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(4000)
    >>> y = np.exp(0.8 * x + 0.6 * rng.standard_normal(4000))  # monotone map of a Gaussian
    >>> round(float(copula_mi(x, y).mean()), 1)  # truth -½ log2(1 - 0.64) = 0.74
    0.7
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if len(x) != len(y) or len(x) < 3:
        msg = "x and y must be 1-D samples of the same length (at least 3)"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)

    def scores(v):
        v = _jitter(v[:, None], rng)[:, 0]
        s = ndtri((rankdata(v) - 0.5) / len(v))
        return (s - s.mean()) / s.std()

    a, b = scores(x), scores(y)
    rho = float(np.clip(np.mean(a * b), 0.0, 0.999999))
    r2 = rho * rho
    pmi = -0.5 * np.log1p(-r2) - (r2 * (a * a + b * b) - 2 * rho * a * b) / (2 * (1 - r2))
    return pmi / np.log(2)


@dataclass
class _Reading:
    """What one path's pairs read on one half of the evaluation samples."""

    pmi: np.ndarray  # pointwise MI on the half's samples
    one_d: np.ndarray  # (pairs, samples): 1-D KSG of every pair on the half
    score: float  # what the kept pairs read on the samples that chose them
    groups: list  # kept pairs, grouped where they depend on each other


def _read_pairs(ex, ey, cx, cy, tx, ty, *, choose, k, seed, tol) -> _Reading:
    """Pointwise MI on ``(ex, ey)`` of matched pairs chosen on other samples ``(cx, cy)``.

    1. pairs are kept on the chooser samples ``(cx, cy)``, never the scored ones (so
       independent data read 0 on average): with ``choose="ksg"`` every leading pair up to the
       last one whose 1-D KSG estimate is clearly positive (above 2 sd of its value on
       independent data, ≈ 0.87 / sqrt(n) bits for k = 3); with ``"correlation"`` every pair
       whose correlation is clearly non-zero (z > 3);
    2. two kept pairs are joined into one group when the KSG estimate of
       ``I((u_i, v_i); (u_j, v_j))`` on ``(tx, ty)`` exceeds ``tol`` bits (the same
       information seen in several pairs, e.g. clusters, is then counted once);
    3. a group of one pair is read by its Gaussian copula (:func:`copula_mi`, a lower bound
       with little bias and noise) unless 1-D KSG reads clearly more on the chooser samples
       (by 4 sd of KSG on independent data: information that is not Gaussian; a smaller
       margin lets KSG's noise on eight weak pairs, 2–3 sd at the most, pass for it); larger groups
       by joint KSG; the groups' pointwise estimates are summed.
    """
    m = ex.shape[1]

    def ksg1(px, py, i):
        return ksg_mi(px[:, [i]], py[:, [i]], k=k, seed=seed)

    on_c = np.array([ksg1(cx, cy, i).mean() for i in range(m)])
    sd0 = 0.87 / np.sqrt(len(cx))  # sd of a 1-D KSG estimate on independent data
    if choose == "ksg":
        informative = np.flatnonzero(on_c > 2 * sd0)
        kept = list(range(informative[-1] + 1)) if informative.size else []
    else:
        r = _matched_corr(cx, cy)
        z = np.arctanh(np.clip(r, -0.999999, 0.999999)) * np.sqrt(len(cx) - 3)
        kept = [int(i) for i in np.flatnonzero(z > 3.0)]
    on_gauss = {i: copula_mi(cx[:, i], cy[:, i], seed=seed).mean() for i in kept}
    use_ksg = {i: on_c[i] > on_gauss[i] + 4 * sd0 for i in kept}
    score = float(sum(on_c[i] if use_ksg[i] else on_gauss[i] for i in kept))
    parent = {i: i for i in kept}

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for a_pos, i in enumerate(kept):
        for j in kept[a_pos + 1 :]:
            dep = ksg_mi(np.c_[tx[:, i], ty[:, i]], np.c_[tx[:, j], ty[:, j]], k=k, seed=seed)
            if dep.mean() > tol:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in kept:
        groups.setdefault(root(i), []).append(i)
    one_d = np.array([ksg1(ex, ey, i) for i in range(m)]).reshape(m, len(ex))
    pmi = np.zeros(len(ex))
    for g in groups.values():
        if len(g) > 1:
            pmi += ksg_mi(ex[:, g], ey[:, g], k=k, seed=seed)
        elif use_ksg[g[0]]:
            pmi += one_d[g[0]]
        else:
            pmi += copula_mi(ex[:, g[0]], ey[:, g[0]], seed=seed)
    return _Reading(pmi, one_d, score, sorted(groups.values()))


SHRINKAGE = (0.0, 0.3, 0.6, 0.9, 1.0)


def _matched_gaussian_mi(pa, pb) -> float:
    """Gaussian MI (nats) summed over matched columns of ``pa``, ``pb`` (negative ρ as 0)."""
    rho = np.clip(_matched_corr(pa, pb), 0.0, 0.999)
    return float(-0.5 * np.log1p(-rho**2).sum())


def _linear_canonical(a, b, idx, dims, *, seed, folds=3, shrinkage=SHRINKAGE):
    """Leading ridge-canonical variates of ``(a, b)`` fitted on ``idx``, with held-out copies.

    ``idx`` is split into ``folds`` parts; for each ``g`` in ``shrinkage`` the directions fitted
    without a part project that part, and the ``g`` whose held-out variates keep the most
    Gaussian MI is refitted on all of ``idx``.  Returns the variates of every sample under that
    fit, ``(n, r)`` per side, and the held-out variates of the ``idx`` samples (each projected
    by a fit that did not see it), on which the pairs can be chosen.
    """
    part = np.random.default_rng([seed, 17]).permutation(idx.size) % folds
    r = min(a.shape[1], b.shape[1], dims)  # the variates :func:`_cca` returns per side
    best = None
    for g in shrinkage:
        hx, hy = np.zeros((idx.size, r)), np.zeros((idx.size, r))
        for f in range(folds):
            ma, wa, mb, wb, _ = _cca(a[idx[part != f]], b[idx[part != f]], dims=dims, g=g)
            hx[part == f] = (a[idx[part == f]] - ma) @ wa
            hy[part == f] = (b[idx[part == f]] - mb) @ wb
        s = _matched_gaussian_mi(hx, hy)
        if best is None or s > best[0]:
            best = (s, g, hx, hy)
    _, g, hx, hy = best
    ma, wa, mb, wb, _ = _cca(a[idx], b[idx], dims=dims, g=g)
    return (a - ma) @ wa, (b - mb) @ wb, hx, hy


def _pca_project(a: np.ndarray, ref_idx: np.ndarray, dims: int) -> np.ndarray:
    """Scores of ``a`` on the ``dims`` leading principal axes of ``a[ref_idx]`` (not whitened)."""
    ref = a[ref_idx]
    m = ref.mean(axis=0)
    centred = ref - m
    if centred.shape[1] <= centred.shape[0]:
        w, v = np.linalg.eigh(centred.T @ centred)
        axes = v[:, np.argsort(w)[::-1][:dims]]
    else:
        # more columns than samples: the axes from the samples' Gram matrix (n × n), never a
        # d × d covariance (5,000 columns × 300 rows: 0.1 s instead of 44 s and 1.3 GB)
        w, u = np.linalg.eigh(centred @ centred.T)
        order = np.argsort(w)[::-1][:dims]
        w, u = w[order], u[:, order]
        keep = w > 1e-12 * max(w[0], 1e-300)
        axes = centred.T @ (u[:, keep] / np.sqrt(w[keep]))
    return (a - m) @ axes


def _whiten_apply(z, ref_idx, idx):
    m = z[ref_idx].mean(axis=0)
    c = np.cov(z[ref_idx] - m, rowvar=False, bias=True).reshape(z.shape[1], z.shape[1])
    return (z[idx] - m) @ _inv_sqrt(c)


def latent_mi(x, y, *, seed: int = 0, **kwargs) -> float:
    """Latent mutual information ``I(x; y)`` in bits.

    Thin wrapper of :func:`estimate_mi` returning ``estimate_mi(x, y, seed=seed, **kwargs).mi``;
    see there for the options (notably ``eval_idx`` for a fixed held-out evaluation set).

    Examples
    --------
    >>> from helpers import groundtruth as gt
    >>> x, y, truth = gt.gaussian_lowrank(3000, dim_x=30, dim_y=1, mi_bits=0.5, seed=2)
    >>> abs(latent_mi(x, y, seed=0) - truth) < 0.15
    True
    """
    return estimate_mi(x, y, seed=seed, **kwargs).mi


# ----------------------------------------------------------------------------- class labels


def discrete_mi(a, b) -> float:
    """Plug-in mutual information ``I(a; b)`` in bits of two discrete variables.

    ``H(a) + H(b) - H(a, b)`` from the empirical joint frequencies, as ``latentmi.ksg.midd``
    (NPEET) computes it for the paper's predicted-against-true label MI.

    Examples
    --------
    >>> discrete_mi([0, 1, 0, 1], [0, 1, 0, 1])
    1.0
    >>> discrete_mi([0, 0, 1, 1], [0, 1, 0, 1])
    0.0
    """
    a = np.asarray(a).reshape(len(a), -1) if np.ndim(a) > 1 else np.asarray(a)
    b = np.asarray(b).reshape(len(b), -1) if np.ndim(b) > 1 else np.asarray(b)
    if len(a) != len(b) or len(a) == 0:
        msg = f"a and b must be non-empty and of equal length, got {len(a)} and {len(b)}"
        raise ValueError(msg)

    def codes(v):
        v = v if v.ndim == 1 else np.array([tuple(r) for r in v.tolist()], dtype=object)
        return np.unique(v.astype(str) if v.dtype == object else v, return_inverse=True)[1]

    ca, cb = codes(a).ravel(), codes(b).ravel()
    joint = np.unique(ca * (cb.max() + 1) + cb, return_counts=True)[1]

    def entropy(counts):
        p = counts / counts.sum()
        return float(-(p * np.log2(p)).sum())

    h = entropy(np.bincount(ca)) + entropy(np.bincount(cb)) - entropy(joint)
    return float(max(h, 0.0)) if abs(h) > 1e-12 else 0.0


def balanced_one_vs_all(labels, target, *, seed: int = 0) -> np.ndarray:
    """Indices of a class-balanced sample for a one-vs-all problem ``labels == target``.

    Takes ``n = min(#target, #other)`` samples from each side without replacement (seeded),
    so the binary label has one bit of entropy: the paper's balanced resampling (the authors'
    Caltech101 notebooks keep every member of the class and draw as many others; their
    TissueMNIST script draws ``n`` from each side with replacement).  Returned sorted.

    Examples
    --------
    >>> labels = np.array([0, 0, 0, 1, 2, 2, 1])
    >>> idx = balanced_one_vs_all(labels, 1, seed=0)
    >>> int((labels[idx] == 1).sum()), int((labels[idx] != 1).sum())
    (2, 2)
    """
    labels = np.asarray(labels)
    pos = np.flatnonzero(labels == target)
    neg = np.flatnonzero(labels != target)
    n = min(pos.size, neg.size)
    if n == 0:
        msg = f"class {target!r} has {pos.size} members and {neg.size} others; need both"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.choice(pos, n, replace=False),
                                   rng.choice(neg, n, replace=False)]))


__all__ += ["balanced_one_vs_all", "discrete_mi"]
