"""What the dense conv modules share: construction, parameter shapes, initialisation,
repr (:class:`ConvSetup`) and the lazy ``in_channels`` (:class:`LazyConvMixin`).

``Conv2d`` / ``ConvTranspose2d`` (``conv.py``, ``conv_transpose.py``) are torch's
``nn.Conv2d`` / ``nn.ConvTranspose2d`` with this placed before torch's class in their
bases. torch's ``_ConvNd.__init__`` is not run: it refuses omniconv's extras (four-sided
and TensorFlow-'same' padding, layouts, activations), and it would initialise the weight
before a front-end's own initialiser (drawing the RNG twice). :meth:`ConvSetup._setup`
sets the same attributes, with torch's meanings, after validating every argument once.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from .._args import (
    Pad4,
    Pair,
    as_int,
    check_bool,
    check_choice,
    check_positive_int,
    fail,
    to_padding,
    to_pair,
    type_name,
)
from .._shapes import construction_padding, construction_transpose_padding
from ..functional.conv import LAYOUTS, PADDING_MODES
from ._activation import get_activation
from ._common import check_weight_fits, non_default_repr, torch_default_init

__all__ = ["ConvSetup", "LazyConvMixin"]

_LAZY_HINT = " (LazyConv2d / LazyConvTranspose2d infer it from the first input)"


def _torch_padding(pad: Pad4 | str) -> tuple[int, ...] | str:
    """``padding`` as torch's attribute has it: ``'same'``, ``(pad_h, pad_w)`` when
    symmetric, else omniconv's ``(top, bottom, left, right)``."""
    if isinstance(pad, str) or pad[0] != pad[1] or pad[2] != pad[3]:
        return pad
    return pad[0], pad[2]


class ConvSetup(_ConvNd):
    """Construction, parameter shapes, initialisation and repr shared by the dense convs
    (placed before torch's class in the bases; torch's ``__init__`` is not used)."""

    kernel_size: Pair
    stride: Pair
    dilation: Pair
    output_padding: Pair
    padding_mode: Any
    layout: str
    activation: nn.Module | None
    _resolved_padding: Pad4 | str
    _resolved_output_padding: Pair

    #: A subclass that learns ``in_channels`` later (the lazy classes; a front-end with its
    #: own deferred initialisation) accepts ``in_channels=None``: the parameters are then
    #: ``UninitializedParameter`` s until :meth:`_materialize_parameters`.
    _infers_in_channels: ClassVar[bool] = False

    def _setup(
        self,
        transposed: bool,
        in_channels: Any,
        out_channels: Any,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        groups: Any,
        bias: bool,
        padding_mode: Any,
        output_padding: Any,
        layout: Any,
        activation: Any,
        device: Any,
        dtype: Any,
    ) -> None:
        nn.Module.__init__(self)
        self.transposed = transposed
        deferred = in_channels is None and self._infers_in_channels
        if not deferred:
            value = as_int(in_channels)
            if value is None or value < 1:
                hint = _LAZY_HINT if in_channels is None or value == 0 else ""
                exc = TypeError if value is None else ValueError
                fail("in_channels", "a positive integer" + hint, in_channels, exc=exc)
        self.in_channels = 0 if deferred else in_channels
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.stride = to_pair(stride, "stride")
        pad = to_padding(padding)
        self.padding = _torch_padding(pad)
        self.dilation = to_pair(dilation, "dilation")
        self.groups = check_positive_int(groups, "groups")
        self.output_padding = to_pair(output_padding, "output_padding", minimum=0)
        self.padding_mode = check_choice(
            padding_mode, "padding_mode", ("zeros",) if transposed else PADDING_MODES
        )
        self.layout = check_choice(layout, "layout", LAYOUTS)
        bias = check_bool(bias, "bias")
        if self.out_channels % self.groups:
            fail("out_channels", f"divisible by groups={self.groups}", out_channels)
        if not deferred and self.in_channels % self.groups:
            fail("in_channels", f"divisible by groups={self.groups}", in_channels)
        if transposed and any(
            op >= max(s, d)
            for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True)
        ):
            fail("output_padding", "smaller than stride or dilation", output_padding)
        if transposed:
            # resolved once: (top, bottom, left, right) and the output padding ('same',
            # TensorFlow's rule for a transposed conv, never depends on the input size)
            self._resolved_padding, self._resolved_output_padding = construction_transpose_padding(
                pad, self.kernel_size, self.stride, self.dilation, self.output_padding
            )
        else:
            # resolved once: (top, bottom, left, right), or 'same' when that depends on the
            # input size (TensorFlow's rule with a stride > 1; resolved at each call)
            self._resolved_padding = construction_padding(
                pad, self.kernel_size, self.stride, self.dilation
            )
        factory = {"device": device, "dtype": dtype}
        if not deferred:  # refuse a weight too large to allocate, naming its largest factor
            kh, kw = self.kernel_size
            c_in, c_out, g = self.in_channels, self.out_channels, self.groups
            shape = (c_in, c_out // g, kh, kw) if transposed else (c_out, c_in // g, kh, kw)
            i, o = (0, 1) if transposed else (1, 0)
            check_weight_fits(
                shape, device, dtype,
                [("in_channels", in_channels, shape[i]), ("out_channels", out_channels, shape[o]),
                 ("kernel_size", kernel_size, kh * kw)],
            )  # fmt: skip
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
        """The stored weight's shape (a front-end may store its framework's shape)."""
        kh, kw = self.kernel_size
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, kh, kw)
        return (self.out_channels, self.in_channels // self.groups, kh, kw)

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def _materialize_parameters(self, in_channels: int) -> list[str]:
        """Set ``in_channels`` and give the uninitialised parameters their shapes (values
        unset); returns the names of the parameters materialised."""
        self.in_channels = in_channels
        params: dict[str, Any] = self._parameters
        done = []
        with torch.no_grad():
            for name, shape in (("weight", self._weight_shape()), ("bias", self._bias_shape())):
                param = params.get(name)
                if isinstance(param, UninitializedParameter):
                    param.materialize(shape)
                    done.append(name)
        return done

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


class LazyConvMixin(LazyModuleMixin):
    """``in_channels`` from the first input (torch's ``cls_to_become`` lazy modules)."""

    _infers_in_channels = True
    in_channels: int
    groups: int
    layout: str
    weight: Any
    transposed: bool

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params():  # type: ignore[misc]
            super().reset_parameters()  # type: ignore[misc]

    def initialize_parameters(self, input: Tensor, *args: Any, **kwargs: Any) -> None:
        if not self.has_uninitialized_params():  # type: ignore[misc]
            # loaded from a state dict: the checkpoint gave the shapes
            w = self.weight.shape
            self.in_channels = w[0] if self.transposed else w[1] * self.groups
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
        kh, kw = cast(Any, self).kernel_size
        shape = (c, cast(Any, self).out_channels // self.groups, kh, kw)
        if not self.transposed:
            shape = (shape[1] * self.groups, c // self.groups, kh, kw)
        name = f"input.shape[{dim}]"
        check_weight_fits(shape, self.weight.device, self.weight.dtype, [(name, c, c)])
        self._materialize_parameters(c)  # type: ignore[attr-defined]
        self.reset_parameters()
