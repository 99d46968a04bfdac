"""``megengine.module.DeformableConv2d`` over :class:`omniconv.nn.DeformConv2d`.

The parameters have MegEngine's shapes: ``weight`` ``(O, I, kh, kw)``, or
``(groups, O/groups, I/groups, kh, kw)`` when ``groups > 1``, and ``bias``
``(1, O, 1, 1)`` (the same declared views as :class:`~.conv.Conv2d`'s);
``forward(inp, offset, mask)`` as MegEngine's (see
:mod:`omniconv.compat.megengine._deformable_conv` for the offset and mask layouts).
"""

from __future__ import annotations

import math
from typing import Any, cast

from torch import Tensor, nn

from ...._args import Pair
from ....nn import DeformConv2d as _DeformConv2d
from ..._frontend import FrontendMixin
from .._conv import COMPUTE_MODES, check_mode
from .._deformable_conv import check_conv_mode, deformable_conv2d_megengine
from ._common import MEGENGINE_VIEWS, check_channels, info_string, init_bias, pair, unexpected
from .module import Module

__all__ = ["DeformableConv2d"]


def _init_weight(t: Tensor, layer: nn.Module) -> None:
    conv = cast("DeformableConv2d", layer)
    kh, kw = conv.kernel_size
    t.normal_(0.0, math.sqrt(1.0 / (kh * kw * conv.in_channels)))  # MegEngine: full C_in


class DeformableConv2d(FrontendMixin, Module, _DeformConv2d):
    """``megengine.module.DeformableConv2d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, dilation=1, groups=1, bias=True, conv_mode='cross_correlation',
    compute_mode='default', **kwargs)``; ``forward(inp, offset, mask)``.

    * Arguments as MegEngine normalises them (``get_ndtuple``), then the channel rules of
      ``_ConvNd`` (``ValueError("in_channels must be divisible by groups")``, ...).
      ``kwargs`` is ``name=``.
    * ``offset`` ``(N, 2*dg*kh*kw, H_out, W_out)`` and ``mask`` ``(N, dg*kh*kw, H_out,
      W_out)``, both required; the deformable group count ``dg`` is read from the offset
      and must divide ``out_channels`` (megdnn's rule, a
      :class:`~omniconv.compat.megengine.MegEngineRuntimeError`).
    * Init: weight ~ N(0, 1/(kh·kw·in_channels)) (torch's RNG), bias zeros.
    * ``conv_mode`` must be ``'cross_correlation'`` (any case; megdnn's deformable
      convolution has no other), ``compute_mode`` ``'default'`` or ``'float32'``; both
      checked at construction.

    A plain ``torch.nn.Module`` (as :class:`omniconv.nn.DeformConv2d`): it is not a dense
    convolution, whatever tooling that looks for ``torch.nn.Conv2d`` would assume.
    """

    param_views = MEGENGINE_VIEWS
    param_layout = "framework"
    default_initializers = {"weight": _init_weight, "bias": init_bias}  # noqa: RUF012
    padding: Pair

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
        conv_mode: str = "cross_correlation",
        compute_mode: str = "default",
        **kwargs: Any,
    ) -> None:
        kernel_size = pair(kernel_size, "kernel_size", allow_zero=False)
        stride = pair(stride, "stride", allow_zero=False)
        padding = pair(padding, "padding", allow_zero=True)
        dilation = pair(dilation, "dilation", allow_zero=False)
        name = kwargs.pop("name", None)
        unexpected(kwargs)
        check_channels(in_channels, out_channels, groups)
        self.conv_mode = check_conv_mode(conv_mode)
        self.compute_mode = check_mode(compute_mode, "compute_mode", COMPUTE_MODES)
        super().__init__(
            name=name, in_channels=in_channels, out_channels=out_channels,
            kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
            groups=groups, bias=bias,
        )  # fmt: skip

    def forward(self, inp: Tensor, offset: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        return self.calc_conv(inp, self.weight, offset, mask, self.bias)

    def calc_conv(
        self, inp: Tensor, weight: Tensor, offset: Tensor, mask: Tensor, bias: Tensor | None
    ) -> Tensor:
        """MegEngine's ``calc_conv`` with MegEngine-layout ``weight`` / ``bias``."""
        return deformable_conv2d_megengine(
            inp, weight, offset, mask, bias, self.stride, self.padding, self.dilation,
            self.groups, self.compute_mode,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return info_string(self)
