"""``mxnet.gluon.contrib.cnn``: ``DeformableConvolution`` (DCNv1) and
``ModulatedDeformableConvolution`` (DCNv2), MXNet 1.9.1's blocks on PyTorch."""

from .conv_layers import DeformableConvolution, ModulatedDeformableConvolution

__all__ = ["DeformableConvolution", "ModulatedDeformableConvolution"]
