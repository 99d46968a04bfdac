"""Dense (transposed) convolution kernels: thin calls into torch's native conv."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .._args import Pad4, Pair
from .._shapes import pad4

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
    padding: Pad4 | Pair,
    output_padding: Pair,
    groups: int,
    dilation: Pair,
) -> Tensor:
    """Transposed convolution; weight ``(C_in, C_out/groups, kh, kw)``.

    ``padding`` is ``(top, bottom, left, right)`` (or a symmetric pair). Symmetric padding
    goes to the native op as it is. Otherwise the native op runs with the smaller pad of
    each dimension and the output padding that still reaches past its far edge, and the
    result is cropped by the difference on the side with the larger pad.
    """
    top, bottom, left, right = pad4(padding)
    if top == bottom and left == right:
        return F.conv_transpose2d(
            input, weight, bias, stride, (top, left), output_padding, groups, dilation
        )
    ph, pw = min(top, bottom), min(left, right)
    # rows of the native result: [ph, full - ph + op_native) of the unpadded one; wanted:
    # [top, full - bottom + output_padding)
    op_native = (
        max(output_padding[0] - (bottom - ph), 0),
        max(output_padding[1] - (right - pw), 0),
    )
    out = F.conv_transpose2d(input, weight, bias, stride, (ph, pw), op_native, groups, dilation)
    h, w = out.shape[-2:]
    ho = h - (top - ph) - (bottom - ph) + output_padding[0] - op_native[0]
    wo = w - (left - pw) - (right - pw) + output_padding[1] - op_native[1]
    return out[..., top - ph : top - ph + ho, left - pw : left - pw + wo]
