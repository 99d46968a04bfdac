"""``paddle.vision.ops`` mirror: ``deform_conv2d`` and ``DeformConv2D``."""

from .._vision import DeformConv2D, deform_conv2d

__all__ = ["DeformConv2D", "deform_conv2d"]
