"""MegEngine's ``Tensor`` / ``tensor`` / ``Parameter`` as a :class:`torch.Tensor` subclass.

MegEngine code calls ``.numpy()`` on anything, including the output of a module whose
parameters require grad; PyTorch refuses that. :class:`Tensor` is a plain
:class:`torch.Tensor` subclass whose :meth:`Tensor.numpy` detaches (and copies, as
MegEngine hands back host values that do not alias the tensor). Every torch op on it
returns a :class:`Tensor` again (torch's subclass propagation), so autograd, optimizers
and ``torch.nn`` work unchanged.

Construction follows MegEngine: numpy / Python data without ``dtype`` becomes
``float32`` (from float64) or ``int32`` (from int64), because MegEngine has no 64-bit
device types; pass ``dtype`` explicitly to keep float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["Parameter", "Tensor", "tensor", "to_torch_device", "to_torch_dtype"]

_DOWNCAST = {np.dtype(np.float64): np.float32, np.dtype(np.int64): np.int32}


def to_torch_dtype(dtype: Any) -> torch.dtype | None:
    """A numpy dtype, a dtype name (``'float32'``) or a torch dtype as a torch dtype."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    np_dtype = np.dtype(dtype)
    return torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype


def to_torch_device(device: Any) -> torch.device | None:
    """MegEngine device names (``'xpux'``, ``'cpu0'``, ``'cpux'``, ``'gpu1'``) as torch devices."""
    if device is None or isinstance(device, torch.device):
        return device
    name = str(device)
    if name.startswith(("xpu", "cpu")):
        return torch.device("cpu")
    if name.startswith("gpu"):
        index = name[3:]
        return torch.device("cuda" if index in ("", "x") else f"cuda:{int(index)}")
    return torch.device(name)


def _as_torch(data: Any, dtype: Any, device: Any) -> torch.Tensor:
    tdtype, tdevice = to_torch_dtype(dtype), to_torch_device(device)
    if isinstance(data, torch.Tensor):
        out = data.detach()
    else:
        array = np.asarray(data)
        if dtype is None and array.dtype in _DOWNCAST:
            array = array.astype(_DOWNCAST[array.dtype])
        out = torch.as_tensor(array)
    return out.to(dtype=tdtype, device=tdevice)


def _make(cls: Any, data: Any, dtype: Any, device: Any, *, requires_grad: bool) -> Any:
    """A ``cls`` instance sharing the converted data (``None`` is an empty tensor)."""
    base = _as_torch([] if data is None else data, dtype, device)
    return torch.Tensor._make_subclass(cls, base, requires_grad)


class Tensor(torch.Tensor):
    """``megengine.Tensor(data, dtype=None, device=None, ...)`` on PyTorch.

    ``is_const``, ``no_cache``, ``name`` and ``format`` are accepted and ignored
    (``Tensor.name`` is torch's own attribute).
    """

    def __new__(
        cls,
        data: Any = None,
        dtype: Any = None,
        device: Any = None,
        is_const: bool = False,
        no_cache: bool = False,
        name: str | None = None,
        format: str = "default",
    ) -> Tensor:
        return _make(cls, data, dtype, device, requires_grad=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The value as a new numpy array (detached from autograd, never aliasing)."""
        with torch._C.DisableTorchFunctionSubclass():
            return torch.Tensor.numpy(self.detach().cpu(), force=True).copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> Tensor:
        if id(self) not in memo:
            with torch._C.DisableTorchFunctionSubclass():
                data = self.detach().clone()
            out = torch.Tensor._make_subclass(type(self), data, self.requires_grad)
            if getattr(self, "_is_param", False):
                out._is_param = True
            memo[id(self)] = out
        return memo[id(self)]

    def astype(self, dtype: Any) -> Tensor:
        """MegEngine's ``astype``: a cast to ``dtype`` (numpy dtype or name)."""
        return self.to(to_torch_dtype(dtype))  # type: ignore[return-value]


tensor = Tensor  # ``megengine.tensor`` is the class itself, as in MegEngine


class Parameter(Tensor):
    """``megengine.Parameter``: a trainable :class:`Tensor`.

    It requires grad and counts as a :class:`torch.nn.Parameter`
    (``isinstance(p, torch.nn.Parameter)`` is True), so assigning it to a module attribute
    registers it and torch optimizers train it.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Parameter:
        out: Parameter = super().__new__(cls, *args, **kwargs)  # type: ignore[assignment]
        out.requires_grad_(True)
        out._is_param = True
        return out

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        # results of ops on a Parameter are plain Tensors, as in MegEngine
        types = tuple(Tensor if issubclass(t, Parameter) else t for t in types)
        return Tensor.__torch_function__(func, types, args, kwargs)
