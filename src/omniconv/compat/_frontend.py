"""The one mixin every framework front-end layer is built on.

A front-end layer is an :mod:`omniconv.nn` module (which owns the parameters and the
math) plus :class:`FrontendMixin`, and *declares* what makes it the framework's layer in
class-level tables:

``param_views``
    ``{name: ParamView}``: how a parameter's torch layout and the framework's layout map
    onto each other (MegEngine's 5-D grouped weight and ``(1, C, 1, 1)`` bias, Gluon's
    OHWI weight for NHWC), both ways, as views that share storage.
``param_layout``
    which of the two layouts the parameters are stored in: ``"torch"`` (the framework's
    layout is a view, as for Gluon) or ``"framework"`` (``m.weight`` has the framework's
    shape, as MegEngine code expects: the stored shape is the view of torch's shape, and
    the torch layout is a view).
``default_initializers``
    ``{name: Initializer}``: the framework's default initialisation of each parameter
    (``Initializer(tensor_in_framework_layout, layer)``), applied by
    :meth:`FrontendMixin.reset_parameters` (and, one parameter at a time, by
    :meth:`FrontendMixin.init_parameter`); per-instance overrides (e.g. from a Paddle
    ``ParamAttr``) are the constructor's ``initializers=`` keyword, so each parameter is
    initialised once, at construction.
``error_types``
    ``{ValueError: FrameworkValueError, ...}``: the class each ``ValueError`` /
    ``TypeError`` of the :mod:`omniconv.nn` constructor becomes (the framework's type that
    is also the standard one; :mod:`omniconv.compat._errors`).
``arg_names``
    ``{omniconv name: framework name}``: the framework's names of the :mod:`omniconv.nn`
    constructor's arguments (Paddle 1.x's ``filter_size`` for ``kernel_size``, Gluon's
    ``strides`` for ``stride``, ...), so that an error the constructor raises names the
    argument the user wrote (:func:`omniconv.compat._errors.rename_args`).

Everything else (argument names, defaults, activation names, the framework's argument
checks and error words) is translated in the front-end's ``__init__``, which then calls
``super().__init__`` with the :mod:`omniconv.nn` constructor's arguments: the chain of
``__init__`` s is cooperative, so a front-end base class (MegEngine's ``Module``, Gluon's
``Block``) takes its own keywords and passes the rest on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ._errors import renamed_args

__all__ = ["FrontendMixin", "Initializer", "ParamView", "as_tensor"]

Initializer = Callable[[Tensor, nn.Module], None]


def _identity(t: Tensor, layer: nn.Module) -> Tensor:
    return t


@dataclass(frozen=True)
class ParamView:
    """A parameter's two layouts: ``to_framework(torch_layout, layer)`` and its inverse
    ``to_torch(framework_layout, layer)``, each a view (reshape/permute) of a contiguous
    tensor."""

    to_framework: Callable[[Tensor, nn.Module], Tensor] = _identity
    to_torch: Callable[[Tensor, nn.Module], Tensor] = _identity


def as_tensor(value: Any, name: str) -> Tensor:
    """A numpy array, torch tensor or nested sequence as a tensor (no pickles)."""
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, np.ndarray | np.generic | list | tuple | int | float):
        return torch.as_tensor(np.asarray(value))
    rule = "a numpy array or a torch.Tensor"
    raise TypeError(f"`{name}` must be {rule}; received {name}=<{type(value).__name__}>")


class FrontendMixin:
    """Framework layouts and initialisers over an :mod:`omniconv.nn` module."""

    param_views: ClassVar[Mapping[str, ParamView]] = {}
    param_layout: ClassVar[str] = "torch"
    default_initializers: ClassVar[Mapping[str, Initializer]] = {}
    error_types: ClassVar[Mapping[type[Exception], type[Exception]]] = {}
    arg_names: ClassVar[Mapping[str, str]] = {}
    _initializers: dict[str, Initializer]

    def __init__(
        self,
        *args: Any,
        initializers: Mapping[str, Initializer | None] | None = None,
        **kwargs: Any,
    ) -> None:
        """``initializers``: per-instance overrides of :attr:`default_initializers` (None
        entries ignored); the rest goes on to the next ``__init__`` (the module's, whose
        ``reset_parameters`` applies them)."""
        self._initializers = {k: v for k, v in (initializers or {}).items() if v is not None}
        with renamed_args(self.arg_names, self.error_types):
            super().__init__(*args, **kwargs)

    # -- layouts ---------------------------------------------------------------------
    def _stored_param(self, name: str) -> Any:
        """The registered parameter ``name`` (a front-end may shadow the attribute with its
        framework's parameter object, as Gluon does)."""
        params = getattr(self, "_parameters", {})
        return params[name] if name in params else getattr(self, name)

    def to_framework_layout(self, name: str, tensor: Tensor) -> Tensor:
        """A torch-layout value of parameter ``name`` in the framework's layout (a view)."""
        view = self.param_views.get(name)
        return tensor if view is None else view.to_framework(tensor, self)  # type: ignore[arg-type]

    def to_torch_layout(self, name: str, tensor: Tensor) -> Tensor:
        """A framework-layout value of parameter ``name`` in torch's layout (a view)."""
        view = self.param_views.get(name)
        return tensor if view is None else view.to_torch(tensor, self)  # type: ignore[arg-type]

    def framework_param(self, name: str) -> Tensor:
        """Parameter ``name`` in the framework's layout (itself, or a view: either way it
        shares storage and grad)."""
        tensor = self._stored_param(name)
        if tensor is None or self.param_layout == "framework":
            return tensor
        return self.to_framework_layout(name, tensor)

    def torch_param(self, name: str) -> Tensor:
        """Parameter ``name`` in torch's layout (itself, or a view)."""
        tensor = self._stored_param(name)
        if tensor is None or self.param_layout == "torch":
            return tensor
        return self.to_torch_layout(name, tensor)

    def framework_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.framework_param(name).shape)

    def _stored_shape(self, name: str, torch_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape parameter ``name`` is stored in, given its torch-layout shape."""
        if self.param_layout == "torch":
            return torch_shape
        meta = torch.empty(torch_shape, device="meta")
        return tuple(self.to_framework_layout(name, meta).shape)

    def _weight_shape(self) -> tuple[int, ...]:
        return self._stored_shape("weight", super()._weight_shape())  # type: ignore[misc]

    def _bias_shape(self) -> tuple[int, ...]:
        return self._stored_shape("bias", super()._bias_shape())  # type: ignore[misc]

    # -- initialisation --------------------------------------------------------------
    def init_parameter(self, name: str) -> None:
        """Initialise parameter ``name`` (in the framework's layout) with its per-instance
        override or the framework's default; nothing for an absent or uninitialised one."""
        tensor = self._stored_param(name)
        if tensor is None or isinstance(tensor, nn.parameter.UninitializedParameter):
            return
        overrides = getattr(self, "_initializers", {})
        init = overrides.get(name, self.default_initializers.get(name))
        if init is not None:
            with torch.no_grad():
                init(self.framework_param(name), self)

    def reset_parameters(self) -> None:
        """The framework's default initialisers (or the per-instance overrides)."""
        overrides = getattr(self, "_initializers", {})
        for name in dict.fromkeys([*self.default_initializers, *overrides]):
            self.init_parameter(name)
