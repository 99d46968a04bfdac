"""What every Paddle dense conv layer shares (``fluid.layers.conv2d`` /
``conv2d_transpose``, ``fluid.dygraph.Conv2D`` / ``Conv2DTranspose``, ``paddle.nn.Conv2D``
/ ``Conv2DTranspose``): Paddle's initialisers, its ``'SAME'`` rules, the input dtype check
and the ``output_size`` rule, with Paddle's words.

Paddle's ``'SAME'``:

* ``conv2d``: TensorFlow's rule (omniconv's ``'same'``), with the dilation taken as 1
  (Paddle ignores it under ``'SAME'``).
* ``conv2d_transpose``: the padding ``'same'`` gives a convolution of the *input* size,
  dilation 1 (:func:`omniconv._shapes.paddle_transpose_same_padding`). With stride 1 it
  does not depend on the input and is resolved at construction; with a stride it is
  resolved at each call from the input size. (omniconv's own ``'same'`` for a transposed
  conv is TensorFlow's: output ``H * s``; Paddle's differs when ``s`` does not divide
  ``H``.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor

from ... import nn as onn
from ..._args import Pad4, Pair
from ..._shapes import conv_transpose_output_size, paddle_transpose_same_padding
from .._errors import renamed_args
from .._frontend import FrontendMixin, Initializer
from ._initializer import Constant, Xavier, conv_normal
from ._padding import check_float_input

__all__ = [
    "FLOAT_DTYPES",
    "PaddleConv2D",
    "PaddleConv2DTranspose",
    "check_output_size",
    "conv_padding_args",
    "transpose_padding_args",
]

#: the input dtypes Paddle's conv layers declare (``float16``, ``uint16`` = bfloat16, ...)
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def conv_padding_args(algorithm: str, pads: Pad4, dilation: Pair) -> tuple[Pad4 | str, Pair]:
    """``(padding, dilation)`` for :class:`omniconv.nn.Conv2d` from Paddle's padding:
    ``'SAME'`` is omniconv's ``'same'`` with dilation 1."""
    if algorithm == "SAME":
        return "same", (1, 1)
    return pads, dilation


def transpose_padding_args(
    algorithm: str, pads: Pad4, kernel: Pair, stride: Pair, dilation: Pair
) -> tuple[Pad4, Pair, bool]:
    """``(padding, dilation, from_input)`` for :class:`omniconv.nn.ConvTranspose2d` from
    Paddle's padding; ``from_input``: Paddle's ``'SAME'`` with a stride, resolved at each
    call from the input size (the padding given is then a placeholder)."""
    if algorithm != "SAME":
        return pads, dilation, False
    if stride == (1, 1):
        return paddle_transpose_same_padding((1, 1), kernel, stride), (1, 1), False
    return (0, 0, 0, 0), (1, 1), True


def check_output_size(size: list[int], infer: Pair, stride: Pair) -> None:
    """Paddle's rule and words: ``infer <= output_size < infer + stride`` per dimension."""
    for i in range(2):
        s = stride[i]
        if size[i] < infer[i]:
            raise ValueError(
                "output_size of Op(ConvTransposeOp) should not be less than the inferred "
                f"output size. But received output_size = [{size}], whose dim {i} is less "
                f"than the inferred output size [{infer[i]}]"
            )
        if size[i] >= infer[i] + s:
            raise ValueError(
                "output_size of Op(ConvTransposeOp) should be less than inferred size + "
                f"stride. But received output_size = [{size}], whose dim {i} is not less "
                f"than the inferred output size ({infer[i]}) + stride ({s}) = {infer[i] + s}"
            )


class PaddleConv2D(FrontendMixin, onn.Conv2d):
    """A Paddle ``conv2d`` layer: weight ``[O, C_in/groups, kh, kw]`` ~
    ``Normal(0, sqrt(2/(kh*kw*C_in)))`` (the full ``C_in``), bias ``[O]`` = 0; the input
    dtype is checked first, with Paddle's words."""

    default_initializers: ClassVar[Mapping[str, Initializer]] = {
        "weight": conv_normal,
        "bias": Constant(0.0),
    }
    #: (argument name, op name, allowed dtypes) of Paddle's input dtype check
    input_check: ClassVar[tuple[str, str, tuple[torch.dtype, ...]]] = (
        "x",
        "conv2d",
        FLOAT_DTYPES,
    )

    def forward(self, input: Tensor) -> Tensor:
        check_float_input(input, *self.input_check)
        with renamed_args({"input": self.input_check[0]}):
            return super().forward(input)


class PaddleConv2DTranspose(FrontendMixin, onn.ConvTranspose2d):
    """A Paddle ``conv2d_transpose`` layer: weight ``[C_in, O/groups, kh, kw]`` with
    Paddle's default Xavier-uniform (``limit = sqrt(6/(fan_in + fan_out))``, ``fan_in =
    (O/groups)*kh*kw``, ``fan_out = C_in*kh*kw``: Paddle's fans of the transposed layout),
    bias ``[O]`` = 0; Paddle's ``'SAME'`` (module docstring) and ``output_size`` rule."""

    default_initializers: ClassVar[Mapping[str, Initializer]] = {
        "weight": Xavier(uniform=True),
        "bias": Constant(0.0),
    }
    input_check: ClassVar[tuple[str, str, tuple[torch.dtype, ...]]] = (
        "x",
        "conv2d_transpose",
        FLOAT_DTYPES,
    )
    #: Paddle's 'SAME' with a stride: the padding of each call comes from the input size
    _same_from_input: bool = False

    def _paddle_same(self, from_input: bool) -> None:
        """Record (after construction) that the padding is Paddle's ``'SAME'`` resolved
        at each call; the ``padding`` attribute then reads ``'SAME'``."""
        self._same_from_input = from_input
        if from_input:
            self.padding = "SAME"

    def _spatial(self, input: Tensor) -> Pair:
        h, w = input.shape[1:3] if self.layout == "NHWC" else input.shape[2:4]
        return int(h), int(w)

    def _padding_for(self, input: Tensor) -> Pad4:
        if not self._same_from_input:
            return self._resolved_padding
        return paddle_transpose_same_padding(self._spatial(input), self.kernel_size, self.stride)

    def _paddle_forward(self, input: Tensor, output_size: list[int] | None) -> Tensor:
        """Paddle's dtype check, its ``output_size`` rule and words, then the module."""
        check_float_input(input, *self.input_check)
        if output_size is not None and input.dim() == 4:
            infer = conv_transpose_output_size(
                self._spatial(input), self.kernel_size, self.stride, self._padding_for(input),
                self.dilation,
            )  # fmt: skip
            check_output_size(output_size, infer, self.stride)
        with renamed_args({"input": self.input_check[0]}):
            return onn.ConvTranspose2d.forward(self, input, output_size)
