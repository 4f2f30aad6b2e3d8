"""Corruptions that simulate measurement noise, one module per modality.

``counts``
    exact binomial thinning of count matrices (simulated sequencing depth).
``images``
    additive Gaussian pixel noise and pixelation of image batches, with the released x-axes.

The count functions are re-exported here (``helpers.noise.downsample`` …).
"""

from __future__ import annotations

from . import images
from .counts import *  # noqa: F401,F403
from .counts import __all__ as _counts_all
from .images import ImageCorruption, gaussian, pixelate

__all__ = [*_counts_all, "images", "ImageCorruption", "gaussian", "pixelate"]
