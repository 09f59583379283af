"""What the trainer's guard against a non-finite step costs (desktop_app/train/loop.py: StepGuard): a copy of the
BN running statistics before the forward pass and one total gradient norm after the backward pass, against a
student step (FDFaceNet-ReLU, batch 128, channels-last, bf16 autocast where the CPU has it natively), in one run;
medians over repeats. Figures: docs/TRAINING.md.

    .venv/bin/python benchmarks/train_step_checks.py [--repeats 9] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from desktop_app.nets import create_net
from desktop_app.train.loop import native_bf16


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = create_net("fdfacenet_relu").to(memory_format=torch.channels_last).train()
    bn = [b for b in m.buffers() if b.is_floating_point()]
    x = torch.randn(128, 3, 112, 112).contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    bf16 = native_bf16()

    def step() -> float:
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            e = m(x)
        loss = e.float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - t

    def checks() -> float:
        t = time.perf_counter()
        _ = [b.clone() for b in bn]
        grads = [p.grad for p in m.parameters() if p.grad is not None]
        bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))
        return time.perf_counter() - t

    for _ in range(2):
        step()
    s = statistics.median(step() for _ in range(a.repeats))
    c = statistics.median(checks() for _ in range(a.repeats * 4))
    kb = sum(b.numel() * b.element_size() for b in bn) / 1024
    print(f"BN statistics copied: {len(bn)} tensors, {kb:.1f} KiB; bf16 {bf16}; threads {a.threads}")
    print(f"student step {1000 * s:.0f} ms, guard {1000 * c:.2f} ms ({100 * c / s:.2f} % of a step)")


if __name__ == "__main__":
    main()
