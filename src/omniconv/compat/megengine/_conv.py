"""The convolution of MegEngine's ``functional.conv2d`` and ``module.Conv2d`` (one body,
canonical arguments): MegEngine's weight layouts, ``conv_mode``, ``compute_mode`` and the
bias added after the convolution, onto :func:`omniconv.functional.conv2d`."""

from __future__ import annotations

from typing import Any

import torch

from ..._args import Pair, fail, renamed_args, type_name
from ...functional.conv import conv2d_canonical
from . import config
from ._tensor import Tensor

__all__ = [
    "COMPUTE_MODES",
    "CONV_MODES",
    "INP",
    "check_mode",
    "compute_mode_of_call",
    "conv2d_megengine",
    "finish",
    "in_compute_dtype",
    "torch_weight",
    "weight_groups",
    "wrap",
]

#: MegEngine's name of the input tensor, in the functional's errors
INP = {"input": "inp"}

CONV_MODES = ("cross_correlation", "convolution")
COMPUTE_MODES = ("default", "float32")


def wrap(out: torch.Tensor) -> Tensor:
    """``out`` as a MegEngine :class:`Tensor` (a view, no copy)."""
    return out if isinstance(out, Tensor) else out.as_subclass(Tensor)


def check_mode(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """A mode string in any case (MegEngine's enum parsing), lower-cased."""
    low = value.lower() if isinstance(value, str) else ""
    if low not in choices:
        rule = "one of " + ", ".join(repr(c) for c in choices) + " (any case)"
        fail(name, rule, value, exc=ValueError if isinstance(value, str) else TypeError)
    return low


def compute_mode_of_call(compute_mode: str) -> str:
    """The (checked) ``compute_mode``, unless the global ``config._compute_mode`` overrides
    it (anything but ``'default'``; checked here, at the call, as it is set at run time)."""
    if config._compute_mode == "default":
        return compute_mode
    return check_mode(config._compute_mode, "config._compute_mode", COMPUTE_MODES)


def torch_weight(
    weight: Any,
    groups: int,
    dense: str = "(O, I, kh, kw)",
    grouped: str = "(groups, O/groups, I/groups, kh, kw)",
) -> torch.Tensor:
    """MegEngine's 4-D dense or 5-D grouped weight (layouts ``dense`` / ``grouped``, for
    the messages) as torch's 4-D view (the first two dimensions merged)."""
    if not isinstance(weight, torch.Tensor):
        fail("weight", "a Tensor", type_name(weight), exc=TypeError)
    if groups == 1 and weight.dim() != 4:
        fail("weight.shape", f"4-D {dense} when groups == 1", tuple(weight.shape))
    if groups != 1:
        if weight.dim() != 5:
            fail("weight.shape", f"5-D {grouped} when groups != 1", tuple(weight.shape))
        weight = weight.flatten(0, 1)
    return weight


def weight_groups(weight: torch.Tensor, groups: int) -> int:
    """The group count MegEngine uses: 1 (dense), else the 5-D weight's first dimension."""
    return 1 if groups == 1 else weight.shape[0]


def in_compute_dtype(
    compute: str, inp: torch.Tensor, *tensors: torch.Tensor
) -> tuple[torch.dtype | None, list[torch.Tensor]]:
    """``compute_mode='float32'`` on float16 data: ``(torch.float16, [tensors in float32])``
    (the result is cast back); otherwise ``(None, [inp, *tensors])`` unchanged."""
    all_ = [inp, *tensors]
    if compute == "float32" and all(t.dtype == torch.float16 for t in all_):
        return torch.float16, [t.float() for t in all_]
    return None, all_


def finish(out: torch.Tensor, out_dtype: torch.dtype | None, bias: Any) -> Tensor:
    """Cast back (``compute_mode='float32'``), then ``output += bias`` by broadcasting, as
    MegEngine adds the bias after the operator."""
    if out_dtype is not None:
        out = out.to(out_dtype)
    if bias is not None:
        out = out + bias
    return wrap(out)


def conv2d_megengine(
    inp: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    conv_mode: str,
    compute_mode: str,
    padding_mode: str = "zeros",
) -> Tensor:
    """MegEngine's convolution with checked, lower-case modes (``compute_mode`` before the
    global override, applied here). ``padding_mode`` is the module's, applied by the
    functional exactly as MegEngine's ``pad`` + conv does."""
    compute = compute_mode_of_call(compute_mode)
    w = torch_weight(weight, groups)
    if conv_mode == "convolution":
        w = w.flip(-2, -1)
    out_dtype, (x, w) = in_compute_dtype(compute, inp, w)
    ph, pw = padding
    with renamed_args(INP):
        out = conv2d_canonical(
            x, w, None, stride, (ph, ph, pw, pw), dilation, weight_groups(weight, groups),
            padding_mode, "NCHW",
        )  # fmt: skip
    return finish(out, out_dtype, bias)
