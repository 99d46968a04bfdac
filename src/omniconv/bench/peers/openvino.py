"""OpenVINO's opset-8 ``DeformableConvolution`` with a mask (DCNv2) against its opset-1
``Convolution``: two models built with the ``openvino`` Python API (weight and bias are
constants, the bias an ``Add``, as in a converted model; ``x``, ``offset`` and ``mask`` are
parameters), each compiled for CPU with ``INFERENCE_NUM_THREADS`` = the bench's thread count,
float32 inference precision (the CPU plugin's default is bfloat16 where the CPU has it) and
the latency hint. ``bilinear_interpolation_pad=True``: a sample within one pixel outside the
image still weighs the border row or column, as omniconv and torchvision do (with False,
OpenVINO reads zero for any sample outside [0, H - 1] x [0, W - 1] and disagrees near the
border). Forward only (an inference runtime); each timed call is one synchronous
``InferRequest.infer`` on shared input memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._protocol import Case, Op, threads

#: sample points within one pixel outside the image interpolate with the border (as omniconv)
BILINEAR_INTERPOLATION_PAD = True


def _compile(kind: str, data: dict[str, np.ndarray]) -> Any:
    import openvino as ov
    import openvino.opset1 as ops1
    import openvino.opset8 as ops8

    names = ("x", "offset", "mask") if kind == "deform" else ("x",)
    params = {k: ops1.parameter(list(data[k].shape), np.float32, name=k) for k in names}
    weight = ops1.constant(data["weight"])
    geometry = {"strides": [1, 1], "pads_begin": [1, 1], "pads_end": [1, 1], "dilations": [1, 1]}
    if kind == "deform":
        conv = ops8.deformable_convolution(
            params["x"],
            params["offset"],
            weight,
            mask=params["mask"],
            bilinear_interpolation_pad=BILINEAR_INTERPOLATION_PAD,
            **geometry,
        )
    else:
        conv = ops1.convolution(params["x"], weight, **geometry)
    out = ops1.add(conv, ops1.constant(data["bias"].reshape(1, -1, 1, 1)))
    model = ov.Model([out], [params[k] for k in names], kind)
    config = {
        "INFERENCE_NUM_THREADS": threads(),
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
    }
    return ov.Core().compile_model(model, "CPU", config)


def build(data: dict[str, np.ndarray]) -> Case:
    import openvino as ov

    requests = {kind: _compile(kind, data).create_infer_request() for kind in ("dense", "deform")}

    def run(kind: str, t: dict[str, np.ndarray]) -> Any:
        names = ("x", "offset", "mask") if kind == "deform" else ("x",)
        res = requests[kind].infer({k: t[k] for k in names}, share_inputs=True)
        return res[0]

    def forward(op: Op) -> Callable[[], Any]:
        return lambda: op(data)

    return Case(
        framework=f"openvino {ov.__version__.split('-')[0]}",
        op="DCNv2",
        dense=lambda t: run("dense", t),
        deform=lambda t: run("deform", t),
        forward=forward,
        to_numpy=lambda out: np.array(out, copy=True),
    )
