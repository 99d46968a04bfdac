"""Paddle 2.x names: ``paddle.vision.ops.deform_conv2d`` and ``DeformConv2D``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from ... import nn as onn
from ..._args import check_positive_int, fail, to_pair, type_name
from ...functional.deform_conv import deform_conv2d_canonical
from .._errors import received, renamed_args
from .._frontend import FrontendMixin, Initializer
from ._common import check_groups, convert_to_list
from ._initializer import (
    Constant,
    apply_param_attrs,
    conv_normal,
    initializers_of,
    to_param_attr,
)
from ._padding import check_float_input, dtype_name

__all__ = ["DeformConv2D", "deform_conv2d"]

#: Paddle's name of the input tensor, in the functional's errors
_X = {"input": "x"}


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
    :func:`omniconv.functional.deform_conv2d` (``im2col_step`` only bounds memory there,
    so Paddle's step of 1 is not copied: the default is used)."""
    x, offset, weight, bias, mask = _check_dtypes(x, offset, weight, bias, mask)
    stride_ = to_pair(convert_to_list(stride, 2, "stride"), "stride")
    padding_ = to_pair(convert_to_list(padding, 2, "padding"), "padding", minimum=0)
    dilation_ = to_pair(convert_to_list(dilation, 2, "dilation"), "dilation")
    dg = check_positive_int(deformable_groups, "deformable_groups")
    groups = check_positive_int(groups, "groups")
    _check_channels(x, offset, weight, mask, groups, dg)
    with renamed_args(_X):
        return deform_conv2d_canonical(
            x, offset, weight, bias, stride_, padding_, dilation_, mask, 64, groups, dg
        )


def _check_dtypes(
    x: Any, offset: Any, weight: Any, bias: Any, mask: Any
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """Paddle 3.3.1's dtype rules, before any shape check: ``x`` a float32 / float64 tensor
    (Paddle's TypeError words); ``offset``, ``weight``, ``bias``, ``mask`` of ``x``'s dtype,
    or float16, which is cast to ``x``'s dtype (Paddle does this on CPU, where it has no
    float16 kernel: the op then computes in ``x``'s dtype, and the gradients of the
    float16 tensors come back as float16). Any other dtype is a TypeError."""
    x = check_float_input(x, "x", "deform_conv2d")
    return (
        x,
        _like_x("offset", offset, x),
        _like_x("weight", weight, x),
        None if bias is None else _like_x("bias", bias, x),
        None if mask is None else _like_x("mask", mask, x),
    )


def _like_x(name: str, value: Any, x: Tensor) -> Tensor:
    """``value`` in ``x``'s dtype: as it is, or cast from float16; else a TypeError."""
    if not isinstance(value, Tensor):
        raise TypeError(
            f"The type of '{name}' in deform_conv2d must be Tensor, but received {type(value)}."
        )
    if value.dtype == torch.float16:
        return value.to(x.dtype)
    if value.dtype != x.dtype:
        raise TypeError(
            f"The data type of '{name}' in deform_conv2d must be {dtype_name(x.dtype)} (the "
            f"data type of 'x') or float16, but received {dtype_name(value.dtype)}."
        )
    return value


def _check_channels(x: Any, offset: Any, weight: Any, mask: Any, groups: int, dg: int) -> None:
    """Paddle's channel checks and words (then the argument values); the functional
    checks the rest, with ``groups`` and ``dg`` given (the Paddle op takes them, never
    infers them from the tensors)."""
    for nm, t in (("x", x), ("offset", offset), ("weight", weight)):
        if not isinstance(t, Tensor):
            fail(nm, "a tensor", type_name(t), exc=TypeError)
    if x.dim() != 4 or weight.dim() != 4:
        return  # the functional reports it
    c_in, (c_out, c_w, kh, kw) = int(x.shape[1]), tuple(weight.shape)
    if c_in != c_w * groups:
        message = (
            "The number of input channels should be equal to filter channels * groups. "
            f"The difference is [{c_in}]: [{c_w * groups}]"
        )
        values = {"x.shape[1]": c_in, "weight.shape[1]": c_w, "groups": groups}
        raise ValueError(received(message, **values))
    if c_out % groups:
        raise ValueError(
            "The number of output channels should be divided by groups. But received "
            f"output channels:[{c_out}], groups:[{groups}]"
        )
    if c_out % dg:
        message = (
            "The number of output channels should be divided by deformable groups. The "
            f"difference is [{c_out % dg}]: [0]"
        )
        raise ValueError(received(message, **{"weight.shape[0]": c_out, "deformable_groups": dg}))
    k = kh * kw
    for nm, t, per_group in (("offset", offset, 2 * k), ("mask", mask, k)):
        if isinstance(t, Tensor) and t.dim() == 4 and t.shape[1] != dg * per_group:
            message = (
                f"{nm} filter must divide deformable group size. But received "
                f"[{t.shape[1] // per_group}]: [{dg}]"
            )
            values = {f"{nm}.shape[1]": int(t.shape[1]), "deformable_groups": dg}
            raise ValueError(received(message, **values))


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
        groups = check_groups(
            groups, in_channels, "in_channels must be divisible by groups.",
            {"in_channels": in_channels, "groups": groups},
        )  # fmt: skip
        attrs = {
            "weight": to_param_attr(weight_attr, "weight_attr"),
            "bias": to_param_attr(bias_attr, "bias_attr"),
        }
        super().__init__(
            in_channels, out_channels, tuple(convert_to_list(kernel_size, 2, "kernel_size")),
            tuple(convert_to_list(stride, 2, "stride")),
            tuple(convert_to_list(padding, 2, "padding")),
            tuple(convert_to_list(dilation, 2, "dilation")), groups, deformable_groups,
            bias=attrs["bias"] is not None, initializers=initializers_of(attrs),
        )  # fmt: skip
        apply_param_attrs(self, attrs)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor | None = None) -> Tensor:
        """DCNv1 without ``mask``, DCNv2 with one (Paddle's checks, then one functional
        call with the stored, canonical arguments)."""
        x, offset, weight, bias, mask = _check_dtypes(x, offset, self.weight, self.bias, mask)
        _check_channels(x, offset, weight, mask, self.groups, self._fixed_deformable_groups())
        with renamed_args(_X):
            return deform_conv2d_canonical(
                x, offset, weight, bias, self.stride, self.padding, self.dilation, mask,
                self.im2col_step, self.groups, self.deformable_groups,
            )  # fmt: skip
