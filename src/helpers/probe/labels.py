"""Class labels: the MI of two discrete variables, and balanced one-vs-all subsets."""

from __future__ import annotations

import numpy as np

__all__ = [
    "discrete_mi",
    "balanced_one_vs_all",
]


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
