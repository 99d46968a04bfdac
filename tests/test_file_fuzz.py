"""Every file reader and writer against bad files: empty, random, truncated, bit-flipped,
oversized length fields, and malicious payloads.

Readers: ``omniconv.io.read_checkpoint`` / ``load_checkpoint`` / ``detect_format``,
``omniconv inspect`` / ``omniconv convert``, Gluon's ``Block.load_parameters`` and
``ParameterDict.load`` (MXNet ``.params``). Each bad file is refused with a ``ValueError``
naming the file (``CheckpointError`` / ``UnsafeCheckpointError``, or Gluon's
``MXNetValueError`` / ``GluonAssertionError``; the commands: status 1 and one line naming
it), within a bounded time and memory, and nothing from a file runs.

Memory is bounded two ways: Python and numpy allocations with ``tracemalloc`` (peak per
read), and everything else (torch's allocator, ``malloc``) by reading the oversized files
in a subprocess whose address space is capped at 1 GiB above what it has mapped: a reader
that allocated a declared size before checking it against the file would fail there with
an allocation error instead of the refusal each case expects.

Writers: ``write_checkpoint``, ``omniconv convert``, Gluon's ``save_parameters``,
``ParameterDict.save`` and ``export``: a failure midway leaves no partial file and the old
file intact; a destination that cannot be written is refused with an error naming it.

test_io.py has the format-by-format truncation / corruption / payload tests of
``read_checkpoint``; this file adds the other surfaces and the resource bounds.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import pickle
import random
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_io import _FailingFile

from omniconv import cli
from omniconv.compat import gluon
from omniconv.compat.gluon import nn as gnn
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
MIB = 1024 * 1024
SECONDS = 10.0  # per read; the slowest honest refusal here takes well under 1 s
PYTHON_PEAK = 32 * MIB  # tracemalloc peak per read, on files of at most ~1 MiB


# --------------------------------------------------------------------------- samples


def _state() -> collections.OrderedDict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return collections.OrderedDict(
        [("conv.weight", torch.randn(4, 3, 3, 3, generator=g)), ("conv.bias", torch.randn(4))]
    )


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, bytes]:
    """One small valid file per format / container, as bytes."""
    d = tmp_path_factory.mktemp("fuzz-samples")
    torch.save({"state_dict": _state(), "meta": {"epoch": 1}}, d / "zip.pth")
    torch.save(_state(), d / "legacy.pth", _use_new_zipfile_serialization=False)
    write_checkpoint(_state(), d / "st.safetensors")
    files = {
        "mxnet": FIXTURES / "mxnet_compat_single.params",
        "mxnet-export": FIXTURES / "ckpt_mxnet_net-0000.params",
        "paddle": FIXTURES / "ckpt_paddle_dygraph.pdparams",
        "paddle-p2": FIXTURES / "ckpt_paddle_dygraph_p2.pdparams",
        "megengine-p5": FIXTURES / "ckpt_megengine_net.mge",
        "torch-zip": d / "zip.pth",
        "torch-legacy": d / "legacy.pth",
        "safetensors": d / "st.safetensors",
    }
    return {k: p.read_bytes() for k, p in files.items()}


# --------------------------------------------------------------------------- readers


def _gluon_block_load(path: Path) -> None:
    with gluon.NameManager():
        net = gnn.Conv2D(1, 1, in_channels=1)
    net.load_parameters(str(path))


def _gluon_dict_load(path: Path) -> None:
    with gluon.NameManager():
        net = gnn.Conv2D(1, 1, in_channels=1)
    net.collect_params().load(str(path), restore_prefix="")


def _command(argv: list[str]) -> None:
    """Run ``omniconv ...``; a refusal (status 1, one line on stderr) as a ValueError
    carrying that line, so every reader is checked the same way."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    if status == 0:
        return
    text = err.getvalue()
    assert status == 1 and text.count("\n") == 1 and "Traceback" not in text, text
    raise ValueError(text.strip())


def _inspect(path: Path) -> None:
    _command(["inspect", str(path)])


def _convert(path: Path) -> None:
    dst = path.with_name(path.name + ".out.safetensors")
    try:
        _command(["convert", "-q", str(path), str(dst)])
    except ValueError:
        assert not dst.exists(), "a failed convert left its destination"
        raise
    finally:
        dst.unlink(missing_ok=True)


READERS: dict[str, Callable[[Path], object]] = {
    "read_checkpoint": read_checkpoint,
    "load_checkpoint(progress)": lambda p: load_checkpoint(p, progress=True),
    "detect_format": detect_format,
    "omniconv inspect": _inspect,
    "omniconv convert": _convert,
    "gluon load_parameters": _gluon_block_load,
    "gluon ParameterDict.load": _gluon_dict_load,
}
GLUON = ("gluon load_parameters", "gluon ParameterDict.load")
#: what each reader may raise for a bad file (all ValueErrors)
ERRORS: dict[str, tuple[type[Exception], ...]] = {
    name: (gluon.MXNetValueError, gluon.GluonAssertionError, ValueError)
    if name in GLUON
    else (CheckpointError,)
    if not name.startswith("omniconv")
    else (ValueError,)
    for name in READERS
}


def _read(reader: str, path: Path) -> tuple[BaseException | None, float, int]:
    """``(error or None, seconds, tracemalloc peak bytes)`` of reading ``path``."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # progress bars
            READERS[reader](path)
        error: BaseException | None = None
    except Exception as err:
        error = err
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, seconds, peak


def _refused(reader: str, path: Path, *, may_succeed: bool = False) -> BaseException | None:
    """Read ``path`` with ``reader``: a refusal of the right type naming the file, in
    bounded time and memory (or, with ``may_succeed``, a successful read)."""
    size = path.stat().st_size
    error, seconds, peak = _read(reader, path)
    assert seconds < SECONDS, (reader, path.name, seconds)
    assert peak < PYTHON_PEAK + 8 * size, (reader, path.name, peak)
    if error is None:
        assert may_succeed, f"{reader} read {path.name} without an error"
        return None
    assert isinstance(error, ERRORS[reader]), (reader, path.name, repr(error))
    text = str(error)
    assert str(path) in text, (reader, text)
    assert len(text) < 2000, (reader, len(text))
    return error


# --------------------------------------------------------------------------- oversized


def _st(header: dict | str, data: bytes = b"") -> bytes:
    text = header.encode() if isinstance(header, str) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _mx_array(dims: tuple[int, ...], data: bytes = b"\0" * 4, flag: int = 0) -> bytes:
    return (
        struct.pack("<Iii", 0xF993FAC9, 0, len(dims))
        + struct.pack(f"<{len(dims)}q", *dims)
        + struct.pack("<iii", 1, 0, flag)
        + data
    )


def _mx(arrays: list[bytes], names: list[bytes] | None = None, count: int | None = None) -> bytes:
    out = struct.pack("<QQQ", 0x112, 0, len(arrays) if count is None else count)
    out += b"".join(arrays)
    names = names if names is not None else [b"weight"] * len(arrays)
    out += struct.pack("<Q", len(names)) + b"".join(struct.pack("<Q", len(n)) + n for n in names)
    return out


def _frame(body: bytes, protocol: int = 4) -> bytes:
    return bytes([0x80, protocol]) + body + b"."


def _zip_torch(patch: Callable[[str, bytes], bytes], compress: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.ones(4)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compress) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, patch(info.filename, src.read(info)))
    return out.getvalue()


def _long(n: int) -> bytes:
    return b"\x8a\x08" + struct.pack("<q", n)  # LONG1 of 8 bytes


def _zip_numel(numel: int) -> bytes:
    # the storage tuple ends ..., 'cpu', 4) and the size tuple is (4,)
    def patch(name: str, data: bytes) -> bytes:
        if name.endswith("data.pkl"):
            data = data.replace(b"K\x04t", _long(numel) + b"t", 1)
            data = data.replace(b"K\x04\x85", _long(numel) + b"\x85", 1)
        return data

    return _zip_torch(patch)


def _zip_bomb() -> bytes:
    # a 64 MiB record deflated to ~64 KiB: torch would inflate it
    return _zip_torch(
        lambda name, data: b"\0" * (64 * MIB) if name.endswith("/data/0") else data,
        zipfile.ZIP_DEFLATED,
    )


def _legacy(patch: Callable[[bytes], bytes], obj: object = None) -> bytes:
    buf = io.BytesIO()
    torch.save(
        {"w": torch.ones(4), "name": "abcd"} if obj is None else obj,
        buf,
        _use_new_zipfile_serialization=False,
    )
    data = buf.getvalue()
    patched = patch(data)
    assert patched != data, "the patch found nothing to change"
    return patched


def _legacy_numel(numel: int) -> bytes:
    return _legacy(lambda d: d.replace(b"cpuq\x06K\x04N", b"cpuq\x06" + _long(numel) + b"N", 1))


def _legacy_string(length: int) -> bytes:
    return _legacy(
        lambda d: d.replace(b"X\x04\x00\x00\x00abcd", b"X" + struct.pack("<I", length) + b"abcd")
    )


def _numpy_pickle(obj: object, protocol: int = 4) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def _binbytes8(size: int) -> bytes:
    """A protocol-3 pickle of one array whose data declares ``size`` bytes."""
    pkl = _numpy_pickle({"w": np.ones(4, np.float32)}, protocol=3)
    short = b"C\x10" + np.ones(4, np.float32).tobytes()
    return pkl.replace(short, b"\x8e" + struct.pack("<Q", size) + short[2:])


def _array_claim(shape: tuple[int, ...]) -> bytes:
    """A pickle asking numpy for an array of ``shape`` from 16 bytes of data."""
    pkl = _numpy_pickle({"w": np.ones(4, np.float32)}, protocol=2)
    return pkl.replace(b"K\x04\x85", b"(" + b"".join(_long(d) for d in shape) + b"t", 1)


def _memo_repeat(copies: int) -> bytes:
    """One 64 KiB bytes object referenced by ``copies`` arrays through the memo: a file
    of ~70 KiB asking for ``copies`` x 64 KiB of arrays."""
    shared = np.ones(16384, np.float32)
    raw = shared.tobytes()
    data = pickle.dumps({f"w{i}": shared.copy() for i in range(2)}, protocol=3)
    first = data.find(b"B" + struct.pack("<I", len(raw)) + raw)
    assert first > 0
    head = data[: first + 5 + len(raw) + 2]  # ... BINBYTES raw, BINPUT k
    memo = head[-1]
    rest = data[first + 5 + len(raw) + 2 :]
    second = rest.find(b"B" + struct.pack("<I", len(raw)) + raw)
    between, tail = rest[:second], rest[second + 5 + len(raw) :]
    # the second array reuses the first array's bytes (BINGET memo), then more keys do too
    body = head + between + b"h" + bytes([memo]) + tail
    assert body.endswith(b"u.") or body.endswith(b"s.")
    return body


def _deep_lists(depth: int) -> bytes:
    return b"\x80\x02}X\x01\x00\x00\x00a" + b"]" * depth + b"a" * (depth - 1) + b"s."


def _big_int_metadata() -> bytes:
    return _numpy_pickle({"w": np.ones(2), "n": 1 << (8 * 200_000)})


def _deep_json() -> bytes:
    return _st('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")


OVERSIZED: dict[str, Callable[[], bytes]] = {
    # MXNet NDArray lists
    "mxnet 2**62 arrays": lambda: _mx([_mx_array((2,), b"\0" * 8)], count=2**62),
    "mxnet array of 2**40 elements": lambda: _mx([_mx_array((2**40,))]),
    "mxnet dims whose int64 product wraps": lambda: _mx([_mx_array((2**32, 2**32, 1))]),
    "mxnet ndim 2**31-1": lambda: struct.pack("<QQQIii", 0x112, 0, 1, 0xF993FAC9, 0, 2**31 - 1),
    "mxnet name of 2**60 bytes": lambda: (
        _mx([_mx_array((1,))], names=[])[:-8] + struct.pack("<QQ", 1, 2**60) + b"abc"
    ),
    # safetensors
    "safetensors header of 2**60 bytes": lambda: struct.pack("<Q", 2**60) + b"{" + b" " * 40,
    "safetensors header of 2**40 bytes": lambda: struct.pack("<Q", 2**40) + b'{"a": 1}',
    "safetensors 10**12 elements": lambda: _st(
        {"a": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}}
    ),
    "safetensors shape overflowing int64": lambda: _st(
        {"a": {"dtype": "F32", "shape": [2**62, 2**62, 0], "data_offsets": [0, 0]}}
    ),
    "safetensors 100000 dims": lambda: _st(
        '{"a": {"dtype": "F32", "shape": [' + ",".join(["3"] * 100_000) + "], "
        '"data_offsets": [0, 0]}}'
    ),
    "safetensors JSON 100000 deep": _deep_json,
    # pickles (Paddle / MegEngine)
    "pickle bytes of 2**33": lambda: _binbytes8(2**33),
    "pickle bytes of 2**60": lambda: _binbytes8(2**60),
    "pickle bytearray8 of 2**40": lambda: _frame(
        b"}\x94X\x01\x00\x00\x00w\x94\x96" + struct.pack("<Q", 2**40) + b"abcd" + b"s", 5
    ),
    "pickle string of 2**63": lambda: _frame(b"\x8d" + struct.pack("<Q", 2**63) + b"x"),
    "pickle frame of 2**50": lambda: b"\x80\x04\x95" + struct.pack("<Q", 2**50) + b"}.",
    "pickle memo index 2**31": lambda: b"\x80\x02}r" + struct.pack("<I", 2**31 - 1) + b".",
    "pickle memo index 10**9 (text PUT)": lambda: b"\x80\x02}p1000000000\n.",
    "pickle 10**12-element array": lambda: _array_claim((10**6, 10**6)),
    "pickle 2**62-element array": lambda: _array_claim((2**31, 2**31)),
    "pickle arrays repeating data by memo": lambda: _memo_repeat(2),
    "pickle lists 20000 deep": lambda: _deep_lists(20_000),
    "pickle int of 1.6 Mbit in metadata": _big_int_metadata,
    # torch
    "torch zip storage of 10**12 elements": lambda: _zip_numel(10**12),
    "torch zip storage of 2**31 elements": lambda: _zip_numel(2**31),
    "torch zip bomb (64 MiB deflated)": _zip_bomb,
    "torch legacy storage of 2**31 elements": lambda: _legacy_numel(2**31),
    "torch legacy storage of 10**12 elements": lambda: _legacy_numel(10**12),
    "torch legacy string of 2**31 bytes": lambda: _legacy_string(2**31),
}

#: the words of each case's refusal: what proves the size was checked before allocating
OVERSIZED_WORDS = {
    "mxnet 2**62 arrays": "arrays in a",
    "mxnet array of 2**40 elements": "truncated while reading array 0 data",
    "mxnet dims whose int64 product wraps": "truncated while reading array 0 data",
    "mxnet ndim 2**31-1": "ndim=2147483647",
    "mxnet name of 2**60 bytes": "truncated while reading name 0",
    "safetensors header of 2**60 bytes": "truncated safetensors file",
    "safetensors header of 2**40 bytes": "truncated safetensors file",
    "safetensors 10**12 elements": "truncated: the header describes",
    "safetensors shape overflowing int64": "has shape",
    "safetensors 100000 dims": "has shape",
    "safetensors JSON 100000 deep": "nested too deeply",
    "pickle bytes of 2**33": "BINBYTES8 at byte",
    "pickle bytes of 2**60": "BINBYTES8 at byte",
    "pickle bytearray8 of 2**40": "BYTEARRAY8 at byte",
    "pickle string of 2**63": "BINUNICODE8 at byte",
    "pickle frame of 2**50": "a frame at byte 2 declares",
    "pickle memo index 2**31": "writes memo entry 2147483647",
    "pickle memo index 10**9 (text PUT)": "writes memo entry 1000000000",
    "pickle 10**12-element array": "needs 4000000000000",
    "pickle 2**62-element array": "needs 18446744073709551616",
    "pickle arrays repeating data by memo": "more bytes than the file has",
    "pickle lists 20000 deep": "nested more than 1000 deep",
    "pickle int of 1.6 Mbit in metadata": None,  # read: the int is metadata, shown briefly
    "torch zip storage of 10**12 elements": "does not match expected size",
    "torch zip storage of 2**31 elements": "does not match expected size",
    "torch zip bomb (64 MiB deflated)": "inflate to",
    "torch legacy storage of 2**31 elements": "storages claim 8589934592 bytes",
    "torch legacy storage of 10**12 elements": "storages claim 4000000000000 bytes",
    "torch legacy string of 2**31 bytes": "pickle declares 2147483648 bytes",
}


@pytest.fixture(scope="module")
def oversized(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("oversized")
    out = {}
    for i, (name, build) in enumerate(OVERSIZED.items()):
        out[name] = d / f"case{i}.bin"
        out[name].write_bytes(build())
    return out


@pytest.mark.parametrize("case", sorted(OVERSIZED))
def test_oversized_length_fields(oversized, case):
    path = oversized[case]
    assert path.stat().st_size < 2 * MIB
    readers = ["read_checkpoint", "omniconv convert"]
    if case.startswith("mxnet"):
        readers += list(GLUON)
    for reader in readers:
        words = OVERSIZED_WORDS[case]
        error = _refused(reader, path, may_succeed=words is None)
        if words is None:
            state = read_checkpoint(path)
            assert list(state) == ["w"]
            assert load_checkpoint(path).metadata["n"] == "<an int of 1600001 bits>"
        else:
            assert words in str(error), (reader, str(error))


_CAPPED = """
import json, resource, sys, traceback
from omniconv.io import read_checkpoint, CheckpointError
read_checkpoint(sys.argv[1])  # warm up: imports, numba's pool, torch's allocator
with open("/proc/self/statm") as f:
    mapped = int(f.read().split()[0]) * resource.getpagesize()
cap = mapped + (1 << 30)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
out = {}
for path in sys.argv[2:]:
    try:
        read_checkpoint(path)
        out[path] = "read"
    except CheckpointError as err:
        out[path] = str(err)
    except BaseException as err:
        out[path] = "UNEXPECTED " + type(err).__name__ + ": " + str(err)[:300]
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_oversized_files_under_an_address_space_cap(oversized, samples, tmp_path):
    """With at most 1 GiB more address space than the warmed-up process has mapped, each
    oversized file is refused with its own words, not an allocation failure: no reader
    (torch's and numpy's included) reserved a declared size before checking it."""
    warm = tmp_path / "warm.pth"
    warm.write_bytes(samples["torch-zip"])
    paths = [str(oversized[c]) for c in sorted(OVERSIZED)]
    proc = subprocess.run(
        [sys.executable, "-c", _CAPPED, str(warm), *paths],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    for case in sorted(OVERSIZED):
        got, words = results[str(oversized[case])], OVERSIZED_WORDS[case]
        assert "UNEXPECTED" not in got and "allocate" not in got, (case, got)
        assert (got == "read") if words is None else (words in got), (case, got)


# --------------------------------------------------------------------------- empty, random


def _random_cases(samples: dict[str, bytes]) -> dict[str, bytes]:
    rng = random.Random(12)
    heads = {
        "mxnet": struct.pack("<QQ", 0x112, 0),
        "pickle": b"\x80\x04",
        "pickle-2": b"\x80\x02",
        "torch-zip": b"PK\x03\x04",
        "torch-legacy": samples["torch-legacy"][:14],
        "safetensors": struct.pack("<Q", 64) + b"{",
    }
    cases = {"empty": b"", "one byte": b"\x80", "text": b"import os\nos.system('true')\n"}
    for n in (16, 1000, 100_000):
        cases[f"random {n} bytes"] = rng.randbytes(n)
        for head, prefix in heads.items():
            cases[f"{head} + random {n}"] = prefix + rng.randbytes(n)
    return cases


@pytest.mark.parametrize("reader", sorted(READERS))
def test_empty_and_random_files(samples, tmp_path, reader):
    cases = _random_cases(samples)
    for name, data in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.bin"
        path.write_bytes(data)
        _refused(reader, path)


@pytest.mark.parametrize("reader", sorted(READERS))
def test_not_regular_files(tmp_path, reader):
    fifo = tmp_path / "fifo.params"
    os.mkfifo(fifo)  # opening it to read would block until a writer comes
    for path in (tmp_path, fifo, Path("/dev/zero"), Path("/dev/urandom")):
        if not path.exists():
            continue
        error = _refused(reader, path)
        assert "regular file" in str(error) or "directory" in str(error), str(error)


# --------------------------------------------------------------------------- damaged samples


def _damaged(data: bytes, rng: random.Random) -> list[bytes]:
    """Truncations at ~40 offsets (every one of the first 24 bytes) and ~40 copies with
    1-4 random bytes changed."""
    cuts = sorted(set(range(min(len(data), 24))) | {rng.randrange(len(data)) for _ in range(16)})
    out = [data[:c] for c in cuts]
    for _ in range(40):
        blob = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        out.append(bytes(blob))
    return out


SURFACES = {  # reader -> the samples it reads
    "read_checkpoint": None,  # all
    "omniconv inspect": ["mxnet-export", "paddle-p2", "megengine-p5", "torch-zip"],
    "omniconv convert": ["mxnet", "paddle", "torch-legacy", "safetensors"],
    "load_checkpoint(progress)": ["paddle-p2", "torch-zip"],
    "detect_format": ["megengine-p5", "mxnet-export"],
    "gluon load_parameters": ["mxnet"],
    "gluon ParameterDict.load": ["mxnet"],
}


@pytest.mark.parametrize("reader", sorted(SURFACES))
def test_truncated_and_bit_flipped_files(samples, tmp_path, reader):
    rng = random.Random(reader)
    names = SURFACES[reader] or sorted(samples)
    path = tmp_path / "damaged.bin"
    refused = read = 0
    for name in names:
        for i, data in enumerate(_damaged(samples[name], rng)):
            path.write_bytes(data)
            truncated = i < len(data) and len(data) < len(samples[name])
            error = _refused(reader, path, may_succeed=not truncated)
            refused += error is not None
            read += error is None
    assert refused > read  # most damage is detected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hypothesis_damage_through_every_reader(samples, tmp_path, data):
    name = data.draw(st.sampled_from(sorted(samples)), label="sample")
    reader = data.draw(
        st.sampled_from([r for r, only in SURFACES.items() if only is None or name in only]),
        label="reader",
    )
    blob = bytearray(samples[name])
    for _ in range(data.draw(st.integers(0, 6), label="changes")):
        i = data.draw(st.integers(0, len(blob) - 1), label="offset")
        blob[i] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(0, len(blob)), label="length")
    path = tmp_path / "hyp.bin"
    path.write_bytes(bytes(blob[:cut]))
    _refused(reader, path, may_succeed=cut == len(blob))


# --------------------------------------------------------------------------- malicious


class _Reduce:
    """Unpickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _payloads(marker: Path) -> dict[str, object]:
    import builtins
    import subprocess as sp

    touch = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _Reduce(os.system, f"touch {marker}"),
        "builtins.eval": _Reduce(builtins.eval, touch),
        "builtins.exec": _Reduce(builtins.exec, touch),
        "subprocess.Popen": _Reduce(sp.Popen, ["touch", str(marker)]),
        "subprocess.check_call": _Reduce(sp.check_call, ["touch", str(marker)]),
        "builtins.getattr": _Reduce(builtins.getattr, marker, "touch"),
        "builtins.__import__": _Reduce(builtins.__import__, "os"),
        "builtins.open": _Reduce(builtins.open, str(marker), "w"),
        "numpy.load": _Reduce(np.load, str(marker), None, True),
        "numpy.save": _Reduce(np.save, str(marker), np.ones(1)),
        "pathlib.Path.touch": _Reduce(Path.touch, marker),
        "torch.save": _Reduce(torch.save, {}, str(marker)),
    }


def _raw_payloads(marker: Path) -> dict[str, bytes]:
    """Hand-written pickles aiming at the allowed globals' edges."""
    cmd = f"touch {marker}".encode()
    system = b"cos\nsystem\n"
    return {
        # INST / OBJ (protocol 0/1 opcodes inside a protocol-2 pickle)
        "INST os.system": b"\x80\x02(X" + struct.pack("<I", len(cmd)) + cmd + b"ios\nsystem\n.",
        "OBJ os.system": b"\x80\x02(" + system + b"X" + struct.pack("<I", len(cmd)) + cmd + b"o.",
        # an allowed name called with a callable argument
        "_reconstruct(os.system)": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n("
        + system
        + b"X"
        + struct.pack("<I", len(cmd))
        + cmd
        + b"tR.",
        # BUILD on an allowed container, trying to set __class__ / __reduce__
        "OrderedDict BUILD __class__": b"\x80\x02ccollections\nOrderedDict\n)R}X\t\x00\x00\x00"
        b"__class__" + system + b"sb.",
        "dict(os.system)": b"\x80\x02cbuiltins\ndict\n(" + system + b"tR.",
        "STACK_GLOBAL posix.system": _frame(
            b"\x8c\x05posix\x8c\x06system\x93\x8c" + bytes([len(cmd)]) + cmd + b"\x85R"
        ),
        "copyreg._reconstructor": b"\x80\x02ccopyreg\n_reconstructor\n(" + system + b"NNtR.",
        "torch._utils in a pickle": b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n.",
        "persistent id": b"\x80\x02X\x07\x00\x00\x00storageQ.",
    }


@pytest.mark.parametrize("container", ["pickle-p2", "pickle-p5", "torch-zip", "torch-legacy"])
def test_malicious_payloads_never_run(tmp_path, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    count = 0
    for name, evil in _payloads(marker).items():
        obj = {"conv2d_0.w_0": np.ones(2), "meta": [evil]}
        if container.startswith("pickle"):
            path.write_bytes(pickle.dumps(obj, protocol=2 if container == "pickle-p2" else 5))
        else:
            torch.save(
                {"state_dict": {"w": torch.ones(2)}, "meta": evil},
                path,
                _use_new_zipfile_serialization=container == "torch-zip",
            )
        for reader in ("read_checkpoint", "omniconv inspect", "omniconv convert"):
            error = _refused(reader, path)
            assert not marker.exists(), (name, reader)
            if reader == "read_checkpoint":
                assert isinstance(error, UnsafeCheckpointError), (name, error)
                assert "refusing to unpickle global" in str(error)
            count += 1
    assert count == 3 * len(_payloads(marker))


def test_hand_written_malicious_pickles(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    for name, data in _raw_payloads(marker).items():
        path.write_bytes(data)
        for reader in ("read_checkpoint", "omniconv inspect"):
            error = _refused(reader, path)
            assert not marker.exists(), (name, reader)
            assert isinstance(error, CheckpointError if reader == "read_checkpoint" else ValueError)


def test_gluon_reader_takes_no_pickles(tmp_path):
    """The MXNet reader parses a fixed binary layout: a pickle (even a harmless one, or a
    malicious one) is not an NDArray list."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.params"
    path.write_bytes(pickle.dumps(_payloads(marker)["os.system"], protocol=2))
    for reader in GLUON:
        error = _refused(reader, path)
        assert "Invalid NDArray file format" in str(error) and not marker.exists()


def test_names_in_a_file_never_become_paths(tmp_path):
    """Tensor names such as ``../../x`` or an absolute path are keys, never paths: converting
    writes the destination and nothing else."""
    work = tmp_path / "work"
    work.mkdir()
    names = ["../escaped", "../../escaped2", str(tmp_path / "absolute"), "a/../../b", "\0nul"]
    src = work / "names.safetensors"
    write_checkpoint({n: torch.ones(1) for n in names}, src)
    pkl = work / "names.pkl"
    pkl.write_bytes(pickle.dumps({n: np.ones(1) for n in names}, protocol=4))
    for source in (src, pkl):
        dst = work / f"{source.stem}.out.pt"
        assert cli.main(["convert", "-q", str(source), str(dst)]) == 0
        assert sorted(torch.load(dst, weights_only=True)) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert sorted(p.name for p in work.iterdir()) == sorted(
        ["names.safetensors", "names.pkl", "names.out.pt"]
    )


# --------------------------------------------------------------------------- writers


def _gluon_net():
    with gluon.NameManager():
        net = gnn.HybridSequential()
        net.add(gnn.Conv2D(4, 3, in_channels=2), gnn.Conv2D(2, 1, in_channels=4))
    net.initialize()
    return net


def _write_with(writer: str, dst: Path) -> None:
    if writer == "write_checkpoint":
        write_checkpoint({f"t{i}": torch.randn(256) for i in range(8)}, dst)
    elif writer == "omniconv convert":
        src = dst.with_name("src.safetensors")
        if not src.exists():
            write_checkpoint({f"t{i}": torch.randn(256) for i in range(8)}, src)
        status = cli.main(["convert", "-q", str(src), str(dst)])
        if status:
            raise OSError("convert failed")
    elif writer == "gluon save_parameters":
        _gluon_net().save_parameters(str(dst))
    elif writer == "gluon ParameterDict.save":
        _gluon_net().collect_params().save(str(dst))
    else:  # gluon export: <prefix>-symbol.json and <prefix>-0000.params
        net = _gluon_net()
        net.hybridize()
        net(np.ones((1, 2, 5, 5), np.float32))
        net.export(str(dst).removesuffix(".params").removesuffix("-0000"))


WRITERS = {
    "write_checkpoint": ".safetensors",
    "omniconv convert": ".pt",
    "gluon save_parameters": ".params",
    "gluon ParameterDict.save": ".params",
    "gluon export": "-0000.params",
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch, writer):
    dst = tmp_path / f"out{WRITERS[writer]}"
    _write_with(writer, dst)  # a first, complete file
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = os.fdopen
    monkeypatch.setattr(_atomic.os, "fdopen", lambda fd, mode: _FailingFile(real(fd, mode), 100))
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises((OSError, RuntimeError)):
        _write_with(writer, dst)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # the old files intact, no temporary file left


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_unwritable_destinations_are_refused_naming_them(tmp_path, writer):
    missing = tmp_path / "no" / "such" / f"dir{WRITERS[writer]}"
    a_dir = tmp_path / f"d{WRITERS[writer]}"
    a_dir.mkdir()
    for dst in (missing, a_dir):
        if writer == "omniconv convert":
            src = tmp_path / "src.safetensors"
            write_checkpoint({"a": torch.ones(1)}, src)
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                assert cli.main(["convert", "-q", str(src), str(dst)]) == 1
            assert str(dst) in err.getvalue()
            continue
        with pytest.raises(OSError) as info:
            _write_with(writer, dst)
        shown = [str(dst)]
        if writer == "gluon export":  # or the first file export writes
            shown.append(str(dst).removesuffix("-0000.params") + "-symbol.json")
        assert info.value.filename in shown and info.value.filename in str(info.value)
    assert not missing.parent.exists() and a_dir.is_dir() and not any(a_dir.iterdir())


def test_written_files_read_back(tmp_path):
    """The atomic Gluon writers write what MXNet's reader (ours) reads back."""
    net = _gluon_net()
    net.save_parameters(str(tmp_path / "n.params"))
    again = _gluon_net()
    again.load_parameters(str(tmp_path / "n.params"))
    for a, b in zip(net.collect_params().values(), again.collect_params().values(), strict=True):
        assert torch.equal(a.data(), b.data())
    assert sorted(os.listdir(tmp_path)) == ["n.params"]
