"""torchvision's exception types, each also a ``ValueError`` / ``TypeError`` (the
front-ends' error policy, :mod:`omniconv.compat._errors`).

``torchvision.ops.deform_conv2d`` checks one thing in Python (``raise RuntimeError``: the
offset has fewer than ``2*kh*kw`` channels) and the rest in C++ (``TORCH_CHECK``, which
reaches Python as ``RuntimeError``). So a bad tensor is a ``RuntimeError`` there, and code
written for torchvision catches that (its own test suite does). These classes keep that
type and add the standard one: a bad value (a shape, a size, a device) is also a
``ValueError``, a tensor of the wrong type or dtype also a ``TypeError``.

The module's constructor raises torchvision's plain ``ValueError`` (torchvision raises
it from Python there).
"""

from __future__ import annotations

__all__ = ["TorchvisionError", "TorchvisionTypeError", "TorchvisionValueError"]


class TorchvisionError(RuntimeError):
    """An error torchvision's ``deform_conv2d`` raises as ``RuntimeError``."""


class TorchvisionValueError(TorchvisionError, ValueError):
    """A :class:`TorchvisionError` about a bad value (a tensor's shape or device, a
    stride, padding or dilation)."""


class TorchvisionTypeError(TorchvisionError, TypeError):
    """A :class:`TorchvisionError` about a value of the wrong type (not a tensor, not a
    floating-point dtype, not the input's dtype)."""
