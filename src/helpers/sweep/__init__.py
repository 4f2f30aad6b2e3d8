"""Parameter sweeps: a sharded results store and the backends that run jobs into it.

``store``
    :class:`Store` (one typed, atomically written shard per job; safe to share between
    processes and machines), :func:`job_id`, and the older single-file ``ResultsTable``.
``backends``
    :func:`execute` runs the missing jobs of a sweep serially or on Dask (a ``LocalCluster``
    or any ``Client``, e.g. dask-jobqueue's ``SLURMCluster``) and returns a :class:`Report`.
"""

from __future__ import annotations

from .backends import *  # noqa: F401,F403
from .backends import __all__ as _backends_all
from .store import *  # noqa: F401,F403
from .store import __all__ as _store_all

__all__ = list(_store_all) + list(_backends_all)
