"""``paddle.fluid.dygraph.nn`` mirror: ``Conv2DTranspose``."""

from ..._dygraph import Conv2DTranspose

__all__ = ["Conv2DTranspose"]
