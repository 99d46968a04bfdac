"""``mmcv.ops.deform_conv``: ``deform_conv2d``, ``DeformConv2d``, ``DeformConv2dPack``
(DCNv1: no mask, no bias)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from .... import nn as onn
from ...._args import check_positive_int, fail, to_pair
from ...._shapes import deform_offset_channels
from ..._errors import received
from ..._frontend import Initializer
from .._errors import MMCVAssertionError
from .._state import LegacyOffsetKeys
from ._call import deform_call
from ._module import MMCVDeformConv, renames_deformable_groups

__all__ = ["DeformConv2d", "DeformConv2dPack", "deform_conv2d"]


def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    deform_groups: int = 1,
    bias: bool = False,
    im2col_step: int = 32,
) -> Tensor:
    """``mmcv.ops.deform_conv2d`` (``DeformConv2dFunction.apply``), DCNv1, with mmcv's
    arguments in mmcv's order.

    Args:
        input: ``(N, C_in, H, W)``.
        offset: ``(N, deform_groups*2*kh*kw, H_out, W_out)``: for deformable group ``g``
            and tap ``k = i*kw + j``, channel ``g*2*kh*kw + 2k`` moves the sample down
            (rows) and ``+ 1`` right, mmcv's ``[y0, x0, y1, x1, ...]``.
        weight: ``(C_out, C_in/groups, kh, kw)``.
        stride, padding, dilation: an int or a pair (padding symmetric, as mmcv's).
        groups, deform_groups: given, not inferred from the tensors (as mmcv's).
        bias: must be ``False`` (mmcv's DCNv1 has no bias; anything else is an
            ``AssertionError``).
        im2col_step: mmcv's rule: the batch must be divisible by ``min(im2col_step, N)``
            (an ``AssertionError`` otherwise). Any valid step gives the same result.

    ``input`` takes ``offset``'s dtype and ``weight`` ``input``'s (mmcv's rule); see
    :func:`._call.deform_call` for the checks and their errors. The math (bilinear
    sampling, zero outside the image) is :func:`omniconv.functional.deform_conv2d`'s, the
    same as mmcv's CPU and CUDA kernels.
    """
    if bias is not False:
        raise MMCVAssertionError(received("Only support bias is False.", bias=bias))
    return deform_call(
        input, offset, None, weight, None, to_pair(stride, "stride"),
        to_pair(padding, "padding", minimum=0), to_pair(dilation, "dilation"),
        check_positive_int(groups, "groups"), check_positive_int(deform_groups, "deform_groups"),
        check_positive_int(im2col_step, "im2col_step"),
    )  # fmt: skip


def _kaiming_uniform_relu(weight: Tensor, layer: nn.Module) -> None:
    """mmcv's ``DeformConv2d.reset_parameters``: ``kaiming_uniform_(nonlinearity='relu')``,
    i.e. U(-b, b) with ``b = sqrt(6 / fan_in)``, ``fan_in = C_in/groups*kh*kw``."""
    nn.init.kaiming_uniform_(weight, nonlinearity="relu")


class DeformConv2d(MMCVDeformConv):
    """``mmcv.ops.DeformConv2d``: DCNv1 without bias; ``forward(x, offset)``.

    Parameter: ``weight`` ``(out, in/groups, kh, kw)`` only: there is no ``bias``
    attribute (``bias=True`` is an ``AssertionError``, as in mmcv). Initialisation:
    :meth:`reset_parameters`, mmcv's ``kaiming_uniform_(weight, nonlinearity='relu')``.
    ``im2col_step`` (default 32) keeps mmcv's batch-divisibility rule. Inputs smaller than
    the kernel work (mmcv pads them and crops the output; the result is the same).
    """

    default_initializers: ClassVar[Mapping[str, Initializer]] = {"weight": _kaiming_uniform_relu}
    _repr_defaults: ClassVar[Mapping[str, Any]] = {
        "stride": (1, 1),
        "padding": (0, 0),
        "dilation": (1, 1),
        "groups": 1,
        "deform_groups": 1,
        "im2col_step": 32,
    }

    @renames_deformable_groups("DeformConv2d")
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
        bias: bool = False,
        im2col_step: int = 32,
    ) -> None:
        if bias is not False and not isinstance(bias, bool):
            fail("bias", "False (mmcv's DCNv1 has no bias)", bias, exc=TypeError)
        if bias:
            raise MMCVAssertionError(f"bias={bias} is not supported in DeformConv2d.")
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
            deform_groups, bias=False, modulated=False, im2col_step=im2col_step,
        )  # fmt: skip
        del self.bias  # mmcv's DCNv1 has no bias attribute at all

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:  # type: ignore[override]
        return deform_call(
            x, offset, None, self.weight, None, self.stride, self.padding, self.dilation,
            self.groups, self.deform_groups, self.im2col_step,
        )  # fmt: skip


class DeformConv2dPack(LegacyOffsetKeys, DeformConv2d):
    """``mmcv.ops.DeformConv2dPack`` (mmcv's ``'DCN'``): a :class:`DeformConv2d` that
    predicts its offsets from its input; ``forward(x)``.

    ``conv_offset``: a ``torch.nn.Conv2d`` (:class:`omniconv.nn.Conv2d`)
    ``in_channels -> deform_groups*2*kh*kw`` with the layer's kernel, stride, padding and
    dilation, one group, a bias, and zero weight and bias (:meth:`init_offset`): a fresh
    layer samples the regular grid. State dict: ``weight``, ``conv_offset.weight``,
    ``conv_offset.bias``, version 2; loading upgrades the version-1 keys
    ``<layer>_offset.*`` as mmcv does (:mod:`.._state`).
    """

    _log_name: ClassVar[str] = "DeformConv2dPack"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conv_offset = onn.Conv2d(
            self.in_channels, deform_offset_channels(self.deform_groups, self.kernel_size),
            self.kernel_size, self.stride, self.padding, self.dilation, bias=True,
        )  # fmt: skip
        self.init_offset()

    def init_offset(self) -> None:
        """Zero ``conv_offset`` (offsets 0: the regular grid)."""
        for param in self.conv_offset.parameters():  # weight and bias
            nn.init.zeros_(param)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return deform_call(
            x, self.conv_offset(x), None, self.weight, None, self.stride, self.padding,
            self.dilation, self.groups, self.deform_groups, self.im2col_step,
        )  # fmt: skip
