"""Helpers for the measurement-noise scaling book.

Small modules named for what they do, imported on first use so that ``import helpers`` stays
fast (torch, scvi-tools and transformers load only when a model is used)::

    import helpers as hp
    hp.laws.noise_law(x, u_bar=500, i_max=2)

=============  ==============================================================
``profiles``   the ``smoke`` / ``quick`` / ``paper`` grids, in one table
``tasks``      the task registry: each task's data, signal, corruption, models, paper curves
``data``       checksummed access to every input named in ``data_manifest.yml``
``laws``       the noise and cell-number scaling laws: evaluate, fit, invert, collapse
``published``  the paper's released result tables as tidy DataFrames
``plots``      the book's palette and figure helpers
``theory``     Box 1: the Gaussian channel model and its Poisson counterpart
``probe``      auxiliary mutual information (latent MI) between embeddings and signals
``groundtruth`` samples with analytic mutual information, for validating the probe
``noise``      corruptions: binomial thinning of counts (simulated sequencing depth), …
``splits``     training-size subsets, validation split and the fixed evaluation set
``datasets``   loaders returning AnnData with raw counts and the auxiliary signal
``models``     random projection, PCA, scVI and a Geneformer-style BERT
``sweep``      a task's sweep as jobs: grid, run (serial or Dask), sharded results, fits
``apply``      the noise law of your own AnnData and embedding, in one call or command
``plan``       experimental design from the joint cells × depth law (also a command line)
``sequencing`` library complexity (UMIs saturate with reads) and costs in reads and lanes
``zoo``        every published curve with its fit in one offline interactive (Bokeh) page
``progress``   progress bars for people watching, none in the built book or under papermill
``imaging``    the image tasks: noise images → MobileNet → label MI
``scorecard``  the paper's claims as data, recomputed from the released tables and our runs
=============  ==============================================================
"""

from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0"

_SUBMODULES = (
    "profiles",
    "tasks",
    "data",
    "laws",
    "published",
    "plots",
    "theory",
    "probe",
    "groundtruth",
    "noise",
    "splits",
    "datasets",
    "models",
    "sweep",
    "apply",
    "plan",
    "sequencing",
    "zoo",
    "progress",
    "imaging",
    "scorecard",
)

__all__ = [*_SUBMODULES, "__version__"]

if "ipykernel" in sys.modules:  # in a notebook: no "IProgress not found" (see helpers.progress)
    importlib.import_module(f"{__name__}.progress").settle_tqdm_auto()


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__():
    return sorted(__all__)
