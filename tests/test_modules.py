"""The nn modules: PyTorch-compatible initialisation and state dicts, activations,
layouts, lazy in_channels, deformable layers against the float64 reference, the
ImgConvGroup block's order of operations, and torch.compile of DeformConv2dPack."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as TF
from _helpers import F64, TOL64, rand
from reference import ref_conv2d, ref_deform_conv2d
from torch import nn
from torch.nn.utils import prune

from omniconv import functional as F
from omniconv import nn as onn
from omniconv.nn._activation import ACTIVATIONS

# --------------------------------------------------------------------------- Conv2d

# (in, out, kernel, stride, padding, dilation, groups, bias)
CONV_CONFIGS = [
    (3, 5, 3, 1, 0, 1, 1, True),
    (4, 6, (3, 2), (2, 1), (1, 0), (2, 1), 2, True),  # the asymmetric parametrisation
    pytest.param(6, 6, 3, 1, 1, 1, 6, False, id="cfg2"),  # depthwise, no bias
    (4, 8, (1, 3), (1, 2), (0, 2), (1, 2), 4, True),
]


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize(
    ("cin", "cout", "k", "s", "p", "d", "g", "bias"),
    CONV_CONFIGS,
    ids=[f"cfg{i}" for i in range(len(CONV_CONFIGS))],
)
def test_conv2d_matches_torch_at_same_seed(cin, cout, k, s, p, d, g, bias, seed):
    x = rand(2, cin, 9, 8, dtype=torch.float32, seed=seed + 100)
    torch.manual_seed(seed)
    m = onn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)
    torch.manual_seed(seed)
    t = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)
    assert torch.equal(m.weight, t.weight)
    if bias:
        assert torch.equal(m.bias, t.bias)
    else:
        assert m.bias is None and "bias" not in m.state_dict()
    torch.testing.assert_close(m(x), t(x), rtol=0, atol=0)


def test_conv2d_different_seeds_give_different_weights():
    torch.manual_seed(0)
    a = onn.Conv2d(3, 4, 3)
    torch.manual_seed(1)
    b = onn.Conv2d(3, 4, 3)
    assert not torch.equal(a.weight, b.weight)


def test_conv2d_state_dict_interchanges_with_torch():
    torch.manual_seed(0)
    m = onn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1), groups=2)
    assert list(m.state_dict()) == ["weight", "bias"]
    t = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1), groups=2)
    assert not torch.equal(t.weight, m.weight)
    t.load_state_dict(m.state_dict())
    x = rand(2, 4, 9, 8, dtype=torch.float32)
    torch.testing.assert_close(t(x), m(x), rtol=0, atol=0)
    # and back: a third torch layer's weights into the omniconv layer
    t2 = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1), groups=2)
    m.load_state_dict(t2.state_dict())
    assert torch.equal(m.weight, t2.weight) and torch.equal(m.bias, t2.bias)
    torch.testing.assert_close(m(x), t2(x), rtol=0, atol=0)


@pytest.mark.parametrize("lazy", [False, True])
def test_conv2d_bias_false(lazy):
    m = onn.LazyConv2d(4, 3, bias=False) if lazy else onn.Conv2d(3, 4, 3, bias=False)
    x = rand(1, 3, 6, 6, dtype=torch.float32)
    out = m(x)
    assert m.bias is None
    assert list(m.state_dict()) == ["weight"]
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    torch.testing.assert_close(out, TF.conv2d(x, m.weight), rtol=0, atol=0)
    assert m.extra_repr() == "3, 4, kernel_size=(3, 3), bias=False"
    t = nn.Conv2d(3, 4, 3, bias=False)
    t.load_state_dict(m.state_dict())
    torch.testing.assert_close(t(x), out, rtol=0, atol=0)


def test_conv_transpose2d_bias_false():
    torch.manual_seed(0)
    m = onn.ConvTranspose2d(3, 4, 3, stride=2, bias=False)
    torch.manual_seed(0)
    t = nn.ConvTranspose2d(3, 4, 3, stride=2, bias=False)
    assert m.bias is None and list(m.state_dict()) == ["weight"]
    x = rand(1, 3, 4, 4, dtype=torch.float32)
    torch.testing.assert_close(m(x), t(x), rtol=0, atol=0)


# every name must have a torch function here: a new ACTIVATIONS entry fails until added
TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softrelu": TF.softplus,
    "softplus": TF.softplus,
    "softsign": TF.softsign,
    "leaky_relu": lambda t: TF.leaky_relu(t, 0.01),
    "relu6": TF.relu6,
    "gelu": lambda t: TF.gelu(t, approximate="none"),
    "silu": TF.silu,
    "swish": TF.silu,
    "elu": TF.elu,
    "hard_sigmoid": TF.hardsigmoid,
    "hard_swish": TF.hardswish,
}


def test_activation_table_is_fully_covered():
    assert set(ACTIVATIONS) == set(TORCH_ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_conv2d_activation_equals_torch_function(name):
    torch.manual_seed(0)
    m = onn.Conv2d(3, 4, 3, padding=1, activation=name, dtype=F64)
    x = rand(2, 3, 6, 5, scale=4.0)  # wide range: both sides of every kink
    pre = TF.conv2d(x, m.weight, m.bias, padding=1)
    expected = TORCH_ACTIVATIONS[name](pre)
    torch.testing.assert_close(m(x), expected, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(expected, pre)  # the activation did something


@pytest.mark.parametrize("act", [lambda t: t * 2 + 1, torch.tanh, nn.Hardtanh(-0.1, 0.2)])
def test_conv2d_callable_activation(act):
    torch.manual_seed(0)
    m = onn.Conv2d(3, 4, 3, activation=act, dtype=F64)
    x = rand(1, 3, 6, 6)
    expected = act(TF.conv2d(x, m.weight, m.bias))
    torch.testing.assert_close(m(x), expected, rtol=0, atol=0)


def test_conv2d_activation_none_is_identity():
    torch.manual_seed(0)
    m = onn.Conv2d(3, 4, 3, dtype=F64)
    x = rand(1, 3, 6, 6)
    assert m.activation is None
    torch.testing.assert_close(m(x), TF.conv2d(x, m.weight, m.bias), rtol=0, atol=0)


@pytest.mark.parametrize("padding", [(1, 0), (0, 1, 2, 0), "same"])
def test_conv2d_nhwc_equals_nchw_with_permutes(padding):
    torch.manual_seed(0)
    kw = {"stride": (2, 1) if padding != "same" else 2, "padding": padding, "groups": 2}
    nchw = onn.Conv2d(4, 6, (3, 2), dtype=F64, **kw)
    nhwc = onn.Conv2d(4, 6, (3, 2), layout="NHWC", dtype=F64, **kw)
    nhwc.load_state_dict(nchw.state_dict())  # same (O, I/g, kh, kw) parameter layout
    assert nhwc.weight.shape == (6, 2, 3, 2)
    x = rand(2, 7, 6, 4)  # (N, H, W, C)
    out = nhwc(x)
    ref = nchw(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert out.shape == ref.shape and out.shape[0] == 2 and out.shape[-1] == 6
    torch.testing.assert_close(out, ref, **TOL64)


@pytest.mark.parametrize("stride", [1, 2, 3, (2, 3)])
@pytest.mark.parametrize("kernel", [1, 2, 3, (4, 5)])
def test_conv2d_padding_same_output_is_ceil_h_over_s(stride, kernel):
    s = (stride, stride) if isinstance(stride, int) else stride
    m = onn.Conv2d(2, 3, kernel, stride=stride, padding="same")
    for h, w in [(7, 8), (9, 5), (4, 4)]:
        out = m(torch.randn(1, 2, h, w))
        assert out.shape == (1, 3, -(-h // s[0]), -(-w // s[1]))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv2d_padding_same_stride1_matches_torch_same():
    torch.manual_seed(0)
    m = onn.Conv2d(2, 3, (3, 4), padding="same", dilation=(2, 1), dtype=F64)
    x = rand(1, 2, 7, 8)
    ref = TF.conv2d(x, m.weight, m.bias, padding="same", dilation=(2, 1))
    torch.testing.assert_close(m(x), ref, **TOL64)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv2d_lazy_in_channels(layout):
    torch.manual_seed(0)
    m = onn.LazyConv2d(8, 3, padding=1, groups=2, layout=layout)
    assert isinstance(m, onn.Conv2d) and isinstance(m, nn.Conv2d)
    assert type(m) is onn.LazyConv2d  # still lazy
    assert m.has_uninitialized_params()
    x = torch.randn(2, 6, 5, 5) if layout == "NCHW" else torch.randn(2, 5, 5, 6)
    out = m(x)
    assert type(m) is onn.Conv2d and isinstance(m, onn.Conv2d)
    assert m.in_channels == 6
    assert m.weight.shape == (8, 3, 3, 3) and m.bias.shape == (8,)
    assert type(m.weight) is nn.Parameter
    assert out.shape == ((2, 8, 5, 5) if layout == "NCHW" else (2, 5, 5, 8))
    # the weights are PyTorch's default init for the inferred fan-in, same as torch's lazy conv
    torch.manual_seed(0)
    t = nn.LazyConv2d(8, 3, padding=1, groups=2)
    t(torch.randn(2, 6, 5, 5))
    assert torch.equal(m.weight, t.weight) and torch.equal(m.bias, t.bias)


def test_conv2d_lazy_parameters_train():
    m = onn.LazyConv2d(4, 3)
    x = torch.randn(2, 3, 6, 6)
    m(x)  # dry run materialises the parameters
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    before = [p.detach().clone() for p in m.parameters()]
    loss = m(x).square().mean()
    loss.backward()
    opt.step()
    after = list(m.parameters())
    assert len(after) == 2
    for b, a in zip(before, after, strict=True):
        assert not torch.equal(b, a)
    assert m(x).square().mean() < loss


def test_conv2d_extra_repr_shows_only_non_defaults():
    assert onn.Conv2d(3, 8, 3).extra_repr() == "3, 8, kernel_size=(3, 3)"
    explicit_defaults = onn.Conv2d(
        3, 8, 3, stride=1, padding=0, dilation=(1, 1), groups=1, padding_mode="zeros"
    )
    assert explicit_defaults.extra_repr() == "3, 8, kernel_size=(3, 3)"
    m = onn.Conv2d(
        4, 8, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2,
        padding_mode="reflect", layout="NHWC",
    )  # fmt: skip
    assert m.extra_repr() == (
        "4, 8, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), dilation=(1, 2), "
        "groups=2, padding_mode='reflect', layout='NHWC'"
    )
    assert onn.Conv2d(3, 8, 3, padding=(0, 1, 2, 3)).extra_repr() == (
        "3, 8, kernel_size=(3, 3), padding=(0, 1, 2, 3)"
    )
    assert onn.Conv2d(3, 8, 3, padding="same").extra_repr() == (
        "3, 8, kernel_size=(3, 3), padding='same'"
    )
    assert onn.ConvTranspose2d(3, 8, 3, stride=2, output_padding=1).extra_repr() == (
        "3, 8, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1)"
    )
    assert onn.ConvTranspose2d(3, 8, 3, padding=0).extra_repr() == "3, 8, kernel_size=(3, 3)"


# --------------------------------------------------------------------------- torch tooling


def test_dense_modules_are_torch_convs_and_deformable_ones_are_not():
    conv, convt = onn.Conv2d(3, 4, 3), onn.ConvTranspose2d(3, 4, 3)
    assert isinstance(conv, nn.Conv2d) and isinstance(convt, nn.ConvTranspose2d)
    assert isinstance(onn.LazyConv2d(4, 3), nn.Conv2d)
    assert isinstance(onn.LazyConvTranspose2d(4, 3), nn.ConvTranspose2d)
    assert conv.transposed is False and convt.transposed is True
    # forward(input, offset, mask) is not nn.Conv2d's contract
    assert not isinstance(onn.DeformConv2d(3, 4, 3), nn.Conv2d)
    assert not isinstance(onn.DeformConv2dPack(3, 4, 3), nn.Conv2d)


@pytest.mark.parametrize("padding", [1, (0, 1, 2, 0), "same"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_fuse_conv_bn_eval_folds_our_conv(padding, layout):
    torch.manual_seed(0)
    conv = onn.Conv2d(4, 6, 3, stride=2, padding=padding, groups=2, layout=layout, dtype=F64)
    bn = nn.BatchNorm2d(6, dtype=F64).eval()
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv.eval(), bn)
    assert type(fused) is onn.Conv2d and fused.layout == layout
    x = rand(2, 4, 9, 8) if layout == "NCHW" else rand(2, 9, 8, 4)
    y = conv(x)
    ref = bn(y if layout == "NCHW" else y.permute(0, 3, 1, 2))
    out = fused(x)
    torch.testing.assert_close(out if layout == "NCHW" else out.permute(0, 3, 1, 2), ref, **TOL64)


def test_fuse_conv_bn_eval_folds_our_transposed_conv():
    torch.manual_seed(0)
    # (torch's fuser handles transposed convs with groups=1 only)
    convt = onn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, dtype=F64).eval()
    bn = nn.BatchNorm2d(6, dtype=F64).eval()
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    fused = torch.nn.utils.fusion.fuse_conv_bn_eval(convt, bn, transpose=True)
    x = rand(2, 4, 5, 4)
    torch.testing.assert_close(fused(x), bn(convt(x)), **TOL64)


def test_pruning_masks_our_weight():
    torch.manual_seed(0)
    conv = onn.Conv2d(3, 4, 3, padding=1, dtype=F64)
    prune.l1_unstructured(conv, "weight", amount=0.5)
    assert int((conv.weight == 0).sum()) == conv.weight.numel() // 2
    x = rand(1, 3, 5, 5)
    torch.testing.assert_close(conv(x), TF.conv2d(x, conv.weight, conv.bias, padding=1), **TOL64)


@pytest.mark.parametrize(
    ("padding", "torch_padding", "resolved"),
    [
        (1, (1, 1), (1, 1, 1, 1)),
        ((1, 2), (1, 2), (1, 1, 2, 2)),
        ((2, 2, 0, 0), (2, 0), (2, 2, 0, 0)),
        ((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3)),
        ("valid", (0, 0), (0, 0, 0, 0)),
        ("SAME", "same", (1, 2, 0, 1)),  # kernel (4, 2), dilation 1: total 3 and 1
    ],
)
def test_padding_keeps_torch_meaning_and_is_resolved_at_construction(
    padding, torch_padding, resolved, monkeypatch
):
    m = onn.Conv2d(2, 3, (4, 2), padding=padding)
    assert m.padding == torch_padding
    assert m._resolved_padding == resolved
    x = torch.randn(1, 2, 7, 6)
    expected = TF.conv2d(TF.pad(x, (resolved[2], resolved[3], resolved[0], resolved[1])),
                         m.weight, m.bias)  # fmt: skip
    # forward uses the stored padding: no 'same' arithmetic, no argument parsing per call
    import omniconv._shapes
    import omniconv.functional.conv as fconv

    def refuse(*args, **kwargs):
        raise AssertionError("called at forward")

    monkeypatch.setattr(omniconv._shapes, "same_padding", refuse)
    for name in ("to_pair", "to_padding", "check_positive_int", "check_choice"):
        monkeypatch.setattr(fconv, name, refuse)
    torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-5)


def test_same_padding_with_stride_is_resolved_per_call_from_the_input_size():
    torch.manual_seed(0)
    m = onn.Conv2d(2, 3, 3, stride=2, padding="same", dtype=F64)
    assert m.padding == "same" and m._resolved_padding == "same"
    for h, pads in [(7, (1, 1)), (8, (0, 1))]:  # ceil(h/2) outputs: total 2 then 1
        x = rand(1, 2, h, h)
        ref = TF.conv2d(TF.pad(x, (pads[0], pads[1], pads[0], pads[1])), m.weight, m.bias, 2)
        torch.testing.assert_close(m(x), ref, **TOL64)


def test_deform_module_checks_each_tensor_once_per_call(monkeypatch):
    import omniconv.functional._checks as checks
    import omniconv.functional.deform_conv as fdeform

    seen = []
    real = checks.check_float_tensor

    def counting(value, name, ndim):
        seen.append(name)
        return real(value, name, ndim)

    for namespace in (checks, fdeform):
        monkeypatch.setattr(namespace, "check_float_tensor", counting)
    d = onn.DeformConv2d(4, 4, 3, padding=1, groups=2, deformable_groups=2)
    x = torch.randn(1, 4, 5, 5)
    d(x, torch.zeros(1, 36, 5, 5), torch.ones(1, 18, 5, 5))
    assert sorted(seen) == ["bias", "input", "mask", "offset", "weight"]


def test_functional_deform_conv2d_groups_keywords():
    x, w = rand(1, 4, 5, 5), rand(2, 2, 3, 3)  # inferred groups 2
    off = rand(1, 36, 3, 3, seed=1)  # inferred dg 2
    ref = ref_deform_conv2d(x, off, w)
    torch.testing.assert_close(F.deform_conv2d(x, off, w), ref, **TOL64)
    out = F.deform_conv2d(x, off, w, groups=2, deformable_groups=2)
    torch.testing.assert_close(out, ref, **TOL64)
    with pytest.raises(ValueError, match=r"^`input\.shape\[1\]` must be 2, the weight's"):
        F.deform_conv2d(x, off, w, groups=1)  # would be inferred as 2: refused
    with pytest.raises(ValueError, match=r"^`offset\.shape\[1\]` must be 2\*deformable_groups"):
        F.deform_conv2d(x, off, w, deformable_groups=1)


def test_lazy_conv_loaded_from_a_state_dict_learns_in_channels():
    src = onn.Conv2d(6, 4, 3, groups=2)
    m = onn.LazyConv2d(4, 3, groups=2)
    m.load_state_dict(src.state_dict())
    x = torch.randn(1, 6, 5, 5)
    torch.testing.assert_close(m(x), src(x), rtol=0, atol=0)
    assert type(m) is onn.Conv2d and m.in_channels == 6


def test_conv_transpose2d_takes_torch_positional_arguments():
    torch.manual_seed(0)
    m = onn.ConvTranspose2d(4, 6, 3, 2, 1, 1, 2, True, 1, "zeros")
    torch.manual_seed(0)
    t = nn.ConvTranspose2d(4, 6, 3, 2, 1, 1, 2, True, 1, "zeros")
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(m(x), t(x), rtol=0, atol=0)


# --------------------------------------------------------------------------- ConvTranspose2d

# (in, out, kernel, stride, padding, output_padding, groups, dilation, bias)
CONVT_CONFIGS = [
    (3, 5, 3, 1, 0, 0, 1, 1, True),
    (4, 6, (3, 2), (2, 1), (1, 0), (1, 0), 2, (2, 1), True),
    pytest.param(6, 6, 3, 2, 1, 1, 3, 1, False, id="cfg2"),
    (2, 4, (2, 3), (3, 2), (0, 1), 0, 2, (1, 2), True),
]


@pytest.mark.parametrize(
    ("cin", "cout", "k", "s", "p", "op", "g", "d", "bias"),
    CONVT_CONFIGS,
    ids=[f"cfg{i}" for i in range(len(CONVT_CONFIGS))],
)
def test_conv_transpose2d_matches_torch_at_same_seed(cin, cout, k, s, p, op, g, d, bias):
    x = rand(2, cin, 5, 4, dtype=torch.float32, seed=3)
    torch.manual_seed(11)
    m = onn.ConvTranspose2d(cin, cout, k, s, p, op, g, bias, d)
    torch.manual_seed(11)
    t = nn.ConvTranspose2d(cin, cout, k, s, p, op, g, bias, d)
    assert list(m.state_dict()) == list(t.state_dict())
    for (name, a), (_, b) in zip(m.state_dict().items(), t.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    torch.testing.assert_close(m(x), t(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "sizes"),
    [
        (2, 1, 1, [(7, 7), (8, 8), (7, 8), [2, 4, 8, 7]]),
        ((3, 2), (0, 1), (2, 1), [(14, 7), (16, 8), (15, 7)]),
    ],
)
def test_conv_transpose2d_forward_output_size(stride, padding, dilation, sizes):
    torch.manual_seed(0)
    m = onn.ConvTranspose2d(4, 4, 3, stride, padding, groups=2, dilation=dilation)
    t = nn.ConvTranspose2d(4, 4, 3, stride, padding, groups=2, dilation=dilation)
    t.load_state_dict(m.state_dict())
    x = rand(2, 4, 4, 4, dtype=torch.float32)
    for size in sizes:
        out = m(x, output_size=size)
        assert tuple(out.shape[-2:]) == tuple(size[-2:])
        torch.testing.assert_close(out, t(x, output_size=list(size)), rtol=0, atol=0)


def test_conv_transpose2d_output_size_overrides_output_padding():
    torch.manual_seed(0)
    m = onn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1)
    x = torch.randn(1, 2, 4, 4)
    assert m(x).shape[-2:] == (10, 10)
    assert m(x, output_size=(9, 10)).shape[-2:] == (9, 10)


def test_conv_transpose2d_lazy_in_channels():
    torch.manual_seed(0)
    m = onn.LazyConvTranspose2d(4, 3, stride=2, groups=2)
    assert isinstance(m, onn.ConvTranspose2d) and type(m) is onn.LazyConvTranspose2d
    x = torch.randn(1, 6, 4, 4)
    out = m(x, output_size=(10, 9))
    assert type(m) is onn.ConvTranspose2d
    assert m.in_channels == 6 and m.weight.shape == (6, 2, 3, 3)
    assert out.shape == (1, 4, 10, 9)
    torch.testing.assert_close(
        out, TF.conv_transpose2d(x, m.weight, m.bias, 2, 0, (1, 0), 2), rtol=0, atol=0
    )
    torch.manual_seed(0)
    t = nn.LazyConvTranspose2d(4, 3, stride=2, groups=2)
    t(torch.randn(1, 6, 4, 4))
    assert torch.equal(m.weight, t.weight) and torch.equal(m.bias, t.bias)


# --------------------------------------------------------------------------- DeformConv2d

ASYM = {
    "kernel_size": (3, 2),
    "stride": (2, 1),
    "padding": (1, 0),
    "dilation": (2, 1),
    "groups": 2,
    "deformable_groups": 3,
}
C_IN, C_OUT, H, W = 6, 4, 7, 6
HO, WO = 3, 5  # (7 + 2 - 5) // 2 + 1, (6 - 2) // 1 + 1
K = 6  # 3 * 2


def _deform_inputs(seed=0):
    x = rand(2, C_IN, H, W, seed=seed)
    off = rand(2, 2 * 3 * K, HO, WO, seed=seed + 1, scale=1.5)
    mask = torch.rand(
        2, 3 * K, HO, WO, generator=torch.Generator().manual_seed(seed + 2), dtype=F64
    )
    return x, off, mask


@pytest.mark.parametrize("modulated", [True, False], ids=["v2", "v1"])
def test_deform_conv2d_matches_reference_with_gradients(modulated):
    torch.manual_seed(0)
    m = onn.DeformConv2d(C_IN, C_OUT, modulated=modulated, dtype=F64, **ASYM)
    x, off, mask = _deform_inputs()
    mask = mask if modulated else None
    g = rand(2, C_OUT, HO, WO, seed=9)

    xi, oi = x.clone().requires_grad_(), off.clone().requires_grad_()
    mi = None if mask is None else mask.clone().requires_grad_()
    out = m(xi, oi, mi)
    (out * g).sum().backward()

    w = m.weight.detach().clone().requires_grad_()
    b = m.bias.detach().clone().requires_grad_()
    xr, orr = x.clone().requires_grad_(), off.clone().requires_grad_()
    mr = None if mask is None else mask.clone().requires_grad_()
    ref = ref_deform_conv2d(xr, orr, w, b, (2, 1), (1, 0), (2, 1), mr)
    (ref * g).sum().backward()

    assert out.shape == (2, C_OUT, HO, WO)
    torch.testing.assert_close(out, ref, **TOL64)
    for name, got, want in [
        ("input", xi.grad, xr.grad),
        ("offset", oi.grad, orr.grad),
        ("weight", m.weight.grad, w.grad),
        ("bias", m.bias.grad, b.grad),
    ] + ([("mask", mi.grad, mr.grad)] if modulated else []):
        assert got is not None, name
        assert got.abs().sum() > 0, name
        torch.testing.assert_close(got, want, **TOL64, msg=lambda s, n=name: f"{n}: {s}")


def test_deform_conv2d_v1_equals_v2_with_unit_mask():
    torch.manual_seed(0)
    v2 = onn.DeformConv2d(C_IN, C_OUT, dtype=F64, **ASYM)
    v1 = onn.DeformConv2d(C_IN, C_OUT, modulated=False, dtype=F64, **ASYM)
    v1.load_state_dict(v2.state_dict())
    x, off, mask = _deform_inputs(seed=4)
    torch.testing.assert_close(v1(x, off), v2(x, off, torch.ones_like(mask)), **TOL64)
    assert not torch.allclose(v1(x, off), v2(x, off, mask))


def test_deform_conv2d_init_and_state_dict():
    torch.manual_seed(3)
    m = onn.DeformConv2d(C_IN, C_OUT, **ASYM)
    torch.manual_seed(3)
    t = nn.Conv2d(C_IN, C_OUT, (3, 2), (2, 1), (1, 0), (2, 1), groups=2)
    assert list(m.state_dict()) == ["weight", "bias"]
    assert torch.equal(m.weight, t.weight) and torch.equal(m.bias, t.bias)
    assert onn.DeformConv2d(C_IN, C_OUT, 3, bias=False).bias is None


# --------------------------------------------------------------------------- DeformConv2dPack


@pytest.mark.parametrize("modulated", [True, False], ids=["v2", "v1"])
def test_deform_pack_fresh_equals_conv2d(modulated):
    torch.manual_seed(0)
    m = onn.DeformConv2dPack(C_IN, C_OUT, modulated=modulated, dtype=F64, **ASYM)
    for p in m.conv_offset.parameters():
        assert p.abs().max() == 0
    assert m.conv_offset.out_channels == 2 * 3 * K + (3 * K if modulated else 0)
    x = rand(2, C_IN, H, W, seed=2)
    ref = TF.conv2d(x, m.weight, m.bias, (2, 1), (1, 0), (2, 1), groups=2)
    torch.testing.assert_close(m(x), ref, rtol=0, atol=1e-12)
    keys = ["weight", "bias", "conv_offset.weight", "conv_offset.bias"]
    assert list(m.state_dict()) == keys


@pytest.mark.parametrize("modulated", [True, False], ids=["v2", "v1"])
def test_deform_pack_learns_offsets(modulated):
    """Weight and bias frozen: only the offset/mask predictor trains, and the loss falls."""
    torch.manual_seed(0)
    m = onn.DeformConv2dPack(C_IN, C_OUT, modulated=modulated, dtype=F64, **ASYM)
    m.weight.requires_grad_(False)
    m.bias.requires_grad_(False)
    x = rand(4, C_IN, H, W, seed=5)
    # toy target: the same layer with a fixed sub-pixel shift of every tap
    shift = torch.zeros(1, 2 * 3 * K, 1, 1, dtype=F64)
    shift[:, 0::2] = 0.4
    shift[:, 1::2] = -0.3
    off = shift.expand(4, -1, HO, WO).contiguous()
    mask = torch.ones(4, 3 * K, HO, WO, dtype=F64) if modulated else None
    from omniconv.functional import deform_conv2d

    target = deform_conv2d(x, off, m.weight, m.bias, (2, 1), (1, 0), (2, 1), mask)
    opt = torch.optim.SGD(m.conv_offset.parameters(), lr=0.5)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = TF.mse_loss(m(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert m.conv_offset.weight.abs().max() > 0 and m.conv_offset.bias.abs().max() > 0
    predicted = m.conv_offset(x)[:, : 2 * 3 * K]
    assert predicted.abs().max() > 1e-3  # the offsets moved away from zero
    assert losses[-1] < 0.7 * losses[0], losses
    assert all(b <= a for a, b in itertools.pairwise(losses)), losses


def test_deform_pack_one_step_moves_offsets_when_all_parameters_train():
    torch.manual_seed(0)
    m = onn.DeformConv2dPack(C_IN, C_OUT, dtype=F64, **ASYM)
    x = rand(2, C_IN, H, W, seed=1)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    m(x).square().mean().backward()
    assert m.conv_offset.weight.grad.abs().max() > 0
    opt.step()
    assert m.conv_offset(x).abs().max() > 0


# --------------------------------------------------------------------------- ImgConvGroup


def _randomise_bn(group: nn.Module) -> None:
    g = torch.Generator().manual_seed(42)
    for mod in group.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                n = mod.num_features
                mod.weight.copy_(torch.rand(n, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(n, generator=g))
                mod.running_mean.copy_(torch.randn(n, generator=g))
                mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def _by_hand(g, x, with_bn, rates, act, pool):
    y = x
    for i, (bn, p) in enumerate(zip(with_bn, rates, strict=True)):
        y = getattr(g, f"conv{i}")(y)
        if bn:
            y = getattr(g, f"bn{i}")(y)
        y = act(y)
        if bn and abs(p) > 1e-5:
            y = TF.dropout(y, p, training=g.training)
    return pool(y)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_img_conv_group_order_of_operations(mode):
    with_bn, rates = [True, False, True], [0.3, 0.5, 0.0]
    torch.manual_seed(0)
    g = onn.ImgConvGroup(
        2, [3, 4, 5], pool_size=2, conv_act="sigmoid", conv_with_batchnorm=with_bn,
        conv_batchnorm_drop_rate=rates, pool_stride=2,
    )  # fmt: skip
    assert list(g._modules) == [
        "conv0", "bn0", "act0", "drop0", "conv1", "act1", "conv2", "bn2", "act2", "pool",
    ]  # fmt: skip
    _randomise_bn(g)
    g.train(mode == "train")
    x = torch.randn(3, 2, 9, 8)
    torch.manual_seed(123)
    got = g(x)
    torch.manual_seed(123)
    want = _by_hand(g, x, with_bn, rates, torch.sigmoid, lambda t: TF.max_pool2d(t, 2, 2))
    assert got.shape == (3, 5, 4, 4)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    # act before BN (or no BN) would give something else
    wrong = g.conv0(x)
    wrong = g.bn0(torch.sigmoid(wrong))
    assert not torch.allclose(wrong, g.act0(g.bn0(g.conv0(x))))
    if mode == "train":
        torch.manual_seed(124)
        assert not torch.equal(g(x), got)  # dropout is live in training


def test_img_conv_group_no_activation():
    torch.manual_seed(0)
    g = onn.ImgConvGroup(1, [2], pool_size=1, conv_with_batchnorm=True).eval()
    _randomise_bn(g)
    assert list(g._modules) == ["conv0", "bn0", "pool"]
    x = torch.randn(1, 1, 5, 5)
    torch.testing.assert_close(g(x), g.bn0(g.conv0(x)), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("with_bn", "rate", "dropout_p"),
    [
        (True, 0.5, 0.5),
        (True, 2e-5, 2e-5),
        (True, 1e-5, None),
        (True, 1e-6, None),
        (True, 0.0, None),
        (False, 0.5, None),
        (False, 0.0, None),
    ],
)
def test_img_conv_group_dropout_presence(with_bn, rate, dropout_p):
    g = onn.ImgConvGroup(
        1, [2, 2], 2, conv_act="relu", conv_with_batchnorm=with_bn,
        conv_batchnorm_drop_rate=rate,
    )  # fmt: skip
    drops = {n: m for n, m in g.named_children() if isinstance(m, nn.Dropout)}
    bns = [n for n, m in g.named_children() if isinstance(m, nn.BatchNorm2d)]
    assert bns == (["bn0", "bn1"] if with_bn else [])
    if dropout_p is None:
        assert drops == {}
        assert not any(n.startswith("drop") for n in g._modules)
    else:
        assert list(drops) == ["drop0", "drop1"]
        assert all(d.p == dropout_p for d in drops.values())


def test_img_conv_group_dropout_only_on_bn_layers_of_a_mixed_list():
    g = onn.ImgConvGroup(
        1, [2, 2, 2], 1, conv_with_batchnorm=[False, True, True],
        conv_batchnorm_drop_rate=[0.5, 0.5, 1e-6],
    )  # fmt: skip
    assert list(g._modules) == ["conv0", "conv1", "bn1", "drop1", "conv2", "bn2", "pool"]


def test_img_conv_group_state_dict_key_order():
    g = onn.ImgConvGroup(
        1, [2, 3, 4], 2, conv_act="relu", conv_with_batchnorm=[True, False, True],
        conv_batchnorm_drop_rate=0.2,
    )  # fmt: skip
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert list(g.state_dict()) == (
        ["conv0.weight", "conv0.bias"]
        + [f"bn0.{k}" for k in bn]
        + ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
        + [f"bn2.{k}" for k in bn]
    )


@pytest.mark.parametrize("pool_size", [1, 2, 3, (2, 3)])
def test_img_conv_group_pool_stride_defaults_to_1(pool_size):
    torch.manual_seed(0)
    g = onn.ImgConvGroup(1, [2], pool_size=pool_size)
    ps = (pool_size, pool_size) if isinstance(pool_size, int) else pool_size
    x = torch.randn(2, 1, 10, 9)
    out = g(x)
    assert out.shape == (2, 2, 10 - ps[0] + 1, 9 - ps[1] + 1)
    torch.testing.assert_close(out, TF.max_pool2d(g.conv0(x), ps, 1), rtol=0, atol=0)


def test_img_conv_group_avg_pool():
    torch.manual_seed(0)
    g = onn.ImgConvGroup(1, [2, 3], pool_size=2, pool_type="avg", pool_stride=2, conv_act="tanh")
    assert isinstance(g.pool, nn.AvgPool2d)
    x = torch.randn(1, 1, 8, 6)
    want = TF.avg_pool2d(torch.tanh(g.conv1(torch.tanh(g.conv0(x)))), 2, 2)
    torch.testing.assert_close(g(x), want, rtol=0, atol=0)
    assert isinstance(onn.ImgConvGroup(1, [2], 2).pool, nn.MaxPool2d)


def test_img_conv_group_per_layer_padding_and_filter_size():
    g = onn.ImgConvGroup(1, [2, 3], 1, conv_padding=[0, (1, 2)], conv_filter_size=[3, (3, 5)])
    assert g.conv0.kernel_size == (3, 3) and g.conv0.padding == (0, 0)
    assert g.conv1.kernel_size == (3, 5) and g.conv1.padding == (1, 2)
    assert g(torch.randn(1, 1, 10, 9)).shape == (1, 3, 8, 7)
    # a tuple is one value for every layer
    h = onn.ImgConvGroup(1, [2, 3], 1, conv_padding=(0, 1), conv_filter_size=(1, 3))
    for conv in (h.conv0, h.conv1):
        assert conv.kernel_size == (1, 3) and conv.padding == (0, 1)
        assert conv.stride == (1, 1) and conv.bias is not None
    assert h(torch.randn(1, 1, 6, 5)).shape == (1, 3, 6, 5)


def test_img_conv_group_seed000_example_values():
    torch.manual_seed(0)
    g = onn.ImgConvGroup(
        1, [3, 3], pool_size=2, conv_padding=1, conv_filter_size=3, conv_act="relu",
        pool_stride=2,
    )  # fmt: skip
    x = torch.randn(1, 1, 28, 28)
    out = g(x)
    assert out.shape == (1, 3, 14, 14)
    h = x.double()
    for conv in (g.conv0, g.conv1):
        w, b = conv.weight.detach().double(), conv.bias.detach().double()
        h = ref_conv2d(h, w, b, 1, (1, 1, 1, 1), 1, 1).relu()
    ref = TF.max_pool2d(h, 2, 2)  # a max is exact in float64
    assert ref.std() > 0
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_img_conv_group_lazy_in_channels():
    g = onn.ImgConvGroup(None, [3, 4], pool_size=2, pool_stride=2)
    x = torch.randn(2, 5, 8, 8)
    out = g(x)
    assert out.shape == (2, 4, 4, 4)
    assert type(g.conv0) is onn.Conv2d and g.conv0.in_channels == 5
    assert g.conv0.weight.shape == (3, 5, 3, 3)
    assert g.conv1.in_channels == 3


# --------------------------------------------------------------------------- torch.compile


def test_compile_fullgraph_deform_pack_forward_backward_match_eager():
    torch.manual_seed(0)
    m = onn.DeformConv2dPack(4, 4, (3, 2), stride=(2, 1), padding=(1, 0), deformable_groups=2)
    with torch.no_grad():  # non-trivial offsets and mask
        m.conv_offset.weight.normal_(0, 0.3)
        m.conv_offset.bias.normal_(0, 0.3)
    x = torch.randn(2, 4, 6, 5)

    def run(fn):
        xi = x.clone().requires_grad_()
        out = fn(xi)
        grads = torch.autograd.grad(out.square().sum(), [xi, *m.parameters()])
        return out.detach(), grads

    out_e, grads_e = run(m)
    compiled = torch.compile(m, fullgraph=True, backend="aot_eager")
    out_c, grads_c = run(compiled)
    torch.testing.assert_close(out_c, out_e)
    assert len(grads_c) == 5
    for a, e in zip(grads_c, grads_e, strict=True):
        torch.testing.assert_close(a, e)


# ----------------------------------------------------------------------------- autocast


@pytest.mark.parametrize("dcn_first", [False, True], ids=["conv-dcn", "dcn-conv"])
def test_autocast_bfloat16_forward_and_backward(dcn_first):
    """A model with a DCN layer trains under ``torch.autocast('cpu', dtype=torch.bfloat16)``
    as with ``nn.Conv2d``. Against the same model in float32 (errors relative to the largest
    float32 value): output and every gradient within 3e-2, but the offset predictor's
    gradients within 2e-1 - they are spatial differences of the (bfloat16) activations;
    the DCN's rule under autocast: tests/test_custom_op.py)."""
    torch.manual_seed(0)
    dcn = onn.DeformConv2dPack(8 if not dcn_first else 3, 8, 3, padding=1)
    conv = torch.nn.Conv2d(3 if not dcn_first else 8, 8, 3, padding=1)
    model = torch.nn.Sequential(*([dcn, conv] if dcn_first else [conv, dcn]))
    torch.nn.init.normal_(dcn.conv_offset.weight, std=0.05)  # a trained-looking predictor
    x = torch.randn(2, 3, 12, 12)

    def run(enabled):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            out = model(x)
        out.float().square().sum().backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters()}

    out16, grads16 = run(True)
    out32, grads32 = run(False)
    assert out16.dtype == torch.bfloat16  # both layers' (the DCN's as torch's conv2d's)
    rel = lambda a, b: ((a.float() - b).abs().max() / b.abs().max()).item()  # noqa: E731
    assert rel(out16, out32) < 3e-2
    for name, g32 in grads32.items():
        limit = 2e-1 if "conv_offset" in name else 3e-2
        assert rel(grads16[name], g32) < limit, name


def test_autocast_dense_layers_behave_as_torch():
    """omniconv's Conv2d / ConvTranspose2d under autocast: torch's dtypes and numbers."""
    torch.manual_seed(0)
    ours = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3), onn.Conv2d(6, 4, 3, padding=1), onn.ConvTranspose2d(4, 2, 3)
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3),
        torch.nn.Conv2d(6, 4, 3, padding=1),
        torch.nn.ConvTranspose2d(4, 2, 3),
    )
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 9, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = ours(x), theirs(x)
    assert a.dtype == b.dtype == torch.bfloat16
    assert torch.equal(a, b)
