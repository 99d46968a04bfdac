"""``paddle.nn.functional`` mirror: ``conv2d`` and ``conv2d_transpose``."""

from .._nn import conv2d, conv2d_transpose

__all__ = ["conv2d", "conv2d_transpose"]
