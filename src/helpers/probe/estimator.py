"""The estimate itself: inputs checked and aligned, the split, the networks and the linear
path, their canonical pairs read and summed (:func:`estimate_mi`, :func:`latent_mi`)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from .._torch import torch_threads
from .copula import _Reading, read_pairs
from .critic import CRITIC_PATHS, fit_critics
from .ksg import ksg_mi
from .linear import cca, linear_canonical, matched_corr, pca_project, whiten_apply
from .networks import build, standardise, train
from .paper import estimate_paper
from .result import MIN_EVAL, MIN_TRAIN, ProbeResult

__all__ = [
    "ProbeOptions",
    "make_split",
    "prepare_y",
    "COPY_FRACTION",
    "COPY_DISTINCT",
    "estimate_mi",
    "latent_mi",
]


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


def prepare_y(y, y_kind: str):
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
#: warns: this fraction of them, with at least this many distinct copied values, each value
#: copied about once (at least half as many distinct values as copies).  Repeated values
#: shared by many samples are expected and not warned of: cells thinned to a UMI or two
#: embed alike (229 of 512 Visium spots in 35 values at 10 UMIs per spot).
COPY_FRACTION = 0.05


#: (see COPY_FRACTION)
COPY_DISTINCT = 10


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
        # copied samples: each value repeated about once (a copy of one sample); thinned-out
        # samples that embed alike share a few values many times over, and are no copies
        if distinct >= COPY_DISTINCT and distinct >= 0.5 * n_copied:
            warnings.warn(
                f"{n_copied} of {len(eval_idx)} evaluation samples ({distinct} distinct) are "
                "exact copies of training samples (the same x and y): duplicated samples "
                "inflate the MI estimate. Remove the duplicates first (e.g. "
                "helpers.datasets.duplicated_rows).", UserWarning, stacklevel=3)
    return n_copied


@dataclass(frozen=True)
class ProbeOptions:
    """The estimator's settings, in one place (:func:`estimate_mi`, :func:`latent_mi`).

    Every field can also be given to :func:`estimate_mi` by name, on top of an ``options``
    object; a task that probes with other settings keeps one ``ProbeOptions`` (it is frozen
    and hashable, so it can name the probe of a task's jobs).

    Attributes
    ----------
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
    monitor
        Which validation loss early stopping watches: ``"total"`` (default) or one part.
    critic
        The learned-critic paths (:mod:`.critic`; continuous ``y`` with ``select="sum"``):
        two separable critics trained by InfoNCE on the fitting part, one on the inputs'
        radii (a shared scale), one on the Gaussianised columns (or, for more than 10
        columns, their leading canonical variates) with the radii; each half of the
        evaluation part takes a critic where its InfoNCE bound on the other half reads more
        than the canonical pairs did.  ``"auto"`` (default) trains them only where
        :func:`.critic.scale_test` finds the squared radii of ``x`` and ``y`` more dependent
        than their canonical correlations imply for a Gaussian (z > 3), so Gaussian-like
        inputs cost nothing extra; ``True`` always, ``False`` never.

    Examples
    --------
    >>> ProbeOptions(max_epochs=40).max_epochs, ProbeOptions().method
    (40, 'canonical')
    >>> ProbeOptions.resolve(ProbeOptions(k=5), {"max_epochs": 7})
    ProbeOptions(eval_frac=0.5, val_frac=0.2, latent_dims=16, hidden=128, k=5, max_pairs=None, select='sum', alpha=3.0, lam=1.0, lr=None, batch_size=512, max_epochs=7, patience=None, weight_decay=0.0, dropout=0.2, in_drop=0.0, cca_on='fit', monitor='total', pca_dims=128, n_threads=1, progress=False, method='canonical', group_tol=0.05, linear=True, critic='auto')
    >>> ProbeOptions.resolve(None, {"epochs": 3})
    Traceback (most recent call last):
    ...
    TypeError: estimate_mi() got an unknown option 'epochs'; the options are the fields of ProbeOptions: eval_frac, val_frac, latent_dims, hidden, k, max_pairs, select, alpha, lam, lr, batch_size, max_epochs, patience, weight_decay, dropout, in_drop, cca_on, monitor, pca_dims, n_threads, progress, method, group_tol, linear, critic.
    """

    eval_frac: float = 0.5
    val_frac: float = 0.2
    latent_dims: int = 16
    hidden: int = 128
    k: int = 3
    max_pairs: int | None = None
    select: str = "sum"
    alpha: float | tuple[float, float] = 3.0
    lam: float = 1.0
    lr: float | None = None
    batch_size: int = 512
    max_epochs: int = 300
    patience: int | None = None
    weight_decay: float = 0.0
    dropout: float = 0.2
    in_drop: float = 0.0
    cca_on: str = "fit"
    monitor: str = "total"
    pca_dims: int | None = 128
    n_threads: int | None = 1
    progress: bool = False
    method: str = "canonical"
    group_tol: float = 0.05
    linear: bool = True
    critic: bool | str = "auto"

    @classmethod
    def resolve(cls, options: ProbeOptions | None, overrides: dict) -> ProbeOptions:
        """``options`` (default: the defaults) with ``overrides`` applied by field name."""
        import dataclasses

        base = cls() if options is None else options
        if not isinstance(base, cls):
            msg = f"options must be a ProbeOptions, got {type(base).__name__}."
            raise TypeError(msg)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            msg = (f"estimate_mi() got an unknown option {unknown[0]!r}; the options are the "
                   f"fields of ProbeOptions: {', '.join(names)}.")
            raise TypeError(msg)
        return dataclasses.replace(base, **overrides) if overrides else base


def estimate_mi(
    x,
    y,
    *,
    seed: int = 0,
    y_kind: str = "auto",
    eval_idx=None,
    train_idx=None,
    options: ProbeOptions | None = None,
    **overrides,
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
    options
        The estimator's settings (:class:`ProbeOptions`; default: its defaults).
    **overrides
        Any field of :class:`ProbeOptions` by name (``max_epochs=40``, ``method="paper"``),
        applied on top of ``options``; an unknown name is a ``TypeError``.

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
    from .._checks import check_seed

    opts = ProbeOptions.resolve(options, overrides)
    eval_frac, val_frac, latent_dims, hidden = opts.eval_frac, opts.val_frac, opts.latent_dims, \
        opts.hidden
    k, max_pairs, select, alpha, lam = opts.k, opts.max_pairs, opts.select, opts.alpha, opts.lam
    lr, batch_size, max_epochs, patience = opts.lr, opts.batch_size, opts.max_epochs, \
        opts.patience
    weight_decay, dropout, in_drop = opts.weight_decay, opts.dropout, opts.in_drop
    cca_on, monitor, pca_dims, n_threads = opts.cca_on, opts.monitor, opts.pca_dims, \
        opts.n_threads
    progress, method, group_tol, linear = opts.progress, opts.method, opts.group_tol, \
        opts.linear
    critic_mode = opts.critic
    if critic_mode not in (True, False, "auto"):
        msg = f"critic must be True, False or 'auto', got {critic_mode!r}"
        raise ValueError(msg)
    seed = check_seed(seed)
    y = _align_y(x, y)
    x = _check_x(x)
    kind, yarr = prepare_y(y, y_kind)
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
        return estimate_paper(
            x, kind, yarr, seed=seed, train_idx=train_idx, eval_idx=eval_idx, k=k,
            latent_dims=latent_dims, lr=lr, batch_size=batch_size, max_epochs=max_epochs,
            patience=patience, n_threads=n_threads, t0=t0,
        )
    rng = np.random.default_rng([seed, 11])
    perm = rng.permutation(train_idx)
    n_val = max(int(round(val_frac * perm.size)), 20)
    val_idx, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

    # ---- standardise on the fitting part
    xs, keep = standardise(x, x[fit_idx])
    if xs.shape[1] == 0:
        msg = "x is constant on the training samples"
        raise ValueError(msg)
    if pca_dims is not None and xs.shape[1] > pca_dims:
        xs = pca_project(xs, fit_idx, int(pca_dims))
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
        ys, keep_y = standardise(yarr, yarr[fit_idx])
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
        model = build(torch, xs.shape[1], ys.shape[1] if kind != "categorical" else 0,
                       kx, ky, hidden, kind, n_classes, dropout, in_drop)
        tx = torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32))
        ty = (torch.from_numpy(ys).long() if kind == "categorical"
              else torch.from_numpy(np.ascontiguousarray(ys, dtype=np.float32)))
        fit_t, val_t = torch.from_numpy(fit_idx), torch.from_numpy(val_idx)
        history, best_epoch = train(
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
    groups, path_names, critic_z = None, None, None
    if select == "all":
        ex = whiten_apply(zx, val_idx, eval_idx)
        ey = ys[eval_idx] if discrete else whiten_apply(yrep, val_idx, eval_idx)
        pmi = ksg_mi(ex, ey, k=k, discrete_y=discrete, seed=seed)
        by_pairs, corr, n_pairs = np.array([pmi.mean()]), np.array([]), zx.shape[1]
    else:
        ref = {"val": val_idx, "fit": fit_idx, "train": train_idx}[cca_on]
        ma, wa, mb, wb, corr = cca(zx[ref], yrep[ref])
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
            critics = []
            if critic_mode is not False:
                x_raw = x[:, keep] if xs.shape[1] == int(keep.sum()) else xs
                critics, critic_z = fit_critics(
                    x_raw, yarr[:, keep_y], fit_idx, val_idx, seed=seed,
                    always=critic_mode is True, n_threads=n_threads)
            for j, h in enumerate(halves):
                o = halves[1 - j]
                # network pairs: chosen on the validation part and the other half
                reading = read_pairs(
                    ex_all[h], ey_all[h], np.vstack([vx, ex_all[o]]),
                    np.vstack([vy, ey_all[o]]), tx, ty, choose="ksg", **opts,
                )
                path_names.append("network")
                if linear:
                    # linear pairs: fitted (and chosen, held out) on every sample but this half
                    lx, ly, hx, hy = linear_canonical(
                        xs, ys, np.union1d(train_idx, eval_idx[o]), half, seed=seed)
                    if lin_x is None:
                        lin_x = np.zeros((eval_idx.size, lx.shape[1]))
                        lin_y = np.zeros((eval_idx.size, ly.shape[1]))
                    lin_x[h], lin_y[h] = lx[eval_idx[h]], ly[eval_idx[h]]
                    lin = read_pairs(lin_x[h], lin_y[h], hx, hy, hx, hy,
                                      choose="correlation", **opts)
                    if lin.score > reading.score:
                        reading, path_names[-1] = lin, "linear"
                for c in critics:
                    score = float(c.pmi(eval_idx[o]).mean())
                    if score > reading.score:
                        p_h = c.pmi(eval_idx[h])
                        reading, path_names[-1] = _Reading(p_h, p_h[None], score, [[0]]), c.name
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
            elif path_names[0] in CRITIC_PATHS:
                c = next(c for c in critics if c.name == path_names[0])
                ex, ey = c.embed(eval_idx)
            else:
                ex, ey = lin_x[:, chosen], lin_y[:, chosen]
                corr = np.abs(matched_corr(lin_x, lin_y))
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
        latent_paths=path_names, critic=critic_mode, critic_z=critic_z,
        network_x_columns=int(xs.shape[1]),
    )
    return ProbeResult(
        mi=float(np.mean(pmi)), pmi=pmi, train_idx=fit_idx, val_idx=val_idx, eval_idx=eval_idx,
        n_pairs=int(n_pairs), mi_by_pairs=by_pairs, canonical_corr=corr, latent_x=zx,
        latent_y=zy, embedding_x=ex, embedding_y=ey, y_kind=kind, history=history,
        best_epoch=best_epoch,
        timings={"fit": t_fit, "ksg": t_total - t_fit, "total": t_total}, params=params,
    )


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
