"""The math. Nothing here validates arguments: the functionals do that first."""

from .deform_op import deform_conv2d, deform_conv2d_backward
from .dense import conv2d_nchw, conv_transpose2d_nchw

__all__ = ["conv2d_nchw", "conv_transpose2d_nchw", "deform_conv2d", "deform_conv2d_backward"]
