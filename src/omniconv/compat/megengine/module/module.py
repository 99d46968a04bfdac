"""``megengine.module.Module``: a :class:`torch.nn.Module` with MegEngine's state dicts.

* ``state_dict(rst=None, prefix='', keep_var=False)``: an ``OrderedDict`` of numpy arrays
  (copies) in MegEngine's layouts, keys sorted; ``keep_var=True`` gives the tensors
  (the parameters themselves, attached to autograd).
* ``load_state_dict(state_dict, strict=True)``: a dict of numpy arrays **or torch
  tensors** in MegEngine's layout, or MegEngine's ``closure(key, var)`` callable, with
  MegEngine's shape, unused and missing checks (see :mod:`._state`). Values are cast to
  the parameter's dtype (MegEngine would adopt the array's dtype).
* The parameters have MegEngine's shapes (``Conv2d``'s 5-D grouped weight), so a torch
  parent (``torch.nn.Sequential(conv)``) sees them too. PyTorch layouts (those of
  ``torch.nn.Conv2d``) are :meth:`Module.torch_state_dict` and
  :meth:`Module.load_torch_state_dict`.

Everything else (``parameters()``, ``train()``, ``eval()``, hooks, ``.to()``) is torch's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from ..._errors import received
from .._errors import MegEngineAssertionError
from .._state import (
    StateSource,
    load_megengine,
    megengine_entries,
    megengine_to_torch,
    torch_to_megengine,
)

__all__ = ["Module", "check_name"]


def check_name(name: Any) -> None:
    """MegEngine's ``Module(name=...)`` rule."""
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise MegEngineAssertionError(
            received("Module's name must be a non-empty string", name=name)
        )


class Module(nn.Module):
    """Base of MegEngine-style modules; subclass it as in MegEngine.

    ``__init__(name=None, **kwargs)`` is cooperative: a MegEngine layer that is also an
    :mod:`omniconv.nn` module passes that constructor's keywords on through it."""

    name: str | None

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        check_name(name)
        super().__init__(**kwargs)
        self.name = name

    def state_dict(
        self,
        rst: dict[str, Any] | None = None,
        prefix: str = "",
        keep_var: bool = False,
        **torch_kwargs: Any,
    ) -> Any:
        """MegEngine's state dict (see the module docstring). Called by a torch parent
        (``destination=`` / ``keep_vars=``), it is torch's, so nesting in torch works."""
        if torch_kwargs:
            return nn.Module.state_dict(self, prefix=prefix, **torch_kwargs)
        out: OrderedDict[str, Any] = OrderedDict()
        for key, value in megengine_entries(self).items():
            out[prefix + key] = value if keep_var else value.detach().cpu().numpy().copy()
        if rst is not None:
            rst.update(out)
            return rst
        return out

    def load_state_dict(self, state_dict: StateSource, strict: bool = True) -> None:  # type: ignore[override]
        """Load MegEngine-layout values (numpy arrays or torch tensors) or a closure."""
        load_megengine(self, state_dict, strict=strict)

    def torch_state_dict(self) -> dict[str, Tensor]:
        """The state in PyTorch's layouts (``torch.nn.Conv2d``'s), detached tensors that
        share the parameters' storage."""
        entries = self.state_dict(keep_var=True)
        return {k: v.detach() for k, v in megengine_to_torch(entries, self).items()}

    def load_torch_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Load a PyTorch-layout state dict (e.g. ``torch.nn.Conv2d``'s)."""
        self.load_state_dict(torch_to_megengine(state_dict, self, strict=strict), strict=strict)
