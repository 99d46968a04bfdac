"""``paddle.fluid.dygraph.base`` mirror: ``guard``, ``to_variable``."""

from ..._dygraph import guard, to_variable

__all__ = ["guard", "to_variable"]
