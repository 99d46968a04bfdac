"""``fluid.dygraph`` (Paddle 1.x): ``guard``, ``to_variable``, ``Conv2D``, ``Conv2DTranspose``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..._args import check_positive_int, fail, type_name
from .._errors import received
from ._activation import get_activation
from ._common import (
    FLUID_ARG_NAMES,
    PaddleAssertionError,
    check_dtype_name,
    check_groups,
    convert_to_list,
    unique_name,
)
from ._conv import PaddleConv2D, PaddleConv2DTranspose
from ._initializer import apply_param_attrs, initializers_of, to_param_attr

__all__ = ["Conv2D", "Conv2DTranspose", "guard", "to_variable"]

_DIV_ZERO = "integer division or modulo by zero"


@contextmanager
def guard(place: Any = None) -> Iterator[None]:
    """``fluid.dygraph.guard``: PyTorch is always eager, so this only marks the block."""
    yield


def to_variable(
    value: Any, name: str | None = None, zero_copy: bool | None = None, dtype: Any = None
) -> Tensor:
    """``fluid.dygraph.to_variable``: a numpy array (copied, dtype kept) or tensor."""
    if isinstance(value, Tensor):
        out = value
    elif isinstance(value, np.ndarray | np.generic | list | tuple | int | float):
        out = torch.tensor(np.asarray(value))
    else:
        fail("value", "a numpy array or a tensor", type_name(value), exc=TypeError)
    return out if dtype is None else out.to(check_dtype_name(dtype))


def _dygraph_args(
    param_attr: Any, bias_attr: Any, use_cudnn: Any, act: Any, dtype: Any, message: str
) -> tuple[dict[str, Any], Any, torch.dtype]:
    """The arguments the 1.x dygraph conv layers share: ``param_attr`` (not False:
    ``message``), ``bias_attr``, ``use_cudnn`` (a bool; accepted and ignored), ``act`` and
    ``dtype`` (``'float32'`` / ``'float64'``)."""
    if param_attr is False:
        raise PaddleAssertionError(message)
    if not isinstance(use_cudnn, bool):
        raise ValueError(received("use_cudnn should be True or False", use_cudnn=use_cudnn))
    torch_dtype = check_dtype_name(dtype)
    activation = get_activation(act, "act")
    attrs = {"weight": to_param_attr(param_attr), "bias": to_param_attr(bias_attr, "bias_attr")}
    return attrs, activation, torch_dtype


class Conv2D(PaddleConv2D):
    """``fluid.dygraph.Conv2D`` (Paddle 1.x) on :class:`omniconv.nn.Conv2d`.

    ``padding``, ``stride``, ``dilation``: an int or a pair (1.x's ``convert_to_list``; no
    ``'SAME'`` or 4-element padding in this class). Weight ``[num_filters,
    num_channels/groups, kh, kw]`` ~ ``Normal(0, sqrt(2/(kh*kw*num_channels)))``, bias
    ``[num_filters]`` = 0 (``bias_attr=False``: none). ``act``: a Paddle activation name
    with its 1.x op defaults, after the bias. ``dtype``: ``'float32'`` or ``'float64'``.
    ``use_cudnn`` is accepted and ignored. State-dict keys ``weight`` / ``bias``;
    ``full_name()`` is ``conv2_d_N`` (the parameters are ``conv2_d_N.w_0`` / ``.b_0`` in
    Paddle).
    """

    input_check = ("input", "Conv2D", (torch.float16, torch.float32, torch.float64))
    arg_names = FLUID_ARG_NAMES

    def __init__(
        self,
        num_channels: int,
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
        dtype: Any = "float32",
    ) -> None:
        stride_ = convert_to_list(stride, 2, "stride")
        padding_ = convert_to_list(padding, 2, "padding")
        dilation_ = convert_to_list(dilation, 2, "dilation")
        num_channels = check_positive_int(num_channels, "num_channels")
        attrs, activation, torch_dtype = _dygraph_args(
            param_attr, bias_attr, use_cudnn, act, dtype, "param_attr should not be False here."
        )
        if groups is None:
            groups = 1
        else:
            groups = check_groups(
                groups, num_channels, "num_channels must be divisible by groups.",
                {"num_channels": num_channels, "groups": groups},
            )  # fmt: skip
        kernel = convert_to_list(filter_size, 2, "filter_size")
        super().__init__(
            num_channels, num_filters, tuple(kernel), tuple(stride_), tuple(padding_),
            tuple(dilation_), groups, bias=attrs["bias"] is not None, activation=activation,
            dtype=torch_dtype, initializers=initializers_of(attrs),
        )  # fmt: skip
        apply_param_attrs(self, attrs)
        self.act = act
        self._full_name = unique_name("conv2_d")

    def full_name(self) -> str:
        """Paddle's unique layer name (``conv2_d_N``)."""
        return self._full_name

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", act={self.act!r}" if self.act is not None else "")


class Conv2DTranspose(PaddleConv2DTranspose):
    """``fluid.dygraph.Conv2DTranspose`` (Paddle 1.x) on :class:`omniconv.nn.ConvTranspose2d`.

    Weight ``[num_channels, num_filters // groups, kh, kw]`` (torch's layout) with
    Paddle's default Xavier-uniform: ``limit = sqrt(6 / (fan_in + fan_out))``,
    ``fan_in = (num_filters/groups)*kh*kw``, ``fan_out = num_channels*kh*kw``; bias
    ``[num_filters]`` = 0 (``bias_attr=False``: none). ``output_size``: None, an int or a
    list (a tuple raises Paddle's ``ValueError("output_size should be list or int")``);
    each size must lie in ``[infer, infer + stride)`` (Paddle's rule and error text),
    the extra rows/columns at the bottom/right. ``act``: a Paddle activation name with
    Paddle's op defaults (``leaky_relu`` 0.02, ``softmax`` over the last axis, ...),
    applied after the bias. ``dtype``: ``'float32'`` or ``'float64'``. ``use_cudnn`` is
    accepted and ignored. State-dict keys ``weight`` / ``bias`` as Paddle's dygraph.
    """

    input_check = ("input", "Conv2DTranspose", (torch.float16, torch.float32, torch.float64))
    arg_names = FLUID_ARG_NAMES

    def __init__(
        self,
        num_channels: int,
        num_filters: int,
        filter_size: Any,
        output_size: Any = None,
        padding: Any = 0,
        stride: Any = 1,
        dilation: Any = 1,
        groups: int | None = None,
        param_attr: Any = None,
        bias_attr: Any = None,
        use_cudnn: bool = True,
        act: Any = None,
        dtype: Any = "float32",
    ) -> None:
        num_channels = check_positive_int(num_channels, "num_channels")
        attrs, activation, torch_dtype = _dygraph_args(
            param_attr, bias_attr, use_cudnn, act, dtype,
            "param_attr should not be False in conv2d_transpose.",
        )  # fmt: skip
        groups = 1 if groups is None else check_groups(groups, zero_message=_DIV_ZERO)
        kernel = convert_to_list(filter_size, 2, "conv2d_transpose.filter_size")
        padding_ = convert_to_list(padding, 2, "padding")
        stride_ = convert_to_list(stride, 2, "stride")
        dilation_ = convert_to_list(dilation, 2, "dilation")
        if output_size is None:
            out_size = None
        elif isinstance(output_size, list | int):
            out_size = convert_to_list(output_size, 2, "output_size")
        else:
            raise ValueError(received("output_size should be list or int", output_size=output_size))
        super().__init__(
            num_channels, num_filters, tuple(kernel), tuple(stride_), tuple(padding_),
            groups=groups, bias=attrs["bias"] is not None, dilation=tuple(dilation_),
            activation=activation, dtype=torch_dtype, initializers=initializers_of(attrs),
        )  # fmt: skip
        apply_param_attrs(self, attrs)
        self.output_size = out_size
        self.act = act
        self._full_name = unique_name("conv2_d_transpose")

    def full_name(self) -> str:
        """Paddle's unique layer name (``conv2_d_transpose_N``); the parameters are
        ``<full_name>.w_0`` / ``.b_0`` in Paddle."""
        return self._full_name

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        if output_size is not None:
            fail(
                "output_size",
                "given to the constructor (Paddle's forward takes only input)",
                output_size,
            )
        return self._paddle_forward(input, self.output_size)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.output_size is not None:
            s += f", output_size={self.output_size}"
        if self.act is not None:
            s += f", act={self.act!r}"
        return s
