"""`fdface analyze` (complexity table) and `fdface bench nets` (latency). Needs the ``train`` extra (torch)."""

from __future__ import annotations

import argparse


def _need_torch() -> None:
    from desktop_app.cli import CliError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise CliError("this command needs PyTorch: pip install -e '.[train]'") from None


def cmd_analyze(args: argparse.Namespace) -> int:
    _need_torch()
    from desktop_app.nets import create_net, get_spec, list_nets
    from desktop_app.nets.complexity import count

    names = args.nets or list_nets()
    print(f"{'net':<24}{'input':>6}{'params M':>10}{'MACs M':>10}{'F MB':>9}   paper (params M / MACs M / F MB)")
    for n in names:
        spec = get_spec(n)
        c = count(create_net(n), spec.input_size)
        pp = spec.paper

        def f(k: str, pp: dict[str, float] = pp) -> str:
            return f"{pp[k]:g}" if k in pp else "-"

        print(f"{n:<24}{spec.input_size:>6}{c.params_m:>10.2f}{c.macs_m:>10.2f}{c.f_mb:>9.2f}   "
              f"{f('params_m')} / {f('macs_m')} / {f('f_mb')}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="parameters, MACs and feature-map traffic F of the paper's nets")
    p.add_argument("nets", nargs="*", help="net names (default: all registered)")
    p.set_defaults(func=cmd_analyze)
