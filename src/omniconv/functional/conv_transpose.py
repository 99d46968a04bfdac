r"""2-D transposed convolution (the gradient of :func:`conv2d` with respect to its input).

Every input pixel ``x[n, c, y, x]`` adds ``x * w[c, o, i, j]`` into the output at
``(y s_h - top + i d_h, x s_w - left + j d_w)`` for each output channel ``o`` of its
group; weight ``(C_in, C_out/groups, kh, kw)``. Output size per dimension:

.. math::

    \text{infer} = (H - 1) s - \text{top} - \text{bottom} + d (k - 1) + 1, \qquad
    H_{out} = \text{infer} + \text{output\_padding}

Padding ``(top, bottom, left, right)`` crops the full (unpadded) result: ``top`` rows
at the top, ``bottom`` at the bottom. ``output_size`` (Paddle's argument, and
``torch.nn.ConvTranspose2d.forward``'s) picks ``H_out`` directly; it must satisfy
``infer <= H_out < infer + stride``, the extra rows/columns being at the bottom/right.

``padding='same'`` is TensorFlow's / Keras' rule: the output is exactly ``H * s`` (the
padding ``'same'`` gives a convolution of an ``H * s`` input: total
``max(d(k-1) + 1 - s, 0)``, the odd pixel at the bottom/right, plus output padding
``max(s - d(k-1) - 1, 0)``), whatever the input size; ``'valid'`` is no padding.
Paddle's ``'SAME'`` for this op is a different rule (the padding of the *input* size,
dilation ignored); :mod:`omniconv.compat.paddle` has it.

``layout='NHWC'`` takes input ``(N, H, W, C_in)`` and weight ``(C_in, kh, kw,
C_out/groups)`` (MXNet's layout for it; the channels-last view of the NCHW weight) and
returns ``(N, H_out, W_out, C_out)``. These are permuted views, so nothing is copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from .. import kernels
from .._args import Pad4, Pair, as_int, check_choice, check_positive_int, fail, to_padding, to_pair
from .._shapes import (
    construction_transpose_padding,
    conv_transpose_output_size,
    pad4,
    transpose_output_padding,
)
from ._checks import check_allocation, check_bias, check_input_and_weight
from .conv import LAYOUTS

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
    layout: str = "NCHW",
) -> Tensor:
    """2-D transposed convolution; see the module docstring for the math.

    Args:
        input: ``(N, C_in, H, W)``, or ``(N, H, W, C_in)`` for ``layout='NHWC'``.
        weight: ``(C_in, C_out/groups, kh, kw)``, or ``(C_in, kh, kw, C_out/groups)`` for
            NHWC.
        bias: ``(C_out,)`` or None.
        stride, dilation: an int or a pair.
        padding: an int, a pair ``(h, w)``, a 4-tuple ``(top, bottom, left, right)``,
            ``'same'`` (output ``H * s``) or ``'valid'``; >= 0.
        output_padding: an int or a pair, each smaller than stride or dilation; 0 with
            ``'same'``, which picks its own.
        groups: a positive int dividing C_in.
        output_size: None, an int, ``(size,)``, ``(H_out, W_out)`` or a whole output shape
            (as ``torch.nn.ConvTranspose2d.forward`` takes, e.g. ``x.shape``; its last two
            entries are used); excludes ``output_padding``.
        layout: ``'NCHW'`` or ``'NHWC'``.
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
        input, weight, bias, stride_, to_padding(padding), out_pad,
        check_positive_int(groups, "groups"), dilation_, output_size,
        check_choice(layout, "layout", LAYOUTS),
    )  # fmt: skip


def conv_transpose2d_canonical(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Pair,
    padding: Pad4 | Pair | str,
    output_padding: Pair,
    groups: int,
    dilation: Pair,
    output_size: Any = None,
    layout: str = "NCHW",
) -> Tensor:
    """:func:`conv_transpose2d` with its arguments already in canonical form, as the
    modules store them: pairs, ``padding`` ``(top, bottom, left, right)`` (a symmetric
    pair ``(pad_h, pad_w)`` is accepted too) or ``'same'`` (resolved here from the
    weight's kernel, with the output padding it picks; the modules resolve it at
    construction), a positive ``groups``, ``output_padding`` smaller than stride or
    dilation and zero when ``output_size`` is given or the padding is ``'same'``, a known
    ``layout``. Checks the tensors and ``output_size`` only, so a module's call is
    validated once."""
    shape = tuple(input.shape) if isinstance(input, Tensor) else ()
    input, weight = check_input_and_weight(input, weight)
    channel_dim = 1
    if layout == "NHWC":
        # (N, H, W, C) -> (N, C, H, W) and (I, kh, kw, O/g) -> (I, O/g, kh, kw), as views
        input = input.permute(0, 3, 1, 2)
        weight = weight.permute(0, 3, 1, 2)
        channel_dim = 3
    _, c_in, h, w = input.shape
    if weight.shape[0] != c_in:
        fail(
            f"input.shape[{channel_dim}]",
            f"{weight.shape[0]}, the weight's input channels (weight.shape[0])",
            c_in,
        )
    if c_in % groups:
        fail("groups", f"a divisor of the input channels C_in={c_in}", groups)
    kernel = (weight.shape[2], weight.shape[3])
    c_out = weight.shape[1] * groups
    bias = check_bias(bias, input, c_out, "weight.shape[1] * groups")
    if isinstance(padding, str):  # 'same': TensorFlow's rule (output H * s)
        pads, out_pad = construction_transpose_padding(
            padding, kernel, stride, dilation, output_padding
        )
    else:
        pads, out_pad = pad4(padding), output_padding
    if output_size is not None:
        size = _output_size(output_size)
        out_pad = transpose_output_padding((h, w), size, kernel, stride, pads, dilation)
    ho, wo = conv_transpose_output_size((h, w), kernel, stride, pads, dilation, out_pad)
    if ho < 1 or wo < 1:
        shown = pads if pads[0] != pads[1] or pads[2] != pads[3] else (pads[0], pads[2])
        fail(
            "input.shape",
            f"large enough for a positive output with padding={shown} (output would be {ho}x{wo})",
            shape,
        )
    # the output grows with the stride (input side) and the dilated kernel: name the larger
    spread = max((h - 1) * stride[0], (w - 1) * stride[1])
    extent = max(dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1))
    name, value = ("stride", stride) if spread >= extent else ("dilation", dilation)
    check_allocation(input, ((input.shape[0], c_out, ho, wo), "the output", name, value))
    out = kernels.conv_transpose2d_nchw(
        input, weight, bias, stride, pads, out_pad, groups, dilation
    )
    return out.permute(0, 2, 3, 1) if layout == "NHWC" else out


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
