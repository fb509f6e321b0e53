"""Shared by every test folder (they mirror the package's): tests/ on the path for the helpers
``settings``, ``fixtures`` and ``slurm_cluster``; one torch thread; a seeded generator."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

torch.set_num_threads(1)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
