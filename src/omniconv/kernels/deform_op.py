"""The ``omniconv::deform_conv2d`` op and its backward, registered with torch's dispatcher.

One :mod:`torch.library` op with a kernel per dispatch key, as torchvision registers its
own ``deform_conv2d``:

* ``CPU``: the numba kernels (:mod:`.deform_cpu`) where they run (see
  :func:`.deform_cpu.runs`: numba works here, float tensors, and this thread did not force
  the pure path through :func:`omniconv.backends.deform_backend`), else the pure kernel;
* ``CompositeExplicitAutograd``, i.e. every other device (CUDA, MPS, XPU, ...): the
  pure-PyTorch kernel (:mod:`.deform_torch`);
* ``Meta`` / fake tensors: shapes and memory formats only; ``Autograd``: the backward op;
  ``AutocastCPU``: bfloat16 input, weight and bias with float32 offset and mask under
  bfloat16 autocast, else float32; ``AutocastCUDA``: float32.

Tracing (``torch.compile``, ``torch.export``) keeps one node per deformable conv whatever
kernel runs it. An error inside a kernel propagates. Arguments: :mod:`._deform_args`
(written once; the functional has checked them). The output and the input gradient have
the input's memory format (channels_last in, channels_last out).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import deform_cpu, deform_onnx, deform_torch
from ._deform_args import (
    BACKWARD_SCHEMA,
    FORWARD_SCHEMA,
    DeformParams,
    DeformTensors,
    output_memory_format,
    split_args,
)

__all__ = ["deform_conv2d", "deform_conv2d_backward"]

_GRADS = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def _forward_pure(t: DeformTensors, p: DeformParams) -> Tensor:
    return deform_torch.forward(t, p).contiguous(memory_format=output_memory_format(t.input))


def _backward_pure(grad_out: Tensor, t: DeformTensors, p: DeformParams) -> _GRADS:
    gi, gw, go, gm, gb = deform_torch.backward(grad_out, t, p)
    return gi.contiguous(memory_format=output_memory_format(t.input)), gw, go, gm, gb


def _forward_composite(*args: Any) -> Tensor:
    """Every device without a kernel of its own: the pure-PyTorch kernel."""
    return _forward_pure(*split_args(args))


def _backward_composite(grad_out: Tensor, *args: Any) -> _GRADS:
    return _backward_pure(grad_out, *split_args(args))


deform_conv2d = torch.library.custom_op(
    "omniconv::deform_conv2d", _forward_composite, mutates_args=(), schema=FORWARD_SCHEMA
)
deform_conv2d_backward = torch.library.custom_op(
    "omniconv::deform_conv2d_backward",
    _backward_composite,
    mutates_args=(),
    schema=BACKWARD_SCHEMA,
)


@deform_conv2d.register_kernel("cpu")
def _forward_cpu(*args: Any) -> Tensor:
    t, p = split_args(args)
    if deform_cpu.runs(*t):
        return deform_cpu.forward(t, p)
    return _forward_pure(t, p)


@deform_conv2d_backward.register_kernel("cpu")
def _backward_cpu(grad_out: Tensor, *args: Any) -> _GRADS:
    t, p = split_args(args)
    if deform_cpu.runs(grad_out, *t):
        return tuple(deform_cpu.backward(grad_out, t, p))  # type: ignore[return-value]
    return _backward_pure(grad_out, t, p)


@deform_conv2d.register_fake
def _forward_fake(*args: Any) -> Tensor:
    t, _ = split_args(args)
    shape = (t.input.shape[0], t.weight.shape[0], t.offset.shape[2], t.offset.shape[3])
    return t.input.new_empty(shape).contiguous(memory_format=output_memory_format(t.input))


@deform_conv2d_backward.register_fake
def _backward_fake(grad_out: Tensor, *args: Any) -> _GRADS:
    t, _ = split_args(args)
    gi = torch.empty_like(t.input, memory_format=output_memory_format(t.input))
    gw, go, gm, gb = (torch.empty_like(x, memory_format=torch.contiguous_format) for x in t[1:])
    return gi, gw, go, gm, gb


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    t, p = split_args(inputs)
    ctx.save_for_backward(*t)
    ctx.params = p


def _backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
    p: DeformParams = ctx.params
    gi, gw, go, gm, gb = deform_conv2d_backward(grad_out, *ctx.saved_tensors, *p)
    return (gi, gw, go, gm if p.use_mask else None, gb) + (None,) * len(p)


deform_conv2d.register_autograd(_backward, setup_context=_setup_context)

# Autocast. CPU under bfloat16 (the CPU's reduced precision): input, weight and bias are
# cast to bfloat16 and offset and mask to float32 (they are sample positions, which
# bfloat16 would round to 1/8 of a pixel beyond |offset| >= 16); the output is bfloat16,
# as torch's conv2d's; the CPU kernels multiply in bfloat16 where the CPU has AVX512-BF16
# (see deform_cpu), forward and backward. The backward op is not cast on CPU: it takes
# the dtypes its forward saved, whether or not it runs under autocast (which is switched
# off inside both ops' kernels). Every other autocast (CUDA, float16 on CPU): every
# floating argument is cast to float32 and the output is float32, as torchvision's
# deform_conv2d. float64 arguments are never cast (as torch's autocast).


def _cast(x: Tensor, dtype: torch.dtype) -> Tensor:
    return x.to(dtype) if x.is_floating_point() and x.dtype != torch.float64 else x


def _autocast_cpu(keyset: Any, *args: Any) -> Tensor:
    low = torch.get_autocast_dtype("cpu")
    sampling = torch.float32  # offset, mask
    values = low if low == torch.bfloat16 else torch.float32  # input, weight, bias
    input, weight, offset, mask, bias, *params = args
    cast = (_cast(input, values), _cast(weight, values), _cast(offset, sampling),
            _cast(mask, sampling), _cast(bias, values))  # fmt: skip
    with torch.autocast("cpu", enabled=False):
        return deform_conv2d(*cast, *params)


_autocast_lib = torch.library.Library("omniconv", "IMPL")
_autocast_lib.impl("deform_conv2d", _autocast_cpu, "AutocastCPU", with_keyset=True)


def _autocast_backward_cpu(keyset: Any, *args: Any) -> _GRADS:
    """No casts: autocast only switched off, so that the torch ops inside the kernels
    (the chunked path's matrix products, say) run in the dtypes the kernels chose."""
    with torch.autocast("cpu", enabled=False):
        return deform_conv2d_backward(*args)


_autocast_lib.impl(
    "deform_conv2d_backward", _autocast_backward_cpu, "AutocastCPU", with_keyset=True
)
if torch.amp.is_autocast_available("cuda"):
    deform_conv2d.register_autocast("cuda", torch.float32)
    deform_conv2d_backward.register_autocast("cuda", torch.float32)

# ONNX export: the op is ONNX's DeformConv (opset 19) with either of torch's exporters;
# the TorchScript exporter's symbolic is registered here, the torch.export-based
# exporter's node is written by the op's callers (see deform_onnx)
deform_onnx.register_torchscript_symbolic("omniconv::deform_conv2d")
