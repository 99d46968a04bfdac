"""MXNet Gluon (1.9.1) on PyTorch: ``from omniconv.compat.gluon import nn`` works like
``from mxnet.gluon import nn`` (``Conv2D``, ``Conv2DTranspose``),
``from omniconv.compat.gluon.contrib import cnn`` like ``from mxnet.gluon.contrib import cnn``
(``DeformableConvolution``, ``ModulatedDeformableConvolution``), and
``omniconv.compat.gluon.init`` is ``mxnet.init``.

Blocks are ``torch.nn.Module`` s; parameters are Gluon :class:`Parameter` views of the
torch parameters; ``save_parameters`` / ``load_parameters`` / ``export`` read and write
MXNet's own binary ``.params`` files (byte-compatible with MXNet 1.x);
:func:`map_checkpoint` maps such a file's names and layouts (``arg:conv0_weight``,
``gamma`` / ``beta``, NHWC weights) onto torch-style modules.

Errors have MXNet's words and types, each also a ``ValueError`` / ``TypeError``:
:class:`MXNetValueError` / :class:`MXNetTypeError` (MXNet's ``MXNetError``) and
:class:`GluonAssertionError` (where Gluon asserts: an ``AssertionError``).
"""

from . import contrib, init, nn
from ._checkpoint import map_checkpoint
from ._errors import (
    DeferredInitializationError,
    GluonAssertionError,
    MXNetError,
    MXNetTypeError,
    MXNetValueError,
)
from ._ndarray_file import dumps as save_bytes
from ._ndarray_file import loads as load_bytes
from .block import Block, HybridBlock, HybridSequential, NameManager, Sequential
from .init import (
    Bilinear,
    Constant,
    Initializer,
    MSRAPrelu,
    Normal,
    One,
    Orthogonal,
    Uniform,
    Xavier,
    Zero,
)
from .nn import Activation, Conv2D, Conv2DTranspose
from .parameter import Parameter, ParameterDict

__all__ = [
    "Activation",
    "Bilinear",
    "Block",
    "Constant",
    "Conv2D",
    "Conv2DTranspose",
    "DeferredInitializationError",
    "GluonAssertionError",
    "HybridBlock",
    "HybridSequential",
    "Initializer",
    "MSRAPrelu",
    "MXNetError",
    "MXNetTypeError",
    "MXNetValueError",
    "NameManager",
    "Normal",
    "One",
    "Orthogonal",
    "Parameter",
    "ParameterDict",
    "Sequential",
    "Uniform",
    "Xavier",
    "Zero",
    "contrib",
    "init",
    "load_bytes",
    "map_checkpoint",
    "nn",
    "save_bytes",
]
