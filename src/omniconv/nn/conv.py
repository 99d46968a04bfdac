"""``Conv2d`` (a ``torch.nn.Conv2d``) and ``LazyConv2d``.

``isinstance(m, torch.nn.Conv2d)`` holds, so tooling that looks for torch's convs sees
these (``torch.nn.utils.fusion.fuse_conv_bn_eval``, ``torch.nn.utils.prune``, init loops,
timm-style helpers). They keep torch's attribute names and meanings, parameter layout,
initialisation and state dicts, and add four-sided padding, TensorFlow's ``'same'`` (also
with stride), ``layout='NHWC'`` and ``activation=``. Arguments are normalised once, at
construction (:mod:`._conv_base`): ``forward`` makes one call of the functional's
canonical entry, which checks only the tensors.

A layer with ``activation=`` computes ``activation(conv(x))``: do not fold a following
batch norm into it (``fuse_conv_bn_eval`` folds into the convolution only).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..functional.conv import conv2d_canonical
from ._conv_base import ConvSetup, LazyConvMixin

__all__ = ["Conv2d", "LazyConv2d"]


class Conv2d(ConvSetup, nn.Conv2d):
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


class LazyConv2d(LazyConvMixin, Conv2d):
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
