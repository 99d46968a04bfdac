"""PaddlePaddle front-end: Paddle 1.x ``fluid`` and 2.x names on omniconv.

Flat names (``from omniconv.compat.paddle import Program, img_conv_group, ...``) and
module-path mirrors, so that Paddle code runs with only its import changed::

    from omniconv.compat.paddle import fluid          # was: import paddle.fluid as fluid
    fluid.layers.{data, conv2d, conv2d_transpose, deformable_conv}, fluid.nets.img_conv_group,
    fluid.dygraph.{guard, Conv2D, Conv2DTranspose}, fluid.dygraph.nn.{Conv2D, Conv2DTranspose},
    fluid.dygraph.base.to_variable, fluid.dygraph.to_variable, fluid.ParamAttr,
    fluid.initializer.{Normal, Uniform, Constant, Xavier, MSRA, TruncatedNormal,
                       NumpyArrayInitializer, Assign, *Initializer}

    from omniconv.compat.paddle import nn              # was: import paddle.nn as nn
    nn.Conv2D, nn.Conv2DTranspose, nn.functional.{conv2d, conv2d_transpose}

    from omniconv.compat.paddle.vision.ops import deform_conv2d, DeformConv2D

Fluid functions that create parameters run inside a :class:`Program` (an ``nn.Module``
built from a function written with these calls; see :mod:`._program`); outside one
they run once with fresh parameters.

:func:`map_checkpoint` turns a Paddle checkpoint's names and layouts (``.pdparams``:
static ``conv2d_0.w_0`` names for a :class:`Program`, 2.x ``_mean`` / ``_variance`` and
``Linear`` weights for torch modules) into a state dict these modules load.
"""

from . import fluid, nn, vision
from ._activation import ACTIVATIONS
from ._checkpoint import map_checkpoint
from ._common import PaddleAssertionError, PaddleZeroDivisionError
from ._dygraph import Conv2D, Conv2DTranspose, guard, to_variable
from ._fluid_conv import conv2d, conv2d_transpose
from ._initializer import (
    MSRA,
    Assign,
    Constant,
    Initializer,
    Normal,
    NumpyArrayInitializer,
    ParamAttr,
    TruncatedNormal,
    Uniform,
    Xavier,
)
from ._layers import BatchNorm, Dropout
from ._program import Program, data
from ._static import FluidDeformConv, deformable_conv, img_conv_group
from ._vision import DeformConv2D, deform_conv2d

__all__ = [
    "ACTIVATIONS",
    "MSRA",
    "Assign",
    "BatchNorm",
    "Constant",
    "Conv2D",
    "Conv2DTranspose",
    "DeformConv2D",
    "Dropout",
    "FluidDeformConv",
    "Initializer",
    "Normal",
    "NumpyArrayInitializer",
    "PaddleAssertionError",
    "PaddleZeroDivisionError",
    "ParamAttr",
    "Program",
    "TruncatedNormal",
    "Uniform",
    "Xavier",
    "conv2d",
    "conv2d_transpose",
    "data",
    "deform_conv2d",
    "deformable_conv",
    "fluid",
    "guard",
    "img_conv_group",
    "map_checkpoint",
    "nn",
    "to_variable",
    "vision",
]
