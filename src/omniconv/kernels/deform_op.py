"""The ``omniconv::deform_conv2d`` custom op: one registration, kernels chosen inside.

Registering through :mod:`torch.library` (with a fake implementation and autograd)
makes the op opaque to ``torch.compile`` / ``torch.export`` tracing, so traced graphs
keep one node per deformable conv whatever kernel runs it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import deform_cpu, deform_torch
from .deform_cpu import output_memory_format

__all__ = ["deform_conv2d"]


@torch.library.custom_op("omniconv::deform_conv2d", mutates_args=())
def deform_conv2d(
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    mask: Tensor,
    bias: Tensor,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dil_h: int,
    dil_w: int,
    use_mask: bool,
    im2col_step: int,
) -> Tensor:
    """Kernel entry point; arguments are already validated by the functional.

    The numba CPU path (:mod:`.deform_cpu`) where it applies, else the pure-PyTorch
    path (any device/dtype). The output has the input's memory format (channels_last
    in, channels_last out)."""
    args = (input, weight, offset, mask, bias,
            stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, use_mask, im2col_step)  # fmt: skip
    if deform_cpu.applicable(input, weight, offset, mask, bias):
        try:
            return deform_cpu.deform_conv2d_forward(*args)
        except Exception as exc:  # a JIT/cache failure: never worse than the pure path
            deform_cpu.disable(exc)
    out = deform_torch.deform_conv2d_forward(*args)
    return out.contiguous(memory_format=output_memory_format(input))


@deform_conv2d.register_fake
def _(input, weight, offset, mask, bias, *args):
    shape = (input.shape[0], weight.shape[0], offset.shape[2], offset.shape[3])
    return input.new_empty(shape).contiguous(memory_format=output_memory_format(input))


@torch.library.custom_op("omniconv::deform_conv2d_backward", mutates_args=())
def deform_conv2d_backward(
    grad_out: Tensor,
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    mask: Tensor,
    bias: Tensor,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dil_h: int,
    dil_w: int,
    use_mask: bool,
    im2col_step: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients for (input, weight, offset, mask, bias); the input gradient has the
    input's memory format, the others are contiguous."""
    args = (grad_out, input, weight, offset, mask, bias,
            stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, use_mask, im2col_step)  # fmt: skip
    if deform_cpu.applicable(grad_out, input, weight, offset, mask, bias):
        try:
            return deform_cpu.deform_conv2d_backward(*args)
        except Exception as exc:
            deform_cpu.disable(exc)
    gi, gw, go, gm, gb = deform_torch.deform_conv2d_backward(*args)
    return gi.contiguous(memory_format=output_memory_format(input)), gw, go, gm, gb


@deform_conv2d_backward.register_fake
def _(grad_out, input, weight, offset, mask, bias, *args):
    return (
        torch.empty_like(input, memory_format=output_memory_format(input)),
        torch.empty_like(weight, memory_format=torch.contiguous_format),
        torch.empty_like(offset, memory_format=torch.contiguous_format),
        torch.empty_like(mask, memory_format=torch.contiguous_format),
        torch.empty_like(bias, memory_format=torch.contiguous_format),
    )


def _setup_context(ctx, inputs, output):
    input, weight, offset, mask, bias, *params = inputs
    ctx.save_for_backward(input, weight, offset, mask, bias)
    ctx.params = params


def _backward(ctx, grad_out):
    input, weight, offset, mask, bias = ctx.saved_tensors
    use_mask = ctx.params[6]
    gi, gw, go, gm, gb = deform_conv2d_backward(
        grad_out, input, weight, offset, mask, bias, *ctx.params
    )
    return (gi, gw, go, gm if use_mask else None, gb) + (None,) * len(ctx.params)


deform_conv2d.register_autograd(_backward, setup_context=_setup_context)

# Autocast: the op computes in float32 (every floating argument is cast to float32, the
# output is float32), as torchvision's deform_conv2d does. On CPU the kernels compute half
# precision in float32 anyway, so this skips two conversions; and offsets are sample
# positions, which bfloat16 would round to 1/8 of a pixel beyond |offset| >= 16.
for _device in ("cpu", "cuda"):
    if torch.amp.is_autocast_available(_device):
        deform_conv2d.register_autocast(_device, torch.float32)
        deform_conv2d_backward.register_autocast(_device, torch.float32)
