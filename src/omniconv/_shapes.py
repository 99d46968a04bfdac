"""Output-size arithmetic for every op, in one place (the tests use it too).

All sizes are per spatial dimension pairs ``(h, w)``; padding is always the
resolved 4-tuple ``(top, bottom, left, right)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._args import Pad4, Pair, fail

__all__ = [
    "construction_padding",
    "construction_transpose_padding",
    "conv_output_size",
    "conv_transpose_output_size",
    "deform_mask_channels",
    "deform_offset_channels",
    "kernel_extent",
    "pad4",
    "paddle_transpose_same_padding",
    "resolve_padding",
    "same_padding",
    "transpose_output_padding",
    "transpose_same_padding",
]


def kernel_extent(kernel: int, dilation: int) -> int:
    """The span of a dilated kernel: ``d*(k-1) + 1``."""
    return dilation * (kernel - 1) + 1


def conv_output_size(
    in_size: Pair, kernel: Pair, stride: Pair, padding: Pad4, dilation: Pair
) -> Pair:
    """``floor((H + top + bottom - (d*(k-1)+1)) / s) + 1`` per dimension.

    May be <= 0 when the kernel does not fit; callers decide what that means. TorchScript
    compiles it (the torchvision front-end's scriptable checks call it).
    """
    h, w = in_size
    top, bottom, left, right = padding
    ho = (h + top + bottom - kernel_extent(kernel[0], dilation[0])) // stride[0] + 1
    wo = (w + left + right - kernel_extent(kernel[1], dilation[1])) // stride[1] + 1
    return ho, wo


def same_padding(in_size: Sequence[int], kernel: Pair, stride: Pair, dilation: Pair) -> Pad4:
    """TensorFlow-style 'SAME' padding: output ``ceil(H / s)``, extra pad at bottom/right."""
    pads: list[int] = []
    for size, k, s, d in zip(in_size, kernel, stride, dilation, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + kernel_extent(k, d) - size, 0)
        pads += [total // 2, total - total // 2]
    return pads[0], pads[1], pads[2], pads[3]


def construction_padding(
    padding: Pad4 | str, kernel: Pair, stride: Pair, dilation: Pair
) -> Pad4 | str:
    """A normalised padding resolved as far as it can be before the input size is known.

    A 4-tuple stays as it is. ``'same'`` with stride 1 becomes ``(top, bottom, left,
    right)`` (the total ``d*(k-1)`` does not depend on the input size); with a stride > 1
    TensorFlow's rule depends on ``H mod s``, so it stays ``'same'`` and
    :func:`resolve_padding` resolves it at each call from the input size.
    """
    if padding != "same" or stride != (1, 1):
        return padding
    return same_padding((1, 1), kernel, stride, dilation)  # any size: stride 1


def resolve_padding(
    padding: Pad4 | str, in_size: Sequence[int], kernel: Pair, stride: Pair, dilation: Pair
) -> Pad4:
    """Turn a normalised padding (4-tuple or ``'same'``) into ``(top, bottom, left, right)``."""
    if isinstance(padding, str):  # 'same' (the only string a normalised padding can be)
        return same_padding(in_size, kernel, stride, dilation)
    return padding


def pad4(padding: Sequence[int]) -> Pad4:
    """``(top, bottom, left, right)`` from a 4-tuple, or from a symmetric pair ``(h, w)``."""
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    top, bottom, left, right = padding
    return top, bottom, left, right


def conv_transpose_output_size(
    in_size: Sequence[int],
    kernel: Pair,
    stride: Pair,
    padding: Sequence[int],
    dilation: Pair,
    output_padding: Pair = (0, 0),
) -> Pair:
    """``(H - 1)*s - top - bottom + d*(k-1) + 1 + output_padding`` per dimension.

    ``padding`` is ``(top, bottom, left, right)`` or a symmetric pair ``(pad_h, pad_w)``.
    May be <= 0 when the padding crops everything; callers decide what that means.
    """
    top, bottom, left, right = pad4(padding)
    h, w = in_size
    ho = (h - 1) * stride[0] - top - bottom + kernel_extent(kernel[0], dilation[0])
    wo = (w - 1) * stride[1] - left - right + kernel_extent(kernel[1], dilation[1])
    return ho + output_padding[0], wo + output_padding[1]


def transpose_output_padding(
    in_size: Sequence[int],
    output_size: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Sequence[int],
    dilation: Pair,
) -> Pair:
    """The ``output_padding`` that gives ``output_size``; each size must lie in
    ``[infer, infer + stride)`` where ``infer`` is the size with no output padding."""
    infer = conv_transpose_output_size(in_size, kernel, stride, padding, dilation)
    for i in range(2):
        lo, hi = infer[i], infer[i] + stride[i]
        if not lo <= output_size[i] < hi:
            rule = (
                f"within [{infer[0]}, {infer[0] + stride[0] - 1}] x "
                f"[{infer[1]}, {infer[1] + stride[1] - 1}] (inferred size {infer[0]}x{infer[1]} "
                f"up to inferred + stride - 1) for input size {tuple(in_size)}"
            )
            fail("output_size", rule, output_size)
    return output_size[0] - infer[0], output_size[1] - infer[1]


def transpose_same_padding(kernel: Pair, stride: Pair, dilation: Pair) -> tuple[Pad4, Pair]:
    """TensorFlow's (and Keras') ``'same'`` for a transposed convolution: the output is
    exactly ``H * s``.

    It is the padding ``'same'`` gives a convolution whose *input* is ``H * s``: the total
    ``max(d*(k-1) + 1 - s, 0)``, the odd pixel at the bottom/right; when the kernel extent
    is smaller than the stride, ``s - (d*(k-1) + 1)`` rows/columns of output padding make
    up the size (zeros plus the bias, at the bottom/right). Neither depends on the input
    size. Returns ``((top, bottom, left, right), output_padding)``.
    """
    pads: list[int] = []
    extra: list[int] = []
    for k, s, d in zip(kernel, stride, dilation, strict=True):
        total = kernel_extent(k, d) - s
        pads += [max(total, 0) // 2, max(total, 0) - max(total, 0) // 2]
        extra.append(max(-total, 0))
    return (pads[0], pads[1], pads[2], pads[3]), (extra[0], extra[1])


def construction_transpose_padding(
    padding: Pad4 | str, kernel: Pair, stride: Pair, dilation: Pair, output_padding: Pair
) -> tuple[Pad4, Pair]:
    """A normalised transposed-conv padding (4-tuple or ``'same'``) and output padding,
    resolved at construction to ``((top, bottom, left, right), output_padding)``.
    ``'same'`` (:func:`transpose_same_padding`) never depends on the input size; it takes
    no ``output_padding`` of its own (it picks it)."""
    if not isinstance(padding, str):
        return padding, output_padding
    if output_padding != (0, 0):
        fail("output_padding", "0 with padding='same' (the rule picks it)", output_padding)
    return transpose_same_padding(kernel, stride, dilation)


def paddle_transpose_same_padding(in_size: Sequence[int], kernel: Pair, stride: Pair) -> Pad4:
    """Paddle's ``'SAME'`` for ``conv2d_transpose``: the padding ``'same'`` gives a
    *convolution* of the **input** size (:func:`same_padding` of ``in_size``), with the
    dilation taken as 1 (Paddle ignores the dilation under ``'SAME'``, for ``conv2d``
    too). The output is ``H * s`` only when ``s`` divides ``H`` and ``k >= s``
    (``H=7, s=2, k=3``: 13); it depends on ``H mod s`` when ``s > 1``."""
    return same_padding(in_size, kernel, stride, (1, 1))


def deform_offset_channels(deformable_groups: int, kernel: Pair) -> int:
    """Offset channels: ``2 * dg * kh * kw`` ((dy, dx) per tap per deformable group)."""
    return 2 * deformable_groups * kernel[0] * kernel[1]


def deform_mask_channels(deformable_groups: int, kernel: Pair) -> int:
    """Mask channels: ``dg * kh * kw``."""
    return deformable_groups * kernel[0] * kernel[1]
