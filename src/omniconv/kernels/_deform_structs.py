"""The named structures the numba kernels of :mod:`._deform_numba` take.

Numba compiles a ``NamedTuple`` into a plain struct: reading a field costs nothing, and a
kernel cached on disk is found again for the same field types. Every array is a numpy view
of a torch tensor that the host side (:mod:`.deform_cpu`) made C-contiguous or checked to
be, in the compute dtype (float32 or float64; half precision is computed in float32).

Notation: ``N`` images of ``C`` channels, ``H x W`` pixels; ``O`` output channels in
``G`` convolution groups (``Cg = C / G`` input channels each); ``dg`` deformable groups
(``C / dg`` input channels each); ``K = kh * kw`` taps; ``Ho x Wo`` output pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Chunk", "Geometry", "OffsetGrads", "Output", "Rows", "Sampling", "Tiles"]


class Geometry(NamedTuple):
    """The sizes of one deformable convolution."""

    height: int  #: ``H``
    width: int  #: ``W``
    channels: int  #: ``C``, all input channels (also where a kernel sees only a block)
    group_channels: int  #: ``Cg = C / G``, input channels per convolution group
    deform_channels: int  #: ``C / dg``, input channels per deformable group
    taps: int  #: ``K = kh * kw``
    out_width: int  #: ``Wo``
    #: channels per chunk of the offset / mask gradient reduction: chunk ``j`` is channels
    #: ``j*reduce_channels : (j + 1)*reduce_channels``; each chunk's partial sums have a
    #: slot of their own (:class:`OffsetGrads`), added up in chunk order
    reduce_channels: int


class Sampling(NamedTuple):
    """Where each output pixel samples the input; read only.

    The sample of tap ``k`` of deformable group ``d`` at output pixel ``(y, x)`` of image
    ``n`` is at row ``base_h[k, y] + offset[n, d*2K + 2k, y, x]``, column
    ``base_w[k, x] + offset[n, d*2K + 2k + 1, y, x]``, weighted by
    ``mask[n, d*K + k, y, x]`` (by 1 when ``use_mask`` is false)."""

    base_h: np.ndarray  #: ``(K, Ho)`` undeformed rows, in the offset dtype
    base_w: np.ndarray  #: ``(K, Wo)`` undeformed columns
    offset: np.ndarray  #: ``(N, 2*dg*K, Ho, Wo)``
    mask: np.ndarray  #: ``(N, dg*K, Ho, Wo)``, or a ``(1, 1, 1, 1)`` placeholder
    use_mask: bool


class Rows(NamedTuple):
    """Input channels ``first_channel : first_channel + width`` (or their gradient) as
    flat NHWC rows: channel ``c`` of pixel ``i = (n*H + y)*W + x`` is
    ``data[i*width + c - first_channel]``."""

    data: np.ndarray  #: ``(N*H*W*width,)``
    width: int  #: channels in the block
    first_channel: int


class Chunk(NamedTuple):
    """Output pixels ``first_pixel : end_pixel`` (flat ``y*Wo + x``) of images
    ``first_image, first_image + 1, ...``: row ``r`` of the chunk's column matrix is pixel
    ``first_pixel + r % (end_pixel - first_pixel)`` of image
    ``first_image + r // (end_pixel - first_pixel)``."""

    first_image: int
    first_pixel: int
    end_pixel: int


class Output(NamedTuple):
    """The output or its gradient, flat: ``(n, y, x, o)`` order when ``channels_last``,
    else ``(n, o, y, x)``."""

    data: np.ndarray  #: 1-D, ``N*O*Ho*Wo`` entries
    channels_last: bool


class OffsetGrads(NamedTuple):
    """Zero-initialised partial sums of the offset and mask gradients, one slot per chunk
    of ``Geometry.reduce_channels`` input channels (whichever thread computes it); the
    host adds the slots up in chunk order, so the sums never depend on how the channels
    were split between threads."""

    offset: np.ndarray  #: ``(N, 2*dg*K, Ho, Wo, chunks)``: a chunk's slot is the last index
    mask: np.ndarray  #: ``(N, dg*K, Ho, Wo, chunks)``, or ``(1, 1, 1, 1, chunks)`` unused


class Tiles(NamedTuple):
    """Per-thread scratch of the fused kernels."""

    buffers: np.ndarray  #: ``(threads, floats per thread)``
    rows: int  #: output pixels per tile
