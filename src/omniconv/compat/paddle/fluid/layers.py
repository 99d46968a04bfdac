"""``paddle.fluid.layers`` mirror: ``data``, ``conv2d``, ``conv2d_transpose`` and
``deformable_conv``."""

from .._fluid_conv import conv2d, conv2d_transpose
from .._program import data
from .._static import deformable_conv

__all__ = ["conv2d", "conv2d_transpose", "data", "deformable_conv"]
