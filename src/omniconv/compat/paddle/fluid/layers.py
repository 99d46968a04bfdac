"""``paddle.fluid.layers`` mirror: ``data`` and ``deformable_conv``."""

from .._program import data
from .._static import deformable_conv

__all__ = ["data", "deformable_conv"]
