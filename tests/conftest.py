"""pytest fixtures shared by every test (helpers live in ``_helpers.py``), and the
hypothesis profiles.

Hypothesis profiles (``HYPOTHESIS_PROFILE``, default ``ci``):

* ``ci``: reproducible (``derandomize``: the examples follow from the test's code), no
  deadline (timings on a shared 2-core runner are noise), bounded time;
* ``soak``: random, and tests that take their example count from the profile (the
  property tests of ``test_properties.py``) run 20 000 examples.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "soak",
    deadline=None,
    max_examples=20_000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
