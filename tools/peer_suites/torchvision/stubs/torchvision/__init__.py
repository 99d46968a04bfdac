"""Stub torchvision for running torchvision's test/test_ops.py against omniconv: `ops` is
omniconv.compat.torchvision.ops; models.feature_extraction is torchvision 0.28.0's own file
(copied from the wheel by setup.sh); everything else the test module imports is a stub that
raises if a selected test used it."""

import sys

from omniconv.compat.torchvision import ops

sys.modules[__name__ + ".ops"] = ops

from . import io, models, transforms, tv_tensors  # noqa: E402,F401
