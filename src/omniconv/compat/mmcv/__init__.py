"""mmcv front-end: ``omniconv.compat.mmcv.ops`` holds mmcv's deformable convolutions
(``DeformConv2d``, ``DeformConv2dPack``, ``ModulatedDeformConv2d``,
``ModulatedDeformConv2dPack``, ``deform_conv2d``, ``modulated_deform_conv2d``) with
mmcv's signatures, defaults, parameter names, initialisation, offset/mask conventions,
argument rules and state dicts, on omniconv's kernels: no compiled mmcv needed.

:func:`upgrade_state_dict` renames the offset-predictor keys of pre-version-2
checkpoints (``<layer>_offset.*``) for ``torch.nn.Module.load_state_dict``;
:func:`map_checkpoint` does that and what mmcv's ``load_checkpoint`` does to the keys.
"""

from . import ops
from ._checkpoint import map_checkpoint
from ._state import upgrade_state_dict

__all__ = ["map_checkpoint", "ops", "upgrade_state_dict"]
