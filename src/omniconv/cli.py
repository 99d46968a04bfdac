"""The ``omniconv`` command line: ``omniconv demo``, ``omniconv bench``."""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["main"]

DEMO_TOLERANCE = 1e-4  # float32 layers vs float64 references on O(1) data


def _demo(args: argparse.Namespace) -> int:
    from .demo import format_table, run_demo

    t0 = time.perf_counter()
    rows = run_demo(seed=args.seed)
    print(format_table(rows))
    bad = [r.layer for r in rows if not r.max_error <= DEMO_TOLERANCE]
    elapsed = time.perf_counter() - t0
    if bad:
        print(f"FAILED (error > {DEMO_TOLERANCE:g}): {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"all {len(rows)} layers match their float64 references ({elapsed:.1f} s)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import json

    from .bench import format_table, run_bench

    result = run_bench(
        quick=args.quick,
        repeats=args.repeats,
        layouts=tuple(args.layout),
        paddle_python=args.paddle_python,
        mxnet_python=args.mxnet_python,
        with_pure=not args.no_peers,
        with_grid=not args.no_peers,
        progress=not args.no_progress,
        threads=args.threads,
    )
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omniconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run every layer on a sample image, check it, print a table")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    bench = sub.add_parser(
        "bench", help="time deformable conv and the conv wrappers against dense torch convs"
    )
    bench.add_argument("--quick", action="store_true", help="one small shape, few repeats")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.add_argument("--repeats", type=int, default=None, help="timed runs per contender")
    bench.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    bench.add_argument(
        "--layout", action="append", choices=("NCHW", "channels_last"), default=None,
        help="input memory format(s) (default: both)",
    )  # fmt: skip
    bench.add_argument("--paddle-python", help="interpreter with paddle: run its DCNv2 as a peer")
    bench.add_argument("--mxnet-python", help="interpreter with mxnet: run its DCNv2 as a peer")
    bench.add_argument(
        "--no-peers", action="store_true", help="skip the pure-PyTorch and grid_sample peers"
    )
    bench.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    bench.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    if getattr(args, "layout", "") is None:
        args.layout = ["NCHW", "channels_last"]
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
