"""The transposed convolution of MegEngine's ``functional.conv_transpose2d`` and
``module.ConvTranspose2d`` (one body, canonical arguments): MegEngine's weight layouts
(dense ``(I, O, kh, kw)``, grouped ``(groups, I/groups, O/groups, kh, kw)``, which are
torch's ``(I, O/groups, kh, kw)`` with the group split off), ``conv_mode``,
``compute_mode`` and the bias added after, onto
:func:`omniconv.functional.conv_transpose2d`."""

from __future__ import annotations

from typing import Any

import torch

from ..._args import Pair, renamed_args
from ...functional.conv_transpose import conv_transpose2d_canonical
from .._errors import received
from ._conv import INP, compute_mode_of_call, finish, in_compute_dtype, torch_weight, weight_groups
from ._errors import MegEngineAssertionError
from ._tensor import Tensor

__all__ = ["check_output_padding", "conv_transpose2d_megengine"]


def check_output_padding(output_padding: Pair, stride: Pair, given: Any) -> None:
    """MegEngine's rule: each output padding smaller than the stride on its axis (MegEngine
    checks the width only when the height's is non-zero, a typo; here both)."""
    for i in range(2):
        if output_padding[i] >= stride[i]:
            message = f"output_padding[{i}] shoule be less than stride[{i}]"
            raise MegEngineAssertionError(received(message, output_padding=given, stride=stride))


def conv_transpose2d_megengine(
    inp: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Pair,
    padding: Pair,
    output_padding: Pair,
    dilation: Pair,
    groups: int,
    conv_mode: str,
    compute_mode: str,
) -> Tensor:
    """MegEngine's transposed convolution with checked arguments (``output_padding``
    smaller than ``stride``), lower-case modes (``compute_mode`` before the global
    override, applied here); ``conv_mode='convolution'`` rotates the kernel by 180°."""
    compute = compute_mode_of_call(compute_mode)
    w = torch_weight(weight, groups, "(I, O, kh, kw)", "(groups, I/groups, O/groups, kh, kw)")
    if conv_mode == "convolution":
        w = w.flip(-2, -1)
    out_dtype, (x, w) = in_compute_dtype(compute, inp, w)
    with renamed_args(INP):
        out = conv_transpose2d_canonical(
            x, w, None, stride, padding, output_padding, weight_groups(weight, groups), dilation
        )
    return finish(out, out_dtype, bias)
