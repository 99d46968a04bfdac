"""``mxnet.gluon.nn`` on PyTorch: ``Conv2D``, ``Activation`` and the block containers.

``Conv2D`` is :class:`omniconv.nn.Conv2d` (the torch parameters, layout and math) plus
:class:`~omniconv.compat._frontend.FrontendMixin` (Gluon's OHWI weight view for NHWC and
Gluon's default initialisers) plus the Gluon block machinery.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.nn.parameter import UninitializedParameter

from ... import nn as _onn
from .._frontend import FrontendMixin, Initializer, ParamView
from . import _ndarray
from ._errors import MXNetError
from .block import Block, HybridBlock, HybridSequential, Sequential

__all__ = ["Activation", "Block", "Conv2D", "HybridBlock", "HybridSequential", "Sequential"]

_NUMERIC = (numbers.Number, np.generic)


class Activation(HybridBlock):
    """``Activation(activation)``: one of MXNet's act_types (checked at the first forward,
    as in MXNet: relu, sigmoid, tanh, softrelu, softsign)."""

    _act_type: str

    def __init__(self, activation: str, **kwargs: Any) -> None:
        self.__dict__["_act_type"] = activation
        super().__init__(**kwargs)

    def _alias(self) -> str:
        return str(self._act_type)

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return F.Activation(x, act_type=self._act_type, name="fwd")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._act_type})"


def _to_gluon(t: Tensor, layer: Any) -> Tensor:
    return t.permute(0, 2, 3, 1) if layer.layout == "NHWC" else t


def _to_torch(t: Tensor, layer: Any) -> Tensor:
    return t.permute(0, 3, 1, 2) if layer.layout == "NHWC" else t


def _uniform_007(t: Tensor, layer: Any) -> None:
    t.uniform_(-0.07, 0.07)


def _zeros(t: Tensor, layer: Any) -> None:
    t.zero_()


def _shape_str(v: Any) -> str:
    return "[" + ",".join(str(i) for i in v) + "]"


class Conv2D(FrontendMixin, HybridBlock, _onn.Conv2d):
    """``mxnet.gluon.nn.Conv2D`` (MXNet 1.9.1 semantics; NHWC also runs on CPU).

    ``net.weight`` / ``net.bias`` are Gluon :class:`Parameter` s (``.data()`` in Gluon's
    layout: OHWI for NHWC); ``state_dict()`` keeps torch's ``weight`` / ``bias``
    (PyTorch's ``(O, I/groups, kh, kw)``).
    """

    _kwargs: dict[str, Any]
    _infers_in_channels = True  # in_channels=0: Gluon's deferred initialisation
    param_views: ClassVar[dict[str, ParamView]] = {"weight": ParamView(_to_gluon, _to_torch)}
    default_initializers: ClassVar[dict[str, Initializer]] = {
        "weight": _uniform_007,
        "bias": _zeros,
    }

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
        prefix = kwargs.pop("prefix", None)
        params = kwargs.pop("params", None)
        kwargs.pop("op_name", None)
        if kwargs:
            raise TypeError(f"__init__() got an unexpected keyword argument '{next(iter(kwargs))}'")
        assert layout in ("NCHW", "NHWC"), "Only supports 'NCHW' and 'NHWC' layout for now"
        if isinstance(kernel_size, _NUMERIC):
            kernel_size = (kernel_size,) * 2
        assert len(kernel_size) == 2, "kernel_size must be a number or a list of 2 ints"
        if isinstance(strides, _NUMERIC):
            strides = (strides,) * 2
        if isinstance(padding, _NUMERIC):
            padding = (padding,) * 2
        if isinstance(dilation, _NUMERIC):
            dilation = (dilation,) * 2
        _check_op_args(channels, kernel_size, strides, padding, dilation, groups, in_channels)
        self._gluon_setup(prefix, params)
        self.__dict__["_kwargs"] = {
            "kernel": kernel_size,
            "stride": strides,
            "dilate": dilation,
            "pad": padding,
            "num_filter": channels,
            "num_group": groups,
            "no_bias": not use_bias,
            "layout": layout,
        }
        act = None
        if activation is not None:
            with self.name_scope():
                act = Activation(activation, prefix=activation + "_")
        _onn.Conv2d.__init__(
            self, in_channels or None, channels, tuple(kernel_size), tuple(strides),  # type: ignore[arg-type]
            tuple(padding), tuple(dilation), groups, use_bias, "zeros", layout, act,
        )  # fmt: skip
        kh, kw = kernel_size
        cin = in_channels // groups if in_channels else 0
        wshape = (channels, cin, kh, kw) if layout == "NCHW" else (channels, kh, kw, cin)
        with self.name_scope():
            self.weight = self.params.get(  # type: ignore[assignment]
                "weight", shape=wshape, init=weight_initializer, allow_deferred_init=True
            )
            if use_bias:
                self.bias = self.params.get(  # type: ignore[assignment]
                    "bias", shape=(channels,), init=bias_initializer, allow_deferred_init=True
                )

    def _alias(self) -> str:
        return "conv"

    @property
    def act(self) -> Activation | None:
        return self._modules.get("activation")  # type: ignore[return-value]

    # -- the torch parameters behind the Gluon ones ----------------------------------
    def set_framework_param(self, name: str, value: Any) -> None:
        param = self.__dict__.get(name)
        if param is None:
            raise ValueError(f"`{name}` must be a parameter of this layer; received {name}=None")
        param.set_data(value)

    def _default_init(self, name: str) -> None:
        tensor = self._parameters.get(name)
        if tensor is None or isinstance(tensor, UninitializedParameter):
            return
        with torch.no_grad():
            self.default_initializers[name](self.framework_param(name), self)

    def _gluon_materialize(self, attr: str, shape: tuple[int, ...]) -> None:
        """A deferred parameter gets its Gluon shape (from data, a file or ``set_data``);
        only the tensors materialised here get the default values."""
        with torch.no_grad():
            weight = self._parameters["weight"]
            if attr == "weight" and isinstance(weight, UninitializedParameter):
                cin = shape[1] if self.layout == "NCHW" else shape[3]
                self.in_channels = cin * self.groups
                weight.materialize(self._weight_shape())
                self._default_init("weight")
            bias = self._parameters.get("bias")
            if isinstance(bias, UninitializedParameter):
                bias.materialize((self.out_channels,))
                self._default_init("bias")

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
            raise MXNetError(problem)
        if deferred:
            c = x.shape[1] if self.layout == "NCHW" else x.shape[3]
            w = self.__dict__["weight"]
            shape = list(w.shape)
            shape[1 if self.layout == "NCHW" else 3] = c // self.groups
            w._materialize(tuple(shape))
            self.in_channels = c  # also when the weight is shared with another layer
            for p in self._reg_params.values():
                if p._deferred_init:
                    p._finish_deferred_init()

    def _infer_shape_error(self, x: Tensor, deferred: bool) -> str | None:
        if x.dim() != 4:
            return (
                f"Check failed: dshp.ndim() == 4U ({x.dim()} vs. 4) : Input data should be 4D in "
                "batch-num_filter-y-x"
            )
        nhwc = self.layout == "NHWC"
        c = x.shape[3] if nhwc else x.shape[1]
        h, w = (x.shape[1], x.shape[2]) if nhwc else (x.shape[2], x.shape[3])
        if c % self.groups:
            return (
                f"Check failed: dshape[1] % param_.num_group == 0U ({c % self.groups} vs. 0) : "
                "input num_filter must divide group size"
            )
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation
        ph, pw = self._kwargs["pad"]
        for axis, size, k, d, p in (("y", h, kh, dh, ph), ("x", w, kw, dw, pw)):
            dk = d * (k - 1) + 1
            if dk > size + 2 * p:
                i = 0 if axis == "y" else 1
                return (
                    f"Check failed: dilated_ksize_{axis} <= AddPad(dshape[{i + 2}], "
                    f"param_.pad[{i}]) ({dk} vs. {size + 2 * p}) : kernel size exceed input"
                )
        weight = self._parameters["weight"]
        if not deferred and weight is not None and c != weight.shape[1] * self.groups:
            shape = self.__dict__["weight"].shape
            wrong = list(shape)
            wrong[3 if nhwc else 1] = c // self.groups
            inferred = "(" + ",".join(map(str, wrong)) + ")"
            return f"Shape inconsistent, Provided = {_shape_str(shape)}, inferred shape={inferred}"
        return None

    def hybrid_forward(self, F: Any, x: Any, weight: Any, bias: Any = None) -> Any:
        if F is _ndarray:
            # the math is omniconv.nn.Conv2d's, on the torch-layout parameters
            w, b = self._parameters["weight"], self._parameters.get("bias")
            assert w is not None
            out = self._conv_forward(x, w, b)
        else:
            out = F.Convolution(x, weight, bias, name="fwd", **self._kwargs)
        act = self.act
        return out if act is None else act(out)

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
        if kw["num_group"] != 1:
            s += f", groups={kw['num_group']}"
        if self._parameters.get("bias") is None:
            s += ", bias=False"
        if self.act is not None:
            s += f", {self.act!r}"
        s += ")"
        shape = self.__dict__["weight"].shape
        return s.format(mapping=f"{shape[1] if shape[1] else None} -> {shape[0]}")


def _check_op_args(
    channels: Any,
    kernel: Any,
    strides: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    in_channels: Any,
) -> None:
    """MXNet's Convolution parameter parser and shape checks, which MXNet runs at
    construction (``_infer_weight_shape``): MXNetError with MXNet's words."""

    def is_int(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    kernel = tuple(kernel)
    for field, value in (
        ("kernel", kernel),
        ("stride", strides),
        ("dilate", dilation),
        ("pad", padding),
    ):
        if not all(is_int(v) for v in value):
            raise MXNetError(
                f"Invalid Parameter format for {field} expect Shape(tuple) but value='{value}'"
            )
    for field, value in (("num_filter", channels), ("num_group", groups)):
        if not is_int(value):
            raise MXNetError(
                f"Invalid Parameter format for {field} expect int (non-negative) but "
                f"value='{value}'"
            )
    if channels < -1:
        raise MXNetError(
            f"Check failed: dim_size >= -1 ({channels} vs. -1) : shape dim size must be >= -1, "
            f"while received {channels}"
        )
    if channels < 1:
        raise MXNetError(f"value {channels} for Parameter num_filter should be greater equal to 1")
    if any(k == 0 for k in kernel):
        raise MXNetError(
            f"Check failed: param_.kernel.Size() > 0U (0 vs. 0) : incorrect kernel size: "
            f"{_shape_str(kernel)}"
        )
    for field, label, word, value in (
        ("stride", "Stride", "stride", strides),
        ("dilate", "Dilate", "dilate", dilation),
        ("pad", "Padding", "padding", padding),
    ):
        if len(value) != len(kernel):
            raise MXNetError(
                f"Check failed: param_.kernel.ndim() == param_.{field}.ndim() ({len(kernel)} vs. "
                f"{len(value)}) : {label} must have the same number of dimensions with "
                f"kernel_size,but kernel_size is set to {_shape_str(kernel)} while {word} is "
                f"{_shape_str(value)}"
            )
    ints = groups > 0
    if ints and in_channels and is_int(in_channels) and in_channels % groups:
        raise MXNetError(
            f"Check failed: dshape[1] % param_.num_group == 0U ({in_channels % groups} vs. 0) : "
            "input num_filter must divide group size"
        )
    if ints and channels % groups:
        raise MXNetError(
            f"Check failed: param_.num_filter % param_.num_group == 0U ({channels % groups} vs. "
            "0) : output num_filter must divide group size"
        )
    for field, value in (("stride", strides), ("dilate", dilation)):
        if any(v == 0 for v in value):
            raise MXNetError(
                f"Check failed: param_.{field}.Size() > 0U (0 vs. 0) : incorrect {field} size: "
                f"{_shape_str(value)}"
            )
