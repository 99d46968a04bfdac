"""What mmcv's ``DeformConv2dFunction`` / ``ModulatedDeformConv2dFunction`` do on every
call, before the math: their Python checks, their dtype rule and the shape checks of
their C++ ops, with mmcv's words and exception types (:mod:`.._errors`); then one call
of :func:`omniconv.functional.deform_conv.deform_conv2d_canonical`, which checks the rest
of the tensors (dtypes, devices, mask shape) and computes.

Arguments arrive canonical (pairs and positive ints: the modules store them so, the
functionals normalise them once), so a module's call validates each thing once.
"""

from __future__ import annotations

from torch import Tensor

from ...._args import Pair, fail, type_name
from ...._shapes import conv_output_size, deform_offset_channels
from ....functional.deform_conv import deform_conv2d_canonical
from ..._errors import received
from .._errors import MMCVAssertionError, MMCVRuntimeError

__all__ = ["deform_call"]

#: the functional's sampling chunk for DCNv2, which mmcv computes image by image (the
#: chunk only bounds memory; the result does not depend on it)
_V2_STEP = 64


def _tensor(value: object, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        fail(name, "a torch.Tensor", type_name(value), exc=TypeError)
    return value


def deform_call(
    input: Tensor,
    offset: Tensor,
    mask: Tensor | None,
    weight: Tensor,
    bias: Tensor | None,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    groups: int,
    deform_groups: int,
    im2col_step: int | None,
) -> Tensor:
    """mmcv's deformable convolution call: DCNv1 (``im2col_step`` an int, ``mask`` and
    ``bias`` None) or DCNv2 (``im2col_step`` None, ``mask`` required).

    In the order mmcv checks them:

    * ``input`` must be 4-D (``ValueError``, mmcv's words);
    * dtypes: ``input`` takes ``offset``'s dtype, then ``weight`` (and, for DCNv2,
      ``mask`` and ``bias``) take ``input``'s (mmcv's ``type_as`` rule for mixed
      precision; differentiable, so each gradient comes back in its tensor's dtype);
    * the output ``(N, C_out, H_out, W_out)`` must be non-empty in every dimension, the
      batch included (``ValueError``, mmcv's words);
    * DCNv1: ``N`` divisible by ``min(im2col_step, N)`` (``AssertionError``);
    * the C++ op's shape checks (``RuntimeError``): input channels, deformable groups,
      the offset's channels, spatial size and batch.
    """
    modulated = im2col_step is None
    input = _tensor(input, "input")
    offset = _tensor(offset, "offset")
    weight = _tensor(weight, "weight")
    if modulated:
        mask = _tensor(mask, "mask")
    if bias is not None:
        bias = _tensor(bias, "bias")
    if input.dim() != 4:
        raise ValueError(f"Expected 4D tensor as input, got {input.dim()}D tensor instead.")
    if offset.is_floating_point():  # else the functional reports the offset's dtype
        input = input.type_as(offset)
        weight = weight.type_as(input)
        if mask is not None:
            mask = mask.type_as(input)
        if bias is not None:
            bias = bias.type_as(input)
    if weight.dim() != 4:
        message = "4D weight tensor (nOutputPlane,nInputPlane,kH,kW) expected, but got: "
        raise MMCVRuntimeError(message + str(weight.dim()))

    n, c_in, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    pad4 = (padding[0], padding[0], padding[1], padding[1])
    ho, wo = conv_output_size((h, w), (kh, kw), stride, pad4, dilation)
    if min(n, c_out, ho, wo) < 1:
        raise ValueError(
            received(
                f"convolution input is too small (output would be {n}x{c_out}x{ho}x{wo})",
                **{"input.shape": tuple(input.shape), "weight.shape": tuple(weight.shape)},
                stride=stride, padding=padding, dilation=dilation,
            )
        )  # fmt: skip
    if im2col_step is not None and n % min(im2col_step, n):
        message = "batch size must be divisible by im2col_step"
        raise MMCVAssertionError(received(message, batch_size=n, im2col_step=im2col_step))

    planes = c_per_group * groups
    if planes % deform_groups:
        message = "input channels must divide deformable group size"
        raise MMCVRuntimeError(
            received(message, **{"input channels": planes}, deform_groups=deform_groups)
        )
    if c_in != planes:
        if modulated:
            message = f"Input shape and kernel channels won't match: ({c_in} vs {planes})."
        else:
            message = f"invalid number of input planes, expected: {planes}, but got: {c_in}"
        raise MMCVRuntimeError(received(message, **{"weight.shape[1]": c_per_group}, groups=groups))
    if offset.dim() == 4:  # else the functional reports it
        if tuple(offset.shape[2:]) != (ho, wo):
            raise MMCVRuntimeError(
                f"invalid spatial size of offset, expected height: {ho} width: {wo}, but got "
                f"height: {offset.shape[2]} width: {offset.shape[3]}"
            )
        channels = deform_offset_channels(deform_groups, (kh, kw))
        if offset.shape[1] != channels:
            values = {"offset.shape[1]": int(offset.shape[1]), "deform_groups*2*kH*kW": channels}
            raise MMCVRuntimeError(received("invalid number of channels of offset", **values))
        if offset.shape[0] != n:
            message = "invalid batch size of offset"
            raise MMCVRuntimeError(
                received(message, **{"offset.shape[0]": int(offset.shape[0]), "batch_size": n})
            )

    return deform_conv2d_canonical(
        input, offset, weight, bias, stride, padding, dilation, mask,
        _V2_STEP if im2col_step is None else im2col_step, groups, deform_groups,
    )  # fmt: skip
