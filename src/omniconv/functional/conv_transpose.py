r"""2-D transposed convolution (the gradient of :func:`conv2d` with respect to its input).

Every input pixel ``x[n, c, y, x]`` adds ``x * w[c, o, i, j]`` into the output at
``(y s_h - p_h + i d_h, x s_w - p_w + j d_w)`` for each output channel ``o`` of its group;
weight ``(C_in, C_out/groups, kh, kw)``. Output size per dimension:

.. math::

    \text{infer} = (H - 1) s - 2p + d (k - 1) + 1, \qquad
    H_{out} = \text{infer} + \text{output\_padding}

``output_size`` (Paddle's argument, and ``torch.nn.ConvTranspose2d.forward``'s) picks
``H_out`` directly; it must satisfy ``infer <= H_out < infer + stride``, the extra
rows/columns being at the bottom/right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from .. import kernels
from .._args import Pair, as_int, check_positive_int, fail, to_pair
from .._shapes import conv_transpose_output_size, transpose_output_padding
from ._checks import check_bias, check_input_and_weight

__all__ = ["conv_transpose2d", "conv_transpose2d_canonical"]


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
    output_size: Any = None,
) -> Tensor:
    """2-D transposed convolution; see the module docstring for the math.

    Args:
        input: ``(N, C_in, H, W)``.
        weight: ``(C_in, C_out/groups, kh, kw)``.
        bias: ``(C_out,)`` or None.
        stride, padding, dilation: an int or a pair (padding symmetric, >= 0).
        output_padding: an int or a pair, each smaller than stride or dilation.
        groups: a positive int dividing C_in.
        output_size: None, an int, ``(size,)``, ``(H_out, W_out)`` or a whole output shape
            ``(N, C_out, H_out, W_out)`` (as ``torch.nn.ConvTranspose2d.forward`` takes,
            e.g. ``x.shape``; its last two entries are used); excludes ``output_padding``.
    """
    stride_ = to_pair(stride, "stride")
    dilation_ = to_pair(dilation, "dilation")
    out_pad = to_pair(output_padding, "output_padding", minimum=0)
    if output_size is not None and out_pad != (0, 0):
        fail("output_padding", "0 when output_size is given", output_padding)
    for i in range(2):
        if out_pad[i] >= max(stride_[i], dilation_[i]):
            fail(
                "output_padding",
                f"smaller than stride or dilation (stride={stride_}, dilation={dilation_})",
                output_padding,
            )
    return conv_transpose2d_canonical(
        input, weight, bias, stride_, to_pair(padding, "padding", minimum=0), out_pad,
        check_positive_int(groups, "groups"), dilation_, output_size,
    )  # fmt: skip


def conv_transpose2d_canonical(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Pair,
    padding: Pair,
    output_padding: Pair,
    groups: int,
    dilation: Pair,
    output_size: Any = None,
) -> Tensor:
    """:func:`conv_transpose2d` with its arguments already in canonical form (pairs, a
    positive ``groups``, ``output_padding`` smaller than stride or dilation and zero when
    ``output_size`` is given), as the modules store them. Checks the tensors and
    ``output_size`` only, so a module's call is validated once."""
    input, weight = check_input_and_weight(input, weight)
    _, c_in, h, w = input.shape
    if weight.shape[0] != c_in:
        fail(
            "input.shape[1]",
            f"{weight.shape[0]}, the weight's input channels (weight.shape[0])",
            c_in,
        )
    if c_in % groups:
        fail("groups", f"a divisor of the input channels C_in={c_in}", groups)
    kernel = (weight.shape[2], weight.shape[3])
    c_out = weight.shape[1] * groups
    bias = check_bias(bias, input, c_out, "weight.shape[1] * groups")
    out_pad = output_padding
    if output_size is not None:
        size = _output_size(output_size)
        out_pad = transpose_output_padding((h, w), size, kernel, stride, padding, dilation)
    ho, wo = conv_transpose_output_size((h, w), kernel, stride, padding, dilation, out_pad)
    if ho < 1 or wo < 1:
        fail(
            "input.shape",
            f"large enough for a positive output with padding={padding} (output would be "
            f"{ho}x{wo})",
            tuple(input.shape),
        )
    return kernels.conv_transpose2d_nchw(
        input, weight, bias, stride, padding, out_pad, groups, dilation
    )


def _output_size(value: Any) -> tuple[int, int]:
    """``output_size`` as ``(H_out, W_out)``: an int, or a sequence of 1, 2 or 4 ints."""
    rule = "an int, (size,), (H_out, W_out) or a whole shape (N, C_out, H_out, W_out)"
    items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    if len(items) not in (1, 2, 4):
        fail("output_size", f"{rule}: 1, 2 or 4 entries, not {len(items)}", value)
    sizes: list[int] = []
    for item in items[-2:]:  # (size,) -> size for both; a whole shape -> its last two
        size = as_int(item)
        if size is None:
            fail("output_size", f"{rule}, of integers", value, exc=TypeError)
        sizes.append(size)
    if min(sizes) < 1:
        fail("output_size", "positive", value)
    return sizes[0], sizes[-1]
