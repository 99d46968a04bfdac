"""ONNX export of models built from omniconv layers (``pip install omniconv[onnx]``).

``torch.onnx.export(model, args, "model.onnx")`` needs nothing from this module: with
either of torch's exporters every deformable conv becomes one ONNX ``DeformConv`` node
(opset 19; :mod:`omniconv.kernels.deform_onnx`) and everything else torch's standard ops.

This module has the one thing the torch.export-based exporter takes per call:
:data:`TRANSLATIONS`, its ``custom_translation_table`` for the ``omniconv::deform_conv2d``
op. It is needed only to export an ``ExportedProgram`` made beforehand with
``torch.export.export`` (whose graph holds the op itself)::

    ep = torch.export.export(model, args)
    torch.onnx.export(ep, custom_translation_table=omniconv.onnx.TRANSLATIONS)
"""

from __future__ import annotations

from typing import Any

import torch
from onnxscript import opset19

from .kernels import deform_onnx

__all__ = ["TRANSLATIONS"]


def _deform_conv2d(
    input: Any, weight: Any, offset: Any, mask: Any, bias: Any,
    stride_h: int, stride_w: int, pad_h: int, pad_w: int, dil_h: int, dil_w: int,
    use_mask: bool, im2col_step: int,
) -> Any:  # fmt: skip
    """``omniconv::deform_conv2d`` (the op's arguments as the exporter passes them: graph
    values, then ints) as ``DeformConv``; ``im2col_step`` only bounds memory."""
    attrs = deform_onnx.attributes(
        (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w), input.shape[1], weight.shape,
        offset.shape[1],
    )  # fmt: skip
    return opset19.DeformConv(input, weight, offset, bias, mask if use_mask else None, **attrs)


#: ``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)``
TRANSLATIONS: dict[Any, Any] = {torch.ops.omniconv.deform_conv2d.default: _deform_conv2d}
