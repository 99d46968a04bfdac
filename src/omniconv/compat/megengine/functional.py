"""``megengine.functional`` subset: :func:`conv2d`, :func:`conv_transpose2d`,
:func:`deformable_conv2d` and :func:`pad`, MegEngine's signatures.

They are translations onto :func:`omniconv.functional.conv2d`,
:func:`~omniconv.functional.conv_transpose2d`, :func:`~omniconv.functional.deform_conv2d`
and :func:`torch.nn.functional.pad`; outputs are :class:`~omniconv.compat.megengine.Tensor`.

Differences from MegEngine (documented on purpose):

* ``conv_mode='convolution'`` performs a true convolution (the kernel rotated by 180°,
  megdnn's ``CONVOLUTION`` mode) in :func:`conv2d` / :func:`conv_transpose2d`, where
  MegEngine's Python check crashes with ``AttributeError: 'str' object has no attribute
  'name'``. Any other value raises a ``ValueError`` (case-insensitive, like MegEngine's
  enum parsing). :func:`deformable_conv2d` takes cross-correlation only (as megdnn).
* An unknown ``compute_mode`` raises a ``ValueError`` here (a pybind11 cast error in
  MegEngine).
* :func:`conv_transpose2d` applies both ``output_padding`` entries, with int or pair
  arguments and 5-D grouped weights; MegEngine 1.12-1.13 ignores it unless its height
  entry is non-zero, indexes ``stride[0]`` (an int crashes), and sizes the output from the
  weight's ``shape[1:3]`` (wrong for a 5-D weight).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as _torch_F

from ..._args import as_int, check_positive_int, fail, to_pair, type_name
from ._conv import COMPUTE_MODES, CONV_MODES, check_mode, conv2d_megengine, wrap
from ._conv_transpose import check_output_padding, conv_transpose2d_megengine
from ._deformable_conv import check_conv_mode, deformable_conv2d_megengine
from ._tensor import Tensor

__all__ = ["conv2d", "conv_transpose2d", "deformable_conv2d", "pad"]


def _expand_hw(value: Any, name: str) -> tuple[int, int]:
    """MegEngine's ``expand_hw``: int -> (x, x); sequence -> first two (extra ignored).
    Stricter than MegEngine's ``int()``: a bool, a float or a string is refused (a
    ``TypeError`` naming the argument), not truncated."""
    rule = "an int or a sequence of at least 2 ints (the first two are used)"
    scalar = as_int(value)
    if scalar is not None:
        return scalar, scalar
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) >= 2:
        h, w = as_int(value[0]), as_int(value[1])
        if h is not None and w is not None:
            return h, w
    fail(name, rule, value, exc=TypeError)


def conv2d(
    inp: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    conv_mode: str = "cross_correlation",
    compute_mode: str = "default",
) -> Tensor:
    """``megengine.functional.conv2d``.

    Args:
        inp: ``(N, C, H, W)``.
        weight: ``(O, C, kh, kw)`` if ``groups == 1``, else ``(G, O/G, C/G, kh, kw)``; as
            in MegEngine the group count used is ``weight.shape[0]`` (``groups`` only picks
            dense or grouped).
        bias: broadcast-added after the convolution (usually ``(1, O, 1, 1)``).
        stride, padding, dilation: an int or a sequence (first two entries used).
        conv_mode: ``'cross_correlation'`` or ``'convolution'`` (kernel rotated by 180°).
        compute_mode: ``'default'`` or ``'float32'`` (float16 inputs accumulate in float32,
            the result is cast back to float16). The global ``config._compute_mode``
            overrides it unless that is ``'default'``.
    """
    return conv2d_megengine(
        inp, weight, bias, to_pair(_expand_hw(stride, "stride"), "stride"),
        to_pair(_expand_hw(padding, "padding"), "padding", minimum=0),
        to_pair(_expand_hw(dilation, "dilation"), "dilation"),
        check_positive_int(groups, "groups"),
        check_mode(conv_mode, "conv_mode", CONV_MODES),
        check_mode(compute_mode, "compute_mode", COMPUTE_MODES),
    )  # fmt: skip


def conv_transpose2d(
    inp: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    conv_mode: str = "cross_correlation",
    compute_mode: str = "default",
) -> Tensor:
    """``megengine.functional.conv_transpose2d`` (MegEngine 1.12+'s signature).

    Args:
        inp: ``(N, C_in, H, W)``.
        weight: ``(C_in, C_out, kh, kw)`` if ``groups == 1``, else ``(G, C_in/G, C_out/G,
            kh, kw)``; the group count used is ``weight.shape[0]`` (``groups`` only picks
            dense or grouped), as in MegEngine.
        bias: broadcast-added after the convolution (usually ``(1, C_out, 1, 1)``).
        stride, padding, output_padding, dilation: an int or a sequence (first two entries
            used); each ``output_padding`` smaller than the ``stride`` on its axis.
        conv_mode: ``'cross_correlation'`` or ``'convolution'`` (kernel rotated by 180°).
        compute_mode: ``'default'`` or ``'float32'`` (as :func:`conv2d`).

    Output ``(H - 1)*s - 2p + d*(k - 1) + 1 + output_padding`` per axis.
    """
    stride_ = to_pair(_expand_hw(stride, "stride"), "stride")
    output_padding_ = to_pair(
        _expand_hw(output_padding, "output_padding"), "output_padding", minimum=0
    )
    check_output_padding(output_padding_, stride_, output_padding)
    return conv_transpose2d_megengine(
        inp, weight, bias, stride_, to_pair(_expand_hw(padding, "padding"), "padding", minimum=0),
        output_padding_, to_pair(_expand_hw(dilation, "dilation"), "dilation"),
        check_positive_int(groups, "groups"),
        check_mode(conv_mode, "conv_mode", CONV_MODES),
        check_mode(compute_mode, "compute_mode", COMPUTE_MODES),
    )  # fmt: skip


def deformable_conv2d(
    inp: torch.Tensor,
    weight: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    conv_mode: str = "cross_correlation",
    compute_mode: str = "default",
) -> Tensor:
    """``megengine.functional.deformable_conv2d`` (DCNv2; megdnn's ``DeformableConv``).

    Args:
        inp: ``(N, C_in, H, W)``.
        weight: ``(C_out, C_in, kh, kw)`` if ``groups == 1``, else ``(G, C_out/G, C_in/G,
            kh, kw)`` (the group count is ``weight.shape[0]``).
        offset: ``(N, 2*dg*kh*kw, H_out, W_out)``, ``(dy, dx)`` per tap and deformable
            group; ``dg`` is read from it and must divide ``C_out``.
        mask: ``(N, dg*kh*kw, H_out, W_out)`` (required).
        bias: broadcast-added after the convolution (usually ``(1, C_out, 1, 1)``).
        stride, padding, dilation: an int or a sequence (first two entries used).
        conv_mode: ``'cross_correlation'`` only (any case).
        compute_mode: ``'default'`` or ``'float32'``.

    The offset and mask are cast to ``inp``'s dtype (MegEngine: to float32, its only one).
    """
    check_conv_mode(conv_mode)
    return deformable_conv2d_megengine(
        inp, weight, offset, mask, bias, to_pair(_expand_hw(stride, "stride"), "stride"),
        to_pair(_expand_hw(padding, "padding"), "padding", minimum=0),
        to_pair(_expand_hw(dilation, "dilation"), "dilation"),
        check_positive_int(groups, "groups"),
        check_mode(compute_mode, "compute_mode", COMPUTE_MODES),
    )  # fmt: skip


_PAD_MODES = {"constant": "constant", "edge": "replicate", "replicate": "replicate",
              "reflect": "reflect"}  # fmt: skip


def pad(
    src: torch.Tensor,
    pad_width: Any,
    mode: str = "constant",
    constant_value: float = 0.0,
) -> Tensor:
    """``megengine.functional.pad``: ``pad_width = ((before_0, after_0), (before_1, after_1),
    ...)`` for the leading dimensions (missing trailing ones are not padded).

    Modes ``'constant'``, ``'reflect'`` (numpy/PyTorch reflect: the edge is not repeated),
    ``'replicate'`` and its alias ``'edge'``, any case. ``reflect`` / ``replicate`` pad at
    most the last three dimensions (PyTorch's limit).
    """
    if not isinstance(src, torch.Tensor):
        fail("src", "a Tensor", type_name(src), exc=TypeError)
    low = mode.lower() if isinstance(mode, str) else ""
    if low not in _PAD_MODES:
        fail("mode", "one of 'constant', 'edge', 'replicate', 'reflect'", mode)
    pairs = [(int(p[0]), int(p[1])) for p in pad_width]
    if len(pairs) > src.dim():
        fail("pad_width", f"at most {src.dim()} (before, after) pairs", pad_width)
    pairs += [(0, 0)] * (src.dim() - len(pairs))
    if _PAD_MODES[low] == "constant":
        flat = [v for before, after in reversed(pairs) for v in (before, after)]
        return wrap(_torch_F.pad(src, flat, mode="constant", value=constant_value))
    k = min(3, src.dim())
    if any(p != (0, 0) for p in pairs[:-k]):
        fail("pad_width", f"zero except on the last 3 dimensions for mode={mode!r}", pad_width)
    flat = [v for before, after in reversed(pairs[-k:]) for v in (before, after)]
    x = src.reshape(-1, *src.shape[-k:])  # torch pads (C, *spatial) for 1 to 3 spatial dims
    out = _torch_F.pad(x, flat, mode=_PAD_MODES[low])
    out = out.reshape(*src.shape[:-k], *out.shape[-k:])
    return wrap(out)
