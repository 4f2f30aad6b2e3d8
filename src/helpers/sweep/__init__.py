"""Parameter sweeps: results stores and (soon) jobs, runs and backends.

``store``
    resumable, atomic tidy results tables.
"""

from __future__ import annotations

from .store import *  # noqa: F401,F403
from .store import __all__ as _store_all

__all__ = list(_store_all)
