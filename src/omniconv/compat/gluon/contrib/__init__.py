"""``mxnet.gluon.contrib`` subset: :mod:`.cnn` (the deformable convolutions)."""

from . import cnn

__all__ = ["cnn"]
