"""omniconv: the 2-D convolution layers of PaddlePaddle, MXNet Gluon and MegEngine on
PyTorch, with each framework's exact numbers, and a portable deformable convolution."""

from . import backends, functional, nn

__version__ = "0.1.0"
__all__ = ["__version__", "backends", "functional", "nn"]
