"""``DeformConv2d`` (offsets and mask given) and ``DeformConv2dPack`` (predicts them)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .._args import check_bool, check_optional_bool, check_positive_int, fail, to_pair, type_name
from .._shapes import deform_mask_channels, deform_offset_channels
from ..functional.deform_conv import deform_conv2d_canonical
from ._common import check_weight_fits, non_default_repr, torch_default_init
from .conv import Conv2d

__all__ = ["DeformConv2d", "DeformConv2dPack"]


class DeformConv2d(nn.Module):
    """Deformable convolution; see :func:`omniconv.functional.deform_conv2d` for the math.

    ``forward(x, offset, mask=None)``: ``offset`` ``(N, 2*dg*kh*kw, H_out, W_out)``,
    ``mask`` ``(N, dg*kh*kw, H_out, W_out)``, required when ``modulated`` (DCNv2),
    refused when not (DCNv1), optional at each call when ``modulated=None``.

    Args:
        in_channels, out_channels: channel counts; ``in_channels`` divisible by
            ``groups`` and by ``deformable_groups``.
        kernel_size, stride, padding, dilation: an int or a pair (padding symmetric).
        groups: convolution groups. deformable_groups: offset groups, each a contiguous
            block of input channels; None reads them from the offset at each call
            (``offset.shape[1] / (2*kh*kw)``, as ``torchvision.ops.DeformConv2d`` does).
        bias: add a learnable bias. modulated: DCNv2 (with mask), DCNv1, or None (the
            mask is optional at each call, as in torchvision).
        im2col_step: images sampled at a time (memory bound only; same result).

    Initialisation: PyTorch's (as ``torch.nn.Conv2d`` and ``torchvision.ops.DeformConv2d``):
    weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), ``fan_in = C_in/groups*kh*kw``.

    A plain ``nn.Module``, not a ``torch.nn.Conv2d`` (as torchvision's and mmcv's): tooling
    that finds an ``nn.Conv2d`` assumes ``forward(input)`` and a dense convolution. It would
    call it without offsets, count its cost as a dense conv's, or swap it for a quantised
    dense conv, all silently wrong for a deformable one. The attribute names are still
    torch's (``weight``, ``bias``, ``in_channels``, ``kernel_size``, ...).
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
        deformable_groups: int | None = 1,
        bias: bool = True,
        modulated: bool | None = True,
        im2col_step: int = 64,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel_size = to_pair(kernel_size, "kernel_size")
        self.stride = to_pair(stride, "stride")
        self.padding = to_pair(padding, "padding", minimum=0)
        self.dilation = to_pair(dilation, "dilation")
        self.groups = check_positive_int(groups, "groups")
        self.deformable_groups = (
            None
            if deformable_groups is None
            else check_positive_int(deformable_groups, "deformable_groups")
        )
        self.modulated = check_optional_bool(modulated, "modulated")
        bias = check_bool(bias, "bias")
        self.im2col_step = check_positive_int(im2col_step, "im2col_step")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value % self.groups:
                fail(name, f"divisible by groups={self.groups}", value)
        if self.deformable_groups is not None and self.in_channels % self.deformable_groups:
            fail(
                "in_channels",
                f"divisible by deformable_groups={self.deformable_groups}",
                in_channels,
            )
        factory = {"device": device, "dtype": dtype}
        kh, kw = self.kernel_size
        check_weight_fits(
            (self.out_channels, self.in_channels // self.groups, kh, kw), device, dtype,
            [("in_channels", in_channels, self.in_channels // self.groups),
             ("out_channels", out_channels, self.out_channels),
             ("kernel_size", kernel_size, kh * kw)],
        )  # fmt: skip
        self.weight = nn.Parameter(torch.empty(self._weight_shape(), **factory))
        if bias:
            self.bias: nn.Parameter | None = nn.Parameter(
                torch.empty(self._bias_shape(), **factory)
            )
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _weight_shape(self) -> tuple[int, ...]:
        """The stored weight's shape, ``(C_out, C_in/groups, kh, kw)`` (a front-end may
        store its framework's shape, as for the dense convs)."""
        kh, kw = self.kernel_size
        return (self.out_channels, self.in_channels // self.groups, kh, kw)

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def reset_parameters(self) -> None:
        torch_default_init(self.weight, self.bias)

    def _fixed_deformable_groups(self) -> int:
        """The deformable groups; an ``AttributeError`` (so ``hasattr`` is False) when they
        are read from each offset."""
        if self.deformable_groups is None:
            raise AttributeError(
                "a layer with deformable_groups=None reads its offset and mask channels "
                "from each call's offset"
            )
        return self.deformable_groups

    @property
    def offset_channels(self) -> int:
        return deform_offset_channels(self._fixed_deformable_groups(), self.kernel_size)

    @property
    def mask_channels(self) -> int:
        return deform_mask_channels(self._fixed_deformable_groups(), self.kernel_size)

    def _conv_forward(
        self,
        input: Tensor,
        offset: Tensor,
        mask: Tensor | None,
        weight: Tensor,
        bias: Tensor | None,
    ) -> Tensor:
        # the one check the functional cannot make
        if self.modulated is not None and (mask is None) == self.modulated:
            if self.modulated:
                fail("mask", "a tensor when modulated=True (DCNv2)", None, exc=TypeError)
            fail("mask", "None when modulated=False (DCNv1)", type_name(mask), exc=TypeError)
        # groups and deformable_groups given: the functional checks the channels against
        # them (deformable_groups None: it infers them from the offset, as torchvision does)
        return deform_conv2d_canonical(
            input, offset, weight, bias, self.stride, self.padding, self.dilation, mask,
            self.im2col_step, self.groups, self.deformable_groups,
        )  # fmt: skip

    def forward(self, input: Tensor, offset: Tensor, mask: Tensor | None = None) -> Tensor:
        return self._conv_forward(input, offset, mask, self.weight, self.bias)

    def extra_repr(self) -> str:
        return non_default_repr(
            self,
            {
                "stride": (1, 1),
                "padding": (0, 0),
                "dilation": (1, 1),
                "groups": 1,
                "deformable_groups": 1,
                "modulated": True,
                "im2col_step": 64,
            },
        )


class DeformConv2dPack(DeformConv2d):
    """:class:`DeformConv2d` that predicts its own offsets (and mask) from the input.

    ``conv_offset`` (a :class:`Conv2d` with the same kernel, stride, padding and dilation)
    outputs ``2*dg*kh*kw`` offset channels (the functional's layout) followed, when
    ``modulated``, by ``dg*kh*kw`` mask logits; the mask is ``2 * sigmoid(logits)``,
    in ``(0, 2)``. ``conv_offset`` starts at zero, so a fresh layer samples every tap
    at its grid point with mask exactly 1: it computes what a :class:`Conv2d` with the
    same weight and bias computes, and learns the deformation from there.

    ``conv_offset`` is a ``torch.nn.Conv2d``: a model-wide loop that re-initialises every
    ``nn.Conv2d`` re-initialises it too; call :meth:`init_offset` after such a loop.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # it predicts the offsets, and the mask or not
        if self.deformable_groups is None:
            fail("deformable_groups", "an int for DeformConv2dPack", None, exc=TypeError)
        if self.modulated is None:
            fail("modulated", "True or False for DeformConv2dPack", None, exc=TypeError)
        out = self.offset_channels + (self.mask_channels if self.modulated else 0)
        self.conv_offset = Conv2d(
            self.in_channels, out, self.kernel_size, self.stride, self.padding, self.dilation,
            device=self.weight.device, dtype=self.weight.dtype,
        )  # fmt: skip
        self.init_offset()

    def init_offset(self) -> None:
        """Zero the offset/mask predictor (offset 0, mask 1)."""
        nn.init.zeros_(self.conv_offset.weight)
        if self.conv_offset.bias is not None:
            nn.init.zeros_(self.conv_offset.bias)

    def forward(self, input: Tensor) -> Tensor:  # type: ignore[override]
        out = self.conv_offset(input)
        offset = out[:, : self.offset_channels]
        mask = 2 * torch.sigmoid(out[:, self.offset_channels :]) if self.modulated else None
        return self._conv_forward(input, offset, mask, self.weight, self.bias)
