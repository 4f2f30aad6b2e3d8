"""Session-wide settings for the tests."""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# Chapters execute with notebooks/ as working directory: make a relative mirror path absolute.
_mirror = os.environ.get("NOISESCALING_DATA_MIRROR")
if _mirror and not Path(_mirror).is_absolute():
    os.environ["NOISESCALING_DATA_MIRROR"] = str(Path(_mirror).resolve())
