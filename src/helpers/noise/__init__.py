"""Corruptions that simulate measurement noise, one module per modality.

``counts``
    exact binomial thinning of count matrices (simulated sequencing depth).
``sequences``
    per-residue random substitution of protein sequences (simulated sequencing errors).

The count functions and the sequence substitution are re-exported here
(``helpers.noise.downsample``, ``helpers.noise.substitute`` …); each module's ``corrupt``
(the pipeline's corruption) stays in its module.
"""

from __future__ import annotations

from .counts import *  # noqa: F401,F403
from .counts import __all__ as _counts_all
from .sequences import (
    AMINO_ACIDS,
    rates_for_x,
    substitute,
    substitution_grid,
    substitution_x,
)

__all__ = [
    *_counts_all,
    "AMINO_ACIDS",
    "rates_for_x",
    "substitute",
    "substitution_grid",
    "substitution_x",
]
