"""`fdface analyze` (complexity table) and `fdface bench nets` (latency). Needs the ``train`` extra (torch)."""

from __future__ import annotations

import argparse
import sys


def _need_torch() -> None:
    from desktop_app.cli import CliError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise CliError("this command needs PyTorch: pip install -e '.[train]'") from None


def cmd_analyze(args: argparse.Namespace) -> int:
    _need_torch()
    from desktop_app.cli import CliError
    from desktop_app.nets import create_net, get_spec, list_nets
    from desktop_app.nets.analysis import paper_style_macs
    from desktop_app.nets.complexity import count

    names = args.nets or list_nets()
    unknown = [n for n in names if n not in list_nets()]
    if unknown:
        raise CliError(f"unknown net(s) {', '.join(unknown)}; known: {', '.join(list_nets())}")
    print(f"{'net':<24}{'input':>6}{'params M':>10}{'MACs M':>10}{'F MB':>9}{'B* M':>10}"
          "   paper (params M / MACs M / F MB)")
    for n in names:
        spec = get_spec(n)
        model = create_net(n)
        c = count(model, spec.input_size)
        bstar = paper_style_macs(model, spec.input_size) / 1e6
        pp = spec.paper

        def f(k: str, pp: dict[str, float] = pp) -> str:
            return f"{pp[k]:g}" if k in pp else "-"

        print(f"{n:<24}{spec.input_size:>6}{c.params_m:>10.2f}{c.macs_m:>10.2f}{c.f_mb:>9.2f}{bstar:>10.2f}   "
              f"{f('params_m')} / {f('macs_m')} / {f('f_mb')}")
    print("\nMACs: multiply-accumulates of convs and FCs. F: 2 x 4 bytes per value each layer of the unfused net "
          "writes (MB = 1e6 bytes).\nB*: MACs + 3 ops per conv output value + 1 per max-pool input value, how the "
          "paper's B figures appear to be counted (desktop_app/nets/analysis.py).")
    return 0


def cmd_bench_nets(args: argparse.Namespace) -> int:
    _need_torch()
    from desktop_app.bench.nets import main_log, render_markdown, run_bench, write_section
    from desktop_app.cli import CliError
    from desktop_app.nets import list_nets

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise CliError("this command needs onnxruntime: pip install onnxruntime") from None
    unknown = [n for n in args.nets if n not in list_nets()]
    if unknown:
        raise CliError(f"unknown net(s) {', '.join(unknown)}; known: {', '.join(list_nets())}")
    if args.repeats < 1 or args.warmup < 0 or not args.threads or min(args.threads) < 1:
        raise CliError("--repeats must be >= 1, --warmup >= 0 and --threads positive")
    from desktop_app.bench.nets import DEFAULT_TEACHER

    teacher = None if args.no_teacher else (args.teacher or DEFAULT_TEACHER)
    res = run_bench(args.nets or None, threads=tuple(args.threads), repeats=args.repeats, warmup=args.warmup,
                    teacher=teacher, log=main_log)
    cmd = ["fdface bench nets", f"--repeats {args.repeats}", f"--warmup {args.warmup}",
           "--threads " + ",".join(map(str, args.threads))]
    if args.nets:
        cmd.append(" ".join(args.nets))
    if args.no_teacher:
        cmd.append("--no-teacher")
    elif args.teacher:
        cmd.append(f"--teacher {args.teacher}")
    if args.write:
        cmd.append(f"--write {args.write}")
    if args.provisional:
        cmd.append("--provisional")
    text = render_markdown(res, " ".join(cmd), provisional=args.provisional)
    print(text)
    if args.write:
        print(f"wrote {write_section(args.write, text)}", file=sys.stderr)
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="parameters, MACs and feature-map traffic F of the paper's nets")
    p.add_argument("nets", nargs="*", help="net names (default: all registered)")
    p.set_defaults(func=cmd_analyze)

    from desktop_app.cli import bench_subparsers

    b = bench_subparsers(sub).add_parser(
        "nets", help="ONNX Runtime CPU latency of every registry net (1 and 2 threads) and the eq. 4 fit")
    b.add_argument("nets", nargs="*", help="net names (default: all registered)")
    b.add_argument("--repeats", type=int, default=200, help="timed runs per net and thread count (median)")
    b.add_argument("--warmup", type=int, default=20, help="untimed runs first")
    b.add_argument("--threads", type=_int_list, default=[1, 2], help="intra-op thread counts, comma-separated (1,2)")
    b.add_argument("--teacher", metavar="ONNX",
                   help="the real pretrained MobileFaceNet, timed as the reference when present "
                        "(default: DEFAULT_TEACHER in desktop_app/bench/nets.py)")
    b.add_argument("--no-teacher", action="store_true", help="do not time the teacher")
    b.add_argument("--write", metavar="MD", help="replace this benchmark's section in MD (e.g. docs/BENCHMARKS.md)")
    b.add_argument("--provisional", action="store_true",
                   help="mark the written figures provisional (taken on a loaded machine)")
    b.set_defaults(func=cmd_bench_nets)
