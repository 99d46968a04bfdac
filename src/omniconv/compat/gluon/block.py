"""Gluon's ``Block`` / ``HybridBlock`` / ``Sequential`` machinery on ``torch.nn.Module``.

A Gluon block *is* a torch module: children are torch submodules (``_modules``, keyed
by Gluon's registration name), every Gluon :class:`Parameter` attribute is a view of a
torch parameter of the same attribute name (so ``state_dict()`` has torch keys), and
``__call__`` is torch's (forward hooks, ``apply``). Names (``conv0_weight``) follow
MXNet's ``_BlockScope`` rules; ``hybridize()`` is ``torch.compile``.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.modules.lazy import LazyModuleMixin

from ...io._atomic import atomic_write
from . import _ndarray, _symbol
from . import init as _init
from ._errors import GluonAssertionError
from ._ndarray_file import dumps
from ._symbol import Symbol
from .parameter import (
    Parameter,
    ParameterDict,
    brief_names,
    load_from_file,
    read_named_arrays,
    select_params,
    torch_dtype,
)

__all__ = ["Block", "HybridBlock", "HybridSequential", "NameManager", "Sequential"]


class NameManager:
    """MXNet's ``mx.name.NameManager``: per-hint counters (``conv0``, ``conv1``, ...).

    ``with NameManager():`` starts fresh counters (as in MXNet)."""

    _current = threading.local()

    def __init__(self) -> None:
        self._counter: dict[str, int] = {}
        self._old: NameManager | None = None

    def get(self, name: str | None, hint: str) -> str:
        if name:
            return name
        count = self._counter.get(hint, 0)
        self._counter[hint] = count + 1
        return f"{hint}{count}"

    @classmethod
    def current(cls) -> NameManager:
        if not hasattr(cls._current, "value"):
            cls._current.value = NameManager()
        return cls._current.value

    def __enter__(self) -> NameManager:
        self._old = NameManager.current()
        NameManager._current.value = self
        return self

    def __exit__(self, *exc: object) -> None:
        NameManager._current.value = self._old


class _BlockScope:
    """MXNet's ``_BlockScope``: prefixes of blocks created inside ``name_scope()``."""

    _current = threading.local()

    def __init__(self, block: Block) -> None:
        self._block = block
        self._counter: dict[str, int] = {}
        self._old_scope: _BlockScope | None = None

    @staticmethod
    def create(prefix: str | None, params: ParameterDict | None, hint: str) -> Any:
        current = getattr(_BlockScope._current, "value", None)
        if current is None:
            if prefix is None:
                prefix = NameManager.current().get(None, hint) + "_"
            params = (
                ParameterDict(prefix) if params is None else ParameterDict(params.prefix, params)
            )
            return prefix, params
        if prefix is None:
            count = current._counter.get(hint, 0)
            prefix = f"{hint}{count}_"
            current._counter[hint] = count + 1
        if params is None:
            parent = current._block.params
            params = ParameterDict(parent.prefix + prefix, parent._shared)
        else:
            params = ParameterDict(params.prefix, params)
        return current._block.prefix + prefix, params

    def __enter__(self) -> _BlockScope:
        if self._block._empty_prefix:
            return self
        self._old_scope = getattr(_BlockScope._current, "value", None)
        _BlockScope._current.value = self
        return self

    def __exit__(self, *exc: object) -> None:
        if self._block._empty_prefix:
            return
        _BlockScope._current.value = self._old_scope


def as_input(x: Any) -> Any:
    """numpy arrays become tensors; tensors and symbols pass through."""
    if isinstance(x, np.ndarray | np.generic):
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


class _HookHandle:
    """Gluon's ``HookHandle`` (``detach()``) over torch's ``RemovableHandle``."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def detach(self) -> None:
        self._handle.remove()

    remove = detach

    def __enter__(self) -> _HookHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


class Block(nn.Module):
    """``mxnet.gluon.Block`` as a ``torch.nn.Module``."""

    _reg_params: OrderedDict[str, Parameter]
    _prefix: str
    _name: str
    _params: ParameterDict
    _scope: _BlockScope
    _empty_prefix: bool
    # deferred (uninitialised) parameters are saved as they are, as lazy modules do
    _save_to_state_dict = LazyModuleMixin._save_to_state_dict

    def __init__(
        self, prefix: str | None = None, params: ParameterDict | None = None, **kwargs: Any
    ) -> None:
        # cooperative: a layer that is also an omniconv module gets its constructor's
        # keywords there (torch's Module.__init__ first), then Gluon's names
        super().__init__(**kwargs)
        self._gluon_setup(prefix, params)

    def _gluon_setup(self, prefix: str | None, params: ParameterDict | None) -> None:
        self._empty_prefix = prefix == ""
        self._prefix, self._params = _BlockScope.create(prefix, params, self._alias())
        self._name = self._prefix[:-1] if self._prefix.endswith("_") else self._prefix
        self._scope = _BlockScope(self)
        self._reg_params = OrderedDict()

    def _alias(self) -> str:
        return self.__class__.__name__.lower()

    # -- attributes ------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            self._register_gluon_param(name, value)
            return
        super().__setattr__(name, value)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """torch's ``load_state_dict``: deferred parameters take the checkpoint's shape,
        and the Gluon parameters loaded count as initialised."""
        for name, param in self._reg_params.items():
            value = state_dict.get(prefix + name)
            if isinstance(value, Tensor) and not param._materialized():
                param._materialize(tuple(param._to_framework(value).shape))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        for name, param in self._reg_params.items():
            if prefix + name in state_dict and param._materialized():
                param._initialized = True
                param._deferred_init = ()

    def _register_gluon_param(self, name: str, param: Parameter) -> None:
        self.__dict__.pop(name, None)
        if param._binding is None:
            existing = self._parameters.get(name)
            if existing is None:
                self._parameters[name] = param._tensor  # type: ignore[assignment]
            param._bind(self, name)
        else:
            self._parameters[name] = param._torch()  # type: ignore[assignment]
        self.__dict__[name] = param
        self._reg_params[name] = param

    @property
    def prefix(self) -> str:
        """Prefix of this block (``conv0_``)."""
        return self._prefix

    @property
    def name(self) -> str:
        """Name of this block, without the trailing '_' (``conv0``)."""
        return self._name

    @property
    def params(self) -> ParameterDict:
        """This block's parameter dictionary (without its children's)."""
        return self._params

    def name_scope(self) -> _BlockScope:
        return self._scope

    @property
    def _children(self) -> OrderedDict[str, Block]:
        return OrderedDict((k, v) for k, v in self._modules.items() if isinstance(v, Block))

    def register_child(self, block: Block, name: str | None = None) -> None:
        if name is None:
            name = str(len(self._children))
        self.add_module(name, block)

    def collect_params(self, select: str | None = None) -> ParameterDict:
        ret = ParameterDict(self._params.prefix)
        for p in select_params(self._params, select):
            ret._params[p.name] = p
        for child in self._children.values():
            ret.update(child.collect_params(select=select))
        return ret

    def _collect_params_with_prefix(self, prefix: str = "") -> dict[str, Parameter]:
        if prefix:
            prefix += "."
        ret = {prefix + k: v for k, v in self._reg_params.items()}
        for name, child in self._children.items():
            ret.update(child._collect_params_with_prefix(prefix + name))
        return ret

    # -- initialisation, dtype ---------------------------------------------------------
    def initialize(
        self,
        init: Any = None,
        ctx: Any = None,
        verbose: bool = False,
        force_reinit: bool = False,
    ) -> None:
        """Initialise every parameter; ``init`` (default ``Uniform(0.07)``) is only the
        default, a parameter's own initialiser wins."""
        self.collect_params().initialize(
            _init.Uniform() if init is None else init, ctx, verbose, force_reinit
        )

    def cast(self, dtype: Any) -> None:
        """Cast every parameter (and gradient) to ``dtype``; inputs are not cast."""
        torch_dtype(dtype)
        for child in self._children.values():
            child.cast(dtype)
        for p in self.params.values():
            p.cast(dtype)

    def hybridize(self, active: bool = True, **kwargs: Any) -> None:
        for child in self._children.values():
            child.hybridize(active, **kwargs)

    # -- hooks ---------------------------------------------------------------------------
    def register_forward_hook(self, hook: Callable[..., Any], **kwargs: Any) -> Any:
        return _HookHandle(super().register_forward_hook(hook, **kwargs))

    def register_forward_pre_hook(self, hook: Callable[..., Any], **kwargs: Any) -> Any:
        return _HookHandle(super().register_forward_pre_hook(hook, **kwargs))

    # -- persistence ----------------------------------------------------------------
    def save_parameters(self, filename: str, deduplicate: bool = False) -> None:
        """Write MXNet's ``.params`` file (structured names: ``weight``, ``0.bias``)."""
        params = self._collect_params_with_prefix()
        if deduplicate:
            seen: dict[int, str] = {}
            params = {k: v for k, v in params.items() if seen.setdefault(id(v), k) == k}
        data = dumps({k: v._reduce() for k, v in params.items()})
        with atomic_write(filename) as f:
            f.write(data)

    def load_parameters(
        self,
        filename: str,
        ctx: Any = None,
        allow_missing: bool = False,
        ignore_extra: bool = False,
        cast_dtype: bool = False,
        dtype_source: str = "current",
    ) -> None:
        """Read an MXNet ``.params`` file (from MXNet 1.x or :meth:`save_parameters`)."""
        loaded = read_named_arrays(filename)
        params = self._collect_params_with_prefix()
        if not loaded and not params:
            return
        if not any("." in k for k in loaded):
            # legacy loading (a lone layer: 'weight', 'bias')
            self.collect_params().load(
                filename, ctx, allow_missing, ignore_extra, self.prefix, cast_dtype=cast_dtype
            )
            return
        if not allow_missing:
            # shared parameters are stored once (save_parameters(deduplicate=True))
            names_of: dict[int, list[str]] = {}
            for k, v in params.items():
                names_of.setdefault(id(v), []).append(k)
            for name, param in params.items():
                if not any(n in loaded for n in names_of[id(param)]):
                    raise GluonAssertionError(
                        f"Parameter '{name}' is missing in file '{filename}', which contains "
                        f"parameters: {brief_names(loaded)}. Set allow_missing=True to ignore "
                        "missing parameters."
                    )
        for name, value in loaded.items():
            if name not in params:
                if ignore_extra:
                    continue
                raise ValueError(
                    f"Parameter '{name}' loaded from file '{filename}' is not present in "
                    f"ParameterDict, which contains parameters {brief_names(self._params.keys())}. "
                    "Set ignore_extra=True to ignore. "
                )
            load_from_file(params[name], value, cast_dtype, filename)

    save_params = save_parameters
    load_params = load_parameters

    # -- forward -------------------------------------------------------------------
    def forward(self, *args: Any) -> Any:
        raise NotImplementedError

    def summary(self, *inputs: Any) -> None:
        """Print Gluon's table of output shapes and parameter counts (needs a
        non-hybridized block)."""
        summary: OrderedDict[str, dict[str, Any]] = OrderedDict()
        seen: set[int] = set()
        hooks: list[_HookHandle] = []

        def _hook(block: Block, _: Any, outputs: Any) -> None:
            class_name = block.__class__.__name__
            key = f"{class_name}-{len(summary)}"
            shape = (
                [tuple(o.shape) for o in outputs]
                if isinstance(outputs, list | tuple)
                else tuple(outputs.shape)
            )
            entry: dict[str, Any] = {"output_shape": shape, "trainable": 0, "shared": 0}
            n = 0
            for p in block.params.values():
                size = int(np.prod(p.data().shape))
                n += size
                if p.grad_req != "null":
                    entry["trainable"] += size
                if id(p) in seen:
                    entry["shared"] += size
                else:
                    seen.add(id(p))
            entry["n_params"] = n
            summary[key] = entry

        def _register(block: Block) -> None:
            if isinstance(block, HybridBlock) and block._active:
                raise GluonAssertionError(
                    f'"{block.name}" must not be hybridized to print summary.'
                )
            if not isinstance(block, Sequential | HybridSequential):
                hooks.append(block.register_forward_hook(_hook))

        inputs = tuple(as_input(x) for x in inputs)
        summary["Input"] = {
            "output_shape": [tuple(x.shape) for x in inputs]
            if len(inputs) > 1
            else tuple(inputs[0].shape),
            "n_params": 0,
            "trainable": 0,
            "shared": 0,
        }
        try:
            self.apply(lambda b: _register(b) if isinstance(b, Block) else None)
            with torch.no_grad():
                self(*inputs)
            line = "{:>20}  {:>42} {:>15}"
            print("-" * 80)
            print(line.format("Layer (type)", "Output Shape", "Param #"))
            print("=" * 80)
            total = trainable = shared = 0
            for layer, e in summary.items():
                print(line.format(layer, str(e["output_shape"]), e["n_params"]))
                total += e["n_params"]
                trainable += e["trainable"]
                shared += e["shared"]
            print("=" * 80)
            print("Parameters in forward computation graph, duplicate included")
            print("   Total params: " + str(total))
            print("   Trainable params: " + str(trainable))
            print("   Non-trainable params: " + str(total - trainable))
            print("Shared params in forward computation graph: " + str(shared))
            print("Unique parameters in model: " + str(total - shared))
            print("-" * 80)
        finally:
            for h in hooks:
                h.detach()

    def __repr__(self) -> str:
        s = "{name}(\n{modstr}\n)"
        modstr = "\n".join(
            f"  ({key}): {_indent(repr(block), 2)}" for key, block in self._children.items()
        )
        return s.format(name=self.__class__.__name__, modstr=modstr)


def _indent(s: str, n: int) -> str:
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * n + line for line in lines[1:])


class HybridBlock(Block):
    """``mxnet.gluon.HybridBlock``: ``hybrid_forward(F, x, *args, **params)``.

    ``F`` is the eager operator namespace (torch tensors) or, while building the graph
    for :meth:`export`, the symbol namespace. ``hybridize()`` compiles ``forward`` with
    ``torch.compile`` (``backend=`` a torch.compile backend, default ``'inductor'``;
    ``backend_opts=`` extra ``torch.compile`` keyword arguments).
    """

    _active: bool
    _compile_args: dict[str, Any]
    _compiled: Any
    _cached_graph: Any

    def _gluon_setup(self, prefix: str | None, params: ParameterDict | None) -> None:
        super()._gluon_setup(prefix, params)
        self._active = False
        self._compile_args = {}
        self._compiled = None
        self._cached_graph = None

    def hybridize(self, active: bool = True, **kwargs: Any) -> None:
        self._active = active
        backend = kwargs.get("backend") or "inductor"
        self._compile_args = {"backend": backend, **(kwargs.get("backend_opts") or {})}
        self._clear_cached_op()
        super().hybridize(active, **kwargs)

    def _clear_cached_op(self) -> None:
        self._compiled = None
        self._cached_graph = None

    def cast(self, dtype: Any) -> None:
        self._clear_cached_op()
        super().cast(dtype)

    def _finish_deferred(self, x: Any, *args: Any) -> None:
        """Layers with deferred shapes infer them from their input here."""

    def _eager_forward(self, x: Any, *args: Any) -> Any:
        self._finish_deferred(x, *args)
        params = {name: p.data() for name, p in self._reg_params.items()}
        return self.hybrid_forward(_ndarray, x, *args, **params)

    def _symbolic_forward(self, x: Symbol, *args: Any) -> Any:
        params = {name: p.var() for name, p in self._reg_params.items()}
        with _symbol.prefix_scope(self.prefix):
            return self.hybrid_forward(_symbol, x, *args, **params)

    def _build_graph(self, n_inputs: int) -> Any:
        names = ["data"] if n_inputs == 1 else [f"data{i}" for i in range(n_inputs)]
        inputs = [_symbol.var(n) for n in names]
        try:
            return self._symbolic_forward(inputs[0], *inputs[1:])
        except Exception as err:  # only export() needs the graph; it reports why
            return err

    def forward(self, x: Any, *args: Any) -> Any:
        x = as_input(x)
        args = tuple(as_input(a) for a in args)
        if isinstance(x, Symbol):
            return self._symbolic_forward(x, *args)
        if not self._active or torch.compiler.is_compiling():
            return self._eager_forward(x, *args)
        if self._cached_graph is None:
            self._cached_graph = self._build_graph(1 + len(args))
            return self._eager_forward(x, *args)  # finishes deferred initialisation
        if self._compiled is None:
            self._compiled = torch.compile(self._eager_forward, **self._compile_args)
        return self._compiled(x, *args)

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def export(self, path: str, epoch: int = 0, remove_amp_cast: bool = True) -> None:
        """Write ``path-symbol.json`` and ``path-%04d.params`` (``arg:<name>`` keys) as
        MXNet 1.9.1 does; needs ``hybridize()`` and one forward first."""
        graph = self._cached_graph
        if graph is None:
            raise RuntimeError(
                "Please first call block.hybridize() and then run forward with this block at "
                "least once before calling export."
            )
        if not isinstance(graph, Symbol):
            raise NotImplementedError(
                f"export() cannot build the symbol graph of this block: {graph}"
            )
        # MXNet writes the parameters in the graph's argument order (its cached op's)
        arguments = graph.list_arguments()
        params = self.collect_params()
        arrays = {f"arg:{name}": params[name]._reduce() for name in arguments if name in params}
        for name in params:
            if name not in arguments:
                warnings.warn(f'Parameter "{name}" is not found in the graph. ', stacklevel=2)
        symbol, data = graph.tojson().encode("utf-8"), dumps(arrays)
        with atomic_write(f"{path}-symbol.json") as f:
            f.write(symbol)
        with atomic_write(f"{path}-{epoch:04d}.params") as f:
            f.write(data)


class Sequential(Block):
    """Stacks blocks sequentially (``add(*blocks)``)."""

    def __init__(self, prefix: str | None = None, params: ParameterDict | None = None) -> None:
        super().__init__(prefix=prefix, params=params)

    def add(self, *blocks: Block) -> None:
        for block in blocks:
            self.register_child(block)

    def forward(self, x: Any, *args: Any) -> Any:
        return _chain(self._children.values(), as_input(x), args)

    def __getitem__(self, key: int | slice) -> Any:
        layers = list(self._children.values())[key]
        if isinstance(layers, list):
            net = type(self)(prefix=self._prefix)
            with net.name_scope():
                net.add(*layers)
            return net
        return layers

    def __len__(self) -> int:
        return len(self._children)


class HybridSequential(HybridBlock):
    """Stacks hybrid blocks sequentially; hybridizable as a whole."""

    def __init__(self, prefix: str | None = None, params: ParameterDict | None = None) -> None:
        super().__init__(prefix=prefix, params=params)

    add = Sequential.add
    __getitem__ = Sequential.__getitem__
    __len__ = Sequential.__len__

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        return _chain(self._children.values(), x, args)


def _chain(blocks: Any, x: Any, args: tuple[Any, ...]) -> Any:
    """Gluon's sequential rule: each block gets the previous outputs (a tuple or list is
    split into the first output and extra arguments)."""
    for block in blocks:
        x = block(x, *args)
        args = ()
        if isinstance(x, tuple | list):
            args = tuple(x[1:])
            x = x[0]
    return (x, *args) if args else x
