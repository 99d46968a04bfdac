"""``mxnet.gluon.nn`` on PyTorch: ``Conv2D``, ``Conv2DTranspose``, ``Activation`` and the
block containers.

``Conv2D`` / ``Conv2DTranspose`` are :class:`omniconv.nn.Conv2d` /
:class:`omniconv.nn.ConvTranspose2d` (the torch parameters, layout and math) plus
:class:`~omniconv.compat._frontend.FrontendMixin` (Gluon's weight view for NHWC and
Gluon's default initialisers) plus the Gluon block machinery.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import Tensor
from torch.nn.parameter import UninitializedParameter

from ... import nn as _onn
from ..._args import fail, renamed_args
from ..._shapes import conv_output_size, conv_transpose_output_size, kernel_extent
from .._errors import received
from .._frontend import FrontendMixin, Initializer, ParamView
from . import _ndarray
from ._errors import GluonAssertionError, MXNetTypeError, MXNetValueError
from .block import Block, HybridBlock, HybridSequential, Sequential
from .init import check_initializer
from .parameter import Parameter

__all__ = [
    "Activation",
    "Block",
    "Conv2D",
    "Conv2DTranspose",
    "HybridBlock",
    "HybridSequential",
    "Sequential",
]

_NUMERIC = (numbers.Number, np.generic)


class Activation(HybridBlock):
    """``Activation(activation)``: one of MXNet's act_types (relu, sigmoid, tanh, softrelu,
    softsign). MXNet checks the name at the first forward; here it is checked at
    construction (:class:`MXNetValueError`, MXNet's words)."""

    _act_type: str

    def __init__(self, activation: str, **kwargs: Any) -> None:
        _ndarray.check_act_type(activation, "activation")
        self._act_type = activation  # before Block's __init__, which names the block
        super().__init__(**kwargs)

    def _alias(self) -> str:
        return str(self._act_type)

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return F.Activation(x, act_type=self._act_type, name="fwd")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._act_type})"


def _to_gluon(t: Tensor, layer: Any) -> Tensor:
    return t.permute(0, 2, 3, 1) if layer.gluon_layout == "NHWC" else t


def _to_torch(t: Tensor, layer: Any) -> Tensor:
    return t.permute(0, 3, 1, 2) if layer.gluon_layout == "NHWC" else t


def _uniform_007(t: Tensor, layer: Any) -> None:
    t.uniform_(-0.07, 0.07)


def _zeros(t: Tensor, layer: Any) -> None:
    t.zero_()


def _shape_str(v: Any) -> str:
    return "[" + ",".join(str(i) for i in v) + "]"


def expand(value: Any, n: int) -> Any:
    """Gluon's normalisation: a number becomes ``(value,) * n``; a sequence passes through
    unchecked (MXNet's parser checks it)."""
    return (value,) * n if isinstance(value, _NUMERIC) else value


class _GluonConv(FrontendMixin, HybridBlock):
    """What ``Conv2D`` and ``Conv2DTranspose`` share over their :mod:`omniconv.nn` module:
    Gluon's declared layouts and initialisers, deferred initialisation, the MXNet shape
    checks of the first forward, ``hybrid_forward`` and ``__repr__``.

    A subclass names its MXNet operator (``_op``) and where the input channels are in
    its Gluon weight (:meth:`_gluon_in_axis`)."""

    _kwargs: dict[str, Any]
    _op: ClassVar[str]
    _infers_in_channels = True  # in_channels=0: Gluon's deferred initialisation
    # the omniconv.nn module's attributes (as torch's _ConvNd declares them; Gluon's
    # weight / bias are Gluon Parameters over them)
    weight: Tensor
    bias: Tensor | None
    activation: torch.nn.Module | None
    groups: int
    in_channels: int
    param_views: ClassVar[dict[str, ParamView]] = {"weight": ParamView(_to_gluon, _to_torch)}
    default_initializers: ClassVar[dict[str, Initializer]] = {
        "weight": _uniform_007,
        "bias": _zeros,
    }
    error_types: ClassVar[dict[type[Exception], type[Exception]]] = {
        ValueError: MXNetValueError,
        TypeError: MXNetTypeError,
    }
    #: Gluon's names of the omniconv.nn constructor's arguments
    arg_names: ClassVar[dict[str, str]] = {
        "out_channels": "channels",
        "stride": "strides",
        "bias": "use_bias",
    }

    def _alias(self) -> str:
        return "conv"

    @property
    def gluon_layout(self) -> str:
        """``'NCHW'`` or ``'NHWC'``: the layout of the data and of the Gluon weight."""
        return str(self._kwargs["layout"])

    @property
    def act(self) -> Activation | None:
        return self._modules.get("activation")  # type: ignore[return-value]

    def _gluon_in_axis(self) -> int:
        """The input-channel axis of the Gluon weight."""
        raise NotImplementedError

    def _in_channels_of(self, weight_shape: Any) -> int:
        """The input channels a Gluon weight shape holds."""
        raise NotImplementedError

    def _gluon_weight_in(self, in_channels: int) -> int:
        """The Gluon weight's entry on its input-channel axis for ``in_channels``."""
        raise NotImplementedError

    def _make_params(
        self,
        activation: str | None,
        wshape: tuple[int, ...],
        channels: int,
        use_bias: bool,
        weight_initializer: Any,
        bias_initializer: Any,
    ) -> None:
        check_initializer(weight_initializer, "weight_initializer")
        check_initializer(bias_initializer, "bias_initializer")
        with self.name_scope():
            if activation is not None:
                self.activation = Activation(activation, prefix=activation + "_")
            self.weight = self.params.get(  # type: ignore[assignment]
                "weight", shape=wshape, init=weight_initializer, allow_deferred_init=True
            )
            if use_bias:
                self.bias = self.params.get(  # type: ignore[assignment]
                    "bias", shape=(channels,), init=bias_initializer, allow_deferred_init=True
                )

    # -- deferred initialisation: Gluon's shapes -> the torch parameters -------------
    def _gluon_materialize(self, attr: str, shape: tuple[int, ...]) -> None:
        """A deferred parameter gets its Gluon shape (from data, a file or ``set_data``);
        only the tensors materialised here get the default values."""
        if attr == "weight":
            module: Any = self  # the omniconv.nn module
            materialized = module._materialize_parameters(self._in_channels_of(shape))
        else:  # the bias: its shape does not depend on in_channels
            with torch.no_grad():
                self._parameters["bias"].materialize(self._bias_shape())  # type: ignore[union-attr]
            materialized = ["bias"]
        for name in materialized:
            self.init_parameter(name)

    def _finish_deferred(self, x: Any, *args: Any) -> None:
        """MXNet's shape inference: deferred shapes from ``x``, and its errors (wrapped in
        MXNet's ValueError while initialisation is deferred)."""
        if not isinstance(x, Tensor):
            raise TypeError(
                f"`x` must be a torch.Tensor or a numpy array; received x=<{type(x).__name__}>"
            )
        deferred = isinstance(self._parameters["weight"], UninitializedParameter)
        problem = self._infer_shape_error(x, deferred)
        if problem is not None:
            if deferred:
                raise ValueError(
                    "Deferred initialization failed because shape cannot be inferred. "
                    f"MXNetError: Error in operator {self.prefix}fwd: {problem}"
                )
            raise MXNetValueError(problem)
        if deferred:
            c = x.shape[3] if self.gluon_layout == "NHWC" else x.shape[1]
            weight: Parameter = self.weight  # type: ignore[assignment]
            shape = list(weight.shape or ())
            shape[self._gluon_in_axis()] = self._gluon_weight_in(c)
            weight._materialize(tuple(shape))
            self.in_channels = c  # also when the weight is shared with another layer
            for p in self._reg_params.values():
                if p._deferred_init:
                    p._finish_deferred_init()

    def _infer_shape_error(self, x: Tensor, deferred: bool) -> str | None:
        if x.dim() != 4:
            return input_4d_error(x)
        nhwc = self.gluon_layout == "NHWC"
        c = x.shape[3] if nhwc else x.shape[1]
        size = (x.shape[1], x.shape[2]) if nhwc else (x.shape[2], x.shape[3])
        groups = self.groups
        if c % groups:
            return groups_error(c, groups)
        problem = self._size_error(size)
        if problem is not None:
            return problem
        weight = self._parameters["weight"]
        if not deferred and weight is not None:
            shape = self.weight.shape
            if c != self._in_channels_of(shape):
                return inconsistent_error(shape, self._gluon_in_axis(), self._gluon_weight_in(c))
        return None

    def _size_error(self, size: tuple[int, int]) -> str | None:
        """MXNet's check that the output is not empty, for input size ``size``."""
        raise NotImplementedError

    def hybrid_forward(self, F: Any, x: Any, weight: Any, bias: Any = None) -> Any:
        if F is _ndarray:
            # the module's one functional call, on the Gluon-layout parameters given
            out = self._eager_conv(x, self.to_torch_layout("weight", weight), bias)
        else:
            out = getattr(F, self._op)(x, weight, bias, name="fwd", **self._kwargs)
        act = self.act
        return out if act is None else act(out)

    def _eager_conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        module: Any = self  # the omniconv.nn module
        with renamed_args({"input": "x"}):  # Gluon's name of the data
            return cast(Tensor, module._conv_forward(x, weight, bias))

    def forward(self, x: Any, *args: Any) -> Any:
        return HybridBlock.forward(self, x, *args)

    def __repr__(self) -> str:
        kw = self._kwargs
        s = f"{self.__class__.__name__}({{mapping}}, kernel_size={kw['kernel']}"
        s += f", stride={kw['stride']}"
        if kw["pad"] != (0, 0):
            s += f", padding={kw['pad']}"
        if kw["dilate"] != (1, 1):
            s += f", dilation={kw['dilate']}"
        # (MXNet's Conv2DTranspose keeps ``outpad`` but its repr looks for ``out_pad``:
        # the output padding is never shown)
        if kw["num_group"] != 1:
            s += f", groups={kw['num_group']}"
        if self._parameters.get("bias") is None:
            s += ", bias=False"
        if self.act is not None:
            s += f", {self.act!r}"
        s += ")"
        shape = self.weight.shape
        return s.format(mapping=f"{shape[1] if shape[1] else None} -> {shape[0]}")


class Conv2D(_GluonConv, _onn.Conv2d):
    """``mxnet.gluon.nn.Conv2D`` (MXNet 1.9.1 semantics; NHWC also runs on CPU).

    ``net.weight`` / ``net.bias`` are Gluon :class:`Parameter` s (``.data()`` in Gluon's
    layout: OHWI for NHWC, a view of the torch parameter); ``state_dict()`` keeps torch's
    ``weight`` / ``bias`` (PyTorch's ``(O, I/groups, kh, kw)``), so checkpoints
    interchange with ``torch.nn.Conv2d``. ``in_channels=0`` defers the weight's shape to
    the first forward (Gluon's deferred initialisation). It is a ``torch.nn.Conv2d`` whose
    ``weight`` / ``bias`` attributes are Gluon's parameters, as Gluon code reads them: torch
    tools that take ``m.weight`` for a tensor do not apply to it (its ``state_dict()`` does).

    Bad arguments raise at construction (MXNet checks some only at the first forward):
    :class:`MXNetValueError` / :class:`MXNetTypeError` with MXNet's words followed by the
    Gluon argument and the value received, or :class:`GluonAssertionError` where Gluon
    asserts.
    """

    _op = "Convolution"

    def __init__(
        self,
        channels: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: Any = (0, 0),
        dilation: Any = (1, 1),
        groups: int = 1,
        layout: str = "NCHW",
        activation: str | None = None,
        use_bias: bool = True,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        prefix, params = pop_block_kwargs(kwargs)
        check_layout(layout)
        kernel_size = expand(kernel_size, 2)
        check_two(kernel_size, "kernel_size")
        strides, padding, dilation = (expand(v, 2) for v in (strides, padding, dilation))
        check_op_args(channels, kernel_size, strides, padding, dilation, groups, in_channels)
        if activation is not None:
            _ndarray.check_act_type(activation, "activation")
        self._kwargs = op_kwargs(
            kernel_size, strides, dilation, padding, channels, groups, use_bias, layout
        )
        super().__init__(
            prefix=prefix, params=params, in_channels=in_channels or None,
            out_channels=channels, kernel_size=tuple(kernel_size), stride=tuple(strides),
            padding=tuple(padding), dilation=tuple(dilation), groups=groups, bias=use_bias,
            layout=layout,
        )  # fmt: skip
        kh, kw = kernel_size
        cin = in_channels // groups if in_channels else 0
        wshape = (channels, cin, kh, kw) if layout == "NCHW" else (channels, kh, kw, cin)
        self._make_params(
            activation, wshape, channels, use_bias, weight_initializer, bias_initializer
        )

    def _gluon_in_axis(self) -> int:
        return 1 if self.gluon_layout == "NCHW" else 3

    def _in_channels_of(self, weight_shape: Any) -> int:
        return int(weight_shape[self._gluon_in_axis()]) * self.groups

    def _gluon_weight_in(self, in_channels: int) -> int:
        return in_channels // self.groups

    def _size_error(self, size: tuple[int, int]) -> str | None:
        return kernel_size_error(
            size, self.kernel_size, self.stride, self._kwargs["pad"], self.dilation
        )


class Conv2DTranspose(_GluonConv, _onn.ConvTranspose2d):
    """``mxnet.gluon.nn.Conv2DTranspose`` (MXNet 1.9.1 semantics; NHWC also runs on CPU).

    :class:`omniconv.nn.ConvTranspose2d` (a ``torch.nn.ConvTranspose2d``) with Gluon's
    block machinery, as :class:`Conv2D`: Gluon weight ``(in_channels, channels/groups,
    kh, kw)`` (``(in_channels, kh, kw, channels/groups)`` for NHWC, a view), default init
    U(-0.07, 0.07) / zero bias through ``initialize()``, names ``conv<k>_weight``,
    deferred ``in_channels``, ``.params`` files and ``export`` (a ``Deconvolution`` node).
    Output size ``(H - 1)*s - 2p + d*(k - 1) + 1 + output_padding``.

    MXNet's rules, checked at construction: ``output_padding`` (MXNet's ``adj``) must be
    smaller than ``strides`` (whatever the dilation), ``channels`` and ``in_channels``
    divisible by ``groups``. Differences (MXNet 1.9.1 bugs not reproduced): a grouped
    layer with deferred ``in_channels`` works (MXNet fails at construction with "input
    num_filter must divide group size"); NHWC runs on CPU (MXNet fails asynchronously).
    As in MXNet, ``repr`` shows the weight's ``shape[1] -> shape[0]`` (``channels/groups
    -> in_channels``) and never the output padding.
    """

    _op = "Deconvolution"
    outpad: tuple[int, ...]

    def __init__(
        self,
        channels: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: Any = (0, 0),
        output_padding: Any = (0, 0),
        dilation: Any = (1, 1),
        groups: int = 1,
        layout: str = "NCHW",
        activation: str | None = None,
        use_bias: bool = True,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        prefix, params = pop_block_kwargs(kwargs)
        check_layout(layout)
        kernel_size, output_padding = expand(kernel_size, 2), expand(output_padding, 2)
        check_two(kernel_size, "kernel_size")
        check_two(output_padding, "output_padding")
        strides, padding, dilation = (expand(v, 2) for v in (strides, padding, dilation))
        check_op_args(
            channels, kernel_size, strides, padding, dilation, groups, in_channels,
            adj=output_padding,
        )  # fmt: skip
        if activation is not None:
            _ndarray.check_act_type(activation, "activation")
        self._kwargs = op_kwargs(
            kernel_size, strides, dilation, padding, channels, groups, use_bias, layout,
            adj=output_padding,
        )  # fmt: skip
        super().__init__(
            prefix=prefix, params=params, in_channels=in_channels or None,
            out_channels=channels, kernel_size=tuple(kernel_size), stride=tuple(strides),
            padding=tuple(padding), output_padding=tuple(output_padding), groups=groups,
            bias=use_bias, dilation=tuple(dilation),
        )  # fmt: skip
        self.outpad = output_padding
        kh, kw = kernel_size
        cout = channels // groups
        cin = in_channels or 0
        wshape = (cin, cout, kh, kw) if layout == "NCHW" else (cin, kh, kw, cout)
        self._make_params(
            activation, wshape, channels, use_bias, weight_initializer, bias_initializer
        )

    def _gluon_in_axis(self) -> int:
        return 0

    def _in_channels_of(self, weight_shape: Any) -> int:
        return int(weight_shape[0])

    def _gluon_weight_in(self, in_channels: int) -> int:
        return in_channels

    def _size_error(self, size: tuple[int, int]) -> str | None:
        padding = cast("tuple[int, int]", self.padding)  # Gluon's padding is always a pair
        out = conv_transpose_output_size(
            size, self.kernel_size, self.stride, padding, self.dilation, self.output_padding
        )
        if min(out) < 1:
            return (
                f"shape dim size must be >= 1: the output would be {out[0]}x{out[1]} for input "
                f"size {size[0]}x{size[1]}"
            )
        return None

    def _eager_conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        # omniconv.nn.ConvTranspose2d computes NCHW: NHWC data through views
        if self.gluon_layout == "NHWC":
            return self._conv_forward(x.permute(0, 3, 1, 2), weight, bias).permute(0, 2, 3, 1)
        return self._conv_forward(x, weight, bias)


# -- MXNet's shape-inference messages (the first forward) ---------------------------------


def input_4d_error(x: Tensor) -> str:
    return (
        f"Check failed: dshp.ndim() == 4U ({x.dim()} vs. 4) : Input data should be 4D in "
        "batch-num_filter-y-x"
    )


def groups_error(c: int, groups: int) -> str:
    return (
        f"Check failed: dshape[1] % param_.num_group == 0U ({c % groups} vs. 0) : "
        "input num_filter must divide group size"
    )


def kernel_size_error(
    size: tuple[int, int], kernel: Any, stride: Any, pad: Any, dilation: Any
) -> str | None:
    """MXNet's "kernel size exceed input" when the dilated kernel is larger than the padded
    input (an empty output), else None."""
    ph, pw = pad
    out = conv_output_size(size, tuple(kernel), tuple(stride), (ph, ph, pw, pw), tuple(dilation))
    for i, axis in enumerate("yx"):
        if out[i] < 1:
            extent = kernel_extent(kernel[i], dilation[i])
            padded = size[i] + 2 * pad[i]
            return (
                f"Check failed: dilated_ksize_{axis} <= AddPad(dshape[{i + 2}], "
                f"param_.pad[{i}]) ({extent} vs. {padded}) : kernel size exceed input"
            )
    return None


def inconsistent_error(shape: Any, axis: int, value: int) -> str:
    """MXNet's "Shape inconsistent" for a parameter of ``shape`` whose entry ``axis`` the
    data says should be ``value``."""
    wrong = list(shape)
    wrong[axis] = value
    inferred = "(" + ",".join(map(str, wrong)) + ")"
    return f"Shape inconsistent, Provided = {_shape_str(shape)}, inferred shape={inferred}"


# -- construction ---------------------------------------------------------------------------


def pop_block_kwargs(kwargs: dict[str, Any]) -> tuple[str | None, Any]:
    """Gluon's ``prefix=`` / ``params=`` from a layer's ``**kwargs`` (``op_name=`` is
    accepted and ignored); any other keyword is Python's unexpected-keyword error."""
    prefix = kwargs.pop("prefix", None)
    params = kwargs.pop("params", None)
    kwargs.pop("op_name", None)
    if kwargs:
        raise TypeError(f"__init__() got an unexpected keyword argument '{next(iter(kwargs))}'")
    return prefix, params


def op_kwargs(
    kernel: Any,
    stride: Any,
    dilate: Any,
    pad: Any,
    num_filter: Any,
    num_group: Any,
    use_bias: bool,
    layout: str,
    **extra: Any,
) -> dict[str, Any]:
    """A convolution operator's keyword arguments as the Gluon layer passes them (values as
    given: ``repr`` and ``export`` show them so)."""
    return {
        "kernel": kernel,
        "stride": stride,
        "dilate": dilate,
        "pad": pad,
        "num_filter": num_filter,
        "num_group": num_group,
        "no_bias": not use_bias,
        "layout": layout,
        **extra,
    }


def check_layout(layout: Any) -> None:
    if layout not in ("NCHW", "NHWC"):
        raise GluonAssertionError(
            received("Only supports 'NCHW' and 'NHWC' layout for now", layout=layout)
        )


def check_two(value: Any, name: str) -> None:
    if len(value) != 2:
        raise GluonAssertionError(
            received(f"{name} must be a number or a list of 2 ints", **{name: value})
        )


def check_op_args(
    channels: Any,
    kernel: Any,
    strides: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    in_channels: Any,
    *,
    adj: Any = None,
    channels_arg: tuple[str, Any] | None = None,
) -> None:
    """MXNet's Convolution (``adj`` given: Deconvolution) parameter parser and shape
    checks, which MXNet runs at construction (``_infer_weight_shape``): MXNet's words,
    then the Gluon argument and the value received. ``channels_arg`` names the Gluon
    argument behind ``num_filter`` (default ``channels``)."""

    def is_int(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    filter_arg = {"channels": channels} if channels_arg is None else dict([channels_arg])
    kernel = tuple(kernel)
    args = (
        ("kernel", "kernel_size", kernel),
        ("stride", "strides", strides),
        ("dilate", "dilation", dilation),
        ("pad", "padding", padding),
    )
    for field, arg, value in (*args, *([("adj", "output_padding", adj)] if adj else [])):
        if not all(is_int(v) for v in value):
            raise MXNetTypeError(
                received(
                    f"Invalid Parameter format for {field} expect Shape(tuple) but value='{value}'",
                    **{arg: value},
                )
            )
    for field, shown, value in (
        ("num_filter", filter_arg, channels),
        ("num_group", {"groups": groups}, groups),
    ):
        if not is_int(value):
            raise MXNetTypeError(
                received(
                    f"Invalid Parameter format for {field} expect int (non-negative) but "
                    f"value='{value}'",
                    **shown,
                )
            )
    if channels < -1:
        raise MXNetValueError(
            received(
                f"Check failed: dim_size >= -1 ({channels} vs. -1) : shape dim size must be "
                f">= -1, while received {channels}",
                **filter_arg,
            )
        )
    if channels < 1:
        raise MXNetValueError(
            received(
                f"value {channels} for Parameter num_filter should be greater equal to 1",
                **filter_arg,
            )
        )
    if any(k == 0 for k in kernel):
        raise MXNetValueError(
            received(
                "Check failed: param_.kernel.Size() > 0U (0 vs. 0) : incorrect kernel size: "
                f"{_shape_str(kernel)}",
                kernel_size=kernel,
            )
        )
    for (field, arg, value), label, word in zip(
        args[1:], ("Stride", "Dilate", "Padding"), ("stride", "dilate", "padding"), strict=True
    ):
        if len(value) != len(kernel):
            raise MXNetValueError(
                received(
                    f"Check failed: param_.kernel.ndim() == param_.{field}.ndim() "
                    f"({len(kernel)} vs. {len(value)}) : {label} must have the same number of "
                    f"dimensions with kernel_size,but kernel_size is set to {_shape_str(kernel)} "
                    f"while {word} is {_shape_str(value)}",
                    **{arg: value},
                )
            )
    # what MXNet leaves to its C++ shape inference (or never checks): omniconv's words
    for arg, value, least in (
        ("kernel_size", kernel, 0),
        ("strides", strides, 0),
        ("dilation", dilation, 0),
        ("padding", padding, 0),
        *([("output_padding", adj, 0)] if adj else []),
    ):
        if min(value) < least:
            rule = (
                "non-negative integers"
                if arg in ("padding", "output_padding")
                else ("positive integers")
            )
            fail(arg, rule, tuple(value), exc=MXNetValueError)
    if groups < 1:
        fail("groups", "a positive integer", groups, exc=MXNetValueError)
    if not is_int(in_channels):
        rule = "a non-negative integer (0: inferred at the first forward)"
        fail("in_channels", rule, in_channels, exc=MXNetTypeError)
    if in_channels < 0:
        rule = "a non-negative integer (0: inferred at the first forward)"
        fail("in_channels", rule, in_channels, exc=MXNetValueError)
    ints = groups > 0
    if ints and in_channels and is_int(in_channels) and in_channels % groups:
        raise MXNetValueError(
            received(
                "Check failed: dshape[1] % param_.num_group == 0U "
                f"({in_channels % groups} vs. 0) : input num_filter must divide group size",
                in_channels=in_channels,
                groups=groups,
            )
        )
    if ints and channels % groups:
        raise MXNetValueError(
            received(
                f"Check failed: param_.num_filter % param_.num_group == 0U ({channels % groups} "
                "vs. 0) : output num_filter must divide group size",
                **filter_arg,
                groups=groups,
            )
        )
    for field, arg, value in (("stride", "strides", strides), ("dilate", "dilation", dilation)):
        if any(v == 0 for v in value):
            raise MXNetValueError(
                received(
                    f"Check failed: param_.{field}.Size() > 0U (0 vs. 0) : incorrect {field} "
                    f"size: {_shape_str(value)}",
                    **{arg: value},
                )
            )
    for i, axis in enumerate("yx" if adj else ""):
        if strides[i] - 1 < adj[i]:
            raise MXNetValueError(
                received(
                    f"Check failed: param_.stride[{i}]-1 >= o_adj[{i}] ({strides[i] - 1} vs. "
                    f"{adj[i]}) : adj({axis}) must be samller than stride[{i}]",
                    output_padding=adj,
                    strides=strides,
                )
            )
