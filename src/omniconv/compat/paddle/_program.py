"""``Program``: the place where fluid functions keep their parameters.

Paddle 1.x fluid functions (``fluid.layers.deformable_conv``, ``fluid.nets.img_conv_group``)
create parameters as a side effect of being called while a static program is built. Here
a :class:`Program` (an ``nn.Module``) is built from a plain function written with these
calls::

    def build():
        img = fluid.layers.data(name="img", shape=[1, 28, 28], dtype="float32")
        return fluid.nets.img_conv_group(input=img, conv_num_filter=[3, 3], pool_size=2)

    net = Program(build)
    out = net(img=torch.randn(8, 1, 28, 28))   # or net(torch.randn(8, 1, 28, 28))

* ``fn`` is called with no arguments on every ``net(...)`` call. Each
  ``fluid.layers.data(name=...)`` inside it returns the tensor fed for that name: by
  keyword (``net(img=x)``) or positionally, in the order the ``data`` calls are made.
  Every declared input must be fed, with the declared dtype and the declared non-batch
  dimensions; feeding an undeclared name is an error.
* The first call creates the parameters, in call order, with Paddle's static names
  (``conv2d_0.w_0``, ``conv2d_0.b_0``, ``batch_norm_0.w_0`` (scale), ``.b_0``, ``.w_1``
  (moving mean), ``.w_2`` (moving variance), ``deformable_conv_0.w_0``, ...; a
  ``ParamAttr(name=...)`` overrides a name, and two parameters with one name are one
  shared parameter). Later calls must make the same calls in the same order and reuse
  them.
* ``net.train()`` / ``net.eval()`` select Paddle's ``is_test`` (batch statistics and
  dropout vs. running statistics and ``x * (1 - p)``). ``net.parameters()`` trains with
  any torch optimiser; ``net.state_dict()`` is keyed by the Paddle names, and
  ``net.load_state_dict`` takes those names (numpy arrays are accepted), so a Paddle
  checkpoint (``{name: ndarray}``) loads by name once the program is built (called once,
  or ``net.build(...)``).

Outside a ``Program`` the fluid functions run once with fresh parameters, in training
mode (Paddle's default program has ``is_test=False``), and ``fluid.layers.data`` returns
a zero tensor with batch size 1 (a placeholder: the static example code runs as
written and shows the output shape, with 1 for Paddle's -1 batch dimension).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..._args import fail, type_name
from ._common import check_dtype_name
from ._initializer import ParamAttr

__all__ = ["Namer", "Program", "current_run", "data", "layer"]

_local = threading.local()


def _stack() -> list[_Run]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    stack: list[_Run] = _local.stack
    return stack


def current_run() -> _Run | None:
    stack = _stack()
    return stack[-1] if stack else None


class Namer:
    """Paddle's ``unique_name`` counters for one program build, and the parameter names."""

    def __init__(self, program: Program | None) -> None:
        self.program = program
        self.counters: dict[str, int] = {}

    def _next(self, key: str) -> int:
        n = self.counters.get(key, 0)
        self.counters[key] = n + 1
        return n

    def op(self, kind: str, name: str | None = None) -> str:
        """``conv2d_0``, ``conv2d_1``, ... (or ``name`` when the caller gave one)."""
        return name if name is not None else f"{kind}_{self._next(kind)}"

    def param(
        self,
        module: nn.Module,
        path: str,
        op_name: str,
        suffix: str,
        attr: ParamAttr | None = None,
    ) -> str:
        """Name parameter/buffer ``path`` of ``module``: ``attr.name`` or
        ``<op_name>.<suffix>_<n>``. Inside a program, record it and share parameters
        asked for under one name."""
        name = attr.name if attr is not None and attr.name else None
        if name is None:
            name = f"{op_name}.{suffix}_{self._next(f'{op_name}.{suffix}')}"
        owner_path, _, attr_name = path.rpartition(".")
        owner = module.get_submodule(owner_path) if owner_path else module
        tensor = getattr(owner, attr_name)
        if self.program is not None:
            self.program._claim(name, owner, attr_name, tensor)
        return name

    def layer_params(
        self, module: nn.Module, op_name: str, attrs: dict[str, ParamAttr | None]
    ) -> None:
        """Name a layer's ``weight`` (``<op_name>.w_0``) and, when it has one, its ``bias``
        (``<op_name>.b_0``), each ``ParamAttr(name=...)`` overriding its name."""
        self.param(module, "weight", op_name, "w", attrs["weight"])
        if attrs.get("bias") is not None:
            self.param(module, "bias", op_name, "b", attrs["bias"])


class _Run:
    """One call of a program's function: its feeds and the position in the call order."""

    def __init__(self, program: Program, args: tuple[Any, ...], feeds: dict[str, Any]) -> None:
        self.program = program
        self.building = not program._built
        self.namer = Namer(program)
        self.args = args
        self.feeds = feeds
        self.cursor = 0
        self.data_names: list[str] = []

    def layer(self, kind: str, build: Callable[[Namer], nn.Module]) -> nn.Module:
        prog = self.program
        if self.building:
            key = f"{kind}_{len([k for k in prog._order if k.startswith(kind + '_')])}"
            # the program's mode (Paddle's is_test belongs to the program): a layer made
            # in the first call of a program put in eval mode must not train on that call
            module = build(self.namer).train(prog.training)
            prog.layers[key] = module
            prog._order.append(key)
            return module
        if self.cursor >= len(prog._order) or not prog._order[self.cursor].startswith(kind + "_"):
            expected = prog._order[self.cursor] if self.cursor < len(prog._order) else "nothing"
            fail(
                "fn",
                "a function that makes the same fluid calls in the same order on every call "
                f"(call {self.cursor} was {expected} when the program was built)",
                kind,
            )
        module = prog.layers[prog._order[self.cursor]]
        self.cursor += 1
        return module

    def data(self, name: str, shape: list[int], dtype: torch.dtype) -> Tensor:
        index = len(self.data_names)
        if name in self.data_names:
            fail("name", "unique among the fluid.layers.data calls of a program", name)
        self.data_names.append(name)
        if index < len(self.args):
            if name in self.feeds:
                fail(
                    name,
                    "fed once (positionally or by name, not both)",
                    type_name(self.feeds[name]),
                )
            value = self.args[index]
        elif name in self.feeds:
            value = self.feeds[name]
        else:
            fail(
                name,
                f"fed: the program declares fluid.layers.data(name={name!r}); pass "
                f"net({name}=tensor) or it as positional argument {index}",
                None,
            )
        if isinstance(value, np.ndarray | list | tuple):
            value = torch.as_tensor(np.asarray(value))
        if not isinstance(value, Tensor):
            fail(name, "a torch.Tensor or numpy array", type_name(value), exc=TypeError)
        if value.dtype != dtype:
            fail(
                f"{name}.dtype",
                f"{dtype} (declared by fluid.layers.data)",
                value.dtype,
                exc=TypeError,
            )
        if value.dim() != len(shape) or any(
            d > 0 and v != d for d, v in zip(shape, value.shape, strict=True)
        ):
            fail(f"{name}.shape", f"{shape} (declared by fluid.layers.data)", tuple(value.shape))
        return value

    def finish(self) -> None:
        if len(self.args) > len(self.data_names):
            fail(
                "inputs",
                f"at most {len(self.data_names)} positional inputs (the fluid.layers.data calls "
                f"{self.data_names})",
                len(self.args),
            )
        extra = sorted(set(self.feeds) - set(self.data_names))
        if extra:
            fail("feeds", f"names declared by fluid.layers.data ({self.data_names})", extra)
        if not self.building and self.cursor != len(self.program._order):
            fail(
                "fn",
                "a function that makes the same fluid calls on every call "
                f"({len(self.program._order)} layers when built)",
                self.cursor,
            )


def layer(kind: str, build: Callable[[Namer], nn.Module]) -> tuple[nn.Module, bool]:
    """The module for this fluid call: created (and named) in the current program, or
    fresh when there is none. Returns ``(module, inside_program)``."""
    run = current_run()
    if run is None:
        return build(Namer(None)), False
    return run.layer(kind, build), True


def data(
    name: str,
    shape: Any,
    append_batch_size: bool = True,
    dtype: Any = "float32",
    lod_level: int = 0,
    type: Any = None,
    stop_gradient: bool = True,
) -> Tensor:
    """``fluid.layers.data``: inside a :class:`Program`, the tensor fed under ``name``;
    outside, a zero tensor of the declared shape with batch size 1 (``-1`` -> 1)."""
    if not isinstance(name, str):
        fail("name", "a str", type_name(name), exc=TypeError)
    if isinstance(shape, int) or not isinstance(shape, list | tuple):
        fail("shape", "a list of ints", shape, exc=TypeError)
    dims = [int(d) for d in shape]
    if append_batch_size and all(d >= 0 for d in dims):
        dims = [-1, *dims]
    torch_dtype = check_dtype_name(dtype)
    run = current_run()
    if run is not None:
        return run.data(name, dims, torch_dtype)
    return torch.zeros([1 if d < 0 else d for d in dims], dtype=torch_dtype)


class Program(nn.Module):
    """A network written with fluid calls; see the module docstring."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        if not callable(fn):
            fail("fn", "a callable", type_name(fn), exc=TypeError)
        self.fn = fn
        self.layers = nn.ModuleDict()
        self._order: list[str] = []
        self._built = False
        self._names: dict[str, str] = {}  # torch key (relative) -> Paddle name
        self._by_name: dict[str, tuple[nn.Module, str]] = {}
        self._pending: list[tuple[str, nn.Module, str]] = []
        self.register_state_dict_post_hook(_to_paddle_names)
        self.register_load_state_dict_pre_hook(_from_paddle_names)

    def _claim(self, name: str, owner: nn.Module, attr_name: str, tensor: Tensor) -> None:
        """Record that ``owner.<attr_name>`` is Paddle's ``name`` (sharing a parameter
        that already has this name)."""
        self._pending.append((name, owner, attr_name))
        if name in self._by_name:
            first_owner, first_attr = self._by_name[name]
            shared = getattr(first_owner, first_attr)
            if tuple(shared.shape) != tuple(tensor.shape):
                fail(
                    "param_attr.name",
                    f"unique, or shared by parameters of one shape (parameter {name!r} has "
                    f"shape {tuple(shared.shape)}, this one {tuple(tensor.shape)})",
                    name,
                )
            setattr(owner, attr_name, shared)
        else:
            self._by_name[name] = (owner, attr_name)

    def forward(self, *args: Any, **feeds: Any) -> Any:
        run = _Run(self, args, feeds)
        self._pending = []
        stack = _stack()
        stack.append(run)
        try:
            out = self.fn()
            run.finish()
        except BaseException:
            if run.building:  # forget a half-built program; the next call starts afresh
                self.layers = nn.ModuleDict()
                self._order, self._by_name = [], {}
            raise
        finally:
            stack.pop()
        if run.building:
            paths = {id(m): p for p, m in self.named_modules()}
            for name, owner, attr_name in self._pending:
                self._names[f"{paths[id(owner)]}.{attr_name}"] = name
            self._built = True
        return out

    def build(self, *args: Any, **feeds: Any) -> Program:
        """Create the parameters (one call without gradients); returns ``self``."""
        with torch.no_grad():
            self(*args, **feeds)
        return self

    def paddle_names(self) -> dict[str, str]:
        """``{torch state-dict key: Paddle name}`` of every parameter and buffer."""
        return dict(self._names)

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups with Paddle's per-parameter learning rates
        (``lr * ParamAttr.learning_rate``), trainable parameters only."""
        groups: dict[float, list[nn.Parameter]] = {}
        for p in self.parameters():
            if p.requires_grad:
                scale = getattr(p, "optimize_attr", {}).get("learning_rate", 1.0)
                groups.setdefault(scale, []).append(p)
        return [{"params": ps, "lr": lr * s} for s, ps in groups.items()]

    def extra_repr(self) -> str:
        return f"fn={getattr(self.fn, '__qualname__', self.fn)!r}, built={self._built}"


def _to_paddle_names(
    module: Program, state_dict: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    keys = [k for k in state_dict if k.startswith(prefix)]
    items = [(k, state_dict.pop(k)) for k in keys]
    for key, value in items:
        rel = key[len(prefix) :]
        state_dict[prefix + module._names.get(rel, rel)] = value


def _from_paddle_names(
    module: Program,
    state_dict: dict[str, Any],
    prefix: str,
    local_metadata: Any,
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    if not module._built:
        fail(
            "net",
            "built before load_state_dict (call it once, or net.build(...), so that its "
            "parameters exist)",
            "<unbuilt Program>",
        )
    used = set()
    for rel, name in module._names.items():
        if prefix + name in state_dict:
            value = state_dict[prefix + name]
            if not isinstance(value, Tensor):
                value = torch.as_tensor(np.asarray(value))
            state_dict[prefix + rel] = value
            used.add(prefix + name)
    for key in used - {prefix + rel for rel in module._names}:
        del state_dict[key]
