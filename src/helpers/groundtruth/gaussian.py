"""Gaussian ground truth and the paper's Box-1 channel (see :mod:`helpers.groundtruth`).

Example
-------
>>> from helpers.groundtruth import gaussian_lowrank
>>> x, y, mi = gaussian_lowrank(2000, dim_x=50, dim_y=3, mi_bits=1.0, seed=0)
>>> x.shape, y.shape, round(mi, 6)
((2000, 50), (2000, 3), 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import integrate, optimize, special, stats

__all__ = [
    "Box1Sample",
    "box1_channel",
    "box1_gaussian_mi",
    "gaussian_lowrank",
    "gaussian_lowrank_cov",
    "gaussian_mi",
    "labelled_mixture",
    "mixture_mi",
]

_LOG2 = np.log(2.0)


def gaussian_mi(cov: np.ndarray, dim_x: int) -> float:
    """Mutual information (bits) between the two blocks of a Gaussian vector.

    ``I(X; Y) = ½ log2(det Σx · det Σy / det Σ)`` with ``Σx = cov[:dim_x, :dim_x]``,
    ``Σy = cov[dim_x:, dim_x:]`` and ``Σ = cov``.

    Parameters
    ----------
    cov
        Joint covariance of ``(X, Y)``, symmetric positive definite.
    dim_x
        Number of leading coordinates that form ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> rho = 0.9
    >>> round(gaussian_mi(np.array([[1, rho], [rho, 1]]), 1), 6)  # -½ log2(1 - ρ²)
    1.197964
    """
    cov = np.asarray(cov, dtype=float)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        msg = f"cov must be a square matrix, got shape {cov.shape}"
        raise ValueError(msg)
    if not 0 < dim_x < cov.shape[0]:
        msg = f"dim_x must be between 1 and {cov.shape[0] - 1}, got {dim_x}"
        raise ValueError(msg)
    dets = []
    for block in (cov[:dim_x, :dim_x], cov[dim_x:, dim_x:], cov):
        sign, logdet = np.linalg.slogdet(block)
        if sign <= 0:
            msg = "cov is not positive definite"
            raise ValueError(msg)
        dets.append(logdet)
    return float(0.5 * (dets[0] + dets[1] - dets[2]) / _LOG2)


def _lowrank_loadings(dim_x: int, dim_y: int, rank: int, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((dim_x, rank)) / np.sqrt(rank)
    b = rng.standard_normal((dim_y, rank)) / np.sqrt(rank)
    return a, b


def gaussian_lowrank_cov(
    dim_x: int,
    dim_y: int,
    *,
    scale: float,
    rank: int | None = None,
    noise_x: float = 1.0,
    noise_y: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Joint covariance of the low-rank model behind :func:`gaussian_lowrank`.

    ``X = scale · A z + noise_x · ε_x`` and ``Y = scale · B z + noise_y · ε_y`` with
    ``z ~ N(0, I_rank)``, so ``Σ = [[s² A Aᵀ + σx² I, s² A Bᵀ], [s² B Aᵀ, s² B Bᵀ + σy² I]]``.
    The loadings ``A``, ``B`` are drawn from ``seed`` exactly as in :func:`gaussian_lowrank`.
    """
    rank = _default_rank(dim_y) if rank is None else rank
    a, b = _lowrank_loadings(dim_x, dim_y, rank, seed)
    s2 = float(scale) ** 2
    top = np.hstack([s2 * a @ a.T + noise_x**2 * np.eye(dim_x), s2 * a @ b.T])
    bottom = np.hstack([s2 * b @ a.T, s2 * b @ b.T + noise_y**2 * np.eye(dim_y)])
    return np.vstack([top, bottom])


def _default_rank(dim_y: int) -> int:
    return min(dim_y, 2)


def lowrank_mi(dim_x, dim_y, scale, rank, noise_x, noise_y, seed) -> float:
    # Block-determinant form of the log-det formula, cheap for dim_x up to thousands:
    # det Σx = σx^(2 dx) det(I_r + s²/σx² AᵀA) and likewise for Σy and Σ.
    a, b = _lowrank_loadings(dim_x, dim_y, rank, seed)
    s2 = scale**2
    eye = np.eye(rank)
    ga, gb = a.T @ a, b.T @ b
    ld_x = np.linalg.slogdet(eye + s2 / noise_x**2 * ga)[1]
    ld_y = np.linalg.slogdet(eye + s2 / noise_y**2 * gb)[1]
    ld_xy = np.linalg.slogdet(eye + s2 / noise_x**2 * ga + s2 / noise_y**2 * gb)[1]
    return float(0.5 * (ld_x + ld_y - ld_xy) / _LOG2)


def gaussian_lowrank(
    n: int,
    *,
    dim_x: int,
    dim_y: int,
    mi_bits: float,
    rank: int | None = None,
    noise_x: float = 1.0,
    noise_y: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Jointly Gaussian ``X``, ``Y`` sharing a low-rank latent, with MI solved to a target.

    ``z ~ N(0, I_rank)``, ``X = s·A z + noise_x·ε_x`` (``dim_x`` coordinates),
    ``Y = s·B z + noise_y·ε_y`` (``dim_y`` coordinates), loadings ``A``, ``B`` with i.i.d.
    ``N(0, 1/rank)`` entries.  The signal scale ``s`` is found by root finding so that the
    analytic ``I(X; Y)`` (:func:`gaussian_mi`'s log-det formula, evaluated in its low-rank
    block form) equals ``mi_bits``.

    Parameters
    ----------
    n
        Number of samples.
    dim_x, dim_y
        Dimensions of ``X`` and ``Y``.
    mi_bits
        Target mutual information in bits (> 0).
    rank
        Dimension of the shared latent; default ``min(dim_y, 2)``.  The information is spread
        over ``rank`` canonical pairs.
    noise_x, noise_y
        Standard deviations of the independent noise added to each coordinate.
    seed
        Seed for the loadings and the samples.

    Returns
    -------
    x, y, mi
        ``(n, dim_x)`` and ``(n, dim_y)`` float arrays and the exact MI in bits.

    Examples
    --------
    >>> x, y, mi = gaussian_lowrank(500, dim_x=20, dim_y=1, mi_bits=2.0, seed=1)
    >>> round(mi, 9)
    2.0
    """
    for name, value, low in (("n", n, 2), ("dim_x", dim_x, 1), ("dim_y", dim_y, 1)):
        if int(value) != value or value < low:
            msg = f"{name} must be an integer >= {low}, got {value!r}"
            raise ValueError(msg)
    rank = _default_rank(dim_y) if rank is None else int(rank)
    if not 1 <= rank <= min(dim_x, dim_y):
        msg = f"rank must be between 1 and min(dim_x, dim_y) = {min(dim_x, dim_y)}, got {rank}"
        raise ValueError(msg)
    if not np.isfinite(mi_bits) or mi_bits <= 0:
        msg = f"mi_bits must be a positive finite number, got {mi_bits!r}"
        raise ValueError(msg)
    if noise_x <= 0 or noise_y <= 0:
        msg = "noise_x and noise_y must be positive"
        raise ValueError(msg)

    def gap(log_s):
        return lowrank_mi(dim_x, dim_y, np.exp(log_s), rank, noise_x, noise_y, seed) - mi_bits

    lo, hi = -10.0, 2.0
    while gap(hi) < 0:
        hi += 2.0
        if hi > 40:
            msg = f"cannot reach mi_bits={mi_bits} with this model"
            raise ValueError(msg)
    log_s = optimize.brentq(gap, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500)
    scale = float(np.exp(log_s))
    mi = lowrank_mi(dim_x, dim_y, scale, rank, noise_x, noise_y, seed)

    a, b = _lowrank_loadings(dim_x, dim_y, rank, seed)
    rng = np.random.default_rng([seed, 1])
    z = rng.standard_normal((n, rank))
    x = scale * z @ a.T + noise_x * rng.standard_normal((n, dim_x))
    y = scale * z @ b.T + noise_y * rng.standard_normal((n, dim_y))
    return x, y, mi


# ----------------------------------------------------------------------------- labels


def mixture_mi(means: np.ndarray, probs: np.ndarray | None = None, *, sd: float = 1.0) -> float:
    """Exact MI (bits) between a label ``C`` and ``T | C ~ N(means[C], sd²)`` (1-D mixture).

    ``I = H(C) − E_T[H(C | T)]``, the expectation computed by adaptive quadrature.

    Examples
    --------
    >>> round(mixture_mi([0.0, 100.0]), 6)  # two far-apart classes: H = 1 bit
    1.0
    >>> round(mixture_mi([0.0, 0.0]), 6)  # identical classes: no information
    0.0
    """
    means = np.asarray(means, dtype=float).ravel()
    k = means.size
    probs = np.full(k, 1.0 / k) if probs is None else np.asarray(probs, dtype=float).ravel()
    if probs.size != k or np.any(probs <= 0) or not np.isclose(probs.sum(), 1.0):
        msg = "probs must be positive, sum to 1 and match means"
        raise ValueError(msg)
    h_c = -np.sum(probs * np.log(probs))
    log_p = np.log(probs)

    def integrand(t):
        logj = log_p + stats.norm.logpdf(t, means, sd)  # log p(c, t)
        log_marg = special.logsumexp(logj)
        post = np.exp(logj - log_marg)
        h_post = -np.sum(post * np.where(post > 0, logj - log_marg, 0.0))
        return np.exp(log_marg) * h_post

    # integrate piecewise around each mean so no mode is missed
    grid = np.unique(np.concatenate([means - 12 * sd, means, means + 12 * sd]))
    total = 0.0
    for lo, hi in zip(grid[:-1], grid[1:], strict=True):
        val, _ = integrate.quad(integrand, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)
        total += val
    return float(max(h_c - total, 0.0) / _LOG2)


def labelled_mixture(
    n: int,
    *,
    dim_x: int,
    n_classes: int,
    mi_bits: float | None = None,
    separation: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Class labels and a Gaussian mixture in ``dim_x`` dimensions with exactly known MI.

    Labels are uniform over ``n_classes``; ``X = m_C · u + ε`` with a random unit direction
    ``u`` and ``ε ~ N(0, I)``.  The class means ``m_c = separation · c`` lie on a line, so
    ``u·X`` is a sufficient statistic and the MI is the 1-D :func:`mixture_mi`.  Give either
    ``separation`` (distance between neighbouring means, in noise sd) or a target ``mi_bits``
    (``< log2 n_classes``) that the separation is solved for.

    Returns
    -------
    x, labels, mi
        ``(n, dim_x)`` floats, ``(n,)`` labels as strings ``"c0"``, ``"c1"``, … and the MI in bits.

    Examples
    --------
    >>> x, labels, mi = labelled_mixture(1000, dim_x=30, n_classes=4, separation=20.0)
    >>> round(mi, 6)  # well separated: MI = H(labels) = 2 bits
    2.0
    """
    if n_classes < 2:
        msg = "n_classes must be at least 2"
        raise ValueError(msg)
    if (mi_bits is None) == (separation is None):
        msg = "give exactly one of mi_bits and separation"
        raise ValueError(msg)
    steps = np.arange(n_classes, dtype=float)
    if separation is None:
        h = np.log2(n_classes)
        if not 0 < mi_bits < h:
            msg = f"mi_bits must be in (0, log2(n_classes) = {h:.4f}), got {mi_bits}"
            raise ValueError(msg)
        separation = optimize.brentq(
            lambda s: mixture_mi(s * steps) - mi_bits, 1e-6, 60.0, xtol=1e-13, rtol=1e-13
        )
    mi = mixture_mi(separation * steps)
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(dim_x)
    u /= np.linalg.norm(u)
    c = rng.integers(0, n_classes, size=n)
    x = np.outer(separation * c, u) + rng.standard_normal((n, dim_x))
    labels = np.array([f"c{i}" for i in c])
    return x, labels, mi


# ----------------------------------------------------------------------------- Box 1


def box1_gaussian_mi(eta, *, sigma_y: float = 1.0, sigma_u: float = 1.0, dim: int = 1):
    """Analytic ``I(Y; Z)`` (bits) of the Box-1 Gaussian channel.

    ``Y ~ N(0, σY² I)``, ``X = Y + U`` with ``U ~ N(0, σU² I)``, ``Z = η X + N(0, I)``::

        I(Y; Z) = dim · ½ log2((η² (σY² + σU²) + 1) / (1 + σU² η²))

    It rises from 0 (``η = 0``) to ``I(Y; X) = dim · ½ log2(1 + σY²/σU²)`` (``η → ∞``).

    Examples
    --------
    >>> round(float(box1_gaussian_mi(1e9)), 6)  # ½ log2(2)
    0.5
    """
    eta2 = np.asarray(eta, dtype=float) ** 2
    return dim * 0.5 * np.log2((eta2 * (sigma_y**2 + sigma_u**2) + 1) / (1 + sigma_u**2 * eta2))


@dataclass
class Box1Sample:
    """Output of :func:`box1_channel`.

    Attributes
    ----------
    y
        Latent auxiliary signal, ``(n, dim)``.
    x
        Noiseless "true expression" latent ``X = Y + U``, ``(n, dim)``.
    rates
        Per-gene relative expression ``softplus(X Wᵀ + b)`` normalised to sum 1 per cell,
        ``(n, n_genes)``.
    counts
        ``{depth: (n, n_genes) int counts ~ Poisson(depth · rates)}``.
    mi_yx
        ``I(Y; X)`` in bits, the ceiling reached at infinite depth (SNR → ∞).
    sigma_y, sigma_u
        Channel parameters.
    """

    y: np.ndarray
    x: np.ndarray
    rates: np.ndarray
    counts: dict = field(default_factory=dict)
    mi_yx: float = 0.0
    sigma_y: float = 1.0
    sigma_u: float = 1.0

    def gaussian_mi(self, eta):
        """Box-1 Gaussian-channel MI (bits) at signal-to-noise ``eta`` for this sample's model."""
        return box1_gaussian_mi(
            eta, sigma_y=self.sigma_y, sigma_u=self.sigma_u, dim=self.y.shape[1]
        )


def box1_channel(
    n: int,
    *,
    dim: int = 2,
    n_genes: int = 200,
    depths=(100, 1000, 10000),
    sigma_y: float = 1.0,
    sigma_u: float = 0.5,
    loading_scale: float = 1.0,
    seed: int = 0,
) -> Box1Sample:
    """Sample the Box-1 channel with Poisson measurement at several sequencing depths.

    ``Y ~ N(0, σY² I_dim)`` (the auxiliary signal), ``X = Y + U`` with ``U ~ N(0, σU² I)``
    (true expression state), per-gene rates ``r = softplus(X Wᵀ + b)`` normalised per cell,
    and ``counts ~ Poisson(depth · r)``.  ``I(Y; counts) ≤ I(Y; X)`` and approaches it as the
    depth grows; the Gaussian version (``Z = η X + N(0, I)``) has the closed form
    :func:`box1_gaussian_mi`.

    Examples
    --------
    >>> s = box1_channel(300, dim=1, n_genes=50, depths=(10, 1000), seed=0)
    >>> sorted(s.counts), s.counts[10].shape, round(s.mi_yx, 6)
    ([10, 1000], (300, 50), 1.160964)
    """
    if n < 1 or dim < 1 or n_genes < 1:
        msg = "n, dim and n_genes must be positive"
        raise ValueError(msg)
    depths = tuple(depths)
    if any(d <= 0 for d in depths):
        msg = "depths must be positive"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    w = loading_scale * rng.standard_normal((n_genes, dim)) / np.sqrt(dim)
    b = rng.normal(-1.0, 1.0, size=n_genes)
    y = sigma_y * rng.standard_normal((n, dim))
    x = y + sigma_u * rng.standard_normal((n, dim))
    eta = x @ w.T + b
    rates = np.logaddexp(0.0, eta)
    rates /= rates.sum(axis=1, keepdims=True)
    counts = {d: rng.poisson(d * rates) for d in depths}
    mi_yx = float(dim * 0.5 * np.log2(1 + sigma_y**2 / sigma_u**2))
    return Box1Sample(y=y, x=x, rates=rates, counts=counts, mi_yx=mi_yx, sigma_y=sigma_y,
                      sigma_u=sigma_u)
