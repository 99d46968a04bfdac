"""onnxruntime's ``DeformConv`` (ONNX opset 19; a CPU kernel from onnxruntime 1.25 on) against
its ``Conv``: two one-node graphs built with ``onnx.helper`` (weight and bias are
initializers, as in an exported model; ``x``, ``offset`` and ``mask`` are inputs), run on the
CPUExecutionProvider. Forward only (an inference runtime); each timed call is
``session.run``, which returns the output as a numpy array.

Threads: both sessions share the process's global intra-op thread pool of the bench's
thread count (one inter-op thread), onnxruntime's way to run several sessions in one
process. With a pool per session (``intra_op_num_threads``) each pool's threads keep
spinning after their session's run and take the cores from the other session's next run:
measured here, that doubled the DCN's time (2,64,56: 7.5 ms instead of 3.4 ms); a pool
per session without spinning measured the same as the shared pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._protocol import Case, Op, threads

OPSET = 19
#: the global thread pool's size once this process has created it
_POOL: list[int] = []
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
    if not _POOL:  # before the first session: the pool is created with the environment
        ort.set_global_thread_pool_sizes(threads(), 1)
        _POOL.append(threads())
    opts = ort.SessionOptions()
    opts.use_per_session_threads = False
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
