"""The one mixin every framework front-end layer is built on.

A front-end layer is an :mod:`omniconv.nn` module (which owns the parameters, in
PyTorch's layout, and the math) plus :class:`FrontendMixin`, and *declares* what makes
it the framework's layer in class-level tables:

``param_views``
    ``{name: ParamView}``: how a torch-layout parameter looks in the framework
    (MegEngine's 5-D grouped weight and ``(1, C, 1, 1)`` bias, Gluon's OHWI weight for
    NHWC). The view shares storage, so gradients and in-place updates flow both ways.
``default_initializers``
    ``{name: Initializer}``: the framework's default initialisation of each parameter
    (``Initializer(tensor_in_framework_layout, layer)``), applied by
    :meth:`FrontendMixin.reset_parameters`; per-instance overrides go in
    ``self._initializers`` (e.g. from a ``ParamAttr`` or ``weight_initializer``).

Everything else (argument names, defaults, activation names) is translated in the
front-end's ``__init__`` before calling the :mod:`omniconv.nn` constructor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["FrontendMixin", "Initializer", "ParamView", "as_tensor"]

Initializer = Callable[[Tensor, nn.Module], None]


def _identity(t: Tensor, layer: nn.Module) -> Tensor:
    return t


@dataclass(frozen=True)
class ParamView:
    """A parameter in the framework's layout, as a view of the torch-layout tensor.

    ``to_framework(torch_tensor, layer)`` must return a view (reshape/permute of a
    contiguous tensor); ``to_torch(framework_tensor, layer)`` is its inverse.
    """

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
    default_initializers: ClassVar[Mapping[str, Initializer]] = {}
    _initializers: dict[str, Initializer]

    # -- layouts ---------------------------------------------------------------------
    def _torch_param(self, name: str) -> Any:
        """The torch-layout parameter ``name`` (a front-end may shadow the attribute with
        its framework's parameter object, as Gluon does)."""
        params = getattr(self, "_parameters", {})
        return params[name] if name in params else getattr(self, name)

    def framework_param(self, name: str) -> Tensor:
        """Parameter ``name`` in the framework's layout (a view: shares storage and grad)."""
        tensor = self._torch_param(name)
        view = self.param_views.get(name)
        return tensor if view is None else view.to_framework(tensor, self)  # type: ignore[arg-type]

    def framework_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.framework_param(name).shape)

    def set_framework_param(self, name: str, value: Any) -> None:
        """Copy ``value`` (framework layout, framework shape) into parameter ``name``."""
        data = as_tensor(value, name)
        expected = self.framework_shape(name)
        if tuple(data.shape) != expected:
            raise ValueError(
                f"`{name}` must have shape {expected}; received {name}.shape={tuple(data.shape)}"
            )
        target = self._torch_param(name)
        view = self.param_views.get(name)
        data = data.to(dtype=target.dtype, device=target.device)
        with torch.no_grad():
            target.copy_(data if view is None else view.to_torch(data, self))  # type: ignore[arg-type]

    # -- initialisation --------------------------------------------------------------
    def reset_parameters(self) -> None:
        """The framework's default initialisers (or the per-instance overrides)."""
        overrides = getattr(self, "_initializers", {})
        for name in dict.fromkeys([*self.default_initializers, *overrides]):
            tensor = self._torch_param(name)
            if tensor is None or isinstance(tensor, nn.parameter.UninitializedParameter):
                continue
            init = overrides.get(name, self.default_initializers.get(name))
            if init is None:
                continue
            with torch.no_grad():
                init(self.framework_param(name), self)
