"""``paddle.vision`` mirror: ``ops``."""

from . import ops

__all__ = ["ops"]
