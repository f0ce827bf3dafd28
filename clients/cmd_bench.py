"""``netpol-pdp bench``: generate benchmark worlds and run the benchmarks.

Subcommands (each documented in docs/benchmarks.md):

- ``world``    write a synthetic cluster (and optionally a flow log) as YAML files;
- ``audit``    decide a generated flow log over a folder, in-process: hits, misses, reference ratio;
- ``micro``    the pytest-benchmark micro-benchmarks (decisions, build, update events, selectors);
- ``scaling``  build / update / decision cost and peak RSS per world size, table + PNG;
- ``serve``    end-to-end over gRPC on loopback, against an echo server and the reference.

The benchmark code lives in :mod:`netpol_pdp.bench`; this module only parses
arguments and prints; the bench modules defer their heavy imports (grpc, matplotlib).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netpol_pdp.bench import audit, micro, results, scaling, serve
from netpol_pdp.bench.flowmix import MIXES, endpoints, make_flows, write_flows
from netpol_pdp.bench.worlds import SIZES, generate_world, write_world
from netpol_pdp.clients.errors import CommandError
from netpol_pdp.clients.render import plural
from netpol_pdp.index.engine import Index
from netpol_pdp.index.flows import Flow

SIZE_CHOICES = tuple(SIZES)
IDENTITIES, POLICIES = "workload identities", "network policies"
_MIX_HELP = (
    "realistic: a few service pairs carry most flows (cache hits); "
    "uniform: random ends and ports, almost every flow distinct (cache misses)"
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="generate benchmark worlds and run the benchmarks",
        description="Generate synthetic clusters and measure the index, the audit and the service. "
        "Every benchmark reports ratios taken within one run (against an echo server or the "
        "reference evaluator) and records the machine and its load beside its figures; "
        "docs/benchmarks.md explains each. Run `netpol-pdp bench SUBCOMMAND --help` for its options.",
    )
    sub = parser.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    sub.required = True

    world = sub.add_parser(
        "world",
        help="write a synthetic cluster as YAML manifests",
        description="Write a synthetic cluster (namespaces, pods, nodes, policies) as YAML files "
        "under DIR, usable as --source; optionally a flow log over it.",
    )
    world.add_argument("--size", choices=SIZE_CHOICES, default="small", help="the world's size")
    world.add_argument("--seed", type=int, default=0, help="random seed: one seed, one world")
    world.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="folder to write into")
    world.add_argument(
        "--flows", type=int, default=0, metavar="N", help="also write N flows to DIR/flows.jsonl"
    )
    world.add_argument("--mix", choices=MIXES, default="realistic", help=_MIX_HELP)

    audit = sub.add_parser(
        "audit",
        help="decide a generated flow log in-process: cache hits, misses, reference ratio",
        description="Generate a flow log over a folder of manifests and decide it in this process, "
        "as `netpol-pdp audit` does: lines/s with cache hits and misses, and the index's speed "
        "as a multiple of the reference evaluator's.",
    )
    audit.add_argument(
        "--source", type=Path, default=None, metavar="DIR", help="manifests (default: the bundled example)"
    )
    audit.add_argument("--flows", type=int, default=1_000_000, metavar="N", help="lines of the generated log")
    audit.add_argument("--mix", choices=MIXES, default="realistic", help=_MIX_HELP)
    audit.add_argument("--seed", type=int, default=0, help="random seed of the log")
    audit.add_argument(
        "--reference-sample",
        type=int,
        default=2_000,
        metavar="N",
        help="flows decided by the reference evaluator too, for the ratio",
    )
    audit.add_argument(
        "--repeat", type=int, default=3, metavar="N", help="runs of each pass; the best counts"
    )
    audit.add_argument(
        "--write-log", type=Path, metavar="FILE", help="also write the generated log (JSON Lines) to FILE"
    )
    _output(audit)

    scaling = sub.add_parser(
        "scaling",
        help="build / update / decision cost and peak RSS per world size (table + PNG)",
        description="For each world size, in a fresh process: index build time, peak RSS, one pod "
        "and one policy event, decisions/s on cache hits and misses; a table, and a PNG plot "
        "when matplotlib is installed. Compared with the targets for the large world.",
    )
    scaling.add_argument(
        "--sizes", default="small,medium,large", help=f"comma-separated sizes, of {', '.join(SIZES)}"
    )
    scaling.add_argument("--seed", type=int, default=1, help="random seed of the worlds")
    scaling.add_argument("--profile", action="store_true", help="add cProfile summaries of the hot paths")
    _output(scaling)

    micro = sub.add_parser(
        "micro",
        help="the pytest-benchmark micro-benchmarks, as a table",
        description="Run the pytest-benchmark micro-benchmarks (decisions, index build, update "
        "events, selectors) and print them as one table (needs the test extra).",
    )
    micro.add_argument(
        "--sizes",
        default="small,medium",
        help=f"comma-separated sizes, of {', '.join(SIZES)} (large is slow)",
    )
    micro.add_argument(
        "--max-time", type=float, default=1.0, metavar="S", help="seconds of time budget per benchmark"
    )
    _output(micro)

    serve = sub.add_parser(
        "serve",
        help="end-to-end over gRPC on loopback: the service vs an echo server and the reference",
        description="Start the service, an echo server (gRPC and protobuf alone) and the service "
        "over the reference evaluator, each in its own process on 127.0.0.1, and measure unary, "
        "batch and stream calls against each: flows/s, latency, and the ratios between them.",
    )
    where = serve.add_mutually_exclusive_group()
    where.add_argument(
        "--source", type=Path, default=None, metavar="DIR", help="manifests (default: the bundled example)"
    )
    where.add_argument("--size", choices=SIZE_CHOICES, help="a generated world instead of a folder")
    serve.add_argument("--seed", type=int, default=0, help="random seed of the world and the flows")
    serve.add_argument("--duration", type=float, default=3.0, metavar="S", help="seconds per load shape")
    serve.add_argument("--batch", type=int, default=1_000, metavar="N", help="flows per batch message")
    serve.add_argument("--window", type=int, default=4, metavar="N", help="stream batches in flight")
    serve.add_argument(
        "--server-mode",
        choices=("aio", "sync"),
        default="aio",
        help="the server kind measured (as serve's option)",
    )
    serve.add_argument(
        "--profile", action="store_true", help="add the service's in-process cost and its cProfile summary"
    )
    _output(serve)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    handlers = {"world": _world, "audit": _audit, "micro": _micro, "scaling": _scaling, "serve": _serve}
    return handlers[args.bench_command](args)


def _world(args: argparse.Namespace) -> int:
    out: Path = args.output
    if out.exists() and not out.is_dir():
        raise CommandError(f"bench world: {out} exists and is not a directory")
    if args.flows < 0:
        raise CommandError("bench world: --flows must not be negative")
    world = generate_world(args.size, args.seed)
    files = write_world(world, out)
    counts = world.counts()
    print(
        f"wrote {plural(len(files), 'file')} to {out}: {plural(counts['Namespace'], 'namespace')}, "
        f"{plural(counts['Pod'], 'pod')} ({plural(world.identities, 'workload identity', IDENTITIES)}), "
        f"{plural(counts['Node'], 'node')}, {plural(counts['NetworkPolicy'], 'network policy', POLICIES)} "
        f"(size {args.size}, seed {args.seed})"
    )
    if args.flows:
        index = Index.from_objects(world.objects)  # the realistic mix screens its pairs by verdict
        flows = make_flows(
            endpoints(world.objects, args.seed), args.mix, args.flows, args.seed, allowed=_oracle(index)
        )
        write_flows(flows, out / "flows.jsonl")
        print(f"wrote {plural(len(flows), args.mix + ' flow')} to {out / 'flows.jsonl'}")
    return 0


def _oracle(index: Index) -> Callable[[Flow], bool]:
    return lambda flow: index.decide(flow).allowed


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="DIR",
        help="the folder the JSON and Markdown results are written to (default: $NETPOL_PDP_BENCH_DIR, "
        "else ${XDG_CACHE_HOME:-~/.cache}/netpol-pdp/bench)",
    )


def _out_dir(args: argparse.Namespace) -> Path:
    """``--output``, or the default folder; absolute, so the closing line says where the files are."""
    out: Path = args.output if args.output is not None else results.default_dir()
    args.output = out = out.absolute()
    return out


def _audit(args: argparse.Namespace) -> int:
    _out_dir(args)
    source = args.source or audit.EXAMPLE
    if args.flows < 1:
        raise CommandError("bench audit: --flows must be at least 1")
    for name in ("reference_sample", "repeat"):
        if getattr(args, name) < 1:
            raise CommandError(f"bench audit: --{name.replace('_', '-')} must be at least 1")
    text = audit.main(
        source,
        args.flows,
        mix=args.mix,
        seed=args.seed,
        reference_sample=args.reference_sample,
        out_dir=args.output,
        repeat=args.repeat,
        write_log=args.write_log,
    )  # a SourceError reaches the CLI's handler, which lists every problem
    print(text)
    print(f"\nresults written to {args.output}/audit.json and audit.md")
    return 0


def _sizes(text: str, command: str) -> list[str]:
    sizes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or not sizes:
        raise CommandError(
            f"bench {command}: --sizes: unknown size {', '.join(unknown) or '(none given)'} "
            f"(sizes: {', '.join(SIZES)})"
        )
    return sizes


def _micro(args: argparse.Namespace) -> int:
    _out_dir(args)
    sizes = _sizes(args.sizes, "micro")
    if not args.max_time > 0 or not math.isfinite(args.max_time):
        raise CommandError("bench micro: --max-time must be a positive number of seconds")
    try:
        text = micro.main(sizes, args.output, args.max_time)
    except RuntimeError as err:  # pytest failed: its output is in the message
        raise CommandError(f"bench micro: {err}", status=1) from err
    print(text)
    print(f"\nresults written to {args.output}/micro.json and micro.md")
    return 0


def _scaling(args: argparse.Namespace) -> int:
    _out_dir(args)
    sizes = _sizes(args.sizes, "scaling")
    try:
        text = scaling.main(sizes, args.seed, args.output, profile=args.profile)
    except RuntimeError as err:  # a size's subprocess failed: its stderr is in the message
        raise CommandError(f"bench scaling: {err}", status=1) from err
    print(text)
    print(f"\nresults written to {args.output}/scaling.json and scaling.md")
    return 0


def _serve(args: argparse.Namespace) -> int:
    _out_dir(args)
    for name in ("duration", "batch", "window"):
        if not getattr(args, name) > 0 or not math.isfinite(getattr(args, name)):  # `not >` refuses nan
            raise CommandError(f"bench serve: --{name} must be positive")
    source = None if args.size else (args.source or audit.EXAMPLE)
    try:
        text = serve.main(
            source,
            args.size,
            args.seed,
            args.output,
            duration=args.duration,
            batch=args.batch,
            window=args.window,
            mode=args.server_mode,
            profile=args.profile,
        )
    except RuntimeError as err:  # a server process failed to start: its stderr is in the message
        raise CommandError(f"bench serve: {err}", status=1) from err
    print(text)
    print(f"\nresults written to {args.output}/serve.json and serve.md")
    return 0
