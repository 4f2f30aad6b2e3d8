"""Corruptions that simulate measurement noise, one module per modality.

``counts``
    exact binomial thinning of count matrices (simulated sequencing depth): AnnData, CSR and
    streamed ``.h5ad`` files, the depth grid.
``kernels``
    what ``counts`` stands on: the numba samplers, guide tables and per-block random streams.
``sequences``
    per-residue random substitution of protein sequences (simulated sequencing errors).
``images``
    additive Gaussian pixel noise and pixelation of image batches, with the released x-axes.

The count functions and the sequence substitution are re-exported here
(``helpers.noise.downsample``, ``helpers.noise.substitute`` …); each module's ``corrupt``
(the pipeline's corruption) stays in its module.
"""

from __future__ import annotations

from . import images
from .counts import *  # noqa: F401,F403
from .counts import __all__ as _counts_all
from .images import ImageCorruption, gaussian, pixelate
from .sequences import (
    AMINO_ACIDS,
    rates_for_x,
    substitute,
    substitution_grid,
    substitution_x,
)

__all__ = [
    *_counts_all,
    "images",
    "ImageCorruption",
    "gaussian",
    "pixelate",
    "AMINO_ACIDS",
    "rates_for_x",
    "substitute",
    "substitution_grid",
    "substitution_x",
]
