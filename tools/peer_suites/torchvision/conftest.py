# Harness conftest (torchvision's own test/conftest.py in the index is an older version that
# imports names its common_utils no longer has): register torchvision's markers and skip
# needs_cuda / needs_mps tests without the device, with torchvision's skip messages.
import pytest
import torch
from common_utils import CUDA_NOT_AVAILABLE_MSG, MPS_NOT_AVAILABLE_MSG


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_cuda: mark for tests that rely on a CUDA device")
    config.addinivalue_line("markers", "needs_mps: mark for tests that rely on a MPS device")
    config.addinivalue_line("markers", "dont_collect: mark for tests that should not be collected")
    config.addinivalue_line("markers", "opcheck_only_one: only one opcheck variant")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("needs_cuda") is not None and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason=CUDA_NOT_AVAILABLE_MSG))
        if (
            item.get_closest_marker("needs_mps") is not None
            and not torch.backends.mps.is_available()
        ):
            item.add_marker(pytest.mark.skip(reason=MPS_NOT_AVAILABLE_MSG))
