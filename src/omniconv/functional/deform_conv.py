r"""Deformable convolution v1/v2 (Dai et al. 2017, Zhu et al. 2019).

For output pixel :math:`p = (y, x)` and kernel tap :math:`k = i \cdot k_w + j`:

.. math::

    \text{out}(n, o, p) = b_o + \sum_{c \in \text{group}(o)} \sum_k
        w_{o, c, k} \; m_{n, g(c), k}(p) \;
        \text{bilinear}(x_{n, c}, \; p_k + \Delta p_{n, g(c), k}(p))

with :math:`p_k = (y s_h - p_h + i d_h, \; x s_w - p_w + j d_w)`.

Conventions (those of ``torchvision.ops.deform_conv2d``, Paddle's ``deformable_conv`` and
the MSRA DCN code):

* ``offset`` has ``2 * dg * kh * kw`` channels: for deformable group ``g`` and tap ``k``,
  channel ``g*2K + 2k`` is :math:`\Delta h` (rows, first) and ``g*2K + 2k + 1`` is
  :math:`\Delta w`. ``mask`` has ``dg * kh * kw`` channels, ``g*K + k``; ``mask=None`` is
  DCNv1 (every :math:`m = 1`).
* Deformable groups take contiguous blocks of input channels: channel ``c`` uses group
  ``c // (C_in / dg)``. Convolution groups ``C_in / weight.shape[1]`` split input and
  output channels contiguously, as in ``torch.nn.functional.conv2d``.
* ``bilinear`` is zero outside the open box :math:`(-1, H) \times (-1, W)`; inside it,
  with :math:`h_0 = \lfloor h \rfloor`, each of the four corners
  :math:`(h_0 + a, w_0 + b)` weighs :math:`|1 - a - (h - h_0)| \cdot |1 - b - (w - w_0)|`
  and counts zero when it lies off the image. So ``h = -1`` and ``h = H`` give exactly 0,
  ``h = -0.5`` gives ``0.5 * x[0]``.
* Gradients follow the same floor convention: at an integer position the offset
  gradient is the one-sided difference ``x[h+1] - x[h]`` (as in the reference CUDA/CPU
  kernels), and it is zero outside the box, the border itself included.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .. import kernels
from .._args import Pair, check_positive_int, fail, to_pair
from .._shapes import conv_output_size, deform_mask_channels, deform_offset_channels
from ..kernels import deform_onnx
from ._checks import (
    check_allocation,
    check_bias,
    check_float_tensor,
    check_like,
    check_output_fits,
    check_shape,
    check_weight,
)

__all__ = ["deform_conv2d", "deform_conv2d_canonical"]


def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    mask: Tensor | None = None,
    im2col_step: int = 64,
    *,
    groups: int | None = None,
    deformable_groups: int | None = None,
) -> Tensor:
    """Deformable convolution (see the module docstring for the exact math).

    A drop-in for :func:`torchvision.ops.deform_conv2d` (same argument order), plus
    ``im2col_step``: at most that many images are sampled at a time, which bounds the
    memory of the column buffer; the result does not depend on it.

    Args:
        input: ``(N, C_in, H, W)``.
        offset: ``(N, 2*dg*kh*kw, H_out, W_out)``.
        weight: ``(C_out, C_in/groups, kh, kw)``.
        bias: ``(C_out,)`` or None.
        stride, padding, dilation: an int or a pair ``(h, w)``; padding is symmetric.
        mask: ``(N, dg*kh*kw, H_out, W_out)`` (DCNv2) or None (DCNv1).
        im2col_step: images per sampling chunk (a positive int).
        groups: keyword-only; None infers the convolution groups from the tensors
            (``C_in / weight.shape[1]``, as torchvision does), an int requires
            ``C_in == groups * weight.shape[1]``.
        deformable_groups: keyword-only; None infers ``dg`` from ``offset.shape[1]``, an
            int requires ``offset.shape[1] == 2*dg*kh*kw``.

    Returns:
        ``(N, C_out, H_out, W_out)`` with ``H_out = (H + 2p - d(k-1) - 1) // s + 1``.
    """
    return deform_conv2d_canonical(
        input, offset, weight, bias, to_pair(stride, "stride"),
        to_pair(padding, "padding", minimum=0), to_pair(dilation, "dilation"), mask,
        check_positive_int(im2col_step, "im2col_step"),
        None if groups is None else check_positive_int(groups, "groups"),
        None if deformable_groups is None
        else check_positive_int(deformable_groups, "deformable_groups"),
    )  # fmt: skip


def deform_conv2d_canonical(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    mask: Tensor | None,
    im2col_step: int,
    groups: int | None,
    deformable_groups: int | None,
) -> Tensor:
    """:func:`deform_conv2d` with its arguments already in canonical form (pairs, positive
    ints or None), as the modules store them. Checks the tensors only, so a module's call
    is validated once."""
    input = check_float_tensor(input, "input", 4)
    offset = check_float_tensor(offset, "offset", 4)
    weight = check_weight(weight)
    check_like(offset, "offset", input, "input")
    check_like(weight, "weight", input, "input")
    # the names the kernel call at the end uses
    stride_, padding_, dilation_, step = stride, padding, dilation, im2col_step

    n, c_in, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    kernel = (kh, kw)
    if groups is not None:
        if c_in != c_per_group * groups:
            fail(
                "input.shape[1]",
                f"{c_per_group * groups}, the weight's input channels "
                f"({c_per_group} per group, groups={groups})",
                c_in,
            )
    elif c_in == 0 or c_in % c_per_group:  # groups = C_in / weight.shape[1], as torchvision's
        fail(
            "input.shape[1]",
            f"a positive multiple of {c_per_group}, the weight's input channels per group "
            "(weight.shape[1])",
            c_in,
        )
    groups = c_in // c_per_group
    if c_out % groups:
        fail("weight.shape[0]", f"divisible by groups={groups} (C_in / weight.shape[1])", c_out)
    pad4 = (padding_[0], padding_[0], padding_[1], padding_[1])
    ho, wo = conv_output_size((h, w), kernel, stride_, pad4, dilation_)
    check_output_fits(input, kernel, stride_, padding_, dilation_, (ho, wo))
    k = kh * kw
    c_off = offset.shape[1]
    if deformable_groups is not None:
        if c_off != deform_offset_channels(deformable_groups, kernel):
            fail(
                "offset.shape[1]",
                f"2*deformable_groups*kh*kw = {deform_offset_channels(deformable_groups, kernel)}",
                c_off,
            )
    elif c_off == 0 or c_off % (2 * k):
        fail("offset.shape[1]", f"a positive multiple of 2*kh*kw={2 * k}", c_off)
    dg = c_off // (2 * k)
    if c_in % dg:
        fail(
            "offset.shape[1]",
            f"2*kh*kw*dg with deformable groups dg={dg} dividing C_in={c_in}",
            c_off,
        )
    check_shape(
        offset,
        "offset",
        (n, deform_offset_channels(dg, kernel), ho, wo),
        "N, 2*dg*kh*kw, H_out, W_out",
    )
    if mask is not None:
        mask = check_float_tensor(mask, "mask", 4)
        check_like(mask, "mask", input, "input")
        check_shape(
            mask, "mask", (n, deform_mask_channels(dg, kernel), ho, wo), "N, dg*kh*kw, H_out, W_out"
        )
    bias = check_bias(bias, input, c_out, "C_out")
    # (expanded views can describe an output larger than memory: name its larger factor)
    name, value = (
        ("weight.shape", weight.shape) if c_out > n * ho * wo else ("offset.shape", offset.shape)
    )
    check_allocation(input, ((n, c_out, ho, wo), "the output", name, value))
    if deform_onnx.exporting(input):  # torch.onnx.export: one ONNX DeformConv node
        return deform_onnx.deform_conv2d_node(
            input, weight, offset, mask, bias, stride_, padding_, dilation_
        )

    use_mask = mask is not None
    return kernels.deform_conv2d(
        input,
        weight,
        offset,
        mask if mask is not None else input.new_empty(0),
        bias if bias is not None else input.new_zeros(c_out),
        stride_[0],
        stride_[1],
        padding_[0],
        padding_[1],
        dilation_[0],
        dilation_[1],
        use_mask,
        step,
    )
