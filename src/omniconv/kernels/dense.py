"""Dense (transposed) convolution kernels: thin calls into torch's native conv."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .._args import Pad4, Pair

__all__ = ["conv2d_nchw", "conv_transpose2d_nchw"]


def conv2d_nchw(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Pair,
    padding: Pad4,
    dilation: Pair,
    groups: int,
    padding_mode: str,
) -> Tensor:
    """Cross-correlation of an NCHW (or channels_last-strided) input.

    ``padding`` is ``(top, bottom, left, right)``; symmetric zero padding is passed
    to the native conv, anything else is applied with :func:`torch.nn.functional.pad`.
    """
    top, bottom, left, right = padding
    if padding_mode == "zeros" and top == bottom and left == right:
        return F.conv2d(input, weight, bias, stride, (top, left), dilation, groups)
    if any(padding):
        mode = "constant" if padding_mode == "zeros" else padding_mode
        input = F.pad(input, (left, right, top, bottom), mode=mode)
    return F.conv2d(input, weight, bias, stride, 0, dilation, groups)


def conv_transpose2d_nchw(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Pair,
    padding: Pair,
    output_padding: Pair,
    groups: int,
    dilation: Pair,
) -> Tensor:
    """Transposed convolution; weight ``(C_in, C_out/groups, kh, kw)``."""
    return F.conv_transpose2d(
        input, weight, bias, stride, padding, output_padding, groups, dilation
    )
