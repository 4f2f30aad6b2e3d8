"""Each canonical pair read on its own: its Gaussian copula, or 1-D KSG where that reads clearly
more."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from .ksg import jitter, ksg_mi
from .linear import matched_corr

__all__ = [
    "copula_mi",
    "read_pairs",
]


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
        v = jitter(v[:, None], rng)[:, 0]
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


def read_pairs(ex, ey, cx, cy, tx, ty, *, choose, k, seed, tol) -> _Reading:
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
        r = matched_corr(cx, cy)
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
