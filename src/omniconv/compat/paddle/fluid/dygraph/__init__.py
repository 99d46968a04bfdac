"""``paddle.fluid.dygraph`` mirror: ``guard``, ``to_variable``, ``Conv2D``,
``Conv2DTranspose``."""

from ..._dygraph import Conv2D, Conv2DTranspose, guard, to_variable
from . import base, nn

__all__ = ["Conv2D", "Conv2DTranspose", "base", "guard", "nn", "to_variable"]
