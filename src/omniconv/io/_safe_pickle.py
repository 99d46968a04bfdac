"""A restricted unpickler: numpy arrays, dtypes, numpy scalars and plain containers only.

``pickle`` runs whatever callable a file names (``os.system`` included). Here every
global a pickle asks for goes through :meth:`SafeUnpickler.find_class`, which answers
with omniconv's own stand-ins for the few numpy and builtin globals that Paddle,
MegEngine and numpy write, and refuses every other name (:class:`UnsafeGlobal`, naming
it) before anything is called. The stand-ins check their arguments and build the
objects themselves:

* ``numpy.core.multiarray._reconstruct`` + ``BUILD`` (protocols 2-4) and
  ``numpy.core.numeric._frombuffer`` (protocol 5), also under ``numpy._core`` (numpy 2):
  arrays of bool, integer, float or complex dtypes whose raw bytes have exactly the
  size the shape and dtype need (object arrays are refused);
* ``numpy.dtype`` + ``BUILD``: those dtypes, in either byte order (no structured,
  sub-array or object dtypes);
* ``numpy.core.multiarray.scalar``: numpy scalars of those dtypes;
* ``collections.OrderedDict``, ``builtins.tuple`` / ``list`` / ``set`` / ``frozenset``
  / ``dict`` / ``bytearray`` / ``complex``, and ``_codecs.encode`` / ``bytes()`` (how
  protocol 2 writes bytes), each with checked arguments.

Persistent ids (torch's storages) are refused too. :data:`TORCH_SAFE_GLOBALS` hands the
same numpy stand-ins to ``torch.load(weights_only=True)``, whose own allow-list refuses
numpy scalars.

Before anything is unpickled, :func:`check_lengths` walks the opcodes and checks every
length a pickle declares (bytes, strings, big ints, frames) against the bytes left in the
file, and every memo index against the number of opcodes read: CPython's unpickler
allocates a declared length before it reads the bytes (a 30-byte file asking for 8 GiB)
and grows its memo to twice a declared index.
"""

from __future__ import annotations

import collections
import contextvars
import math
import pickle
import pickletools
import reprlib
import struct
from collections.abc import Callable
from typing import IO, Any

import numpy as np

__all__ = [
    "TORCH_SAFE_GLOBALS",
    "SafeUnpickler",
    "UnsafeGlobal",
    "brief",
    "check_lengths",
    "safe_load",
]

# numpy dtype kinds a checkpoint may hold: bool, signed / unsigned integers, floats, complex
_KINDS = frozenset("biufc")


class UnsafeGlobal(Exception):
    """A pickle asked for a global that is not allowed (``name``: ``module.qualname``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _Bad(Exception):
    """Malformed numpy or container data inside a pickle (the message says what)."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 40, 40, 40


def brief(value: Any, width: int = 80) -> str:
    """A short ``repr`` of data read from a file (bounded in depth and length, whatever
    the object's size or nesting)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"<an int of {value.bit_length()} bits>"
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int too long to print, deeper inside
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= width else text[: width - 3] + "..."


# the bytes of numpy arrays the current unpickling may still build: the file's size (an
# array's bytes are in the file; memo references could otherwise repeat them)
_BUDGET: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "omniconv_pickle_budget", default=None
)


def _spend(nbytes: int, where: str) -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    if nbytes > budget[0]:
        raise _Bad(
            f"{where}: its arrays would hold more bytes than the file has ({nbytes} more, "
            f"{budget[0]} left): the pickle repeats data through memo references"
        )
    budget[0] -= nbytes


def _check_dtype(dtype: np.dtype, where: str) -> np.dtype:
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise _Bad(f"{where}: dtype {dtype} is not a bool, integer, float or complex dtype")
    return dtype


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(
        type(d) is int and d >= 0 for d in value
    ):  # bool is not a dimension
        raise _Bad(f"{where}: shape {brief(value)} is not a tuple of non-negative ints")
    if len(value) > 64:
        raise _Bad(f"{where}: {len(value)} dimensions")
    return value


class _DTypeSpec:
    """What ``numpy.dtype(code, align, copy)`` + ``BUILD(state)`` describe, checked;
    :meth:`resolve` gives the numpy dtype."""

    def __init__(self, code: Any, align: Any = False, copy: Any = False) -> None:
        if not isinstance(code, str) or not code.isalnum() or len(code) > 4:
            raise _Bad(f"numpy.dtype({brief(code, 40)}): not a simple dtype code")
        try:
            dtype = np.dtype(code)
        except TypeError as err:
            raise _Bad(f"numpy.dtype({code!r}): {err}") from None
        self.dtype = _check_dtype(dtype, f"numpy.dtype({code!r})")

    def __setstate__(self, state: Any) -> None:
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise _Bad(f"numpy.dtype state {brief(state)} is not a simple dtype's")
        byteorder, subarray, names, fields = state[1:5]
        if byteorder not in ("<", ">", "|", "=") or (subarray, names, fields) != (None,) * 3:
            raise _Bad(f"numpy.dtype state {brief(state)} is not a simple dtype's")
        if self.dtype.itemsize > 1 and byteorder != "|":
            self.dtype = self.dtype.newbyteorder(byteorder)

    def resolve(self) -> np.dtype:
        return self.dtype

    def __repr__(self) -> str:
        return f"dtype({self.dtype.str!r})"


def _as_dtype(value: Any, where: str) -> np.dtype:
    if isinstance(value, _DTypeSpec):
        return value.resolve()
    raise _Bad(f"{where}: {type(value).__name__} is not a numpy dtype")


def _raw_bytes(value: Any, where: str) -> bytes | bytearray:
    if isinstance(value, pickle.PickleBuffer):
        value = value.raw().tobytes()
    if not isinstance(value, bytes | bytearray):
        raise _Bad(f"{where}: data of type {type(value).__name__} (object arrays are refused)")
    return value


def _from_bytes(
    raw: bytes | bytearray, dtype: np.dtype, shape: tuple[int, ...], fortran: bool, where: str
) -> np.ndarray:
    need = math.prod(shape) * dtype.itemsize
    if len(raw) != need:
        raise _Bad(
            f"{where}: {len(raw)} data bytes for shape {brief(shape)} of {dtype} (needs {need})"
        )
    _spend(need, where)
    flat = np.frombuffer(raw, dtype=dtype) if need else np.empty(0, dtype=dtype)
    return flat.reshape(shape, order="F" if fortran else "C")


def _make_dtype(code: Any, align: Any = False, copy: Any = False) -> _DTypeSpec:
    return _DTypeSpec(code, align, copy)


class _Array(np.ndarray):
    """The array ``numpy.core.multiarray._reconstruct`` starts; its ``BUILD`` state
    (``(version, shape, dtype, is_fortran, raw_bytes)``) is checked, then numpy's own
    ``__setstate__`` fills it in."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Bad(f"array state of type {type(state).__name__} / length is not numpy's")
        if len(state) == 5:
            if type(state[0]) is not int:
                raise _Bad(f"array state version {brief(state[0], 40)}")
            state = state[1:]
        shape = _shape(state[0], "array")
        dtype = _as_dtype(state[1], "array")
        fortran = state[2]
        if not isinstance(fortran, bool):
            raise _Bad(f"array is_fortran flag {brief(fortran, 40)}")
        raw = _raw_bytes(state[3], "array")
        _from_bytes(raw, dtype, shape, fortran, "array")  # checks the size
        super().__setstate__((1, shape, dtype, fortran, raw))  # type: ignore[arg-type]


class _Marker:
    """A global that may only appear as an argument (``numpy.ndarray``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_NDARRAY = _Marker("numpy.ndarray")


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> _Array:
    if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise _Bad(f"_reconstruct{brief((subtype, shape, typecode))} is not a plain ndarray's")
    return np.ndarray.__new__(_Array, (0,), dtype="b")


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if order not in ("C", "F"):
        raise _Bad(f"_frombuffer order {brief(order, 40)}")
    where = "array (protocol 5)"
    return _from_bytes(
        _raw_bytes(buffer, where),
        _as_dtype(dtype, where),
        _shape(shape, where),
        order == "F",
        where,
    )


def _scalar(dtype: Any, data: Any = None) -> Any:
    dt = _as_dtype(dtype, "numpy scalar")
    raw = _raw_bytes(data, "numpy scalar")
    return _from_bytes(raw, dt, (), False, "numpy scalar")[()]


class _OrderedDict(collections.OrderedDict):
    """``collections.OrderedDict`` whose ``BUILD`` state (instance attributes) may hold
    torch's ``_metadata`` (a plain dict) and nothing else."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or set(state) - {"_metadata"}:
            raise _Bad(f"OrderedDict state {brief(state)}")
        if "_metadata" in state:
            self._metadata = state["_metadata"]


def _plain(kind: type) -> Callable[..., Any]:
    def build(*args: Any) -> Any:
        if len(args) > 1 or (args and not isinstance(args[0], list | tuple | dict | set)):
            raise _Bad(f"{kind.__name__}{brief(args)}")
        return kind(*args)

    build.__name__ = kind.__name__
    return build


def _bytearray(*args: Any) -> bytearray:
    if len(args) > 1 or (args and not isinstance(args[0], bytes | bytearray)):
        raise _Bad(f"bytearray{brief(args)}")
    return bytearray(*args)


def _bytes(*args: Any) -> bytes:
    if args:  # protocol 2 writes b"" as bytes(); other bytes through _codecs.encode
        raise _Bad(f"bytes{brief(args)}")
    return b""


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if not all(type(v) in (int, float) for v in (real, imag)):
        raise _Bad(f"complex({brief(real, 40)}, {brief(imag, 40)})")
    return complex(real, imag)


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Bad(f"_codecs.encode({type(text).__name__}, {brief(encoding, 20)})")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _make_dtype,
    ("collections", "OrderedDict"): _OrderedDict,
    ("_codecs", "encode"): _encode,
}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _scalar
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _frombuffer
for _builtins in ("builtins", "__builtin__"):
    for _kind in (tuple, list, set, frozenset, dict):
        _ALLOWED[(_builtins, _kind.__name__)] = _plain(_kind)
    _ALLOWED[(_builtins, "bytearray")] = _bytearray
    _ALLOWED[(_builtins, "bytes")] = _bytes
    _ALLOWED[(_builtins, "complex")] = _complex

#: ``(stand-in, "module.name")`` pairs for ``torch.serialization.safe_globals``: numpy
#: arrays, dtypes and scalars inside a torch checkpoint, built by the stand-ins above
#: (the types whose ``BUILD`` torch must allow are listed under names no file uses).
TORCH_SAFE_GLOBALS: list[Any] = [
    (obj, f"{module}.{name}")
    for (module, name), obj in _ALLOWED.items()
    if module.startswith("numpy")
] + [
    (_Array, "omniconv.io._safe_pickle._Array"),
    (_DTypeSpec, "omniconv.io._safe_pickle._DTypeSpec"),
]


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that builds only what :data:`_ALLOWED` names."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UnsafeGlobal(f"{module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise _Bad(f"persistent id {brief(pid, 60)} (a torch or other framework object)")


class PickleDataError(Exception):
    """The pickle is malformed, truncated or holds malformed numpy data."""


_OPCODES = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
# argument sizes read from the file (pickletools' TAKEN_FROM_ARGUMENT* markers)
_COUNTED = {
    pickletools.TAKEN_FROM_ARGUMENT1: "<B",
    pickletools.TAKEN_FROM_ARGUMENT4: "<i",
    pickletools.TAKEN_FROM_ARGUMENT4U: "<I",
    pickletools.TAKEN_FROM_ARGUMENT8U: "<Q",
}
_MALFORMED = "truncated or malformed pickle data"
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})


def check_lengths(file: IO[bytes], size: int) -> None:
    """Walk the opcodes of the pickle at ``file``'s position (``size``: the file's size)
    without building anything: every declared length (bytes, strings, big ints, frames)
    must fit in the bytes left, every memo index must not exceed the number of memo
    writes before it. Leaves the file at the end of the pickle; :class:`PickleDataError`
    otherwise. Reads only opcodes and their small arguments (it seeks over data)."""
    puts = 0
    while True:
        pos = file.tell()
        code = file.read(1)
        op = _OPCODES.get(code)
        if op is None:
            what = "the end of the file" if not code else f"opcode {code!r}"
            raise PickleDataError(f"{_MALFORMED} ({what} at byte {pos})")
        arg, value = op.arg, None
        if arg is not None:
            if arg.n >= 0:  # fixed size
                raw = file.read(arg.n)
                if len(raw) != arg.n:
                    raise PickleDataError(f"{_MALFORMED} ({op.name} at byte {pos})")
                if op.name in ("FRAME", "LONG_BINPUT", "BINPUT"):
                    value = int.from_bytes(raw, "little")
            elif arg.n == pickletools.UP_TO_NEWLINE:  # GLOBAL and INST: two lines
                for _ in range(2 if arg.name == "stringnl_noescape_pair" else 1):
                    line = file.readline(size + 1)
                    if not line.endswith(b"\n"):
                        raise PickleDataError(f"{_MALFORMED} ({op.name} at byte {pos})")
                if op.name == "PUT":
                    value = int(line) if line[:-1].isdigit() else -1
            else:
                fmt = _COUNTED[arg.n]
                raw = file.read(struct.calcsize(fmt))
                if len(raw) != struct.calcsize(fmt):
                    raise PickleDataError(f"{_MALFORMED} ({op.name} at byte {pos})")
                (n,) = struct.unpack(fmt, raw)
                left = size - file.tell()
                if not 0 <= n <= left:
                    raise PickleDataError(
                        f"{_MALFORMED}: {op.name} at byte {pos} declares {n} bytes, "
                        f"{left} are left in the file"
                    )
                file.seek(n, 1)
        if op.name == "FRAME" and value is not None and value > size - file.tell():
            raise PickleDataError(
                f"{_MALFORMED}: a frame at byte {pos} declares {value} bytes, "
                f"{size - file.tell()} are left in the file"
            )
        if op.name in _MEMO_PUTS:
            if value is not None and not 0 <= value <= puts:
                raise PickleDataError(
                    f"{_MALFORMED}: {op.name} at byte {pos} writes memo entry "
                    f"{value} after {puts} memo writes"
                )
            puts += 1
        if op.name == "STOP":
            return


def safe_load(file: IO[bytes], size: int, *, scan: IO[bytes] | None = None) -> Any:
    """Unpickle ``file`` (of ``size`` bytes) with :class:`SafeUnpickler`. Raises
    :class:`UnsafeGlobal` for a refused global and :class:`PickleDataError` for anything
    malformed (truncation, bad opcodes, bad numpy data, a declared size beyond the file).

    Every length the pickle declares is checked against ``size`` first
    (:func:`check_lengths`, reading ``scan``: the same file without a progress wrapper,
    at the same position; ``file`` by default)."""
    scan = file if scan is None else scan
    start = scan.tell()
    check_lengths(scan, size)
    scan.seek(start)
    token = _BUDGET.set([size])
    try:
        return SafeUnpickler(file).load()
    except UnsafeGlobal:
        raise
    except _Bad as err:
        raise PickleDataError(str(err)) from None
    except (EOFError, pickle.UnpicklingError) as err:
        raise PickleDataError(f"truncated or malformed pickle data ({err or 'no data'})") from None
    except MemoryError:
        raise PickleDataError("corrupted pickle data (a size larger than memory)") from None
    except RecursionError:
        raise PickleDataError("pickle data nested too deeply") from None
    except Exception as err:  # any other failure of malformed data inside the unpickler
        raise PickleDataError(
            f"malformed pickle data ({type(err).__name__}: {str(err)[:200]})"
        ) from None
    finally:
        _BUDGET.reset(token)
