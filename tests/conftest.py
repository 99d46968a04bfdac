"""pytest fixtures shared by every test (helpers live in ``_helpers.py``)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
