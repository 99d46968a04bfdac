"""``torchvision.ops.deform_conv2d`` and ``torchvision.ops.DeformConv2d`` over the
``omniconv::deform_conv2d`` op.

torchvision's (0.28) signatures, defaults, parameter names, initialisation, state dicts
and repr. The deformable-group count is read from the offset
(``offset.shape[1] // (2*kh*kw)``) and the convolution groups from the weight
(``input.shape[1] // weight.shape[1]``) at each call; ``mask=None`` is DCNv1.

TorchScript compiles both, as torchvision's: the functional's checks are TorchScript code
and it calls the registered op ``torch.ops.omniconv.deform_conv2d`` itself (the
:mod:`omniconv.functional` entry point is Python-only). ``torch.jit.trace``,
``torch.compile(fullgraph=True)`` and ``torch.export`` see one op node.

Errors are torchvision's checks (its Python one, then its C++ kernel's), in its order, with
its words (plus the values received where its words lack them), then the dtype and device
checks where its kernel would fail: :class:`TorchvisionValueError` /
:class:`TorchvisionTypeError`, each a ``RuntimeError`` as torchvision's raise, and a
``ValueError`` / ``TypeError`` (:mod:`.._errors`). Under TorchScript a raised error reaches
Python as ``torch.jit.Error`` naming the class, as torchvision's scripted errors do.

Differences from torchvision: bfloat16 runs (torchvision's CPU kernel has none); half
precision computes in float32 on CPU; a wrong dtype, device or bias size is reported by a
check rather than by the kernel; scripted code takes mixed float dtypes
(:func:`_mixed_dtypes_allowed`); a channels_last input gives a channels_last output (as
torch's convolutions; torchvision's is contiguous).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .... import kernels  # noqa: F401  (registers torch.ops.omniconv.deform_conv2d)
from .... import nn as onn
from ...._args import as_int
from ...._shapes import conv_output_size
from ....kernels import deform_onnx
from ..._errors import received
from ..._frontend import FrontendMixin, Initializer
from .._errors import TorchvisionTypeError, TorchvisionValueError

__all__ = ["DeformConv2d", "deform_conv2d"]

_Pair = tuple[int, int]


# ----------------------------------------------------------------------------- functional


def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    mask: Tensor | None = None,
) -> Tensor:
    """``torchvision.ops.deform_conv2d``: DCNv2 with ``mask``, DCNv1 without.

    Args:
        input: ``(N, C_in, H, W)``.
        offset: ``(N, 2*offset_groups*kh*kw, H_out, W_out)``; ``offset_groups`` (the
            deformable groups, each a contiguous block of input channels) is read from it.
        weight: ``(C_out, C_in/groups, kh, kw)``; ``groups`` is ``C_in // weight.shape[1]``.
        bias: ``(C_out,)`` or None.
        stride, padding, dilation: an int or a pair ``(h, w)`` (a pair under TorchScript).
        mask: ``(N, offset_groups*kh*kw, H_out, W_out)`` or None.

    Returns:
        ``(N, C_out, H_out, W_out)`` in the input's dtype (under autocast too: it computes
        in float32 there, and the result is cast back, as torchvision's; scripted calls
        under CPU bfloat16 autocast take omniconv's op's rule, bfloat16 products).
    """
    if not torch.jit.is_scripting():
        stride, padding, dilation = _python_arguments(
            input, offset, weight, bias, mask, stride, padding, dilation
        )
    _check(input, offset, weight, bias, mask, stride, padding, dilation)
    if not torch.jit.is_scripting() and deform_onnx.exporting(input):  # torch.onnx.export
        return deform_onnx.deform_conv2d_node(
            input, weight, offset, mask, bias, stride, padding, dilation
        )
    m = mask if mask is not None else input.new_empty([0])
    b = bias if bias is not None else input.new_zeros([weight.shape[0]])
    # (TorchScript skips the block under `not is_scripting()`, so the autocast question
    # sits apart: it cannot ask for autocast, see _mixed_dtypes_allowed)
    if not torch.jit.is_scripting():  # noqa: SIM102
        if _autocast_enabled(input.device.type):
            out = _op_in_float32(
                input, weight, offset, m, b, stride, padding, dilation, mask is not None
            )
            return out if out.dtype == input.dtype else out.to(input.dtype)
    out = _op(input, weight, offset, m, b, stride, padding, dilation, mask is not None)
    # torchvision returns the input's dtype (under autocast too)
    return out if out.dtype == input.dtype else out.to(input.dtype)


def _op(
    input: Tensor, weight: Tensor, offset: Tensor, mask: Tensor, bias: Tensor, stride: _Pair,
    padding: _Pair, dilation: _Pair, use_mask: bool,
) -> Tensor:  # fmt: skip
    return torch.ops.omniconv.deform_conv2d(
        input, weight, offset, mask, bias, stride[0], stride[1], padding[0], padding[1],
        dilation[0], dilation[1], use_mask,
        64,  # im2col_step: bounds the op's buffer memory only (torchvision's is 32)
    )  # fmt: skip


@torch.jit.unused
def _op_in_float32(
    input: Tensor, weight: Tensor, offset: Tensor, mask: Tensor, bias: Tensor, stride: _Pair,
    padding: _Pair, dilation: _Pair, use_mask: bool,
) -> Tensor:  # fmt: skip
    """torchvision's autocast rule, whatever the autocast dtype: every floating argument
    cast to float32 (float64 stays), the op run with autocast off. (omniconv's op casts
    input, weight and bias to bfloat16 under CPU bfloat16 autocast; TorchScript cannot
    switch autocast off, so scripted calls take the op's rule there.)"""
    x, w, off, m, b = (
        t.float() if t.is_floating_point() and t.dtype != torch.float64 else t
        for t in (input, weight, offset, mask, bias)
    )
    with torch.autocast(input.device.type, enabled=False):
        return _op(x, w, off, m, b, stride, padding, dilation, use_mask)


# torch.fx.symbolic_trace records a call of it as one node (its checks need real tensors)
torch.fx.wrap("deform_conv2d")


@torch.jit.unused
def _python_arguments(
    input: Any,
    offset: Any,
    weight: Any,
    bias: Any,
    mask: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
) -> tuple[_Pair, _Pair, _Pair]:
    """Outside TorchScript (whose signature has typed them already): the tensors are
    tensors, and stride, padding and dilation an int or a pair of ints (what torchvision's
    ``_pair`` unpacks), returned as pairs."""
    tensors = {"input": input, "offset": offset, "weight": weight, "bias": bias, "mask": mask}
    for name, value in tensors.items():
        if not (isinstance(value, Tensor) or (value is None and name in ("bias", "mask"))):
            rule = "a torch.Tensor" + (" or None" if name in ("bias", "mask") else "")
            raise TorchvisionTypeError(
                f"`{name}` must be {rule}; received {name}=<{type(value).__name__}>"
            )
    return (
        _int_pair(stride, "stride"),
        _int_pair(padding, "padding"),
        _int_pair(dilation, "dilation"),
    )


def _int_pair(value: Any, name: str) -> _Pair:
    """An int ``v`` as ``(v, v)``, or a pair of ints."""
    single = as_int(value)
    if single is not None:
        return single, single
    rule = "an int or a pair of ints"
    if not isinstance(value, tuple | list):
        raise TorchvisionTypeError(f"`{name}` must be {rule}; received {name}={value!r}")
    if len(value) != 2:
        raise TorchvisionValueError(f"`{name}` must be {rule}; received {name}={value!r}")
    h, w = as_int(value[0]), as_int(value[1])
    if h is None or w is None:
        raise TorchvisionTypeError(f"`{name}` must be {rule}; received {name}={value!r}")
    return h, w


# ----------------------------------------------------------------------------- checks
# TorchScript code: torchvision's checks (its Python one, then its C++ kernel's), in order.


def _check(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    mask: Tensor | None,
    stride: _Pair,
    padding: _Pair,
    dilation: _Pair,
) -> None:
    _check_ndim(input, "input", 4)
    _check_ndim(offset, "offset", 4)
    _check_ndim(weight, "weight", 4)
    if mask is not None:
        _check_ndim(mask, "mask", 4)
    if bias is not None:
        _check_ndim(bias, "bias", 1)

    n, c_in, h, w = input.shape[0], input.shape[1], input.shape[2], input.shape[3]
    c_out, c_w, kh, kw = weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3]
    if kh < 1 or kw < 1:
        raise TorchvisionValueError(
            f"weight_h: {kh} weight_w: {kw}; received weight.shape={list(weight.shape)}"
        )
    # torchvision's Python check
    taps = kh * kw
    dg = offset.shape[1] // (2 * taps)
    if dg == 0:
        raise TorchvisionValueError(
            "the shape of the offset tensor at dimension 1 is not valid. It should be a "
            "multiple of 2 * weight.size[2] * weight.size[3].\n"
            f"Got offset.shape[1]={offset.shape[1]}, while 2 * weight.size[2] * "
            f"weight.size[3]={2 * taps}"
        )
    # torchvision's C++ checks
    if stride[0] < 1 or stride[1] < 1:
        raise TorchvisionValueError(
            f"stride_h: {stride[0]} stride_w: {stride[1]}; received stride={stride}"
        )
    if padding[0] < 0 or padding[1] < 0:
        raise TorchvisionValueError(
            f"pad_h: {padding[0]} pad_w: {padding[1]}; received padding={padding}"
        )
    if dilation[0] < 1 or dilation[1] < 1:
        raise TorchvisionValueError(
            f"dilation_h: {dilation[0]} dilation_w: {dilation[1]}; received dilation={dilation}"
        )
    groups = c_in // c_w if c_w > 0 else 0
    if c_w < 1 or groups < 1 or c_w * groups != c_in:
        raise TorchvisionValueError(
            "input.shape[1] must be a positive multiple of weight.shape[1] (the convolution "
            "groups are input.shape[1] // weight.shape[1]); received "
            f"input.shape[1]={c_in}, weight.shape[1]={c_w}"
        )
    if c_out % groups != 0:
        raise TorchvisionValueError(
            f"weight.shape[0] must be divisible by the convolution groups ({groups}); "
            f"received weight.shape[0]={c_out}"
        )
    if offset.shape[1] != dg * 2 * taps:
        raise TorchvisionValueError(
            f"offset.shape[1] is not valid: got: {offset.shape[1]} expected: {dg * 2 * taps}"
        )
    if mask is not None and mask.shape[1] != dg * taps:
        raise TorchvisionValueError(
            f"mask.shape[1] is not valid: got: {mask.shape[1]} expected: {dg * taps}"
        )
    if c_in % dg != 0:
        raise TorchvisionValueError(
            "input.shape[1] must be divisible by the offset groups "
            "(offset.shape[1] // (2 * weight.size[2] * weight.size[3])); received "
            f"input.shape[1]={c_in}, offset groups={dg}"
        )
    if offset.shape[0] != n:
        raise TorchvisionValueError(
            f"invalid batch size of offset; received offset.shape[0]={offset.shape[0]}, "
            f"input.shape[0]={n}"
        )
    pad4 = (padding[0], padding[0], padding[1], padding[1])
    out_h, out_w = conv_output_size((h, w), (kh, kw), stride, pad4, dilation)
    if offset.shape[2] != out_h or offset.shape[3] != out_w:
        raise TorchvisionValueError(
            f"offset output dims: ({offset.shape[2]}, {offset.shape[3]}) - computed output "
            f"dims: ({out_h}, {out_w})"
        )
    if mask is not None:
        if mask.shape[0] != n:
            raise TorchvisionValueError(
                f"invalid batch size of mask; received mask.shape[0]={mask.shape[0]}, "
                f"input.shape[0]={n}"
            )
        if mask.shape[2] != out_h or mask.shape[3] != out_w:
            raise TorchvisionValueError(
                f"mask output dims: ({mask.shape[2]}, {mask.shape[3]}) - computed output "
                f"dims: ({out_h}, {out_w})"
            )
    if out_h < 1 or out_w < 1:
        raise TorchvisionValueError(
            f"Calculated output size too small - out_h: {out_h} out_w: {out_w}; received "
            f"input.shape={list(input.shape)}, weight.shape={list(weight.shape)}"
        )
    if bias is not None and bias.shape[0] != c_out:
        raise TorchvisionValueError(
            f"bias must have weight.shape[0]={c_out} elements; received "
            f"bias.shape={list(bias.shape)}"
        )
    # where torchvision's kernel would fail: dtypes and devices
    _check_like(input, "input", input)
    _check_like(offset, "offset", input)
    _check_like(weight, "weight", input)
    if mask is not None:
        _check_like(mask, "mask", input)
    if bias is not None:
        _check_like(bias, "bias", input)


def _check_ndim(t: Tensor, name: str, ndim: int) -> None:
    if t.dim() != ndim:
        raise TorchvisionValueError(
            f"{name} must be a {ndim}-D tensor; received {name}.shape={list(t.shape)}"
        )


def _check_like(t: Tensor, name: str, input: Tensor) -> None:
    """A float tensor (float16, bfloat16, float32, float64: what the op computes) of the
    input's dtype, unless autocast casts them to one (it is on for the input's device),
    on the input's device."""
    if not _is_float(t.dtype):
        raise TorchvisionTypeError(
            f"{name} must be a floating-point tensor; received {name}.dtype={_dtype_name(t.dtype)}"
        )
    if t.dtype != input.dtype and not _mixed_dtypes_allowed(input):
        raise TorchvisionTypeError(
            f"{name} must have the input's dtype ({_dtype_name(input.dtype)}) outside "
            f"autocast; received {name}.dtype={_dtype_name(t.dtype)}"
        )
    if t.device != input.device:
        raise TorchvisionValueError(
            f"{name} must be on the input's device ({input.device}); received "
            f"{name}.device={t.device}"
        )


def _is_float(dtype: torch.dtype) -> bool:
    return (
        dtype == torch.float32
        or dtype == torch.float64
        or dtype == torch.float16
        or dtype == torch.bfloat16
    )


def _dtype_name(dtype: torch.dtype) -> str:
    """``str(dtype)``, which TorchScript would print as the enum's number."""
    if dtype == torch.float32:
        return "torch.float32"
    if dtype == torch.float64:
        return "torch.float64"
    if dtype == torch.float16:
        return "torch.float16"
    if dtype == torch.bfloat16:
        return "torch.bfloat16"
    return str(dtype)


def _mixed_dtypes_allowed(input: Tensor) -> bool:
    """Whether autocast is on for the input's device, so the op casts its arguments to
    float32 itself. TorchScript cannot ask for the CPU's autocast state (torch 2.13's JIT
    autocast pass crashes on ``torch.is_autocast_cpu_enabled()``), so scripted code takes
    mixed float dtypes anyway; they are safe there: the CPU kernels cast every argument
    to their compute dtype, and the other devices' kernel refuses mismatched dtypes."""
    if torch.jit.is_scripting():
        return True
    return _autocast_enabled(input.device.type)


@torch.jit.unused
def _autocast_enabled(device_type: str) -> bool:
    return torch.is_autocast_enabled(device_type)


# ----------------------------------------------------------------------------- module


def _init_weight(weight: Tensor, layer: nn.Module) -> None:
    """torchvision's (and torch's): ``kaiming_uniform_(a=sqrt(5))``, i.e.
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))


def _init_bias(bias: Tensor, layer: nn.Module) -> None:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's ``fan_in``, drawn after it."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)  # type: ignore[arg-type]
    bound = 1 / math.sqrt(fan_in)
    nn.init.uniform_(bias, -bound, bound)


class DeformConv2d(FrontendMixin, onn.DeformConv2d):
    """``torchvision.ops.DeformConv2d``: ``forward(input, offset, mask=None)``, see
    :func:`deform_conv2d`. Parameters ``weight`` ``(C_out, C_in/groups, kh, kw)`` and
    ``bias`` (torchvision's keys and shapes), initialised as torchvision does (the same
    values from the same seed).

    An :class:`omniconv.nn.DeformConv2d` whose deformable groups and mask are per call
    (``deformable_groups`` and ``modulated`` are None).
    """

    # per call here: TorchScript must not compile them (they raise AttributeError)
    __jit_unused_properties__: ClassVar[list[str]] = ["offset_channels", "mask_channels"]
    default_initializers: ClassVar[Mapping[str, Initializer]] = {
        "weight": _init_weight,
        "bias": _init_bias,
    }

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        g = as_int(groups)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            c = as_int(value)
            if c is not None and g is not None and g > 0 and c % g != 0:
                message = f"{name} must be divisible by groups"
                raise ValueError(received(message, **{name: value, "groups": groups}))
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
            deformable_groups=None, bias=bias, modulated=None,
        )  # fmt: skip

    def _conv_forward(
        self,
        input: Tensor,
        offset: Tensor,
        mask: Tensor | None,
        weight: Tensor,
        bias: Tensor | None,
    ) -> Tensor:
        return deform_conv2d(
            input, offset, weight, bias, self.stride, self.padding, self.dilation, mask
        )

    def extra_repr(self) -> str:
        """torchvision's: stride always, the rest when not the default."""
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        s += f", padding={self.padding}" if self.padding != (0, 0) else ""
        s += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        s += ", bias=False" if self.bias is None else ""
        return s
