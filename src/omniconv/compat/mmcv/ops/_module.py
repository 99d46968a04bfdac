"""What mmcv's four deformable-conv layers share: constructor rules with mmcv's words,
the deprecated ``deformable_groups`` keyword, ``deform_groups``, the ``nn.Conv2d``
compatibility attributes, and a repr of the non-default arguments.

The layers are :class:`omniconv.nn.DeformConv2d` s (which own the parameters, in torch's
layout ``(C_out, C_in/groups, kh, kw)``, as mmcv's) with :class:`FrontendMixin` for
mmcv's initialisers.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from .... import nn as onn
from ...._args import check_positive_int
from ..._errors import received
from ..._frontend import FrontendMixin
from .._errors import MMCVAssertionError

__all__ = ["MMCVDeformConv", "renames_deformable_groups"]

F = TypeVar("F", bound=Callable[..., Any])


def renames_deformable_groups(cls_name: str) -> Callable[[F], F]:
    """mmcv's ``deprecated_api_warning({'deformable_groups': 'deform_groups'})`` on an
    ``__init__``: the old keyword still works, with a ``UserWarning``; both at once is an
    ``AssertionError``."""

    def wrap(init: F) -> F:
        @functools.wraps(init)
        def renamed(*args: Any, **kwargs: Any) -> Any:
            if "deformable_groups" in kwargs:
                if "deform_groups" in kwargs:
                    raise MMCVAssertionError(
                        "The expected behavior is to replace the deprecated key "
                        "`deformable_groups` to new key `deform_groups`, but got them in the "
                        "arguments at the same time, which is confusing. `deformable_groups "
                        "will be deprecated in the future, please use `deform_groups` instead."
                    )
                warnings.warn(
                    f'"deformable_groups" is deprecated in `{cls_name}.__init__`, please use '
                    '"deform_groups" instead',
                    stacklevel=2,
                )
                kwargs["deform_groups"] = kwargs.pop("deformable_groups")
            return init(*args, **kwargs)

        return renamed  # type: ignore[return-value]

    return wrap


class MMCVDeformConv(FrontendMixin, onn.DeformConv2d):
    """Base of mmcv's ``DeformConv2d`` and ``ModulatedDeformConv2d``.

    Checks at construction, with mmcv's words (``AssertionError`` s, also ``ValueError`` s):
    ``in_channels`` and ``out_channels`` divisible by ``groups`` (mmcv's ``DeformConv2d``
    asserts these; its ``ModulatedDeformConv2d`` fails at the first call instead), and
    ``in_channels`` divisible by ``deform_groups`` (mmcv's C++ op refuses it at each call;
    DCNv2's reads offsets out of range). Non-positive counts are ``ValueError`` s naming
    the argument (mmcv divides by zero or fails in its C++ op).
    """

    arg_names: ClassVar[Mapping[str, str]] = {"deformable_groups": "deform_groups"}
    #: the non-default arguments the repr shows: ``{attribute: mmcv's default}``
    _repr_defaults: ClassVar[Mapping[str, Any]]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        groups: int,
        deform_groups: int,
        bias: bool,
        modulated: bool,
        im2col_step: int,
    ) -> None:
        in_channels = check_positive_int(in_channels, "in_channels")
        out_channels = check_positive_int(out_channels, "out_channels")
        groups = check_positive_int(groups, "groups")
        deform_groups = check_positive_int(deform_groups, "deform_groups")
        if in_channels % groups:
            raise MMCVAssertionError(
                f"in_channels {in_channels} cannot be divisible by groups {groups}"
            )
        if out_channels % groups:
            raise MMCVAssertionError(
                f"out_channels {out_channels} cannot be divisible by groups {groups}"
            )
        if in_channels % deform_groups:
            raise MMCVAssertionError(
                received(
                    "input channels must divide deformable group size",
                    in_channels=in_channels,
                    deform_groups=deform_groups,
                )
            )
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
            deform_groups, bias=bias, modulated=modulated, im2col_step=im2col_step,
        )  # fmt: skip
        # mmcv's "compatibility with nn.Conv2d" attributes
        self.transposed = False
        self.output_padding = (0,)

    @property
    def deform_groups(self) -> int:
        """mmcv's name of the deformable-group count."""
        return self._fixed_deformable_groups()

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        for name, default in self._repr_defaults.items():
            value = getattr(self, name)
            if value != default:
                s += f", {name}={value!r}"
        if getattr(self, "bias", None) is None:
            s += ", bias=False"
        return s
