"""torch's thread count inside ``helpers._torch.torch_threads`` does not depend on history."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"

# In a fresh process (numba's thread pool not started yet), a parallel numba call inside the
# block -- scanpy's highly_variable_genes, as Geneformer's gene selection makes -- must leave
# torch on the block's thread count.  numba's OpenMP layer, started there, used to set it to
# NUMBA_NUM_THREADS, so the first model of a process trained on another thread count than the
# later ones.
SCRIPT = """
import numpy as np, scipy.sparse as sp, torch
from helpers._torch import torch_threads
from helpers.models._common import select_highly_variable
x = sp.csr_matrix(np.random.default_rng(0).poisson(0.5, (300, 400)).astype(np.float32))
with torch_threads(1):
    select_highly_variable(x, 100)
    inside = torch.get_num_threads()
with torch_threads(1):
    again = torch.get_num_threads()
print(inside, again)
"""


def test_a_numba_thread_pool_started_inside_the_block_keeps_torch_on_its_thread_count():
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, check=True, timeout=300)
    assert out.stdout.split() == ["1", "1"]
