"""``paddle.fluid.nets`` mirror: ``img_conv_group``."""

from .._static import img_conv_group

__all__ = ["img_conv_group"]
