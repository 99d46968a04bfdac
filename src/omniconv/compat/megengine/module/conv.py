"""``megengine.module.Conv2d`` over :class:`omniconv.nn.Conv2d`.

The parameters have MegEngine's shapes, as MegEngine code reads and writes them:
``weight`` ``(G, O/G, I/G, kh, kw)`` when ``groups > 1`` (else ``(O, I, kh, kw)``) and
``bias`` ``(1, O, 1, 1)``; so ``m.weight``, ``named_parameters()``, ``state_dict()``,
optimisers and initialisers all see those. ``forward`` hands the functional their torch
layout, a free reshape (``param_views`` declares the two layouts, which the state-dict
importers use too).
"""

from __future__ import annotations

import math
from typing import Any, cast

from torch import Tensor, nn

from ...._args import Pair
from ....nn import Conv2d as _Conv2d
from ..._errors import received
from ..._frontend import FrontendMixin
from .._conv import COMPUTE_MODES, CONV_MODES, check_mode, conv2d_megengine
from .._errors import MegEngineAssertionError
from ._common import (
    MEGENGINE_VIEWS,
    check_channels,
    get_ndtuple,
    info_string,
    init_bias,
    pair,
    unexpected,
)
from .conv_transpose import ConvTranspose2d
from .deformable_conv import DeformableConv2d
from .module import Module

# MegEngine's ``megengine.module.conv`` holds all three (its docstring examples use it)
__all__ = ["Conv2d", "ConvTranspose2d", "DeformableConv2d", "get_ndtuple"]

PADDING_MODES = ("zeros", "reflect", "replicate")


def _init_weight(t: Tensor, layer: nn.Module) -> None:
    conv = cast("Conv2d", layer)
    kh, kw = conv.kernel_size
    t.normal_(0.0, math.sqrt(1.0 / (kh * kw * conv.in_channels)))  # full C_in, not C_in/G


class Conv2d(FrontendMixin, Module, _Conv2d):
    """``megengine.module.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    dilation=1, groups=1, bias=True, conv_mode='cross_correlation', compute_mode='default',
    padding_mode='zeros', **kwargs)``.

    * Arguments are normalised with MegEngine's ``get_ndtuple`` (floats truncated, strings
      iterated, ``"tuple len is not equal to n: ..."`` / ``"invalid value: ..."``), then
      ``ValueError("in_channels must be divisible by groups")`` /
      ``"out_channels must be divisible by groups"``. ``kwargs`` is ``name=``.
    * Init: weight ~ N(0, 1/(kh·kw·in_channels)) (torch's RNG), bias zeros.
    * ``padding_mode``, ``conv_mode`` and ``compute_mode`` are checked at construction
      (MegEngine stores them unchecked and fails in ``forward``: a bare
      ``AssertionError`` for ``padding_mode``): an unknown ``padding_mode`` is a
      :class:`MegEngineAssertionError` (an ``AssertionError`` and a ``ValueError``), a mode
      a ``ValueError``. ``conv_mode='convolution'`` is a true convolution (MegEngine
      crashes there); ``compute_mode='float32'`` accumulates float16 in float32. The
      global ``megengine.config._compute_mode`` overrides ``compute_mode`` at each call.
    * Every MegEngine message is followed by the argument(s) and value(s) received.

    It is a ``torch.nn.Conv2d`` whose parameters have MegEngine's shapes (5-D grouped
    weight, ``(1, O, 1, 1)`` bias): torch tools that rewrite ``weight`` / ``bias``
    assuming torch's shapes (``fuse_conv_bn_eval``) need the torch layouts
    (:meth:`Module.torch_state_dict` into a ``torch.nn.Conv2d``).
    """

    param_views = MEGENGINE_VIEWS
    param_layout = "framework"
    default_initializers = {"weight": _init_weight, "bias": init_bias}  # noqa: RUF012
    padding: Pair  # MegEngine's (ph, pw): symmetric only

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
        padding_mode: str = "zeros",
        **kwargs: Any,
    ) -> None:
        kernel_size = pair(kernel_size, "kernel_size", allow_zero=False)
        stride = pair(stride, "stride", allow_zero=False)
        padding = pair(padding, "padding", allow_zero=True)
        dilation = pair(dilation, "dilation", allow_zero=False)
        name = kwargs.pop("name", None)
        unexpected(kwargs)
        check_channels(in_channels, out_channels, groups)
        if padding_mode not in PADDING_MODES:  # MegEngine: a bare assert in forward
            message = "padding_mode must be one of 'zeros', 'reflect', 'replicate'"
            raise MegEngineAssertionError(received(message, padding_mode=padding_mode))
        self.conv_mode = check_mode(conv_mode, "conv_mode", CONV_MODES)
        self.compute_mode = check_mode(compute_mode, "compute_mode", COMPUTE_MODES)
        super().__init__(
            name=name, in_channels=in_channels, out_channels=out_channels,
            kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
            groups=groups, bias=bias, padding_mode=padding_mode,
        )  # fmt: skip

    def forward(self, inp: Tensor) -> Tensor:
        return self.calc_conv(inp, self.weight, self.bias)

    def calc_conv(self, inp: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """MegEngine's ``calc_conv`` with MegEngine-layout ``weight`` / ``bias``."""
        return conv2d_megengine(
            inp, weight, bias, self.stride, self.padding, self.dilation, self.groups,
            self.conv_mode, self.compute_mode, self.padding_mode,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return info_string(self)
