"""``Conv2d`` / ``ConvTranspose2d`` (subclasses of torch's) and their lazy variants.

``isinstance(m, torch.nn.Conv2d)`` holds, so tooling that looks for torch's convs sees
these (``torch.nn.utils.fusion.fuse_conv_bn_eval``, ``torch.nn.utils.prune``, init loops,
timm-style helpers). They keep torch's attribute names and meanings (``in_channels``,
``out_channels``, ``kernel_size``, ``stride``, ``padding``, ``dilation``, ``groups``,
``padding_mode``, ``transposed``, ``output_padding``), its parameter layout, initialisation
and state dicts, and add four-sided padding, TensorFlow's ``'same'`` (also with stride),
``layout='NHWC'`` and ``activation=``.

torch's ``_ConvNd.__init__`` is not run: it refuses those extras, and it would initialise
the weight before a front-end's own initialiser (consuming the RNG twice). The
constructor here sets the same attributes itself, after validating every argument once.
Arguments are normalised once, at construction: ``forward`` makes one call of the
functional's canonical entry, which checks only the tensors.

A layer with ``activation=`` computes ``activation(conv(x))``: do not fold a following
batch norm into it (``fuse_conv_bn_eval`` folds into the convolution only).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from .._args import (
    Pad4,
    Pair,
    as_int,
    check_choice,
    check_positive_int,
    fail,
    to_padding,
    to_pair,
    type_name,
)
from .._shapes import construction_padding
from ..functional.conv import LAYOUTS, PADDING_MODES, conv2d_canonical
from ..functional.conv_transpose import conv_transpose2d_canonical
from ._activation import get_activation
from ._common import non_default_repr, torch_default_init

__all__ = ["Conv2d", "ConvTranspose2d", "LazyConv2d", "LazyConvTranspose2d"]

_LAZY_HINT = " (LazyConv2d / LazyConvTranspose2d infer it from the first input)"


def _torch_padding(pad: Pad4 | str) -> tuple[int, ...] | str:
    """``padding`` as torch's attribute has it: ``'same'``, ``(pad_h, pad_w)`` when
    symmetric, else omniconv's ``(top, bottom, left, right)``."""
    if isinstance(pad, str) or pad[0] != pad[1] or pad[2] != pad[3]:
        return pad
    return pad[0], pad[2]


class _ConvSetup(_ConvNd):
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
        if transposed:
            self.padding = to_pair(padding, "padding", minimum=0)
        else:
            pad = to_padding(padding)
            self.padding = _torch_padding(pad)
        self.dilation = to_pair(dilation, "dilation")
        self.groups = check_positive_int(groups, "groups")
        self.output_padding = to_pair(output_padding, "output_padding", minimum=0)
        self.padding_mode = check_choice(
            padding_mode, "padding_mode", ("zeros",) if transposed else PADDING_MODES
        )
        self.layout = check_choice(layout, "layout", LAYOUTS)
        if self.out_channels % self.groups:
            fail("out_channels", f"divisible by groups={self.groups}", out_channels)
        if not deferred and self.in_channels % self.groups:
            fail("in_channels", f"divisible by groups={self.groups}", in_channels)
        if transposed and any(
            op >= max(s, d)
            for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True)
        ):
            fail("output_padding", "smaller than stride or dilation", output_padding)
        if not transposed:
            # resolved once: (top, bottom, left, right), or 'same' when that depends on the
            # input size (TensorFlow's rule with a stride > 1; resolved at each call)
            self._resolved_padding = construction_padding(
                pad, self.kernel_size, self.stride, self.dilation
            )
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


class Conv2d(_ConvSetup, nn.Conv2d):
    """2-D convolution, a :class:`torch.nn.Conv2d`; see :func:`omniconv.functional.conv2d`.

    Args:
        in_channels: input channels (a positive int; :class:`LazyConv2d` infers them).
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

    ``padding`` keeps torch's meaning: ``(pad_h, pad_w)`` when symmetric (``'valid'`` is
    ``(0, 0)``), ``'same'``, or ``(top, bottom, left, right)`` when not symmetric. It is
    resolved at construction to ``(top, bottom, left, right)``, except ``'same'`` with a
    stride > 1: TensorFlow's rule (output ``ceil(H / s)``, total padding
    ``max((ceil(H/s) - 1)*s + d*(k-1) + 1 - H, 0)``, the odd pixel at the bottom/right)
    depends on the input size, so that case is resolved at each call.

    Initialisation: PyTorch's (:meth:`reset_parameters`), so ``torch.manual_seed(s)``
    gives the same weights as ``torch.nn.Conv2d``.
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
        bias: bool = True,
        padding_mode: str = "zeros",
        layout: str = "NCHW",
        activation: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self._setup(
            False, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            padding_mode, 0, layout, activation, device, dtype,
        )  # fmt: skip

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.layout == "NHWC":
            weight = weight.permute(0, 2, 3, 1)  # the functional's NHWC weight is OHWI
        return conv2d_canonical(
            input, weight, bias, self.stride, self._resolved_padding, self.dilation,
            self.groups, self.padding_mode, self.layout,
        )  # fmt: skip

    def forward(self, input: Tensor) -> Tensor:
        out = self._conv_forward(input, self.weight, self.bias)
        return out if self.activation is None else self.activation(out)


class ConvTranspose2d(_ConvSetup, nn.ConvTranspose2d):
    """2-D transposed convolution, a :class:`torch.nn.ConvTranspose2d`; see
    :func:`omniconv.functional.conv_transpose2d`.

    torch's signature (``padding_mode`` is ``'zeros'`` only, as in torch) plus
    ``activation``. Weight ``(in_channels, out_channels/groups, kh, kw)`` as in PyTorch;
    ``forward(input, output_size=None)`` picks the output size within
    ``[infer, infer + stride)``. Initialisation: PyTorch's.
    """

    padding: Pair

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        activation: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self._setup(
            True, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            padding_mode, output_padding, "NCHW", activation, device, dtype,
        )  # fmt: skip

    def _conv_forward(
        self, input: Tensor, weight: Tensor, bias: Tensor | None, output_size: Any = None
    ) -> Tensor:
        output_padding = self.output_padding if output_size is None else (0, 0)
        return conv_transpose2d_canonical(
            input, weight, bias, self.stride, self.padding, output_padding, self.groups,
            self.dilation, output_size,
        )  # fmt: skip

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        out = self._conv_forward(input, self.weight, self.bias, output_size)
        return out if self.activation is None else self.activation(out)


class _LazyConvMixin(LazyModuleMixin):
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
        self._materialize_parameters(c)  # type: ignore[attr-defined]
        self.reset_parameters()


class LazyConv2d(_LazyConvMixin, Conv2d):
    """:class:`Conv2d` whose ``in_channels`` is inferred from the first input (as
    :class:`torch.nn.LazyConv2d`; ``layout='NHWC'`` reads it from the last dimension).
    After the first call the object is a plain :class:`Conv2d`.
    """

    cls_to_become = Conv2d

    def __init__(
        self,
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
            None, out_channels, kernel_size, stride, padding, dilation, groups,
            bias, padding_mode, layout, activation, device, dtype,
        )  # fmt: skip


class LazyConvTranspose2d(_LazyConvMixin, ConvTranspose2d):
    """:class:`ConvTranspose2d` whose ``in_channels`` is inferred from the first input (as
    :class:`torch.nn.LazyConvTranspose2d`); afterwards a plain :class:`ConvTranspose2d`."""

    cls_to_become = ConvTranspose2d

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        activation: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            None, out_channels, kernel_size, stride, padding, output_padding, groups,
            bias, dilation, padding_mode, activation, device, dtype,
        )  # fmt: skip
