"""The omniconv command line: omniconv demo, omniconv bench, omniconv --version.

The help texts are the demo's and the bench's module docstrings, written as plain text.
A bad argument is one line on stderr, ``omniconv COMMAND: error: argument --NAME: ...``
naming the argument, the rule and the value, and exit status 2 (argparse's); a file that
cannot be read or written is one line and status 1."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from . import __version__

__all__ = ["main"]

DESCRIPTION = """\
omniconv: the 2-D convolution layers of PaddlePaddle, MXNet Gluon and MegEngine on PyTorch,
with each framework's exact numbers, and a portable deformable convolution."""


class _Parser(argparse.ArgumentParser):
    """argparse with a usage error as one line (``PROG: error: MESSAGE``, no usage block),
    exit status 2."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see '{self.prog} -h')\n")


def _int_type(rule: str, low: int, high: int | None = None) -> Any:
    """An argparse type: an int in ``[low, high]``; the error says ``rule`` and the value."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule}; received {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {rule}; received {value}")
        return value

    return convert


_positive_int = _int_type("a positive integer", 1)
#: torch.manual_seed's range
_seed = _int_type(
    "an integer in [-2**63, 2**64 - 1] (torch.manual_seed's range)", -(2**63), 2**64 - 1
)


def _demo(args: argparse.Namespace) -> int:
    from .demo import main as demo

    return demo(seed=args.seed, plot=args.plot)


def _peer(text: str) -> tuple[str, str]:
    """``NAME=PYTHON`` or ``NAME`` (this interpreter)."""
    from .bench import available_peers

    name, _, python = text.partition("=")
    if name not in available_peers() and not name.endswith(".py"):
        known = ", ".join(available_peers())
        raise argparse.ArgumentTypeError(f"unknown peer {name!r} (known: {known}, or a .py file)")
    return name, python or sys.executable


def _bench(args: argparse.Namespace) -> int:
    import json

    from .bench import format_table, run_bench

    peers = list(args.peer)
    peers += [("paddle", args.paddle_python)] if args.paddle_python else []
    peers += [("mxnet", args.mxnet_python)] if args.mxnet_python else []
    result = run_bench(
        quick=args.quick,
        rounds=args.rounds,
        layouts=args.layout or ("NCHW", "channels_last"),
        peers=peers,
        baselines=not args.no_baselines,
        progress=not args.no_progress,
        threads=args.threads,
        autocast=args.autocast,
        scale=args.scale,
    )
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    failed = [
        name
        for name, p in result["peers"].items()
        if "error" in p or not all(r.get("agreement", {}).get("ok") for r in p["rows"])
    ]
    if failed:
        print(f"peer failed or differs from omniconv: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    from . import bench, demo

    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="omniconv",
        description=DESCRIPTION,
        formatter_class=raw,
        epilog="'omniconv COMMAND -h' explains a command and lists its options",
    )
    parser.add_argument("--version", action="version", version=f"omniconv {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", required=True)

    d = sub.add_parser(
        "demo",
        help="run each layer on a test image, checked against float64 references",
        description=demo.__doc__,
        formatter_class=raw,
    )
    d.add_argument("--seed", type=_seed, default=0, help="seed of the layers' parameters (0)")
    d.add_argument(
        "--plot",
        nargs="?",
        const=demo.PLOT_PATH,
        metavar="PATH",
        help="also train a small deformable conv and draw where it samples, a PNG at PATH "
        f"(default {demo.PLOT_PATH}; needs matplotlib: pip install 'omniconv[viz]')",
    )
    d.set_defaults(func=_demo)

    b = sub.add_parser(
        "bench",
        help="time the deformable conv against dense torch convs (and other frameworks')",
        description=bench.__doc__,
        formatter_class=raw,
        epilog="exit status: 1 when a peer fails or its outputs differ from omniconv's, else 0",
    )
    b.add_argument("--quick", action="store_true", help="one small shape, 3 rounds")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.add_argument(
        "--rounds", "--repeats", type=_positive_int, help="rounds per DCN row (15; 3 if --quick)"
    )
    b.add_argument("--threads", type=_positive_int, default=2, help="torch.set_num_threads (2)")
    b.add_argument(
        "--layout",
        action="append",
        choices=("NCHW", "channels_last"),
        help="input memory format; repeat for both (default: both)",
    )
    b.add_argument(
        "--peer",
        action="append",
        type=_peer,
        default=[],
        metavar="NAME[=PYTHON]",
        help="run peer NAME (" + ", ".join(bench.available_peers()) + ") in interpreter PYTHON "
        "(default: this one); repeatable",
    )
    b.add_argument("--paddle-python", metavar="PYTHON", help="same as --peer paddle=PYTHON")
    b.add_argument("--mxnet-python", metavar="PYTHON", help="same as --peer mxnet=PYTHON")
    b.add_argument(
        "--no-baselines", action="store_true", help="skip the pure_torch and grid_sample rows"
    )
    b.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    b.add_argument(
        "--autocast",
        action="store_true",
        help="also time the DCN and the dense conv under torch.autocast('cpu', bfloat16) "
        "against float32, with their accuracy",
    )
    b.add_argument(
        "--scale",
        action="store_true",
        help="also time forward+backward and measure peak memory of a growing map "
        "(1,64,H,H for H = 128, 256, 512) and batch (B,128,28,28 for B = 16, 32, 64), and "
        "1 vs 2 threads at the largest of each (tiny shapes with --quick)",
    )
    b.set_defaults(func=_bench)
    _add_checkpoint_commands(sub, raw)
    return parser


def _add_checkpoint_commands(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """omniconv convert and omniconv inspect (omniconv.io)."""
    from .io import _cli

    c = sub.add_parser(
        "convert",
        help="convert a Paddle / MXNet / MegEngine / torch checkpoint to safetensors or .pt",
        description=_cli.CONVERT_HELP,
        formatter_class=formatter,
        epilog="exit status: 1 when SRC cannot be read or DST cannot be written, else 0",
    )
    _cli.add_convert_arguments(c)
    c.set_defaults(func=_cli.convert)
    i = sub.add_parser(
        "inspect",
        help="list a checkpoint's tensors (names, shapes, dtypes) and its detected format",
        description=_cli.INSPECT_HELP,
        formatter_class=formatter,
        epilog="exit status: 1 when SRC cannot be read, else 0",
    )
    _cli.add_inspect_arguments(i)
    i.set_defaults(func=_cli.inspect)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
