"""``ConvTranspose2d`` (a ``torch.nn.ConvTranspose2d``) and ``LazyConvTranspose2d``;
see :mod:`.conv` for what they share with torch's and :mod:`._conv_base` for the
construction."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .._args import Pad4
from ..functional.conv_transpose import conv_transpose2d_canonical
from ._conv_base import ConvSetup, LazyConvMixin

__all__ = ["ConvTranspose2d", "LazyConvTranspose2d"]


class ConvTranspose2d(ConvSetup, nn.ConvTranspose2d):
    """2-D transposed convolution, a :class:`torch.nn.ConvTranspose2d`; see
    :func:`omniconv.functional.conv_transpose2d`.

    torch's signature (``padding_mode`` is ``'zeros'`` only, as in torch) plus
    ``activation`` and ``layout``. Weight ``(in_channels, out_channels/groups, kh, kw)``
    as in PyTorch (also for ``layout='NHWC'``, whose input and output are
    ``(N, H, W, C)``); ``forward(input, output_size=None)`` picks the output size within
    ``[infer, infer + stride)``. Initialisation: PyTorch's.

    ``padding``: an int, a pair, ``(top, bottom, left, right)``, ``'valid'`` or ``'same'``
    (TensorFlow's / Keras' rule: the output is exactly ``H * stride``; see
    :func:`omniconv._shapes.transpose_same_padding`). It is resolved once, at
    construction, to ``(top, bottom, left, right)`` and an output padding (``'same'``
    picks its own; ``output_padding`` must then be 0). The ``padding`` attribute keeps
    torch's meaning: ``(pad_h, pad_w)`` when symmetric, else the 4-tuple, or ``'same'``.
    """

    padding: tuple[int, ...] | str
    _resolved_padding: Pad4  # 'same' is resolved at construction too

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
        layout: str = "NCHW",
    ) -> None:
        self._setup(
            True, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            padding_mode, output_padding, layout, activation, device, dtype,
        )  # fmt: skip

    def _padding_for(self, input: Tensor) -> Pad4:
        """The ``(top, bottom, left, right)`` padding of a call: the one resolved at
        construction. A subclass whose framework pads by the input size (Paddle's
        ``'SAME'`` with a stride) overrides this."""
        return self._resolved_padding

    def _conv_forward(
        self, input: Tensor, weight: Tensor, bias: Tensor | None, output_size: Any = None
    ) -> Tensor:
        output_padding = self._resolved_output_padding if output_size is None else (0, 0)
        if self.layout == "NHWC":
            weight = weight.permute(0, 2, 3, 1)  # the functional's NHWC weight: (I, kh, kw, O/g)
        return conv_transpose2d_canonical(
            input, weight, bias, self.stride, self._padding_for(input), output_padding,
            self.groups, self.dilation, output_size, self.layout,
        )  # fmt: skip

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        out = self._conv_forward(input, self.weight, self.bias, output_size)
        return out if self.activation is None else self.activation(out)


class LazyConvTranspose2d(LazyConvMixin, ConvTranspose2d):
    """:class:`ConvTranspose2d` whose ``in_channels`` is inferred from the first input (as
    :class:`torch.nn.LazyConvTranspose2d`; ``layout='NHWC'`` reads it from the last
    dimension); afterwards a plain :class:`ConvTranspose2d`."""

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
        layout: str = "NCHW",
    ) -> None:
        super().__init__(
            None, out_channels, kernel_size, stride, padding, output_padding, groups,
            bias, dilation, padding_mode, activation, device, dtype, layout,
        )  # fmt: skip
