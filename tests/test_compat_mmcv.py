"""omniconv.compat.mmcv: mmcv.ops' deformable convolutions against the float64 references.

"mmcv's numbers" here are mmcv's documented math, written out independently in
``tests/reference.py`` (the bilinear rule of mmcv's CPU/CUDA kernels, which is
torchvision's) with mmcv's conventions spelled out in this file: offsets
``[y0, x0, y1, x1, ...]`` per deformable group, ``ModulatedDeformConv2dPack``'s
``o1, o2, m = chunk(conv_offset(x), 3)``, offset ``cat(o1, o2)``, mask ``sigmoid(m)``;
mmcv's initialisers; mmcv's argument rules and words. mmcv's own DCN tests (their pinned
outputs and gradients) are run against this front-end outside the repo (see the issue's
report); no mmcv code or data is copied here.
"""

from __future__ import annotations

import inspect
import logging
import math
import re

import pytest
import torch
from _helpers import (
    ASYM,
    CASES,
    F64,
    TOL64,
    compare,
    leaves,
    make_deform,
    out_size,
    pair,
    rand,
    relayout,
)
from reference import ref_conv2d, ref_deform_conv2d
from torch import nn
from torch.func import functional_call

from omniconv.compat import mmcv
from omniconv.compat.mmcv import upgrade_state_dict
from omniconv.compat.mmcv._errors import MMCVAssertionError, MMCVRuntimeError
from omniconv.compat.mmcv.ops import (
    DeformConv2d,
    DeformConv2dPack,
    ModulatedDeformConv2d,
    ModulatedDeformConv2dPack,
    deform_conv2d,
    modulated_deform_conv2d,
)

# --------------------------------------------------------------------------- helpers


def _pad4(padding):
    ph, pw = pair(padding)
    return (ph, ph, pw, pw)


def ref_v1(stride, padding, dilation):
    """mmcv's DCNv1: no mask, no bias."""

    def fn(x, off, w):
        return ref_deform_conv2d(x, off, w, None, stride, padding, dilation, None)

    return fn


def ref_v2(stride, padding, dilation):
    def fn(x, off, mask, w, b=None):
        return ref_deform_conv2d(x, off, w, b, stride, padding, dilation, mask)

    return fn


def ref_offset_conv(x, ow, ob, stride, padding, dilation):
    """mmcv's ``conv_offset``: a plain conv with the layer's geometry, one group, a bias."""
    return ref_conv2d(x, ow, ob, pair(stride), _pad4(padding), pair(dilation), 1)


def ref_pack_v1(stride, padding, dilation):
    def fn(x, w, ow, ob):
        off = ref_offset_conv(x, ow, ob, stride, padding, dilation)
        return ref_deform_conv2d(x, off, w, None, stride, padding, dilation, None)

    return fn


def ref_pack_v2(stride, padding, dilation):
    """mmcv's ModulatedDeformConv2dPack.forward, written out: three chunks, the offset
    is the first two concatenated, the mask the sigmoid of the third."""

    def fn(x, w, b, ow, ob):
        o1, o2, m = torch.chunk(ref_offset_conv(x, ow, ob, stride, padding, dilation), 3, dim=1)
        off = torch.cat((o1, o2), dim=1)
        return ref_deform_conv2d(x, off, w, b, stride, padding, dilation, torch.sigmoid(m))

    return fn


def pack_params(m, seed, scale=0.05):
    """Random weights for a Pack (its conv_offset non-zero, so offsets and mask vary)."""
    out = [rand(*m.weight.shape, seed=seed)]
    if getattr(m, "bias", None) is not None:
        out.append(rand(*m.bias.shape, seed=seed + 1))
    out.append(rand(*m.conv_offset.weight.shape, seed=seed + 2, scale=scale))
    out.append(rand(*m.conv_offset.bias.shape, seed=seed + 3, scale=3 * scale))
    return out


def call_with(m, names, *inputs_first):
    """``fn(*inputs, *params)`` running module ``m`` with the given tensors as its
    parameters ``names`` (differentiable, any dtype or layout)."""
    k = len(inputs_first)

    def fn(*args):
        return functional_call(m, dict(zip(names, args[k:], strict=True)), tuple(args[:k]))

    return fn


def _case_module_args(case):
    _, c, _, _, o, kernel, stride, padding, dilation, groups, dg = case
    return dict(
        in_channels=c, out_channels=o, kernel_size=kernel, stride=stride, padding=padding,
        dilation=dilation, groups=groups, deform_groups=dg,
    )  # fmt: skip


def _message(excinfo):
    return str(excinfo.value)


# --------------------------------------------------------------------------- API


def test_module_paths_and_names():
    from omniconv.compat.mmcv.ops import deform_conv as dc
    from omniconv.compat.mmcv.ops import modulated_deform_conv as mdc

    assert mmcv.ops.DeformConv2dPack is dc.DeformConv2dPack is DeformConv2dPack
    assert dc.deform_conv2d is deform_conv2d and dc.DeformConv2d is DeformConv2d
    assert mdc.ModulatedDeformConv2dPack is ModulatedDeformConv2dPack
    assert mdc.modulated_deform_conv2d is modulated_deform_conv2d
    assert mdc.ModulatedDeformConv2d is ModulatedDeformConv2d
    assert issubclass(DeformConv2dPack, DeformConv2d)
    assert issubclass(ModulatedDeformConv2dPack, ModulatedDeformConv2d)
    assert not issubclass(ModulatedDeformConv2d, DeformConv2d)
    for cls in (DeformConv2d, ModulatedDeformConv2d):  # plain modules, as mmcv's
        assert issubclass(cls, nn.Module) and not issubclass(cls, nn.Conv2d)


def _params(fn):
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


_E = inspect.Parameter.empty


def test_signatures_and_defaults_are_mmcvs():
    assert _params(deform_conv2d) == [
        ("input", _E), ("offset", _E), ("weight", _E), ("stride", 1), ("padding", 0),
        ("dilation", 1), ("groups", 1), ("deform_groups", 1), ("bias", False),
        ("im2col_step", 32),
    ]  # fmt: skip
    assert _params(modulated_deform_conv2d) == [
        ("input", _E), ("offset", _E), ("mask", _E), ("weight", _E), ("bias", None),
        ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1), ("deform_groups", 1),
    ]  # fmt: skip
    head = [("in_channels", _E), ("out_channels", _E), ("kernel_size", _E), ("stride", 1),
            ("padding", 0), ("dilation", 1), ("groups", 1), ("deform_groups", 1)]  # fmt: skip
    assert _params(DeformConv2d.__init__)[1:] == [*head, ("bias", False), ("im2col_step", 32)]
    assert _params(ModulatedDeformConv2d.__init__)[1:] == [*head, ("bias", True)]
    assert _params(DeformConv2d.forward)[1:] == [("x", _E), ("offset", _E)]
    assert _params(ModulatedDeformConv2d.forward)[1:] == [("x", _E), ("offset", _E), ("mask", _E)]
    for cls in (DeformConv2dPack, ModulatedDeformConv2dPack):
        assert _params(cls.forward)[1:] == [("x", _E)]


def test_attributes_and_parameters():
    m = DeformConv2d(4, 6, (3, 2), stride=(2, 1), padding=1, groups=2, deform_groups=2)
    assert not hasattr(m, "bias")  # mmcv's DCNv1: no bias attribute at all
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert m.weight.shape == (6, 2, 3, 2) and m.weight.dtype == torch.float32
    assert (m.in_channels, m.out_channels, m.groups, m.deform_groups) == (4, 6, 2, 2)
    assert (m.kernel_size, m.stride, m.padding, m.dilation) == ((3, 2), (2, 1), (1, 1), (1, 1))
    assert m.im2col_step == 32 and m.transposed is False and m.output_padding == (0,)

    p = DeformConv2dPack(4, 6, 3, padding=1, deform_groups=2)
    assert not hasattr(p, "bias")
    assert type(p.conv_offset) is not nn.Conv2d and isinstance(p.conv_offset, nn.Conv2d)
    c = p.conv_offset
    assert (c.in_channels, c.out_channels, c.kernel_size, c.padding) == (4, 36, (3, 3), (1, 1))
    assert c.groups == 1 and c.bias is not None

    mm = ModulatedDeformConv2d(4, 6, 3, groups=2)
    assert mm.bias is not None and mm.bias.shape == (6,) and mm.weight.shape == (6, 2, 3, 3)
    assert ModulatedDeformConv2d(4, 6, 3, bias=False).bias is None
    assert ModulatedDeformConv2d(4, 6, 3, bias="auto").bias is not None  # truthy, as mmcv
    mp = ModulatedDeformConv2dPack(4, 6, (3, 2), stride=(2, 1), dilation=(2, 1), deform_groups=2)
    c = mp.conv_offset
    assert (c.out_channels, c.kernel_size, c.stride, c.dilation) == (36, (3, 2), (2, 1), (2, 1))
    assert mp.transposed is False and mp.output_padding == (0,)


def test_repr_shows_non_defaults():
    assert repr(DeformConv2d(4, 6, 3)) == "DeformConv2d(4, 6, kernel_size=(3, 3), bias=False)"
    m = DeformConv2d(4, 6, 3, stride=2, deform_groups=2, im2col_step=4)
    assert "stride=(2, 2), deform_groups=2, im2col_step=4, bias=False" in repr(m)
    assert repr(ModulatedDeformConv2d(4, 6, 3)) == "ModulatedDeformConv2d(4, 6, kernel_size=(3, 3))"
    r = repr(ModulatedDeformConv2dPack(4, 6, 3, padding=1, bias=False))
    assert r.startswith("ModulatedDeformConv2dPack(\n  4, 6, kernel_size=(3, 3), padding=(1, 1), ")
    assert "bias=False\n  (conv_offset): Conv2d(4, 27, kernel_size=(3, 3), padding=(1, 1))" in r


def test_deprecated_deformable_groups_keyword():
    for cls in (DeformConv2d, DeformConv2dPack, ModulatedDeformConv2d, ModulatedDeformConv2dPack):
        name = "ModulatedDeformConv2d" if "Modulated" in cls.__name__ else "DeformConv2d"
        with pytest.warns(UserWarning) as rec:
            m = cls(4, 4, 3, deformable_groups=2)
        assert m.deform_groups == 2
        assert [str(w.message) for w in rec] == [
            f'"deformable_groups" is deprecated in `{name}.__init__`, please use '
            '"deform_groups" instead'
        ]
        with pytest.raises(MMCVAssertionError) as e:
            cls(4, 4, 3, deform_groups=2, deformable_groups=2)
        assert _message(e) == (
            "The expected behavior is to replace the deprecated key `deformable_groups` to new "
            "key `deform_groups`, but got them in the arguments at the same time, which is "
            "confusing. `deformable_groups will be deprecated in the future, please use "
            "`deform_groups` instead."
        )


# --------------------------------------------------------------------------- initialisation


def _next_draws():
    return torch.rand(8)


def test_deform_conv2d_init_is_mmcvs_kaiming_relu():
    torch.manual_seed(3)
    m = DeformConv2d(6, 4, (3, 2), groups=2)
    after = _next_draws()
    torch.manual_seed(3)
    w = torch.empty(4, 3, 3, 2)
    bound = math.sqrt(6 / (3 * 3 * 2))  # kaiming_uniform_(nonlinearity='relu'), fan_in
    w.uniform_(-bound, bound)
    assert torch.equal(m.weight.detach(), w) and torch.equal(_next_draws(), after)
    m.reset_parameters()
    assert not torch.equal(m.weight.detach(), w) and m.weight.abs().max() <= bound


def test_deform_conv2d_pack_init_draws_as_mmcv():
    """mmcv: weight (kaiming relu), then ``nn.Conv2d(...)`` for the offsets (torch's
    init draws), then zeros: the same values and the same RNG state afterwards."""
    torch.manual_seed(4)
    m = DeformConv2dPack(4, 6, 3, padding=1, deform_groups=2)
    after = _next_draws()
    torch.manual_seed(4)
    w = torch.empty(6, 4, 3, 3)
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    nn.Conv2d(4, 36, 3, padding=1)
    assert torch.equal(m.weight.detach(), w) and torch.equal(_next_draws(), after)
    assert not m.conv_offset.weight.any() and not m.conv_offset.bias.any()
    with torch.no_grad():
        m.conv_offset.weight.fill_(1.0)
        m.conv_offset.bias.fill_(1.0)
    m.init_offset()
    assert not m.conv_offset.weight.any() and not m.conv_offset.bias.any()


def test_modulated_init_uses_all_input_channels():
    """mmcv's init_weights: U(-s, s) with s = 1/sqrt(in_channels*kh*kw) (not divided by
    groups), bias 0."""
    torch.manual_seed(5)
    m = ModulatedDeformConv2d(6, 4, (3, 2), groups=2)
    after = _next_draws()
    torch.manual_seed(5)
    s = 1 / math.sqrt(6 * 3 * 2)
    w = torch.empty(4, 3, 3, 2).uniform_(-s, s)
    assert torch.equal(m.weight.detach(), w) and torch.equal(_next_draws(), after)
    assert torch.equal(m.bias.detach(), torch.zeros(4))
    with torch.no_grad():
        m.bias.fill_(1.0)
    m.init_weights()
    assert not m.bias.any() and m.weight.abs().max() <= s


def test_modulated_pack_init_draws_as_mmcv():
    """mmcv's Pack runs init_weights twice (in the base constructor, and after creating
    conv_offset): weight, conv_offset's torch init, weight again; conv_offset zero."""
    torch.manual_seed(6)
    m = ModulatedDeformConv2dPack(4, 6, (3, 2), padding=1, deform_groups=2)
    after = _next_draws()
    torch.manual_seed(6)
    s = 1 / math.sqrt(4 * 3 * 2)
    w = torch.empty(6, 4, 3, 2)
    w.uniform_(-s, s)
    nn.Conv2d(4, 2 * 3 * 3 * 2, (3, 2), padding=1)
    w.uniform_(-s, s)
    assert torch.equal(m.weight.detach(), w) and torch.equal(_next_draws(), after)
    assert not m.bias.any() and not m.conv_offset.weight.any() and not m.conv_offset.bias.any()
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(1.0)
    m.init_weights()
    assert not m.bias.any() and not m.conv_offset.weight.any() and not m.conv_offset.bias.any()


def test_fresh_packs_mask_is_sigmoid_not_twice_sigmoid():
    """A fresh Pack has zero offsets; DCNv1 is then the dense conv, and DCNv2 half of it
    (mask sigmoid(0) = 1/2, mmcv's; 2*sigmoid would give the dense conv)."""
    x = rand(2, 4, 6, 5)
    v1 = DeformConv2dPack(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1)).double()
    dense = ref_conv2d(x, v1.weight.detach(), None, (2, 1), (1, 1, 0, 0), (2, 1), 1)
    torch.testing.assert_close(v1(x), dense, **TOL64)
    v2 = ModulatedDeformConv2dPack(4, 6, 3, padding=1, groups=2).double()
    with torch.no_grad():
        v2.bias.copy_(rand(6, seed=1))
    dense = ref_conv2d(x, v2.weight.detach(), None, (1, 1), (1, 1, 1, 1), (1, 1), 2)
    want = 0.5 * dense + v2.bias.detach()[:, None, None]
    torch.testing.assert_close(v2(x), want, **TOL64)


# --------------------------------------------------------------------------- values and grads


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_deform_conv2d_vs_reference(case, dtype):
    n, _, h, w, o, kernel, stride, padding, dilation, groups, dg = case
    x, off, wt, _, _ = make_deform(*case)

    def impl(x, off, wt):
        return deform_conv2d(x, off, wt, stride, padding, dilation, groups, dg)

    out, _ = compare(impl, ref_v1(stride, padding, dilation), [x, off, wt], impl_dtype=dtype)
    assert out.shape == (n, o, *out_size(h, w, kernel, stride, padding, dilation))


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_modulated_deform_conv2d_vs_reference(case, dtype, with_bias):
    _, _, _, _, _, _, stride, padding, dilation, groups, dg = case
    x, off, wt, b, mask = make_deform(*case)

    def impl(x, off, mask, wt, b=None):
        return modulated_deform_conv2d(x, off, mask, wt, b, stride, padding, dilation, groups, dg)

    inputs = [x, off, mask, wt, b] if with_bias else [x, off, mask, wt]
    compare(impl, ref_v2(stride, padding, dilation), inputs, impl_dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_modules_vs_reference_asymmetric(dtype):
    """Kernel (3, 2), stride (2, 1), padding (1, 0), dilation (2, 1), groups 2, deform
    groups 3: values and the gradients of input, offset, mask, weight and bias."""
    _, _, _, _, _, _, stride, padding, dilation, _, _ = ASYM
    x, off, wt, b, mask = make_deform(*ASYM)
    m1 = DeformConv2d(**_case_module_args(ASYM))
    compare(call_with(m1, ["weight"], x, off), ref_v1(stride, padding, dilation),
            [x, off, wt], impl_dtype=dtype)  # fmt: skip
    m2 = ModulatedDeformConv2d(**_case_module_args(ASYM))
    compare(call_with(m2, ["weight", "bias"], x, off, mask), ref_v2(stride, padding, dilation),
            [x, off, mask, wt, b], impl_dtype=dtype)  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", [ASYM, CASES[1], CASES[4]], ids=["asym", "case1", "case4"])
def test_packs_vs_reference(case, dtype):
    """The Packs with trained-looking (random) offset predictors: output and the gradients
    of the input and of every parameter, conv_offset's included."""
    _, _, _, _, _, _, stride, padding, dilation, _, _ = case
    x = make_deform(*case)[0]
    tol = TOL64 if dtype == F64 else {"rtol": 2e-4, "atol": 2e-4}
    p1 = DeformConv2dPack(**_case_module_args(case))
    names = ["weight", "conv_offset.weight", "conv_offset.bias"]
    assert [n for n, _ in p1.named_parameters()] == names
    compare(call_with(p1, names, x), ref_pack_v1(stride, padding, dilation),
            [x, *pack_params(p1, 10)], impl_dtype=dtype, tol=tol)  # fmt: skip
    p2 = ModulatedDeformConv2dPack(**_case_module_args(case))
    names = ["weight", "bias", "conv_offset.weight", "conv_offset.bias"]
    assert [n for n, _ in p2.named_parameters()] == names
    compare(call_with(p2, names, x), ref_pack_v2(stride, padding, dilation),
            [x, *pack_params(p2, 20)], impl_dtype=dtype, tol=tol)  # fmt: skip


@pytest.mark.parametrize("modulated", [False, True], ids=["v1", "v2"])
def test_gradcheck(modulated):
    case = (1, 4, 5, 4, 2, (3, 2), (2, 1), (1, 0), (2, 1), 2, 2)
    _, _, _, _, _, _, stride, padding, dilation, groups, dg = case
    x, off, wt, b, mask = make_deform(*case, seed=31, scale=1.5)
    if modulated:

        def fn(x, off, mask, wt, b):
            return modulated_deform_conv2d(
                x, off, mask, wt, b, stride, padding, dilation, groups, dg
            )

        inputs = leaves(x, off, mask, wt, b)
    else:

        def fn(x, off, wt):
            return deform_conv2d(x, off, wt, stride, padding, dilation, groups, dg, False, 1)

        inputs = leaves(x, off, wt)
    assert torch.autograd.gradcheck(fn, tuple(inputs), eps=1e-6, atol=1e-6)


_LAYOUTS = ["channels_last", "transposed", "strided", "sliced", "sliced_channels_last",
            "expanded_channels_last"]  # fmt: skip


@pytest.mark.parametrize("layout", _LAYOUTS)
def test_any_memory_layout_of_inputs_and_weights(layout):
    """Input, offset, mask and weight (the modules' parameters too) in any layout: the
    same numbers as contiguous ones (the views are applied to the reference's inputs as
    well, since the expanded ones change values)."""
    _, _, _, _, _, _, stride, padding, dilation, _, _ = ASYM
    x, off, wt, b, mask = make_deform(*ASYM)
    view = lambda *ts: [relayout(t, layout) for t in ts]  # noqa: E731
    m2 = ModulatedDeformConv2d(**_case_module_args(ASYM))
    run2 = call_with(m2, ["weight", "bias"], x, off, mask)
    ref2 = ref_v2(stride, padding, dilation)
    compare(lambda x, o, m, w, b: run2(*view(x, o, m, w), b),
            lambda x, o, m, w, b: ref2(*view(x, o, m, w), b),
            [x, off, mask, wt, b])  # fmt: skip
    m1 = DeformConv2d(**_case_module_args(ASYM))
    run1 = call_with(m1, ["weight"], x, off)
    ref1 = ref_v1(stride, padding, dilation)
    compare(lambda *t: run1(*view(*t)), lambda *t: ref1(*view(*t)), [x, off, wt])


def test_input_smaller_than_kernel():
    """mmcv pads such an input (its CUDA kernel needs H >= kh) and crops the output: the
    result is the one of the math, which omniconv computes directly."""
    x, off, wt, _, _ = make_deform(1, 2, 2, 1, 3, (3, 3), 1, 1, 1, 1, 1)
    m = DeformConv2d(2, 3, 3, padding=1)
    compare(call_with(m, ["weight"], x, off), ref_v1(1, 1, 1), [x, off, wt])


# --------------------------------------------------------------------------- dtype rule


def test_input_and_weight_take_the_offsets_dtype():
    """mmcv's ``input.type_as(offset)``, ``weight.type_as(input)`` (mask and bias too for
    DCNv2): a float64 offset makes a float64 computation; gradients come back in each
    tensor's own dtype."""
    x, off, wt, b, mask = make_deform(*CASES[1])
    x32, w32, m32, b32 = leaves(x, wt, mask, b, dtype=torch.float32)
    off64 = off.clone().requires_grad_()
    out = modulated_deform_conv2d(x32, off64, m32, w32, b32, 1, 1, 1, 1, 2)
    assert out.dtype == F64
    want = ref_deform_conv2d(x32.double(), off, w32.double(), b32.double(), 1, 1, 1,
                             m32.double())  # fmt: skip
    torch.testing.assert_close(out, want, **TOL64)
    out.sum().backward()
    assert (x32.grad.dtype, w32.grad.dtype, m32.grad.dtype, b32.grad.dtype) == (torch.float32,) * 4
    assert off64.grad.dtype == F64
    # an integer input takes the float offset's dtype too (mmcv's rule)
    xi = (x * 4).round().long()
    out = deform_conv2d(xi, off, wt, 1, 1, 1, 1, 2)
    torch.testing.assert_close(out, ref_deform_conv2d(xi.double(), off, wt, None, 1, 1, 1), **TOL64)


# --------------------------------------------------------------------------- batch sizes


def test_batch_zero_is_mmcvs_too_small_error():
    """mmcv's output-size check covers the batch too: N = 0 is a ValueError (DCNv1 and
    DCNv2, functions and modules)."""
    x, off, wt, b, mask = make_deform(*ASYM)
    _, _, _, _, _, _, stride, padding, dilation, groups, dg = ASYM
    x0, off0, mask0 = x[:0], off[:0], mask[:0]
    tail = (
        "; received input.shape=(0, 6, 7, 6), weight.shape=(4, 3, 3, 2), stride=(2, 1), "
        "padding=(1, 0), dilation=(2, 1)"
    )
    calls = [
        lambda: deform_conv2d(x0, off0, wt, stride, padding, dilation, groups, dg),
        lambda: modulated_deform_conv2d(
            x0, off0, mask0, wt, b, stride, padding, dilation, groups, dg
        ),
        lambda: DeformConv2d(**_case_module_args(ASYM)).double()(x0, off0),
        lambda: ModulatedDeformConv2d(**_case_module_args(ASYM)).double()(x0, off0, mask0),
        lambda: DeformConv2dPack(**_case_module_args(ASYM)).double()(x0),
        lambda: ModulatedDeformConv2dPack(**_case_module_args(ASYM)).double()(x0),
    ]
    for call in calls:
        with pytest.raises(ValueError) as e:
            call()
        assert type(e.value) is ValueError
        assert _message(e) == "convolution input is too small (output would be 0x4x3x5)" + tail


def test_batch_33():
    """33 images: DCNv1's default im2col_step=32 refuses it (33 % 32), as mmcv; a step
    dividing 33 (or >= 33) works; DCNv2 has no such rule."""
    case = (33, 4, 5, 4, 4, (3, 2), (2, 1), (1, 0), (2, 1), 2, 2)
    _, _, _, _, _, _, stride, padding, dilation, groups, dg = case
    x, off, wt, b, mask = make_deform(*case)
    m = DeformConv2d(**_case_module_args(case)).double()
    with pytest.raises(MMCVAssertionError) as e:
        m(x, off)
    assert _message(e) == (
        "batch size must be divisible by im2col_step; received batch_size=33, im2col_step=32"
    )
    with pytest.raises(AssertionError, match="batch size must be divisible by im2col_step"):
        deform_conv2d(x, off, wt, stride, padding, dilation, groups, dg)
    ref = ref_v1(stride, padding, dilation)(x, off, wt)
    for step in (1, 3, 11, 33, 64):
        out = deform_conv2d(x, off, wt, stride, padding, dilation, groups, dg, False, step)
        torch.testing.assert_close(out, ref, **TOL64)
    m.im2col_step = 11
    with torch.no_grad():
        m.weight.copy_(wt)
    torch.testing.assert_close(m(x, off), ref, **TOL64)
    compare(lambda x, o, mk, w, b: modulated_deform_conv2d(
                x, o, mk, w, b, stride, padding, dilation, groups, dg),
            ref_v2(stride, padding, dilation), [x, off, mask, wt, b])  # fmt: skip


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 7])
@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 8])
def test_im2col_step_rule(n, step):
    """mmcv's rule: N divisible by min(im2col_step, N); every accepted step gives the
    result of the math."""
    x, off, wt, _, _ = make_deform(n, 2, 4, 4, 2, (2, 2), 1, 0, 1, 1, 1)
    ok = n % min(step, n) == 0
    if not ok:
        with pytest.raises(MMCVAssertionError) as e:
            deform_conv2d(x, off, wt, 1, 0, 1, 1, 1, False, step)
        assert _message(e) == (
            "batch size must be divisible by im2col_step; "
            f"received batch_size={n}, im2col_step={step}"
        )
        return
    out = deform_conv2d(x, off, wt, 1, 0, 1, 1, 1, False, step)
    torch.testing.assert_close(out, ref_v1(1, 0, 1)(x, off, wt), **TOL64)


# --------------------------------------------------------------------------- errors


def _raises(exc_type, message, call):
    with pytest.raises(exc_type) as e:
        call()
    assert _message(e) == message, _message(e)
    return e.value


def test_construction_errors():
    a = _raises(MMCVAssertionError, "bias=True is not supported in DeformConv2d.",
                lambda: DeformConv2d(1, 1, 2, bias=True))  # fmt: skip
    assert isinstance(a, AssertionError) and isinstance(a, ValueError)
    _raises(TypeError, "`bias` must be False (mmcv's DCNv1 has no bias); received bias=1",
            lambda: DeformConv2dPack(1, 1, 2, bias=1))  # fmt: skip
    for cls in (DeformConv2d, DeformConv2dPack, ModulatedDeformConv2d, ModulatedDeformConv2dPack):
        _raises(MMCVAssertionError, "in_channels 3 cannot be divisible by groups 2",
                lambda cls=cls: cls(3, 2, 3, groups=2))  # fmt: skip
        _raises(MMCVAssertionError, "out_channels 4 cannot be divisible by groups 3",
                lambda cls=cls: cls(3, 4, 3, groups=3))  # fmt: skip
        _raises(MMCVAssertionError,
                "input channels must divide deformable group size; "
                "received in_channels=4, deform_groups=3",
                lambda cls=cls: cls(4, 4, 3, deform_groups=3))  # fmt: skip
        _raises(ValueError, "`groups` must be a positive integer; received groups=0",
                lambda cls=cls: cls(4, 4, 3, groups=0))  # fmt: skip
        _raises(TypeError, "`deform_groups` must be a positive integer; received deform_groups=1.5",
                lambda cls=cls: cls(4, 4, 3, deform_groups=1.5))  # fmt: skip
        _raises(ValueError, "`in_channels` must be a positive integer; received in_channels=0",
                lambda cls=cls: cls(0, 4, 3))  # fmt: skip
        _raises(ValueError, "`kernel_size` must be positive integers; received kernel_size=(3, 0)",
                lambda cls=cls: cls(4, 4, (3, 0)))  # fmt: skip
        _raises(ValueError, "`padding` must be non-negative integers; received padding=-1",
                lambda cls=cls: cls(4, 4, 3, padding=-1))  # fmt: skip
    _raises(ValueError, "`im2col_step` must be a positive integer; received im2col_step=0",
            lambda: DeformConv2d(4, 4, 3, im2col_step=0))  # fmt: skip
    with pytest.raises(TypeError, match="unexpected keyword argument 'im2col_step'"):
        ModulatedDeformConv2d(4, 4, 3, im2col_step=2)


def test_call_errors_deform_conv2d():
    x, off, wt, _, _ = make_deform(2, 4, 5, 5, 4, (3, 3), 1, 1, 1, 1, 2)
    _raises(MMCVAssertionError, "Only support bias is False.; received bias=True",
            lambda: deform_conv2d(x, off, wt, 1, 1, 1, 1, 2, True))  # fmt: skip
    _raises(MMCVAssertionError, "Only support bias is False.; received bias=None",
            lambda: deform_conv2d(x, off, wt, 1, 1, 1, 1, 2, None))  # fmt: skip
    _raises(ValueError, "Expected 4D tensor as input, got 3D tensor instead.",
            lambda: deform_conv2d(x[0], off, wt, 1, 1, 1, 1, 2))  # fmt: skip
    e = _raises(MMCVRuntimeError,
                "4D weight tensor (nOutputPlane,nInputPlane,kH,kW) expected, but got: 3",
                lambda: deform_conv2d(x, off, wt[0], 1, 1, 1, 1, 2))  # fmt: skip
    assert isinstance(e, RuntimeError) and isinstance(e, ValueError)
    _raises(ValueError,
            "convolution input is too small (output would be 2x4x-1x-1); received "
            "input.shape=(2, 4, 5, 5), weight.shape=(4, 4, 3, 3), stride=(1, 1), "
            "padding=(0, 0), dilation=(3, 3)",
            lambda: deform_conv2d(x, off, wt, 1, 0, 3, 1, 2))  # fmt: skip
    _raises(MMCVRuntimeError,
            "input channels must divide deformable group size; received input channels=4, "
            "deform_groups=3",
            lambda: deform_conv2d(x, off, wt, 1, 1, 1, 1, 3))  # fmt: skip
    _raises(MMCVRuntimeError,
            "invalid number of input planes, expected: 8, but got: 4; received "
            "weight.shape[1]=4, groups=2",
            lambda: deform_conv2d(x, off, wt, 1, 1, 1, 2, 2))  # fmt: skip
    _raises(MMCVRuntimeError,
            "invalid spatial size of offset, expected height: 5 width: 5, but got height: 4 "
            "width: 5",
            lambda: deform_conv2d(x, off[:, :, 1:], wt, 1, 1, 1, 1, 2))  # fmt: skip
    _raises(MMCVRuntimeError,
            "invalid number of channels of offset; received offset.shape[1]=36, "
            "deform_groups*2*kH*kW=18",
            lambda: deform_conv2d(x, off, wt, 1, 1, 1, 1, 1))  # fmt: skip
    _raises(MMCVRuntimeError,
            "invalid batch size of offset; received offset.shape[0]=1, batch_size=2",
            lambda: deform_conv2d(x, off[:1], wt, 1, 1, 1, 1, 2, False, 1))  # fmt: skip
    _raises(TypeError, "`input` must be a torch.Tensor; received input=<list>",
            lambda: deform_conv2d([1.0], off, wt))  # fmt: skip
    _raises(TypeError, "`offset.dtype` must be a floating-point dtype; received "
            "offset.dtype=torch.int64",
            lambda: deform_conv2d(x, off.long(), wt, 1, 1, 1, 1, 2))  # fmt: skip
    _raises(ValueError, "`stride` must be positive integers; received stride=0",
            lambda: deform_conv2d(x, off, wt, 0))  # fmt: skip
    _raises(ValueError, "`im2col_step` must be a positive integer; received im2col_step=0",
            lambda: deform_conv2d(x, off, wt, 1, 1, 1, 1, 2, False, 0))  # fmt: skip


def test_call_errors_modulated_deform_conv2d():
    x, off, wt, b, mask = make_deform(2, 4, 5, 5, 4, (3, 3), 1, 1, 1, 1, 2)
    _raises(ValueError, "Expected 4D tensor as input, got 5D tensor instead.",
            lambda: modulated_deform_conv2d(x[None], off, mask, wt, b, 1, 1, 1, 1, 2))  # fmt: skip
    _raises(MMCVRuntimeError,
            "Input shape and kernel channels won't match: (4 vs 8).; received "
            "weight.shape[1]=4, groups=2",
            lambda: modulated_deform_conv2d(x, off, mask, wt, b, 1, 1, 1, 2, 2))  # fmt: skip
    _raises(TypeError, "`mask` must be a torch.Tensor; received mask=<NoneType>",
            lambda: modulated_deform_conv2d(x, off, None, wt, b, 1, 1, 1, 1, 2))  # fmt: skip
    _raises(ValueError,
            "`mask.shape` must be (2, 18, 5, 5) (N, dg*kh*kw, H_out, W_out); received "
            "mask.shape=(2, 9, 5, 5)",
            lambda: modulated_deform_conv2d(x, off, mask[:, :9], wt, b, 1, 1, 1, 1, 2))  # fmt: skip
    _raises(ValueError,
            "`bias.shape` must be (4,) (C_out); received bias.shape=(3,)",
            lambda: modulated_deform_conv2d(x, off, mask, wt, b[:3], 1, 1, 1, 1, 2))  # fmt: skip
    _raises(MMCVRuntimeError,
            "invalid number of channels of offset; received offset.shape[1]=36, "
            "deform_groups*2*kH*kW=72",
            lambda: modulated_deform_conv2d(x, off, mask, wt, b, 1, 1, 1, 1, 4))  # fmt: skip
    _raises(TypeError, "`bias` must be a torch.Tensor; received bias=<list>",
            lambda: modulated_deform_conv2d(x, off, mask, wt, [0.0], 1, 1, 1, 1, 2))  # fmt: skip
    m = ModulatedDeformConv2d(4, 4, 3, padding=1, deform_groups=2).double()
    _raises(TypeError, "`mask` must be a torch.Tensor; received mask=<NoneType>",
            lambda: m(x, off, None))  # fmt: skip


# --------------------------------------------------------------------------- state dicts


def test_state_dict_keys_and_versions():
    assert list(DeformConv2d(4, 4, 3).state_dict()) == ["weight"]
    sd = DeformConv2dPack(4, 4, 3).state_dict()
    assert list(sd) == ["weight", "conv_offset.weight", "conv_offset.bias"]
    assert sd._metadata[""]["version"] == 2 and sd._metadata["conv_offset"]["version"] == 1
    assert list(ModulatedDeformConv2d(4, 4, 3).state_dict()) == ["weight", "bias"]
    sd = ModulatedDeformConv2dPack(4, 4, 3).state_dict()
    assert list(sd) == ["weight", "bias", "conv_offset.weight", "conv_offset.bias"]
    assert sd._metadata[""]["version"] == 2
    assert ModulatedDeformConv2d(4, 4, 3).state_dict()._metadata[""]["version"] == 1
    sd = ModulatedDeformConv2dPack(4, 4, 3, bias=False).state_dict()
    assert list(sd) == ["weight", "conv_offset.weight", "conv_offset.bias"]


class Bottleneck(nn.Module):
    """mmdet's ResNet Bottleneck (style 'pytorch': the stride on conv2), with its
    attribute names, so its keys are mmdet's; ``dcn`` builds conv2 as mmdet's
    ``build_conv_layer(dict(type='DCN' / 'DCNv2', deform_groups=...), ..., bias=False)``."""

    def __init__(self, inplanes, planes, stride=1, dcn=None, deform_groups=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        if dcn is None:
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        else:
            self.conv2 = dcn(planes, planes, kernel_size=3, stride=stride, padding=1,
                             dilation=1, deform_groups=deform_groups, bias=False)  # fmt: skip
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
        )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


class Backbone(nn.Module):
    """A small mmdet ResNet: stem, three stages, DCN in the last two
    (``stage_with_dcn=(False, True, True)``)."""

    def __init__(self, dcn):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Bottleneck(8, 4))
        self.layer2 = nn.Sequential(Bottleneck(16, 8, 2, dcn))
        self.layer3 = nn.Sequential(Bottleneck(32, 8, 2, dcn, deform_groups=2))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))


class Detector(nn.Module):
    def __init__(self, dcn):
        super().__init__()
        self.backbone = Backbone(dcn)

    def forward(self, x):
        return self.backbone(x)


def _trained_looking(model, seed):
    """Non-trivial BN statistics and offset predictors (as a trained checkpoint has)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("running_mean", "bn1.bias", "bn2.bias", "bn3.bias")):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif "conv_offset" in name:
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)
    return model.eval()


def ref_backbone(sd, x, modulated):
    """The backbone's forward from the checkpoint alone, in float64, with mmcv's DCN
    conventions (tests/reference.py for every conv)."""
    sd = {k[len("backbone.") :]: v.double() for k, v in sd.items() if k.startswith("backbone.")}

    def bn(p, t):
        scale = (sd[p + ".running_var"] + 1e-5).rsqrt() * sd[p + ".weight"]
        shift = sd[p + ".bias"] - sd[p + ".running_mean"] * scale
        return t * scale[:, None, None] + shift[:, None, None]

    def conv(p, t, stride=1, pad=0):
        return ref_conv2d(t, sd[p + ".weight"], None, (stride, stride), (pad,) * 4, (1, 1), 1)

    def dcn(p, t, stride):
        off = ref_offset_conv(t, sd[p + ".conv_offset.weight"], sd[p + ".conv_offset.bias"],
                              stride, 1, 1)  # fmt: skip
        mask = None
        if modulated:
            o1, o2, m = torch.chunk(off, 3, dim=1)
            off, mask = torch.cat((o1, o2), 1), torch.sigmoid(m)
        return ref_deform_conv2d(t, off, sd[p + ".weight"], None, stride, 1, 1, mask)

    def block(p, t, stride, deform):
        out = torch.relu(bn(p + ".bn1", conv(p + ".conv1", t)))
        c2 = dcn(p + ".conv2", out, stride) if deform else conv(p + ".conv2", out, stride, 1)
        out = torch.relu(bn(p + ".bn2", c2))
        out = bn(p + ".bn3", conv(p + ".conv3", out))
        return torch.relu(out + bn(p + ".downsample.1", conv(p + ".downsample.0", t, stride)))

    t = torch.relu(bn("bn1", conv("conv1", x.double(), 2, 3)))
    t = nn.functional.max_pool2d(t, 3, 2, 1)
    t = block("layer1.0", t, 1, False)
    t = block("layer2.0", t, 2, True)
    return block("layer3.0", t, 2, True)


def _legacy(sd, prefixes):
    """A version-1 checkpoint: ``<p>.conv_offset.*`` stored as ``<p>_offset.*``, and the
    layers' version entries gone (as in checkpoints written before version 2)."""
    out = type(sd)()
    for k, v in sd.items():
        for p in prefixes:
            k = k.replace(f"{p}.conv_offset.", f"{p}_offset.")
        out[k] = v
    out._metadata = {k: v for k, v in sd._metadata.items() if k not in prefixes}
    return out


_DCN_LAYERS = ["backbone.layer2.0.conv2", "backbone.layer3.0.conv2"]


@pytest.mark.parametrize("dcn", [DeformConv2dPack, ModulatedDeformConv2dPack],
                         ids=["DCN", "DCNv2"])  # fmt: skip
def test_mmdet_resnet_dcn_checkpoint_loads_strictly_and_reproduces_the_math(dcn, tmp_path):
    torch.manual_seed(0)
    trained = _trained_looking(Detector(dcn), seed=1)
    sd = trained.state_dict()
    keys = set(sd)
    for p in _DCN_LAYERS:
        assert {f"{p}.weight", f"{p}.conv_offset.weight", f"{p}.conv_offset.bias"} <= keys
        assert f"{p}.bias" not in keys
    path = tmp_path / "mmdet_r_dcn.pth"
    torch.save({"meta": {"mmdet_version": "3.x", "epoch": 12}, "state_dict": sd}, path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)

    torch.manual_seed(1)
    model = Detector(dcn).eval()
    result = model.load_state_dict(ckpt["state_dict"], strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = rand(2, 3, 32, 32, seed=5)
    with torch.no_grad():
        out = model(x.float())
        assert torch.equal(out, trained(x.float()))
        want = ref_backbone(ckpt["state_dict"], x, dcn is ModulatedDeformConv2dPack)
        torch.testing.assert_close(out.double(), want, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.double()(x), want, **TOL64)
    assert out.shape == (2, 32, 2, 2) and out.abs().max() > 0.1


def test_legacy_conv2_offset_keys_upgrade_for_torch_load_state_dict(tmp_path):
    """A DCNv1 checkpoint from before version 2 (``conv2_offset.*``): torch's loader never
    shows those keys to the layer (they are under the parent's prefix), so it refuses
    them; ``upgrade_state_dict`` renames them by mmcv's rule and the load is strict."""
    torch.manual_seed(0)
    trained = _trained_looking(Detector(DeformConv2dPack), seed=2)
    old = _legacy(trained.state_dict(), _DCN_LAYERS)
    assert "backbone.layer2.0.conv2_offset.weight" in old
    path = tmp_path / "old.pth"
    torch.save({"state_dict": old}, path)
    old = torch.load(path, weights_only=True)["state_dict"]

    model = Detector(DeformConv2dPack).eval()
    with pytest.raises(RuntimeError, match=r"Unexpected key.*conv2_offset\.weight"):
        model.load_state_dict(old, strict=True)
    new = upgrade_state_dict(model, old)
    assert "backbone.layer2.0.conv2_offset.weight" in old  # the input is left alone
    assert new._metadata is old._metadata
    assert not any("conv2_offset" in k for k in new)
    model.load_state_dict(new, strict=True)
    x = rand(1, 3, 32, 32, seed=6).float()
    with torch.no_grad():
        assert torch.equal(model(x), trained(x))
        want = ref_backbone(trained.state_dict(), x, False)
        torch.testing.assert_close(model(x).double(), want, rtol=1e-4, atol=1e-5)


def test_upgrade_follows_mmcvs_version_rule():
    model = Detector(ModulatedDeformConv2dPack)
    cur = model.state_dict()
    old = _legacy(cur, _DCN_LAYERS)
    # version 1 recorded: upgraded, like no version at all
    old._metadata.update({p: {"version": 1} for p in _DCN_LAYERS})
    assert set(upgrade_state_dict(model, old)) == set(cur)
    # version 2 recorded: left as it is (mmcv renames only below version 2)
    old._metadata.update({p: {"version": 2} for p in _DCN_LAYERS})
    assert set(upgrade_state_dict(model, old)) == set(old)
    # both keys present: the new one wins, the old one stays (and is unexpected)
    both = dict(cur, **{"backbone.layer2.0.conv2_offset.bias": torch.zeros(1)})
    assert set(upgrade_state_dict(model, both)) == set(both)
    # a plain dict (no metadata) is upgraded; non-Pack layers are never touched
    plain = dict(_legacy(cur, _DCN_LAYERS), **{"backbone.layer1.0.conv2_offset.bias": 1})
    assert set(upgrade_state_dict(model, plain)) == {*cur, "backbone.layer1.0.conv2_offset.bias"}
    # a Pack as the root: mmcv's prefix[:-1] is "", so its old keys are "_offset.*"
    pack = DeformConv2dPack(4, 4, 3)
    sd = {"weight": pack.weight, "_offset.weight": pack.conv_offset.weight,
          "_offset.bias": pack.conv_offset.bias}  # fmt: skip
    assert set(upgrade_state_dict(pack, sd)) == set(pack.state_dict())
    with pytest.raises(TypeError, match=re.escape("`model` must be a torch.nn.Module")):
        upgrade_state_dict(sd, sd)
    with pytest.raises(TypeError, match=re.escape("`state_dict` must be a mapping")):
        upgrade_state_dict(pack, [1])


def _load_like_mmengine(module, state_dict):
    """mmengine's ``load_state_dict`` mechanism: every module's ``_load_from_state_dict``
    sees the whole (copied) dict, the version of its own prefix in the metadata."""
    metadata = getattr(state_dict, "_metadata", {})
    state_dict = dict(state_dict)
    missing, unexpected, errors = [], [], []
    for name, m in module.named_modules():
        prefix = f"{name}." if name else ""
        m._load_from_state_dict(state_dict, prefix, metadata.get(name, {}), True, missing,
                                unexpected, errors)  # fmt: skip
    return missing, unexpected, errors


def test_load_from_state_dict_upgrades_like_mmcv(caplog):
    """Handed the whole dict (mmengine's loader), the Pack renames its old keys itself,
    as mmcv's does; the parent still lists them as unexpected (as with mmcv), and a
    version-2 layer logs mmcv's line."""
    torch.manual_seed(0)
    trained = _trained_looking(Detector(DeformConv2dPack), seed=3)
    old = _legacy(trained.state_dict(), _DCN_LAYERS)
    model = Detector(DeformConv2dPack).eval()
    with caplog.at_level(logging.INFO, logger="omniconv.compat.mmcv"):
        missing, unexpected, errors = _load_like_mmengine(model, old)
    assert missing == [] and errors == [] and caplog.records == []
    assert sorted(unexpected) == sorted(f"{p}_offset.{n}" for p in _DCN_LAYERS
                                        for n in ("weight", "bias"))  # fmt: skip
    for p in ("layer2.0.conv2", "layer3.0.conv2"):
        got = model.backbone.get_submodule(p).conv_offset.weight
        assert torch.equal(got, trained.backbone.get_submodule(p).conv_offset.weight)

    with caplog.at_level(logging.INFO, logger="omniconv.compat.mmcv"):
        missing, unexpected, errors = _load_like_mmengine(model, trained.state_dict())
    assert missing == unexpected == errors == []
    assert [r.getMessage() for r in caplog.records] == [
        f"DeformConv2dPack {p} is upgraded to version 2." for p in _DCN_LAYERS
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="omniconv.compat.mmcv"):
        ModulatedDeformConv2dPack(4, 4, 3).load_state_dict(
            ModulatedDeformConv2dPack(4, 4, 3).state_dict()
        )
    assert [r.getMessage() for r in caplog.records] == [
        "ModulatedDeformConvPack  is upgraded to version 2."
    ]


# --------------------------------------------------------------------------- torch.compile


@pytest.mark.parametrize("cls", [DeformConv2dPack, ModulatedDeformConv2dPack])
def test_compile_fullgraph_packs_match_eager(cls):
    torch.manual_seed(0)
    m = cls(4, 4, (3, 2), stride=(2, 1), padding=(1, 0), groups=2, deform_groups=2)
    with torch.no_grad():
        m.conv_offset.weight.normal_(0, 0.3)
        m.conv_offset.bias.normal_(0, 0.3)
    x = torch.randn(2, 4, 6, 5)

    def run(fn):
        xi = x.clone().requires_grad_()
        out = fn(xi)
        return out.detach(), torch.autograd.grad(out.square().sum(), [xi, *m.parameters()])

    out_e, grads_e = run(m)
    out_c, grads_c = run(torch.compile(m, fullgraph=True, backend="aot_eager"))
    torch.testing.assert_close(out_c, out_e)
    assert len(grads_c) == len(grads_e) == 1 + len(list(m.parameters()))
    for a, e in zip(grads_c, grads_e, strict=True):
        torch.testing.assert_close(a, e)


def test_compile_fullgraph_functionals_match_eager():
    _, _, _, _, _, _, stride, padding, dilation, groups, dg = ASYM
    x, off, wt, b, mask = (t.float() for t in make_deform(*ASYM))

    def f(x, off, mask, wt, b):
        v1 = deform_conv2d(x, off, wt, stride, padding, dilation, groups, dg, False, 1)
        v2 = modulated_deform_conv2d(x, off, mask, wt, b, stride, padding, dilation, groups, dg)
        return v1 + v2

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    ins = leaves(x, off, mask, wt, b)
    out = compiled(*ins)
    grads = torch.autograd.grad(out.square().sum(), ins)
    ins_e = leaves(x, off, mask, wt, b)
    out_e = f(*ins_e)
    grads_e = torch.autograd.grad(out_e.square().sum(), ins_e)
    torch.testing.assert_close(out, out_e)
    for a, e in zip(grads, grads_e, strict=True):
        torch.testing.assert_close(a, e)
