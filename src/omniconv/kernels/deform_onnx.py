"""The ``omniconv::deform_conv2d`` op as ONNX's standard ``DeformConv`` (opset 19).

``torch.onnx.export`` writes one ``DeformConv`` node per deformable conv, with either of
torch's exporters and nothing for the user to register:

* the torch.export-based exporter (``dynamo=True``, the default since torch 2.9): while it
  captures a model, :func:`exporting` is true and the two callers of the op
  (:func:`omniconv.functional.deform_conv.deform_conv2d_canonical`, which every module and
  front-end reaches, and the torchvision front-end's functional) call
  :func:`deform_conv2d_node` instead, which records the node with torch's public
  :func:`torch.onnx.ops.symbolic`. (That exporter has no public global registry a library
  can add its ops to; its per-call ``custom_translation_table`` is
  :data:`omniconv.onnx.TRANSLATIONS`, needed only to export an ``ExportedProgram``
  captured outside ``torch.onnx.export``.)
* the TorchScript-based exporter (``dynamo=False``, deprecated but shipped): the op's
  symbolic, :func:`torchscript_symbolic`, registered when the op is
  (:func:`register_torchscript_symbolic`).

The mapping (:func:`attributes`, shared by both paths and by ``TRANSLATIONS``):
``DeformConv``'s inputs ``X, W, offset, B, mask`` are the op's ``input, weight, offset,
bias, mask``; attributes ``kernel_shape = W.shape[2:]``, ``group = C_in / W.shape[1]``,
``offset_group = offset.shape[1] / (2*kh*kw)``, ``strides``, ``dilations`` and
``pads = [ph, pw, ph, pw]`` (the op's padding is symmetric; a front-end's one-sided
padding is a ``Pad`` before it).

ONNX's ``DeformConv`` computes what the op computes. Its offset layout is the op's:
channel ``g*2*kh*kw + 2*k`` is the row offset of tap ``k`` in offset group ``g``, the next
one the column offset (ONNX's reference reshapes the offset to
``(N, offset_group, kh, kw, 2, H_out, W_out)``); offset group ``g`` takes the contiguous
input channels ``[g*C/offset_group, (g+1)*C/offset_group)``; the mask has
``offset_group*kh*kw`` channels in the same order and defaults to ones (DCNv1). Its
sampling is the op's bilinear rule: zero outside the open box ``(-1, H) x (-1, W)``, each
corner off the image counting zero (onnxruntime's CPU kernel tests ``h <= -1 || h >= H``
and drops off-image corners; ONNX's reference samples with ``GridSample(align_corners=1)``
and zero padding, the same function). ``B`` is left out for a layer without bias and
``mask`` for DCNv1 (the TorchScript exporter passes the op's zero bias).
"""

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import is_fake

__all__ = [
    "OPSET",
    "attributes",
    "deform_conv2d_node",
    "exporting",
    "register_torchscript_symbolic",
    "torchscript_symbolic",
]

#: the first ONNX opset with ``DeformConv``
OPSET = 19

_Pair = tuple[int, int]


def attributes(
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    in_channels: int,
    weight_shape: Sequence[int],
    offset_channels: int,
) -> dict[str, Any]:
    """``DeformConv``'s attributes for the op's arguments (channel counts as ints)."""
    kh, kw = int(weight_shape[2]), int(weight_shape[3])
    return {
        "dilations": [int(dilation[0]), int(dilation[1])],
        "group": int(in_channels) // int(weight_shape[1]),
        "kernel_shape": [kh, kw],
        "offset_group": int(offset_channels) // (2 * kh * kw),
        "pads": [int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1])],
        "strides": [int(stride[0]), int(stride[1])],
    }


@torch.jit.unused
def exporting(input: Tensor) -> bool:
    """True while the torch.export-based ``torch.onnx.export`` captures the model that
    calls the op on ``input``.

    ``torch.onnx.is_in_onnx_export()`` is a process-wide flag, set under both exporters,
    and ``torch.compile`` reads it as False. The capture runs the model on fake tensors,
    so a real ``input`` (the TorchScript exporter traces real tensors; an eager call on
    another thread during an export) runs the op.
    """
    return torch.onnx.is_in_onnx_export() and is_fake(input)


@torch.jit.unused
def deform_conv2d_node(
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    mask: Tensor | None,
    bias: Tensor | None,
    stride: _Pair,
    padding: _Pair,
    dilation: _Pair,
) -> Tensor:
    """One ``DeformConv`` node for the exporter's graph, with the op's output shape.

    The arguments are the op's, checked by the caller; ``mask`` None is DCNv1, ``bias``
    None leaves ``B`` out. Only meaningful while :func:`exporting`: outside an export the
    node's eager value is torch's placeholder (zeros), not the convolution.
    """
    attrs = attributes(stride, padding, dilation, input.shape[1], weight.shape, offset.shape[1])
    shape = (input.shape[0], weight.shape[0], offset.shape[2], offset.shape[3])
    return torch.onnx.ops.symbolic(
        "DeformConv", [input, weight, offset, bias, mask], attrs, dtype=input.dtype, shape=shape
    )


def torchscript_symbolic(g: Any, *args: Any) -> Any:
    """The op's symbolic for the TorchScript exporter: ``g.op("DeformConv", ...)``.

    ``args`` are the op's: ``input, weight, offset, mask, bias`` as graph values, then
    its constant ints and flag (``im2col_step`` only bounds memory; the mask's value is
    dropped for DCNv1).
    """
    from torch.onnx.symbolic_helper import parse_args

    return parse_args(*"vvvvviiiiiibi")(_torchscript_node)(g, *args)


def _torchscript_node(
    g: Any, input: Any, weight: Any, offset: Any, mask: Any, bias: Any,
    stride_h: int, stride_w: int, pad_h: int, pad_w: int, dil_h: int, dil_w: int,
    use_mask: bool, im2col_step: int,
) -> Any:  # fmt: skip
    if g.opset < OPSET:
        raise ValueError(
            f"`opset_version` must be >= {OPSET} (the first opset with ONNX DeformConv) to "
            f"export omniconv::deform_conv2d; received opset_version={g.opset}"
        )
    in_channels = input.type().varyingSizes()[1]
    offset_channels = offset.type().varyingSizes()[1]
    weight_shape = weight.type().varyingSizes()
    if in_channels is None or offset_channels is None or None in weight_shape:
        raise ValueError(
            "the input and offset channels and the weight shape must be static to export "
            "omniconv::deform_conv2d to ONNX DeformConv; received input channels="
            f"{in_channels}, offset channels={offset_channels}, weight shape={weight_shape}"
        )
    attrs = attributes(
        (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w), in_channels, weight_shape,
        offset_channels,
    )  # fmt: skip
    inputs = [input, weight, offset, bias] + ([mask] if use_mask else [])
    return g.op("DeformConv", *inputs, **{f"{k}_i": v for k, v in attrs.items()})


def register_torchscript_symbolic(qualified_name: str) -> None:
    """Register :func:`torchscript_symbolic` for the op with the TorchScript exporter (for
    every opset: below :data:`OPSET` it raises an error naming the opset)."""
    register = getattr(torch.onnx, "register_custom_op_symbolic", None)
    if register is not None:  # the TorchScript exporter still ships
        register(qualified_name, torchscript_symbolic, 1)
