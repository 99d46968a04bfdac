"""``mxnet.gluon.contrib.cnn.DeformableConvolution`` / ``ModulatedDeformableConvolution``
(MXNet 1.9.1) on PyTorch.

Each block is what MXNet's is: a Gluon ``HybridBlock`` with four parameters (an offset
convolution's ``offset_weight`` / ``offset_bias`` and the deformable convolution's
``deformable_conv_weight`` / ``deformable_conv_bias``, in MXNet's registration order) and a
``hybrid_forward`` that calls ``F.Convolution`` then ``F.contrib.DeformableConvolution``
(DCNv1) or, after slicing the offset conv's output into offsets and ``2 * sigmoid`` mask,
``F.contrib.ModulatedDeformableConvolution`` (DCNv2). Eagerly ``F`` is
:mod:`omniconv.compat.gluon._ndarray` (:func:`omniconv.functional.conv2d` and
:func:`omniconv.functional.deform_conv2d`); under ``export`` it records MXNet's graph.

**Sampling at the border.** DCNv1 (``DeformableConvolution``) samples as MXNet 1.9.1 does,
the original DCNv1 operator's rule (zero outside ``[0, H) x [0, W)``, the last row and
column held in ``[H - 1, H)`` / ``[W - 1, W)``; see :mod:`.._msra_border`), so MXNet's
weights give MXNet's numbers. DCNv2 uses the rule of MXNet's modulated operator, which is
omniconv's (and torchvision's): zero outside ``(-1, H) x (-1, W)``.

Checked at construction (MXNet checks most at the first forward): ``channels`` and
``in_channels`` against ``groups`` and ``num_deformable_group``, the offset convolution's
``2*kh*kw*dg`` (DCNv2: ``3*kh*kw*dg``) output channels against ``groups``, the
activation, and ``layout`` (MXNet's deformable operators take NCHW only).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from ....._args import as_int, check_fits, fail
from ...._errors import received
from ... import _ndarray
from ..._errors import MXNetTypeError, MXNetValueError
from ...block import HybridBlock
from ...init import check_initializer
from ...nn import (
    Activation,
    check_layout,
    check_op_args,
    check_two,
    expand,
    groups_error,
    inconsistent_error,
    input_4d_error,
    kernel_size_error,
    op_kwargs,
)
from ...parameter import Parameter

__all__ = ["DeformableConvolution", "ModulatedDeformableConvolution"]


class _Deformable(HybridBlock):
    """The constructor, deferred shapes and checks both deformable blocks share."""

    #: offset-conv output channels per tap and deformable group (2: offsets; 3: + mask)
    _per_tap: ClassVar[int]
    #: the MXNet operator of the deformable convolution (for its messages)
    _mx_op: ClassVar[str]
    _default_op_name: ClassVar[str]
    _kwargs_offset: dict[str, Any]
    _kwargs_deformable_conv: dict[str, Any]
    offset_weight: Parameter
    offset_bias: Parameter | None
    deformable_conv_weight: Parameter
    deformable_conv_bias: Parameter | None
    act: Activation | None

    def __init__(
        self,
        channels: int,
        kernel_size: Any = (1, 1),
        strides: Any = (1, 1),
        padding: Any = (0, 0),
        dilation: Any = (1, 1),
        groups: int = 1,
        num_deformable_group: int = 1,
        layout: str = "NCHW",
        use_bias: bool = True,
        in_channels: int = 0,
        activation: str | None = None,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        offset_weight_initializer: Any = "zeros",
        offset_bias_initializer: Any = "zeros",
        offset_use_bias: bool = True,
        op_name: str | None = None,
        adj: Any = None,
        prefix: str | None = None,
        params: Any = None,
    ) -> None:
        super().__init__(prefix=prefix, params=params)
        check_layout(layout)
        kernel_size = expand(kernel_size, 2)
        check_two(kernel_size, "kernel_size")
        strides, padding, dilation = (expand(v, 2) for v in (strides, padding, dilation))
        dg = num_deformable_group
        if as_int(dg) is None or any(as_int(k) is None for k in kernel_size):
            # MXNet multiplies them into the offset conv's num_filter first
            raise MXNetTypeError(
                received(
                    "Invalid Parameter format for num_filter expect int (non-negative): the "
                    "offset convolution has "
                    f"{self._per_tap}*kernel_size[0]*kernel_size[1]*num_deformable_group "
                    "channels",
                    num_deformable_group=dg,
                    kernel_size=kernel_size,
                )
            )
        if adj:
            raise MXNetTypeError(
                received("Cannot find argument 'adj', in operator Convolution", adj=adj)
            )
        offset_channels = self._per_tap * kernel_size[0] * kernel_size[1] * dg
        # the deformable convolution's arguments (MXNet: at the first forward; first here,
        # so that a bad kernel size is named as such, not as an empty offset conv) ...
        check_op_args(channels, kernel_size, strides, padding, dilation, groups, in_channels)
        # ... and the offset convolution's (MXNet infers its weight shape at construction)
        check_op_args(
            offset_channels, kernel_size, strides, padding, dilation, groups, in_channels,
            channels_arg=("num_deformable_group", dg),
        )  # fmt: skip
        self._check_deformable_groups(channels, in_channels, dg, layout)
        if activation:
            _ndarray.check_act_type(activation, "activation")
        for arg, flag in (("use_bias", use_bias), ("offset_use_bias", offset_use_bias)):
            if not isinstance(flag, bool):
                fail(arg, "True or False", flag, exc=MXNetTypeError)
        for arg, init in (
            ("weight_initializer", weight_initializer),
            ("bias_initializer", bias_initializer),
            ("offset_weight_initializer", offset_weight_initializer),
            ("offset_bias_initializer", offset_bias_initializer),
        ):
            check_initializer(init, arg)
        # both weights are allocated at the first forward: refuse sizes no input could
        # make fit now (the input channels at least groups)
        kh, kw = kernel_size
        c_in = max(in_channels // groups, 1)
        for shape, factors in (
            ((channels, c_in, kh, kw), (("channels", channels, channels),)),
            ((offset_channels, c_in, kh, kw), (("num_deformable_group", dg, offset_channels),)),
        ):
            (arg, value, _), *_ = sorted(
                (
                    *factors,
                    ("in_channels", in_channels, c_in),
                    ("kernel_size", kernel_size, kh * kw),
                ),
                key=lambda f: -f[2],
            )
            check_fits(shape, 4, "cpu", "the weight", arg, value)
        self._channels = channels
        self._in_channels = in_channels
        self._op_name = op_name or self._default_op_name
        geometry = (kernel_size, strides, dilation, padding)
        self._kwargs_offset = op_kwargs(*geometry, offset_channels, groups, offset_use_bias, layout)
        self._kwargs_deformable_conv = op_kwargs(
            *geometry, channels, groups, use_bias, layout, num_deformable_group=dg
        )
        kh, kw = kernel_size
        with self.name_scope():
            offset = (
                (offset_channels, in_channels // groups if in_channels else 0, kh, kw),
                offset_channels,
                offset_weight_initializer,
                offset_bias_initializer,
                offset_use_bias,
            )
            # MXNet leaves the deformable weight's in-channels 0 (deferred) even when
            # in_channels is given; its shape is a list until then
            deformable = (
                [channels, 0, kh, kw],
                channels,
                weight_initializer,
                bias_initializer,
                use_bias,
            )
            order = ["offset", "deformable_conv"]
            specs: list[tuple[Any, ...]] = [offset, deformable]
            if self._per_tap == 3:  # MXNet registers the modulated block's params the other way
                order, specs = order[::-1], specs[::-1]
            for name, (wshape, nbias, winit, binit, with_bias) in zip(order, specs, strict=True):
                setattr(
                    self, f"{name}_weight",
                    self.params.get(f"{name}_weight", shape=wshape, init=winit,
                                    allow_deferred_init=True),
                )  # fmt: skip
                bias = (
                    self.params.get(
                        f"{name}_bias", shape=(nbias,), init=binit, allow_deferred_init=True
                    )
                    if with_bias
                    else None
                )
                setattr(self, f"{name}_bias", bias)
            self.act = Activation(activation, prefix=activation + "_") if activation else None

    def _check_deformable_groups(
        self, channels: int, in_channels: int, dg: int, layout: str
    ) -> None:
        """The deformable operator's checks that do not need the data."""
        if in_channels and in_channels % dg:
            raise MXNetValueError(
                received(
                    f"Check failed: dshape[1] % param_.num_deformable_group == 0U "
                    f"({in_channels % dg} vs. 0) : input num_filter must divide deformable "
                    "group size",
                    in_channels=in_channels,
                    num_deformable_group=dg,
                )
            )
        if layout != "NCHW":
            raise MXNetValueError(
                received(
                    f"Invalid Input: '{layout}', valid values are: {{None, 'NCDHW', 'NCHW', "
                    f"'NCW'}}, in operator {self._mx_op}",
                    layout=layout,
                )
            )

    # -- deferred initialisation -------------------------------------------------------
    def _finish_deferred(self, x: Any, *args: Any) -> None:
        """MXNet's shape inference of both operators: the deferred in-channels from ``x``,
        and its errors (wrapped in MXNet's ValueError while initialisation is deferred)."""
        if not isinstance(x, Tensor):
            raise TypeError(
                f"`x` must be a torch.Tensor or a numpy array; received x=<{type(x).__name__}>"
            )
        params = list(self._reg_params.values())
        deferred = not all(p._materialized() for p in params)
        found = self._infer_shape_error(x)
        if found is not None:
            op, problem = found
            if deferred:
                raise ValueError(
                    "Deferred initialization failed because shape cannot be inferred. "
                    f"MXNetError: Error in operator {self.prefix}{op}: {problem}"
                )
            raise MXNetValueError(problem)
        if not deferred:
            return
        groups = self._kwargs_deformable_conv["num_group"]
        for p in params:
            if not p._materialized():
                shape = list(p.shape or ())
                if len(shape) == 4:
                    shape[1] = x.shape[1] // groups
                p._materialize(tuple(shape))
        for p in params:
            if p._deferred_init:
                p._finish_deferred_init()

    def _infer_shape_error(self, x: Tensor) -> tuple[str, str] | None:
        """``(operator, message)`` of the first check the data fails, else None."""
        conv = "convolution0"
        if x.dim() != 4:
            return conv, input_4d_error(x)
        c = x.shape[1]
        kw = self._kwargs_deformable_conv
        groups, dg = kw["num_group"], kw["num_deformable_group"]
        if c % groups:
            return conv, groups_error(c, groups)
        size = (x.shape[2], x.shape[3])
        problem = kernel_size_error(size, kw["kernel"], kw["stride"], kw["pad"], kw["dilate"])
        if problem is not None:
            return conv, problem
        for op, param in ((conv, self.offset_weight), ("fwd", self.deformable_conv_weight)):
            if param._materialized() and param.shape is not None and param.shape[1] * groups != c:
                return op, inconsistent_error(param.shape, 1, c // groups)
        if c % dg:
            return "fwd", (
                f"Check failed: dshape[1] % param_.num_deformable_group == 0U ({c % dg} vs. 0) "
                ": input num_filter must divide deformable group size"
            )
        return None

    def _alias(self) -> str:
        raise NotImplementedError


class DeformableConvolution(_Deformable):
    """``mxnet.gluon.contrib.cnn.DeformableConvolution`` (DCNv1, Dai et al. 2017).

    ``DeformableConvolution(channels, kernel_size=(1, 1), strides=(1, 1), padding=(0, 0),
    dilation=(1, 1), groups=1, num_deformable_group=1, layout='NCHW', use_bias=True,
    in_channels=0, activation=None, weight_initializer=None, bias_initializer='zeros',
    offset_weight_initializer='zeros', offset_bias_initializer='zeros',
    offset_use_bias=True, op_name='DeformableConvolution', adj=None, prefix=None,
    params=None)``.

    Parameters (Gluon names ``deformable_conv<k>_offset_weight``, ...; torch state-dict
    keys ``offset_weight``, ``offset_bias``, ``deformable_conv_weight``,
    ``deformable_conv_bias``): the offset conv's ``(2*kh*kw*dg, C_in/groups, kh, kw)``
    weight (a ``groups``-grouped conv with the layer's kernel, stride, padding and
    dilation, zero-initialised) and ``(2*kh*kw*dg,)`` bias, then the deformable conv's
    ``(channels, C_in/groups, kh, kw)`` weight (deferred until the first forward, as in
    MXNet, whatever ``in_channels``) and ``(channels,)`` bias. Offsets are
    ``(dy, dx)`` per tap, deformable groups take contiguous input channels.

    Samples at the image border as MXNet 1.9.1 does (the original DCNv1 operator's rule,
    :mod:`omniconv.compat.gluon._msra_border`), values and gradients.
    """

    _per_tap = 2
    _mx_op = "_contrib_DeformableConvolution"
    _default_op_name = "DeformableConvolution"

    def _alias(self) -> str:
        return "deformable_conv"

    def hybrid_forward(
        self,
        F: Any,
        x: Any,
        offset_weight: Any,
        deformable_conv_weight: Any,
        offset_bias: Any = None,
        deformable_conv_bias: Any = None,
    ) -> Any:
        offset = F.Convolution(x, offset_weight, offset_bias, cudnn_off=True, **self._kwargs_offset)
        out = F.contrib.DeformableConvolution(
            data=x, offset=offset, weight=deformable_conv_weight, bias=deformable_conv_bias,
            name="fwd", **self._kwargs_deformable_conv,
        )  # fmt: skip
        return out if self.act is None else self.act(out)

    def __repr__(self) -> str:
        kw = self._kwargs_deformable_conv
        n = len(kw["kernel"])
        s = f"{self.__class__.__name__}({{mapping}}, kernel_size={kw['kernel']}"
        s += f", stride={kw['stride']}"
        if kw["pad"] != (0,) * n:
            s += f", padding={kw['pad']}"
        if kw["dilate"] != (1,) * n:
            s += f", dilation={kw['dilate']}"
        if kw["num_group"] != 1:
            s += f", groups={kw['num_group']}"
        if self.deformable_conv_bias is None:
            s += ", bias=False"
        if self.act is not None:
            s += f", {self.act!r}"
        s += ")"
        shape = self.deformable_conv_weight.shape or ()
        return s.format(mapping=f"{shape[1] if shape[1] else None} -> {shape[0]}")


class ModulatedDeformableConvolution(_Deformable):
    """``mxnet.gluon.contrib.cnn.ModulatedDeformableConvolution`` (DCNv2, Zhu et al. 2019).

    The same signature and parameters as :class:`DeformableConvolution`
    (``op_name='ModulatedDeformableConvolution'``), registered in MXNet's order
    (``deformable_conv_weight``, ``deformable_conv_bias``, ``offset_weight``,
    ``offset_bias``). The offset conv has ``3*kh*kw*dg`` output channels: the first
    ``2*kh*kw*dg`` are the offsets, the rest the mask logits; the mask is
    ``2 * sigmoid(logits)`` (in ``(0, 2)``, 1 at the zero initialisation). ``channels``
    must be divisible by ``num_deformable_group`` (MXNet's modulated operator's rule).
    ``repr`` is Gluon's default block repr, as in MXNet.
    """

    _per_tap = 3
    _mx_op = "_contrib_ModulatedDeformableConvolution"
    _default_op_name = "ModulatedDeformableConvolution"

    @property
    def offset_split_index(self) -> int:
        """The offset conv's first mask channel (``2*kh*kw*num_deformable_group``)."""
        kh, kw = self._kwargs_offset["kernel"]
        return int(2 * kh * kw * self._kwargs_deformable_conv["num_deformable_group"])

    def _check_deformable_groups(
        self, channels: int, in_channels: int, dg: int, layout: str
    ) -> None:
        super()._check_deformable_groups(channels, in_channels, dg, layout)
        if channels % dg:
            raise MXNetValueError(
                received(
                    f"Check failed: oshape[1] % param_.num_deformable_group == 0U "
                    f"({channels % dg} vs. 0) : output num_filter must divide deformable "
                    "group size",
                    channels=channels,
                    num_deformable_group=dg,
                )
            )

    def _alias(self) -> str:
        return "modulated_deformable_conv"

    def hybrid_forward(
        self,
        F: Any,
        x: Any,
        offset_weight: Any,
        deformable_conv_weight: Any,
        offset_bias: Any = None,
        deformable_conv_bias: Any = None,
    ) -> Any:
        offset = F.Convolution(x, offset_weight, offset_bias, cudnn_off=True, **self._kwargs_offset)
        offset_t = F.slice_axis(offset, axis=1, begin=0, end=self.offset_split_index)
        mask = F.slice_axis(offset, axis=1, begin=self.offset_split_index, end=None)
        mask = F.sigmoid(mask) * 2
        out = F.contrib.ModulatedDeformableConvolution(
            data=x, offset=offset_t, mask=mask, weight=deformable_conv_weight,
            bias=deformable_conv_bias, name="fwd", **self._kwargs_deformable_conv,
        )  # fmt: skip
        return out if self.act is None else self.act(out)
