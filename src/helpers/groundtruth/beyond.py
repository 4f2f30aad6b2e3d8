"""Ground truth beyond the Gaussian: heavy tails, warps, spirals, mixtures and non-Gaussian noise.

The families of the *Beyond Normal* benchmark of mutual-information estimators (Czyż, Grabowski,
Vogt, Beerenwinkel & Marx, NeurIPS 2023), written here from their definitions, each with its
exact mutual information in bits:

============================  ====================================================================
:func:`sparse_gaussian`       ``n_pairs`` coordinate pairs ``(X_i, Y_i)`` with correlation
                              ``rho``, all other coordinates independent noise;
                              ``I = −(n_pairs/2) log2(1 − rho²)``
:func:`student_t`             a multivariate Student-t: ``(X, Y) = Z / sqrt(W / ν)``,
                              ``Z ~ N(0, Σ)``, ``W ~ χ²_ν``.  The shared scale ``W`` makes ``X``
                              and ``Y`` dependent even when uncorrelated; ``I`` is the Gaussian
                              MI of ``Σ`` plus a closed-form term in ``ν`` and the dimensions
                              (:func:`student_t_mi`)
:func:`warp`                  a monotone map of every coordinate (``asinh``, ``half_cube``:
                              ``sign(x)|x|^1.5``, ``normal_cdf``): ``I`` unchanged
:func:`spiral`                ``x ↦ R(‖x‖²) x``, a rotation in one coordinate plane whose angle
                              grows with the squared radius: a diffeomorphism, ``I`` unchanged
:func:`gaussian_mixture`      a mixture of Gaussians in the joint space; ``I`` by Monte Carlo
                              over exact log densities (its standard error is returned); the
                              ``"x"`` shape has uncorrelated ``X`` and ``Y`` that are dependent
:func:`additive_uniform`      ``Y = X + N`` with ``X ~ U(0, 1)`` and ``N ~ U(−ε, ε)`` per
                              coordinate; ``I`` in closed form
============================  ====================================================================

The mutual information is invariant under a smooth invertible map of ``X`` and one of ``Y``, so
a warped or spiralled sample keeps the MI of its base (Kraskov et al. 2004, eq. 5).

:func:`cases` lists the benchmark grid of ``benchmarks/probe_grid.py --families`` (and the
cases the tests draw from): family, dimensions, sample size and truth.

Examples
--------
>>> from helpers import groundtruth as gt
>>> x, y, mi = gt.student_t(1000, dim_x=1, dim_y=1, df=1, seed=0)
>>> round(mi, 4)  # uncorrelated Cauchy pair: all of it is the shared scale
0.3234
>>> x, y, mi = gt.sparse_gaussian(1000, dim_x=5, dim_y=5, n_pairs=2, rho=0.8, seed=0)
>>> round(mi, 4), gt.spiral(x).shape
(1.4739, (1000, 5))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = [
    "FamilyCase",
    "additive_uniform",
    "additive_uniform_mi",
    "cases",
    "gaussian_mixture",
    "sparse_gaussian",
    "spiral",
    "student_t",
    "student_t_mi",
    "warp",
    "x_mixture",
]

_LOG2 = np.log(2.0)


def _pairs_cov(dim_x: int, dim_y: int, n_pairs: int, rho: float) -> np.ndarray:
    if dim_x < 1 or dim_y < 1:
        msg = f"dim_x and dim_y must be >= 1, got {dim_x} and {dim_y}"
        raise ValueError(msg)
    if not 0 <= n_pairs <= min(dim_x, dim_y):
        msg = f"n_pairs must be in 0 … min(dim_x, dim_y) = {min(dim_x, dim_y)}, got {n_pairs}"
        raise ValueError(msg)
    if not -1 < rho < 1:
        msg = f"rho must be in (-1, 1), got {rho}"
        raise ValueError(msg)
    cov = np.eye(dim_x + dim_y)
    for i in range(n_pairs):
        cov[i, dim_x + i] = cov[dim_x + i, i] = rho
    return cov


def sparse_gaussian(
    n: int, *, dim_x: int, dim_y: int, n_pairs: int = 2, rho: float = 0.8, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """``n_pairs`` correlated coordinate pairs among independent standard-normal coordinates.

    The *sparse* multinormal of the Beyond Normal benchmark (its 2-pair tasks have
    ``rho = 0.8``: 1.474 bits); the base of the warped and spiralled families.

    Returns
    -------
    x, y, mi
        ``(n, dim_x)``, ``(n, dim_y)`` and ``−(n_pairs/2) log2(1 − rho²)`` bits.

    Examples
    --------
    >>> x, y, mi = sparse_gaussian(500, dim_x=3, dim_y=3, n_pairs=3, rho=0.9)
    >>> round(mi, 3)
    3.594
    """
    cov = _pairs_cov(dim_x, dim_y, n_pairs, rho)
    z = np.random.default_rng(seed).multivariate_normal(np.zeros(len(cov)), cov, size=n,
                                                          method="cholesky")
    mi = -0.5 * n_pairs * np.log2(1.0 - rho**2)
    return z[:, :dim_x], z[:, dim_x:], float(mi)


def _t_entropy_term(df: float, d: int) -> float:
    """The part of a ``d``-dimensional Student-t's entropy (nats) that is not ``½ log det Σ``
    or ``(d/2) log(νπ)``: ``log Γ(ν/2) − log Γ((ν+d)/2) + (ν+d)/2 · (ψ((ν+d)/2) − ψ(ν/2))``."""
    a, b = df / 2.0, (df + d) / 2.0
    return float(special.gammaln(a) - special.gammaln(b) + b * (special.digamma(b)
                                                                  - special.digamma(a)))


def student_t_mi(dispersion: np.ndarray, dim_x: int, df: float) -> float:
    """Exact MI (bits) between the blocks of a multivariate Student-t.

    The marginals of a multivariate t are t with the same ``ν`` and the matching blocks of the
    dispersion ``Σ``; with the t's differential entropy (Kotz & Nadarajah 2004, eq. 1.23)
    ``h = ½ log det Σ + (d/2) log(νπ) + c(ν, d)``, ``I = h(X) + h(Y) − h(X, Y)`` is the
    Gaussian MI of ``Σ`` plus ``c(ν, dx) + c(ν, dy) − c(ν, dx + dy)``, which is positive and
    vanishes as ``ν → ∞``.

    Examples
    --------
    >>> round(student_t_mi(np.eye(2), 1, df=1), 4), abs(round(student_t_mi(np.eye(10), 5, 1e9), 6))
    (0.3234, 0.0)
    """
    from .gaussian import gaussian_mi

    dispersion = np.asarray(dispersion, dtype=float)
    if not df > 0:
        msg = f"df must be positive, got {df}"
        raise ValueError(msg)
    dim_y = dispersion.shape[0] - dim_x
    gauss = gaussian_mi(dispersion, dim_x)
    extra = (_t_entropy_term(df, dim_x) + _t_entropy_term(df, dim_y)
             - _t_entropy_term(df, dim_x + dim_y))
    return float(gauss + extra / _LOG2)


def student_t(
    n: int, *, dim_x: int, dim_y: int, df: float, n_pairs: int = 0, rho: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """A multivariate Student-t sample: ``(X, Y) = Z / sqrt(W / ν)`` with one ``W`` per sample.

    ``Z ~ N(0, Σ)`` with ``Σ`` the identity (``n_pairs = 0``: the benchmark's "identity"
    tasks, where ``X`` and ``Y`` are uncorrelated and all the information is the shared
    scale) or with ``n_pairs`` correlated coordinate pairs as :func:`sparse_gaussian`.
    Counts share a size factor in the same way: over-dispersion is a common scale.

    Examples
    --------
    >>> x, y, mi = student_t(2000, dim_x=3, dim_y=3, df=2, seed=1)
    >>> round(mi, 4), abs(float(np.corrcoef(x[:, 0], y[:, 0])[0, 1])) < 0.1
    (0.4197, True)
    """
    cov = _pairs_cov(dim_x, dim_y, n_pairs, rho if n_pairs else 0.0)
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(len(cov)), cov, size=n, method="cholesky")
    w = rng.chisquare(df, size=(n, 1))
    t = z / np.sqrt(w / df)
    return t[:, :dim_x], t[:, dim_x:], student_t_mi(cov, dim_x, df)


_WARPS = {
    "asinh": np.arcsinh,
    "half_cube": lambda a: np.sign(a) * np.abs(a) ** 1.5,
    "normal_cdf": stats.norm.cdf,
}


def warp(a: np.ndarray, kind: str) -> np.ndarray:
    """Apply a strictly monotone map to every coordinate (the MI is unchanged).

    ``"asinh"`` (compresses heavy tails to logarithmic ones), ``"half_cube"``
    (``sign(x)|x|^1.5``, stretches them) or ``"normal_cdf"`` (``Φ(x)``: onto ``(0, 1)``).

    Examples
    --------
    >>> warp(np.array([-4.0, 0.0, 4.0]), "half_cube")
    array([-8.,  0.,  8.])
    """
    if kind not in _WARPS:
        msg = f"warp kind must be one of {sorted(_WARPS)}, got {kind!r}"
        raise ValueError(msg)
    return _WARPS[kind](np.asarray(a, dtype=float))


def spiral(a: np.ndarray, *, speed: float = 1.0, plane: tuple[int, int] | None = None
           ) -> np.ndarray:
    """Rotate each sample in one coordinate plane by an angle ``(speed / d) · ‖x‖²``.

    ``x ↦ exp(θ(x) A) x`` with ``A`` the generator of rotations in ``plane`` (default the
    first two coordinates) and ``θ = speed · ‖x‖² / d`` (the benchmark's normalised speed).  The
    radius is preserved, so the map is its own kind of inverse (rotate back by the same angle)
    and a diffeomorphism: the MI is unchanged, but the dependence is no longer linear.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0]])
    >>> np.round(spiral(x, speed=np.pi), 6)  # θ = π · 1 / 2: a quarter turn
    array([[0., 1.]])
    """
    a = np.array(a, dtype=float, copy=True)
    if a.ndim != 2 or a.shape[1] < 2:
        msg = f"spiral needs an (n, d) array with d >= 2, got shape {a.shape}"
        raise ValueError(msg)
    i, j = plane if plane is not None else (0, 1)
    theta = speed * np.einsum("ij,ij->i", a, a) / a.shape[1]
    c, s = np.cos(theta), np.sin(theta)
    ai, aj = a[:, i].copy(), a[:, j].copy()
    a[:, i], a[:, j] = c * ai - s * aj, s * ai + c * aj
    return a


def gaussian_mixture(
    n: int, *, means: np.ndarray, covs: np.ndarray, weights: np.ndarray | None = None,
    dim_x: int, seed: int = 0, n_mc: int = 200_000,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """A sample of a Gaussian mixture in the joint ``(X, Y)`` space, and its MI by Monte Carlo.

    ``I = E[log p(x, y) − log p(x) − log p(y)]`` over ``n_mc`` draws from the mixture itself,
    with every density exact (the marginals of a Gaussian mixture are the mixtures of the
    blocks); the Monte Carlo standard error is returned beside it (about 0.002 bit at the
    default ``n_mc`` for the mixtures here).

    Returns
    -------
    x, y, mi, mi_se
        The sample, the MI and its Monte Carlo standard error, both in bits.
    """
    means = np.atleast_2d(np.asarray(means, dtype=float))
    covs = np.asarray(covs, dtype=float)
    k, d = means.shape
    weights = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=float)
    if covs.shape != (k, d, d) or weights.shape != (k,) or not 0 < dim_x < d:
        msg = "means (k, d), covs (k, d, d), weights (k,) and 0 < dim_x < d are needed"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)

    def draw(m: int) -> np.ndarray:
        comp = rng.choice(k, size=m, p=weights)
        out = np.empty((m, d))
        for c in range(k):
            sel = comp == c
            out[sel] = rng.multivariate_normal(means[c], covs[c], size=int(sel.sum()),
                                               method="cholesky")
        return out

    def log_density(z: np.ndarray, cols: slice) -> np.ndarray:
        parts = [np.log(weights[c]) + stats.multivariate_normal(
            means[c, cols], covs[c][cols, cols]).logpdf(z[:, cols]).reshape(len(z))
            for c in range(k)]
        return special.logsumexp(np.stack(parts), axis=0)

    sample = draw(n)
    mc = draw(n_mc)
    full, xs, ys = slice(None), slice(0, dim_x), slice(dim_x, d)
    pmi = (log_density(mc, full) - log_density(mc, xs) - log_density(mc, ys)) / _LOG2
    return (sample[:, :dim_x], sample[:, dim_x:], float(pmi.mean()),
            float(pmi.std(ddof=1) / np.sqrt(n_mc)))


def x_mixture(n: int, *, dim: int = 1, rho: float = 0.9, seed: int = 0, n_mc: int = 200_000
              ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The "X" shape: an equal mixture of pairs correlated ``+rho`` and ``−rho``.

    ``dim`` coordinate pairs share the component, so every coordinate of ``X`` is uncorrelated
    with every coordinate of ``Y`` (a linear probe sees nothing) while ``Y`` tells the sign of
    the pairing.  MI and its standard error by :func:`gaussian_mixture`.

    Examples
    --------
    >>> x, y, mi, se = x_mixture(1000, dim=1, rho=0.9, n_mc=20000)
    >>> abs(float(np.corrcoef(x[:, 0], y[:, 0])[0, 1])) < 0.1, 0.5 < mi < 0.9
    (True, True)
    """
    covs = np.stack([_pairs_cov(dim, dim, dim, s * rho) for s in (1.0, -1.0)])
    return gaussian_mixture(n, means=np.zeros((2, 2 * dim)), covs=covs, dim_x=dim, seed=seed,
                            n_mc=n_mc)


def additive_uniform_mi(epsilon: float) -> float:
    """Exact ``I(X; X + N)`` (bits) for ``X ~ U(0, 1)``, ``N ~ U(−ε, ε)``.

    ``h(N) = log 2ε`` and the sum's trapezoidal density gives ``h(X + N) = ε`` for
    ``ε ≤ ½`` and ``log 2ε + 1/(4ε)`` above, so ``I = ε − log 2ε`` or ``1/(4ε)`` nats.

    Examples
    --------
    >>> round(additive_uniform_mi(0.1), 4), round(additive_uniform_mi(0.75), 4)
    (2.4662, 0.4809)
    """
    if not epsilon > 0:
        msg = f"epsilon must be positive, got {epsilon}"
        raise ValueError(msg)
    nats = epsilon - np.log(2 * epsilon) if epsilon <= 0.5 else 1.0 / (4 * epsilon)
    return float(nats / _LOG2)


def additive_uniform(n: int, *, dim: int = 1, epsilon: float = 0.1, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """``Y = X + N`` per coordinate, ``X ~ U(0, 1)``, ``N ~ U(−ε, ε)``: a non-Gaussian channel.

    Coordinates are independent, so the MI is ``dim`` times :func:`additive_uniform_mi`.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(n, dim))
    y = x + rng.uniform(-epsilon, epsilon, size=(n, dim))
    return x, y, dim * additive_uniform_mi(epsilon)


@dataclass(frozen=True)
class FamilyCase:
    """One case of the non-Gaussian grid: ``make(n, seed)`` gives ``(x, y)``; ``mi`` in bits."""

    name: str
    family: str
    maker: str
    dim_x: int
    dim_y: int
    mi: float
    params: tuple

    def make(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` samples of this case."""
        return _MAKERS[self.maker](n, seed, **dict(self.params))[:2]


def _student(n, seed, *, dim, df, n_pairs=0, rho=0.0, warp_kind=None):
    x, y, mi = student_t(n, dim_x=dim, dim_y=dim, df=df, n_pairs=n_pairs, rho=rho, seed=seed)
    if warp_kind:
        x, y = warp(x, warp_kind), warp(y, warp_kind)
    return x, y, mi


def _sparse(n, seed, *, dim, n_pairs=2, rho=0.8, warp_kind=None, spiralled=False):
    x, y, mi = sparse_gaussian(n, dim_x=dim, dim_y=dim, n_pairs=n_pairs, rho=rho, seed=seed)
    if warp_kind:
        x, y = warp(x, warp_kind), warp(y, warp_kind)
    if spiralled:
        x, y = spiral(x, plane=(0, 1)), spiral(y, plane=(1, 2) if dim > 2 else (0, 1))
    return x, y, mi


def _mixture(n, seed, *, dim, rho=0.9):
    return x_mixture(n, dim=dim, rho=rho, seed=seed, n_mc=2)[:3]


def _additive(n, seed, *, dim, epsilon):
    return additive_uniform(n, dim=dim, epsilon=epsilon, seed=seed)


_MAKERS = {"student": _student, "sparse": _sparse, "mixture": _mixture,
           "additive": _additive}


@functools.lru_cache(maxsize=1)
def cases() -> tuple[FamilyCase, ...]:
    """The non-Gaussian ground-truth grid (41 cases, 1–50 dimensions, 0.2–4 bits).

    Families: ``student`` (identity dispersion, ν = 1–5, and sparse pairs under a heavy
    tail), ``student-asinh``, ``half_cube`` and ``normal_cdf`` warps of sparse Gaussians,
    ``spiral`` (of sparse Gaussians, also after ``normal_cdf``), the ``x`` mixture and
    ``additive`` uniform noise, plus the untransformed sparse Gaussians as a control.

    Examples
    --------
    >>> grid = cases()
    >>> len(grid), sorted({c.family for c in grid})[:3]
    (41, ['additive', 'half_cube', 'mixture'])
    """
    out: list[FamilyCase] = []

    def add(name, family, maker, dim_x, dim_y, mi, **params):
        out.append(FamilyCase(name, family, maker, dim_x, dim_y, float(mi),
                              tuple(sorted(params.items()))))

    for dim, df in ((1, 1), (2, 1), (2, 2), (3, 2), (3, 3), (5, 2), (5, 3), (10, 5)):
        mi = student_t_mi(np.eye(2 * dim), dim, df)
        add(f"student-{dim}x{dim}-df{df}", "student", "student", dim, dim, mi, dim=dim, df=df)
    for dim, df, pairs, rho in ((5, 3, 2, 0.8), (25, 5, 2, 0.8), (10, 3, 3, 0.9)):
        mi = student_t_mi(_pairs_cov(dim, dim, pairs, rho), dim, df)
        add(f"student-sparse-{dim}x{dim}-df{df}-{pairs}x{rho:g}", "student", "student", dim,
            dim, mi, dim=dim, df=df, n_pairs=pairs, rho=rho)
    for dim, df in ((1, 1), (2, 1), (3, 2), (5, 2)):
        mi = student_t_mi(np.eye(2 * dim), dim, df)
        add(f"asinh-student-{dim}x{dim}-df{df}", "student-asinh", "student", dim, dim, mi,
            dim=dim, df=df, warp_kind="asinh")
    base = -np.log2(1 - 0.8**2)
    for dim in (2, 3, 5, 25, 50):
        add(f"sparse-{dim}x{dim}", "sparse", "sparse", dim, dim, base, dim=dim)
    add("sparse-10x10-3x0.9", "sparse", "sparse", 10, 10, -1.5 * np.log2(1 - 0.81), dim=10,
        n_pairs=3, rho=0.9)
    for kind, family in (("half_cube", "half_cube"), ("normal_cdf", "normal_cdf")):
        for dim in (1, 3, 5, 25):
            pairs = min(dim, 2)
            add(f"{kind}-{dim}x{dim}", family, "sparse", dim, dim,
                -pairs / 2 * np.log2(1 - 0.64), dim=dim, n_pairs=pairs, warp_kind=kind)
    for dim in (3, 5, 25):
        add(f"spiral-{dim}x{dim}", "spiral", "sparse", dim, dim, base, dim=dim, spiralled=True)
        add(f"spiral-normal_cdf-{dim}x{dim}", "spiral", "sparse", dim, dim, base, dim=dim,
            spiralled=True, warp_kind="normal_cdf")
    for dim, rho in ((1, 0.9), (2, 0.8), (3, 0.9)):
        mi = x_mixture(10, dim=dim, rho=rho, seed=12345, n_mc=400_000)[2]
        add(f"x-mixture-{dim}x{dim}-{rho:g}", "mixture", "mixture", dim, dim, mi, dim=dim,
            rho=rho)
    for dim, eps in ((1, 0.1), (1, 0.75), (3, 0.3)):
        add(f"additive-{dim}x{dim}-eps{eps:g}", "additive", "additive", dim, dim,
            dim * additive_uniform_mi(eps), dim=dim, epsilon=eps)
    return tuple(out)
