"""``paddle.fluid`` mirror: ``layers``, ``nets``, ``dygraph``, ``initializer``, ``ParamAttr``."""

from .. import _initializer as initializer
from .._initializer import ParamAttr
from . import dygraph, layers, nets

__all__ = ["ParamAttr", "dygraph", "initializer", "layers", "nets"]
