"""``mmcv.ops`` mirror (the deformable convolutions): ``from omniconv.compat.mmcv.ops
import ...`` replaces ``from mmcv.ops import ...``."""

from .deform_conv import DeformConv2d, DeformConv2dPack, deform_conv2d
from .modulated_deform_conv import (
    ModulatedDeformConv2d,
    ModulatedDeformConv2dPack,
    modulated_deform_conv2d,
)

__all__ = [
    "DeformConv2d",
    "DeformConv2dPack",
    "ModulatedDeformConv2d",
    "ModulatedDeformConv2dPack",
    "deform_conv2d",
    "modulated_deform_conv2d",
]
