"""The deformable convolution of MegEngine's ``functional.deformable_conv2d`` and
``module.DeformableConv2d`` (one body, canonical arguments), onto
:func:`omniconv.functional.deform_conv2d`.

megdnn's ``DeformableConv`` (``dnn/src/naive/deformable_conv/opr_impl.cpp``, and the CUDA
kernels) is DCNv2 as torchvision computes it: the offset has ``2*dg*kh*kw`` channels,
``(dy, dx)`` per tap, each deformable group a contiguous block of input channels; the mask
``dg*kh*kw``; a sample is zero outside ``(-1, H) x (-1, W)`` and bilinear with zero corners
inside, its gradients the same floor-based ones. The deformable group count is read from
the offset (``offset.shape[1] // (2*kh*kw)``) and must divide the output channels (megdnn:
"oc % deformable_group != 0"). The mask is required (there is no DCNv1 form). MegEngine
casts the offset and mask to float32 (its only dtype); here they are cast to the input's
dtype.
"""

from __future__ import annotations

from typing import Any

import torch

from ..._args import Pair, fail, renamed_args, type_name
from ..._shapes import deform_offset_channels
from ...functional.deform_conv import deform_conv2d_canonical
from .._errors import received
from ._conv import INP, compute_mode_of_call, finish, in_compute_dtype, torch_weight, weight_groups
from ._errors import MegEngineAssertionError, MegEngineRuntimeError
from ._tensor import Tensor

__all__ = ["check_conv_mode", "deformable_conv2d_megengine"]


def check_conv_mode(conv_mode: Any) -> str:
    """Only cross-correlation (any case): megdnn's deformable convolution asserts
    "only support CROSS_CORRELATION mode" (MegEngine's Python check fails first, with an
    ``AttributeError`` for ``'convolution'``)."""
    if not (isinstance(conv_mode, str) and conv_mode.lower() == "cross_correlation"):
        message = "only support CROSS_CORRELATION mode"
        raise MegEngineAssertionError(received(message, conv_mode=conv_mode))
    return "cross_correlation"


def deformable_conv2d_megengine(
    inp: torch.Tensor,
    weight: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    compute_mode: str,
) -> Tensor:
    """MegEngine's deformable convolution (cross-correlation) with a checked, lower-case
    ``compute_mode`` (before the global override, applied here)."""
    compute = compute_mode_of_call(compute_mode)
    for name, value in (("inp", inp), ("offset", offset), ("mask", mask)):
        if not isinstance(value, torch.Tensor):
            rule = "a Tensor (MegEngine's deformable convolution always takes a mask)"
            fail(name, rule if name == "mask" else "a Tensor", type_name(value), exc=TypeError)
    w = torch_weight(weight, groups)
    offset, mask = offset.to(inp.dtype), mask.to(inp.dtype)  # MegEngine: to float32
    kernel = (w.shape[2], w.shape[3])
    per_group = deform_offset_channels(1, kernel)
    if offset.dim() == 4 and offset.shape[1] and offset.shape[1] % per_group == 0:
        dg, oc = offset.shape[1] // per_group, w.shape[0]
        if oc % dg:
            message = "oc % deformable_group != 0"
            raise MegEngineRuntimeError(
                received(message, **{"weight.shape": tuple(weight.shape), "deformable_group": dg})
            )
    out_dtype, (x, w, offset, mask) = in_compute_dtype(compute, inp, w, offset, mask)
    with renamed_args(INP):
        out = deform_conv2d_canonical(
            x, offset, w, None, stride, padding, dilation, mask, 64, weight_groups(weight, groups),
            None,
        )  # fmt: skip
    return finish(out, out_dtype, bias)
