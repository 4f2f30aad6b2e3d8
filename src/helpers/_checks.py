"""Input checks shared by the public functions: seeds and raw count matrices.

One home for the two checks that several modules make at their boundary, so that a bad seed or
a matrix that is not raw counts gets the same clear message wherever it enters, and so that
the checked matrix is always a new object (the caller's data are never modified).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["FLOAT32_EXACT", "check_seed", "count_matrix"]

#: Every integer below this is exact in float32 (the models and loaders hold counts as float32).
FLOAT32_EXACT = 2**24


def check_seed(seed, *, name: str = "seed") -> int:
    """``seed`` as a Python ``int``; a ``ValueError`` unless it is a non-negative integer.

    Python and numpy integers are accepted; ``bool``, floats (even ``1.0``), strings, ``None``
    and negative numbers are refused with a message naming what was given.

    Examples
    --------
    >>> check_seed(np.int64(3))
    3
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    ValueError: `seed` must be a non-negative integer, got -1.
    """
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer) or seed < 0:
        msg = f"`{name}` must be a non-negative integer, got {seed!r}."
        raise ValueError(msg)
    return int(seed)


def count_matrix(x, *, name: str = "counts") -> sp.csr_matrix:
    """Raw counts as a new canonical ``float32`` CSR matrix, after checking every value.

    The values are checked in the dtype they were given in, before any cast, so dense and
    sparse input are judged alike: ``3.00000001`` is not a whole number and ``1e40`` is too
    large, whichever container holds them.  Duplicate entries are summed and explicit zeros
    dropped in the copy only; ``x`` is never modified.

    Parameters
    ----------
    x
        Dense array, DataFrame or scipy sparse matrix (cells × features) of a numeric dtype.
    name
        What the matrix is, for error messages.

    Raises
    ------
    ValueError
        A non-numeric dtype, or a value that is not finite, negative, not a whole number, or
        too large to be exact in float32 (≥ 2**24, also after summing duplicate entries).

    Examples
    --------
    >>> count_matrix(np.array([[0, 2], [1, 0]])).toarray()
    array([[0., 2.],
           [1., 0.]], dtype=float32)
    >>> count_matrix(np.array([[1e40]]))
    Traceback (most recent call last):
    ...
    ValueError: counts has a value 1e+40 ≥ 2**24, which float32 cannot hold exactly.
    """
    if hasattr(x, "to_numpy") and not sp.issparse(x):  # a DataFrame
        x = x.to_numpy()
    if sp.issparse(x):
        if x.ndim != 2:
            msg = f"{name} must be a 2-D matrix (cells × features), got {x.ndim} dimensions."
            raise ValueError(msg)
        m = sp.csr_matrix(x, copy=True)
    else:
        arr = np.asarray(x)
        if arr.ndim != 2:
            msg = f"{name} must be a 2-D matrix (cells × features), got shape {arr.shape}."
            raise ValueError(msg)
        if arr.dtype.kind not in "biuf":
            msg = f"{name} must hold numeric counts, got dtype {arr.dtype}."
            raise ValueError(msg)
        if arr.dtype == np.float16:  # scipy.sparse refuses float16; float32 holds it exactly
            arr = arr.astype(np.float32)
        m = sp.csr_matrix(arr)
    if m.dtype.kind not in "biuf":
        msg = f"{name} must hold numeric counts, got dtype {m.dtype}."
        raise ValueError(msg)
    values = m.data
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            msg = f"{name} must be finite; found {int(bad.sum())} NaN/inf value(s)."
            raise ValueError(msg)
    if values.size and values.dtype.kind in "if" and values.min() < 0:
        msg = f"{name} must be non-negative (raw counts); found minimum {values.min()}."
        raise ValueError(msg)
    if values.dtype.kind == "f":
        fractional = values != np.round(values)
        if fractional.any():
            msg = (
                f"{name} must hold whole numbers (raw counts); found {int(fractional.sum())} "
                f"non-integer value(s), e.g. {values[fractional][0]}."
            )
            raise ValueError(msg)
    if values.size and values.max() >= FLOAT32_EXACT:
        msg = f"{name} has a value {values.max()} ≥ 2**24, which float32 cannot hold exactly."
        raise ValueError(msg)
    m = m.astype(np.float32)
    m.sum_duplicates()
    if m.data.size and m.data.max() >= FLOAT32_EXACT:
        msg = (
            f"{name} has duplicate entries that sum to {m.data.max()} ≥ 2**24, which float32 "
            "cannot hold exactly."
        )
        raise ValueError(msg)
    m.eliminate_zeros()
    return m
