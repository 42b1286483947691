"""Fixtures for the GPU tests: they run only where CuPy and a CUDA GPU are present.

``test_cupy.py`` skips itself (with the reason, shown by ``-ra``) when CuPy is missing or
CUDA sees no GPU, so the suite passes on any machine.
"""

import numpy as np
import pytest

import functorch_lite as fl


@pytest.fixture
def gpu():
    """The name of the first visible GPU ('cuda:0')."""
    return fl.devices()[1]


@pytest.fixture
def to_gpu(gpu):
    """Move a pytree to the GPU (fl.device_put)."""
    return lambda tree: fl.device_put(tree, gpu)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
