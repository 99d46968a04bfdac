"""The deformable conv is a registered torch.library custom op that tracing keeps whole."""

import pytest
import torch

import omniconv.functional as OF

OP = torch.ops.omniconv.deform_conv2d.default
BACKWARD = torch.ops.omniconv.deform_conv2d_backward.default


def _args(use_mask, dtype=torch.float64, n=2, requires_grad=True):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, 7, 6, dtype=dtype, generator=g)
    w = torch.randn(4, 3, 3, 2, dtype=dtype, generator=g)
    off = 1.5 * torch.randn(n, 2 * 3 * 6, 3, 5, dtype=dtype, generator=g)
    mask = torch.rand(n, 3 * 6, 3, 5, dtype=dtype, generator=g) if use_mask else x.new_empty(0)
    b = torch.randn(4, dtype=dtype, generator=g)
    tensors = [x, w, off, mask, b]
    if requires_grad:
        for t in tensors[:3] + ([mask] if use_mask else []) + [b]:
            t.requires_grad_()
    return (*tensors, 2, 1, 1, 0, 2, 1, use_mask, 64)


@pytest.mark.parametrize("use_mask", [True, False])
def test_opcheck_forward(use_mask):
    # schema, fake (meta) implementation, autograd registration, aot_dispatch
    torch.library.opcheck(OP, _args(use_mask))


def test_opcheck_backward():
    x, w, off, mask, b, *params = _args(True, requires_grad=False)
    grad_out = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    torch.library.opcheck(BACKWARD, (grad_out, x, w, off, mask, b, *params))


def test_fake_tensor_shape_inference_on_meta_device():
    x = torch.empty(3, 6, 7, 6, device="meta")
    w = torch.empty(4, 3, 3, 2, device="meta")
    off = torch.empty(3, 36, 3, 5, device="meta")
    mask = torch.empty(3, 18, 3, 5, device="meta")
    out = OF.deform_conv2d(x, off, w, None, (2, 1), (1, 0), (2, 1), mask)
    assert out.device.type == "meta" and out.shape == (3, 4, 3, 5)


# ----------------------------------------------------------------------------- dispatch


def _spy_kernels(monkeypatch):
    from omniconv.kernels import deform_cpu, deform_torch

    calls = []
    for module, label in ((deform_cpu, "numba"), (deform_torch, "torch")):
        for name in ("forward", "backward"):
            real = getattr(module, name)

            def run(*args, real=real, label=label, name=name):
                calls.append((label, name))
                return real(*args)

            monkeypatch.setattr(module, name, run)
    return calls


@pytest.mark.parametrize("device", ["cuda", "xpu", "mps", "privateuseone"])
@pytest.mark.parametrize("op", [OP, BACKWARD], ids=["forward", "backward"])
def test_other_devices_dispatch_to_the_pure_kernel(monkeypatch, device, op):
    """Only CPU has a kernel of its own; every other device gets the composite one, the
    pure-PyTorch kernel (run here through the dispatcher's table on CPU tensors)."""
    name = op.name()
    key = torch._C._dispatch_key_for_device(device)
    assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CPU")
    assert not torch._C._dispatch_has_kernel_for_dispatch_key(name, key)
    assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CompositeExplicitAutograd")
    calls = _spy_kernels(monkeypatch)
    x, w, off, mask, b, *params = _args(True, requires_grad=False)
    args = (x, w, off, mask, b, *params)
    if op is BACKWARD:
        args = (torch.randn(2, 4, 3, 5, dtype=torch.float64), *args)
    keyset = torch._C.DispatchKeySet(getattr(torch._C.DispatchKey, key))
    got = torch.library.get_kernel(op, key).call_boxed(keyset, *args)
    assert calls == [("torch", "forward" if op is OP else "backward")]
    want = op(*args)  # the CPU kernel: numba where it runs
    leaves = torch.utils._pytree.tree_leaves
    for g, e in zip(leaves(got), leaves(want), strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)


def test_meta_and_fake_tensors_run_no_kernel(monkeypatch):
    """Meta and fake tensors get shapes and memory formats from the fake implementations."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    calls = _spy_kernels(monkeypatch)
    x = torch.empty(3, 6, 7, 6, device="meta").contiguous(memory_format=torch.channels_last)
    w = torch.empty(4, 3, 3, 2, device="meta")
    off = torch.empty(3, 36, 3, 5, device="meta")
    mask = torch.empty(3, 18, 3, 5, device="meta")
    out = OF.deform_conv2d(x, off, w, None, (2, 1), (1, 0), (2, 1), mask)
    assert out.device.type == "meta" and out.is_contiguous(memory_format=torch.channels_last)
    with FakeTensorMode() as mode:
        args = [mode.from_tensor(t) for t in _args(True)[:5]]
        grads = BACKWARD(torch.empty(2, 4, 3, 5, dtype=torch.float64), *args, 2, 1, 1, 0, 2, 1,
                         True, 64)  # fmt: skip
    assert [g.shape for g in grads] == [t.shape for t in args]
    assert calls == []


def test_compile_fullgraph_forward_and_backward_match_eager():
    x, w, off, mask, b, *_ = _args(True, dtype=torch.float32)

    def f(x, off, w, b, mask):
        return OF.deform_conv2d(x, off, w, b, (2, 1), (1, 0), (2, 1), mask)

    eager = f(x, off, w, b, mask)
    grads_eager = torch.autograd.grad(eager.square().sum(), (x, off, w, b, mask))
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    out = compiled(x, off, w, b, mask)
    grads = torch.autograd.grad(out.square().sum(), (x, off, w, b, mask))
    torch.testing.assert_close(out, eager)
    for a, e in zip(grads, grads_eager, strict=True):
        torch.testing.assert_close(a, e)


def test_export_keeps_one_deform_node():
    class M(torch.nn.Module):
        def forward(self, x, off, w, mask):
            return OF.deform_conv2d(x, off, w, None, 1, 1, 1, mask)

    x = torch.randn(1, 4, 6, 6)
    w = torch.randn(5, 4, 3, 3)
    off = torch.randn(1, 18, 6, 6)
    mask = torch.rand(1, 9, 6, 6)
    ep = torch.export.export(M(), (x, off, w, mask))
    targets = [n.target for n in ep.graph.nodes if n.op == "call_function"]
    assert targets.count(OP) == 1
    torch.testing.assert_close(ep.module()(x, off, w, mask), M()(x, off, w, mask))


# ----------------------------------------------------------------------------- autocast


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_autocast_casts_as_stated(half):
    """Under CPU autocast the op takes mixed dtypes and casts them itself, then runs as
    without autocast on the cast values (output and gradients exactly): under bfloat16,
    input, weight and bias to bfloat16 and offset and mask to float32 (the output is
    bfloat16); under float16, everything to float32. Gradients come back in each
    argument's own dtype."""
    x, w, off, mask, b, *params = _args(True, dtype=torch.float32, requires_grad=False)
    ins = [x.to(half), w, off, mask.to(half), b]  # half activations, float32 parameters
    if half == torch.bfloat16:
        dtypes = [half, half, torch.float32, torch.float32, half]
    else:
        dtypes = [torch.float32] * 5
    leaves_a = [t.clone().requires_grad_() for t in ins]
    leaves_b = [t.to(d).requires_grad_() for t, d in zip(ins, dtypes, strict=True)]
    with torch.autocast("cpu", dtype=half):
        out = OP(*leaves_a, *params)
    want = OP(*leaves_b, *params)
    assert out.dtype == dtypes[0]
    assert torch.equal(out, want)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out.dtype)
    grads = torch.autograd.grad(out, leaves_a, g, retain_graph=True)
    wants = torch.autograd.grad(want, leaves_b, g)
    for got, exp, t in zip(grads, wants, ins, strict=True):
        assert got.dtype == t.dtype
        assert torch.equal(got, exp.to(t.dtype))
    with torch.autocast("cpu", dtype=half):  # a backward under autocast: the same
        again = torch.autograd.grad(out, leaves_a, g)
    for got, exp in zip(again, grads, strict=True):
        assert torch.equal(got, exp)


def test_autocast_leaves_float64_alone():
    x, w, off, mask, b, *params = _args(True, requires_grad=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = OP(x, w, off, mask, b, *params)
    assert out.dtype == torch.float64 and torch.equal(out, OP(x, w, off, mask, b, *params))


def test_autocast_compiles():
    x, w, off, mask, b, *_ = _args(True, dtype=torch.float32, requires_grad=False)

    def f(x, off, w, b, mask):
        return OF.deform_conv2d(x, off, w, b, (2, 1), (1, 0), (2, 1), mask)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        eager = f(x.bfloat16(), off, w, b, mask)
        compiled = torch.compile(f, fullgraph=True)(x.bfloat16(), off, w, b, mask)
    assert compiled.dtype == eager.dtype == torch.bfloat16
    torch.testing.assert_close(compiled, eager, rtol=0, atol=0)
