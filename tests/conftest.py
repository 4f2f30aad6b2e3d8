"""Session-wide settings for the tests."""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# Chapters execute with notebooks/ as working directory: make a relative mirror path absolute.
_mirror = os.environ.get("NOISESCALING_DATA_MIRROR")
if _mirror and not Path(_mirror).is_absolute():
    os.environ["NOISESCALING_DATA_MIRROR"] = str(Path(_mirror).resolve())


# Shared fixtures ----------------------------------------------------------------------------
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def released():
    """The paper's released tables, refitted once per session (:class:`helpers.scorecard.Released`:
    ``noise_fits``, ``largest``, ``cell_fits``, ``s6``, ``caltech_5way``, fitted on first use)."""
    from helpers import scorecard

    return scorecard.Released()
