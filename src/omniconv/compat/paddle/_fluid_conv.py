"""``fluid.layers.conv2d`` and ``fluid.layers.conv2d_transpose`` (Paddle 1.x, 1.8
semantics; see :mod:`._program` for where their parameters live)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..._args import check_positive_int
from .._errors import received
from ._activation import get_activation
from ._common import (
    FLUID_ARG_NAMES,
    PaddleAssertionError,
    check_groups,
    check_use_cudnn,
    convert_to_list,
)
from ._conv import (
    PaddleConv2D,
    PaddleConv2DTranspose,
    conv_padding_args,
    transpose_padding_args,
)
from ._initializer import apply_param_attrs, initializers_of, to_param_attr
from ._padding import check_data_format, check_float_input, fluid_padding
from ._program import Namer, layer

__all__ = ["FluidConv2D", "FluidConv2DTranspose", "conv2d", "conv2d_transpose"]

_FLUID_DTYPES = (torch.float16, torch.float32, torch.float64)


class FluidConv2D(PaddleConv2D):
    """The layer behind ``fluid.layers.conv2d`` (state-dict keys in a ``Program``:
    ``conv2d_N.w_0`` / ``.b_0``)."""

    input_check = ("input", "conv2d", _FLUID_DTYPES)
    arg_names = FLUID_ARG_NAMES


class FluidConv2DTranspose(PaddleConv2DTranspose):
    """The layer behind ``fluid.layers.conv2d_transpose`` (``conv2d_transpose_N.w_0`` /
    ``.b_0``); ``output_size`` (None or ``[H, W]``) is fixed when the program is built."""

    input_check = ("input", "conv2d_transpose", _FLUID_DTYPES)
    arg_names = FLUID_ARG_NAMES
    output_size: list[int] | None = None

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        return self._paddle_forward(input, self.output_size)


def _channels(input: Tensor, data_format: str, transposed: bool) -> int:
    """The input channels; a non-4-D input gets Paddle's InferShape words."""
    if input.dim() != 4:
        shape = list(input.shape)
        raise ValueError(
            f"Input of Op(conv_transpose) should be 4-D or 5-D Tensor. But received: "
            f"{input.dim()}-D Tensor, the shape of input is {shape}"
            if transposed
            else "The input of Op(Conv) should be a 4-D or 5-D Tensor. But received: input's "
            f"dimension is {input.dim()}, input's shape is {shape}."
        )
    return int(input.shape[3] if data_format == "NHWC" else input.shape[1])


def conv2d(
    input: Tensor,
    num_filters: int,
    filter_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int | None = None,
    param_attr: Any = None,
    bias_attr: Any = None,
    use_cudnn: bool = True,
    act: Any = None,
    name: str | None = None,
    data_format: str = "NCHW",
) -> Tensor:
    """``fluid.layers.conv2d`` (1.8): ``padding`` an int, a pair, ``[t, b, l, r]``, a
    nested 4-list (batch and channel pairs zero) or ``'SAME'`` / ``'VALID'`` (any case;
    ``'SAME'`` is TensorFlow's rule with the dilation taken as 1, as Paddle's kernel);
    ``data_format`` ``'NCHW'`` or ``'NHWC'`` (the weight stays ``[O, C/groups, kh, kw]``).
    Weight ``Normal(0, sqrt(2/(kh*kw*C_in)))`` (the full ``C_in``), bias 0 (along the
    channel axis of either layout), then ``act`` with its 1.x op defaults. Paddle's
    checks and words (the dtype first, then ``use_cudnn``, ``data_format``,
    ``param_attr``, ``groups``)."""
    check_float_input(input, "input", "conv2d", _FLUID_DTYPES, "float16 or float32 or float64")
    check_use_cudnn(use_cudnn)
    data_format = check_data_format(
        data_format,
        "Attr(data_format) should be 'NCHW' or 'NHWC'. Received Attr(data_format): {}.",
    )
    c_in = _channels(input, data_format, False)
    if param_attr is False:
        raise PaddleAssertionError("param_attr should not be False here.")
    if groups is None:
        groups = 1
    else:
        groups = check_groups(
            groups, c_in,
            "the channel of input must be divisible by groups,received: the channel of input "
            f"is {c_in}, the shape of input is {list(input.shape)}, the groups is {groups}",
        )  # fmt: skip
    num_filters = check_positive_int(num_filters, "num_filters")
    kernel = convert_to_list(filter_size, 2, "filter_size")
    stride_ = convert_to_list(stride, 2, "stride")
    dilation_ = convert_to_list(dilation, 2, "dilation")
    algorithm, pads = fluid_padding(padding, data_format)
    pad, dil = conv_padding_args(algorithm, pads, (dilation_[0], dilation_[1]))
    activation = get_activation(act, "act")
    attrs = {"weight": to_param_attr(param_attr), "bias": to_param_attr(bias_attr, "bias_attr")}
    depthwise = c_in == groups and num_filters % c_in == 0 and not use_cudnn
    op_type = "depthwise_conv2d" if depthwise else "conv2d"

    def build(namer: Namer) -> nn.Module:
        m = FluidConv2D(
            c_in, num_filters, tuple(kernel), tuple(stride_), pad, dil, groups,
            bias=attrs["bias"] is not None, layout=data_format, activation=activation,
            device=input.device, dtype=input.dtype, initializers=initializers_of(attrs),
        )  # fmt: skip
        apply_param_attrs(m, attrs)
        namer.layer_params(m, namer.op(op_type, name), attrs)
        return m

    module, _ = layer("conv2d", build)
    out: Tensor = module(input)
    return out


def conv2d_transpose(
    input: Tensor,
    num_filters: int,
    output_size: Any = None,
    filter_size: Any = None,
    padding: Any = 0,
    stride: Any = 1,
    dilation: Any = 1,
    groups: int | None = None,
    param_attr: Any = None,
    bias_attr: Any = None,
    use_cudnn: bool = True,
    act: Any = None,
    name: str | None = None,
    data_format: str = "NCHW",
) -> Tensor:
    """``fluid.layers.conv2d_transpose`` (1.8): padding forms as :func:`conv2d`
    (``'SAME'`` is Paddle's rule for a transposed conv: the padding of the *input* size,
    dilation 1); ``filter_size=None`` infers the kernel from ``output_size``
    (``(output_size - (H-1)*stride + top + bottom - 1) // dilation + 1``); ``output_size``
    None, an int or a list (a tuple: Paddle's ``ValueError``), each size within
    ``[infer, infer + stride)`` (Paddle's words), the extra rows at the bottom/right.
    Weight ``[C_in, num_filters/groups, kh, kw]``, Paddle's Xavier-uniform; bias 0, then
    ``act``.

    Paddle 1.x adds the bias of an NHWC ``conv2d_transpose`` along axis 1 (H) with a
    parameter of shape ``[H_out]`` (``append_bias_op(dim_start=1)``), a bug; omniconv adds
    a ``[num_filters]`` bias along the channels, as Paddle >= 2.0 does.
    """
    if param_attr is False:
        raise PaddleAssertionError("param_attr should not be False in conv2d_transpose.")
    data_format = check_data_format(
        data_format,
        "Attr(data_format) of Op(fluid.layers.conv2d_transpose) got wrong value: received {} "
        "but only NCHW or NHWC supported.",
    )
    if not isinstance(input, Tensor):
        raise TypeError(received("Input of conv2d_transpose must be Variable", input=input))
    check_float_input(
        input, "input", "conv2d_transpose", _FLUID_DTYPES, "float16 or float32 or float64"
    )
    c_in = _channels(input, data_format, True)
    stride_ = convert_to_list(stride, 2, "stride")
    dilation_ = convert_to_list(dilation, 2, "dilation")
    if not isinstance(use_cudnn, bool):
        raise ValueError(received("use_cudnn should be True or False", use_cudnn=use_cudnn))
    algorithm, pads = fluid_padding(padding, data_format)
    if filter_size is None:
        if output_size is None:
            raise ValueError("output_size must be set when filter_size is None")
        size = [output_size, output_size] if isinstance(output_size, int) else output_size
        h, w = input.shape[1:3] if data_format == "NHWC" else input.shape[2:4]
        kernel = [
            (size[0] - (h - 1) * stride_[0] + pads[0] + pads[1] - 1) // dilation_[0] + 1,
            (size[1] - (w - 1) * stride_[1] + pads[2] + pads[3] - 1) // dilation_[1] + 1,
        ]
    else:
        kernel = convert_to_list(filter_size, 2, "conv2d_transpose.filter_size")
    if output_size is None:
        out_size = None
    elif isinstance(output_size, list | int):
        out_size = convert_to_list(output_size, 2, "output_size")
    else:
        raise ValueError(received("output_size should be list or int", output_size=output_size))
    groups = 1 if groups is None else check_groups(
        groups, zero_message="integer division or modulo by zero"
    )  # fmt: skip
    num_filters = check_positive_int(num_filters, "num_filters")
    k = (kernel[0], kernel[1])
    pad, dil, from_input = transpose_padding_args(
        algorithm, pads, k, (stride_[0], stride_[1]), (dilation_[0], dilation_[1])
    )
    activation = get_activation(act, "act")
    attrs = {"weight": to_param_attr(param_attr), "bias": to_param_attr(bias_attr, "bias_attr")}
    depthwise = c_in == groups and num_filters == c_in and not use_cudnn
    op_type = "depthwise_conv2d_transpose" if depthwise else "conv2d_transpose"

    def build(namer: Namer) -> nn.Module:
        m = FluidConv2DTranspose(
            c_in, num_filters, k, tuple(stride_), pad, groups=groups,
            bias=attrs["bias"] is not None, dilation=dil, activation=activation,
            device=input.device, dtype=input.dtype, layout=data_format,
            initializers=initializers_of(attrs),
        )  # fmt: skip
        m._paddle_same(from_input)
        m.output_size = out_size
        apply_param_attrs(m, attrs)
        namer.layer_params(m, namer.op(op_type, name), attrs)
        return m

    module, _ = layer("conv2d_transpose", build)
    out: Tensor = module(input)
    return out
