"""What every front-end's checkpoint mapping shares (``<framework>/_checkpoint.py``).

A mapping is a pure ``dict -> dict`` function: a framework's checkpoint (names and
layouts as the framework writes them) in, the state dict of the matching omniconv /
torch modules out. It reads names and shapes only (no pickles) and checks both
strictly: a key it does not know, a shape its rule does not allow, or two keys landing
on one name raise ``ValueError``. Given a ``target`` (the model, or its state dict), the
result must also have exactly the target's keys and shapes (:func:`check_target`), and a
model's layers settle what names and shapes alone cannot (whether a 2-D Paddle weight is
a ``Linear``'s, which Gluon layer is NHWC, ...).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from torch import Tensor, nn
from torch.nn.parameter import is_lazy

from .._args import type_name
from ._frontend import FrontendMixin, as_tensor

__all__ = [
    "Target",
    "bad_shape",
    "check_norm",
    "check_target",
    "input_state",
    "owners",
    "put",
    "split_key",
    "torch_layout",
]

Target = nn.Module | Mapping[str, Any] | None


def input_state(state: Any, name: str = "state_dict") -> OrderedDict[str, Tensor]:
    """``state`` (a mapping of names to tensors or numpy arrays) as an ``OrderedDict`` of
    tensors; TypeError naming what is wrong."""
    if not isinstance(state, Mapping):
        raise TypeError(
            f"`{name}` must be a mapping of names to tensors; received {name}={type_name(state)!r}"
        )
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"`{name}` keys must be strings; received key {key!r}")
        out[key] = as_tensor(value, f"{name}[{key!r}]")
    return out


def split_key(key: str) -> tuple[str, str]:
    """``'a.b.weight'`` -> ``('a.b', 'weight')``; ``'weight'`` -> ``('', 'weight')``."""
    path, _, attr = key.rpartition(".")
    return path, attr


def join_key(path: str, attr: str) -> str:
    return f"{path}.{attr}" if path else attr


def bad_shape(key: str, rule: str, value: Tensor) -> ValueError:
    return ValueError(f"`state_dict[{key!r}]` must be {rule}; received shape {tuple(value.shape)}")


def check_norm(layer: str, params: Mapping[str, Tensor]) -> None:
    """A batch norm's parameters and statistics (``{key: value}``) must be 1-D, all of
    one length."""
    shapes = {key: tuple(value.shape) for key, value in params.items()}
    first = next((s for s in shapes.values() if len(s) == 1), None)
    for key, shape in shapes.items():
        if len(shape) != 1 or shape != first:
            listed = ", ".join(f"{k!r}: {s}" for k, s in shapes.items())
            rule = f"1-D and as long as the other parameters of batch norm {layer!r} ({listed})"
            raise bad_shape(key, rule, params[key])


def put(out: dict[str, Tensor], key: str, value: Tensor, source: str) -> None:
    """``out[key] = value``, refusing a second source key mapping to the same name."""
    if key in out:
        raise ValueError(
            f"`state_dict` keys must map to distinct names; received {source!r}, which maps "
            f"to {key!r} like an earlier key"
        )
    out[key] = value


def owners(target: Target) -> dict[str, tuple[nn.Module, str]]:
    """``{state-dict key: (module, attribute)}`` of a model's parameters and persistent
    buffers (empty for a state-dict target or None)."""
    if not isinstance(target, nn.Module):
        return {}
    found: dict[str, tuple[nn.Module, str]] = {}
    for prefix, module in target.named_modules(remove_duplicate=False):
        names = [n for n, p in module._parameters.items() if p is not None]
        names += [
            n
            for n, b in module._buffers.items()
            if b is not None and n not in module._non_persistent_buffers_set
        ]
        for name in names:
            found.setdefault(join_key(prefix, name), (module, name))
    return found


def torch_layout(owner: nn.Module, attr: str, value: Tensor) -> Tensor:
    """A framework-layout ``value`` of ``owner.<attr>`` in the layout ``owner``'s state
    dict stores (a front-end layer's declared views; the value itself otherwise)."""
    if isinstance(owner, FrontendMixin) and owner.param_layout == "torch":
        return owner.to_torch_layout(attr, value).contiguous()
    return value


def _target_shapes(target: Target) -> dict[str, tuple[int, ...] | None]:
    """The target's keys and shapes (None: a lazy parameter, whose shape the checkpoint
    will give)."""
    if isinstance(target, nn.Module):
        return {
            k: None if is_lazy(v) else tuple(v.shape)
            for k, v in target.state_dict(keep_vars=True).items()
        }
    if isinstance(target, Mapping):
        return {k: tuple(as_tensor(v, f"target[{k!r}]").shape) for k, v in target.items()}
    raise TypeError(
        "`target` must be None, a torch.nn.Module or a state dict; "
        f"received target={type_name(target)!r}"
    )


def _listed(keys: Iterable[str], limit: int = 8) -> str:
    items = sorted(keys)
    shown = ", ".join(repr(k) for k in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def check_target(mapped: Mapping[str, Tensor], target: Target, framework: str) -> None:
    """Raise ValueError unless ``mapped`` has exactly ``target``'s keys and shapes. A
    batch norm's ``num_batches_tracked`` may be missing: torch fills it in when a state
    dict without ``_metadata`` is loaded."""
    if target is None:
        return
    shapes = _target_shapes(target)
    fillable = getattr(mapped, "_metadata", None) is None
    missing = [
        k
        for k in shapes
        if k not in mapped and not (fillable and split_key(k)[1] == "num_batches_tracked")
    ]
    unexpected = [k for k in mapped if k not in shapes]
    wrong = [
        f"{k!r} {tuple(mapped[k].shape)} (target {shapes[k]})"
        for k in mapped
        if shapes.get(k) is not None and tuple(mapped[k].shape) != shapes[k]
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    if wrong:
        problems.append("shapes " + ", ".join(wrong[:8]))
    if problems:
        raise ValueError(
            f"the mapped {framework} checkpoint must have the target's keys and shapes; "
            "received " + "; ".join(problems)
        )
