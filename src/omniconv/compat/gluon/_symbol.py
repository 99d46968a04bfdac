"""A minimal symbol graph: what ``HybridBlock.export`` writes as ``-symbol.json``.

``hybrid_forward(F, x, ...)`` run with ``F = symbol`` records nodes instead of
computing; the JSON text is byte-identical to MXNet 1.9.1's ``Symbol.tojson()``
(dmlc's JSON writer: one entry per line, ``", "`` separators, single-entry maps inline).
"""

from __future__ import annotations

import json
import threading
from typing import Any

__all__ = ["Symbol", "var"]

MXNET_VERSION = 10901
_state = threading.local()


class prefix_scope:
    """Names of the nodes made inside: ``prefix + name``, or ``prefix + hint + count``
    for unnamed ones (fresh counters at each entry, as MXNet's ``name.Prefix``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counter: dict[str, int] = {}
        self.old: prefix_scope | None = None

    def __enter__(self) -> None:
        self.old = getattr(_state, "scope", None)
        _state.scope = self

    def __exit__(self, *exc: object) -> None:
        _state.scope = self.old

    def name(self, name: str | None, hint: str) -> str:
        if name:
            return self.prefix + name
        count = self.counter.get(hint, 0)
        self.counter[hint] = count + 1
        return f"{self.prefix}{hint}{count}"


def _name(name: str | None, hint: str) -> str:
    scope: prefix_scope = getattr(_state, "scope", None) or prefix_scope("")
    return scope.name(name, hint)


class _Node:
    def __init__(self, op: str, name: str, attrs: dict[str, str], inputs: list[_Node]) -> None:
        self.op, self.name, self.attrs, self.inputs = op, name, attrs, inputs


class Symbol:
    """One output of a graph node."""

    def __init__(self, node: _Node) -> None:
        self._node = node

    @property
    def name(self) -> str:
        return self._node.name

    def __repr__(self) -> str:
        return f"<Symbol {self.name}>"

    def _binary(self, other: Any, op: str, hint: str) -> Symbol:
        if not isinstance(other, Symbol):
            raise NotImplementedError(
                f"symbolic {op} with a <{type(other).__name__}> is not supported by export()"
            )
        return _op(op, None, {}, [self, other], hint)

    def __add__(self, other: Any) -> Symbol:
        return self._binary(other, "elemwise_add", "_plus")

    def __sub__(self, other: Any) -> Symbol:
        return self._binary(other, "elemwise_sub", "_minus")

    def __mul__(self, other: Any) -> Symbol:
        if isinstance(other, int | float) and not isinstance(other, bool):
            # MXNet's ``symbol * scalar``: a ``_mul_scalar`` node (``{"scalar": "2"}``)
            return _op("_mul_scalar", None, {"scalar": str(other)}, [self], "_mulscalar")
        return self._binary(other, "elemwise_mul", "_mul")

    def _topo(self) -> list[_Node]:
        order: list[_Node] = []
        seen: set[int] = set()

        def visit(n: _Node) -> None:
            if id(n) in seen:
                return
            seen.add(id(n))
            for i in n.inputs:
                visit(i)
            order.append(n)

        visit(self._node)
        return order

    def list_arguments(self) -> list[str]:
        return [n.name for n in self._topo() if n.op == "null"]

    def list_auxiliary_states(self) -> list[str]:
        return []

    def tojson(self) -> str:
        nodes = self._topo()
        index = {id(n): i for i, n in enumerate(nodes)}
        out = ['{\n  "nodes": [']
        parts = []
        for n in nodes:
            fields = [f'"op": {json.dumps(n.op)}', f'"name": {json.dumps(n.name)}']
            if n.attrs:
                fields.append('"attrs": ' + _map(n.attrs, 6))
            ins = _array([f"[{index[id(i)]}, 0, 0]" for i in n.inputs], 6)
            fields.append(f'"inputs": {ins}')
            parts.append("    {\n      " + ", \n      ".join(fields) + "\n    }")
        out.append("\n" + ", \n".join(parts) + "\n  ], \n")
        args = [i for i, n in enumerate(nodes) if n.op == "null"]
        out.append(f'  "arg_nodes": {_array([str(i) for i in args], 2)}, \n')
        rows = _array([str(i) for i in range(len(nodes) + 1)], 2)
        out.append(f'  "node_row_ptr": {rows}, \n')
        out.append(f'  "heads": [[{len(nodes) - 1}, 0, 0]], \n')
        out.append(f'  "attrs": {{"mxnet_version": ["int", {MXNET_VERSION}]}}\n}}')
        return "".join(out)


def _array(items: list[str], indent: int) -> str:
    """dmlc's JSONWriter: an array of more than 10 entries is written one per line."""
    if len(items) <= 10:
        return "[" + ", ".join(items) + "]"
    pad = " " * (indent + 2)
    return "[\n" + pad + (", \n" + pad).join(items) + "\n" + " " * indent + "]"


def _map(attrs: dict[str, str], indent: int) -> str:
    items = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(attrs.items())]
    if len(items) == 1:
        return "{" + items[0] + "}"
    pad = " " * (indent + 2)
    return "{\n" + pad + (", \n" + pad).join(items) + "\n" + " " * indent + "}"


def var(name: str, attrs: dict[str, str] | None = None) -> Symbol:
    return Symbol(_Node("null", name, attrs or {}, []))


def _op(
    op: str, name: str | None, attrs: dict[str, str], inputs: list[Any], hint: str | None = None
) -> Symbol:
    for i in inputs:
        if not isinstance(i, Symbol):
            raise TypeError(f"symbolic {op} takes symbols; received <{type(i).__name__}>")
    full = _name(name, hint or op.lower())
    return Symbol(_Node(op, full, attrs, [i._node for i in inputs]))


def _tuple(v: Any) -> str:
    return str(tuple(int(i) for i in v))


def _conv_attrs(
    kernel: Any,
    stride: Any,
    dilate: Any,
    pad: Any,
    num_filter: int,
    num_group: int,
    no_bias: bool,
    layout: str,
    **extra: Any,
) -> dict[str, str]:
    """A convolution node's attributes as MXNet writes them (each a string)."""
    attrs = {
        "kernel": _tuple(kernel),
        "stride": _tuple(stride),
        "dilate": _tuple(dilate),
        "pad": _tuple(pad),
        "num_filter": str(num_filter),
        "num_group": str(num_group),
        "no_bias": str(bool(no_bias)),
        "layout": layout,
    }
    for key, value in extra.items():
        if value is not None:
            attrs[key] = _tuple(value) if isinstance(value, tuple | list) else str(value)
    return attrs


def Convolution(
    data: Symbol,
    weight: Symbol,
    bias: Symbol | None = None,
    *,
    kernel: Any,
    stride: Any,
    dilate: Any,
    pad: Any,
    num_filter: int,
    num_group: int,
    no_bias: bool,
    layout: str,
    cudnn_off: bool | None = None,
    name: str | None = None,
) -> Symbol:
    attrs = _conv_attrs(
        kernel, stride, dilate, pad, num_filter, num_group, no_bias, layout, cudnn_off=cudnn_off
    )
    inputs = [data, weight] + ([] if bias is None else [bias])
    return _op("Convolution", name, attrs, inputs)


def Deconvolution(
    data: Symbol,
    weight: Symbol,
    bias: Symbol | None = None,
    *,
    kernel: Any,
    stride: Any,
    dilate: Any,
    pad: Any,
    adj: Any,
    num_filter: int,
    num_group: int,
    no_bias: bool,
    layout: str,
    name: str | None = None,
) -> Symbol:
    attrs = _conv_attrs(
        kernel, stride, dilate, pad, num_filter, num_group, no_bias, layout, adj=adj
    )
    inputs = [data, weight] + ([] if bias is None else [bias])
    return _op("Deconvolution", name, attrs, inputs)


class contrib:  # MXNet's ``F.contrib`` namespace
    """``F.contrib``: the deformable convolutions (``_contrib_*`` nodes)."""

    @staticmethod
    def DeformableConvolution(
        data: Symbol,
        offset: Symbol,
        weight: Symbol,
        bias: Symbol | None = None,
        *,
        kernel: Any,
        stride: Any,
        dilate: Any,
        pad: Any,
        num_filter: int,
        num_group: int,
        num_deformable_group: int,
        no_bias: bool,
        layout: str,
        name: str | None = None,
    ) -> Symbol:
        attrs = _conv_attrs(
            kernel, stride, dilate, pad, num_filter, num_group, no_bias, layout,
            num_deformable_group=num_deformable_group,
        )  # fmt: skip
        inputs = [data, offset, weight] + ([] if bias is None else [bias])
        return _op("_contrib_DeformableConvolution", name, attrs, inputs)

    @staticmethod
    def ModulatedDeformableConvolution(
        data: Symbol,
        offset: Symbol,
        mask: Symbol,
        weight: Symbol,
        bias: Symbol | None = None,
        *,
        kernel: Any,
        stride: Any,
        dilate: Any,
        pad: Any,
        num_filter: int,
        num_group: int,
        num_deformable_group: int,
        no_bias: bool,
        layout: str,
        name: str | None = None,
    ) -> Symbol:
        attrs = _conv_attrs(
            kernel, stride, dilate, pad, num_filter, num_group, no_bias, layout,
            num_deformable_group=num_deformable_group,
        )  # fmt: skip
        inputs = [data, offset, mask, weight] + ([] if bias is None else [bias])
        return _op("_contrib_ModulatedDeformableConvolution", name, attrs, inputs)


def slice_axis(
    data: Symbol, axis: int, begin: int, end: int | None, name: str | None = None
) -> Symbol:
    attrs = {"axis": str(axis), "begin": str(begin), "end": str(end)}
    return _op("slice_axis", name, attrs, [data])


def Activation(data: Symbol, act_type: str, name: str | None = None) -> Symbol:
    return _op("Activation", name, {"act_type": act_type}, [data])


def relu(data: Symbol, name: str | None = None) -> Symbol:
    return _op("relu", name, {}, [data])


def sigmoid(data: Symbol, name: str | None = None) -> Symbol:
    return _op("sigmoid", name, {}, [data])


def tanh(data: Symbol, name: str | None = None) -> Symbol:
    return _op("tanh", name, {}, [data])


def softsign(data: Symbol, name: str | None = None) -> Symbol:
    return _op("softsign", name, {}, [data])


def concat(*data: Symbol, dim: int = 1, name: str | None = None) -> Symbol:
    return _op("Concat", name, {"dim": str(dim), "num_args": str(len(data))}, list(data), "concat")


def Flatten(data: Symbol, name: str | None = None) -> Symbol:
    return _op("Flatten", name, {}, [data], "flatten")


flatten = Flatten


def _binary(op: str) -> Any:
    def fn(lhs: Symbol, rhs: Symbol, name: str | None = None) -> Symbol:
        return _op(op, name, {}, [lhs, rhs])

    fn.__name__ = op
    return fn


elemwise_add = _binary("elemwise_add")
elemwise_sub = _binary("elemwise_sub")
elemwise_mul = _binary("elemwise_mul")
broadcast_add = _binary("broadcast_add")
broadcast_sub = _binary("broadcast_sub")
broadcast_mul = _binary("broadcast_mul")
broadcast_div = _binary("broadcast_div")
