"""The fluid functions that create parameters: ``fluid.nets.img_conv_group`` and
``fluid.layers.deformable_conv`` (Paddle 1.x semantics; see :mod:`._program` for where
their parameters live)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ... import nn as onn
from ..._args import check_bool, check_positive_int, fail, type_name
from .._errors import received
from .._frontend import FrontendMixin, Initializer
from ._activation import LAYERS, get_activation
from ._common import FLUID_ARG_NAMES, PaddleAssertionError, check_use_cudnn, convert_to_list
from ._initializer import (
    Constant,
    apply_attr,
    apply_param_attrs,
    conv_normal,
    initializers_of,
    to_param_attr,
)
from ._layers import BatchNorm, Dropout
from ._program import Namer, layer

__all__ = ["FluidDeformConv", "deformable_conv", "img_conv_group"]

_DROP_EPS = 1e-5


def _check_input(value: Any, name: str, op: str) -> Tensor:
    if not isinstance(value, Tensor):
        fail(name, f"a float32/float64 tensor (input of {op})", type_name(value), exc=TypeError)
    if value.dtype not in (torch.float32, torch.float64):
        fail(f"{name}.dtype", "float32 or float64", value.dtype, exc=TypeError)
    if value.dim() != 4:
        fail(f"{name}.shape", "4-D (N, C, H, W)", tuple(value.shape))
    if value.shape[1] == 0:
        fail(f"{name}.shape[1]", "positive (the input channels)", 0)
    return value


# ---------------------------------------------------------------------------------------
# img_conv_group


def _conv_padding(value: Any, name: str = "padding") -> Any:
    """``fluid.layers.conv2d``'s padding rules -> omniconv's (4-tuple or ``'same'``)."""
    if isinstance(value, str):
        up = value.upper()
        if up not in ("SAME", "VALID"):
            message = f"Unknown padding: '{up}'. It can only be 'SAME' or 'VALID'."
            raise ValueError(received(message, **{name: value}))
        return "same" if up == "SAME" else (0, 0, 0, 0)
    if isinstance(value, list | tuple) and len(value) == 4:
        if isinstance(value[0], list | tuple):
            if list(value[0]) != [0, 0] or list(value[1]) != [0, 0]:
                raise ValueError(
                    f"Non-zero padding({value}) in the batch or channel dimensions is not "
                    "supported."
                )
            flat = convert_to_list([*value[2], *value[3]], 4, name)
        else:
            flat = convert_to_list(value, 4, name)
        return tuple(flat)
    ph, pw = convert_to_list(value, 2, name)
    return (ph, ph, pw, pw)


def img_conv_group(
    input: Tensor,
    conv_num_filter: Any,
    pool_size: Any,
    conv_padding: Any = 1,
    conv_filter_size: Any = 3,
    conv_act: Any = None,
    param_attr: Any = None,
    conv_with_batchnorm: Any = False,
    conv_batchnorm_drop_rate: Any = 0.0,
    pool_stride: Any = 1,
    pool_type: str = "max",
    use_cudnn: bool = True,
) -> Tensor:
    """``fluid.nets.img_conv_group``: per layer conv(+bias) -> [act if no BN] ->
    [BN -> act] -> [dropout if BN and |p| > 1e-5], then one pool.

    Per-layer arguments broadcast by Paddle's rule: a value **with** ``__len__`` (list,
    tuple, str) is one value per layer and must have one entry per layer (so
    ``conv_padding=(1, 2)`` is "1 for layer 0, 2 for layer 1"; use ``[[1, 2], [1, 2]]``
    for per-layer pairs); a value without ``__len__`` (an int, a ``ParamAttr``) is used for
    every layer (one named ``ParamAttr`` -> one shared weight). Every conv has a bias.
    BN is Paddle's (momentum 0.9 on the old value, biased running variance); dropout is
    ``downgrade_in_infer``; conv weights ``Normal(0, sqrt(2/(kh*kw*C_in)))`` unless
    ``param_attr`` gives an initialiser; biases 0. ``pool_stride`` defaults to 1.
    """
    input = _check_input(input, "input", "img_conv_group")
    if not isinstance(conv_num_filter, list | tuple):
        fail("conv_num_filter", "a list or tuple of ints", conv_num_filter, exc=TypeError)
    n = len(conv_num_filter)

    def extend(obj: Any, name: str) -> list[Any]:
        if not hasattr(obj, "__len__"):
            return [obj] * n
        if len(obj) != n:
            fail(
                name,
                f"one value for all layers or a list of len(conv_num_filter)={n} values "
                "(Paddle's rule: anything with __len__, a tuple or str too, is per layer)",
                obj,
            )
        return list(obj)

    paddings = [_conv_padding(p, "conv_padding") for p in extend(conv_padding, "conv_padding")]
    sizes = [
        tuple(convert_to_list(s, 2, "conv_filter_size"))
        for s in extend(conv_filter_size, "conv_filter_size")
    ]
    attrs = [to_param_attr(a) for a in extend(param_attr, "param_attr")]
    if any(a is None for a in attrs):
        fail("param_attr", "not False (every conv has a weight)", False)
    with_bn = [
        bool(check_bool(b, "conv_with_batchnorm"))
        for b in extend(conv_with_batchnorm, "conv_with_batchnorm")
    ]
    rates = []
    for bn, rate in zip(
        with_bn, extend(conv_batchnorm_drop_rate, "conv_batchnorm_drop_rate"), strict=True
    ):
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            fail("conv_batchnorm_drop_rate", "numbers", rate, exc=TypeError)
        if not bn:
            rates.append(0.0)  # Paddle ignores the rate of a layer without BN
            continue
        if abs(rate) > _DROP_EPS and not 0.0 <= rate <= 1.0:
            message = "'dropout_prob' must be between 0.0 and 1.0."
            raise ValueError(received(message, conv_batchnorm_drop_rate=rate))
        rates.append(float(rate))
    check_use_cudnn(use_cudnn)
    get_activation(conv_act, "conv_act")  # Paddle's checks and words
    if pool_type not in ("max", "avg"):
        message = f"Unknown Attr(pool_type): '{pool_type}'. It can only be 'max' or 'avg'."
        raise ValueError(received(message, pool_type=pool_type))
    if not isinstance(pool_size, list | tuple) and pool_size == -1:
        raise ValueError(
            "When Attr(global_pooling) is False, Attr(pool_size) must be passed and be a "
            f"valid value. Received pool_size: {pool_size}"
        )
    pool = convert_to_list(pool_size, 2, "pool_size")
    stride = convert_to_list(pool_stride, 2, "pool_stride")

    def build(namer: Namer) -> nn.Module:
        group = onn.ImgConvGroup(
            int(input.shape[1]), list(conv_num_filter), tuple(pool), paddings, sizes,
            conv_act, with_bn, rates, tuple(stride), pool_type, norm_layer=BatchNorm,
            dropout_layer=Dropout, device=input.device, dtype=input.dtype,
            activation_layers=LAYERS,
        )  # fmt: skip
        for i, attr in enumerate(attrs):
            conv: Any = group.get_submodule(f"conv{i}")
            init = conv_normal if attr is None or attr.initializer is None else attr.initializer
            init(conv.weight, conv)
            Constant(0.0)(conv.bias, conv)
            apply_attr(conv.weight, attr)
            op = namer.op("conv2d")
            namer.param(group, f"conv{i}.weight", op, "w", attr)
            namer.param(group, f"conv{i}.bias", op, "b")
            if with_bn[i]:
                op = namer.op("batch_norm")
                for path, suffix in (
                    ("weight", "w"),
                    ("bias", "b"),
                    ("running_mean", "w"),
                    ("running_var", "w"),
                ):
                    namer.param(group, f"bn{i}.{path}", op, suffix)
                if abs(rates[i]) > _DROP_EPS:
                    namer.op("dropout")
        namer.op("pool2d")
        return group

    module, _ = layer("img_conv_group", build)
    out: Tensor = module(input)
    return out


# ---------------------------------------------------------------------------------------
# deformable_conv


class FluidDeformConv(FrontendMixin, onn.DeformConv2d):
    """The layer behind ``fluid.layers.deformable_conv``: weight ``[O, C_in/groups, kh, kw]``
    ~ ``Normal(0, sqrt(2/(kh*kw*C_in)))``, bias ``[O]`` = 0 (state-dict keys in a
    ``Program``: ``deformable_conv_N.w_0`` / ``.b_0``)."""

    default_initializers: ClassVar[Mapping[str, Initializer]] = {
        "weight": conv_normal,
        "bias": Constant(0.0),
    }
    arg_names: ClassVar[Mapping[str, str]] = FLUID_ARG_NAMES


def deformable_conv(
    input: Tensor,
    offset: Tensor,
    mask: Tensor | None,
    num_filters: int,
    filter_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int | None = None,
    deformable_groups: int | None = None,
    im2col_step: int | None = None,
    param_attr: Any = None,
    bias_attr: Any = None,
    modulated: bool = True,
    name: str | None = None,
) -> Tensor:
    """``fluid.layers.deformable_conv`` (DCNv2 when ``modulated``, else DCNv1 and ``mask``
    is ignored). Offsets ``[N, 2*dg*kh*kw, Ho, Wo]`` with ``(dy, dx)`` interleaved per tap,
    mask ``[N, dg*kh*kw, Ho, Wo]``; ``num_filters`` must be divisible by
    ``deformable_groups``; ``im2col_step`` (default 64) must divide the batch when the
    batch is larger.

    The result does not depend on ``im2col_step`` (it only bounds memory). Paddle 1.x's
    kernels were wrong unless ``im2col_step=1``: with a batch smaller than the step (the
    default 64!) the output was never written (zeros/garbage, Paddle issue #21130), and
    with ``1 < step <= N`` batch and channels were scrambled (#21707, #45847). omniconv
    computes the correct result for every step (as Paddle >= 2.x's phi kernel).
    """
    input = _check_input(input, "input", "deformable_conv")
    offset = _check_input(offset, "offset", "deformable_conv")
    if mask is not None and not isinstance(mask, Tensor):
        fail("mask", "a tensor or None", type_name(mask), exc=TypeError)
    if param_attr is False:
        raise PaddleAssertionError("param_attr should not be False here.")
    c_in = int(input.shape[1])
    if groups is None:
        groups = 1
    else:
        groups = check_positive_int(groups, "groups")
        if c_in % groups:
            message = "num_channels must be divisible by groups."
            raise ValueError(received(message, num_channels=c_in, groups=groups))
    num_filters = check_positive_int(num_filters, "num_filters")
    kernel = convert_to_list(filter_size, 2, "filter_size")
    stride_ = convert_to_list(stride, 2, "stride")
    padding_ = convert_to_list(padding, 2, "padding")
    dilation_ = convert_to_list(dilation, 2, "dilation")
    dg = (
        1
        if deformable_groups is None
        else check_positive_int(deformable_groups, "deformable_groups")
    )
    if num_filters % dg:
        message = (
            "The number of output channels should be divided by deformable groups. The "
            f"difference is [{num_filters % dg}]: [0]"
        )
        raise ValueError(received(message, num_filters=num_filters, deformable_groups=dg))
    step = 64 if im2col_step is None else check_positive_int(im2col_step, "im2col_step")
    batch = int(input.shape[0])
    if batch > step and batch % step:
        raise ValueError(
            "Input batchsize must be smaller than or divide im2col_step. But received Input "
            f"batchsize:[{batch}], im2col_step:[{step}]"
        )
    modulated = check_bool(modulated, "modulated")
    if modulated and mask is None:
        fail(
            "mask",
            "a tensor when modulated=True (DCNv2; Paddle fails with 'Input Mask not found'); "
            "pass modulated=False for DCNv1",
            None,
            exc=TypeError,
        )
    wattr = to_param_attr(param_attr)
    battr = to_param_attr(bias_attr, "bias_attr")

    attrs = {"weight": wattr, "bias": battr}

    def build(namer: Namer) -> nn.Module:
        m = FluidDeformConv(
            c_in, num_filters, tuple(kernel), tuple(stride_), tuple(padding_),
            tuple(dilation_), groups, dg, bias=battr is not None, modulated=bool(modulated),
            im2col_step=step, device=input.device, dtype=input.dtype,
            initializers=initializers_of(attrs),
        )  # fmt: skip
        apply_param_attrs(m, attrs)
        namer.layer_params(m, namer.op("deformable_conv", name), attrs)
        return m

    module, _ = layer("deformable_conv", build)
    out: Tensor = module(input, offset, mask if modulated else None)
    return out
