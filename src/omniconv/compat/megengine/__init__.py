"""MegEngine front-end: ``import omniconv.compat.megengine as mge`` and
``import omniconv.compat.megengine.module as M`` run MegEngine code on PyTorch.

* :class:`Tensor` / :func:`tensor` / :class:`Parameter`: :class:`torch.Tensor`
  subclasses whose ``.numpy()`` works on tensors that require grad; ops keep the type.
* :class:`module.Conv2d`: ``megengine.module.Conv2d`` (MegEngine's argument rules, errors,
  5-D grouped weight and ``(1, C, 1, 1)`` bias, init, repr, sorted numpy ``state_dict``),
  computed by :class:`omniconv.nn.Conv2d` / :func:`omniconv.functional.conv2d`;
  :class:`module.ConvTranspose2d` and :class:`module.DeformableConv2d` likewise, over
  :class:`omniconv.nn.ConvTranspose2d` / :class:`omniconv.nn.DeformConv2d`.
* :mod:`functional`: ``conv2d``, ``conv_transpose2d`` and ``deformable_conv2d`` (with
  ``conv_mode`` / ``compute_mode``) and ``pad``.
* :mod:`config`: the global ``_compute_mode`` override.
* :func:`megengine_to_torch` / :func:`torch_to_megengine`: state-dict layout transforms;
  :func:`map_checkpoint`: a MegEngine checkpoint for torch-layout modules, no model needed.

``m.weight`` / ``m.bias`` have MegEngine's shapes. Errors have MegEngine's words and types,
each also a ``ValueError`` / ``TypeError`` (:class:`MegEngineAssertionError` where MegEngine
asserts, :class:`MegEngineKeyError` for state-dict keys, :class:`MegEngineRuntimeError` for
megdnn's checks), checked at construction.
Documented differences from MegEngine:
``conv_mode='convolution'`` computes a true convolution (MegEngine raises
``AttributeError``); loading casts to the parameter's dtype; numpy float64 / int64 data
becomes float32 / int32 unless ``dtype`` is given; ``conv_transpose2d`` applies its whole
``output_padding`` for any weight (MegEngine 1.12-1.13: only when the height entry is
non-zero, and then wrongly for grouped weights); the deformable convolution also runs in
float64 (MegEngine: float32 only).
"""

from . import config, functional, module
from ._checkpoint import map_checkpoint
from ._errors import MegEngineAssertionError, MegEngineKeyError, MegEngineRuntimeError
from ._state import megengine_to_torch, torch_to_megengine
from ._tensor import Parameter, Tensor, tensor
from .module import Conv2d, ConvTranspose2d, DeformableConv2d, Module

__all__ = [
    "Conv2d",
    "ConvTranspose2d",
    "DeformableConv2d",
    "MegEngineAssertionError",
    "MegEngineKeyError",
    "MegEngineRuntimeError",
    "Module",
    "Parameter",
    "Tensor",
    "config",
    "functional",
    "map_checkpoint",
    "megengine_to_torch",
    "module",
    "tensor",
    "torch_to_megengine",
]
