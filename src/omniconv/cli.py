"""The ``omniconv`` command line: ``omniconv demo``, ``omniconv bench``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import main as demo

    return demo(seed=args.seed)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omniconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="check each layer against a float64 reference")
    demo.add_argument("--seed", type=int, default=0, help="seed of the layers' parameters (0)")
    demo.set_defaults(func=_demo)
    bench = sub.add_parser(
        "bench", help="time deformable conv and the conv wrappers against dense torch convs"
    )
    bench.add_argument("--quick", action="store_true", help="one small shape, 3 rounds")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument(
        "--rounds", "--repeats", type=int, help="rounds per DCN row (15; 3 if --quick)"
    )
    bench.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    bench.add_argument(
        "--layout",
        action="append",
        choices=("NCHW", "channels_last"),
        help="input memory format; repeat for both (default: both)",
    )
    bench.add_argument(
        "--peer",
        action="append",
        type=_peer,
        default=[],
        metavar="NAME[=PYTHON]",
        help="run a peer (paddle, mxnet) in interpreter PYTHON (default: this one); repeatable",
    )
    bench.add_argument("--paddle-python", metavar="PYTHON", help="same as --peer paddle=PYTHON")
    bench.add_argument("--mxnet-python", metavar="PYTHON", help="same as --peer mxnet=PYTHON")
    bench.add_argument(
        "--no-baselines", action="store_true", help="skip the pure_torch and grid_sample rows"
    )
    bench.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    bench.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
