"""The eager ``F`` of ``hybrid_forward(F, x, ...)``: MXNet's operators on torch tensors.

Convolution is :func:`omniconv.functional.conv2d`, Deconvolution
:func:`omniconv.functional.conv_transpose2d`, ``contrib.DeformableConvolution`` /
``contrib.ModulatedDeformableConvolution`` :func:`omniconv.functional.deform_conv2d`
(DCNv1 with MXNet's own border rule, :mod:`._msra_border`); the activations come from
the one Gluon table, :data:`ACTIVATIONS` (anything else is MXNet's "Invalid Input" error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as TF
from torch import Tensor

from ... import functional as OF
from ..._shapes import conv_output_size, deform_offset_channels
from .._errors import received
from ._errors import MXNetValueError
from ._msra_border import msra_offset_and_mask

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Convolution",
    "Deconvolution",
    "Flatten",
    "broadcast_add",
    "broadcast_div",
    "broadcast_mul",
    "broadcast_sub",
    "check_act_type",
    "concat",
    "contrib",
    "elemwise_add",
    "elemwise_mul",
    "elemwise_sub",
    "flatten",
    "relu",
    "sigmoid",
    "slice_axis",
    "softsign",
    "tanh",
]

# MXNet 1.9.1's Activation act_type enum (activation-inl.h), the only ones accepted
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softrelu": TF.softplus,  # log(1 + e^x)
    "softsign": TF.softsign,
}


def check_act_type(act_type: Any, arg: str | None = None) -> Callable[[Tensor], Tensor]:
    """The activation named ``act_type``, or MXNet's "Invalid Input" error (followed by
    the layer's argument ``arg`` and its value, when given)."""
    fn = ACTIVATIONS.get(act_type) if isinstance(act_type, str) else None
    if fn is None:
        valid = ", ".join(f"'{k}'" for k in sorted(ACTIVATIONS))
        message = (
            f"Invalid Input: '{act_type}', valid values are: {{{valid}}}, in operator "
            f'Activation(name="", act_type="{act_type}")'
        )
        raise MXNetValueError(message if arg is None else received(message, **{arg: act_type}))
    return fn


def Activation(data: Tensor, act_type: str, name: str | None = None) -> Tensor:
    return check_act_type(act_type)(data)


def Convolution(
    data: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    kernel: Any,
    stride: Any,
    dilate: Any,
    pad: Any,
    num_filter: int,
    num_group: int,
    no_bias: bool,
    layout: str,
    cudnn_off: bool | None = None,
    name: str | None = None,
) -> Tensor:
    return OF.conv2d(
        data, weight, None if no_bias else bias, stride, tuple(pad), dilate, num_group,
        layout=layout,
    )  # fmt: skip


def Deconvolution(
    data: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    kernel: Any,
    stride: Any,
    dilate: Any,
    pad: Any,
    adj: Any,
    num_filter: int,
    num_group: int,
    no_bias: bool,
    layout: str,
    name: str | None = None,
) -> Tensor:
    """MXNet's Deconvolution; ``layout='NHWC'``: NHWC data and an ``(I, kh, kw, O/groups)``
    weight, computed in NCHW on views."""
    if layout == "NHWC":
        data, weight = data.permute(0, 3, 1, 2), weight.permute(0, 3, 1, 2)
    out = OF.conv_transpose2d(
        data, weight, None if no_bias else bias, stride, pad, adj, num_group, dilate
    )
    return out.permute(0, 2, 3, 1) if layout == "NHWC" else out


def _deform_geometry(
    data: Tensor, offset: Tensor, mask: Tensor | None, kernel: Any, stride: Any, pad: Any,
    dilate: Any, num_deformable_group: int,
) -> None:  # fmt: skip
    """MXNet's shape checks of the offset (and mask) maps (``InferShape``), in its words
    followed by the value received; the functional checks the rest."""
    maps = [("data", data), ("offset", offset)] + ([] if mask is None else [("mask", mask)])
    for what, t in maps:
        if not isinstance(t, Tensor):
            raise TypeError(
                f"`{what}` must be a torch.Tensor; received {what}=<{type(t).__name__}>"
            )
        if t.dim() != 4:
            # MXNet says "offset" for the mask too
            word = "data" if what == "data" else "offset"
            raise MXNetValueError(
                received(
                    f"Input {word} should be 4D in batch-num_filter-y-x",
                    **{f"{what}.shape": tuple(t.shape)},
                )
            )
    p = tuple(pad)
    ho, wo = conv_output_size(
        (data.shape[2], data.shape[3]),
        tuple(kernel),
        tuple(stride),
        (p[0], p[0], p[1], p[1]),
        tuple(dilate),
    )
    kernel2 = (int(kernel[0]), int(kernel[1]))
    for what, t in maps[1:]:
        for axis, size, side in ((2, ho, "height"), (3, wo, "width")):
            if t.shape[axis] != size:
                raise MXNetValueError(
                    received(
                        f"output {side} must equal to {what} map {side} ({size})",
                        **{f"{what}.shape": tuple(t.shape)},
                    )
                )
        per_group = (
            deform_offset_channels(1, kernel2) if what == "offset" else kernel2[0] * kernel2[1]
        )
        if t.shape[1] != per_group * num_deformable_group:
            raise MXNetValueError(
                received(
                    f"offset filter must divide deformable group size ({what} channels: "
                    f"{per_group} x num_deformable_group={num_deformable_group})",
                    **{f"{what}.shape": tuple(t.shape)},
                )
            )


class contrib:  # MXNet's ``F.contrib`` namespace
    """``F.contrib``: MXNet's deformable convolutions."""

    @staticmethod
    def DeformableConvolution(
        data: Tensor,
        offset: Tensor,
        weight: Tensor,
        bias: Tensor | None = None,
        *,
        kernel: Any,
        stride: Any,
        dilate: Any,
        pad: Any,
        num_filter: int,
        num_group: int,
        num_deformable_group: int,
        no_bias: bool,
        layout: str,
        name: str | None = None,
    ) -> Tensor:
        """DCNv1 with MXNet's border rule (:mod:`._msra_border`)."""
        _deform_geometry(data, offset, None, kernel, stride, pad, dilate, num_deformable_group)
        offset, mask = msra_offset_and_mask(
            (data.shape[2], data.shape[3]), offset, tuple(kernel), tuple(stride), tuple(pad),
            tuple(dilate), num_deformable_group,
        )  # fmt: skip
        return OF.deform_conv2d(
            data, offset, weight, None if no_bias else bias, stride, pad, dilate, mask,
            groups=num_group, deformable_groups=num_deformable_group,
        )  # fmt: skip

    @staticmethod
    def ModulatedDeformableConvolution(
        data: Tensor,
        offset: Tensor,
        mask: Tensor,
        weight: Tensor,
        bias: Tensor | None = None,
        *,
        kernel: Any,
        stride: Any,
        dilate: Any,
        pad: Any,
        num_filter: int,
        num_group: int,
        num_deformable_group: int,
        no_bias: bool,
        layout: str,
        name: str | None = None,
    ) -> Tensor:
        """DCNv2 (MXNet's rule is omniconv's: zero outside ``(-1, H) x (-1, W)``)."""
        _deform_geometry(data, offset, mask, kernel, stride, pad, dilate, num_deformable_group)
        return OF.deform_conv2d(
            data, offset, weight, None if no_bias else bias, stride, pad, dilate, mask,
            groups=num_group, deformable_groups=num_deformable_group,
        )  # fmt: skip


def slice_axis(
    data: Tensor, axis: int, begin: int, end: int | None, name: str | None = None
) -> Tensor:
    index = (slice(None),) * (axis % data.dim()) + (slice(begin, end),)
    return data[index]


def relu(data: Tensor, name: str | None = None) -> Tensor:
    return torch.relu(data)


def sigmoid(data: Tensor, name: str | None = None) -> Tensor:
    return torch.sigmoid(data)


def tanh(data: Tensor, name: str | None = None) -> Tensor:
    return torch.tanh(data)


def softsign(data: Tensor, name: str | None = None) -> Tensor:
    return TF.softsign(data)


def concat(*data: Tensor, dim: int = 1, name: str | None = None) -> Tensor:
    return torch.cat(data, dim=dim)


def Flatten(data: Tensor, name: str | None = None) -> Tensor:
    return data.reshape(data.shape[0], -1)


flatten = Flatten


def _same_shape(op: str, lhs: Tensor, rhs: Tensor) -> None:
    if lhs.shape != rhs.shape:
        raise MXNetValueError(f"{op}: shapes {tuple(lhs.shape)} and {tuple(rhs.shape)} differ")


def elemwise_add(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    _same_shape("elemwise_add", lhs, rhs)
    return lhs + rhs


def elemwise_sub(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    _same_shape("elemwise_sub", lhs, rhs)
    return lhs - rhs


def elemwise_mul(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    _same_shape("elemwise_mul", lhs, rhs)
    return lhs * rhs


def broadcast_add(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    return lhs + rhs


def broadcast_sub(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    return lhs - rhs


def broadcast_mul(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    return lhs * rhs


def broadcast_div(lhs: Tensor, rhs: Tensor, name: str | None = None) -> Tensor:
    return lhs / rhs
