"""Dataset loaders that return AnnData with raw counts and the auxiliary signals.

``cells``
    single-cell loaders and count validation.
``signals``
    the auxiliary signals: kinds, clonal and spatial partner pairs, the signal on a cell set.
``sequences``
    protein sequences (:class:`~helpers.datasets.sequences.SequenceData`): the spike loaders.
``fingerprint``
    content digests of data (what a results folder remembers) and exact duplicate rows.
``images``
    image datasets (:class:`~helpers.datasets.images.ImageData`): Fashion-MNIST, TissueMNIST,
    Caltech101.
"""

from __future__ import annotations

from . import images
from . import sequences as sequences  # the submodule, reachable as hp.datasets.sequences
from .cells import *  # noqa: F401,F403
from .cells import __all__ as _cells_all
from .fingerprint import duplicated_rows, fingerprint
from .images import ImageData
from .signals import *  # noqa: F401,F403
from .signals import __all__ as _signals_all

__all__ = [*_cells_all, *_signals_all, "images", "ImageData", "duplicated_rows", "fingerprint"]
