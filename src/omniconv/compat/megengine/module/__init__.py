"""``megengine.module`` subset: :class:`Module`, :class:`Conv2d` and :mod:`.init`."""

from . import init
from .conv import Conv2d
from .module import Module

__all__ = ["Conv2d", "Module", "init"]
