"""Functional ops: canonicalise arguments, check tensors, call a kernel."""

from .conv2d import conv2d
from .conv_transpose2d import conv_transpose2d
from .deform_conv2d import deform_conv2d

__all__ = ["conv2d", "conv_transpose2d", "deform_conv2d"]
