"""Small torch utilities shared by the models and the probe."""

from __future__ import annotations

import contextlib

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n_threads: int | None):
    """Run a block with ``torch.set_num_threads(n_threads)`` (``None``: leave it unchanged).

    On a machine whose cores are shared with other jobs, one thread per process is often much
    faster than several (the threads wait on each other).

    numba's thread pool is started first.  Its OpenMP layer, when it starts (once per process,
    at the first parallel numba call: scanpy's ``highly_variable_genes``, for one), sets the
    OpenMP thread count that torch reads, so a block that started it would run torch on
    numba's thread count instead of ``n_threads``: the first model of a process then trained
    on two threads and every later one on one, with different rounding in LayerNorm's gradient
    and different embeddings (Geneformer at quick: 1.552 vs 1.555 bits for one job, up to
    0.28 bit apart over a sweep, serial against Dask).
    """
    import numba

    numba.get_num_threads()  # starts numba's thread pool if it has not started yet
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
