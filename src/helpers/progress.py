"""Progress bars for people watching, and none in the built book.

Every bar the helpers draw goes through :func:`bar`, and one switch, :func:`enabled`, decides
whether bars show at all:

- ``NOISESCALING_PROGRESS=1`` (or ``0``) decides when it is set (``1/0``, ``true/false``,
  ``yes/no``, ``on/off``);
- otherwise bars show when someone is watching: a terminal (standard error is a TTY) or a kernel
  started by a Jupyter server (JupyterLab, Notebook), which sets ``JPY_SESSION_NAME``;
- and they stay off under papermill, the book build (``jupyter-book`` executes through nbclient
  too), pytest and CI, where a notebook's output is a record for readers, not a display.

The bars are plain text bars (``tqdm.std``) on standard error.  ``tqdm.auto`` would draw Jupyter
widgets, which need ``ipywidgets`` (without it, every import warns ``IProgress not found`` with
the path of the environment) and, in a built book, a widget manager loaded from a network.

Examples
--------
>>> from helpers import progress
>>> with progress.bar(3, desc="fits", disable=True) as b:
...     b.update(3)
>>> [x * x for x in progress.bar(range(4), desc="squares", disable=True)]
[0, 1, 4, 9]
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Iterable

from tqdm.std import TqdmWarning, tqdm

__all__ = ["ENV", "bar", "enabled", "settle_tqdm_auto"]

#: the environment variable that turns every bar on (``1``) or off (``0``)
ENV = "NOISESCALING_PROGRESS"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def enabled() -> bool:
    """Whether progress bars show: ``$NOISESCALING_PROGRESS``, else whether someone watches.

    Returns
    -------
    bool
        ``True`` in a terminal or a Jupyter-server kernel, ``False`` under papermill, the book
        build, pytest and CI, unless ``NOISESCALING_PROGRESS`` says otherwise.

    Raises
    ------
    ValueError
        If ``NOISESCALING_PROGRESS`` is set to something other than a yes/no word.

    Examples
    --------
    >>> import os
    >>> os.environ["NOISESCALING_PROGRESS"] = "0"
    >>> enabled()
    False
    >>> del os.environ["NOISESCALING_PROGRESS"]
    """
    value = os.environ.get(ENV)
    if value is not None:
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        msg = f"{ENV} must be one of 1/0, true/false, yes/no, on/off; found {value!r}"
        raise ValueError(msg)
    if os.environ.get("JPY_SESSION_NAME"):  # a kernel behind JupyterLab / Notebook
        return True
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def bar(
    iterable_or_total: Iterable | int | None = None,
    *,
    desc: str | None = None,
    total: int | None = None,
    disable: bool = False,
    **kwargs,
) -> tqdm:
    """A text progress bar that shows only where :func:`enabled` says so.

    Parameters
    ----------
    iterable_or_total
        What to iterate over, or the number of steps for a bar advanced with ``.update(n)``.
    desc
        The label in front of the bar.
    total
        Number of steps, when ``iterable_or_total`` is an iterable without a length.
    disable
        Turn this bar off even where bars show (e.g. a ``progress=False`` argument).
    **kwargs
        Passed on to ``tqdm.std.tqdm`` (``leave``, ``unit``, ``position`` …).

    Returns
    -------
    tqdm.std.tqdm
        A bar; when disabled it draws nothing (and ``.update`` does not count), but it still
        iterates.

    Raises
    ------
    TypeError
        If ``iterable_or_total`` is neither an iterable, an integer nor ``None``.

    Examples
    --------
    >>> b = bar(10, desc="steps", disable=True)
    >>> b.total, b.disable
    (10, True)
    >>> b.close()
    >>> bar(object())
    Traceback (most recent call last):
    ...
    TypeError: bar() takes an iterable or a number of steps, found object
    """
    iterable = None
    if isinstance(iterable_or_total, bool):
        msg = f"bar() takes an iterable or a number of steps, found {iterable_or_total!r}"
        raise TypeError(msg)
    if isinstance(iterable_or_total, int):
        if total is not None:
            msg = "bar() got a number of steps twice (positional and total=)"
            raise TypeError(msg)
        total = iterable_or_total
    elif iterable_or_total is not None:
        if not isinstance(iterable_or_total, Iterable):
            msg = (
                "bar() takes an iterable or a number of steps, found "
                f"{type(iterable_or_total).__name__}"
            )
            raise TypeError(msg)
        iterable = iterable_or_total
    return tqdm(
        iterable, desc=desc, total=total, disable=bool(disable) or not enabled(), **kwargs
    )


def settle_tqdm_auto() -> bool:
    """In a Jupyter kernel without ``ipywidgets``, import ``tqdm.auto`` once, without its warning.

    scvi-tools and scanpy import ``tqdm.auto``; in a kernel without ``ipywidgets`` it warns
    ``IProgress not found`` (printing the path of the environment into the notebook) and falls
    back to the text bar.  The book has no widgets on purpose (a built page would need a widget
    manager from a network), so the fallback is what we want: import it here, quietly, before the
    libraries do.  ``import helpers`` calls this when it runs inside a kernel.

    Returns
    -------
    bool
        Whether ``tqdm.auto`` was imported here (``False`` outside a kernel, or with ipywidgets).
    """
    if "ipykernel" not in sys.modules or "tqdm.auto" in sys.modules:
        return False
    if importlib.util.find_spec("ipywidgets") is not None:
        return False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
        import tqdm.auto  # noqa: F401
    return True
