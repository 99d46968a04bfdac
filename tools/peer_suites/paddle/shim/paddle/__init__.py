"""A stand-in for the `paddle` package, just large enough to run Paddle's own conv2d_transpose
and deformable_conv test modules against omniconv.compat.paddle (outside the omniconv repo).

Static-graph pieces (static.data, Executor, Program) are eager stand-ins: static.data returns a
zero tensor (unknown dims -> 1), Executor.run returns the fetched tensors as numpy arrays.
"""

import contextlib
import types

import numpy as np
import torch

import omniconv.compat.paddle as _P
from omniconv.compat.paddle import nn as _nn
from omniconv.compat.paddle.nn import functional as _F

# Paddle tensors have .astype; the tests call it on the tensors they build
torch.Tensor.astype = lambda self, dtype: self.to(_dtype(dtype))

float16, float32, float64 = torch.float16, torch.float32, torch.float64


def _dtype(d):
    if isinstance(d, torch.dtype):
        return d
    return {
        "float16": torch.float16,
        "float32": torch.float32,
        "float64": torch.float64,
        "int32": torch.int32,
        "int64": torch.int64,
    }[str(np.dtype(d)) if not isinstance(d, str) else d]


def enable_static():
    pass


def disable_static():
    pass


def in_dynamic_mode():
    return True


class CPUPlace:
    pass


def to_tensor(data, dtype=None, place=None, stop_gradient=True):
    t = torch.as_tensor(np.asarray(data))
    return t if dtype is None else t.to(_dtype(dtype))


def ones(shape, dtype="float32"):
    return torch.ones(shape, dtype=_dtype(dtype))


def randn(shape, dtype="float32"):
    return torch.randn(shape, dtype=_dtype(dtype))


def uniform(shape, dtype="float32", min=-1.0, max=1.0, seed=0):
    return torch.empty(shape, dtype=_dtype(dtype)).uniform_(min, max)


def assign(x):
    return torch.as_tensor(np.asarray(x))


# ---- nn / vision
nn = types.ModuleType("paddle.nn")
nn.Conv2D, nn.Conv2DTranspose, nn.functional = _nn.Conv2D, _nn.Conv2DTranspose, _F
vision = types.ModuleType("paddle.vision")
vision.ops = _P.vision.ops


# ---- the raw op the OpTest wrapper calls: translate to the public functional
def _conv2d_transpose_op(
    x,
    weight,
    strides,
    paddings,
    output_padding,
    output_size,
    padding_algorithm,
    groups,
    dilations,
    data_format,
):
    padding = padding_algorithm if padding_algorithm in ("SAME", "VALID") else list(paddings)
    kwargs = {}
    if output_size:
        kwargs["output_size"] = list(output_size)
    if output_padding:
        kwargs["output_padding"] = list(output_padding)
    return _F.conv2d_transpose(
        x,
        weight,
        None,
        stride=list(strides),
        padding=padding,
        dilation=list(dilations),
        groups=groups,
        data_format=data_format,
        **kwargs,
    )


_C_ops = types.SimpleNamespace(conv2d_transpose=_conv2d_transpose_op)


# ---- static graph stand-ins
class Program:
    pass


@contextlib.contextmanager
def program_guard(main, startup=None):
    yield


class Executor:
    def __init__(self, place=None):
        pass

    def run(self, program=None, feed=None, fetch_list=(), return_numpy=True):
        return [t.detach().numpy() for t in fetch_list]


def _static_data(name, shape, dtype="float32", lod_level=0):
    return torch.zeros([1 if d is None or d < 0 else d for d in shape], dtype=_dtype(dtype))


static = types.ModuleType("paddle.static")
static.data = _static_data
static.nn = types.SimpleNamespace(
    conv2d=_P.fluid.layers.conv2d, conv2d_transpose=_P.fluid.layers.conv2d_transpose
)
static.Program, static.program_guard, static.Executor = Program, program_guard, Executor


class _Core:
    CPUPlace = CPUPlace

    @staticmethod
    def is_compiled_with_cuda():
        return False

    @staticmethod
    def is_compiled_with_rocm():
        return False

    @staticmethod
    def CUDAPlace(i):
        raise RuntimeError("no CUDA in this shim")

    @staticmethod
    def is_float16_supported(place):
        return False

    @staticmethod
    def is_bfloat16_supported(place):
        return False


base = types.ModuleType("paddle.base")
base.core = _Core()
base.Program, base.program_guard, base.Executor = Program, program_guard, Executor
base.default_main_program = base.default_startup_program = lambda: Program()
base.dygraph = types.SimpleNamespace(guard=_P.fluid.dygraph.guard)

import sys as _sys  # noqa: E402

for _name, _mod in (("nn", nn), ("static", static), ("vision", vision), ("base", base)):
    _sys.modules[f"paddle.{_name}"] = _mod
_sys.modules["paddle.nn.functional"] = _F
_sys.modules["paddle.vision.ops"] = vision.ops
