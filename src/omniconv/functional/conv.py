r"""2-D cross-correlation with every padding form and both layouts.

.. math::

    \text{out}(n, o, y, x) = b_o + \sum_{c \in \text{group}(o)} \sum_{i, j}
        w_{o, c, i, j} \; \tilde{x}_{n, c}(y s_h + i d_h, \; x s_w + j d_w)

where :math:`\tilde{x}` is the input padded by ``(top, bottom, left, right)`` with
``padding_mode`` (``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``, the
:func:`torch.nn.functional.pad` modes). Output size per dimension:
``(H + top + bottom - d(k-1) - 1) // s + 1``.

``padding='same'`` is TensorFlow's rule: the output is ``ceil(H / s)`` and the total
padding ``max((out-1)s + d(k-1) + 1 - H, 0)`` is split with the odd pixel at the
bottom/right; ``'valid'`` is no padding.

``layout='NHWC'`` takes input ``(N, H, W, C)`` and MXNet's weight layout
``(O, kh, kw, I/groups)`` and returns ``(N, H, W, O)``. These are permuted *views* into
channels_last tensors, so nothing is copied.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .. import kernels
from .._args import Pad4, Pair, check_choice, check_positive_int, fail, to_padding, to_pair
from .._shapes import conv_output_size, resolve_padding
from ._checks import check_allocation, check_bias, check_input_and_weight, check_output_fits

__all__ = ["LAYOUTS", "PADDING_MODES", "conv2d", "conv2d_canonical"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
LAYOUTS = ("NCHW", "NHWC")


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    layout: str = "NCHW",
) -> Tensor:
    """2-D convolution (cross-correlation); see the module docstring for the math.

    Args:
        input: ``(N, C_in, H, W)``, or ``(N, H, W, C_in)`` for ``layout='NHWC'``.
        weight: ``(C_out, C_in/groups, kh, kw)``, or ``(C_out, kh, kw, C_in/groups)`` for NHWC.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or a pair.
        padding: an int, a pair ``(h, w)``, a 4-tuple ``(top, bottom, left, right)``,
            ``'same'`` or ``'valid'``.
        groups: splits input and output channels into contiguous groups.
        padding_mode: ``'zeros' | 'reflect' | 'replicate' | 'circular'``.
        layout: ``'NCHW'`` or ``'NHWC'``.
    """
    return conv2d_canonical(
        input, weight, bias, to_pair(stride, "stride"), to_padding(padding),
        to_pair(dilation, "dilation"), check_positive_int(groups, "groups"),
        check_choice(padding_mode, "padding_mode", PADDING_MODES),
        check_choice(layout, "layout", LAYOUTS),
    )  # fmt: skip


def conv2d_canonical(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Pair,
    padding: Pad4 | str,
    dilation: Pair,
    groups: int,
    padding_mode: str,
    layout: str,
) -> Tensor:
    """:func:`conv2d` with its arguments already in canonical form (as :mod:`omniconv._args`
    makes them, and as the modules store them): ``stride`` / ``dilation`` pairs, ``padding``
    ``(top, bottom, left, right)`` or ``'same'``, a positive ``groups``, a known
    ``padding_mode`` and ``layout``. Checks the tensors only, so a module's call is
    validated once."""
    input, weight = check_input_and_weight(input, weight)
    if layout == "NHWC":
        # (N, H, W, C) -> (N, C, H, W) and OHWI -> OIHW, as channels_last views
        input = input.permute(0, 3, 1, 2)
        weight = weight.permute(0, 3, 1, 2)

    _, c_in, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    if c_in != c_per_group * groups:
        fail(
            f"input.shape[{3 if layout == 'NHWC' else 1}]",
            f"{c_per_group * groups}, the weight's input channels "
            f"({c_per_group} per group, groups={groups})",
            c_in,
        )
    if c_out % groups:
        fail("weight.shape[0]", f"divisible by groups={groups}", c_out)
    bias = check_bias(bias, input, c_out, "C_out")
    pad4 = resolve_padding(padding, (h, w), (kh, kw), stride, dilation)
    out_size = conv_output_size((h, w), (kh, kw), stride, pad4, dilation)
    check_output_fits(input, (kh, kw), stride, pad4, dilation, out_size)
    n = input.shape[0]
    padded = (n, c_in, h + pad4[0] + pad4[1], w + pad4[2] + pad4[3])
    check_allocation(
        input,
        # unpadded: the input itself (an expanded view can describe more than memory holds)
        (padded, "the padded input", "padding", padding)
        if any(pad4)
        else (padded, "the input", "input.shape", input.shape),
        # (the padded input fits: an output too large comes from the weight's C_out)
        ((n, c_out, *out_size), "the output", "weight.shape", weight.shape),
    )
    if padding_mode in ("reflect", "circular"):
        limit, rule = (h, w), "smaller than" if padding_mode == "reflect" else "at most"
        over = max(pad4[:2]) >= h or max(pad4[2:]) >= w
        if padding_mode == "circular":
            over = max(pad4[:2]) > h or max(pad4[2:]) > w
        if over:
            fail(
                "padding",
                f"{rule} the input size {limit} for padding_mode={padding_mode!r}",
                padding,
            )

    out = kernels.conv2d_nchw(input, weight, bias, stride, pad4, dilation, groups, padding_mode)
    return out.permute(0, 2, 3, 1) if layout == "NHWC" else out
