"""Modules: own the parameters, validate at construction, call one functional."""

from .conv import Conv2d, LazyConv2d
from .conv_transpose import ConvTranspose2d, LazyConvTranspose2d
from .deform_conv import DeformConv2d, DeformConv2dPack
from .img_conv_group import ImgConvGroup

__all__ = [
    "Conv2d",
    "ConvTranspose2d",
    "DeformConv2d",
    "DeformConv2dPack",
    "ImgConvGroup",
    "LazyConv2d",
    "LazyConvTranspose2d",
]
