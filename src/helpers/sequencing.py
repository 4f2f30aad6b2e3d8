r"""What reads buy: library complexity, and a design's cost in reads, lanes and flow cells.

Depth is bought in reads, but the laws speak in UMIs per cell, and UMIs saturate with reads:
a cell's library holds a finite number :math:`m` of distinct molecules, and each read draws
one of them.  Drawn uniformly (a Poisson sampling model; PCR duplicates are what sequencing
saturation counts), :math:`r` reads per cell find

.. math::

    u(r) = m\,\bigl(1 - e^{-r/m}\bigr)

distinct UMIs, so the reads needed for :math:`u` UMIs, :math:`r(u) = -m \ln(1 - u/m)`, grow
without bound as :math:`u \to m`, and the sequencing saturation Cell Ranger reports is
:math:`1 - u/r`.  :class:`LibraryComplexity` holds :math:`m`, fitted from a pilot's reads and
UMIs per cell or from Cell Ranger's metrics (mean reads per cell, sequencing saturation,
median UMIs per cell).  Real libraries are not sampled uniformly (amplification is uneven),
so they saturate somewhat more slowly than this curve at high saturation; fit :math:`m` at
the depth you plan to sequence near.

:class:`SequencingCosts` prices a design of :math:`N` cells at :math:`u` UMIs per cell as

.. math::

    C = C_\mathrm{fixed} + \lceil N / N_\mathrm{lane} \rceil\, c_\mathrm{lane}
        + N\, c_\mathrm{cell} + N\, r(u)\, c_\mathrm{read},

with cells captured in lanes (chip channels) of at most :math:`N_\mathrm{lane}` recovered
cells, fewer where the multiplet (doublet) rate would exceed ``max_doublets``: 10x Genomics
gives about 0.8 % multiplets per 1,000 cells recovered for its 3' chemistry (Chromium Single
Cell 3' v3.1 user guide, multiplet-rate table), so a 5 % cap allows 6,250 cells per lane.
:math:`c_\mathrm{read}` is a flow cell's price over its reads.  It plugs into
:func:`helpers.plan.optimal_design` and :func:`helpers.plan.cheapest_design` in place of
:class:`helpers.plan.Costs`.

Examples
--------
>>> lib = LibraryComplexity.from_saturation(reads_per_cell=20_000, saturation=0.5)
>>> round(lib.molecules_per_cell), round(lib.umis(20_000)), round(lib.reads(lib.umis(20_000)))
(12550, 10000, 20000)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = ["DOUBLETS_PER_1000_CELLS", "LibraryComplexity", "SequencingCosts"]

#: Multiplet rate per 1,000 recovered cells of 10x Genomics' 3' chemistry (≈ 0.8 %).
DOUBLETS_PER_1000_CELLS = 0.008


def _positive(name: str, value) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        msg = f"{name} must be a finite positive number (got {value!r})."
        raise ValueError(msg)
    return value


def _saturation_ratio(saturation: float) -> float:
    """``t = r/m`` with ``(1 − e^{−t}) / t = 1 − saturation``."""
    if not 0 < saturation < 1:
        msg = f"sequencing saturation must be in (0, 1) (got {saturation!r})."
        raise ValueError(msg)
    target = 1.0 - saturation
    return float(optimize.brentq(lambda t: -np.expm1(-t) / t - target, 1e-12, 1e4,
                                 xtol=1e-14, rtol=1e-14))


@dataclass(frozen=True)
class LibraryComplexity:
    """Distinct molecules per cell's library, and the UMIs that reads find in it.

    Parameters
    ----------
    molecules_per_cell
        :math:`m`, the library's distinct molecules per cell (UMIs found with unlimited
        reads).
    usable_fraction
        Fraction of sequenced reads that count (confidently mapped, with a valid barcode and
        UMI); the rest buy nothing.  Default 1.
    """

    molecules_per_cell: float
    usable_fraction: float = 1.0

    def __post_init__(self):
        _positive("molecules_per_cell", self.molecules_per_cell)
        if not 0 < self.usable_fraction <= 1:
            msg = f"usable_fraction must be in (0, 1] (got {self.usable_fraction!r})."
            raise ValueError(msg)

    @classmethod
    def from_pilot(cls, reads_per_cell: float, umis_per_cell: float) -> LibraryComplexity:
        """``m`` from a pilot's mean reads and UMIs per cell (``u < r``).

        Examples
        --------
        >>> round(LibraryComplexity.from_pilot(30_000, 10_000).molecules_per_cell)
        10633
        """
        r = _positive("reads_per_cell", reads_per_cell)
        u = _positive("umis_per_cell", umis_per_cell)
        if not u < r:
            msg = (f"a pilot needs fewer UMIs than reads per cell (got {u:g} UMIs from "
                   f"{r:g} reads): every read a new molecule says nothing of saturation.")
            raise ValueError(msg)
        return cls.from_saturation(r, 1.0 - u / r)

    @classmethod
    def from_saturation(cls, reads_per_cell: float, saturation: float) -> LibraryComplexity:
        """``m`` from mean (usable) reads per cell and the sequencing saturation."""
        r = _positive("reads_per_cell", reads_per_cell)
        return cls(r / _saturation_ratio(saturation))

    @classmethod
    def from_cellranger(cls, *, mean_reads_per_cell: float, sequencing_saturation: float,
                        median_umis_per_cell: float) -> LibraryComplexity:
        """From Cell Ranger's ``metrics_summary.csv``: the saturation fixes ``r/m`` of the usable
        reads, the UMIs per cell fix ``m``, and the two together the usable fraction of the
        mean reads per cell (the median stands in for the mean UMIs per cell).

        Examples
        --------
        >>> lib = LibraryComplexity.from_cellranger(mean_reads_per_cell=50_000,
        ...     sequencing_saturation=0.6, median_umis_per_cell=12_000)
        >>> round(lib.molecules_per_cell), round(lib.usable_fraction, 3)
        (13443, 0.6)
        """
        r = _positive("mean_reads_per_cell", mean_reads_per_cell)
        u = _positive("median_umis_per_cell", median_umis_per_cell)
        t = _saturation_ratio(sequencing_saturation)
        m = u / -np.expm1(-t)
        usable = t * m / r
        if usable > 1 + 1e-9:
            msg = (f"these metrics need more usable reads ({t * m:,.0f} per cell) than were "
                   f"sequenced ({r:,.0f}): check the saturation and UMIs per cell.")
            raise ValueError(msg)
        return cls(float(m), min(float(usable), 1.0))

    def umis(self, reads_per_cell):
        """Expected distinct UMIs per cell from ``reads_per_cell`` sequenced reads."""
        m = self.molecules_per_cell
        r = np.asarray(reads_per_cell, dtype=float) * self.usable_fraction
        out = -m * np.expm1(-r / m)
        return out if out.ndim else float(out)

    def reads(self, umis_per_cell):
        """Sequenced reads per cell that find ``umis_per_cell`` UMIs (inf at or beyond ``m``)."""
        m = self.molecules_per_cell
        u = np.asarray(umis_per_cell, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(u < m, -m * np.log1p(-np.minimum(u, m) / m), np.inf)
        out = out / self.usable_fraction
        return out if out.ndim else float(out)

    def saturation(self, reads_per_cell):
        """Cell Ranger's sequencing saturation ``1 − u/r`` of the usable reads."""
        r = np.asarray(reads_per_cell, dtype=float) * self.usable_fraction
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 1.0 - self.umis(reads_per_cell) / r
        return out if out.ndim else float(out)


@dataclass(frozen=True)
class SequencingCosts:
    """A design's cost in reads (through the library's complexity), lanes and cells.

    Parameters
    ----------
    library
        The :class:`LibraryComplexity` that turns UMIs per cell into reads per cell.
    per_read
        Price of one sequenced read (a flow cell's price over its reads).
    per_lane
        Price of one lane of captured cells (a chip channel with its library preparation).
    per_cell
        Price per cell beyond its lane (e.g. hashing, cell preparation); default 0.
    fixed
        Paid once.
    cells_per_lane
        Most recovered cells per lane the chemistry allows (default 10,000).
    max_doublets
        Largest multiplet rate accepted (default 5 %): caps the cells per lane at
        ``max_doublets / doublets_per_1000 · 1000``.
    doublets_per_1000
        Multiplet rate per 1,000 recovered cells (default :data:`DOUBLETS_PER_1000_CELLS`).
    whole_lanes
        Price lanes whole (``ceil``; default) or pro rata.

    Examples
    --------
    >>> costs = SequencingCosts(LibraryComplexity(20_000), per_read=1e-6, per_lane=1_000)
    >>> costs.lane_capacity, costs.lanes(10_000)
    (6250.0, 2.0)
    >>> round(costs.total(10_000, 5_000), 2)  # 2 lanes + 10,000 cells × 5,754 reads
    2057.54
    """

    library: LibraryComplexity
    per_read: float
    per_lane: float = 0.0
    per_cell: float = 0.0
    fixed: float = 0.0
    cells_per_lane: float = 10_000.0
    max_doublets: float = 0.05
    doublets_per_1000: float = DOUBLETS_PER_1000_CELLS
    whole_lanes: bool = True

    def __post_init__(self):
        _positive("per_read", self.per_read)
        _positive("cells_per_lane", self.cells_per_lane)
        _positive("doublets_per_1000", self.doublets_per_1000)
        for name in ("per_lane", "per_cell", "fixed"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                msg = f"SequencingCosts.{name} must be a finite non-negative number ({value!r})."
                raise ValueError(msg)
        if not 0 < self.max_doublets < 1:
            msg = f"max_doublets must be in (0, 1) (got {self.max_doublets!r})."
            raise ValueError(msg)

    @property
    def lane_capacity(self) -> float:
        """Recovered cells per lane: the chemistry's limit or the doublet cap's."""
        return float(min(self.cells_per_lane, 1000.0 * self.max_doublets / self.doublets_per_1000))

    @property
    def per_umi(self) -> float:
        """Marginal price of the first UMI of a cell (reads are dearer per UMI the deeper)."""
        return self.per_read / self.library.usable_fraction

    def lanes(self, cells):
        """Lanes needed for ``cells`` recovered cells (whole unless ``whole_lanes=False``)."""
        n = np.asarray(cells, dtype=float) / self.lane_capacity
        out = np.ceil(n - 1e-9) if self.whole_lanes else n
        return out if out.ndim else float(out)

    def _capture(self, cells):
        cells = np.asarray(cells, dtype=float)
        return self.fixed + self.lanes(cells) * self.per_lane \
            + cells * self.per_cell

    def reads_per_cell(self, umis_per_cell):
        """Sequenced reads per cell for ``umis_per_cell`` UMIs."""
        return self.library.reads(umis_per_cell)

    def total(self, cells, umis_per_cell):
        """Cost of ``cells`` cells at ``umis_per_cell`` UMIs per cell (inf beyond the library)."""
        cells = np.asarray(cells, dtype=float)
        out = self._capture(cells) + cells * self.library.reads(umis_per_cell) * self.per_read
        return out if np.ndim(out) else float(out)

    def depth_on_budget(self, cells, budget):
        """UMIs per cell that spend ``budget`` on ``cells`` cells (NaN if the cells alone cost
        more)."""
        cells = np.asarray(cells, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            reads = (budget - self._capture(cells)) / (cells * self.per_read)
            u = np.where(reads > 0, self.library.umis(np.maximum(reads, 0.0)), np.nan)
        return u

    def max_cells(self, budget) -> float:
        """The most cells the budget captures (at vanishing depth)."""
        left = budget - self.fixed
        if left <= 0:
            return 0.0
        per = self.per_cell + self.per_lane / self.lane_capacity
        if per == 0:
            return float("inf")
        n = left / per
        while n > 0 and self._capture(n) > budget:  # whole lanes: step down to what fits
            n = (np.ceil(n / self.lane_capacity) - 1) * self.lane_capacity
        return float(max(n, 0.0))

    def cells_for(self, budget, umis_per_cell) -> float:
        """The cells at which ``budget`` buys exactly ``umis_per_cell`` UMIs per cell."""
        per = self.per_cell + self.per_lane / self.lane_capacity \
            + self.library.reads(umis_per_cell) * self.per_read
        return float((budget - self.fixed) / per)
