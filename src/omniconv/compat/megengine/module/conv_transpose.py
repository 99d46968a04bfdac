"""``megengine.module.ConvTranspose2d`` over :class:`omniconv.nn.ConvTranspose2d`.

The parameters have MegEngine's shapes: ``weight`` ``(I, O, kh, kw)``, or
``(groups, I/groups, O/groups, kh, kw)`` when ``groups > 1``, and ``bias``
``(1, O, 1, 1)`` (the same declared views as :class:`~.conv.Conv2d`'s). The signature is
MegEngine 1.12+'s (``output_padding`` before ``dilation``; 1.9-1.11 had no
``output_padding``).
"""

from __future__ import annotations

import math
from typing import Any, cast

from torch import Tensor, nn

from ...._args import Pair
from ....nn import ConvTranspose2d as _ConvTranspose2d
from ..._frontend import FrontendMixin
from .._conv import COMPUTE_MODES, CONV_MODES, check_mode
from .._conv_transpose import check_output_padding, conv_transpose2d_megengine
from ._common import MEGENGINE_VIEWS, check_channels, info_string, init_bias, pair, unexpected
from .module import Module

__all__ = ["ConvTranspose2d"]


def _init_weight(t: Tensor, layer: nn.Module) -> None:
    conv = cast("ConvTranspose2d", layer)
    kh, kw = conv.kernel_size
    t.normal_(0.0, math.sqrt(1.0 / (kh * kw * conv.out_channels)))  # MegEngine: full C_out


class ConvTranspose2d(FrontendMixin, Module, _ConvTranspose2d):
    """``megengine.module.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, output_padding=0, dilation=1, groups=1, bias=True,
    conv_mode='cross_correlation', compute_mode='default', **kwargs)``.

    * Arguments as MegEngine normalises them (``get_ndtuple``: floats truncated,
      ``"tuple len is not equal to n: ..."`` / ``"invalid value: ..."``), then
      ``ValueError("in_channels must be divisible by groups")`` / ``"out_channels ..."``.
      ``kwargs`` is ``name=``.
    * Output ``(H - 1)*s - 2p + d*(k - 1) + 1 + output_padding``; ``output_padding`` must
      be smaller than ``stride`` on its axis (MegEngine's assertion "output_padding[i]
      shoule be less than stride[i]", checked here at construction).
    * Init: weight ~ N(0, 1/(kh·kw·out_channels)) (torch's RNG), bias zeros.
    * ``conv_mode`` / ``compute_mode`` checked at construction (MegEngine: at the call);
      ``'convolution'`` rotates the kernel by 180° (MegEngine's Python check crashes);
      ``compute_mode='float32'`` accumulates float16 in float32; the global
      ``megengine.config._compute_mode`` overrides it at each call.

    Differences from MegEngine (its bugs, not reproduced): MegEngine applies
    ``output_padding`` only when its height entry is non-zero (``output_pad_h != 0 or
    output_pad_h != 0``), and then sizes the output from ``weight.shape[1:3]`` as if the
    weight were 4-D (wrong for a grouped 5-D weight); here both entries apply, for any
    weight.
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
        output_padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        conv_mode: str = "cross_correlation",
        compute_mode: str = "default",
        **kwargs: Any,
    ) -> None:
        given_output_padding = output_padding
        kernel_size = pair(kernel_size, "kernel_size", allow_zero=False)
        stride = pair(stride, "stride", allow_zero=False)
        padding = pair(padding, "padding", allow_zero=True)
        output_padding = pair(output_padding, "output_padding", allow_zero=True)
        dilation = pair(dilation, "dilation", allow_zero=False)
        name = kwargs.pop("name", None)
        unexpected(kwargs)
        check_channels(in_channels, out_channels, groups)
        check_output_padding(output_padding, stride, given_output_padding)
        self.conv_mode = check_mode(conv_mode, "conv_mode", CONV_MODES)
        self.compute_mode = check_mode(compute_mode, "compute_mode", COMPUTE_MODES)
        super().__init__(
            name=name, in_channels=in_channels, out_channels=out_channels,
            kernel_size=kernel_size, stride=stride, padding=padding,
            output_padding=output_padding, groups=groups, bias=bias, dilation=dilation,
        )  # fmt: skip

    def forward(self, inp: Tensor) -> Tensor:  # type: ignore[override]
        return self.calc_conv_transpose2d(inp, self.weight, self.bias)

    def calc_conv_transpose2d(self, inp: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """MegEngine's ``calc_conv_transpose2d`` with MegEngine-layout ``weight`` / ``bias``."""
        return conv_transpose2d_megengine(
            inp, weight, bias, self.stride, self.padding, self.output_padding, self.dilation,
            self.groups, self.conv_mode, self.compute_mode,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return info_string(self)
