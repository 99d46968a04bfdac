"""``torchvision.ops``' deformable convolution: ``from omniconv.compat.torchvision import
ops`` then ``ops.deform_conv2d`` / ``ops.DeformConv2d``, as with torchvision."""

from .deform_conv import DeformConv2d, deform_conv2d

__all__ = ["DeformConv2d", "deform_conv2d"]
