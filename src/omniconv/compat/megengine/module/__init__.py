"""``megengine.module`` subset: :class:`Module`, :class:`Conv2d`, :class:`ConvTranspose2d`,
:class:`DeformableConv2d` and :mod:`.init`."""

from . import init
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .deformable_conv import DeformableConv2d
from .module import Module

__all__ = ["Conv2d", "ConvTranspose2d", "DeformableConv2d", "Module", "init"]
