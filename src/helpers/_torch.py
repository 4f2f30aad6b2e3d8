"""Small torch utilities shared by the models and the probe."""

from __future__ import annotations

import contextlib

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n_threads: int | None):
    """Run a block with ``torch.set_num_threads(n_threads)`` (``None``: leave it unchanged).

    On a machine whose cores are shared with other jobs, one thread per process is often much
    faster than several (the threads wait on each other).
    """
    if n_threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
