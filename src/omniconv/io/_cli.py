"""omniconv convert and omniconv inspect (the parsers are in omniconv.cli).

The help texts below are plain text: they are the commands' descriptions."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._detect import ALIASES, FORMATS
from ._mapping import MAPPINGS

__all__ = [
    "CONVERT_HELP",
    "INSPECT_HELP",
    "add_convert_arguments",
    "add_inspect_arguments",
    "convert",
    "inspect",
]

LARGE = 64 * 1024 * 1024  # files from this size on get a progress bar by default

CONVERT_HELP = (
    """\
Read a checkpoint written by Paddle, MXNet, MegEngine, PyTorch / mmcv (or a safetensors
file) and write its tensors to DST: a safetensors file when DST ends in .safetensors, a
torch.save file when it ends in .pt or .pth.

The format is read from SRC's bytes, not its name: MXNet .params (NDArray list), Paddle
.pdparams / .pdopt and MegEngine .pkl / .mge (pickles of numpy arrays; a pickle with
Paddle's marks is Paddle's), torch .pth (zip or legacy; read with
torch.load(weights_only=True)), safetensors. Pickles are read by a restricted unpickler:
anything but numpy arrays, dtypes, scalars and plain containers is refused, and nothing
in the file runs. A checkpoint holding its state dict under "state_dict" (mmcv, mmengine)
or "model" gives that state dict.

--map NAME renames the tensors and converts their layouts for omniconv's modules:
"""
    + "\n".join(f"  {name:<10} {text}" for name, (_, text) in MAPPINGS.items())
    + """

DST is written to a temporary file beside it and renamed at the end: a failure leaves
no partial file. Files of 64 MiB or more show a progress bar on stderr."""
)

INSPECT_HELP = """\
Print a checkpoint's detected format, how it is stored, and each tensor's name, shape and
dtype (as read_checkpoint reads it), then what else the file holds (metadata)."""


def _framework_choices() -> list[str]:
    return [*FORMATS, *ALIASES]


def add_convert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC", help="the checkpoint to read")
    p.add_argument("dst", metavar="DST", help="the file to write (.safetensors, .pt or .pth)")
    p.add_argument(
        "--framework",
        choices=_framework_choices(),
        help="the framework that wrote SRC, where its bytes leave a choice (a pickle of "
        "numpy arrays: paddle or megengine); otherwise it must agree with them",
    )
    p.add_argument("--map", choices=list(MAPPINGS), help="map names and layouts (see above)")
    p.add_argument(
        "--layout",
        choices=("NCHW", "NHWC"),
        default="NCHW",
        help="with --map gluon: the layout of the MXNet layers (NCHW)",
    )
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", action="store_true", help="always show the progress bar")
    bar.add_argument("--no-progress", action="store_true", help="never show the progress bar")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing when done")


def add_inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="SRC", help="the checkpoint to read")
    p.add_argument(
        "--framework",
        choices=_framework_choices(),
        help="as for convert: where bytes leave a choice",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _failing(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Errors of the input (bad files, bad values) as one line on stderr and status 1."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (ValueError, TypeError, OSError) as err:
            text = " ".join(str(err).split())
            print(f"omniconv {args.command}: error: {text}", file=sys.stderr)
            return 1

    return wrapped


def _dtype(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@_failing
def convert(args: argparse.Namespace) -> int:
    from ._mapping import map_checkpoint
    from ._read import load_checkpoint
    from ._write import WRITERS, write_checkpoint

    src, dst = Path(args.src), Path(args.dst)
    # DST first, before SRC is read (write_checkpoint checks the same, naming `path`)
    if dst.suffix.lower() not in WRITERS:
        raise ValueError(f"`DST` must end in {', '.join(WRITERS)}; received DST={args.dst!r}")
    if not dst.parent.is_dir():
        raise ValueError(f"`DST` must be in an existing directory; received DST={args.dst!r}")
    progress = args.progress or (not args.no_progress and src.stat().st_size >= LARGE)
    ckpt = load_checkpoint(src, args.framework, progress=progress)
    tensors = ckpt.tensors
    if args.map == "gluon":
        tensors = map_checkpoint(tensors, "gluon", layout=args.layout)
    elif args.map is not None:
        tensors = map_checkpoint(tensors, args.map)
    elif args.layout != "NCHW":
        raise ValueError("`--layout` must be used with `--map gluon`; received --layout NHWC")
    metadata = {"format": "pt", "omniconv.source_format": ckpt.format}
    if args.map:
        metadata["omniconv.map"] = args.map
    kind = write_checkpoint(tensors, dst, metadata=metadata, progress=progress)
    if not args.quiet:
        nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
        mapped = f", mapped by {args.map}" if args.map else ""
        print(
            f"{dst}: {len(tensors)} tensors ({_size(nbytes)}) from {ckpt.format} "
            f"checkpoint {src}{mapped}, written as {kind}"
        )
    return 0


@_failing
def inspect(args: argparse.Namespace) -> int:
    from ._read import load_checkpoint

    ckpt = load_checkpoint(args.src, args.framework)
    rows = [(k, list(t.shape), _dtype(t)) for k, t in ckpt.tensors.items()]
    nbytes = sum(t.numel() * t.element_size() for t in ckpt.tensors.values())
    if args.json:
        print(
            json.dumps(
                {
                    "path": ckpt.path,
                    "format": ckpt.format,
                    "container": ckpt.container,
                    "entry": ckpt.entry,
                    "tensors": [{"name": n, "shape": s, "dtype": d} for n, s, d in rows],
                    "metadata": ckpt.metadata,
                },
                indent=1,
            )
        )
        return 0
    where = f", state dict under {ckpt.entry!r}" if ckpt.entry else ""
    print(f"{ckpt.path}: {ckpt.format} checkpoint ({ckpt.container}{where})")
    print(f"{len(rows)} tensors, {_size(nbytes)}")
    if rows:
        shapes = [str(tuple(s)) for _, s, _ in rows]
        wn = max(len("name"), *(len(n) for n, _, _ in rows))
        ws = max(len("shape"), *(len(s) for s in shapes))
        print(f"{'name':<{wn}}  {'shape':<{ws}}  dtype")
        for (name, _, dtype), shape in zip(rows, shapes, strict=True):
            print(f"{name:<{wn}}  {shape:<{ws}}  {dtype}")
    if ckpt.metadata:
        print("metadata (not read as tensors):")
        for key, text in ckpt.metadata.items():
            print(f"  {key}: {text}")
    return 0
