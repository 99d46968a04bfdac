"""omniconv.compat.paddle: Paddle 1.x fluid / 2.x names, checked against real Paddle 3.3.1.

Fixtures: ``paddle_compat_*.npz`` (tools/fixtures/gen_paddle_compat.py: img_conv_group and
Conv2DTranspose composed from Paddle ops with the 1.x semantics, and Paddle's error texts)
and the existing ``paddle_deform_*.npz`` (paddle.vision.ops.deform_conv2d), all matched
through the front-end with the weights loaded by their Paddle names.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _helpers import FIXTURES, close_to_fixture, load_fixture
from reference import ref_conv2d, ref_conv_transpose2d, ref_deform_conv2d

from omniconv.compat import paddle as P
from omniconv.compat.paddle import Program, fluid
from omniconv.compat.paddle.vision.ops import DeformConv2D, deform_conv2d

F64 = torch.float64


ERRORS = load_fixture(FIXTURES / "paddle_compat_errors.npz")


# ---------------------------------------------------------------------------------------
# the seeds' code examples, with only the import changed


def _seed_000_example():
    img = fluid.layers.data(name="img", shape=[1, 28, 28], dtype="float32")
    conv_pool = fluid.nets.img_conv_group(
        input=img,
        conv_padding=1,
        conv_num_filter=[3, 3],
        conv_filter_size=3,
        conv_act="relu",
        pool_size=2,
        pool_stride=2,
    )
    return img, conv_pool


def test_seed_000_img_conv_group_example():
    img, conv_pool = _seed_000_example()  # as written: outside a Program
    assert img.shape == (1, 1, 28, 28) and not img.any()
    assert conv_pool.shape == (1, 3, 14, 14)
    assert not conv_pool.any()  # zero input, zero biases: relu(0) and max-pools of 0
    # the same code in a Program, fed an image: the float64 reference of
    # conv -> relu -> conv -> relu -> 2x2/2 max pool with the program's parameters
    torch.manual_seed(0)
    net = Program(lambda: _seed_000_example()[1])
    x = torch.rand(2, 1, 28, 28)
    out = net(x)
    group = net.layers["img_conv_group_0"]
    assert [type(m).__name__ for m in group] == ["Conv2d", "PaddleActivation"] * 2 + ["MaxPool2d"]
    h = x.double()
    for conv in (group.conv0, group.conv1):
        w, b = conv.weight.detach().double(), conv.bias.detach().double()
        assert not b.any()  # Paddle's default bias init: 0
        h = ref_conv2d(h, w, b, 1, (1, 1, 1, 1), 1, 1).relu()
    ref = torch.nn.functional.max_pool2d(h, 2, 2)  # a max is exact in float64
    assert out.shape == (2, 3, 14, 14) and out.std() > 0
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def _seed_001_example():
    data = fluid.layers.data(name="data", shape=[3, 32, 32], dtype="float32")
    offset = fluid.layers.data(name="offset", shape=[18, 32, 32], dtype="float32")
    mask = fluid.layers.data(name="mask", shape=[9, 32, 32], dtype="float32")
    out = fluid.layers.deformable_conv(
        input=data, offset=offset, mask=mask, num_filters=2, filter_size=3, padding=1
    )
    return out


def test_seed_001_deformable_conv_example():
    out = _seed_001_example()  # as written: zero placeholders, zero bias
    assert out.shape == (1, 2, 32, 32) and out.dtype == torch.float32
    assert not out.any()
    # the same code in a Program, fed data, offsets and mask: the float64 reference with
    # the program's parameters (Paddle's default init: weight ~ N(0, 2/(3*3*3)), bias 0)
    torch.manual_seed(0)
    net = Program(_seed_001_example)
    g = torch.Generator().manual_seed(1)
    data = torch.randn(2, 3, 32, 32, generator=g)
    offset = torch.randn(2, 18, 32, 32, generator=g) * 2
    mask = torch.rand(2, 9, 32, 32, generator=g)
    out = net(data=data, offset=offset, mask=mask)
    layer = net.layers["deformable_conv_0"]
    w, b = layer.weight.detach().double(), layer.bias.detach().double()
    assert w.shape == (2, 3, 3, 3) and not b.any()
    assert abs(w.std().item() - math.sqrt(2 / 27)) < 0.2
    ref = ref_deform_conv2d(data.double(), offset.double(), w, b, 1, 1, 1, mask.double())
    assert out.std() > 0
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


def test_seed_003_conv2d_transpose_example():
    with fluid.dygraph.guard():
        data = np.random.random((3, 32, 32, 5)).astype("float32")
        conv2DTranspose = fluid.dygraph.nn.Conv2DTranspose(
            num_channels=32, num_filters=2, filter_size=3
        )
        ret = conv2DTranspose(fluid.dygraph.base.to_variable(data))
    assert ret.shape == (3, 2, 34, 7) and ret.dtype == torch.float32
    assert fluid.dygraph.Conv2DTranspose is fluid.dygraph.nn.Conv2DTranspose
    assert fluid.dygraph.to_variable is fluid.dygraph.base.to_variable
    # the values: the float64 reference with the layer's parameters (Xavier-uniform
    # weight [32, 2, 3, 3], zero bias)
    w, b = conv2DTranspose.weight.detach().double(), conv2DTranspose.bias.detach().double()
    assert w.shape == (32, 2, 3, 3) and not b.any()
    assert w.abs().max() <= math.sqrt(6 / (2 * 9 + 32 * 9))
    ref = ref_conv_transpose2d(torch.from_numpy(data).double(), w, b, 1, 0, 0, 1, 1)
    torch.testing.assert_close(ret.double(), ref, rtol=1e-5, atol=1e-5)


def test_module_paths():
    assert fluid.ParamAttr is P.ParamAttr
    for name in ("Normal", "Uniform", "Constant", "Xavier", "MSRA", "NumpyArrayInitializer"):
        assert callable(getattr(fluid.initializer, name))
    assert fluid.initializer.Assign is fluid.initializer.NumpyArrayInitializer
    assert fluid.layers.deformable_conv is P.deformable_conv
    assert fluid.nets.img_conv_group is P.img_conv_group
    assert deform_conv2d is P.deform_conv2d and DeformConv2D is P.DeformConv2D


# ---------------------------------------------------------------------------------------
# img_conv_group against Paddle (train step with Paddle's dropout mask, running stats, eval)


def _icg_program(z):
    n = len(z["conv_num_filter"])

    def build():
        img = fluid.layers.data(name="img", shape=list(z["x"].shape[1:]), dtype="float64")
        return fluid.nets.img_conv_group(
            input=img,
            conv_num_filter=[int(f) for f in z["conv_num_filter"]],
            pool_size=[int(v) for v in z["pool_size"]],
            conv_padding=[[int(v) for v in p] for p in z["conv_padding"]],
            conv_filter_size=[[int(v) for v in s] for s in z["conv_filter_size"]],
            conv_act=str(z["conv_act"]) or None,
            conv_with_batchnorm=[bool(b) for b in z["conv_with_batchnorm"]],
            conv_batchnorm_drop_rate=[float(r) for r in z["conv_batchnorm_drop_rate"]],
            pool_stride=[int(v) for v in z["pool_stride"]],
            pool_type=str(z["pool_type"]),
        )

    assert n >= 2
    return Program(build)


@pytest.mark.parametrize("case", ["icg_bn_relu_drop", "icg_mixed_leaky_avg"])
def test_img_conv_group_matches_paddle(case):
    z = load_fixture(FIXTURES / f"paddle_compat_{case}.npz")
    net = _icg_program(z)
    x = torch.tensor(z["x"])
    net.build(img=x)
    params = {k[2:]: v for k, v in z.items() if k.startswith("p:")}
    # Paddle names, exactly, in Paddle's creation order
    assert list(net.state_dict()) == list(params)
    net.load_state_dict(params)  # numpy arrays by Paddle name
    group = net.layers["img_conv_group_0"]
    masks = {k: v for k, v in z.items() if k.startswith("mask")}
    assert masks
    for key, mask in masks.items():
        drop = group.get_submodule(f"drop{key[4:]}")
        drop.sample_mask = lambda t, m=mask: torch.tensor(m, dtype=t.dtype)

    net.train()
    xl = x.clone().requires_grad_(True)
    out = net(img=xl)
    close_to_fixture(out, z["out_train"], "out_train")
    named = dict(
        zip(net.paddle_names().values(), net.state_dict(keep_vars=True).values(), strict=True)
    )
    grad_keys = [k for k in z if k.startswith("grad_train_")]
    tensors = [xl if k == "grad_train_x" else named[k[len("grad_train_") :]] for k in grad_keys]
    grads = torch.autograd.grad(out, tensors, torch.tensor(z["grad_out_train"]))
    # Paddle's avg-pool backward scales by a float32 1/area (1/6 -> 0.16666667163...), so
    # its float64 gradients carry a 3e-8 relative error there
    tol = 1e-7 if str(z["pool_type"]) == "avg" else None
    for k, g in zip(grad_keys, grads, strict=True):
        close_to_fixture(g, z[k], k, tol)
    sd = net.state_dict()
    for k in (k for k in z if k.startswith("after:")):
        close_to_fixture(sd[k[6:]], z[k], k)  # momentum 0.9 on the old value, biased variance

    net.eval()
    with torch.no_grad():
        close_to_fixture(net(x), z["out_eval"], "out_eval")  # positional feed


def test_img_conv_group_order_and_layers():
    def build():
        img = fluid.layers.data(name="img", shape=[2, 6, 6], dtype="float32")
        return fluid.nets.img_conv_group(
            img,
            [3, 3, 3],
            2,
            conv_act="relu",
            conv_with_batchnorm=[False, True, True],
            conv_batchnorm_drop_rate=[0.5, 1e-6, 0.2],
        )

    net = Program(build)
    net(torch.randn(2, 2, 6, 6))
    names = [n for n, _ in net.layers["img_conv_group_0"].named_children()]
    # no dropout without BN (rate ignored), none for |p| <= 1e-5; act after BN
    assert names == [
        "conv0", "act0", "conv1", "bn1", "act1", "conv2", "bn2", "act2", "drop2", "pool",
    ]  # fmt: skip
    assert isinstance(net.layers["img_conv_group_0"].drop2, P.Dropout)
    assert isinstance(net.layers["img_conv_group_0"].bn1, P.BatchNorm)
    g = net.layers["img_conv_group_0"]
    assert all(g.get_submodule(f"conv{i}").bias is not None for i in range(3))
    assert g.pool.stride == (1, 1)


def test_img_conv_group_len_broadcasting():
    def make(**kw):
        x = torch.randn(1, 1, 8, 8)
        return fluid.nets.img_conv_group(x, [2, 2], 2, **kw)

    # a tuple is per layer (layer 0 pad 0, layer 1 pad 2), not (pad_h, pad_w)
    assert make(conv_padding=(0, 2)).shape == (1, 2, 7, 7)  # (pad_h, pad_w) would be 3x11
    assert make(conv_padding=[[1, 0], [1, 0]]).shape == (1, 2, 7, 3)
    with pytest.raises(ValueError, match=r"`conv_padding` must be one value .* of len\(conv"):
        make(conv_padding=(1, 1, 1))
    # a str has __len__: 'SAME' is split into characters with 4 layers
    x = torch.randn(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"^Unknown padding: 'S'\. It can only be 'SAME'"):
        fluid.nets.img_conv_group(x, [1, 1, 1, 1], 2, conv_padding="SAME")
    assert make(conv_padding=["same", "VALID"]).shape == (1, 2, 5, 5)
    with pytest.raises(TypeError, match="`conv_num_filter` must be a list or tuple"):
        make.__wrapped__ if False else fluid.nets.img_conv_group(x, 3, 2)


def test_img_conv_group_shared_param_attr():
    attr = fluid.ParamAttr(name="shared_w")

    def build():
        img = fluid.layers.data(name="img", shape=[2, 5, 5], dtype="float32")
        return fluid.nets.img_conv_group(img, [2, 2], 1, param_attr=attr)

    net = Program(build)
    net(torch.randn(1, 2, 5, 5))
    g = net.layers["img_conv_group_0"]
    assert g.conv0.weight is g.conv1.weight
    assert list(net.state_dict()) == ["shared_w", "conv2d_0.b_0", "conv2d_1.b_0"]
    assert len(list(net.parameters())) == 3

    def bad():
        img = fluid.layers.data(name="img", shape=[1, 5, 5], dtype="float32")
        return fluid.nets.img_conv_group(img, [2, 3], 1, param_attr=attr)

    with pytest.raises(ValueError, match=r"`param_attr.name` must be unique, or shared by"):
        Program(bad)(torch.randn(1, 1, 5, 5))


def test_img_conv_group_errors():
    x = torch.randn(1, 1, 6, 6)
    with pytest.raises(ValueError) as e:
        fluid.nets.img_conv_group(x, [2], 2, pool_type="min")
    # Paddle's words, formatted (Paddle passes the format and the value as two args)
    assert e.value.args == (
        "Unknown Attr(pool_type): 'min'. It can only be 'max' or 'avg'.; received pool_type='min'",
    )
    with pytest.raises(ValueError, match=r"Attr\(pool_size\) must be passed .* pool_size: -1"):
        fluid.nets.img_conv_group(x, [2], -1)
    with pytest.raises(ValueError, match=r"^Attr\(use_cudnn\) should be True or False"):
        fluid.nets.img_conv_group(x, [2], 2, use_cudnn=1)
    with pytest.raises(TypeError, match=r"^7 should be unicode or str; received conv_act=7$"):
        fluid.nets.img_conv_group(x, [2], 2, conv_act=7)
    with pytest.raises(ValueError, match="`conv_act` must be None or a Paddle activation"):
        fluid.nets.img_conv_group(x, [2], 2, conv_act="nope")
    with pytest.raises(
        ValueError,
        match=r"^'dropout_prob' must be between 0\.0 and 1\.0\.; "
        r"received conv_batchnorm_drop_rate=-0\.5$",
    ):
        fluid.nets.img_conv_group(
            x, [2], 2, conv_with_batchnorm=True, conv_batchnorm_drop_rate=-0.5
        )
    with pytest.raises(ValueError, match=r"^The conv_filter_size's length must be 2\. Received"):
        fluid.nets.img_conv_group(x, [2], 2, conv_filter_size=[[3, 3, 3]])
    with pytest.raises(ValueError, match=r"Non-zero padding\(.*\) in the batch or channel"):
        fluid.nets.img_conv_group(x, [2], 2, conv_padding=[[[0, 1], [0, 0], [1, 1], [1, 1]]])


def test_default_initialisers():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, 8)

    def build():
        img = fluid.layers.data(name="img", shape=[16, 8, 8], dtype="float32")
        off = fluid.layers.data(name="off", shape=[18, 8, 8], dtype="float32")
        y = fluid.nets.img_conv_group(img, [64], 1)
        return fluid.layers.deformable_conv(y, off, None, 64, 3, padding=1, modulated=False)

    net = Program(build)
    net(x, torch.zeros(2, 18, 8, 8))
    sd = net.state_dict()
    assert list(sd) == ["conv2d_0.w_0", "conv2d_0.b_0", "deformable_conv_0.w_0",
                        "deformable_conv_0.b_0"]  # fmt: skip
    assert abs(sd["conv2d_0.w_0"].std().item() - math.sqrt(2 / (9 * 16))) < 0.01
    assert abs(sd["deformable_conv_0.w_0"].std().item() - math.sqrt(2 / (9 * 64))) < 0.004
    assert not sd["conv2d_0.b_0"].any() and not sd["deformable_conv_0.b_0"].any()
    ct = fluid.dygraph.Conv2DTranspose(8, 32, 3, groups=4)
    bound = math.sqrt(6 / (8 * 9 + 8 * 9))  # fan_in = (32/4)*9, fan_out = 8*9
    assert ct.weight.shape == (8, 8, 3, 3)
    assert ct.weight.abs().max() <= bound and ct.weight.abs().max() > 0.9 * bound
    assert not ct.bias.any()
    d = DeformConv2D(16, 32, 3)
    assert abs(d.weight.std().item() - math.sqrt(2 / (9 * 16))) < 0.01 and not d.bias.any()


def test_param_attr_initialisers_everywhere():
    w = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3)
    ct = fluid.dygraph.Conv2DTranspose(
        2, 3, 3,
        param_attr=fluid.ParamAttr(initializer=fluid.initializer.NumpyArrayInitializer(w)),
        bias_attr=fluid.ParamAttr(initializer=fluid.initializer.Constant(0.5), trainable=False),
    )  # fmt: skip
    assert torch.equal(ct.weight, torch.from_numpy(w))
    assert torch.equal(ct.bias, torch.full((3,), 0.5)) and not ct.bias.requires_grad
    assert fluid.dygraph.Conv2DTranspose(2, 3, 3, bias_attr=False).bias is None
    u = DeformConv2D(
        4, 4, 3, weight_attr=fluid.ParamAttr(initializer=fluid.initializer.Uniform(-0.1, 0.2))
    )
    assert u.weight.min() >= -0.1 and u.weight.max() <= 0.2 and u.weight.min() < 0
    torch.manual_seed(1)
    m = DeformConv2D(64, 64, 3, weight_attr=fluid.initializer.MSRA(uniform=False))
    assert abs(m.weight.std().item() - math.sqrt(2 / (64 * 9))) < 0.002
    xn = DeformConv2D(64, 32, 3, weight_attr=fluid.initializer.Xavier(uniform=False))
    assert abs(xn.weight.std().item() - math.sqrt(2 / (64 * 9 + 32 * 9))) < 0.002
    n1 = DeformConv2D(4, 4, 3, weight_attr=fluid.initializer.Normal(0.0, 2.0, seed=7))
    n2 = DeformConv2D(4, 4, 3, weight_attr=fluid.initializer.Normal(0.0, 2.0, seed=7))
    assert torch.equal(n1.weight, n2.weight)  # a non-zero seed repeats
    x = torch.randn(1, 2, 5, 5)
    off = torch.zeros(1, 18, 5, 5)
    out = fluid.layers.deformable_conv(
        x, off, None, 3, 3, padding=1, modulated=False,
        param_attr=fluid.ParamAttr(initializer=fluid.initializer.Constant(1.0)), bias_attr=False,
    )  # fmt: skip
    ref = torch.nn.functional.conv2d(x, torch.ones(3, 2, 3, 3), padding=1)
    torch.testing.assert_close(out, ref)
    # img_conv_group: the initializer of param_attr for every conv
    y = fluid.nets.img_conv_group(
        x, [2, 2], 1, param_attr=fluid.ParamAttr(initializer=fluid.initializer.Constant(0.0))
    )
    assert not y.any()
    with pytest.raises(TypeError, match="`value` must be a numpy array"):
        fluid.initializer.NumpyArrayInitializer([1, 2])


# ---------------------------------------------------------------------------------------
# Program


def _two_input_program():
    def build():
        x = fluid.layers.data(name="x", shape=[2, 6, 6], dtype="float32")
        off = fluid.layers.data(name="off", shape=[8, 5, 5], dtype="float32")
        m = fluid.layers.data(name="m", shape=[4, 5, 5], dtype="float32")
        return fluid.layers.deformable_conv(x, off, m, 4, 2, name="dcn")

    return Program(build)


def test_program_feeds_and_reuse():
    net = _two_input_program()
    x, off, m = torch.randn(3, 2, 6, 6), torch.randn(3, 8, 5, 5), torch.rand(3, 4, 5, 5)
    a = net(x, off, m)
    b = net(x=x, off=off, m=m)
    c = net(x, m=m, off=off)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    assert list(net.state_dict()) == ["dcn.w_0", "dcn.b_0"]
    assert net.paddle_names() == {"layers.deformable_conv_0.weight": "dcn.w_0",
                                  "layers.deformable_conv_0.bias": "dcn.b_0"}  # fmt: skip
    with pytest.raises(ValueError, match="`m` must be fed"):
        net(x, off)
    with pytest.raises(TypeError, match=r"`x.dtype` must be torch.float32 \(declared"):
        net(x.double(), off, m)
    with pytest.raises(ValueError, match=r"`off.shape` must be \[-1, 8, 5, 5\]"):
        net(x, off[:, :4], m)
    with pytest.raises(ValueError, match="`feeds` must be names declared"):
        net(x, off, m, y=x)
    with pytest.raises(ValueError, match="`x` must be fed once"):
        net(x, off, m, x=x)


def test_program_trains_and_loads_paddle_checkpoint():
    torch.manual_seed(0)
    net = _two_input_program()
    with pytest.raises(ValueError, match="`net` must be built before load_state_dict"):
        net.load_state_dict({})
    feeds = {
        "x": torch.randn(2, 2, 6, 6),
        "off": torch.randn(2, 8, 5, 5),
        "m": torch.rand(2, 4, 5, 5),
    }
    net.build(**feeds)
    ckpt = {k: v.numpy() * 0 + 0.25 for k, v in net.state_dict().items()}
    net.load_state_dict(ckpt)
    assert (net.state_dict()["dcn.w_0"] == 0.25).all()
    opt = torch.optim.SGD(net.param_groups(0.1))
    target = torch.randn(2, 4, 5, 5)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = (net(**feeds) - target).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[2] < losses[0]
    outer = torch.nn.Sequential(net)  # nested: the Paddle names under the module prefix
    assert list(outer.state_dict()) == ["0.dcn.w_0", "0.dcn.b_0"]
    outer.load_state_dict(outer.state_dict())
    other = _two_input_program().build(**feeds)
    other.load_state_dict(net.state_dict())
    torch.testing.assert_close(other(**feeds), net(**feeds))


def test_program_learning_rate_and_failed_build():
    attr = fluid.ParamAttr(learning_rate=0.5)

    fail_once = [True]

    def build():
        x = fluid.layers.data(name="x", shape=[1, 4, 4], dtype="float32")
        y = fluid.nets.img_conv_group(x, [2], 1, param_attr=attr)
        if fail_once:
            fail_once.pop()
            raise KeyError("boom")
        return y

    net = Program(build)
    with pytest.raises(KeyError, match="boom"):
        net(torch.randn(1, 1, 4, 4))
    assert not net._built and len(net.layers) == 0
    net(torch.randn(1, 1, 4, 4))
    groups = {g["lr"]: len(g["params"]) for g in net.param_groups(0.1)}
    assert groups == {0.05: 1, 0.1: 1}  # the weight at lr * 0.5, the bias at lr


def test_fixture_inventory():
    files = sorted(FIXTURES.glob("paddle_compat_*.npz"))
    assert len(files) == 7
    for f in files:
        z = load_fixture(f)
        assert (str(z["framework"]), str(z["version"])) == ("paddlepaddle", "3.3.1")
    assert sum(f.stat().st_size for f in files) < 200_000


def test_program_must_repeat_its_calls():
    calls = []

    def build():
        x = fluid.layers.data(name="x", shape=[1, 5, 5], dtype="float32")
        calls.append(1)
        if len(calls) > 1:
            return x
        return fluid.nets.img_conv_group(x, [1], 1)

    net = Program(build)
    net(torch.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match="`fn` must be a function that makes the same fluid"):
        net(torch.randn(1, 1, 5, 5))


def test_program_train_eval_switch_dropout_and_bn():
    def build():
        x = fluid.layers.data(name="x", shape=[1, 4, 4], dtype="float64")
        return fluid.nets.img_conv_group(
            x, [1], 1, conv_with_batchnorm=True, conv_batchnorm_drop_rate=0.5
        )

    net = Program(build)
    x = torch.randn(2, 1, 4, 4, dtype=F64)
    net(x)
    net.eval()
    g = net.layers["img_conv_group_0"]
    pre = g.bn0(g.conv0(x))
    torch.testing.assert_close(
        net(x), pre * 0.5, rtol=1e-12, atol=1e-12
    )  # downgrade_in_infer: x * (1 - p)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_program_layers_take_the_program_mode_on_the_first_call(mode):
    """A program put in eval mode before it is built runs its first call in eval mode:
    BN uses (and keeps) its running statistics; in train mode the first call updates them."""

    def build():
        x = fluid.layers.data(name="x", shape=[3, 10, 10], dtype="float32")
        return fluid.nets.img_conv_group(
            x, [4], 2, conv_padding=1, conv_with_batchnorm=True, conv_act="relu"
        )

    net = Program(build)
    net.train(mode == "train")
    x = torch.randn(4, 3, 10, 10)
    first = net(x)
    g = net.layers["img_conv_group_0"]
    assert all(m.training == (mode == "train") for m in net.modules())
    moved = bool(torch.any(g.bn0.running_mean != 0))
    assert moved == (mode == "train")
    if mode == "eval":
        torch.testing.assert_close(first, net(x), rtol=0, atol=0)  # the same on every call


# ---------------------------------------------------------------------------------------
# Paddle's BN and dropout modules, activation table


def test_batch_norm_biased_running_variance():
    bn = P.BatchNorm(1, dtype=F64)
    x = torch.tensor([1.0, 2, 3, 4], dtype=F64).reshape(1, 1, 2, 2)
    bn(x)
    m = float(np.float32(0.9))  # Paddle's momentum attribute is a float32
    # biased batch variance 1.25 (unbiased 1.6667 would give 1.0667); Paddle: 1.02500001
    assert bn.running_var.item() == pytest.approx(m + (1 - m) * 1.25, abs=1e-15)
    assert bn.running_var.item() == pytest.approx(1.025, abs=1e-8)
    assert bn.running_mean.item() == pytest.approx((1 - m) * 2.5, abs=1e-15)
    assert bn.momentum == pytest.approx(0.1) and "num_batches_tracked" not in bn.state_dict()


def test_dropout_downgrade_in_infer():
    torch.manual_seed(0)
    d = P.Dropout(0.3)
    x = torch.rand(200, 200) + 1
    y = d(x)
    kept = y != 0
    assert torch.equal(y[kept], x[kept])  # no rescaling in training
    assert abs(kept.double().mean().item() - 0.7) < 0.01
    d.eval()
    torch.testing.assert_close(d(x), x * 0.7)
    assert d.keep == float(np.float32(1) - np.float32(0.3))
    with pytest.raises(ValueError, match="'dropout_prob' must be between"):
        P.Dropout(1.5)


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("leaky_relu", lambda x: torch.where(x > 0, x, 0.02 * x)),
        ("hard_sigmoid", lambda x: (0.2 * x + 0.5).clamp(0, 1)),
        ("softmax", lambda x: torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)),
        ("relu6", lambda x: x.clamp(0, 6)),
        ("brelu", lambda x: x.clamp(0, 24)),
        ("stanh", lambda x: 1.7159 * torch.tanh(2 / 3 * x)),
        ("soft_relu", lambda x: torch.log(1 + torch.exp(x.clamp(-40, 40)))),
        ("thresholded_relu", lambda x: torch.where(x > 1, x, 0 * x)),
        ("softshrink", lambda x: torch.where(x.abs() > 0.5, x - 0.5 * x.sign(), 0 * x)),
        ("hard_shrink", lambda x: torch.where(x.abs() > 0.5, x, 0 * x)),
        ("swish", lambda x: x / (1 + torch.exp(-x))),
        ("softplus", lambda x: torch.log(1 + torch.exp(x))),
        ("elu", lambda x: torch.where(x > 0, x, torch.exp(x) - 1)),
        ("gelu", lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))),
    ],
)
def test_activation_defaults(name, ref):
    x = torch.linspace(-30, 30, 241, dtype=F64).reshape(1, 1, 1, -1) / 3
    act = P._activation.get_activation(name)
    torch.testing.assert_close(act(x), ref(x), rtol=1e-12, atol=1e-12)
    if name == "leaky_relu":
        assert act.attrs["negative_slope"] == 0.02  # Paddle 3.3.1 computes with the double


# ---------------------------------------------------------------------------------------
# deformable convolution: the Paddle fixtures through fluid, vision.ops and DeformConv2D

DEFORM = sorted(FIXTURES.glob("paddle_deform_*.npz"))


def _deform_grads(out, named, z):
    res = torch.autograd.grad(out, list(named.values()), torch.tensor(z["grad_out"]).to(out.dtype))
    return dict(zip(named, res, strict=True))


@pytest.mark.parametrize("path", DEFORM, ids=[p.stem for p in DEFORM])
def test_deform_fixtures_through_frontends(path):
    z = load_fixture(path)
    kh, kw = z["weight"].shape[2:]
    dg, groups = int(z["deformable_groups"]), int(z["groups"])
    v2 = "mask" in z
    kwargs = {
        "stride": [int(v) for v in z["stride"]],
        "padding": [int(v) for v in z["padding"]],
        "dilation": [int(v) for v in z["dilation"]],
    }
    c_out = z["weight"].shape[0]
    leaf = {k: torch.tensor(z[k]).requires_grad_(True) for k in ("x", "offset", "mask") if k in z}

    def build():
        x = fluid.layers.data(name="x", shape=list(z["x"].shape[1:]), dtype=str(z["x"].dtype))
        off = fluid.layers.data(
            name="o", shape=list(z["offset"].shape[1:]), dtype=str(z["x"].dtype)
        )
        m = None
        if v2:
            m = fluid.layers.data(
                name="m", shape=list(z["mask"].shape[1:]), dtype=str(z["x"].dtype)
            )
        return fluid.layers.deformable_conv(
            x, off, m, c_out, [int(kh), int(kw)], groups=groups, deformable_groups=dg,
            im2col_step=int(z["im2col_step"]), bias_attr=None if "bias" in z else False,
            modulated=v2, **kwargs,
        )  # fmt: skip

    net = Program(build)
    feeds = {"x": leaf["x"], "o": leaf["offset"], **({"m": leaf["mask"]} if v2 else {})}
    if c_out % dg:
        with pytest.raises(ValueError, match="divided by deformable groups"):
            net(**feeds)
        return
    net.build(**feeds)
    ckpt = {"deformable_conv_0.w_0": z["weight"]}
    if "bias" in z:
        ckpt["deformable_conv_0.b_0"] = z["bias"]
    net.load_state_dict(ckpt)
    out = net(**feeds)
    params = dict(net.layers["deformable_conv_0"].named_parameters())
    grads = _deform_grads(out, {**leaf, **params}, z)
    close_to_fixture(out, z["out"], "fluid out")
    for k, g in grads.items():
        close_to_fixture(g, z[f"grad_{k}"], f"fluid grad_{k}")

    # 2.x names
    layer = DeformConv2D(
        z["x"].shape[1], c_out, [int(kh), int(kw)], deformable_groups=dg, groups=groups,
        bias_attr=None if "bias" in z else False, **kwargs,
    ).to(leaf["x"].dtype)  # fmt: skip
    layer.load_state_dict({k: torch.tensor(z[k]) for k in ("weight", "bias") if k in z})
    out2 = layer(leaf["x"], leaf["offset"], leaf.get("mask"))
    close_to_fixture(out2, z["out"], "DeformConv2D out")
    out3 = deform_conv2d(
        leaf["x"], leaf["offset"], torch.tensor(z["weight"]),
        torch.tensor(z["bias"]) if "bias" in z else None, deformable_groups=dg, groups=groups,
        mask=leaf.get("mask"), **kwargs,
    )  # fmt: skip
    close_to_fixture(out3, z["out"], "deform_conv2d out")


def test_deformable_conv_im2col_step_rule_and_any_step():
    torch.manual_seed(0)
    x, off, m = (
        torch.randn(4, 2, 5, 5, dtype=F64),
        torch.randn(4, 18, 5, 5, dtype=F64),
        torch.rand(4, 9, 5, 5, dtype=F64),
    )
    init = fluid.ParamAttr(initializer=fluid.initializer.Normal(0, 1, seed=3))
    outs = [
        fluid.layers.deformable_conv(x, off, m, 3, 3, padding=1, im2col_step=s, param_attr=init)
        for s in (None, 1, 2, 4, 64)
    ]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=1e-12, atol=1e-12)
    expected = str(ERRORS["deform_im2col_step"])
    with pytest.raises(ValueError) as e:
        fluid.layers.deformable_conv(x[:3], off[:3], m[:3], 3, 3, padding=1, im2col_step=2)
    assert str(e.value) == expected


def test_deformable_conv_errors():
    x, off, m = torch.randn(1, 4, 5, 5), torch.randn(1, 36, 3, 3), torch.rand(1, 18, 3, 3)
    paddle_text = str(ERRORS["deform_out_channels_dg"])
    prefix = paddle_text.split(" The difference")[0]
    assert prefix == "The number of output channels should be divided by deformable groups."
    with pytest.raises(ValueError, match="^" + prefix.replace(".", r"\.")):
        fluid.layers.deformable_conv(x, off, m, 3, 3, deformable_groups=2)
    with pytest.raises(
        ValueError, match=r"^The number of output channels should be divided by deformable"
    ):
        deform_conv2d(x, off, torch.randn(3, 4, 3, 3), deformable_groups=2, mask=m)
    with pytest.raises(TypeError, match=r"`mask` must be a tensor when modulated=True \(DCNv2"):
        fluid.layers.deformable_conv(x, off[:, :18], None, 4, 3)
    with pytest.raises(P.PaddleAssertionError, match=r"^param_attr should not be False here.$"):
        fluid.layers.deformable_conv(x, off[:, :18], m[:, :9], 4, 3, param_attr=False)
    assert issubclass(P.PaddleAssertionError, AssertionError)
    assert issubclass(P.PaddleAssertionError, ValueError)
    with pytest.raises(
        ValueError,
        match=r"^num_channels must be divisible by groups\.; received num_channels=4, groups=3$",
    ):
        fluid.layers.deformable_conv(x, off[:, :18], m[:, :9], 4, 3, groups=3)
    with pytest.raises(ValueError, match=r"^The stride's length must be 2\. Received: \(1, 1, 1\)"):
        deform_conv2d(x, off[:, :18], torch.randn(4, 4, 3, 3), stride=(1, 1, 1))
    with pytest.raises(
        ValueError, match=r"^The stride's type must be list or tuple\. Received: 1\.0"
    ):
        deform_conv2d(x, off[:, :18], torch.randn(4, 4, 3, 3), stride=1.0)
    with pytest.raises(
        ValueError,
        match=r"^in_channels must be divisible by groups\.; received in_channels=4, groups=3$",
    ):
        DeformConv2D(4, 6, 3, groups=3)
    w = torch.randn(4, 2, 3, 3)
    with pytest.raises(
        ValueError,
        match=r"^The number of input channels should be equal to filter channels \* groups\. "
        r"The difference is \[4\]: \[2\]; received x\.shape\[1\]=4, weight\.shape\[1\]=2, "
        r"groups=1$",
    ):
        deform_conv2d(x, off[:, :18], w)
    with pytest.raises(
        ValueError,
        match=r"^offset filter must divide deformable group size\. But received \[2\]: \[1\]; "
        r"received offset\.shape\[1\]=36, deformable_groups=1$",
    ):
        deform_conv2d(x, off, torch.randn(4, 4, 3, 3))
    with pytest.raises(
        ValueError,
        match=r"^mask filter must divide deformable group size\. But received \[2\]: \[1\]; "
        r"received mask\.shape\[1\]=18, deformable_groups=1$",
    ):
        deform_conv2d(x, off[:, :18], torch.randn(4, 4, 3, 3), mask=m)
    with pytest.raises(ValueError, match=r"^`stride` must be positive integers; received stride"):
        deform_conv2d(x, off[:, :18], torch.randn(4, 4, 3, 3), stride=0)
    with pytest.raises(TypeError, match=r"`input.dtype` must be float32 or float64"):
        fluid.layers.deformable_conv(x.half(), off[:, :18], m[:, :9], 4, 3)
    # DCNv1 ignores the mask, as Paddle's deformable_conv_v1
    init = fluid.ParamAttr(initializer=fluid.initializer.Normal(0, 1, seed=5))
    a = fluid.layers.deformable_conv(
        x, off[:, :18], m[:, :9], 4, 3, modulated=False, param_attr=init
    )
    b = fluid.layers.deformable_conv(x, off[:, :18], None, 4, 3, modulated=False, param_attr=init)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------
# Conv2DTranspose

CONVT = sorted(FIXTURES.glob("paddle_compat_convT_*.npz"))


@pytest.mark.parametrize("path", CONVT, ids=[p.stem for p in CONVT])
def test_conv2d_transpose_matches_paddle(path):
    z = load_fixture(path)
    dtype = str(z["x"].dtype)
    groups = int(z["groups"])
    c_out = z["weight"].shape[1] * groups
    layer = fluid.dygraph.Conv2DTranspose(
        z["x"].shape[1], c_out, list(z["weight"].shape[2:]),
        output_size=[int(v) for v in z["output_size"]] if "output_size" in z else None,
        padding=[int(v) for v in z["padding"]], stride=[int(v) for v in z["stride"]],
        dilation=[int(v) for v in z["dilation"]], groups=groups,
        bias_attr=None if "bias" in z else False, act=str(z["act"]) or None, dtype=dtype,
    )  # fmt: skip
    assert layer.weight.dtype == getattr(torch, dtype)
    layer.load_state_dict({k: torch.tensor(z[k]) for k in ("weight", "bias") if k in z})
    x = fluid.dygraph.to_variable(z["x"]).requires_grad_(True)
    out = layer(x)
    close_to_fixture(out, z["out"], "out")
    named = {"x": x, **dict(layer.named_parameters())}
    grads = torch.autograd.grad(out, list(named.values()), torch.tensor(z["grad_out"]))
    for k, g in zip(named, grads, strict=True):
        close_to_fixture(g, z[f"grad_{k}"], f"grad_{k}")


def test_conv2d_transpose_output_size_rules():
    x = torch.randn(1, 2, 5, 6)
    with pytest.raises(
        ValueError, match=r"^output_size should be list or int; received output_size=\(10, 12\)$"
    ):
        fluid.dygraph.Conv2DTranspose(2, 3, 3, output_size=(10, 12))
    for key, size in (("convT_output_size_high", [11, 12]), ("convT_output_size_low", [8, 11])):
        layer = fluid.dygraph.Conv2DTranspose(2, 3, 3, output_size=size, stride=2, padding=1)
        with pytest.raises(ValueError) as e:
            layer(x)
        assert str(e.value) == str(ERRORS[key])  # Paddle 3.3.1's text, exactly
    assert fluid.dygraph.Conv2DTranspose(2, 3, 3, output_size=10, stride=2, padding=1)(
        torch.randn(1, 2, 5, 5)
    ).shape == (1, 3, 10, 10)
    with pytest.raises(
        P.PaddleAssertionError, match=r"^param_attr should not be False in conv2d_transpose.$"
    ):
        fluid.dygraph.Conv2DTranspose(2, 3, 3, param_attr=False)
    with pytest.raises(ValueError, match=r"^The conv2d_transpose\.filter_size's length must be 2"):
        fluid.dygraph.Conv2DTranspose(2, 3, [3, 3, 3])
    with pytest.raises(
        ValueError, match="`dtype` must be 'float32' or 'float64'; received dtype='int8'"
    ):
        fluid.dygraph.Conv2DTranspose(2, 3, 3, dtype="int8")
    with pytest.raises(ValueError, match="`act` must be None or a Paddle activation"):
        fluid.dygraph.Conv2DTranspose(2, 3, 3, act="bogus")
    layer = fluid.dygraph.Conv2DTranspose(2, 3, 3, dtype="float64")
    assert layer.weight.dtype == F64 and list(layer.state_dict()) == ["weight", "bias"]
    assert layer.full_name().startswith("conv2_d_transpose_")
