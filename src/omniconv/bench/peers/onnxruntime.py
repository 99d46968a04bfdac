"""onnxruntime's ``DeformConv`` (ONNX opset 19; a CPU kernel from onnxruntime 1.25 on) against
its ``Conv``: two one-node graphs built with ``onnx.helper`` (weight and bias are
initializers, as in an exported model; ``x``, ``offset`` and ``mask`` are inputs), each run
in a session of its own on the CPUExecutionProvider with ``intra_op_num_threads`` = the
bench's thread count and one inter-op thread. Forward only (an inference runtime); each
timed call is ``session.run``, which returns the output as a numpy array."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._protocol import Case, Op, threads

OPSET = 19
#: each node's inputs in the operator's order
NODE_INPUTS = {
    "Conv": ("x", "weight", "bias"),
    "DeformConv": ("x", "weight", "offset", "bias", "mask"),
}


def _session(op_type: str, data: dict[str, np.ndarray]) -> Any:
    """A session running one ``op_type`` node (3x3, stride 1, padding 1) on ``data``'s
    weight and bias; its inputs are the node's other inputs, named as ``data``'s arrays."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    n, _, h, w = data["x"].shape
    c_out, _, kh, kw = data["weight"].shape
    attrs: dict[str, Any] = {"kernel_shape": [kh, kw], "pads": [1, 1, 1, 1], "strides": [1, 1]}
    attrs.update(dilations=[1, 1], group=1)
    if op_type == "DeformConv":
        attrs.update(offset_group=1)
    node = helper.make_node(op_type, list(NODE_INPUTS[op_type]), ["y"], **attrs)
    inputs = [k for k in NODE_INPUTS[op_type] if k not in ("weight", "bias")]
    graph = helper.make_graph(
        [node],
        op_type,
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, data[k].shape) for k in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, c_out, h, w])],
        initializer=[numpy_helper.from_array(data[k], k) for k in ("weight", "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def build(data: dict[str, np.ndarray]) -> Case:
    import onnxruntime as ort

    dense = _session("Conv", data)
    deform = _session("DeformConv", data)

    def forward(op: Op) -> Callable[[], Any]:
        return lambda: op(data)

    return Case(
        framework=f"onnxruntime {ort.__version__}",
        op="DCNv2",
        dense=lambda t: dense.run(None, {"x": t["x"]})[0],
        deform=lambda t: deform.run(None, {k: t[k] for k in ("x", "offset", "mask")})[0],
        forward=forward,
        to_numpy=np.asarray,
    )
