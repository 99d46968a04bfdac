"""Paddle 2.x names: ``paddle.vision.ops.deform_conv2d`` and ``DeformConv2D``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor

from ... import functional as OF
from ... import nn as onn
from ..._args import check_positive_int, fail, type_name
from .._frontend import FrontendMixin, Initializer
from ._common import convert_to_list
from ._initializer import Constant, to_param_attr
from ._static import _set_attrs, conv_normal

__all__ = ["DeformConv2D", "deform_conv2d"]


def deform_conv2d(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    deformable_groups: int = 1,
    groups: int = 1,
    mask: Tensor | None = None,
    name: str | None = None,
) -> Tensor:
    """``paddle.vision.ops.deform_conv2d``: DCNv1 when ``mask`` is None, else DCNv2.
    Paddle's shape checks and messages (groups, deformable groups); the math is
    :func:`omniconv.functional.deform_conv2d` (Paddle's ``im2col_step`` of 1 only
    bounds memory there, so it is not passed)."""
    stride_ = convert_to_list(stride, 2, "stride")
    padding_ = convert_to_list(padding, 2, "padding")
    dilation_ = convert_to_list(dilation, 2, "dilation")
    dg = check_positive_int(deformable_groups, "deformable_groups")
    groups = check_positive_int(groups, "groups")
    for nm, t in (("x", x), ("offset", offset), ("weight", weight)):
        if not isinstance(t, Tensor):
            fail(nm, "a tensor", type_name(t), exc=TypeError)
    if x.dim() == 4 and weight.dim() == 4:
        c_in, (c_out, c_w, kh, kw) = int(x.shape[1]), tuple(weight.shape)
        if c_in != c_w * groups:
            raise ValueError(
                "The number of input channels should be equal to filter channels * groups. "
                f"The difference is [{c_in}]: [{c_w * groups}]"
            )
        if c_out % groups:
            raise ValueError(
                "The number of output channels should be divided by groups. But received "
                f"output channels:[{c_out}], groups:[{groups}]"
            )
        if c_out % dg:
            raise ValueError(
                "The number of output channels should be divided by deformable groups. The "
                f"difference is [{c_out % dg}]: [0] (output channels {c_out}, "
                f"deformable_groups {dg})"
            )
        k = kh * kw
        if offset.dim() == 4 and offset.shape[1] != 2 * dg * k:
            raise ValueError(
                "offset filter must divide deformable group size. But received "
                f"[{offset.shape[1] // (2 * k)}]: [{dg}]"
            )
        if isinstance(mask, Tensor) and mask.dim() == 4 and mask.shape[1] != dg * k:
            raise ValueError(
                f"mask filter must divide deformable group size. But received "
                f"[{mask.shape[1] // k}]: [{dg}]"
            )
    return OF.deform_conv2d(
        x, offset, weight, bias, tuple(stride_), tuple(padding_), tuple(dilation_), mask
    )


class DeformConv2D(FrontendMixin, onn.DeformConv2d):
    """``paddle.vision.ops.DeformConv2D``; ``forward(x, offset, mask=None)`` (v1 without a
    mask, v2 with one). Weight ``[out, in/groups, kh, kw]`` ~
    ``Normal(0, sqrt(2/(kh*kw*in_channels)))``, bias ``[out]`` = 0; state-dict keys
    ``weight`` / ``bias``."""

    default_initializers: ClassVar[Mapping[str, Initializer]] = {
        "weight": conv_normal,
        "bias": Constant(0.0),
    }

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        deformable_groups: int = 1,
        groups: int = 1,
        weight_attr: Any = None,
        bias_attr: Any = None,
    ) -> None:
        if weight_attr is False:
            fail("weight_attr", "not False (the layer needs its weight)", False)
        in_channels = check_positive_int(in_channels, "in_channels")
        groups = check_positive_int(groups, "groups")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups.")
        wattr = to_param_attr(weight_attr, "weight_attr")
        battr = to_param_attr(bias_attr, "bias_attr")
        super().__init__(
            in_channels, out_channels, tuple(convert_to_list(kernel_size, 2, "kernel_size")),
            tuple(convert_to_list(stride, 2, "stride")),
            tuple(convert_to_list(padding, 2, "padding")),
            tuple(convert_to_list(dilation, 2, "dilation")), groups, deformable_groups,
            bias=battr is not None,
        )  # fmt: skip
        _set_attrs(self, wattr, battr)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor | None = None) -> Tensor:
        return deform_conv2d(
            x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation,
            self.deformable_groups, self.groups, mask,
        )  # fmt: skip
