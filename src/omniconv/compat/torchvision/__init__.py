"""torchvision front-end: ``from omniconv.compat.torchvision import ops`` in place of
``from torchvision import ops`` for deformable convolution.

* :func:`ops.deform_conv2d` / :class:`ops.DeformConv2d`: ``torchvision.ops``' signatures,
  defaults, parameter names, initialisation, state dicts and repr. The deformable-group
  count comes from the offset and the mask is optional, at each call. Scriptable with
  ``torch.jit.script`` (the functional calls the registered op
  ``torch.ops.omniconv.deform_conv2d``), traceable, ``torch.compile`` (fullgraph) and
  ``torch.export`` friendly; under autocast the output has the input's dtype.
* Errors: torchvision's words; a bad tensor is a :class:`TorchvisionValueError` /
  :class:`TorchvisionTypeError`, each a ``RuntimeError`` (torchvision's type) and a
  ``ValueError`` / ``TypeError``; the constructor raises ``ValueError``.
"""

from . import ops
from ._errors import TorchvisionError, TorchvisionTypeError, TorchvisionValueError

__all__ = ["TorchvisionError", "TorchvisionTypeError", "TorchvisionValueError", "ops"]
