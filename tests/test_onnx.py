"""``torch.onnx.export`` of omniconv models: one standard ONNX ``DeformConv`` (opset 19) per
deformable layer and standard ops for the rest, with both of torch's exporters (the
torch.export-based default and the TorchScript one), a dynamic batch dimension, and
onnxruntime's CPU provider computing what eager PyTorch computes.

Each model is exported once (batch 2) per exporter and run at other batch sizes. ONNX's
``DeformConv`` semantics are checked against the float64 reference (``tests/reference.py``)
with onnxruntime's double kernel and with ONNX's own reference implementation
(``onnx.reference``), on offsets that put samples exactly on and beyond the image borders.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import onnx
import onnx.reference
import onnxruntime as ort
import pytest
import torch
from _helpers import F64, H_B, TOL64, W_B, border_offsets, out_size, rand
from onnx import helper
from reference import ref_deform_conv2d

import omniconv.onnx
from omniconv.compat import gluon
from omniconv.compat.gluon import init as ginit
from omniconv.compat.gluon import nn as gnn
from omniconv.compat.gluon.contrib import cnn
from omniconv.compat.mmcv.ops import ModulatedDeformConv2dPack
from omniconv.compat.paddle import nn as pnn
from omniconv.compat.paddle.vision.ops import DeformConv2D as PaddleDeformConv2D
from omniconv.compat.torchvision.ops import DeformConv2d as TorchvisionDeformConv2d
from omniconv.kernels import deform_onnx
from omniconv.nn import Conv2d, ConvTranspose2d, DeformConv2d, DeformConv2dPack

EXPORTERS = ["dynamo", "torchscript"]
#: onnxruntime (float32) against eager float32
TOL = {"rtol": 1e-4, "atol": 1e-4}


def export(model, args, names, exporter, path, **kwargs):
    """``torch.onnx.export`` with every input's dim 0 dynamic; the written model."""
    if exporter == "dynamo":
        dims = {"dynamic_shapes": tuple({0: "batch"} for _ in args)}
    else:
        dims = {"dynamic_axes": {name: {0: "batch"} for name in names}}
    with warnings.catch_warnings():
        # the TorchScript exporter's deprecation notice and its tracer's notes on the
        # shape checks (constant for a given layer)
        warnings.simplefilter("ignore", (DeprecationWarning, torch.jit.TracerWarning))
        torch.onnx.export(
            model, args, str(path), dynamo=exporter == "dynamo", input_names=list(names),
            **dims, **kwargs,
        )  # fmt: skip
    return onnx.load(str(path))


def run(path, names, tensors):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: t.detach().numpy() for name, t in zip(names, tensors, strict=True)}
    return [torch.from_numpy(a) for a in session.run(None, feeds)]


def attributes(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def deform_nodes(model):
    return [n for n in model.graph.node if n.op_type == "DeformConv"]


def assert_standard(model, deformable_layers):
    """Exactly one ``DeformConv`` per deformable layer, every node and opset in ONNX's
    default domain (no custom op left), opset >= 19, a valid model, symbolic batch dims."""
    onnx.checker.check_model(model, full_check=True)
    assert len(deform_nodes(model)) == deformable_layers
    assert {n.domain for n in model.graph.node} == {""}
    assert [(o.domain, o.version >= deform_onnx.OPSET) for o in model.opset_import] == [("", True)]
    assert not model.functions
    for value in model.graph.input:
        dim = value.type.tensor_type.shape.dim[0]
        assert dim.dim_param and not dim.HasField("dim_value"), value.name


# ----------------------------------------------------------------------------- core layers

H, W = 7, 7
V2 = {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 2), "dilation": (2, 1)}
V2_OUT = out_size(H, W, V2["kernel_size"], V2["stride"], V2["padding"], V2["dilation"])


class Zoo(torch.nn.Module):
    """Dense convs around three deformable layers: a ``DeformConv2dPack`` (offset
    predictor conv, ``2 * sigmoid`` mask), a DCNv1 whose offsets are an input, and a DCNv2
    with conv groups, deformable groups, and a stride, padding and dilation that differ per
    axis, without bias, whose offsets and mask are inputs."""

    NAMES = ("x", "off1", "off2", "mask2")

    def __init__(self):
        super().__init__()
        self.stem = Conv2d(3, 4, 3, padding=1)
        self.pack = DeformConv2dPack(4, 4, 3, padding=1)
        torch.nn.init.normal_(self.pack.conv_offset.weight, std=0.5)  # offsets and mask vary
        self.v1 = DeformConv2d(4, 4, 3, padding=1, modulated=False)
        self.v2 = DeformConv2d(4, 6, **V2, groups=2, deformable_groups=2, bias=False)
        self.head = ConvTranspose2d(6, 3, 3, stride=2, padding=1, output_padding=1, groups=3)

    def forward(self, x, off1, off2, mask2):
        y = self.v1(self.pack(self.stem(x)), off1)
        return self.head(self.v2(y, off2, mask2))

    @staticmethod
    def inputs(n, seed):
        """Offsets of scale 3 on a 7x7 image: many samples land outside it."""
        g = torch.Generator().manual_seed(seed)
        return (
            torch.randn(n, 3, H, W, generator=g),
            3 * torch.randn(n, 18, H, W, generator=g),
            3 * torch.randn(n, 24, *V2_OUT, generator=g),
            torch.rand(n, 12, *V2_OUT, generator=g),
        )


@pytest.fixture(scope="module", params=EXPORTERS)
def zoo(request, tmp_path_factory):
    model = Zoo().eval()
    path = tmp_path_factory.mktemp("onnx") / f"zoo_{request.param}.onnx"
    proto = export(model, Zoo.inputs(2, seed=0), Zoo.NAMES, request.param, path)
    return request.param, model, path, proto


def test_zoo_graph_is_standard_ops_with_one_deform_conv_per_layer(zoo):
    exporter, _, _, proto = zoo
    assert_standard(proto, deformable_layers=3)
    pack, v1, v2 = deform_nodes(proto)  # in graph order
    square = {"dilations": [1, 1], "group": 1, "kernel_shape": [3, 3], "offset_group": 1,
              "pads": [1, 1, 1, 1], "strides": [1, 1]}  # fmt: skip
    assert attributes(pack) == attributes(v1) == square
    assert attributes(v2) == {
        "dilations": [2, 1],
        "group": 2,
        "kernel_shape": [3, 2],
        "offset_group": 2,
        "pads": [1, 2, 1, 2],
        "strides": [2, 1],
    }
    # inputs X, W, offset, B[, mask]: DCNv1 has no mask; the DCNv2 layer has no bias, which
    # the torch.export-based exporter leaves out and the TorchScript one passes as zeros
    assert len(pack.input) == 5 and len(v1.input) == 4 and len(v2.input) == 5
    assert v1.input[2] == "off1" and v2.input[2] == "off2" and v2.input[4] == "mask2"
    assert (v2.input[3] == "") == (exporter == "dynamo")


@pytest.mark.parametrize("n", [1, 5])
def test_zoo_runs_in_onnxruntime_at_other_batch_sizes(zoo, n):
    _, model, path, _ = zoo
    inputs = Zoo.inputs(n, seed=n)
    assert (inputs[1].abs() > H).any() and (inputs[2].abs() > W).any()  # outside the image
    (out,) = run(path, Zoo.NAMES, inputs)
    with torch.no_grad():
        want = model(*inputs)
    assert out.shape == want.shape and out.shape[0] == n
    torch.testing.assert_close(out, want, **TOL)


# ----------------------------------------------------------------------------- semantics

# kernel, stride, padding and dilation that differ per axis, on the H_B x W_B image of
# border_offsets
KERNEL, STRIDE, PADDING, DILATION = (3, 2), (2, 1), (2, 1), (2, 1)
DG = 3


class Pair64(torch.nn.Module):
    """A DCNv2 and a DCNv1 (no bias) of one geometry, float64, sharing offsets."""

    NAMES = ("x", "offset", "mask")

    def __init__(self):
        super().__init__()
        geometry = (KERNEL, STRIDE, PADDING, DILATION, 2, DG)
        self.v2 = DeformConv2d(6, 4, *geometry, dtype=F64)
        self.v1 = DeformConv2d(6, 4, *geometry, modulated=False, bias=False, dtype=F64)

    def forward(self, x, offset, mask):
        return self.v2(x, offset, mask), self.v1(x, offset)

    @staticmethod
    def inputs(n, seed):
        ho, wo = out_size(H_B, W_B, KERNEL, STRIDE, PADDING, DILATION)
        g = torch.Generator().manual_seed(seed)
        offset = border_offsets(n, DG, KERNEL, ho, wo, STRIDE, PADDING, DILATION, seed)
        mask = torch.rand(n, DG * 6, ho, wo, generator=g, dtype=F64) * 1.5 - 0.25
        return rand(n, 6, H_B, W_B, seed=seed), offset, mask

    def reference(self, x, offset, mask):
        p = (STRIDE, PADDING, DILATION)
        v2 = ref_deform_conv2d(x, offset, self.v2.weight, self.v2.bias, *p, mask=mask)
        v1 = ref_deform_conv2d(x, offset, self.v1.weight, None, *p)
        return v2.detach(), v1.detach()


@pytest.fixture(scope="module")
def pair64(tmp_path_factory):
    model = Pair64().eval()
    path = tmp_path_factory.mktemp("onnx") / "pair64.onnx"
    proto = export(model, Pair64.inputs(2, seed=0), Pair64.NAMES, "dynamo", path)
    assert_standard(proto, deformable_layers=2)
    return model, path, proto


@pytest.mark.parametrize("seed", [1, 2])
def test_onnxruntime_samples_the_border_as_the_reference(pair64, seed):
    """onnxruntime's DeformConv (double kernel) on samples exactly at -1, -0.5, 0, H-1,
    H-0.5, H and beyond: the float64 reference's numbers (zero outside (-1, H) x (-1, W),
    off-image corners zero), for DCNv2 and for DCNv1 (ONNX's mask input left out)."""
    model, path, _ = pair64
    inputs = Pair64.inputs(3, seed)
    outs = run(path, Pair64.NAMES, inputs)
    for out, want in zip(outs, model.reference(*inputs), strict=True):
        torch.testing.assert_close(out, want, **TOL64)


def test_onnx_reference_implementation_samples_the_border_as_the_reference(pair64):
    """ONNX's own DeformConv reference (onnx.reference: GridSample, align_corners=1, zero
    padding) computes the same function."""
    model, _, proto = pair64
    inputs = Pair64.inputs(1, seed=3)
    evaluator = onnx.reference.ReferenceEvaluator(proto)
    outs = evaluator.run(None, {k: t.numpy() for k, t in zip(Pair64.NAMES, inputs, strict=True)})
    for out, want in zip(outs, model.reference(*inputs), strict=True):
        torch.testing.assert_close(torch.from_numpy(np.asarray(out)), want, **TOL64)


# ----------------------------------------------------------------------------- front-ends


class FrontEnds(torch.nn.Module):
    """The framework front-ends' layers: Paddle ``nn.Conv2D`` (four-sided padding, a
    ``Pad`` or the conv's pads) and ``vision.ops.DeformConv2D``, Gluon ``nn.Conv2D`` and
    ``contrib.cnn.DeformableConvolution`` (MXNet's DCNv1 border rule, standard ops around
    the DeformConv), torchvision ``ops.DeformConv2d``, mmcv ``ModulatedDeformConv2dPack``."""

    def __init__(self):
        super().__init__()
        self.paddle = pnn.Conv2D(3, 4, 3, padding=[0, 1, 1, 2])
        with gluon.NameManager():
            self.gluon = gnn.Conv2D(4, 3, padding=1, in_channels=4, activation="relu")
            self.gluon_dcn = cnn.DeformableConvolution(
                4, 3, padding=1, in_channels=4, num_deformable_group=2,
                offset_weight_initializer=ginit.Normal(0.5),
            )  # fmt: skip
        self.gluon.initialize(ginit.Normal(0.3))
        self.gluon_dcn.initialize(ginit.Normal(0.3))
        self.predict = torch.nn.Conv2d(4, 27, 3, padding=1)
        self.torchvision = TorchvisionDeformConv2d(4, 4, 3, padding=1)
        self.mmcv = ModulatedDeformConv2dPack(4, 4, 3, padding=1)
        torch.nn.init.normal_(self.mmcv.conv_offset.weight, std=0.3)
        self.paddle_dcn = PaddleDeformConv2D(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.gluon(self.paddle(x))
        om = self.predict(x)
        x = self.mmcv(self.torchvision(x, om[:, :18], om[:, 18:].sigmoid()))
        x = self.gluon_dcn(x)
        om = self.predict(x)
        return self.paddle_dcn(x, om[:, :18], om[:, 18:].sigmoid())


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_front_end_layers_export(exporter, tmp_path):
    model = FrontEnds().eval()
    x = torch.randn(2, 3, 9, 9)
    model(x)  # Gluon's deferred initialisation (as MXNet's) runs at the first forward
    path = tmp_path / "front_ends.onnx"
    proto = export(model, (x,), ["x"], exporter, path)
    assert_standard(proto, deformable_layers=4)
    x = torch.randn(3, 3, 9, 9)
    (out,) = run(path, ["x"], [x])
    with torch.no_grad():
        torch.testing.assert_close(out, model(x), **TOL)


# ----------------------------------------------------------------------------- the rest


def test_exported_program_with_the_translation_table(tmp_path):
    """An ExportedProgram captured beforehand holds the op itself: the exporter translates
    it through ``custom_translation_table=omniconv.onnx.TRANSLATIONS``."""
    model = Zoo().eval()
    args = Zoo.inputs(2, seed=0)
    batch = torch.export.Dim("batch")
    ep = torch.export.export(model, args, dynamic_shapes=tuple({0: batch} for _ in args))
    targets = [n.target for n in ep.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.omniconv.deform_conv2d.default) == 3
    path = tmp_path / "ep.onnx"
    program = torch.onnx.export(ep, custom_translation_table=omniconv.onnx.TRANSLATIONS)
    program.save(str(path))
    proto = onnx.load(str(path))
    assert_standard(proto, deformable_layers=3)
    assert [attributes(n) for n in deform_nodes(proto)][2]["offset_group"] == 2
    inputs = Zoo.inputs(5, seed=5)
    (out,) = run(path, [i.name for i in proto.graph.input], inputs)
    with torch.no_grad():
        torch.testing.assert_close(out, model(*inputs), **TOL)


def test_torchscript_exporter_names_the_opset_it_needs(tmp_path):
    layer = DeformConv2d(2, 2, 3, modulated=False).eval()
    args = (torch.randn(1, 2, 5, 5), torch.randn(1, 18, 3, 3))
    with pytest.raises(ValueError, match=r"`opset_version` must be >= 19 .*opset_version=18"):
        export(layer, args, ["x", "offset"], "torchscript", tmp_path / "m.onnx", opset_version=18)


def test_eager_and_tracing_are_unaffected_by_an_export(zoo):
    """Outside ``torch.onnx.export`` the op runs (the node is only written while the
    exporter captures a model): eager values, and one op node under torch.export."""
    _, model, _, _ = zoo
    args = Zoo.inputs(1, seed=7)
    ep = torch.export.export(model, args)
    nodes = Counter(n.target for n in ep.graph.nodes if n.op == "call_function")
    assert nodes[torch.ops.omniconv.deform_conv2d.default] == 3
    assert not any("onnx" in str(t) for t in nodes)
    torch.testing.assert_close(ep.module()(*args), model(*args))


def test_an_eager_call_during_an_export_runs_the_op(monkeypatch):
    """``torch.onnx.is_in_onnx_export()`` is process-wide: a call on real tensors while it
    is set (another thread exporting) computes the convolution, not the placeholder."""
    model = Zoo().eval()
    args = Zoo.inputs(2, seed=9)
    tv = TorchvisionDeformConv2d(4, 4, 3, padding=1)
    tv_args = (args[0][:, :1].expand(-1, 4, -1, -1), args[1], torch.rand(2, 9, H, W))
    with torch.no_grad():
        want, want_tv = model(*args), tv(*tv_args)
        monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
        assert torch.onnx.is_in_onnx_export()
        torch.testing.assert_close(model(*args), want, rtol=0, atol=0)
        torch.testing.assert_close(tv(*tv_args), want_tv, rtol=0, atol=0)
