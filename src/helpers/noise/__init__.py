"""Corruptions that simulate measurement noise, one module per modality.

``counts``
    exact binomial thinning of count matrices (simulated sequencing depth).

The count functions are re-exported here (``helpers.noise.downsample`` …).
"""

from __future__ import annotations

from .counts import *  # noqa: F401,F403
from .counts import __all__ as _counts_all

__all__ = list(_counts_all)
