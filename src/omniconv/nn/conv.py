"""``Conv2d`` and ``ConvTranspose2d``: one base class keyed by ``transposed``.

Parameters are stored in PyTorch's layout (state dicts interchange with
``torch.nn.Conv2d`` / ``torch.nn.ConvTranspose2d``); ``layout='NHWC'`` only changes
how the input and output are read, the weight is handed to the functional as an
``(O, kh, kw, I/groups)`` view.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from .. import functional as F
from .._args import check_choice, check_positive_int, fail, to_padding, to_pair, type_name
from ..functional.conv import LAYOUTS, PADDING_MODES
from ._activation import get_activation
from ._common import non_default_repr, torch_default_init

__all__ = ["Conv2d", "ConvTranspose2d", "LazyConv2d", "LazyConvTranspose2d"]


def _is_deferred(in_channels: Any) -> bool:
    return in_channels is None or (not isinstance(in_channels, bool) and in_channels == 0)


class _ConvBase(nn.Module):
    """Shared construction, initialisation and repr of the dense conv modules.

    ``in_channels`` of 0 or None defers the weight's shape to the first forward
    (through :class:`torch.nn.modules.lazy.LazyModuleMixin`; the object then becomes
    a plain module of its class).
    """

    transposed: bool = False
    weight: Tensor
    bias: Tensor | None
    _lazy_cls: type[_ConvBase]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        in_channels = args[0] if args else kwargs.get("in_channels")
        lazy = cls.__dict__.get("_lazy_cls")
        if lazy is not None and _is_deferred(in_channels):
            cls = lazy
        return super().__new__(cls)

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        groups: int,
        bias: bool,
        padding_mode: str,
        output_padding: Any,
        layout: str,
        activation: Any,
        device: Any,
        dtype: Any,
    ) -> None:
        super().__init__()
        deferred = _is_deferred(in_channels)
        self.in_channels = 0 if deferred else check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.stride = to_pair(stride, "stride")
        self.padding: Any = (
            to_pair(padding, "padding", minimum=0) if self.transposed else to_padding(padding)
        )
        self.dilation = to_pair(dilation, "dilation")
        self.groups = check_positive_int(groups, "groups")
        self.output_padding = to_pair(output_padding, "output_padding", minimum=0)
        self.padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
        self.layout = check_choice(layout, "layout", LAYOUTS)
        if self.out_channels % self.groups:
            fail("out_channels", f"divisible by groups={self.groups}", out_channels)
        if not deferred and self.in_channels % self.groups:
            fail("in_channels", f"divisible by groups={self.groups}", in_channels)
        if self.transposed and any(
            op >= max(s, d)
            for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True)
        ):
            fail("output_padding", "smaller than stride or dilation", output_padding)
        factory = {"device": device, "dtype": dtype}
        if deferred:
            self.weight = UninitializedParameter(**factory)
        else:
            self.weight = nn.Parameter(torch.empty(self._weight_shape(), **factory))
        if not bias:
            self.register_parameter("bias", None)
        elif deferred:
            self.bias = UninitializedParameter(**factory)
        else:
            self.bias = nn.Parameter(torch.empty(self._bias_shape(), **factory))
        self.activation = get_activation(activation)
        self.reset_parameters()

    def _weight_shape(self) -> tuple[int, ...]:
        kh, kw = self.kernel_size
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, kh, kw)
        return (self.out_channels, self.in_channels // self.groups, kh, kw)

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def reset_parameters(self) -> None:
        """PyTorch's default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
        ``fan_in = weight.shape[1] * kh * kw`` (``kaiming_uniform_(a=sqrt(5))``)."""
        if not isinstance(self.weight, UninitializedParameter):
            torch_default_init(self.weight, self.bias)

    def extra_repr(self) -> str:
        return non_default_repr(
            self,
            {
                "stride": (1, 1),
                "padding": (0, 0),
                "dilation": (1, 1),
                "output_padding": (0, 0),
                "groups": 1,
                "padding_mode": "zeros",
                "layout": "NCHW",
            },
        )


class _LazyConvMixin(LazyModuleMixin):
    """Deferred ``in_channels``: shapes the weight from the first input."""

    in_channels: int
    groups: int
    layout: str
    weight: Any
    bias: Any
    transposed: bool

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params():  # type: ignore[misc]
            super().reset_parameters()  # type: ignore[misc]

    def initialize_parameters(self, input: Tensor, *args: Any, **kwargs: Any) -> None:
        if not self.has_uninitialized_params():  # type: ignore[misc]
            return
        if not isinstance(input, Tensor):
            fail("input", "a torch.Tensor", type_name(input), exc=TypeError)
        if input.dim() != 4:
            fail("input.shape", "4-D", tuple(input.shape))
        dim = 3 if self.layout == "NHWC" else 1
        c = input.shape[dim]
        if c == 0 or c % self.groups:
            fail(
                f"input.shape[{dim}]",
                f"a positive multiple of groups={self.groups} (in_channels is taken from it)",
                c,
            )
        self.in_channels = c
        with torch.no_grad():
            self.weight.materialize(self._weight_shape())  # type: ignore[attr-defined]
            if self.bias is not None:
                self.bias.materialize(self._bias_shape())  # type: ignore[attr-defined]
            self.reset_parameters()


class Conv2d(_ConvBase):
    """2-D convolution; see :func:`omniconv.functional.conv2d` for the math.

    Args:
        in_channels: input channels, or 0 / None to infer them at the first forward.
        out_channels: output channels.
        kernel_size, stride, dilation: an int or a pair.
        padding: int, pair, ``(top, bottom, left, right)``, ``'same'`` or ``'valid'``.
        groups: contiguous channel groups.
        bias: add a learnable bias.
        padding_mode: ``'zeros' | 'reflect' | 'replicate' | 'circular'``.
        layout: ``'NCHW'`` or ``'NHWC'`` (input and output; the weight parameter stays
            ``(O, I/groups, kh, kw)``).
        activation: None, a name (``'relu'``, ``'sigmoid'``, ``'tanh'``, ``'softrelu'``,
            ``'softsign'``, ``'leaky_relu'``, ``'relu6'``, ``'gelu'``, ``'silu'``, ...) or a
            callable, applied after the bias.

    Initialisation: PyTorch's (:meth:`reset_parameters`), so ``torch.manual_seed(s)``
    gives the same weights as ``torch.nn.Conv2d``.
    """

    transposed = False

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        layout: str = "NCHW",
        activation: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            padding_mode, 0, layout, activation, device, dtype,
        )  # fmt: skip

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.layout == "NHWC":
            weight = weight.permute(0, 2, 3, 1)
        return F.conv2d(
            input, weight, bias, self.stride, self.padding, self.dilation, self.groups,
            self.padding_mode, self.layout,
        )  # fmt: skip

    def forward(self, input: Tensor) -> Tensor:
        out = self._conv_forward(input, self.weight, self.bias)
        return out if self.activation is None else self.activation(out)


class ConvTranspose2d(_ConvBase):
    """2-D transposed convolution; see :func:`omniconv.functional.conv_transpose2d`.

    Weight ``(in_channels, out_channels/groups, kh, kw)`` as in PyTorch;
    ``forward(input, output_size=None)`` picks the output size within
    ``[infer, infer + stride)``. Initialisation: PyTorch's.
    """

    transposed = True

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        activation: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            "zeros", output_padding, "NCHW", activation, device, dtype,
        )  # fmt: skip

    def _conv_forward(
        self, input: Tensor, weight: Tensor, bias: Tensor | None, output_size: Any = None
    ) -> Tensor:
        output_padding = self.output_padding if output_size is None else 0
        return F.conv_transpose2d(
            input, weight, bias, self.stride, self.padding, output_padding, self.groups,
            self.dilation, output_size,
        )  # fmt: skip

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        out = self._conv_forward(input, self.weight, self.bias, output_size)
        return out if self.activation is None else self.activation(out)


class LazyConv2d(_LazyConvMixin, Conv2d):
    """:class:`Conv2d` whose ``in_channels`` is inferred from the first input.

    ``Conv2d(0, ...)`` / ``Conv2d(None, ...)`` construct this; after the first call the
    object is a plain :class:`Conv2d`.
    """

    cls_to_become = Conv2d


class LazyConvTranspose2d(_LazyConvMixin, ConvTranspose2d):
    """:class:`ConvTranspose2d` whose ``in_channels`` is inferred from the first input."""

    cls_to_become = ConvTranspose2d


Conv2d._lazy_cls = LazyConv2d
ConvTranspose2d._lazy_cls = LazyConvTranspose2d
