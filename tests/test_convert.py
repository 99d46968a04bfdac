"""Checkpoint mappings (omniconv.io.map_checkpoint and the front-ends' map_checkpoint),
end to end from checkpoints written by real Paddle 3.3.1 and MXNet 1.9.1 (and MegEngine
/ mmdet-format files) into omniconv models, and the omniconv convert / inspect commands."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from reference import ref_conv2d, ref_conv_transpose2d, ref_deform_conv2d
from torch import nn

import omniconv.compat.megengine.module as M
import omniconv.nn as onn
from omniconv import cli
from omniconv.compat import gluon
from omniconv.compat import paddle as P
from omniconv.compat.gluon import nn as gnn
from omniconv.compat.gluon.contrib import cnn
from omniconv.compat.megengine import megengine_to_torch
from omniconv.compat.mmcv.ops import DeformConv2dPack, ModulatedDeformConv2dPack
from omniconv.compat.paddle import Program, fluid
from omniconv.compat.paddle.vision.ops import DeformConv2D
from omniconv.io import MAPPINGS, map_checkpoint, read_checkpoint

FIX = Path(__file__).parent / "fixtures"
F32 = {"rtol": 1e-5, "atol": 1e-5}


def _convert(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["convert", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# =========================================================================== Paddle


class PaddleNet(nn.Module):
    """tools/fixtures/gen_checkpoints_paddle.py's Net on omniconv's Paddle front-end."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = P.nn.Conv2D(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)  # Paddle's BatchNorm2D: epsilon 1e-5
        self.offset = P.nn.Conv2D(4, 27, 3, padding=1)
        self.dcn = DeformConv2D(4, 4, 3, padding=1)
        self.up = P.nn.Conv2DTranspose(4, 2, 2, stride=2)
        self.head = nn.Linear(2, 3)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        om = self.offset(y)
        y = self.up(self.dcn(y, om[:, :18], torch.sigmoid(om[:, 18:])))
        return y, self.head(y.mean((2, 3)))


def paddle_program() -> Program:
    def build():
        img = fluid.layers.data(name="x", shape=[3, 8, 8], dtype="float32")
        y = fluid.nets.img_conv_group(
            input=img, conv_num_filter=[4], pool_size=2, pool_stride=2, conv_padding=1,
            conv_filter_size=3, conv_act="relu", conv_with_batchnorm=True,
        )  # fmt: skip
        off = fluid.layers.conv2d(y, 18, 3, padding=1)
        mask = fluid.layers.conv2d(y, 9, 3, padding=1, act="sigmoid")
        y = fluid.layers.deformable_conv(y, off, mask, num_filters=4, filter_size=3, padding=1)
        return fluid.layers.conv2d_transpose(y, num_filters=2, filter_size=2, stride=2)

    return Program(build)


PADDLE = np.load(FIX / "ckpt_paddle.npz")


def test_paddle_dygraph_checkpoint_gives_paddles_numbers():
    assert str(PADDLE["version"]) == "3.3.1"
    net = PaddleNet().eval()
    state = map_checkpoint(
        read_checkpoint(FIX / "ckpt_paddle_dygraph.pdparams"), "paddle", target=net
    )
    assert "bn.running_var" in state and "bn._variance" not in state
    net.load_state_dict(state)
    with torch.no_grad():
        y, logits = net(torch.from_numpy(PADDLE["x"]))
    assert float(y.std()) > 0.5
    np.testing.assert_allclose(y.numpy(), PADDLE["dygraph_out"], **F32)
    np.testing.assert_allclose(logits.numpy(), PADDLE["dygraph_logits"], **F32)


def test_paddle_static_checkpoint_loads_into_a_program():
    prog = paddle_program()
    x = torch.from_numpy(PADDLE["x"])
    prog(x)  # builds the parameters
    prog.eval()
    state = map_checkpoint(
        read_checkpoint(FIX / "ckpt_paddle_static.pdparams"), "paddle", target=prog
    )
    assert list(state) == list(prog.state_dict())  # Paddle's static names, kept
    prog.load_state_dict(state)
    with torch.no_grad():
        out = prog(x)
    assert float(out.std()) > 0.5
    np.testing.assert_allclose(out.numpy(), PADDLE["static_out"], **F32)


def test_paddle_convert_command(tmp_path, capsys):
    dst = tmp_path / "paddle.safetensors"
    code, out, err = _convert(
        capsys, str(FIX / "ckpt_paddle_dygraph.pdparams"), str(dst), "--map", "paddle"
    )
    assert code == 0 and err == ""
    assert out.strip() == (
        f"{dst}: 14 tensors (5.1 KiB) from paddle checkpoint "
        f"{FIX / 'ckpt_paddle_dygraph.pdparams'}, mapped by paddle, written as safetensors"
    )
    net = PaddleNet().eval()
    net.load_state_dict(read_checkpoint(dst))
    with torch.no_grad():
        y, logits = net(torch.from_numpy(PADDLE["x"]))
    np.testing.assert_allclose(y.numpy(), PADDLE["dygraph_out"], **F32)
    np.testing.assert_allclose(logits.numpy(), PADDLE["dygraph_logits"], **F32)


def test_paddle_mapping_rules():
    w = torch.randn(3, 2)
    state = {
        "fc.weight": w,  # Paddle's Linear: (in, out)
        "fc.bias": torch.zeros(2),
        "bn._mean": torch.zeros(5),
        "bn._variance": torch.ones(5),
        "bn.weight": torch.ones(5),
        "conv.weight": torch.randn(5, 3, 3, 3),
    }
    out = P.map_checkpoint(state)
    assert list(out) == [
        "fc.weight", "fc.bias", "bn.running_mean", "bn.running_var", "bn.weight", "conv.weight"
    ]  # fmt: skip
    assert torch.equal(out["fc.weight"], w.t())
    # a model settles what a 2-D weight is
    model = nn.ModuleDict({"emb": nn.Embedding(3, 2), "fc": nn.Linear(3, 2)})
    out = P.map_checkpoint(
        {"emb.weight": w, "fc.weight": w, "fc.bias": torch.zeros(2)}, target=model
    )
    assert torch.equal(out["emb.weight"], w) and torch.equal(out["fc.weight"], w.t())


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"conv.scale": torch.ones(1)}, r"must be Paddle parameter names .* received 'conv.scale'"),
        ({"conv2d_0.w_0_moment1_0": torch.ones(1)}, r"received 'conv2d_0.w_0_moment1_0'"),
        (
            {"conv2d_0.w_0": torch.ones(2, 1, 1, 1), "conv.weight": torch.ones(1)},
            r"all static names \(conv2d_0.w_0\) or all structured names",
        ),
        (
            {"bn._mean": torch.ones(4), "bn._variance": torch.ones(5)},
            r"`state_dict\['bn._variance'\]` must be 1-D and as long as the other parameters "
            r"of batch norm 'bn' \('bn._mean': \(4,\), 'bn._variance': \(5,\)\)",
        ),
        (
            {"batch_norm_0.w_1": torch.ones(4, 1)},
            r"`state_dict\['batch_norm_0.w_1'\]` must be 1-D .* received shape \(4, 1\)",
        ),
        ({"conv2d_0.w_0": torch.ones(2, 3)}, r"must be the 4-D weight of conv layer 'conv2d_0'"),
    ],
)
def test_paddle_mapping_errors(state, message):
    with pytest.raises(ValueError, match=message):
        P.map_checkpoint(state)


def test_the_pdopt_file_is_read_but_not_mapped(tmp_path, capsys):
    state = read_checkpoint(FIX / "ckpt_paddle_dygraph.pdopt")
    assert "conv2d_0.w_0_moment1_0" in state
    dst = tmp_path / "opt.safetensors"
    code, out, err = _convert(
        capsys, str(FIX / "ckpt_paddle_dygraph.pdopt"), str(dst), "--map", "paddle"
    )
    assert code == 1 and out == "" and not dst.exists()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        "omniconv convert: error: `state_dict` keys must be Paddle parameter names"
    )


# =========================================================================== MXNet


MXNET = np.load(FIX / "ckpt_mxnet.npz")
MXNET_BLOCKS = (
    "conv0",
    "batchnorm0",
    "relu",
    "conv1",
    "deformable_conv0",
    "modulated_deformable_conv0",
)


def mxnet_layers() -> list[nn.Module]:
    """tools/fixtures/gen_checkpoints_mxnet.py's network: Gluon front-end layers and a
    torch batch norm (Gluon's BatchNorm: eps 1e-5, running statistics in inference)."""
    return [
        gnn.Conv2D(4, 3, padding=1, in_channels=3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        gnn.Conv2DTranspose(4, 2, strides=2, in_channels=4),
        cnn.DeformableConvolution(4, 3, padding=1, in_channels=4),
        cnn.ModulatedDeformableConvolution(2, 3, padding=1, in_channels=4),
    ]


def _mxnet_out(net: nn.Module) -> np.ndarray:
    with torch.no_grad():
        return net.eval()(torch.from_numpy(MXNET["x"])).numpy()


def test_mxnet_save_parameters_file_gives_mxnets_numbers():
    assert str(MXNET["version"]) == "1.9.1"
    net = nn.Sequential(*mxnet_layers())
    state = map_checkpoint(read_checkpoint(FIX / "ckpt_mxnet_net.params"), "gluon", target=net)
    assert "1.weight" in state and "1.gamma" not in state
    net.load_state_dict(state)
    out = _mxnet_out(net)
    assert float(np.std(out)) > 0.5
    np.testing.assert_allclose(out, MXNET["out"], rtol=1e-5, atol=1e-4)


def test_mxnet_export_file_through_the_convert_command(tmp_path, capsys):
    dst = tmp_path / "mxnet.safetensors"
    src = FIX / "ckpt_mxnet_net-0000.params"
    code, out, _ = _convert(capsys, str(src), str(dst), "--map", "gluon")
    assert code == 0 and "16 tensors" in out and "from mxnet checkpoint" in out
    # export names: arg:/aux: dropped, Gluon's block prefixes as module names
    names = ["hybridsequential0_" + b if b != "relu" else b for b in MXNET_BLOCKS]
    net = nn.Sequential(collections.OrderedDict(zip(names, mxnet_layers(), strict=True)))
    net.load_state_dict(read_checkpoint(dst))
    np.testing.assert_allclose(_mxnet_out(net), MXNET["out"], rtol=1e-5, atol=1e-4)


def build_family_net():
    """tests/test_compat_gluon.py's family network (Gluon names conv0, deformable_conv0, ...)."""
    net = gnn.HybridSequential()
    with net.name_scope():
        net.add(
            gnn.Conv2DTranspose(4, 3, strides=2, output_padding=1, in_channels=2, activation="relu")
        )
        net.add(cnn.DeformableConvolution(4, 3, padding=1, num_deformable_group=2))
        net.add(
            cnn.ModulatedDeformableConvolution(
                2, (3, 2), padding=(1, 0), use_bias=False, offset_use_bias=False
            )
        )
    return net


def test_mxnet_export_names_resolve_through_a_gluon_target():
    family = np.load(FIX / "mxnet_compat_family.npz")
    with gluon.NameManager():
        net = build_family_net()
    state = map_checkpoint(
        read_checkpoint(FIX / "mxnet_compat_family-0000.params"), "gluon", target=net
    )
    assert list(state) == [
        "0.weight", "0.bias", "1.offset_weight", "1.offset_bias", "1.deformable_conv_weight",
        "1.deformable_conv_bias", "2.offset_weight", "2.deformable_conv_weight",
    ]  # fmt: skip
    net.load_state_dict(state)
    with torch.no_grad():
        out = net(torch.from_numpy(family["x"]))
    # float32 through three layers: test_compat_gluon.FAMILY_TOL's reasoning
    np.testing.assert_allclose(out.numpy(), family["out"], rtol=1e-5, atol=3e-5)


def test_mxnet_nhwc_weights():
    fx = np.load(FIX / "mxnet_compat_net.npz")  # nhwc_x, nhwc_out: NHWC
    raw = read_checkpoint(FIX / "mxnet_compat_nhwc.params")
    kw = {"stride": (2, 1), "padding": (1, 0), "groups": 2}
    assert raw["weight"].shape == (6, 3, 2, 2)  # OHWI: Conv2D(6, (3, 2), groups=2) on 4 channels
    x = torch.from_numpy(fx["nhwc_x"]).permute(0, 3, 1, 2)
    expected = fx["nhwc_out"].transpose(0, 3, 1, 2)
    # no model: every 4-D weight is taken as NHWC
    core = onn.Conv2d(4, 6, (3, 2), **kw)
    core.load_state_dict(map_checkpoint(raw, "gluon", layout="NHWC", target=core))
    with torch.no_grad():
        np.testing.assert_allclose(nn.functional.softsign(core(x)).numpy(), expected, **F32)
    # a Gluon NHWC layer as the target: its own layout decides (layout= is not needed)
    layer = gnn.Conv2D(
        6, (3, 2), strides=(2, 1), padding=(1, 0), groups=2, in_channels=4, layout="NHWC",
        activation="softsign",
    )  # fmt: skip
    layer.load_state_dict(map_checkpoint(raw, "gluon", target=layer))
    with torch.no_grad():
        out = layer(torch.from_numpy(fx["nhwc_x"]))
    np.testing.assert_allclose(out.numpy(), fx["nhwc_out"], **F32)
    # read as NCHW, the same bytes are another weight: the strict check catches it
    target = nn.Sequential(onn.Conv2d(4, 6, (3, 2), bias=False, **kw))
    with pytest.raises(
        ValueError, match=r"shapes '0.weight' \(6, 3, 2, 2\) \(target \(6, 2, 3, 2\)\)"
    ):
        map_checkpoint({"0.weight": raw["weight"]}, "gluon", target=target)


def test_gluon_mapping_names_and_errors():
    state = {
        "arg:net0_conv0_weight": torch.ones(2, 1, 1, 1),
        "aux:net0_batchnorm0_running_var": torch.ones(2),
        "arg:net0_batchnorm0_gamma": torch.ones(2),
        "features.3.beta": torch.ones(2),
        "bias": torch.ones(2),
    }
    assert list(gluon.map_checkpoint(state)) == [
        "net0_conv0.weight", "net0_batchnorm0.running_var", "net0_batchnorm0.weight",
        "features.3.bias", "bias",
    ]  # fmt: skip
    with pytest.raises(
        ValueError,
        match=r"must be Gluon parameter names ending in one of .* received 'conv0_alpha'",
    ):
        gluon.map_checkpoint({"conv0_alpha": torch.ones(1)})
    with pytest.raises(
        ValueError,
        match=r"must map to distinct names; received 'arg:a_weight', which maps to 'a.weight'",
    ):
        gluon.map_checkpoint({"a.weight": torch.ones(1), "arg:a_weight": torch.ones(1)})
    with pytest.raises(
        ValueError,
        match=r"`state_dict\['bn.running_mean'\]` must be 1-D and as long as the other "
        r"parameters of batch norm 'bn'",
    ):
        gluon.map_checkpoint({"bn.gamma": torch.ones(2), "bn.running_mean": torch.ones(3)})
    with pytest.raises(
        ValueError, match=r"`layout` must be 'NCHW' or 'NHWC'; received layout='NCWH'"
    ):
        gluon.map_checkpoint({}, layout="NCWH")


# =========================================================================== MegEngine


MEG = np.load(FIX / "ckpt_megengine.npz")


class CoreNet(nn.Module):
    """The MegEngine fixture's model on omniconv.nn (torch layouts)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = onn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)  # MegEngine's BatchNorm2d: eps 1e-5
        self.conv2 = onn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.offset = onn.Conv2d(8, 27, 3, padding=1)
        self.dcn = onn.DeformConv2d(8, 4, 3, padding=1, groups=2)
        self.up = onn.ConvTranspose2d(4, 4, 2, stride=2, groups=2)

    def forward(self, x):
        y = self.conv2(torch.relu(self.bn1(self.conv1(x))))
        om = self.offset(y)
        return self.up(self.dcn(y, om[:, :18], torch.sigmoid(om[:, 18:])))


def megengine_reference(raw: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """MegEngine's semantics in float64 (tests/reference.py), from its own shapes."""
    p = {k: v.double() for k, v in raw.items()}

    def vec(key):
        return p[key].reshape(-1)

    def grouped(key):  # (G, A, B, kh, kw) -> (G*A, B, kh, kw)
        w = p[key]
        return w.reshape(w.shape[0] * w.shape[1], *w.shape[2:])

    y = ref_conv2d(x.double(), p["conv1.weight"], vec("conv1.bias"), 1, (1, 1, 1, 1), 1, 1)
    y = (y - vec("bn1.running_mean")[:, None, None]) / torch.sqrt(
        vec("bn1.running_var")[:, None, None] + 1e-5
    ) * vec("bn1.weight")[:, None, None] + vec("bn1.bias")[:, None, None]
    y = ref_conv2d(torch.relu(y), grouped("conv2.weight"), vec("conv2.bias"), 1, (1, 1, 1, 1), 1, 2)
    om = ref_conv2d(y, p["offset.weight"], vec("offset.bias"), 1, (1, 1, 1, 1), 1, 1)
    y = ref_deform_conv2d(
        y, om[:, :18], grouped("dcn.weight"), vec("dcn.bias"), 1, 1, 1, torch.sigmoid(om[:, 18:])
    )
    return ref_conv_transpose2d(y, grouped("up.weight"), vec("up.bias"), 2, 0, 0, 2, 1)


@pytest.mark.parametrize("name", ["ckpt_megengine_net.pkl", "ckpt_megengine_net.mge"])
def test_megengine_checkpoint_through_the_convert_command(tmp_path, capsys, name):
    dst = tmp_path / "meg.safetensors"
    code, out, _ = _convert(capsys, str(FIX / name), str(dst), "--map", "megengine")
    assert code == 0 and "from megengine checkpoint" in out
    net = CoreNet().eval()
    net.load_state_dict(read_checkpoint(dst))
    x = torch.from_numpy(MEG["x"])
    with torch.no_grad():
        out = net(x)
    expected = megengine_reference(read_checkpoint(FIX / "ckpt_megengine_net.pkl"), x)
    assert float(expected.std()) > 0.5
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-4)


def test_megengine_mapping_agrees_with_the_frontend_layers():
    raw = read_checkpoint(FIX / "ckpt_megengine_net.pkl")
    mapped = map_checkpoint(raw, "megengine", target=CoreNet())
    layers = {
        "conv2": M.Conv2d(8, 8, 3, padding=1, groups=2),
        "dcn": M.DeformableConv2d(8, 4, 3, padding=1, groups=2),
        "up": M.ConvTranspose2d(4, 4, 2, stride=2, groups=2),
    }
    for name, layer in layers.items():
        own = {k.split(".", 1)[1]: raw[k].numpy() for k in raw if k.startswith(name + ".")}
        layer.load_state_dict(own)  # MegEngine's load_state_dict: MegEngine's shapes
        torch_layout = megengine_to_torch(layer.state_dict(), layer)
        for attr, value in torch_layout.items():
            assert torch.equal(mapped[f"{name}.{attr}"], value), (name, attr)
    # MegEngine front-end layers in a target keep MegEngine's shapes
    model = nn.ModuleDict({"conv2": M.Conv2d(8, 8, 3, padding=1, groups=2)})
    kept = map_checkpoint(
        {k: raw[k] for k in ("conv2.weight", "conv2.bias")}, "megengine", target=model
    )
    assert kept["conv2.weight"].shape == (2, 4, 4, 3, 3) and kept["conv2.bias"].shape == (
        1,
        8,
        1,
        1,
    )


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            {"conv.scale": torch.ones(1)},
            r"must name a weight, bias, running_mean, running_var .* received 'conv.scale'",
        ),
        (
            {"conv.weight": torch.ones(4, 2, 3, 3), "conv.bias": torch.ones(1, 5, 1, 1)},
            r"`state_dict\['conv.bias'\]` must be the bias of 2 or 4 channels its weight "
            r"\(4, 2, 3, 3\) allows",
        ),
        ({"conv.bias": torch.ones(1, 5, 2, 1)}, r"must be \(1, C, 1, 1\) or \(C,\)"),
        (
            {"bn.running_mean": torch.ones(1, 4, 1, 1), "bn.weight": torch.ones(5)},
            r"`state_dict\['bn.weight'\]` must be 1-D and as long as the other parameters of "
            r"batch norm 'bn' \('bn.running_mean': \(4,\), 'bn.weight': \(5,\)\)",
        ),
    ],
)
def test_megengine_mapping_errors(state, message):
    with pytest.raises(ValueError, match=message):
        map_checkpoint(state, "megengine")


# =========================================================================== mmcv / mmdet


class Bottleneck(nn.Module):
    def __init__(self, dcn: nn.Module) -> None:
        super().__init__()
        self.conv2 = dcn
        self.bn2 = nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(x)))


class Backbone(nn.Module):
    """tools/fixtures/gen_checkpoints_mmdet.py's backbone on omniconv's mmcv front-end."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(Bottleneck(DeformConv2dPack(8, 8, 3, padding=1, bias=False)))
        self.layer2 = nn.Sequential(
            Bottleneck(ModulatedDeformConv2dPack(8, 8, 3, stride=2, padding=1, bias=False))
        )

    def forward(self, x):
        return self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x)))))


def mmcv_reference(s: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """mmcv's semantics in float64 (torchvision's DCN numbers; DCNv2 mask = sigmoid of
    the last third of the offset conv), from the checkpoint as written (legacy keys)."""
    p = {k.removeprefix("backbone."): v.double() for k, v in s.items()}

    def bn(y, key):
        shape = (1, -1, 1, 1)
        return torch.relu(
            (y - p[f"{key}.running_mean"].view(shape))
            / torch.sqrt(p[f"{key}.running_var"].view(shape) + 1e-5)
            * p[f"{key}.weight"].view(shape)
            + p[f"{key}.bias"].view(shape)
        )

    y = bn(ref_conv2d(x.double(), p["conv1.weight"], None, 1, (1, 1, 1, 1), 1, 1), "bn1")
    off = ref_conv2d(
        y, p["layer1.0.conv2_offset.weight"], p["layer1.0.conv2_offset.bias"], 1, (1, 1, 1, 1), 1, 1
    )
    y = bn(ref_deform_conv2d(y, off, p["layer1.0.conv2.weight"], None, 1, 1, 1), "layer1.0.bn2")
    om = ref_conv2d(
        y,
        p["layer2.0.conv2.conv_offset.weight"],
        p["layer2.0.conv2.conv_offset.bias"],
        2,
        (1, 1, 1, 1),
        1,
        1,
    )
    y = ref_deform_conv2d(
        y, om[:, :18], p["layer2.0.conv2.weight"], None, 2, 1, 1, torch.sigmoid(om[:, 18:])
    )
    return bn(y, "layer2.0.bn2")


def test_mmdet_checkpoint_through_the_convert_command(tmp_path, capsys):
    src = FIX / "ckpt_mmdet_dcn.pth"
    dst = tmp_path / "mmdet.safetensors"
    code, out, _ = _convert(capsys, str(src), str(dst), "--map", "mmcv")
    assert code == 0 and "22 tensors" in out and "from torch checkpoint" in out
    converted = read_checkpoint(dst)
    assert "backbone.layer1.0.conv2.conv_offset.weight" in converted  # the legacy key, renamed
    assert "backbone.layer1.0.conv2_offset.weight" not in converted
    state = {k.removeprefix("backbone."): v for k, v in converted.items()}
    backbone = Backbone().eval()
    backbone.load_state_dict(state, strict=True)
    x = torch.from_numpy(np.load(FIX / "ckpt_mmdet.npz")["x"])
    with torch.no_grad():
        out = backbone(x)
    expected = mmcv_reference(torch.load(src, weights_only=True)["state_dict"], x)
    assert out.shape == (2, 8, 6, 6) and float(expected.std()) > 0.1
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-4)


def test_mmcv_mapping_rules():
    w = torch.randn(8, 8, 3, 3)
    state = collections.OrderedDict(
        [
            ("module.a.conv2.weight", w),
            ("module.a.conv2_offset.weight", torch.randn(18, 8, 3, 3)),
            ("module.a.conv2_offset.bias", torch.randn(18)),
            ("module.b.conv2.weight", w),
            ("module.b.conv2_offset.weight", torch.randn(27, 8, 3, 3)),
            ("module.b.conv2_offset.bias", torch.randn(27)),
        ]
    )
    state._metadata = {"module.b.conv2": {"version": 2}}  # b is already a version-2 layer
    out = map_checkpoint(state, "mmcv")
    assert sorted(out) == [
        "a.conv2.conv_offset.bias", "a.conv2.conv_offset.weight", "a.conv2.weight",
        "b.conv2.weight", "b.conv2_offset.bias", "b.conv2_offset.weight",
    ]  # fmt: skip
    assert out._metadata == {"b.conv2": {"version": 2}}
    # with a model: only its *Pack layers take the rule (a separate offset conv stays)
    from omniconv.compat.mmcv.ops import DeformConv2d

    model = nn.Module()
    model.conv2 = DeformConv2d(8, 8, 3, padding=1, bias=False)
    model.conv2_offset = nn.Conv2d(8, 18, 3, padding=1)
    legacy = {
        "conv2.weight": w,
        "conv2_offset.weight": torch.randn(18, 8, 3, 3),
        "conv2_offset.bias": torch.randn(18),
    }
    assert sorted(map_checkpoint(legacy, "mmcv", target=model)) == sorted(legacy)
    with pytest.raises(
        ValueError, match=r"conv_offset.weight'\]` must be an offset conv for the 3x3 kernel"
    ):
        map_checkpoint({"c.weight": w, "c_offset.weight": torch.randn(20, 8, 3, 3)}, "mmcv")


def test_strict_target_check_lists_what_is_wrong():
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3))
    state = {"0.weight": torch.ones(3, 2, 1, 1), "0.bias": torch.ones(4), "2.bias": torch.ones(1)}
    with pytest.raises(ValueError) as err:
        map_checkpoint(state, "mmcv", target=model)
    text = str(err.value)
    assert text.startswith(
        "the mapped mmcv checkpoint must have the target's keys and shapes; received"
    )
    assert "missing keys '1.bias', '1.running_mean', '1.running_var', '1.weight'" in text
    assert "num_batches_tracked" not in text  # torch fills it in
    assert "unexpected keys '2.bias'" in text and "'0.bias' (4,) (target (3,))" in text
    with pytest.raises(
        TypeError,
        match=r"`target` must be None, a torch.nn.Module or a state dict; received target=<int>",
    ):
        map_checkpoint({}, "paddle", target=3)


def test_mapping_names():
    assert sorted(MAPPINGS) == ["gluon", "megengine", "mmcv", "paddle"]
    with pytest.raises(
        ValueError,
        match=r"`mapping` must be one of gluon, megengine, mmcv, paddle; received mapping='tf'",
    ):
        map_checkpoint({}, "tf")
    with pytest.raises(
        TypeError,
        match=r"`state_dict` must be a mapping of names to tensors; received state_dict=<list>",
    ):
        map_checkpoint([], "paddle")
    with pytest.raises(
        TypeError,
        match=r"`state_dict\['w'\]` must be a numpy array or a torch.Tensor; "
        r"received state_dict\['w'\]=<str>",
    ):
        map_checkpoint({"w": "x"}, "megengine")


# =========================================================================== the commands


def test_help_texts_are_plain_text(capsys):
    for command in ("convert", "inspect"):
        with pytest.raises(SystemExit) as exc:
            cli.main([command, "-h"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: omniconv {command}")
        assert "``" not in text and ":func:" not in text
    with pytest.raises(SystemExit):
        cli.main(["convert", "-h"])
    text = capsys.readouterr().out
    for name in MAPPINGS:
        assert f"  {name} " in text
    assert "--framework" in text and "--progress" in text and "temporary file" in text


def test_inspect(capsys):
    assert cli.main(["inspect", str(FIX / "ckpt_megengine_net.mge")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{FIX / 'ckpt_megengine_net.mge'}: megengine checkpoint (pickle protocol 5)"
    assert lines[1] == "14 tensors, 10.6 KiB"
    assert lines[2].split() == ["name", "shape", "dtype"]
    assert "conv2.weight      (2, 4, 4, 3, 3)  float32" in lines
    assert cli.main(["inspect", "--json", str(FIX / "ckpt_mmdet_dcn.pth")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "torch" and info["entry"] == "state_dict"
    assert info["container"] == "torch zip archive"
    assert {"name": "backbone.bn1.num_batches_tracked", "shape": [], "dtype": "int64"} in info[
        "tensors"
    ]
    assert info["metadata"] == {"meta": "a dict of 6 entries", "optimizer": "a dict of 2 entries"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["convert", "{missing}", "{dst}"], "No such file or directory"),
        (["convert", "{evil}", "{dst}"], "refusing to unpickle global 'posix.system'"),
        (["convert", "{pdparams}", "{tmp}/x.npz"], "`DST` must end in .safetensors, .pt, .pth"),
        (
            ["convert", "{pdparams}", "{dst}", "--framework", "torch"],
            "framework='torch' was asked for",
        ),
        (
            ["convert", "{pdparams}", "{dst}", "--layout", "NHWC"],
            "`--layout` must be used with `--map gluon`",
        ),
        (["convert", "{pdparams}", "{dst}", "--map", "megengine"], "must name a weight, bias"),
        (["inspect", "{truncated}"], "truncated or malformed pickle data"),
    ],
)
def test_command_errors_are_one_line(tmp_path, capsys, argv, message):
    evil = tmp_path / "evil.pth"

    class Touch:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"x": Touch()}, evil)
    truncated = tmp_path / "cut.pdparams"
    truncated.write_bytes((FIX / "ckpt_paddle_dygraph.pdparams").read_bytes()[:999])
    values = {
        "missing": tmp_path / "nope.pth", "evil": evil, "dst": tmp_path / "out.safetensors",
        "pdparams": FIX / "ckpt_paddle_dygraph.pdparams", "tmp": tmp_path, "truncated": truncated,
    }  # fmt: skip
    before = set(os.listdir(tmp_path))
    code = cli.main([a.format(**values) for a in argv])
    out = capsys.readouterr()
    assert code == 1 and out.out == ""
    assert out.err.startswith(f"omniconv {argv[0]}: error: ") and out.err.count("\n") == 1
    assert message in out.err and "Traceback" not in out.err
    assert set(os.listdir(tmp_path)) == before  # nothing written, nothing run


def test_convert_to_pt_with_a_progress_bar(tmp_path, capsys):
    dst = tmp_path / "out.pt"
    code, out, err = _convert(
        capsys, str(FIX / "ckpt_megengine_net.pkl"), str(dst), "--progress", "-q"
    )
    assert code == 0 and out == ""
    assert "reading ckpt_megengine_net.pkl" in err and "writing out.pt" in err and "100/100" in err
    loaded = torch.load(dst, weights_only=True)
    raw = read_checkpoint(FIX / "ckpt_megengine_net.pkl")
    assert list(loaded) == list(raw) and all(torch.equal(loaded[k], raw[k]) for k in raw)
    dst2 = tmp_path / "out.safetensors"
    code, _, err = _convert(capsys, str(FIX / "ckpt_megengine_net.pkl"), str(dst2), "--progress")
    assert code == 0 and "writing up.weight" in err and "14/14" in err
    code, _, err = _convert(capsys, str(FIX / "ckpt_megengine_net.pkl"), str(dst2))
    assert code == 0 and err == ""  # small files: no bar
