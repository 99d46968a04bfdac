"""``megengine.functional`` subset: :func:`conv2d` and :func:`pad`, MegEngine's signatures.

Both are translations onto :func:`omniconv.functional.conv2d` and
:func:`torch.nn.functional.pad`; outputs are :class:`~omniconv.compat.megengine.Tensor`.

Differences from MegEngine (documented on purpose):

* ``conv_mode='convolution'`` performs a true convolution (the kernel rotated by 180°,
  megdnn's ``CONVOLUTION`` mode), where MegEngine's Python check crashes with
  ``AttributeError: 'str' object has no attribute 'name'``. Any other value raises a
  ``ValueError`` (case-insensitive, like MegEngine's enum parsing).
* An unknown ``compute_mode`` raises a ``ValueError`` here (a pybind11 cast error in
  MegEngine).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as _torch_F

from ..._args import fail, to_pair, type_name
from ._conv import COMPUTE_MODES, CONV_MODES, check_mode, conv2d_megengine, wrap
from ._tensor import Tensor

__all__ = ["conv2d", "pad"]


def _expand_hw(value: Any) -> tuple[int, int]:
    """MegEngine's ``expand_hw``: int -> (x, x); sequence -> first two (extra ignored)."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, Sequence):
        return int(value[0]), int(value[1])
    return int(value), int(value)


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
        inp, weight, bias, to_pair(_expand_hw(stride), "stride"),
        to_pair(_expand_hw(padding), "padding", minimum=0),
        to_pair(_expand_hw(dilation), "dilation"), groups,
        check_mode(conv_mode, "conv_mode", CONV_MODES),
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
