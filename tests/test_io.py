"""omniconv.io: reading checkpoints of every format (detected from the bytes), the
restricted unpickler, corrupted and truncated files, the safetensors writer against the
official package, atomic writes."""

from __future__ import annotations

import collections
import io
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniconv.io import (
    CheckpointError,
    UnsafeCheckpointError,
    _atomic,
    detect_format,
    load_checkpoint,
    read_checkpoint,
    write_checkpoint,
)

FIXTURES = Path(__file__).parent / "fixtures"


# --------------------------------------------------------------------------- small files


def _numpy_pickle(obj, protocol=4) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    """One small file per format and container (real-framework fixtures where they exist)."""
    d = tmp_path_factory.mktemp("samples")
    state = collections.OrderedDict(
        [("conv.weight", torch.randn(4, 3, 3, 3)), ("conv.bias", torch.randn(4))]
    )
    torch.save({"state_dict": state, "meta": {"epoch": 3}}, d / "zip.pth")
    torch.save(state, d / "legacy.pth", _use_new_zipfile_serialization=False)
    write_checkpoint(state, d / "st.safetensors")
    out = {
        "mxnet-save_parameters": FIXTURES / "ckpt_mxnet_net.params",
        "mxnet-export": FIXTURES / "ckpt_mxnet_net-0000.params",
        "paddle-p4": FIXTURES / "ckpt_paddle_dygraph.pdparams",
        "paddle-p2": FIXTURES / "ckpt_paddle_dygraph_p2.pdparams",
        "paddle-static": FIXTURES / "ckpt_paddle_static.pdparams",
        "paddle-pdopt": FIXTURES / "ckpt_paddle_dygraph.pdopt",
        "megengine-p4": FIXTURES / "ckpt_megengine_net.pkl",
        "megengine-p5": FIXTURES / "ckpt_megengine_net.mge",
        "torch-zip": d / "zip.pth",
        "torch-legacy": d / "legacy.pth",
        "safetensors": d / "st.safetensors",
    }
    return out


FORMAT_OF = {
    "mxnet-save_parameters": "mxnet",
    "mxnet-export": "mxnet",
    "paddle-p4": "paddle",
    "paddle-p2": "paddle",
    "paddle-static": "paddle",
    "paddle-pdopt": "paddle",
    "megengine-p4": "megengine",
    "megengine-p5": "megengine",
    "torch-zip": "torch",
    "torch-legacy": "torch",
    "safetensors": "safetensors",
}


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("name", sorted(FORMAT_OF))
def test_format_is_detected_from_the_bytes_not_the_name(samples, tmp_path, name):
    renamed = tmp_path / "checkpoint.bin"  # a name that says nothing
    shutil.copy(samples[name], renamed)
    assert detect_format(renamed) == FORMAT_OF[name]
    original = read_checkpoint(samples[name])
    again = read_checkpoint(renamed)
    assert list(again) == list(original) and len(again) > 0
    for k, v in original.items():
        assert isinstance(v, torch.Tensor)
        assert v.dtype == again[k].dtype and torch.equal(v, again[k])


def test_paddle_files_keep_paddle_names_and_values():
    fx = np.load(FIXTURES / "ckpt_paddle.npz")
    assert str(fx["version"]) == "3.3.1"
    ckpt = load_checkpoint(FIXTURES / "ckpt_paddle_dygraph.pdparams")
    assert ckpt.format == "paddle" and ckpt.container == "pickle protocol 4"
    assert list(ckpt.tensors) == [
        "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn._mean", "bn._variance",
        "offset.weight", "offset.bias", "dcn.weight", "dcn.bias", "up.weight", "up.bias",
        "head.weight", "head.bias",
    ]  # fmt: skip
    assert ckpt.tensors["head.weight"].shape == (2, 3)  # Paddle's Linear: (in, out)
    assert "StructuredToParameterName@@" in ckpt.metadata
    p2 = read_checkpoint(FIXTURES / "ckpt_paddle_dygraph_p2.pdparams")  # _codecs.encode
    assert list(p2) == list(ckpt.tensors)
    for k in p2:
        assert torch.equal(p2[k], ckpt.tensors[k])
    static = read_checkpoint(FIXTURES / "ckpt_paddle_static.pdparams")
    assert "batch_norm_0.w_2" in static and static["conv2d_transpose_0.w_0"].shape == (4, 2, 2, 2)
    opt = read_checkpoint(FIXTURES / "ckpt_paddle_dygraph.pdopt")
    assert opt["conv2d_0.w_0_moment1_0"].shape == (4, 3, 3, 3)
    assert all(t.dtype == torch.float32 for t in opt.values())


def test_mxnet_names_are_kept_as_written():
    saved = read_checkpoint(FIXTURES / "ckpt_mxnet_net.params")
    assert "1.gamma" in saved and "4.offset_weight" in saved
    exported = load_checkpoint(FIXTURES / "ckpt_mxnet_net-0000.params")
    assert exported.format == "mxnet" and "arg:/aux:" in exported.container
    assert "aux:hybridsequential0_batchnorm0_running_var" in exported.tensors
    assert torch.equal(exported.tensors["arg:hybridsequential0_conv0_weight"], saved["0.weight"])


def test_megengine_files_in_both_numpy_namespaces_and_protocols():
    fx = np.load(FIXTURES / "ckpt_megengine.npz")
    assert str(fx["numpy_version"]).startswith("1.")  # numpy.core.* globals
    p4 = load_checkpoint(FIXTURES / "ckpt_megengine_net.pkl")
    p5 = load_checkpoint(FIXTURES / "ckpt_megengine_net.mge")
    assert (p4.format, p5.format) == ("megengine", "megengine")
    assert (p4.container, p5.container) == ("pickle protocol 4", "pickle protocol 5")
    assert p4.tensors["conv2.weight"].shape == (2, 4, 4, 3, 3)
    assert p4.tensors["bn1.running_var"].shape == (1, 8, 1, 1)
    assert p5.tensors["bn1.running_var"].shape == (8,)
    for k, v in p4.tensors.items():
        assert torch.equal(v.reshape(-1), p5.tensors[k].reshape(-1))


def test_torch_checkpoints_state_dict_entry_and_metadata():
    ckpt = load_checkpoint(FIXTURES / "ckpt_mmdet_dcn.pth")
    assert ckpt.format == "torch" and ckpt.entry == "state_dict"
    assert set(ckpt.metadata) == {"meta", "optimizer"}
    assert "backbone.layer1.0.conv2_offset.weight" in ckpt.tensors
    versions = ckpt.tensors._metadata  # torch's _metadata survives
    assert versions["backbone.layer2.0.conv2"] == {"version": 2}


def test_numpy_values_in_a_torch_checkpoint_are_rebuilt_safely(tmp_path):
    path = tmp_path / "np.pth"
    torch.save(
        {"state_dict": {"w": torch.ones(2)}, "meta": {"s": np.float64(1.5), "a": np.ones(3)}},
        path,
    )
    ckpt = load_checkpoint(path)
    assert list(ckpt.tensors) == ["w"] and ckpt.metadata["meta"] == "a dict of 2 entries"


def test_nested_and_paired_paddle_objects(tmp_path):
    # paddle.save({"model": sd, "epoch": 3}) writes tensors as (name, ndarray) pairs
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "nested.pdparams"
    path.write_bytes(
        _numpy_pickle({"model": collections.OrderedDict(fc=("linear_0.w_0", w)), "epoch": 3})
    )
    ckpt = load_checkpoint(path)
    assert ckpt.format == "paddle" and ckpt.entry == "model"
    assert torch.equal(ckpt.tensors["fc"], torch.from_numpy(w))
    assert ckpt.metadata == {"epoch": "3"}


def test_paddle_big_parameters_are_joined(tmp_path):
    # what paddle.save(protocol=2 or 3) writes for an array over 2**30 bytes
    full = np.arange(24, dtype=np.float32).reshape(4, 6)
    flat = full.reshape(-1)
    obj = {
        "w@@.0": flat[:10],
        "w@@.1": flat[10:20],
        "w@@.2": flat[20:],
        "b": np.ones(2, np.float32),
        "UnpackBigParamInfor@@": {
            "w": {"OriginShape": (4, 6), "slices": ["w@@.0", "w@@.1", "w@@.2"]}
        },
    }
    path = tmp_path / "big.pdparams"
    path.write_bytes(_numpy_pickle(obj, protocol=2))
    state = read_checkpoint(path)
    assert sorted(state) == ["b", "w"] and torch.equal(state["w"], torch.from_numpy(full))


@pytest.mark.parametrize(
    "dtype",
    [
        "float16",
        "float32",
        "float64",
        "int8",
        "uint8",
        "int32",
        "int64",
        "bool",
        ">f4",
        ">i8",
        "complex64",
        "uint16",
    ],
)
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_dtypes_byte_orders_and_fortran_arrays(tmp_path, dtype, protocol):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4)) * 50).astype(dtype)
    arrays = {
        "c": a,
        "f": np.asfortranarray(a),
        "empty": np.zeros((0, 3), dtype),
        "scalar": a[0, 0:1].reshape(()),
    }
    path = tmp_path / "x.pkl"
    path.write_bytes(_numpy_pickle(arrays, protocol))
    state = read_checkpoint(path)
    for k, v in arrays.items():
        expected = torch.from_numpy(np.array(v, order="C").astype(v.dtype.newbyteorder("=")))
        assert state[k].dtype == expected.dtype and torch.equal(state[k], expected), k


def test_framework_argument(samples):
    state = read_checkpoint(samples["megengine-p4"], framework="paddle")  # a pickle: either
    assert "conv2.weight" in state
    assert load_checkpoint(samples["paddle-p4"], "megengine").format == "megengine"
    assert read_checkpoint(samples["mxnet-export"], framework="gluon")
    with pytest.raises(
        CheckpointError, match=r"framework='mxnet' was asked for, but the file is a pickle"
    ):
        read_checkpoint(samples["paddle-p4"], framework="mxnet")
    with pytest.raises(CheckpointError, match=r"is a torch zip archive"):
        read_checkpoint(samples["torch-zip"], framework="paddle")
    with pytest.raises(
        ValueError, match=r"`framework` must be None or one of .* received framework='tf'"
    ):
        read_checkpoint(samples["torch-zip"], framework="tf")
    with pytest.raises(
        TypeError, match=r"`path` must be a str or os.PathLike; received path=<int>"
    ):
        read_checkpoint(3)


def test_not_a_checkpoint(tmp_path):
    cases = {
        "empty.bin": b"",
        "text.txt": b"import torch\n",
        "graph.mge": b"MGBS" + b"\0" * 60,  # a MegEngine traced graph
        "half.safetensors": struct.pack("<Q", 1000) + b'{"a":',
        "list.pkl": _numpy_pickle([np.ones(2)]),
        "array.pkl": _numpy_pickle(np.ones(2)),
    }
    expected = {
        "empty.bin": "the file is empty",
        "text.txt": "not a checkpoint format",
        "graph.mge": "MegEngine traced graph",
        "half.safetensors": "truncated safetensors file",
        "list.pkl": "not a state dict: the file holds a list of 1 entries",
        "array.pkl": "not a state dict: the file holds an array (2,) float64",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError) as err:
            read_checkpoint(path)
        assert str(err.value).startswith(f"{path}: ") and expected[name] in str(err.value)


# --------------------------------------------------------------------------- unsafe pickles


class _Touch:
    """Unpickling this runs ``touch <path>`` (if anything lets it)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class _Exec:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


class _Popen:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import subprocess

        return (subprocess.Popen, (["touch", self.path],))


@pytest.mark.parametrize("payload", [_Touch, _Exec, _Popen])
@pytest.mark.parametrize("container", ["paddle", "megengine-nested", "torch-zip", "torch-legacy"])
def test_code_in_a_pickle_never_runs(tmp_path, payload, container):
    marker = tmp_path / "pwned"
    evil = payload(marker)
    path = tmp_path / "evil.ckpt"
    if container == "paddle":
        path.write_bytes(_numpy_pickle({"conv2d_0.w_0": np.ones(2), "x": evil}))
    elif container == "megengine-nested":
        path.write_bytes(_numpy_pickle({"a": {"b": [np.ones(2), (evil,)]}}, protocol=2))
    else:
        torch.save(
            {"state_dict": {"w": torch.ones(2)}, "meta": evil},
            path,
            _use_new_zipfile_serialization=container == "torch-zip",
        )
    with pytest.raises(UnsafeCheckpointError) as err:
        read_checkpoint(path)
    assert not marker.exists()
    # torch's message names a builtin by its bare name
    names = {_Touch: ("posix.system", "os.system"),
             _Exec: ("builtins.exec", "__builtin__.exec", "exec"),
             _Popen: ("subprocess.Popen", "commands.Popen")}[payload]  # fmt: skip
    assert err.value.global_name in names
    assert str(err.value).startswith(
        f"{path}: refusing to unpickle global '{err.value.global_name}'"
    )


def test_refused_numpy_content(tmp_path):
    cases = {
        "object array": {"w": np.array([1, "a"], dtype=object)},
        "structured dtype": {"w": np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])},
        "string array": {"w": np.array(["ab", "c"])},
    }
    for what, obj in cases.items():
        path = tmp_path / "x.pkl"
        path.write_bytes(_numpy_pickle(obj))
        with pytest.raises(CheckpointError, match=str(path)) as err:
            read_checkpoint(path)
        assert not isinstance(err.value, UnsafeCheckpointError) or "builtins" not in str(
            err.value
        ), what


def test_a_protocol_0_pickle_is_not_read(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps(_Touch(marker), protocol=0))
    with pytest.raises(CheckpointError, match="not a checkpoint format"):
        read_checkpoint(path)
    assert not marker.exists()


# --------------------------------------------------------------------------- corruption


def _check_damaged(path: Path, data: bytes) -> None:
    """Reading damaged bytes raises CheckpointError naming the file, or (a flip inside
    the data) succeeds; never anything else."""
    path.write_bytes(data)
    try:
        state = read_checkpoint(path)
    except CheckpointError as err:
        assert str(err).startswith(f"{path}: "), err
        assert len(str(err)) < 2000
    else:
        assert all(isinstance(v, torch.Tensor) for v in state.values())


@pytest.mark.parametrize("name", sorted(FORMAT_OF))
def test_truncation_at_many_offsets(samples, tmp_path, name):
    data = samples[name].read_bytes()
    cuts = sorted(
        set(range(0, min(len(data), 64))) | set(range(0, len(data), max(1, len(data) // 150)))
    )
    path = tmp_path / "cut.bin"
    for cut in cuts:
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as err:
            read_checkpoint(path)
        assert str(err.value).startswith(f"{path}: "), (cut, err.value)


@pytest.mark.parametrize("name", sorted(FORMAT_OF))
def test_trailing_garbage_is_an_error(samples, tmp_path, name):
    path = tmp_path / "long.bin"
    path.write_bytes(samples[name].read_bytes() + b"\0garbage")
    if name.startswith("torch"):
        pytest.skip("torch.load reads its records and ignores what follows them")
    with pytest.raises(CheckpointError, match=f"^{path}: "):
        read_checkpoint(path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
@pytest.mark.parametrize("name", sorted(FORMAT_OF))
def test_random_byte_flips_and_truncations(samples, tmp_path, name, data):
    original = samples[name].read_bytes()
    blob = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        i = data.draw(st.integers(0, len(blob) - 1), label="offset")
        blob[i] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="truncate"):
        blob = blob[: data.draw(st.integers(0, len(blob)), label="length")]
    _check_damaged(tmp_path / "damaged.bin", bytes(blob))


def test_huge_sizes_in_corrupted_headers(tmp_path):
    # sizes far beyond the file: no allocation, no struct/Index errors
    path = tmp_path / "x"
    mx = bytearray((FIXTURES / "ckpt_mxnet_net.params").read_bytes())
    mx[16:24] = struct.pack("<Q", 2**62)  # array count
    _check_damaged(path, bytes(mx))
    pkl = _numpy_pickle({"w": np.ones(4, np.float32)}, protocol=3)  # no frames
    short = b"C\x10" + np.ones(4, np.float32).tobytes()  # SHORT_BINBYTES of the data
    for size in (2**60, 2**40, 2**33):
        huge = b"\x8e" + struct.pack("<Q", size) + short[2:]  # BINBYTES8
        _check_damaged(path, pkl.replace(short, huge))
    st_file = struct.pack("<Q", 2**40) + b"{" + b" " * 20
    path.write_bytes(st_file)
    with pytest.raises(CheckpointError, match="truncated safetensors"):
        read_checkpoint(path)


# --------------------------------------------------------------------------- safetensors


DTYPES = [
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16,
    torch.int32, torch.int64, torch.uint8, torch.bool, torch.uint16, torch.uint32, torch.uint64,
    torch.float8_e4m3fn, torch.float8_e5m2, torch.complex64,
]  # fmt: skip


def _random(dtype, shape, g):
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if dtype.is_floating_point or dtype.is_complex:
        return (torch.randn(shape, generator=g, dtype=torch.float64) * 100).to(dtype)
    info = torch.iinfo(dtype)
    lo, hi = max(info.min, -(2**40)), min(info.max, 2**40)
    return torch.randint(lo, hi, shape, generator=g, dtype=torch.int64).to(dtype)


def _bits(t: torch.Tensor) -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def test_official_safetensors_reads_our_files_bit_exactly(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from safetensors import safe_open

    g = torch.Generator().manual_seed(0)
    tensors = {}
    for dtype in DTYPES:
        name = str(dtype).removeprefix("torch.")
        tensors[f"{name}.matrix"] = _random(dtype, (3, 5), g)
        tensors[f"{name}.scalar"] = _random(dtype, (), g)
        tensors[f"{name}.empty"] = _random(dtype, (2, 0, 3), g)
    tensors["strided"] = torch.arange(12.0).reshape(3, 4).t()  # not contiguous
    tensors["nan"] = torch.tensor([float("nan"), float("inf"), -0.0], dtype=torch.float16)
    tensors["ünïcode/name with spaces"] = torch.ones(2)
    path = tmp_path / "ours.safetensors"
    write_checkpoint(tensors, path, metadata={"format": "pt", "note": "ünï"})
    official = safetensors_torch.load_file(path)
    assert set(official) == set(tensors)
    for name, t in tensors.items():
        assert official[name].dtype == t.dtype and official[name].shape == t.shape, name
        assert _bits(official[name]) == _bits(t), name
    with safe_open(path, "pt") as f:
        assert f.metadata() == {"format": "pt", "note": "ünï"}
    ours = read_checkpoint(path)
    assert list(ours) == list(tensors)
    for name, t in tensors.items():
        assert ours[name].dtype == t.dtype and _bits(ours[name]) == _bits(t), name


def test_we_read_the_official_writer_bit_exactly(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    g = torch.Generator().manual_seed(1)
    tensors = {f"t{i}": _random(d, (4, 3), g) for i, d in enumerate(DTYPES)}
    tensors["empty"] = torch.zeros(0, 5)
    tensors["scalar"] = torch.tensor(3.5, dtype=torch.bfloat16)
    path = tmp_path / "official.safetensors"
    safetensors_torch.save_file(tensors, path, metadata={"k": "v"})
    ckpt = load_checkpoint(path)
    assert ckpt.format == "safetensors" and ckpt.metadata == {"k": "v"}
    for name, t in tensors.items():
        assert ckpt.tensors[name].dtype == t.dtype and ckpt.tensors[name].shape == t.shape
        assert _bits(ckpt.tensors[name]) == _bits(t), name


def test_malformed_safetensors_headers(tmp_path):
    def build(header: dict, data: bytes = b"") -> bytes:
        import json

        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + data

    good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    cases = {
        "unsupported dtype": build(
            {"a": {"dtype": "F7", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8
        ),
        "needs 12": build({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
        "no gap or overlap": build(
            {**good, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8
        ),
        "has trailing bytes": build(good, b"\0" * 12),
        "truncated": build(good, b"\0" * 4),
        "not JSON": struct.pack("<Q", 4) + b"{{{{",
        "__metadata__": build({"__metadata__": {"a": 1}}),
        "shape": build({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}),
    }
    for what, data in cases.items():
        path = tmp_path / "bad.safetensors"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=f"^{path}: .*{what}"):
            read_checkpoint(path)


def test_writer_arguments(tmp_path):
    ok = {"w": torch.ones(2)}
    with pytest.raises(
        ValueError, match=r"`path` must end in .safetensors, .pt, .pth; received path='.*x.bin'"
    ):
        write_checkpoint(ok, tmp_path / "x.bin")
    with pytest.raises(
        TypeError, match=r"`tensors` must be a mapping of names to tensors; received tensors=<list>"
    ):
        write_checkpoint([torch.ones(1)], tmp_path / "x.safetensors")
    with pytest.raises(
        TypeError, match=r"`tensors\['w'\]` must be a torch.Tensor; received <ndarray>"
    ):
        write_checkpoint({"w": np.ones(2)}, tmp_path / "x.safetensors")
    with pytest.raises(
        ValueError,
        match=r"`tensors\['c'\]` must have a dtype safetensors stores .* received dtype complex128",
    ):
        write_checkpoint({"c": torch.ones(2, dtype=torch.complex128)}, tmp_path / "x.safetensors")
    with pytest.raises(
        ValueError, match=r"keys must be non-empty strings other than '__metadata__'"
    ):
        write_checkpoint({"__metadata__": torch.ones(1)}, tmp_path / "x.safetensors")
    with pytest.raises(
        ValueError, match=r"must be a dense tensor; received layout torch.sparse_coo"
    ):
        write_checkpoint({"s": torch.eye(2).to_sparse()}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match=r"`metadata` must be a mapping of str to str"):
        write_checkpoint(ok, tmp_path / "x.safetensors", metadata={"a": 1})
    assert sorted(os.listdir(tmp_path)) == []
    assert (
        write_checkpoint({"c": torch.ones(2, dtype=torch.complex128)}, tmp_path / "x.pt") == "torch"
    )
    assert torch.equal(
        read_checkpoint(tmp_path / "x.pt")["c"], torch.ones(2, dtype=torch.complex128)
    )


def test_pt_files_round_trip(tmp_path):
    state = collections.OrderedDict(a=torch.randn(2, 3), b=torch.arange(4))
    write_checkpoint(state, tmp_path / "s.pth")
    loaded = torch.load(tmp_path / "s.pth", weights_only=True)
    assert list(loaded) == ["a", "b"] and all(torch.equal(loaded[k], state[k]) for k in state)


# --------------------------------------------------------------------------- atomic writes


class _FailingFile(io.RawIOBase):
    """A file that fails (disk full) once ``limit`` bytes have been written."""

    def __init__(self, f, limit):
        self.f, self.limit, self.written = f, limit, 0

    def write(self, b):
        n = len(memoryview(b).cast("B"))
        if self.written + n > self.limit:
            self.f.write(bytes(memoryview(b).cast("B")[: self.limit - self.written]))
            raise OSError(28, "No space left on device")
        self.written += n
        return self.f.write(b)

    def flush(self):
        if not self.f.closed:
            self.f.flush()

    def fileno(self):
        return self.f.fileno()

    def close(self):
        self.f.close()
        super().close()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_write_leaves_no_file_and_no_temp(tmp_path, monkeypatch, suffix, existing):
    dst = tmp_path / f"out{suffix}"
    if existing:
        dst.write_bytes(b"the old file")
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        _atomic.os, "fdopen", lambda fd, mode: _FailingFile(real_fdopen(fd, mode), 3000)
    )
    state = {f"t{i}": torch.randn(64) for i in range(20)}  # 20 x 256 bytes: fails midway
    # torch.save reports the failed write as a RuntimeError of its own
    with pytest.raises((OSError, RuntimeError), match=r"No space left|unexpected pos"):
        write_checkpoint(state, dst)
    assert os.listdir(tmp_path) == ([dst.name] if existing else [])
    if existing:
        assert dst.read_bytes() == b"the old file"


def test_an_interrupted_write_leaves_no_temp(tmp_path, monkeypatch):
    from omniconv.io import _safetensors

    calls = []

    def interrupt(name):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt

    real = _safetensors.write_safetensors
    monkeypatch.setattr(
        "omniconv.io._write.write_safetensors", lambda f, t, m, step: real(f, t, m, interrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(
            {"a": torch.ones(3), "b": torch.ones(3), "c": torch.ones(3)}, tmp_path / "o.safetensors"
        )
    assert os.listdir(tmp_path) == []


def test_written_files_have_ordinary_permissions(tmp_path):
    dst = tmp_path / "p.safetensors"
    write_checkpoint({"a": torch.ones(1)}, dst)
    umask = os.umask(0)
    os.umask(umask)
    assert dst.stat().st_mode & 0o777 == 0o666 & ~umask
    dst.chmod(0o600)
    write_checkpoint({"a": torch.ones(1)}, dst)  # replacing keeps the file's mode
    assert dst.stat().st_mode & 0o777 == 0o600
