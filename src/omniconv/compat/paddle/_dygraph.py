"""``fluid.dygraph``: ``guard``, ``to_variable`` and ``Conv2DTranspose`` (Paddle 1.x)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from ... import nn as onn
from ..._args import check_positive_int, fail, type_name
from ..._shapes import conv_transpose_output_size
from .._errors import received
from .._frontend import FrontendMixin, Initializer
from ._activation import get_activation
from ._common import PaddleAssertionError, check_dtype_name, convert_to_list
from ._initializer import Constant, Xavier, apply_param_attrs, initializers_of, to_param_attr

__all__ = ["Conv2DTranspose", "guard", "to_variable"]


@contextmanager
def guard(place: Any = None) -> Iterator[None]:
    """``fluid.dygraph.guard``: PyTorch is always eager, so this only marks the block."""
    yield


def to_variable(
    value: Any, name: str | None = None, zero_copy: bool | None = None, dtype: Any = None
) -> Tensor:
    """``fluid.dygraph.to_variable``: a numpy array (copied, dtype kept) or tensor."""
    if isinstance(value, Tensor):
        out = value
    elif isinstance(value, np.ndarray | np.generic | list | tuple | int | float):
        out = torch.tensor(np.asarray(value))
    else:
        fail("value", "a numpy array or a tensor", type_name(value), exc=TypeError)
    return out if dtype is None else out.to(check_dtype_name(dtype))


_names = itertools.count()


class Conv2DTranspose(FrontendMixin, onn.ConvTranspose2d):
    """``fluid.dygraph.Conv2DTranspose`` on :class:`omniconv.nn.ConvTranspose2d`.

    Weight ``[num_channels, num_filters // groups, kh, kw]`` (torch's layout) with
    Paddle's default Xavier-uniform: ``limit = sqrt(6 / (fan_in + fan_out))``,
    ``fan_in = (num_filters/groups)*kh*kw``, ``fan_out = num_channels*kh*kw``; bias
    ``[num_filters]`` = 0 (``bias_attr=False``: none). ``output_size``: None, an int or a
    list (a tuple raises Paddle's ``ValueError("output_size should be list or int")``);
    each size must lie in ``[infer, infer + stride)`` (Paddle's rule and error text),
    the extra rows/columns at the bottom/right. ``act``: a Paddle activation name with
    Paddle's op defaults (``leaky_relu`` 0.02, ``softmax`` over the last axis, ...),
    applied after the bias. ``dtype``: ``'float32'`` or ``'float64'``. ``use_cudnn`` is
    accepted and ignored. State-dict keys ``weight`` / ``bias`` as Paddle's dygraph.
    """

    default_initializers: ClassVar[Mapping[str, Initializer]] = {
        "weight": Xavier(uniform=True),
        "bias": Constant(0.0),
    }

    def __init__(
        self,
        num_channels: int,
        num_filters: int,
        filter_size: Any,
        output_size: Any = None,
        padding: Any = 0,
        stride: Any = 1,
        dilation: Any = 1,
        groups: int | None = None,
        param_attr: Any = None,
        bias_attr: Any = None,
        use_cudnn: bool = True,
        act: Any = None,
        dtype: Any = "float32",
    ) -> None:
        if param_attr is False:
            raise PaddleAssertionError("param_attr should not be False in conv2d_transpose.")
        num_channels = check_positive_int(num_channels, "num_channels")
        torch_dtype = check_dtype_name(dtype)
        groups = 1 if groups is None else groups
        kernel = convert_to_list(filter_size, 2, "conv2d_transpose.filter_size")
        padding_ = convert_to_list(padding, 2, "padding")
        stride_ = convert_to_list(stride, 2, "stride")
        dilation_ = convert_to_list(dilation, 2, "dilation")
        if output_size is None:
            out_size = None
        elif isinstance(output_size, list | int):
            out_size = convert_to_list(output_size, 2, "output_size")
        else:
            raise ValueError(received("output_size should be list or int", output_size=output_size))
        activation = get_activation(act, "act")
        wattr = to_param_attr(param_attr)
        battr = to_param_attr(bias_attr, "bias_attr")
        attrs = {"weight": wattr, "bias": battr}
        super().__init__(
            num_channels, num_filters, tuple(kernel), tuple(stride_), tuple(padding_),
            groups=groups, bias=battr is not None, dilation=tuple(dilation_),
            activation=activation, dtype=torch_dtype, initializers=initializers_of(attrs),
        )  # fmt: skip
        apply_param_attrs(self, attrs)
        self.output_size = out_size
        self.act = act
        self._full_name = f"conv2_d_transpose_{next(_names)}"

    def full_name(self) -> str:
        """Paddle's unique layer name (``conv2_d_transpose_N``); the parameters are
        ``<full_name>.w_0`` / ``.b_0`` in Paddle."""
        return self._full_name

    def _check_output_size(self, input: Tensor, size: list[int]) -> None:
        """Paddle's rule and words: ``infer <= output_size < infer + stride``."""
        hw = (int(input.shape[2]), int(input.shape[3]))
        infer = conv_transpose_output_size(
            hw, self.kernel_size, self.stride, self._resolved_padding, self.dilation
        )
        for i in range(2):
            s = self.stride[i]
            if size[i] < infer[i]:
                raise ValueError(
                    "output_size of Op(ConvTransposeOp) should not be less than the inferred "
                    f"output size. But received output_size = [{size}], whose dim {i} is less "
                    f"than the inferred output size [{infer[i]}]"
                )
            if size[i] >= infer[i] + s:
                raise ValueError(
                    "output_size of Op(ConvTransposeOp) should be less than inferred size + "
                    f"stride. But received output_size = [{size}], whose dim {i} is not less "
                    f"than the inferred output size ({infer[i]}) + stride ({s}) = {infer[i] + s}"
                )

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        if output_size is not None:
            fail(
                "output_size",
                "given to the constructor (Paddle's forward takes only input)",
                output_size,
            )
        if self.output_size is not None and isinstance(input, Tensor) and input.dim() == 4:
            self._check_output_size(input, self.output_size)
        return super().forward(input, self.output_size)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.output_size is not None:
            s += f", output_size={self.output_size}"
        if self.act is not None:
            s += f", act={self.act!r}"
        return s
