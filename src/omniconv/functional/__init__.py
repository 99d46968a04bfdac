"""Functional ops: canonicalise arguments, check tensors, call a kernel."""

from .conv import conv2d
from .conv_transpose import conv_transpose2d
from .deform_conv import deform_conv2d

__all__ = ["conv2d", "conv_transpose2d", "deform_conv2d"]
