"""What the package's command lines share: argument types that check ranges, and one way to
turn a user's mistake into one line and exit status 2 (a traceback only with ``--debug``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .data import DataUnavailableError

#: Exceptions that mean the input was wrong (a file, a name, a value) or not at hand (data
#: offline), not that the code is.
USER_ERRORS = (ValueError, TypeError, KeyError, OSError, TimeoutError, DataUnavailableError)


def _finite(text: str, ok, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and ok(value)):
        msg = f"{text!r} is not a finite number {what}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0.

    Examples
    --------
    >>> positive_float("2.5e3")
    2500.0
    >>> positive_float("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: 'nan' is not a finite number > 0
    """
    return _finite(text, lambda v: v > 0, "> 0")


def nonnegative_float(text: str) -> float:
    """An argparse type: a finite number >= 0.

    Examples
    --------
    >>> nonnegative_float("0")
    0.0
    """
    return _finite(text, lambda v: v >= 0, ">= 0")


def nonnegative_int(text: str) -> int:
    """An argparse type: a whole number >= 0.

    Examples
    --------
    >>> nonnegative_int("3")
    3
    >>> nonnegative_int("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: '-1' is not a whole number >= 0
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        msg = f"{text!r} is not a whole number >= 0"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_debug(parser: argparse.ArgumentParser) -> None:
    """The ``--debug`` flag: show the traceback of an error instead of one line."""
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show its full traceback")


def guarded(parser: argparse.ArgumentParser, args, call: Callable[[], int]) -> int:
    """``call()``, with a user error printed as one line (``prog: error: ...``) and exit
    status 2, as argparse does for a bad option; ``--debug`` re-raises it."""
    try:
        return call()
    except USER_ERRORS as err:
        if getattr(args, "debug", False):
            raise
        text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        if isinstance(err, KeyError):
            text = f"unknown key {text}"
        parser.exit(2, f"{parser.prog}: error: {text or type(err).__name__} "
                       "(--debug shows the traceback)\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted; finished jobs are kept, a rerun "
                         "resumes\n")
    return 0  # pragma: no cover (parser.exit does not return)
