"""The auxiliary signals of the single-cell tasks: their kinds, clonal and spatial partner pairs,
and the signal on a set of cells (:func:`auxiliary_signal`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import anndata as ad
import numpy as np
import pandas as pd

from helpers._checks import check_seed

__all__ = [
    "SIGNAL_KINDS",
    "AuxiliarySignal",
    "auxiliary_signal",
    "clonal_pairs",
    "signal_kind",
    "spatial_neighbour_pairs",
]


#: Kind of every auxiliary signal: how :func:`auxiliary_signal` turns it into a probe target.
SIGNAL_KINDS: dict[str, str] = {
    "protein_counts": "vector",
    "celltype.l3": "labels",
    "clone": "partner",
    "ng_idx": "partner",
    "day": "scalar",
    "author_day": "scalar",
    # sequences (helpers.datasets.sequences): collection month, D614/G614 lineage
    "month": "scalar",
    "lineage": "labels",
}


_KINDS = ("vector", "labels", "scalar", "partner")


def signal_kind(signal: str) -> str:
    """Kind of an auxiliary signal: ``"vector"``, ``"labels"``, ``"scalar"`` or ``"partner"``.

    Examples
    --------
    >>> signal_kind("ng_idx")
    'partner'
    """
    if signal not in SIGNAL_KINDS:
        msg = f"Unknown signal {signal!r}; known signals: {sorted(SIGNAL_KINDS)}."
        raise ValueError(msg)
    return SIGNAL_KINDS[signal]


def clonal_pairs(
    adata: ad.AnnData,
    *,
    seed: int,
    clone_key: str = "clone",
    day_key: str = "day",
    early_days: Sequence[float] = (2, 4),
    late_days: Sequence[float] = (6,),
    per_clone: str = "one",
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of clonally related cells, one early and one late cell per clone (S.I.2).

    Cells are split into early (``early_days``) and late (``late_days``) time points; every
    clone with cells at both gets one pair: a random early cell and a random late cell.
    With ``per_clone="every_early"`` every early cell of such a clone is paired with a random
    late cell of its clone instead — the same early→late relation, more pairs for small data
    (a late cell may then serve several pairs; keep clones together when splitting).  With
    ``per_clone="any_mate"`` every cell of a clone with at least two cells is paired with a
    random other cell of its clone, whatever the time point: the most pairs, for the smallest
    data, at the cost of mixing same-day sisters with early→late relatives.

    Parameters
    ----------
    adata
        With integer clone ids in ``obs[clone_key]`` (negative: no clone) and time points in
        ``obs[day_key]``.
    seed
        Seed of the random choice of cells within each clone.

    Returns
    -------
    idx_early, idx_late
        Integer positions (rows of ``adata``), one pair per eligible clone, ordered by clone id.

    Examples
    --------
    >>> import anndata as ad, pandas as pd
    >>> obs = pd.DataFrame({"clone": [0, 0, 0, 1, 1, 2], "day": [2, 6, 6, 4, 4, 6]})
    >>> a = ad.AnnData(obs=obs.set_axis([str(i) for i in range(6)]))
    >>> early, late = clonal_pairs(a, seed=0)
    >>> early.tolist(), bool(late[0] in (1, 2))
    ([0], True)
    """
    for k in (clone_key, day_key):
        if k not in adata.obs:
            msg = f"clonal_pairs: adata.obs has no column {k!r}."
            raise ValueError(msg)
    clone = np.asarray(adata.obs[clone_key], dtype=np.int64)
    day = np.asarray(adata.obs[day_key], dtype=np.float64)
    early = np.isin(day, np.asarray(early_days, dtype=np.float64)) & (clone >= 0)
    late = np.isin(day, np.asarray(late_days, dtype=np.float64)) & (clone >= 0)
    shared = np.intersect1d(clone[early], clone[late])
    rng = np.random.default_rng(check_seed(seed))
    if per_clone == "every_early":
        idx_a = np.flatnonzero(early & np.isin(clone, shared))
        late_cells = np.flatnonzero(late & np.isin(clone, shared))
        idx_b = np.empty_like(idx_a)
        for c in shared:
            mates = late_cells[clone[late_cells] == c]
            members = clone[idx_a] == c
            idx_b[members] = rng.choice(mates, size=int(members.sum()))
        return idx_a, idx_b
    if per_clone == "any_mate":
        labelled = np.flatnonzero(clone >= 0)
        ids, sizes = np.unique(clone[labelled], return_counts=True)
        idx_a = labelled[np.isin(clone[labelled], ids[sizes >= 2])]
        idx_b = np.empty_like(idx_a)
        for c in np.unique(clone[idx_a]):
            members = np.flatnonzero(clone[idx_a] == c)
            cells = idx_a[members]
            # a random other member: shift a random permutation by one position
            perm = rng.permutation(cells.size)
            idx_b[members[perm]] = cells[np.roll(perm, 1)]
        return idx_a, idx_b
    if per_clone != "one":
        msg = (
            "clonal_pairs: per_clone must be 'one', 'every_early' or 'any_mate', "
            f"got {per_clone!r}."
        )
        raise ValueError(msg)
    # Random order within clone: sort cells by (clone, random key); first cell per clone wins.
    idx_a = _one_random_cell_per_group(np.flatnonzero(early), clone, shared, rng)
    idx_b = _one_random_cell_per_group(np.flatnonzero(late), clone, shared, rng)
    return idx_a, idx_b


def _one_random_cell_per_group(
    cells: np.ndarray, group: np.ndarray, wanted: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    cells = cells[np.isin(group[cells], wanted)]
    order = np.lexsort((rng.random(cells.size), group[cells]))
    cells = cells[order]
    first = np.r_[True, group[cells][1:] != group[cells][:-1]]
    return cells[first]


def spatial_neighbour_pairs(
    adata: ad.AnnData, *, seed: int, k: int = 5, key: str = "spatial"
) -> np.ndarray:
    """A random one of each cell's ``k`` nearest cells in the tissue (S.I.1).

    Parameters
    ----------
    adata
        With cell coordinates in ``obsm[key]``.
    seed
        Seed of the random choice among the ``k`` neighbours.
    k
        Number of nearest neighbours to choose from (the cell itself excluded).

    Returns
    -------
    numpy.ndarray
        ``partner[i]``: integer position of the neighbour paired with cell ``i``; never ``i``.

    Examples
    --------
    >>> import anndata as ad
    >>> a = ad.AnnData(obsm={"spatial": np.array([[0.0, 0], [1, 0], [0, 2], [10, 9]])})
    >>> spatial_neighbour_pairs(a, seed=0, k=1).tolist()
    [1, 0, 0, 2]
    """
    from scipy.spatial import cKDTree

    if key not in adata.obsm:
        msg = f"spatial_neighbour_pairs: adata.obsm has no {key!r} coordinates."
        raise ValueError(msg)
    xy = np.asarray(adata.obsm[key], dtype=np.float64)
    n = xy.shape[0]
    if not 1 <= k < n:
        msg = f"spatial_neighbour_pairs: need 1 <= k < n_cells, got k={k}, n_cells={n}."
        raise ValueError(msg)
    if not np.all(np.isfinite(xy)):
        msg = "spatial_neighbour_pairs: coordinates must be finite."
        raise ValueError(msg)
    _, nbrs = cKDTree(xy).query(xy, k=k + 1)
    # Remove the cell itself from its list; with tied (duplicate) positions it may be missing
    # from the k + 1 returned, and then the farthest one is dropped instead.
    is_self = nbrs == np.arange(n)[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(nbrs, dtype=bool)
    keep[np.arange(n), drop] = False
    nbrs = nbrs[keep].reshape(n, k)
    choice = np.random.default_rng(check_seed(seed)).integers(0, k, size=n)
    return nbrs[np.arange(n), choice].astype(np.int64)


class AuxiliarySignal(NamedTuple):
    """Probe sample of an auxiliary signal: cells and their targets.

    ``index``: integer positions of the cells whose representation is X in the MI estimate.
    ``target``: for vector/scalar/labels signals, the values Y aligned with ``index``; for
    partner signals, integer positions of the partner cells, whose representation under the
    same model is Y.
    """

    index: np.ndarray
    target: np.ndarray


def auxiliary_signal(
    adata: ad.AnnData,
    signal: str,
    *,
    seed: int = 0,
    restrict_to=None,
    log1p: bool = True,
    k: int = 5,
    per_clone: str = "one",
    kind: str | None = None,
) -> AuxiliarySignal:
    """The auxiliary signal of a dataset as arrays for the MI probe.

    Parameters
    ----------
    adata
        As returned by a loader.
    signal
        ``"protein_counts"`` (vector: ``log1p`` protein counts, cells × proteins),
        ``"celltype.l3"`` (labels: integer category codes), ``"day"`` / ``"author_day"``
        (scalar: days), ``"clone"`` (partner: :func:`clonal_pairs`, index = early cell,
        target = late cell) or ``"ng_idx"`` (partner: :func:`spatial_neighbour_pairs`).
    seed
        Seed for drawing the pairs of partner signals (ignored otherwise). Use the same seed
        for the evaluation split (see :func:`helpers.splits.pair_groups`) and for the probe.
    restrict_to
        Integer positions (e.g. the evaluation set): keep only cells in it, and for partner
        signals only pairs whose two cells are both in it. Pairs are drawn on the whole dataset
        first, so they do not depend on ``restrict_to``.
    log1p
        Apply ``log1p`` to protein counts.
    k
        Neighbours to choose from for ``"ng_idx"``.
    per_clone
        Pairs per clone for ``"clone"`` (see :func:`clonal_pairs`).
    kind
        The signal's kind, for a signal not among :data:`SIGNAL_KINDS` (your own data):
        ``"vector"`` reads ``obsm[signal]``, ``"labels"`` and ``"scalar"`` read
        ``obs[signal]``, ``"partner"`` pairs each cell with one of its ``k`` nearest
        neighbours in the coordinates ``obsm[signal]`` (``"clone"``: clone mates).

    Returns
    -------
    AuxiliarySignal
        ``(index, target)``; with embeddings ``E`` (n_cells × d) of one model, the probe
        estimates I(E[index]; target) for vector/scalar/labels signals and
        I(E[index]; E[target]) for partner signals.

    Examples
    --------
    >>> import anndata as ad
    >>> a = ad.AnnData(obs=pd.DataFrame({"day": [2.0, 4.0, 6.0]}, index=list("abc")))
    >>> auxiliary_signal(a, "day", restrict_to=[0, 2])
    AuxiliarySignal(index=array([0, 2]), target=array([2., 6.]))
    """
    if kind is None:
        kind = signal_kind(signal)
    elif kind not in _KINDS:
        msg = f"auxiliary_signal: kind must be one of {_KINDS}, got {kind!r}."
        raise ValueError(msg)
    check_seed(seed)
    n = adata.n_obs
    if kind == "partner":
        if signal == "clone":
            index, target = clonal_pairs(adata, seed=seed, per_clone=per_clone)
        else:
            key = signal if signal in adata.obsm else "spatial"
            index = np.arange(n, dtype=np.int64)
            target = spatial_neighbour_pairs(adata, seed=seed, k=k, key=key)
    else:
        index = np.arange(n, dtype=np.int64)
        if kind == "vector":
            if signal not in adata.obsm:
                msg = f"auxiliary_signal: adata.obsm has no {signal!r}."
                raise ValueError(msg)
            values = adata.obsm[signal]
            values = np.asarray(
                values.to_numpy() if isinstance(values, pd.DataFrame) else values, dtype=np.float64
            )
            target = np.log1p(values) if log1p else values.copy()  # never a view of obsm
        else:
            if signal not in adata.obs:
                msg = f"auxiliary_signal: adata.obs has no {signal!r} column."
                raise ValueError(msg)
            column = adata.obs[signal]
            if kind == "labels":
                target = pd.Categorical(column).codes.astype(np.int64)
            else:
                target = pd.to_numeric(column).to_numpy(dtype=np.float64, copy=True)
    if restrict_to is not None:
        allowed = np.zeros(n, dtype=bool)
        allowed[np.asarray(restrict_to, dtype=np.int64)] = True
        keep = allowed[index] & (allowed[target] if kind == "partner" else True)
        if not keep.any():
            msg = f"auxiliary_signal: no {signal!r} sample left inside restrict_to."
            raise ValueError(msg)
        index, target = index[keep], target[keep]
    return AuxiliarySignal(index, target)
