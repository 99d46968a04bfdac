"""The torchvision front-end (``omniconv.compat.torchvision.ops``): torchvision's
``deform_conv2d`` / ``DeformConv2d`` conventions (the cases of torchvision's
``test_ops.py::TestDeformConv``, written afresh) against the float64 references, plus its
signatures, init, state dicts, errors, TorchScript, tracing, compile, export and autocast."""

from __future__ import annotations

import inspect
import io
import math

import pytest
import torch
from _helpers import (
    ASYM,
    CASES,
    F64,
    LAYOUTS,
    compare,
    deform_inputs,
    deform_ref,
    distinct_layout,
    leaves,
    make_deform,
    out_size,
    rand,
    relayout,
)
from reference import ref_conv2d, ref_deform_conv2d

from omniconv import nn as onn
from omniconv.compat.torchvision import (
    TorchvisionError,
    TorchvisionTypeError,
    TorchvisionValueError,
    ops,
)
from omniconv.compat.torchvision.ops import DeformConv2d, deform_conv2d

OP = torch.ops.omniconv.deform_conv2d.default

# ASYM: N=2, C=6, 7x6, C_OUT=4, kernel (3, 2), stride (2, 1), padding (1, 0), dilation (2, 1),
# groups 2, deformable groups 3
N, C, H, W, C_OUT, KERNEL, STRIDE, PADDING, DILATION, GROUPS, DG = ASYM


def _tv(stride, padding, dilation, use_mask):
    """The front-end's functional with torchvision's keyword call."""

    def fn(x, off, wt, b, mask=None):
        m = mask if use_mask else None
        return deform_conv2d(
            x, off, wt, b, stride=stride, padding=padding, dilation=dilation, mask=m
        )

    return fn


def _layer(dtype=F64, bias=True, **kw):
    args = {"stride": STRIDE, "padding": PADDING, "dilation": DILATION, "groups": GROUPS}
    return DeformConv2d(C, C_OUT, KERNEL, **{**args, **kw}, bias=bias).to(dtype)


def _assert_error(excinfo, kind, *parts):
    """``kind`` (and RuntimeError, torchvision's type) with every part in the message."""
    assert isinstance(excinfo.value, kind) and isinstance(excinfo.value, RuntimeError)
    for part in parts:
        assert part in str(excinfo.value), str(excinfo.value)


# ----------------------------------------------------------------------------- API


def test_import_paths_and_signatures():
    assert ops.deform_conv2d is deform_conv2d and ops.DeformConv2d is DeformConv2d
    fn = inspect.signature(deform_conv2d)
    assert list(fn.parameters) == [
        "input", "offset", "weight", "bias", "stride", "padding", "dilation", "mask"
    ]  # fmt: skip
    assert [p.default for p in list(fn.parameters.values())[3:]] == [
        None, (1, 1), (0, 0), (1, 1), None
    ]  # fmt: skip
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in fn.parameters.values())
    init = inspect.signature(DeformConv2d.__init__)
    assert list(init.parameters) == [
        "self", "in_channels", "out_channels", "kernel_size", "stride", "padding",
        "dilation", "groups", "bias",
    ]  # fmt: skip
    assert [p.default for p in list(init.parameters.values())[4:]] == [1, 0, 1, 1, True]
    forward = inspect.signature(DeformConv2d.forward)
    assert list(forward.parameters) == ["self", "input", "offset", "mask"]
    assert forward.parameters["mask"].default is None


def test_module_attributes_and_repr():
    m = DeformConv2d(6, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1), groups=2)
    assert (m.in_channels, m.out_channels, m.kernel_size) == (6, 4, (3, 2))
    assert (m.stride, m.padding, m.dilation, m.groups) == ((2, 1), (1, 0), (2, 1), 2)
    assert repr(m) == (
        "DeformConv2d(6, 4, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), "
        "dilation=(2, 1), groups=2)"
    )
    assert repr(DeformConv2d(3, 5, 3, bias=False)) == (
        "DeformConv2d(3, 5, kernel_size=(3, 3), stride=(1, 1), bias=False)"
    )
    # an omniconv.nn.DeformConv2d whose offset groups and mask are per call
    assert isinstance(m, onn.DeformConv2d)
    assert m.deformable_groups is None and m.modulated is None
    assert not hasattr(m, "offset_channels") and not hasattr(m, "mask_channels")


def test_state_dict_keys_shapes_and_interchange():
    """torchvision's keys and shapes (``weight``, ``bias``: those of an ``nn.Conv2d`` of the
    same configuration); a checkpoint loads strictly both ways, and with zero offsets the
    layer computes that convolution."""
    m = _layer(torch.float32)
    sd = m.state_dict()
    assert list(sd) == ["weight", "bias"]
    assert sd["weight"].shape == (C_OUT, C // GROUPS, *KERNEL) and sd["bias"].shape == (C_OUT,)
    assert list(_layer(bias=False).state_dict()) == ["weight"]

    conv = torch.nn.Conv2d(C, C_OUT, KERNEL, STRIDE, PADDING, DILATION, GROUPS)
    m.load_state_dict(conv.state_dict(), strict=True)
    other = _layer(torch.float32)
    other.load_state_dict(m.state_dict(), strict=True)
    x = rand(N, C, H, W, dtype=torch.float32)
    ho, wo = out_size(H, W, KERNEL, STRIDE, PADDING, DILATION)
    zero = torch.zeros(N, 2 * DG * KERNEL[0] * KERNEL[1], ho, wo)
    with torch.no_grad():
        torch.testing.assert_close(other(x, zero), conv(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="Missing key"):
        _layer(torch.float32).load_state_dict({"weight": sd["weight"]}, strict=True)


@pytest.mark.parametrize("bias", [True, False])
def test_init_is_torchvisions(bias):
    """Same seed, same values: weight then bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    drawn as torchvision's ``reset_parameters`` draws them."""
    torch.manual_seed(123)
    m = DeformConv2d(6, 4, (3, 2), groups=2, bias=bias)
    fan_in = 3 * 3 * 2
    bound = 1 / math.sqrt(fan_in)
    torch.manual_seed(123)
    w = torch.empty(4, 3, 3, 2).uniform_(-bound, bound)
    assert torch.equal(m.weight.detach(), w)
    if bias:
        assert torch.equal(m.bias.detach(), torch.empty(4).uniform_(-bound, bound))
    else:
        assert m.bias is None
    m.reset_parameters()
    assert m.weight.abs().max() <= bound


def test_init_statistics():
    m = DeformConv2d(64, 128, 3)
    bound = 1 / math.sqrt(64 * 9)
    w = m.weight.detach()
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert abs(w.mean().item()) < 0.02 * bound
    assert abs(w.var().item() / (bound**2 / 3) - 1) < 0.02  # the uniform distribution's
    assert m.bias.abs().max() <= bound


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_functional_values_and_grads_vs_reference(case, use_mask, dtype):
    n, _, h, w, o, kernel, stride, padding, dilation, _, _ = case
    out, _ = compare(
        _tv(stride, padding, dilation, use_mask),
        deform_ref(stride, padding, dilation, use_mask),
        deform_inputs(use_mask, *make_deform(*case)),
        impl_dtype=dtype,
    )
    assert out.shape == (n, o, *out_size(h, w, kernel, stride, padding, dilation))


@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
def test_module_values_and_grads_vs_reference(use_mask):
    """The layer on the asymmetric case; gradients of input, offset, mask, weight, bias."""
    x, off, wt, b, mask = make_deform(*ASYM, seed=5)
    layer = _layer()
    with torch.no_grad():
        layer.weight.copy_(wt)
        layer.bias.copy_(b)
    xi, oi, mi = leaves(x, off, mask)
    out = layer(xi, oi, mi) if use_mask else layer(xi, oi)
    xr, or_, mr, wr, br = leaves(x, off, mask, wt, b)
    ref = ref_deform_conv2d(xr, or_, wr, br, STRIDE, PADDING, DILATION, mr if use_mask else None)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-10)
    g = rand(*out.shape, seed=9)
    got = torch.autograd.grad(out, [xi, oi, layer.weight, layer.bias] + [mi] * use_mask, g)
    want = torch.autograd.grad(ref, [xr, or_, wr, br] + [mr] * use_mask, g)
    for a, e in zip(got, want, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-10)


def test_mask_is_optional_per_call():
    """One layer, with and without a mask: DCNv1 is DCNv2 with a mask of ones."""
    x, off, _, _, mask = make_deform(*ASYM, seed=2)
    layer = _layer()
    with torch.no_grad():
        v2 = layer(x, off, mask)
        v1 = layer(x, off)
        ones = layer(x, off, torch.ones_like(mask))
        again = layer(x, off, mask)
    assert torch.equal(v1, ones) and torch.equal(v2, again)
    assert not torch.allclose(v1, v2)


@pytest.mark.parametrize("dg", [1, 2, 3, 6])
def test_offset_groups_come_from_the_offset(dg):
    """One layer (C_in 6) takes offsets of 1, 2, 3 or 6 deformable groups, call by call."""
    layer = _layer()
    case = (N, C, H, W, C_OUT, KERNEL, STRIDE, PADDING, DILATION, GROUPS, dg)
    x, off, _, _, mask = make_deform(*case, seed=dg)
    with torch.no_grad():
        out = layer(x, off, mask)
        want = ref_deform_conv2d(x, off, layer.weight, layer.bias, STRIDE, PADDING, DILATION, mask)
    torch.testing.assert_close(out, want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
@pytest.mark.parametrize("batch", [0, 33])
def test_batch_zero_and_33(batch, use_mask):
    case = (batch, C, 5, 4, 2, KERNEL, STRIDE, PADDING, DILATION, GROUPS, DG)
    inputs = leaves(*deform_inputs(use_mask, *make_deform(*case, seed=33)))
    out = _tv(STRIDE, PADDING, DILATION, use_mask)(*inputs)
    assert out.shape == (batch, 2, *out_size(5, 4, KERNEL, STRIDE, PADDING, DILATION))
    grads = torch.autograd.grad(out.sum(), inputs)
    assert [g.shape for g in grads] == [t.shape for t in inputs]
    if batch == 0:  # nothing flows: the weight and bias gradients are exactly zero
        assert not grads[2].any() and not grads[3].any()
        return
    mask = inputs[4] if use_mask else None
    want = ref_deform_conv2d(*inputs[:4], STRIDE, PADDING, DILATION, mask)
    torch.testing.assert_close(out, want, rtol=1e-9, atol=1e-10)
    for got, exp in zip(grads, torch.autograd.grad(want.sum(), inputs), strict=True):
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("use_mask", [True, False], ids=["v2", "v1"])
@pytest.mark.parametrize("batch", [0, 3])
def test_gradcheck(batch, use_mask):
    case = (batch, C, 5, 4, 2, KERNEL, STRIDE, PADDING, DILATION, GROUPS, DG)
    inputs = leaves(*deform_inputs(use_mask, *make_deform(*case, seed=21, scale=1.5)))
    fn = _tv(STRIDE, PADDING, DILATION, use_mask)
    assert torch.autograd.gradcheck(fn, tuple(inputs), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("layout", [k for k in LAYOUTS if k != "contiguous"])
@pytest.mark.parametrize("arg", ["input", "offset", "mask", "weight"])
def test_memory_layouts(arg, layout):
    """Non-contiguous, expanded and channels_last inputs, offsets, masks and weights: the
    same values and gradients as the reference on the same (viewed) tensors."""
    x, off, wt, b, mask = make_deform(*ASYM, seed=7)
    index = {"input": 0, "offset": 1, "weight": 2, "mask": 4}[arg]
    inputs = [x, off, wt, b, mask]
    if not distinct_layout(inputs[index], layout):
        pytest.skip(f"{layout} is plain contiguous for {arg} of shape {inputs[index].shape}")

    def with_layout(fn):
        def call(*ts):
            ts = list(ts)
            ts[index] = relayout(ts[index], layout)
            return fn(*ts)

        return call

    compare(
        with_layout(_tv(STRIDE, PADDING, DILATION, True)),
        with_layout(deform_ref(STRIDE, PADDING, DILATION, True)),
        inputs,
    )


def test_stride_padding_dilation_take_ints_and_pairs():
    x, off, wt, b, mask = make_deform(2, 4, 6, 6, 4, (3, 3), 2, 1, 1, 1, 2, seed=4)
    a = deform_conv2d(x, off, wt, b, 2, 1, 1, mask)
    assert torch.equal(a, deform_conv2d(x, off, wt, b, (2, 2), [1, 1], (1, 1), mask))
    assert torch.equal(a, deform_conv2d(x, off, wt, b, stride=2, padding=1, mask=mask))


# ----------------------------------------------------------------------------- errors


def _asym_args(batch=2):
    x, off, wt, b, mask = make_deform(batch, C, 5, 4, 2, KERNEL, STRIDE, PADDING, DILATION,
                                      GROUPS, DG)  # fmt: skip
    return x, off, wt, b, mask


def test_wrong_offset_and_mask_channels():
    """torchvision's words; a float32 layer on float64 data still reports the shapes first
    (torchvision checks shapes before its kernel sees the dtypes)."""
    x, off, _, _, mask = _asym_args(10)
    layer = _layer(torch.float32)
    with pytest.raises(TorchvisionValueError) as e:
        layer(x, off[:, :2])
    _assert_error(
        e, ValueError,
        "the shape of the offset tensor at dimension 1 is not valid. It should be a multiple "
        "of 2 * weight.size[2] * weight.size[3].\nGot offset.shape[1]=2, while "
        "2 * weight.size[2] * weight.size[3]=12",
    )  # fmt: skip
    with pytest.raises(TorchvisionValueError) as e:
        layer(x, off, mask[:, :2])
    _assert_error(e, ValueError, "mask.shape[1] is not valid: got: 2 expected: 18")
    with pytest.raises(TorchvisionValueError) as e:
        layer(x, off[:, :13])
    _assert_error(e, ValueError, "offset.shape[1] is not valid: got: 13 expected: 12")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda a: {**a, "offset": a["offset"][:1]}, "invalid batch size of offset; received "
         "offset.shape[0]=1, input.shape[0]=2"),
        (lambda a: {**a, "offset": a["offset"][..., :1]}, "offset output dims: (2, 1) - "
         "computed output dims: (2, 3)"),
        (lambda a: {**a, "mask": a["mask"][:1]}, "invalid batch size of mask; received "
         "mask.shape[0]=1, input.shape[0]=2"),
        (lambda a: {**a, "mask": a["mask"][:, :, :1]}, "mask output dims: (1, 3) - computed "
         "output dims: (2, 3)"),
        (lambda a: {**a, "offset": torch.cat([a["offset"]] * 4, 1)[:, :48], "mask": None},
         "input.shape[1] must be divisible by the offset groups (offset.shape[1] // (2 * "
         "weight.size[2] * weight.size[3])); received input.shape[1]=6, offset groups=4"),
        (lambda a: {**a, "input": a["input"][:, :5]}, "input.shape[1] must be a positive "
         "multiple of weight.shape[1]"),
        (lambda a: {**a, "weight": a["weight"][:1]}, "weight.shape[0] must be divisible by "
         "the convolution groups (2); received weight.shape[0]=1"),
        (lambda a: {**a, "stride": (0, 1)}, "stride_h: 0 stride_w: 1; received stride=(0, 1)"),
        (lambda a: {**a, "padding": (1, -1)}, "pad_h: 1 pad_w: -1"),
        (lambda a: {**a, "dilation": (2, 0)}, "dilation_h: 2 dilation_w: 0"),
        (lambda a: {**a, "bias": a["bias"][:1]}, "bias must have weight.shape[0]=2 elements; "
         "received bias.shape=[1]"),
        (lambda a: {**a, "input": a["input"][0]}, "input must be a 4-D tensor; received "
         "input.shape=[6, 5, 4]"),
        (lambda a: {**a, "input": a["input"][..., :1, :]}, "offset output dims"),
        (lambda a: {**a, "input": a["input"][..., :2, :], "offset": a["offset"][..., :0, :],
                    "mask": a["mask"][..., :0, :]},
         "Calculated output size too small - out_h: 0 out_w: 3"),
        (lambda a: {**a, "offset": a["offset"].to("meta")}, "offset must be on the input's "
         "device (cpu); received offset.device=meta"),
    ],
)  # fmt: skip
def test_value_errors(change, words):
    x, off, wt, b, mask = _asym_args()
    args = {"input": x, "offset": off, "weight": wt, "bias": b, "mask": mask,
            "stride": STRIDE, "padding": PADDING, "dilation": DILATION}  # fmt: skip
    with pytest.raises(TorchvisionValueError) as e:
        deform_conv2d(**change(args))
    _assert_error(e, ValueError, words)


def test_type_errors():
    x, off, wt, b, mask = _asym_args()
    args = {"input": x, "offset": off, "weight": wt, "bias": b, "mask": mask,
            "stride": STRIDE, "padding": PADDING, "dilation": DILATION}  # fmt: skip
    cases = [
        ({"input": x.long()}, "input must be a floating-point tensor; received "
         "input.dtype=torch.int64"),
        ({"offset": off.float()}, "offset must have the input's dtype (torch.float64) outside "
         "autocast; received offset.dtype=torch.float32"),
        ({"bias": b.half()}, "bias must have the input's dtype (torch.float64) outside "
         "autocast; received bias.dtype=torch.float16"),
        ({"offset": off.numpy()}, "`offset` must be a torch.Tensor; received offset=<ndarray>"),
        ({"bias": [1.0, 2.0]}, "`bias` must be a torch.Tensor or None; received bias=<list>"),
        ({"stride": "1"}, "`stride` must be an int or a pair of ints; received stride='1'"),
        ({"dilation": (2, 1.0)}, "`dilation` must be an int or a pair of ints; received "
         "dilation=(2, 1.0)"),
    ]  # fmt: skip
    for change, words in cases:
        with pytest.raises(TorchvisionTypeError) as e:
            deform_conv2d(**{**args, **change})
        _assert_error(e, TypeError, words)
    with pytest.raises(TorchvisionValueError) as e:
        deform_conv2d(**{**args, "padding": (1, 0, 0)})
    _assert_error(e, ValueError, "`padding` must be an int or a pair of ints; received "
                  "padding=(1, 0, 0)")  # fmt: skip
    # torchvision's order: the shapes first, the dtypes where its kernel would fail
    with pytest.raises(TorchvisionValueError, match="the shape of the offset"):
        deform_conv2d(**{**args, "offset": off[:, :2].float()})


def test_error_classes():
    assert issubclass(TorchvisionValueError, TorchvisionError)
    assert issubclass(TorchvisionTypeError, TorchvisionError)
    assert issubclass(TorchvisionError, RuntimeError)
    assert issubclass(TorchvisionValueError, ValueError)
    assert issubclass(TorchvisionTypeError, TypeError)


def test_constructor_errors():
    """torchvision's own ValueError and words for the group rule (plus the values); other
    bad arguments are omniconv.nn's ValueError / TypeError naming the argument."""
    with pytest.raises(ValueError, match=r"^in_channels must be divisible by groups; "
                       r"received in_channels=5, groups=2$") as e:  # fmt: skip
        DeformConv2d(5, 4, 3, groups=2)
    assert not isinstance(e.value, RuntimeError)
    with pytest.raises(ValueError, match=r"^out_channels must be divisible by groups"):
        DeformConv2d(4, 5, 3, groups=2)
    with pytest.raises(ValueError, match="`groups` must be a positive integer; received groups=0"):
        DeformConv2d(4, 4, 3, groups=0)
    with pytest.raises(ValueError, match="`stride` must be positive integers"):
        DeformConv2d(4, 4, 3, stride=0)
    with pytest.raises(TypeError, match="`kernel_size` must be an int or a pair of ints"):
        DeformConv2d(4, 4, "3")


# ----------------------------------------------------------------------------- TorchScript


def test_script_functional_values_grads_and_errors():
    scripted = torch.jit.script(deform_conv2d)
    inputs = leaves(*make_deform(*ASYM, seed=11))
    args = (STRIDE, PADDING, DILATION)
    for use_mask in (True, False):
        ins = deform_inputs(use_mask, *inputs)
        mask = ins[4] if use_mask else None
        got = scripted(*ins[:4], *args, mask)
        want = deform_conv2d(*ins[:4], *args, mask)
        assert torch.equal(got, want)
        g = rand(*got.shape, seed=3)
        for a, e in zip(torch.autograd.grad(got, ins, g), torch.autograd.grad(want, ins, g),
                        strict=True):  # fmt: skip
            assert torch.equal(a, e)
    x, off, wt, b, mask = (t.detach() for t in inputs)
    with pytest.raises(torch.jit.Error, match=r"TorchvisionValueError: mask.shape\[1\] is not"):
        scripted(x, off, wt, b, *args, mask[:, :2])
    with pytest.raises(torch.jit.Error, match="the shape of the offset tensor"):
        scripted(x, off[:, :2], wt, b, *args, None)


def test_script_module_save_load_and_mask_per_call():
    layer = _layer()
    scripted = torch.jit.script(layer)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    x, off, _, _, mask = make_deform(*ASYM, seed=12)
    with torch.no_grad():
        for args in ((x, off, mask), (x, off)):
            want = layer(*args)
            assert torch.equal(scripted(*args), want)
            assert torch.equal(loaded(*args), want)
    assert torch.jit.script(DeformConv2d(in_channels=8, out_channels=8, kernel_size=3))


def test_scripted_code_calls_the_registered_op():
    graph = torch.jit.script(deform_conv2d).inlined_graph
    assert any(n.kind() == "omniconv::deform_conv2d" for n in graph.nodes())


# ----------------------------------------------------------------------------- tracing


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the Python checks
def test_trace_compile_and_export():
    layer = _layer(torch.float32)
    x, off, _, _, mask = (t.float() for t in make_deform(*ASYM, seed=13))
    want = layer(x, off, mask)
    traced = torch.jit.trace(layer, (x, off, mask))
    torch.testing.assert_close(traced(x, off, mask), want, rtol=0, atol=0)

    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    xs = [t.clone().requires_grad_() for t in (x, off, mask)]
    out = compiled(*xs)
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    grads = torch.autograd.grad(out.square().sum(), xs)
    xe = [t.clone().requires_grad_() for t in (x, off, mask)]
    for a, e in zip(grads, torch.autograd.grad(layer(*xe).square().sum(), xe), strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=0)
    fn = torch.compile(deform_conv2d, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(fn(x, off, layer.weight, None, STRIDE, PADDING, DILATION),
                               layer._conv_forward(x, off, None, layer.weight, None))  # fmt: skip

    ep = torch.export.export(layer, (x, off, mask))
    targets = [n.target for n in ep.graph.nodes if n.op == "call_function"]
    assert targets == [OP]
    torch.testing.assert_close(ep.module()(x, off, mask), want, rtol=0, atol=0)


def test_fx_symbolic_trace_keeps_one_call():
    """``torch.fx.symbolic_trace`` through the layer records the functional as one call
    (its checks need real tensors), and the graph module computes the same."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dcn = _layer()

        def forward(self, x, off, mask):
            return self.dcn(x, off, mask).relu()

    net = Net()
    gm = torch.fx.symbolic_trace(net)
    calls = [n for n in gm.graph.nodes if n.op == "call_function"]
    assert len(calls) == 1 and calls[0].target.__name__ == "deform_conv2d"
    x, off, _, _, mask = make_deform(*ASYM, seed=16)
    with torch.no_grad():
        assert torch.equal(gm(x, off, mask), net(x, off, mask))


# ----------------------------------------------------------------------------- autocast


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_autocast_returns_the_input_dtype(half):
    """As torchvision: float32 inside, the output cast back to the input's dtype; a
    float32 input stays float32. Scripted code cannot switch autocast off, so it takes
    the op's own rule: float32 under float16 autocast (the same numbers), bfloat16
    input, weight and bias under CPU bfloat16 autocast (the op's bfloat16 products)."""
    layer = _layer(torch.float32)
    x, off, _, _, mask = (t.float() for t in make_deform(*ASYM, seed=14))
    scripted = torch.jit.script(layer)
    with torch.autocast("cpu", dtype=half), torch.no_grad():
        out = layer(x.to(half), off, mask.to(half))
        out_scripted = scripted(x.to(half), off, mask.to(half))
        out32 = layer(x, off.to(half), mask)
    with torch.no_grad():
        want = layer(x.to(half).float(), off, mask.to(half).float())
        if half == torch.bfloat16:  # the op's rule, spelt out
            bf = [t.to(half) for t in (x, layer.weight, layer.bias)]
            want_scripted = torch.ops.omniconv.deform_conv2d(
                bf[0], bf[1], off, mask.to(half).float(), bf[2], *STRIDE, *PADDING, *DILATION,
                True, 64,
            )  # fmt: skip
        else:
            want_scripted = want.to(half)
    assert out.dtype == out_scripted.dtype == half and out32.dtype == torch.float32
    assert torch.equal(out, want.to(half)) and torch.equal(out_scripted, want_scripted)
    torch.testing.assert_close(out32, layer(x, off.to(half).float(), mask), rtol=0, atol=0)


# ----------------------------------------------------------------------------- omniconv.nn


def test_nn_per_call_mode_and_pack_refusal():
    """The omniconv.nn mode this front-end stands on: deformable_groups=None reads the
    groups from each offset, modulated=None makes the mask optional; a Pack needs both."""
    m = onn.DeformConv2d(C, C_OUT, KERNEL, STRIDE, PADDING, DILATION, GROUPS,
                         deformable_groups=None, modulated=None).double()  # fmt: skip
    for dg in (1, 3):
        case = (N, C, H, W, C_OUT, KERNEL, STRIDE, PADDING, DILATION, GROUPS, dg)
        x, off, _, _, mask = make_deform(*case, seed=dg)
        with torch.no_grad():
            for msk in (mask, None):
                want = ref_deform_conv2d(x, off, m.weight, m.bias, STRIDE, PADDING, DILATION, msk)
                torch.testing.assert_close(m(x, off, msk), want, rtol=1e-9, atol=1e-10)
    with pytest.raises(TypeError, match="`deformable_groups` must be an int for DeformConv2dPack"):
        onn.DeformConv2dPack(4, 4, 3, deformable_groups=None)
    with pytest.raises(TypeError, match="`modulated` must be True or False for DeformConv2dPack"):
        onn.DeformConv2dPack(4, 4, 3, modulated=None)
    with pytest.raises(AttributeError):
        _ = m.offset_channels


def test_zero_offsets_is_the_dense_convolution_reference():
    """With zero offsets and no mask the op is the grouped, strided, dilated convolution."""
    x, _, wt, b, _ = make_deform(*ASYM, seed=15)
    ho, wo = out_size(H, W, KERNEL, STRIDE, PADDING, DILATION)
    off = torch.zeros(N, 2 * DG * KERNEL[0] * KERNEL[1], ho, wo, dtype=F64)
    pad4 = (PADDING[0], PADDING[0], PADDING[1], PADDING[1])
    want = ref_conv2d(x, wt, b, STRIDE, pad4, DILATION, GROUPS)
    got = deform_conv2d(x, off, wt, b, STRIDE, PADDING, DILATION)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
