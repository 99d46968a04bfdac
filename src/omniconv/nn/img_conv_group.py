"""``ImgConvGroup``: Paddle's ``img_conv_group`` block (seed 000) with PyTorch conventions."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .._args import (
    check_bool,
    check_choice,
    check_positive_int,
    fail,
    renamed_args,
    to_padding,
    to_pair,
)
from ._activation import ACTIVATIONS, get_activation
from .conv import Conv2d, LazyConv2d

__all__ = ["ImgConvGroup"]

_DROP_EPS = 1e-5  # Paddle adds a dropout only when |p| > 1e-5
#: torch's pooling takes C ints: a larger size or stride overflows in its kernel
_POOL_MAX = 2**31 - 1
#: the block's names of its convs' arguments, in the errors the convs raise
_CONV_NAMES = {
    "kernel_size": "conv_filter_size",
    "out_channels": "conv_num_filter",
    "padding": "conv_padding",
}


def _per_layer(value: Any, name: str, count: int) -> list[tuple[str, Any]]:
    """``(name, value)`` per layer. A ``list`` is per layer (its length must be the layer
    count; its items are named ``name[i]``); anything else (an int, a pair tuple, a
    str, ...) is one value for every layer."""
    if isinstance(value, list):
        if len(value) != count:
            fail(name, f"one value or a list of {count} (one per layer)", value)
        return [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [(name, value)] * count


class ImgConvGroup(nn.Sequential):
    """A stack of conv(+bias) → [BN] → act → [dropout] layers followed by one pool.

    Per layer ``i``: ``conv{i}`` (stride 1, with bias), then, without batch norm,
    the activation; with batch norm, ``bn{i}`` then the activation, then a dropout
    only if ``|conv_batchnorm_drop_rate[i]| > 1e-5``. Finally one ``pool``
    (``'max'`` or ``'avg'``, no padding, ``pool_stride`` default 1 as in Paddle).

    Per-layer arguments (``conv_padding``, ``conv_filter_size``, ``conv_with_batchnorm``,
    ``conv_batchnorm_drop_rate``) take one value for every layer or a ``list`` with one
    value per layer; a tuple is one value (e.g. a ``(h, w)`` pair).

    PyTorch conventions by default: ``norm_layer=nn.BatchNorm2d`` (momentum 0.1 on the
    new value, unbiased running variance) and ``dropout_layer=nn.Dropout`` (inverted
    dropout); PyTorch's default initialisation and activations. ``norm_layer(num_features,
    device=, dtype=)``, ``dropout_layer(p)`` and ``activation_layers`` (the names
    ``conv_act`` may take, each a factory of one activation module; one module per layer)
    let a front-end plug in its framework's own. State-dict keys: ``conv{i}.weight``,
    ``conv{i}.bias``, then ``bn{i}.*``, in layer order. ``in_channels`` of 0/None is
    inferred at the first call (``conv0`` is then a :class:`LazyConv2d`).

    Inference (eval mode under ``torch.no_grad()`` / ``torch.inference_mode()``): each
    BatchNorm-style norm layer (a ``_BatchNorm`` with running statistics, in eval mode,
    whose ``forward`` is torch's) is folded into the preceding conv — ``w * s``,
    ``(b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)`` — and skipped. The folded
    weights are cached, keyed on the parameters' and buffers' versions, so they are
    recomputed only after an update. On CPU the block then runs channels_last internally
    (oneDNN's native layout) and returns the input's memory format. Results equal the
    unfused layers up to float rounding; with autograd enabled (or in training) the layers
    run one by one, exactly as listed.
    """

    def __init__(
        self,
        in_channels: int | None,
        conv_num_filter: Sequence[int],
        pool_size: Any,
        conv_padding: Any = 1,
        conv_filter_size: Any = 3,
        conv_act: Any = None,
        conv_with_batchnorm: Any = False,
        conv_batchnorm_drop_rate: Any = 0.0,
        pool_stride: Any = 1,
        pool_type: str = "max",
        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
        dropout_layer: Callable[[float], nn.Module] = nn.Dropout,
        device: Any = None,
        dtype: Any = None,
        activation_layers: Mapping[str, Callable[[], nn.Module]] = ACTIVATIONS,
    ) -> None:
        super().__init__()
        if isinstance(conv_num_filter, str) or not isinstance(conv_num_filter, Sequence):
            fail("conv_num_filter", "a list or tuple of ints", conv_num_filter, exc=TypeError)
        if not conv_num_filter:
            fail("conv_num_filter", "a non-empty list of ints", conv_num_filter)
        filters = [check_positive_int(f, "conv_num_filter") for f in conv_num_filter]
        n = len(filters)
        paddings = [to_padding(v, k) for k, v in _per_layer(conv_padding, "conv_padding", n)]
        sizes = [to_pair(v, k) for k, v in _per_layer(conv_filter_size, "conv_filter_size", n)]
        with_bn = [
            bool(check_bool(v, k))
            for k, v in _per_layer(conv_with_batchnorm, "conv_with_batchnorm", n)
        ]
        rates = []
        for k, rate in _per_layer(conv_batchnorm_drop_rate, "conv_batchnorm_drop_rate", n):
            if not isinstance(rate, numbers.Real) or isinstance(rate, bool):
                fail(k, "a number in [0, 1]", rate, exc=TypeError)
            if abs(float(rate)) > _DROP_EPS and not 0 <= float(rate) <= 1:
                fail(k, "in [0, 1]", rate)
            rates.append(float(rate))
        check_choice(pool_type, "pool_type", ("max", "avg"))
        self.pool_size = to_pair(pool_size, "pool_size")
        pool_stride_ = to_pair(pool_stride, "pool_stride")
        for name, value, pair in (
            ("pool_size", pool_size, self.pool_size),
            ("pool_stride", pool_stride, pool_stride_),
        ):
            if max(pair) > _POOL_MAX:
                fail(name, f"at most {_POOL_MAX} (torch's pooling takes 32-bit ints)", value)
        # validate once, before building anything
        get_activation(conv_act, "conv_act", activation_layers)

        factory = {"device": device, "dtype": dtype}
        channels = in_channels
        for i, (out, pad, size, bn, rate) in enumerate(
            zip(filters, paddings, sizes, with_bn, rates, strict=True)
        ):
            with renamed_args(_CONV_NAMES):
                if not channels:  # in_channels 0 or None
                    conv: Conv2d = LazyConv2d(out, size, padding=pad, bias=True, **factory)
                else:
                    conv = Conv2d(channels, out, size, padding=pad, bias=True, **factory)
            self.add_module(f"conv{i}", conv)
            if bn:
                self.add_module(f"bn{i}", norm_layer(out, **factory))
            act = get_activation(conv_act, "conv_act", activation_layers)
            if act is not None:
                self.add_module(f"act{i}", act)
            if bn and abs(rate) > _DROP_EPS:
                self.add_module(f"drop{i}", dropout_layer(rate))
            channels = out
        pool_cls = nn.MaxPool2d if pool_type == "max" else nn.AvgPool2d
        self.add_module("pool", pool_cls(self.pool_size, pool_stride_))

    def _foldable(self, conv: nn.Module, norm: nn.Module | None) -> bool:
        return (
            isinstance(conv, Conv2d)
            and not conv.transposed
            and conv.activation is None
            and isinstance(norm, _BatchNorm)
            and not norm.training
            and type(norm).forward is _BatchNorm.forward
            and norm.running_mean is not None
            and norm.running_var is not None
            and conv.weight.dim() == 4
            and not isinstance(conv.weight, nn.parameter.UninitializedParameter)
        )

    def _folded(self, conv: Conv2d, norm: _BatchNorm) -> tuple[Tensor, Tensor]:
        """``(weight, bias)`` of ``norm(conv(x))`` as one conv, cached on versions."""
        tensors = [conv.weight, conv.bias, norm.weight, norm.bias]
        tensors += [norm.running_mean, norm.running_var]
        cache: dict[int, Any] = self.__dict__.setdefault("_fold_cache", {})
        key = None
        if not any(t is not None and t.is_inference() for t in tensors):  # no version counter
            key = (
                tuple(
                    (id(t), t.data_ptr(), t._version) if t is not None else None for t in tensors
                ),
                norm.eps,
                torch.is_inference_mode_enabled(),
            )
            hit = cache.get(id(conv))
            if hit is not None and hit[0] == key:
                return hit[1]
        mean, var = cast(Tensor, norm.running_mean), cast(Tensor, norm.running_var)
        scale = torch.rsqrt(var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        bias = -mean if conv.bias is None else conv.bias - mean
        bias = bias * scale
        if norm.bias is not None:
            bias = bias + norm.bias
        weight = conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight.dtype)
        folded = (weight, bias.to(conv.weight.dtype))
        if key is not None:
            cache[id(conv)] = (key, folded)
        return folded

    def _convs(self, layers: list[nn.Module], input: Tensor, fold: bool) -> Tensor:
        """The layers before the pool; each BatchNorm folded into its conv when ``fold``."""
        i = 0
        while i < len(layers):
            layer = layers[i]
            norm = layers[i + 1] if i + 1 < len(layers) else None
            if fold and self._foldable(layer, norm):
                conv = cast(Conv2d, layer)
                weight, bias = self._folded(conv, cast(_BatchNorm, norm))
                input = conv._conv_forward(input, weight, bias)
                i += 2
                continue
            input = layer(input)
            i += 1
        return input

    def forward(self, input: Tensor) -> Tensor:
        *layers, pool = self
        fold = not self.training and not torch.is_grad_enabled()
        fmt = None
        if fold and isinstance(input, Tensor) and input.device.type == "cpu" and input.dim() == 4:
            # inference on CPU: run the block channels_last (oneDNN's native layout, no
            # reorders around each conv) and hand back the input's memory format
            cl = torch.channels_last
            fmt = cl if input.is_contiguous(memory_format=cl) else torch.contiguous_format
            input = input.contiguous(memory_format=cl)
        with renamed_args(_CONV_NAMES):
            input = self._convs(layers, input, fold)
        size = tuple(input.shape[-2:])
        if size[0] < self.pool_size[0] or size[1] < self.pool_size[1]:
            fail(
                "pool_size", f"at most the feature map size {size} before the pool", self.pool_size
            )
        out = pool(input)
        return out if fmt is None else out.contiguous(memory_format=fmt)
