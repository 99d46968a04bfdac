"""Paddle 2.x / 3.x names: ``paddle.nn.Conv2D``, ``paddle.nn.Conv2DTranspose`` and
``paddle.nn.functional.conv2d`` / ``conv2d_transpose`` (the signatures and rules of
Paddle 3.3.1)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..._args import Pair, as_int, check_bool, check_positive_int, fail, to_pair
from ..._shapes import conv_transpose_output_size, paddle_transpose_same_padding
from ...functional.conv import conv2d_canonical
from ...functional.conv_transpose import conv_transpose2d_canonical
from .._errors import received, renamed_args
from ._common import PaddleAssertionError, check_dtype_name, check_groups, convert_to_list
from ._conv import (
    FLOAT_DTYPES,
    PaddleConv2D,
    PaddleConv2DTranspose,
    check_output_size,
    conv_padding_args,
    transpose_padding_args,
)
from ._initializer import apply_param_attrs, initializers_of, to_param_attr
from ._padding import check_float_input, nn_padding

__all__ = ["Conv2D", "Conv2DTranspose", "conv2d", "conv2d_transpose"]

#: Paddle 2.x's name of the input tensor, in the functional's errors
_X = {"input": "x"}

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_FORMATS = ("NCHW", "NHWC")


def _pairs(kernel_size: Any, stride: Any, dilation: Any) -> tuple[Pair, Pair, Pair]:
    """Paddle's ``convert_to_list`` (its words), then omniconv's range checks."""
    k = convert_to_list(kernel_size, 2, "kernel_size")
    s = convert_to_list(stride, 2, "stride")
    d = convert_to_list(dilation, 2, "dilation")
    return to_pair(k, "kernel_size"), to_pair(s, "stride"), to_pair(d, "dilation")


def _layer_args(
    weight_attr: Any,
    bias_attr: Any,
    data_format: Any,
    device: Any = None,
    dtype: Any = None,
    padding_mode: str = "zeros",
    padding: Any = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``_ConvNd``'s checks, in its order (``weight_attr`` not False, ``padding_mode``, an
    int padding for the non-zero modes, ``data_format``), and the parameter attributes /
    factory keywords."""
    if weight_attr is False:
        raise PaddleAssertionError("weight_attr should not be False in Conv.")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(
            "padding_mode must be one of {'zeros', 'reflect', 'replicate', 'circular'}, "
            f"but got padding_mode='{padding_mode}'"
        )
    if padding_mode != "zeros" and not isinstance(padding, int):
        message = (
            "when padding_mode in ['reflect', 'replicate', 'circular'], type of padding must be int"
        )
        raise TypeError(received(message, padding=padding))
    if data_format not in _FORMATS:
        raise ValueError(
            f"data_format must be one of {{'NCHW', 'NHWC'}}, but got data_format='{data_format}'"
        )
    attrs = {
        "weight": to_param_attr(weight_attr, "weight_attr"),
        "bias": to_param_attr(bias_attr, "bias_attr"),
    }
    factory = {
        "device": None if device is None else torch.device(str(device).replace("gpu", "cuda")),
        "dtype": None if dtype is None else check_dtype_name(dtype),
    }
    return attrs, factory


class Conv2D(PaddleConv2D):
    """``paddle.nn.Conv2D`` (Paddle 3.3.1 signature) on :class:`omniconv.nn.Conv2d`.

    ``padding``: ``'same'`` / ``'valid'`` (any case; ``'same'`` is TensorFlow's rule with
    the dilation taken as 1, as Paddle's kernel), an int, ``[pad_h, pad_w]``,
    ``[top, bottom, left, right]`` or the nested 4-list with zero batch and channel pairs;
    ``padding_mode`` ``'zeros'`` / ``'reflect'`` / ``'replicate'`` / ``'circular'`` (the
    non-zero modes take an int padding). ``data_format`` ``'NCHW'`` or ``'NHWC'`` (the
    weight stays ``[out, in/groups, kh, kw]``). Weight ~ ``Normal(0, sqrt(2/(kh*kw*in)))``,
    bias 0; ``bias=False`` or ``bias_attr=False``: no bias. State-dict keys ``weight`` /
    ``bias``. ``groups=0`` raises Paddle's ``ZeroDivisionError`` (also a ValueError).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        *,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        weight_attr: Any = None,
        bias_attr: Any = None,
        data_format: str = "NCHW",
    ) -> None:
        if not check_bool(bias, "bias"):
            bias_attr = False
        attrs, factory = _layer_args(
            weight_attr, bias_attr, data_format, device, dtype, padding_mode, padding
        )
        kernel, stride_, dilation_ = _pairs(kernel_size, stride, dilation)
        algorithm, pads = nn_padding(padding, data_format)
        in_channels = check_positive_int(in_channels, "in_channels")
        groups = check_groups(
            groups, in_channels, "in_channels must be divisible by groups.",
            {"in_channels": in_channels, "groups": groups},
        )  # fmt: skip
        pad, dil = conv_padding_args(algorithm, pads, dilation_)
        super().__init__(
            in_channels, out_channels, kernel, stride_, pad, dil, groups,
            bias=attrs["bias"] is not None, padding_mode=padding_mode, layout=data_format,
            initializers=initializers_of(attrs), **factory,
        )  # fmt: skip
        apply_param_attrs(self, attrs)
        self.data_format = data_format


class Conv2DTranspose(PaddleConv2DTranspose):
    """``paddle.nn.Conv2DTranspose`` (Paddle 3.3.1 signature) on
    :class:`omniconv.nn.ConvTranspose2d`.

    ``padding`` as :class:`Conv2D` (``'same'`` is Paddle's rule for a transposed conv: the
    padding of the *input* size, dilation 1, resolved at each call when the stride is
    not 1); ``output_padding`` an int or a pair; ``forward(x, output_size=None)`` with
    ``output_size`` an int, list or tuple within ``[infer, infer + stride)`` (Paddle's
    words; ``output_padding`` is then ignored, as Paddle's layer does). Weight
    ``[in, out/groups, kh, kw]`` with Paddle's Xavier-uniform, bias 0. ``data_format``
    ``'NCHW'`` or ``'NHWC'``. State-dict keys ``weight`` / ``bias``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        weight_attr: Any = None,
        bias_attr: Any = None,
        data_format: str = "NCHW",
    ) -> None:
        attrs, factory = _layer_args(weight_attr, bias_attr, data_format, None, None)
        kernel, stride_, dilation_ = _pairs(kernel_size, stride, dilation)
        algorithm, pads = nn_padding(padding, data_format)
        groups = check_groups(groups, zero_message="integer division or modulo by zero")
        out_pad = _output_padding(output_padding)
        pad, dil, from_input = transpose_padding_args(algorithm, pads, kernel, stride_, dilation_)
        super().__init__(
            in_channels, out_channels, kernel, stride_, pad, out_pad, groups,
            bias=attrs["bias"] is not None, dilation=dil, layout=data_format,
            initializers=initializers_of(attrs), **factory,
        )  # fmt: skip
        self._paddle_same(from_input)
        apply_param_attrs(self, attrs)
        self.data_format = data_format

    def forward(self, x: Tensor, output_size: Any = None) -> Tensor:
        return self._paddle_forward(x, None if output_size is None else _output_size(output_size))


def _output_padding(value: Any) -> Pair:
    return to_pair(convert_to_list(value, 2, "output_padding"), "output_padding", minimum=0)


def _output_size(value: Any) -> list[int]:
    if isinstance(value, list | tuple):
        return convert_to_list(value, 2, "output_size")
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    raise ValueError(
        received(
            "output_size should be int or Tensor or list, tuple of ints or Tensor",
            output_size=value,
        )
    )


def _check_tensors(x: Any, weight: Any, op: str, data_format: Any, format_message: str) -> None:
    """The checks Paddle's functionals make before any arithmetic, in its order (the
    dtype of ``x`` first, as a TypeError)."""
    check_float_input(x, "x", op, FLOAT_DTYPES)
    if data_format not in _FORMATS:
        raise ValueError(received(format_message.format(data_format), data_format=data_format))
    if x.dim() != 4:
        raise ValueError(
            f"Input x should be 4D tensor, but received x with the shape of {list(x.shape)}"
        )
    if not isinstance(weight, Tensor):
        fail("weight", "a torch.Tensor", type(weight).__name__, exc=TypeError)
    if weight.dim() != 4:
        raise ValueError(
            f"Input weight should be 4D tensor, but received weight with the shape of "
            f"{list(weight.shape)}"
        )


#: op -> (the words for groups=0, the start of the words for channels % groups != 0)
_GROUPS_WORDS = {
    "conv2d": ("The groups of conv2d should be not be zero.", "The channel of input"),
    "conv2d_transpose": (
        "The groups of conv2d_transpose should not be zero.",
        "the channel of input",
    ),
}


def _check_groups(x: Tensor, data_format: str, groups: Any, op: str) -> None:
    """Paddle's functional ``groups`` checks and words (``groups=0``, then the input
    channels not divisible by it)."""
    zero, channel = _GROUPS_WORDS[op]
    channels = int(x.shape[3] if data_format == "NHWC" else x.shape[1])
    if as_int(groups) is None:
        fail("groups", "an int", groups, exc=TypeError)
    if groups < 0:
        fail("groups", "a positive integer", groups)
    if groups == 0:
        raise ValueError(received(zero, groups=groups))
    if channels % groups:
        raise ValueError(
            f"{channel} must be divisible by groups,received: the channel of input is "
            f"{channels}, the shape of input is {list(x.shape)}, the groups is {groups}"
        )


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    data_format: str = "NCHW",
    name: str | None = None,
) -> Tensor:
    """``paddle.nn.functional.conv2d``: weight ``[out, in/groups, kh, kw]`` in either
    ``data_format``; padding forms and ``'SAME'`` as :class:`Conv2D`; Paddle's checks and
    words for ``data_format``, the shapes and ``groups``."""
    _check_tensors(
        x, weight, "conv2d", data_format,
        "Attr(data_format) should be 'NCHW' or 'NHWC'. Received Attr(data_format): {}.",
    )  # fmt: skip
    _check_groups(x, data_format, groups, "conv2d")
    filters = int(weight.shape[0])
    if filters % groups:
        raise ValueError(
            "The number of filters must be divisible by groups,received: the number of "
            f"filters is {filters}, the shape of weight is {list(weight.shape)}, the groups "
            f"is {groups}"
        )
    algorithm, pads = nn_padding(padding, data_format)
    _, stride_, dilation_ = _pairs(1, stride, dilation)
    pad, dil = conv_padding_args(algorithm, pads, dilation_)
    if data_format == "NHWC":
        weight = weight.permute(0, 2, 3, 1)  # omniconv's NHWC weight is OHWI; Paddle's OIHW
    with renamed_args(_X):
        return conv2d_canonical(x, weight, bias, stride_, pad, dil, groups, "zeros", data_format)


def conv2d_transpose(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    output_size: Any = None,
    data_format: str = "NCHW",
    name: str | None = None,
) -> Tensor:
    """``paddle.nn.functional.conv2d_transpose`` (3.3.1 argument order): weight
    ``[in, out/groups, kh, kw]`` in either ``data_format``; padding forms and ``'SAME'``
    as :class:`Conv2DTranspose`; ``output_size`` (int, list or tuple) excludes a non-zero
    ``output_padding``; Paddle's checks and words."""
    _check_tensors(
        x, weight, "conv2d_transpose", data_format,
        "Attr(data_format) of conv2d_transpose got wrong value: received {}, but only "
        "'NCHW' or 'NHWC' are supported.",
    )  # fmt: skip
    _check_groups(x, data_format, groups, "conv2d_transpose")
    algorithm, pads = nn_padding(padding, data_format)
    kernel, stride_, dilation_ = _pairs(tuple(weight.shape[2:]), stride, dilation)
    size = None
    if output_size is not None:
        if output_padding != 0:
            raise ValueError(
                received(
                    "output_padding option is mutually exclusive with output_size",
                    output_padding=output_padding,
                    output_size=output_size,
                )
            )
        size = _output_size(output_size)
    out_pad = _output_padding(output_padding)
    pad, dil, from_input = transpose_padding_args(algorithm, pads, kernel, stride_, dilation_)
    h, w = x.shape[1:3] if data_format == "NHWC" else x.shape[2:4]
    hw = (int(h), int(w))
    if from_input:
        pad = paddle_transpose_same_padding(hw, kernel, stride_)
    if size is not None:
        check_output_size(size, conv_transpose_output_size(hw, kernel, stride_, pad, dil), stride_)
    for i in range(2):
        if out_pad[i] >= max(stride_[i], dil[i]):
            fail(
                "output_padding",
                f"smaller than stride or dilation (stride={stride_}, dilation={dil})",
                output_padding,
            )
    if data_format == "NHWC":
        weight = weight.permute(0, 2, 3, 1)  # omniconv's NHWC weight is (I, kh, kw, O/g)
    with renamed_args(_X):
        return conv_transpose2d_canonical(
            x, weight, bias, stride_, pad, out_pad, groups, dil, size, data_format
        )
