"""``paddle.nn`` mirror: ``Conv2D``, ``Conv2DTranspose`` and ``functional``."""

from .._nn import Conv2D, Conv2DTranspose
from . import functional

__all__ = ["Conv2D", "Conv2DTranspose", "functional"]
