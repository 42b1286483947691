import pytest

import functorch_lite as fl


@pytest.fixture
def x64():
    """float64 as the default float dtype for the test (comparisons with PyTorch/SciPy)."""
    with fl.config.enable_x64():
        yield
