"""Dataset loaders that return AnnData with raw counts and the auxiliary signals.

``cells``
    single-cell loaders, count validation and the auxiliary signals.
``sequences``
    protein sequences (:class:`~helpers.datasets.sequences.SequenceData`): the spike loaders.
"""

from __future__ import annotations

from . import sequences as sequences  # the submodule, reachable as hp.datasets.sequences
from .cells import *  # noqa: F401,F403
from .cells import __all__ as _cells_all

__all__ = list(_cells_all)
