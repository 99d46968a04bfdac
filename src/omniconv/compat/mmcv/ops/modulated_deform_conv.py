"""``mmcv.ops.modulated_deform_conv``: ``modulated_deform_conv2d``,
``ModulatedDeformConv2d``, ``ModulatedDeformConv2dPack`` (DCNv2: offsets and a mask)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .... import nn as onn
from ...._args import check_positive_int, fail, to_pair
from ..._frontend import Initializer
from .._state import LegacyOffsetKeys
from ._call import deform_call
from ._module import MMCVDeformConv, renames_deformable_groups

__all__ = ["ModulatedDeformConv2d", "ModulatedDeformConv2dPack", "modulated_deform_conv2d"]


def modulated_deform_conv2d(
    input: Tensor,
    offset: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    deform_groups: int = 1,
) -> Tensor:
    """``mmcv.ops.modulated_deform_conv2d`` (``ModulatedDeformConv2dFunction.apply``),
    DCNv2, with mmcv's arguments in mmcv's order.

    Args:
        input: ``(N, C_in, H, W)``.
        offset: ``(N, deform_groups*2*kh*kw, H_out, W_out)`` (as
            :func:`.deform_conv.deform_conv2d`'s).
        mask: ``(N, deform_groups*kh*kw, H_out, W_out)``, channel ``g*kh*kw + k``,
            multiplying each sample as given (mmcv's Pack feeds ``sigmoid(logits)``).
        weight: ``(C_out, C_in/groups, kh, kw)``. bias: ``(C_out,)`` or None.
        stride, padding, dilation: an int or a pair (padding symmetric).
        groups, deform_groups: given, not inferred from the tensors (as mmcv's).

    ``input`` takes ``offset``'s dtype, and ``weight``, ``mask``, ``bias`` ``input``'s
    (mmcv's rule); see :func:`._call.deform_call` for the checks and their errors.
    """
    return deform_call(
        input, offset, mask, weight, bias, to_pair(stride, "stride"),
        to_pair(padding, "padding", minimum=0), to_pair(dilation, "dilation"),
        check_positive_int(groups, "groups"), check_positive_int(deform_groups, "deform_groups"),
        None,
    )  # fmt: skip


def _uniform_over_all_inputs(weight: Tensor, layer: nn.Module) -> None:
    """mmcv's ``ModulatedDeformConv2d.init_weights`` for the weight: U(-s, s) with
    ``s = 1/sqrt(in_channels*kh*kw)`` (all input channels, whatever ``groups``)."""
    m: Any = layer
    n = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
    stdv = 1.0 / math.sqrt(n)
    weight.uniform_(-stdv, stdv)


def _zeros(bias: Tensor, layer: nn.Module) -> None:
    bias.zero_()


class ModulatedDeformConv2d(MMCVDeformConv):
    """``mmcv.ops.ModulatedDeformConv2d``: DCNv2; ``forward(x, offset, mask)``.

    Parameters ``weight`` ``(out, in/groups, kh, kw)`` and, when ``bias`` is truthy (the
    default; mmcv also takes a string there), ``bias`` ``(out,)``; else ``bias`` is None.
    Initialisation (:meth:`init_weights`, mmcv's): weight ~ U(-s, s) with
    ``s = 1/sqrt(in_channels*kh*kw)``, bias 0.
    """

    default_initializers: ClassVar[Mapping[str, Initializer]] = {
        "weight": _uniform_over_all_inputs,
        "bias": _zeros,
    }
    _repr_defaults: ClassVar[Mapping[str, Any]] = {
        "stride": (1, 1),
        "padding": (0, 0),
        "dilation": (1, 1),
        "groups": 1,
        "deform_groups": 1,
    }

    @renames_deformable_groups("ModulatedDeformConv2d")
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool | str = True,
    ) -> None:
        if bias == "auto":  # mmcv: any truthy value adds the bias ('auto' included)
            bias = True
        elif not isinstance(bias, bool):
            fail("bias", "True, False or 'auto'", bias, exc=TypeError)
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
            deform_groups, bias=bias, modulated=True, im2col_step=64,
        )  # fmt: skip

    def init_weights(self) -> None:
        """mmcv's initialisation: weight ~ U(-s, s), ``s = 1/sqrt(in_channels*kh*kw)``;
        bias 0."""
        self.reset_parameters()

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        return deform_call(
            x, offset, mask, self.weight, self.bias, self.stride, self.padding, self.dilation,
            self.groups, self.deform_groups, None,
        )  # fmt: skip


class ModulatedDeformConv2dPack(LegacyOffsetKeys, ModulatedDeformConv2d):
    """``mmcv.ops.ModulatedDeformConv2dPack`` (mmcv's ``'DCNv2'``): predicts its offsets
    and mask from its input; ``forward(x)``.

    ``conv_offset``: a ``torch.nn.Conv2d`` (:class:`omniconv.nn.Conv2d`)
    ``in_channels -> deform_groups*3*kh*kw`` with the layer's kernel, stride, padding and
    dilation, one group, a bias, zero weight and bias. Its output splits in three equal
    chunks ``o1, o2, m``: the offset is ``cat(o1, o2)`` (its first ``2*dg*kh*kw``
    channels, in :func:`modulated_deform_conv2d`'s layout) and the mask is
    ``sigmoid(m)``, in ``(0, 1)`` (mmcv's; so a fresh layer computes half of a plain
    convolution with the same weight, then learns). State dict: ``weight``, ``bias`` (if
    any), ``conv_offset.weight``, ``conv_offset.bias``, version 2; loading upgrades the
    version-1 keys ``<layer>_offset.*`` as mmcv does (:mod:`.._state`).
    """

    _log_name: ClassVar[str] = "ModulatedDeformConvPack"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conv_offset = onn.Conv2d(
            self.in_channels, 3 * self.mask_channels, self.kernel_size, self.stride,
            self.padding, self.dilation, bias=True,
        )  # fmt: skip
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's: the weight and bias as :class:`ModulatedDeformConv2d`'s, and
        ``conv_offset`` zero (offsets 0, mask 1/2)."""
        super().init_weights()
        if hasattr(self, "conv_offset"):
            for param in self.conv_offset.parameters():  # weight and bias
                nn.init.zeros_(param)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        out = self.conv_offset(x)
        k = self.mask_channels  # o1, o2, mask = out.chunk(3, 1); offset = cat(o1, o2)
        return deform_call(
            x, out[:, : 2 * k], torch.sigmoid(out[:, 2 * k :]), self.weight, self.bias,
            self.stride, self.padding, self.dilation, self.groups, self.deform_groups, None,
        )  # fmt: skip
