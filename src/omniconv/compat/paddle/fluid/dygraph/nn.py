"""``paddle.fluid.dygraph.nn`` mirror: ``Conv2D``, ``Conv2DTranspose``."""

from ..._dygraph import Conv2D, Conv2DTranspose

__all__ = ["Conv2D", "Conv2DTranspose"]
