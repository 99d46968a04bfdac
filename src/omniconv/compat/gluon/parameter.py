"""Gluon ``Parameter`` / ``ParameterDict``: Gluon's API over torch parameters.

A :class:`Parameter` bound to a block is a *view* of the block's torch parameter
(``block._parameters[attr]``, PyTorch's layout), shown in Gluon's layout through the
block's declared ``param_views``: ``.data()``, ``.grad()`` and ``.set_data()`` read and
write the same storage, and torch's ``state_dict()`` keeps the torch names.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parameter import UninitializedParameter

from ...io._atomic import atomic_write
from .._errors import received
from .._frontend import FrontendMixin
from . import _symbol
from . import init as _init
from ._errors import DeferredInitializationError, GluonAssertionError, MXNetValueError
from ._ndarray_file import dumps, loads

__all__ = ["DeferredInitializationError", "Parameter", "ParameterDict"]

_TORCH_DTYPES: dict[np.dtype[Any], torch.dtype] = {
    np.dtype("float32"): torch.float32,
    np.dtype("float64"): torch.float64,
    np.dtype("float16"): torch.float16,
    np.dtype("uint8"): torch.uint8,
    np.dtype("int32"): torch.int32,
    np.dtype("int8"): torch.int8,
    np.dtype("int64"): torch.int64,
}
_NP_DTYPES: dict[torch.dtype, np.dtype[Any]] = {v: k for k, v in _TORCH_DTYPES.items()}


_TYPE_FLAG = {np.dtype("float32"): 0, np.dtype("float64"): 1, np.dtype("float16"): 2}


def torch_dtype(dtype: Any) -> torch.dtype:
    """A numpy dtype, its name or a torch dtype as a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _TORCH_DTYPES[np.dtype(dtype)]
    except (TypeError, KeyError):
        raise TypeError(
            "`dtype` must be one of float32, float64, float16, uint8, int32, int8, int64; "
            f"received dtype={dtype!r}"
        ) from None


def numpy_type(dtype: torch.dtype) -> type:
    return _NP_DTYPES[dtype].type


def shape_is_known(shape: tuple[int, ...] | list[int] | None) -> bool:
    return shape is not None and all(d > 0 for d in shape)


class Parameter:
    """A Gluon parameter (``mxnet.gluon.Parameter``) backed by a torch parameter.

    Gradients come from torch's autograd, so they accumulate across ``backward()``
    calls as in PyTorch (``grad_req='write'`` and ``'add'`` alike; ``'null'`` turns
    ``requires_grad`` off): call :meth:`zero_grad` (or the torch optimiser's) between steps.
    """

    def __init__(
        self,
        name: str,
        grad_req: str = "write",
        shape: Any = None,
        dtype: Any = np.float32,
        lr_mult: float = 1.0,
        wd_mult: float = 1.0,
        init: Any = None,
        allow_deferred_init: bool = False,
        differentiable: bool = True,
        stype: str = "default",
        grad_stype: str = "default",
    ) -> None:
        if stype != "default" or grad_stype != "default":
            raise ValueError("`stype` must be 'default'; sparse parameters are not supported")
        self.name = name
        if isinstance(shape, int):
            shape = (shape,)
        # kept as given (MXNet shows a list shape, e.g. a deformable conv's deferred
        # ``[8, 0, 3, 3]``, as a list until the shape is known)
        self._shape: tuple[int, ...] | list[int] | None = (
            None if shape is None else shape if isinstance(shape, list) else tuple(shape)
        )
        self._torch_dtype = torch_dtype(dtype)
        self._dtype: Any = dtype  # shown as given (np.float32, or 'float16' after cast)
        self.lr_mult = lr_mult
        self.wd_mult = wd_mult
        self.init = init
        self._allow_deferred_init = allow_deferred_init
        self._differentiable = differentiable
        self._grad_req = "write"
        self._initialized = False
        self._deferred_init: tuple[Any, ...] = ()
        self._tensor: Tensor = UninitializedParameter(dtype=self._torch_dtype)  # type: ignore[call-arg]
        self._binding: tuple[nn.Module, str] | None = None
        self.grad_req = grad_req if differentiable else "null"

    # -- storage ---------------------------------------------------------------------
    def _bind(self, module: nn.Module, attr: str) -> None:
        """Make this parameter a view of ``module._parameters[attr]``."""
        self._binding = (module, attr)
        self._tensor = module._parameters[attr]  # type: ignore[assignment]
        self._apply_grad_req()

    def _torch(self) -> Tensor:
        if self._binding is not None:
            module, attr = self._binding
            tensor = module._parameters.get(attr)
            if tensor is not None:
                self._tensor = tensor
        return self._tensor

    def _materialized(self) -> bool:
        return not isinstance(self._torch(), UninitializedParameter)

    def _to_framework(self, t: Tensor) -> Tensor:
        """A torch-layout value in Gluon's layout, through the owner's declared views."""
        owner = self._owner()
        return t if owner is None else owner.to_framework_layout(self._binding[1], t)  # type: ignore[index]

    def _to_torch(self, t: Tensor) -> Tensor:
        owner = self._owner()
        return t if owner is None else owner.to_torch_layout(self._binding[1], t)  # type: ignore[index]

    def _owner(self) -> FrontendMixin | None:
        """The layer this parameter is bound to, if it declares layouts."""
        if self._binding is None or not isinstance(self._binding[0], FrontendMixin):
            return None
        return self._binding[0]

    def _materialize(self, shape: tuple[int, ...]) -> None:
        """Give a deferred parameter its Gluon shape (the owner infers its torch shape)."""
        if self._materialized():
            return
        if self._binding is not None:
            module, attr = self._binding
            hook = getattr(module, "_gluon_materialize", None)
            if hook is not None:
                hook(attr, shape)
                self._apply_grad_req()
                return
        with torch.no_grad():
            self._torch().materialize(shape, dtype=self._torch_dtype)  # type: ignore[attr-defined]
        self._apply_grad_req()

    # -- attributes ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...] | list[int] | None:
        if self._materialized():
            return tuple(self._to_framework(self._torch()).shape)
        return self._shape

    @shape.setter
    def shape(self, new_shape: Any) -> None:
        new_shape = tuple(new_shape)
        old = self.shape
        if old is None:
            self._shape = new_shape
            return
        if len(old) != len(new_shape) or any(
            i != j and i != 0 for i, j in zip(old, new_shape, strict=True)
        ):
            raise GluonAssertionError(
                f"Expected shape {new_shape} is incompatible with given shape {old}."
            )
        self._shape = new_shape

    @property
    def dtype(self) -> Any:
        """The dtype as MXNet shows it: ``numpy.float32`` or what ``cast`` was given."""
        return self._dtype

    def _np_type(self) -> type:
        return numpy_type(self._torch().dtype if self._materialized() else self._torch_dtype)

    @property
    def grad_req(self) -> str:
        return self._grad_req

    @grad_req.setter
    def grad_req(self, req: str) -> None:
        if req not in ("write", "add", "null"):
            raise GluonAssertionError(
                f"grad_req must be one of 'write', 'add', or 'null', but got '{req}'"
            )
        if not self._differentiable:
            req = "null"
        self._grad_req = req
        self._apply_grad_req()

    def _apply_grad_req(self) -> None:
        t = self._torch()
        if isinstance(t, nn.Parameter) and not isinstance(t, UninitializedParameter):
            t.requires_grad_(self._grad_req != "null")

    def __repr__(self) -> str:
        return f"Parameter {self.name} (shape={self.shape}, dtype={self.dtype})"

    # -- data --------------------------------------------------------------------------
    def _check_initialized(self) -> None:
        if self._initialized:
            return
        if self._deferred_init:
            raise DeferredInitializationError(
                f"Parameter '{self.name}' has not been initialized yet because initialization "
                "was deferred. Actual initialization happens during the first forward pass. "
                "Please pass one batch of data through the network before accessing Parameters. "
                "You can also avoid deferred initialization by specifying in_units, "
                "num_features, etc., for network layers."
            )
        raise RuntimeError(
            f"Parameter '{self.name}' has not been initialized. Note that you should initialize "
            "parameters and create Trainer with Block.collect_params() instead of Block.params "
            "because the later does not include Parameters of nested child Blocks"
        )

    def data(self, ctx: Any = None) -> Tensor:
        """The value in Gluon's layout: a view of the torch parameter (shares storage)."""
        self._check_initialized()
        return self._to_framework(self._torch())

    def list_data(self) -> list[Tensor]:
        return [self.data()]

    def list_ctx(self) -> list[str]:
        return ["cpu(0)"]

    def grad(self, ctx: Any = None) -> Tensor:
        """The gradient in Gluon's layout (zeros before any backward), a view of ``.grad``."""
        self._check_initialized()
        if self._grad_req == "null":
            raise RuntimeError(
                f"Cannot get gradient array for Parameter '{self.name}' because grad_req='null'"
            )
        t = self._torch()
        if t.grad is None:
            t.grad = torch.zeros_like(t)
        return self._to_framework(t.grad)

    def list_grad(self) -> list[Tensor]:
        return [self.grad()]

    def zero_grad(self) -> None:
        t = self._torch()
        if t.grad is not None:
            t.grad.zero_()

    def set_data(self, data: Any) -> None:
        """Copy ``data`` (Gluon's layout) into the parameter."""
        value = data.detach() if isinstance(data, Tensor) else torch.as_tensor(np.asarray(data))
        if not self._initialized and not self._deferred_init:
            raise GluonAssertionError(f"Parameter '{self.name}' has not been initialized")
        self.shape = tuple(value.shape)
        if not self._materialized():
            self._materialize(tuple(value.shape))
        if not self._initialized:
            # MXNet keeps the data for the end of deferred initialisation; here the shape
            # is known from the data, so the parameter is initialised with it at once
            self._initialized = True
            self._deferred_init = ()
        target = self._torch()
        with torch.no_grad():
            target.copy_(self._to_torch(value.to(target.dtype)))

    # -- initialisation --------------------------------------------------------------
    def initialize(
        self,
        init: Any = None,
        ctx: Any = None,
        default_init: Any = None,
        force_reinit: bool = False,
    ) -> None:
        if default_init is None:
            default_init = _init.Uniform()
        if self._initialized and not force_reinit:
            warnings.warn(
                f"Parameter '{self.name}' is already initialized, ignoring. "
                "Set force_reinit=True to re-initialize.",
                stacklevel=2,
            )
            return
        self._initialized = False
        if init is None:
            init = default_init if self.init is None else self.init
        self._deferred_init = (init, ctx, default_init)
        shape = self.shape
        if not self._materialized():
            if shape is None or not shape_is_known(shape):
                if self._allow_deferred_init:
                    return
                raise ValueError(
                    f"Cannot initialize Parameter '{self.name}' because it has invalid shape: "
                    f"{shape}."
                )
            self._materialize(tuple(shape))
        self._finish_deferred_init()

    def _finish_deferred_init(self) -> None:
        if not self._deferred_init:
            return
        init, _ctx, default_init = self._deferred_init
        if not self._materialized():
            raise DeferredInitializationError(
                f"Parameter '{self.name}' has not been initialized yet because initialization "
                "was deferred."
            )
        desc = _init.InitDesc(self.name, {"__init__": init})
        with torch.no_grad():
            _init.create(default_init)(desc, self._to_framework(self._torch()))
        self._deferred_init = ()
        self._initialized = True

    def cast(self, dtype: Any) -> None:
        dt = torch_dtype(dtype)
        self._torch_dtype = dt
        self._dtype = dtype
        t = self._torch()
        if isinstance(t, UninitializedParameter):
            t.data = torch.empty(0, dtype=dt)  # keeps it uninitialised, records the dtype
            self._tensor = t
            return
        with torch.no_grad():
            t.data = t.data.to(dt)
            if t.grad is not None:
                t.grad = t.grad.to(dt)

    def var(self) -> _symbol.Symbol:
        """The symbol variable (MXNet caches it at its first use, shape included)."""
        cached: _symbol.Symbol | None = self.__dict__.get("_var")
        if cached is not None:
            return cached
        attrs = {
            "__dtype__": str(_TYPE_FLAG[np.dtype(self._np_type())]),
            "__lr_mult__": repr(float(self.lr_mult)),
            "__shape__": str(self.shape),
            "__storage_type__": "0",
            "__wd_mult__": repr(float(self.wd_mult)),
        }
        if self.init is not None:
            attrs["__init__"] = self.init if isinstance(self.init, str) else self.init.dumps()
        sym = _symbol.var(self.name, attrs)
        self.__dict__["_var"] = sym
        return sym

    def _reduce(self) -> np.ndarray:
        """The value as a numpy array in Gluon's layout (for ``.params`` files)."""
        return self.data().detach().cpu().contiguous().numpy().copy()

    def _load_init(self, data: np.ndarray, cast_dtype: bool = False) -> None:
        shape = self.shape
        if shape is not None and (
            len(shape) != data.ndim
            or any(i != j and i != 0 for i, j in zip(shape, data.shape, strict=True))
        ):
            raise GluonAssertionError(
                f"Failed loading Parameter '{self.name}' from saved params: shape incompatible "
                f"expected {shape} vs saved {data.shape}"
            )
        if data.dtype.type is not self._np_type():
            if not cast_dtype:
                raise GluonAssertionError(
                    f"Failed loading Parameter '{self.name}' from saved params: dtype "
                    f"incompatible expected {self.dtype} vs saved {data.dtype.type}. Set "
                    "cast_dtype=True to cast the dtype of saved params."
                )
            data = data.astype(self._np_type())
        if not self._initialized and not self._deferred_init:
            self._deferred_init = (_init.Zero(), None, _init.Zero())
        self.set_data(torch.from_numpy(np.ascontiguousarray(data)))


class ParameterDict:
    """Gluon's ordered, prefixed parameter dictionary."""

    def __init__(self, prefix: str = "", shared: ParameterDict | None = None) -> None:
        self._prefix = prefix
        self._params: OrderedDict[str, Parameter] = OrderedDict()
        self._shared = shared

    @property
    def prefix(self) -> str:
        return self._prefix

    def __repr__(self) -> str:
        body = "\n".join(f"  {p!r}" for p in self.values())
        return f"{self._prefix} (\n{body}\n)"

    def __getitem__(self, key: str) -> Parameter:
        return self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, key: object) -> bool:
        return key in self._params

    def items(self) -> Any:
        return self._params.items()

    def keys(self) -> Any:
        return self._params.keys()

    def values(self) -> Any:
        return self._params.values()

    def _get_impl(self, name: str) -> Parameter | None:
        if name in self._params:
            return self._params[name]
        if self._shared is not None and name in self._shared._params:
            self._params[name] = self._shared._params[name]
            return self._params[name]
        return None

    def get(self, name: str, **kwargs: Any) -> Parameter:
        """The parameter ``prefix + name``, created with ``kwargs`` if it does not exist."""
        full = self._prefix + name
        param = self._get_impl(full)
        if param is None:
            param = Parameter(full, **kwargs)
            self._params[full] = param
        return param

    def update(self, other: ParameterDict) -> None:
        for k, v in other.items():
            if k in self._params and self._params[k] is not v:
                raise GluonAssertionError(
                    f"Cannot update self with other because they have different Parameters "
                    f"with the same name '{k}'"
                )
            self._params[k] = v

    def initialize(
        self,
        init: Any = None,
        ctx: Any = None,
        verbose: bool = False,
        force_reinit: bool = False,
    ) -> None:
        default = _init.Uniform() if init is None else init
        for p in self.values():
            p.initialize(None, ctx, default, force_reinit=force_reinit)

    def zero_grad(self) -> None:
        for p in self.values():
            p.zero_grad()

    def reset_ctx(self, ctx: Any) -> None:
        """Contexts are PyTorch devices here; only the CPU context exists."""

    def setattr(self, name: str, value: Any) -> None:
        for p in self.values():
            setattr(p, name, value)

    def save(self, filename: str, strip_prefix: str = "") -> None:
        arrays = {}
        for p in self.values():
            name = p.name
            if strip_prefix and not name.startswith(strip_prefix):
                raise ValueError(
                    f"Prefix '{strip_prefix}' is to be striped before saving, but Parameter's "
                    f"name '{name}' does not start with '{strip_prefix}'. this may be due to "
                    "your Block shares parameters from other Blocks or you forgot to use "
                    "'with name_scope()' when creating child blocks. For more info on naming, "
                    "please see https://mxnet.io/api/python/docs/tutorials/packages/gluon/"
                    "blocks/naming.html"
                )
            arrays[name[len(strip_prefix) :]] = p._reduce()
        data = dumps(arrays)
        with atomic_write(filename) as f:
            f.write(data)

    def load(
        self,
        filename: str,
        ctx: Any = None,
        allow_missing: bool = False,
        ignore_extra: bool = False,
        restore_prefix: str = "",
        cast_dtype: bool = False,
        dtype_source: str = "current",
    ) -> None:
        loaded = read_named_arrays(filename)
        if restore_prefix:
            for name in self.keys():
                if not name.startswith(restore_prefix):
                    raise GluonAssertionError(
                        f"restore_prefix is '{restore_prefix}' but Parameters name '{name}' "
                        f"does not start with '{restore_prefix}'"
                    )
        # export() files name their arrays 'arg:<name>' / 'aux:<name>'
        arg_dict = {
            restore_prefix + (k[4:] if k.startswith(("arg:", "aux:")) else k): v
            for k, v in loaded.items()
        }
        lprefix = len(restore_prefix)
        if not allow_missing:
            for name in self.keys():
                if name not in arg_dict:
                    raise GluonAssertionError(
                        f"Parameter '{name[lprefix:]}' is missing in file: {filename}, which "
                        f"contains parameters: {brief_names(arg_dict)}. Please make sure source "
                        "and target networks have the same prefix.For more info on naming, please "
                        "see https://mxnet.io/api/python/docs/tutorials/packages/gluon/blocks/"
                        "naming.html"
                    )
        for name, value in arg_dict.items():
            if name not in self._params:
                if ignore_extra:
                    continue
                raise ValueError(
                    f"Parameter '{name[lprefix:]}' loaded from file: {filename} is not present "
                    f"in ParameterDict, choices are: {brief_names(self._params)}. Set ignore_extra "
                    "to True to ignore. Please make sure source and target networks have the "
                    "same prefix.For more info on naming, please see https://mxnet.io/api/"
                    "python/docs/tutorials/packages/gluon/blocks/naming.html"
                )
            load_from_file(self._params[name], value, cast_dtype, filename)


def read_named_arrays(filename: str) -> dict[str, np.ndarray]:
    """The named arrays of an MXNet ``.params`` file; a file that is not one raises
    :class:`MXNetValueError` naming it (MXNet raises ``MXNetError``)."""
    if not isinstance(filename, str | os.PathLike):
        kind = type(filename).__name__
        raise TypeError(f"`filename` must be a str or os.PathLike; received filename=<{kind}>")
    if os.path.exists(filename) and not os.path.isfile(filename):
        raise MXNetValueError(f"Invalid parameter file '{filename}': not a regular file")
    with open(filename, "rb") as f:
        data = f.read()
    try:
        loaded = loads(data)
    except ValueError as err:
        raise MXNetValueError(f"Invalid parameter file '{filename}': {err}") from None
    if not isinstance(loaded, dict):
        raise MXNetValueError(f"Invalid parameter file '{filename}': the arrays have no names")
    return loaded


def load_from_file(param: Parameter, value: np.ndarray, cast_dtype: bool, filename: Any) -> None:
    """``param._load_init(value)``; its error (MXNet's words) names the file too."""
    try:
        param._load_init(value, cast_dtype=cast_dtype)
    except GluonAssertionError as err:
        raise GluonAssertionError(received(str(err), filename=str(filename))) from None


def brief_names(names: Any) -> str:
    """MXNet's ``_brief_print_list``: quoted names, at most 10 (with '...')."""
    lst = list(names)
    if len(lst) > 10:
        return f"{brief_names(lst[:5])}, ..., {brief_names(lst[-5:])}"
    return ", ".join(f"'{x}'" for x in lst)


def select_params(params: ParameterDict, select: str | None) -> list[Parameter]:
    if select is None:
        return list(params.values())
    pattern = re.compile(select)
    return [p for name, p in params.items() if pattern.match(name)]
