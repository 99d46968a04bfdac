"""Shared helpers for the op tests (forward + autograd comparisons against tests/reference.py)."""

from __future__ import annotations

import pytest
import torch

F64 = torch.float64

# implementation in float64 vs the float64 reference
TOL64 = {"rtol": 1e-9, "atol": 1e-10}
# implementation in float32 vs the float64 reference / vs itself in float64
TOL32 = {"rtol": 1e-4, "atol": 1e-4}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def rand(*shape, dtype=F64, seed=None, scale=1.0):
    g = torch.Generator().manual_seed(0 if seed is None else seed)
    return torch.randn(*shape, generator=g, dtype=F64).mul(scale).to(dtype)


def leaves(*tensors, dtype=None):
    """Fresh leaf copies (requires_grad) of the given tensors; None stays None."""
    out = []
    for t in tensors:
        if t is None:
            out.append(None)
            continue
        t = t.detach().clone()
        if dtype is not None:
            t = t.to(dtype)
        out.append(t.requires_grad_(True))
    return out


def value_and_grads(fn, inputs, grad_seed=1234):
    """``out = fn(*inputs)`` and the gradients of ``sum(out * g)`` (g random, fixed seed)
    w.r.t. every non-None input. Returns ``(out, [grad or None, ...])``."""
    out = fn(*inputs)
    g = rand(*out.shape, seed=grad_seed).to(out.dtype)
    need = [t for t in inputs if t is not None]
    if out.numel() == 0:
        # still differentiable: every gradient must exist (zero / empty)
        grads = torch.autograd.grad(out.sum(), need, allow_unused=False)
    else:
        grads = torch.autograd.grad(out, need, g, allow_unused=False)
    it = iter(grads)
    return out, [None if t is None else next(it) for t in inputs]


def compare(impl_fn, ref_fn, inputs, tol=None, impl_dtype=None, grad_seed=1234):
    """Run ``impl_fn`` and ``ref_fn`` on independent leaf copies of ``inputs`` (the
    reference always in float64) and assert outputs and all gradients agree."""
    ref_in = leaves(*inputs, dtype=F64)
    imp_in = leaves(*inputs, dtype=impl_dtype)
    r_out, r_grads = value_and_grads(ref_fn, ref_in, grad_seed)
    i_out, i_grads = value_and_grads(impl_fn, imp_in, grad_seed)
    if tol is None:
        tol = TOL32 if i_out.dtype == torch.float32 else TOL64
    assert i_out.shape == r_out.shape
    if impl_dtype is not None:
        assert i_out.dtype == impl_dtype
    torch.testing.assert_close(i_out.double(), r_out, **tol, msg=lambda m: "output: " + m)
    for k, (ig, rg) in enumerate(zip(i_grads, r_grads, strict=True)):
        if rg is None:
            continue
        assert ig is not None, f"no gradient for input {k}"
        assert ig.shape == rg.shape
        torch.testing.assert_close(
            ig.double(), rg, **tol, msg=lambda m, k=k: f"gradient of input {k}: " + m
        )
    return i_out, i_grads


def noncontig(t):
    """Same values, non-contiguous strides (a strided slice of a larger tensor); differentiable."""
    out = torch.stack([t, torch.zeros_like(t)], -1)[..., 0]
    assert not out.is_contiguous()
    return out


def channels_last(t):
    out = t.to(memory_format=torch.channels_last)
    assert out.is_contiguous(memory_format=torch.channels_last)
    return out


def _transposed(t):
    """Same values, the first two dimensions' strides swapped (a transposed view)."""
    return t.transpose(0, 1).contiguous().transpose(0, 1)


def _sliced(t, memory_format=torch.contiguous_format):
    """Same values, every second entry of dim 0 of a tensor twice as long (which has
    ``memory_format``)."""
    return t.repeat_interleave(2, dim=0).contiguous(memory_format=memory_format)[::2]


def _expanded(t):
    """Slice 0 of dim 0 broadcast over dim 0 (stride 0): the values change, so the caller
    gives the same view to the implementation and to the reference."""
    return t[:1].expand_as(t)


#: memory layouts an op must take for any tensor argument: name -> differentiable view
#: (1-D tensors take the ones that make sense for them)
LAYOUTS = {
    "contiguous": lambda t: t,
    "channels_last": channels_last,
    "transposed": _transposed,
    "strided": noncontig,
    "sliced": _sliced,
    "sliced_channels_last": lambda t: _sliced(t, torch.channels_last),
    "expanded": _expanded,
    "expanded_channels_last": lambda t: channels_last(t[:1]).expand_as(t),
}
LAYOUTS_1D = ("contiguous", "strided", "sliced", "expanded")


def relayout(t, layout):
    """``LAYOUTS[layout](t)``: a view with the same shape (and, but for the expanded
    layouts, the same values) in that layout."""
    return LAYOUTS[layout](t)


def distinct_layout(t, layout):
    """Whether ``layout`` is a real non-contiguous layout for a tensor of ``t``'s shape
    (channels_last of a 1x1 weight, say, is plain contiguous)."""
    out = relayout(t, layout)
    if layout.startswith("expanded"):
        return t.shape[0] > 1 and out.stride(0) == 0
    return not out.is_contiguous()
