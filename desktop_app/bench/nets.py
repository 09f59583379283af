"""`fdface bench nets`: CPU latency of every registry net under ONNX Runtime, and the paper's eq. 4 on this machine.

Each net is built, BN-fused and exported to ONNX in a temporary folder, then timed in this one process with ONNX
Runtime's CPU provider: batch 1, fp32, 112x112 (224x224 for the analysis family), ``warmup`` runs excluded, the
median of ``repeats`` runs, for each intra-op thread count. The real pretrained MobileFaceNet (the teacher, a
benchmark asset only) and the shipped ``models/fdfacenet*.onnx`` are timed alongside when present.

Eq. 4, T = B / (alpha P) + F / (theta D) + tau, is linear in B and F: T = a B + b F + c. It is fitted by least
squares over the analysis family (B = MACs in G, F in MB, T in ms), once with B alone and once with B and F; a
partial F-test (1, n - 3 degrees of freedom) and the adjusted R^2 say whether F explains what B does not.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop_app.bench import common
from desktop_app.bench.common import machine_basics

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FDFACE_SHARED", REPO.parent / "shared"))
#: The real pretrained MobileFaceNet: a benchmark reference, never loaded by the product.
DEFAULT_TEACHER = SHARED / "teachers" / "mobilefacenet-foamliu" / "MobileFaceNet.onnx"
SHIPPED = ("fdfacenet.onnx", "fdfacenet-int8.onnx")
MARKER = "bench-nets"


# --- statistics -------------------------------------------------------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbeta) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbeta) * _betacf(b, a, 1.0 - x) / b


def f_sf(f: float, d1: float, d2: float) -> float:
    """P(X > f) for X ~ F(d1, d2): the p-value of an F statistic."""
    if f <= 0.0:
        return 1.0
    if math.isinf(f):
        return 0.0
    return betainc(d2 / 2.0, d1 / 2.0, d2 / (d2 + d1 * f))


@dataclass(frozen=True)
class LinearFit:
    """y = sum(coef[k] * x_k) + intercept, by ordinary least squares."""

    names: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    n: int
    rss: float
    r2: float
    adj_r2: float


def fit_linear(columns: dict[str, Sequence[float]], y: Sequence[float]) -> LinearFit:
    yv = np.asarray(y, dtype=np.float64)
    n, k = len(yv), len(columns)
    if n < k + 2:
        raise ValueError(f"need at least {k + 2} points to fit {k} slopes and an intercept, got {n}")
    X = np.column_stack([np.asarray(v, dtype=np.float64) for v in columns.values()] + [np.ones(n)])
    beta, *_ = np.linalg.lstsq(X, yv, rcond=None)
    resid = yv - X @ beta
    rss = float(resid @ resid)
    tss = float(((yv - yv.mean()) ** 2).sum())
    r2 = 1.0 - rss / tss if tss > 0 else 1.0
    adj = 1.0 - (1.0 - r2) * (n - 1) / (n - k - 1)
    return LinearFit(tuple(columns), tuple(float(b) for b in beta[:-1]), float(beta[-1]), n, rss, r2, adj)


@dataclass(frozen=True)
class Eq4Fit:
    """Eq. 4 fitted as T[ms] = a * B[GMAC] + b * F[MB] + c, against the B-only fit T = a' * B + c'."""

    label: str
    b_only: LinearFit
    b_f: LinearFit
    f_stat: float  # partial F-test of adding F, (1, n - 3) degrees of freedom
    p_value: float

    @property
    def a(self) -> float:
        return self.b_f.coef[0]

    @property
    def b(self) -> float:
        return self.b_f.coef[1]

    @property
    def c(self) -> float:
        return self.b_f.intercept

    @property
    def alpha_p(self) -> float:
        """Effective compute alpha * P in GMAC/s (1000 / a)."""
        return 1000.0 / self.a if self.a > 0 else math.inf

    @property
    def theta_d(self) -> float:
        """Effective bandwidth theta * D in GB/s (1 MB/ms = 1 GB/s)."""
        return 1.0 / self.b if self.b > 0 else math.inf

    @property
    def f_adds(self) -> bool:
        """F explains latency that B does not: significant at 5 %, a positive slope, and a higher adjusted R^2."""
        return self.p_value < 0.05 and self.b > 0 and self.b_f.adj_r2 > self.b_only.adj_r2


def fit_eq4(b_gmac: Sequence[float], f_mb: Sequence[float], t_ms: Sequence[float], label: str = "") -> Eq4Fit:
    one = fit_linear({"B": b_gmac}, t_ms)
    two = fit_linear({"B": b_gmac, "F": f_mb}, t_ms)
    dof = two.n - 3
    exact = math.inf if one.rss > 0 else 0.0  # B + F fit exactly: F explained all B left, or nothing was left
    f_stat = max(0.0, (one.rss - two.rss) / (two.rss / dof)) if two.rss > 0.0 else exact
    return Eq4Fit(label, one, two, f_stat, f_sf(f_stat, 1, dof))


# --- timing -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """One model's row: what it is, its complexity where known, and its median latency per thread count."""

    name: str
    kind: str  # "face" / "analysis" (registry nets), "teacher", "shipped"
    input_size: int
    params_m: float | None
    macs_m: float | None
    f_mb: float | None
    ms: dict[int, float] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=dict)
    note: str = ""


def time_onnx(path: str | Path, threads: int, repeats: int, warmup: int, seed: int = 0) -> tuple[float, int]:
    """Median latency in ms of one batch-1 inference, and the model's input size."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    feed = {inp.name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0, int(shape[-1])


def onnx_params_m(path: str | Path) -> float | None:
    """Parameter count of an ONNX file (its initializers), in millions; None without the onnx package."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.load(str(path))
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer) / 1e6


def onnx_activations(path: str | Path) -> str:
    """The activation ops of an ONNX graph, e.g. "PRelu x33" (ONNX Runtime fuses Relu / Clip into Conv, not PRelu)."""
    try:
        import onnx
    except ImportError:
        return ""
    ops = [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]
    acts = {op: ops.count(op) for op in ("PRelu", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish") if op in ops}
    return ", ".join(f"{op} x{k}" for op, k in acts.items())


def _shipped_net(path: Path) -> str | None:
    """The registry net a shipped model was trained as, from models/manifest.json's ``info.net``."""
    from desktop_app.manifest import ManifestError, load_manifest

    manifest = path.parent / "manifest.json"
    if not manifest.exists():
        return None
    try:
        entries = load_manifest(manifest).values()
    except ManifestError:
        return None
    for e in entries:
        if Path(e.file).name == path.name:
            net = e.info.get("net")
            return str(net) if net else None
    return None


@dataclass(frozen=True)
class BenchResult:
    rows: list[Timing]
    threads: tuple[int, ...]
    repeats: int
    warmup: int
    fits: list[Eq4Fit]
    meta: dict[str, str]


def machine_info() -> dict[str, str]:
    import onnxruntime as ort

    return {**machine_basics(), "onnxruntime": ort.__version__, "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}"}


def run_bench(
    nets: Sequence[str] | None = None, *, threads: Sequence[int] = (1, 2), repeats: int = 200, warmup: int = 20,
    teacher: str | Path | None = DEFAULT_TEACHER, shipped: Sequence[str | Path] | None = None,
    log: Callable[[str], None] | None = None,
) -> BenchResult:
    """Export and time the registry nets (and the teacher / shipped models when present), then fit eq. 4."""
    from desktop_app.manifest import default_models_dir
    from desktop_app.nets import create_net, get_spec, list_nets
    from desktop_app.nets.complexity import count
    from desktop_app.nets.export import export_onnx

    say = log or (lambda s: None)
    meta = machine_info()
    names = list(nets) if nets else list_nets()
    if shipped is None:
        shipped = [p for p in (default_models_dir() / f for f in SHIPPED) if p.exists()]
    rows: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="fdface-bench-") as tmp:
        for name in names:
            spec = get_spec(name)
            model = create_net(name).eval()
            c = count(model, spec.input_size)
            path = export_onnx(model, Path(tmp) / f"{name}.onnx", input_size=spec.input_size)
            ms = {t: time_onnx(path, t, repeats, warmup)[0] for t in threads}
            say(f"{name}: " + ", ".join(f"{t}T {v:.2f} ms" for t, v in ms.items()))
            rows.append(Timing(name, spec.family, spec.input_size, c.params_m, c.macs_m, c.f_mb, ms, dict(spec.paper)))
    extra: list[tuple[str, str, Path]] = []
    if teacher and Path(teacher).exists():
        extra.append(("MobileFaceNet (teacher, foamliu)", "teacher", Path(teacher)))
    elif teacher:
        say(f"teacher not found, skipped: {teacher}")
    extra += [(f"{Path(p).name} (shipped)", "shipped", Path(p)) for p in shipped]
    for label, kind, path in extra:
        ms, size = {}, 112
        for t in threads:
            ms[t], size = time_onnx(path, t, repeats, warmup)
        macs = f = None
        net = _shipped_net(path) if kind == "shipped" else None
        if net:
            try:
                c = count(create_net(net), size)
                macs, f = c.macs_m, c.f_mb
                label = f"{label[:-1]}, {net})"
            except KeyError:
                pass
        say(f"{label}: " + ", ".join(f"{t}T {v:.2f} ms" for t, v in ms.items()))
        acts = onnx_activations(path)
        note = f"{label}: {_show(path)}" + (f"; activations {acts}" if acts else "")
        rows.append(Timing(label, kind, size, onnx_params_m(path), macs, f, ms, note=note))
    fits = eq4_fits(rows, threads)
    return BenchResult(rows, tuple(threads), repeats, warmup, fits, meta)


def _show(path: Path) -> str:
    """A path relative to the checkout (../shared/... for the shared data) when it lies there."""
    p = Path(path).resolve()
    for base, prefix in ((REPO, ""), (REPO.parent, "../")):
        if p.is_relative_to(base):
            return prefix + str(p.relative_to(base))
    return str(p)


def eq4_fits(rows: Sequence[Timing], threads: Sequence[int]) -> list[Eq4Fit]:
    """Eq. 4 over the analysis family: on this machine per thread count, and on the paper's own Pi 4B / TX2 data."""
    fam = [r for r in rows if r.kind == "analysis" and r.macs_m is not None and r.f_mb is not None]
    fits: list[Eq4Fit] = []
    if len(fam) >= 5:
        for t in threads:
            pts = [r for r in fam if t in r.ms]
            fits.append(fit_eq4([r.macs_m / 1000 for r in pts], [r.f_mb for r in pts],  # type: ignore[operator]
                                [r.ms[t] for r in pts], f"this CPU, {t} thread{'s' if t > 1 else ''}"))
        for key, label in (("pi4b_ms", "paper's figures, Pi 4B CPU"), ("tx2_ms", "paper's figures, TX2 GPU")):
            pts = [r for r in fam if all(k in r.paper for k in ("macs_m", "f_mb", key))]
            if len(pts) >= 5:
                fits.append(fit_eq4([r.paper["macs_m"] / 1000 for r in pts], [r.paper["f_mb"] for r in pts],
                                    [r.paper[key] for r in pts], label))
    return fits


# --- report -----------------------------------------------------------------------------------------------------

def _f(v: float | None, nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _pos(v: float, nd: int) -> str:
    """A rate from a fitted slope; "-" where the slope is not positive (no physical rate)."""
    return "-" if math.isinf(v) else f"{v:.{nd}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b <= 0 else f"{a / b:.2f}"


def render_markdown(res: BenchResult, command: str, provisional: bool = False) -> str:
    th = res.threads
    teacher = next((r for r in res.rows if r.kind == "teacher"), None)
    ours = next((r for r in res.rows if r.name == "mobilefacenet"), None)
    ours_relu = next((r for r in res.rows if r.name == "mobilefacenet_relu"), None)
    out = ["## Network latency on this CPU (`fdface bench nets`)", ""]
    if provisional:
        out += ["> **Provisional**: figures taken while a training run loaded the CPU; rerun after it with the "
                "defaults and without `--provisional`: `fdface bench nets --write docs/BENCHMARKS.md`.", ""]
    m = res.meta
    out += [
        f"Command: `{command}`  ",
        f"Date: {m['date']}; CPU: {m['cpu']}; load average at start: {m['load']}; {m['os']}; "
        f"Python {m['python']}; onnxruntime {m['onnxruntime']} (CPUExecutionProvider).  ",
        f"Batch 1, fp32, BN fused, ONNX Runtime graph optimisations on; {res.warmup} warm-up runs excluded, "
        f"median of {res.repeats} runs; nT = n intra-op threads; all in one process. params / MACs / F as "
        "`fdface analyze` counts them (MACs of convs and FCs; F = 2 x 4 bytes per value written by the unfused "
        "net). Ratios are latency over the teacher's (the real pretrained MobileFaceNet) and over our "
        "MobileFaceNet's, at the same thread count. The paper's Pi 4B column is its 4-core NCNN figure.",
        "",
    ]
    head = ["net", "family", "input", "params M", "MACs M", "F MB"] + [f"{t}T ms" for t in th]
    for t in th:
        head += [f"{t}T / teacher", f"{t}T / our MFN"]
    head.append("paper Pi 4B ms")
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in res.rows:
        cells = [r.name, r.kind, str(r.input_size), _f(r.params_m), _f(r.macs_m), _f(r.f_mb)]
        cells += [_f(r.ms.get(t)) for t in th]
        for t in th:
            cells += [_ratio(r.ms.get(t), teacher.ms.get(t) if teacher else None),
                      _ratio(r.ms.get(t), ours.ms.get(t) if ours else None)]
        cells.append(_f(r.paper.get("pi4b_ms"), 1) if "pi4b_ms" in r.paper else "-")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    notes = [r.note for r in res.rows if r.note]
    if notes:
        out += ["Graphs timed besides the registry nets (ONNX Runtime fuses Conv + Relu / Clip, not PRelu):", ""]
        out += [f"- {n}" for n in notes] + [""]
    t1 = th[0]
    targets = [r for r in res.rows if r.name in ("fdfacenet", "fdfacenet_relu") or r.kind == "shipped"]
    if targets and (teacher or ours):
        out.append(f"Target (issue 2): FDFaceNet {t1}-thread latency at most 1/3.5 = 0.29 of MobileFaceNet's.")
        for r in targets:
            parts = []
            refs = [(teacher, "the teacher's"), (ours, "our MobileFaceNet's")]
            if "relu" in r.name or "relu" in r.note.lower():
                refs.append((ours_relu, "our MobileFaceNet-ReLU's (same activation)"))
            for ref, lab in refs:
                if ref and t1 in ref.ms and t1 in r.ms:
                    q = r.ms[t1] / ref.ms[t1]
                    parts.append(f"{q:.2f} x {lab} ({'met' if q <= 1 / 3.5 else 'not met'})")
            if parts:
                out.append(f"- {r.name}: " + "; ".join(parts))
        out.append("")
    if res.fits:
        out += [
            "### Eq. 4 fitted over the analysis family",
            "",
            "T [ms] = a B [GMAC] + b F [MB] + c, least squares over the analysis nets (CNN-8, CNN-8-DS, "
            "CNN-14-DS x0.5-1.25, CNN-8-FD x0.5-1.25, CNN-8-FD-Pooling x0.5/0.75), against the B-only fit "
            "T = a' B + c'. alpha P = 1000 / a (GMAC/s), theta D = 1 / b (GB/s) (\"-\" where the slope is not "
            "positive), tau = c. \"F adds\" when the partial F-test of adding F has p < 0.05, b > 0 and the "
            "adjusted R^2 rises. The last rows fit the paper's own Table 3-4 figures (its B, its F, its "
            "latencies) the same way.",
            "",
            "| data | n | a ms/GMAC | b ms/MB | c ms | alpha P GMAC/s | theta D GB/s | R^2 B only | R^2 B+F "
            "| adj R^2 B only | adj R^2 B+F | F(1, n-3) | p | F adds? |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for e in res.fits:
            out.append(
                f"| {e.label} | {e.b_f.n} | {e.a:.3f} | {e.b:.4f} | {e.c:.3f} | {_pos(e.alpha_p, 1)} | "
                f"{_pos(e.theta_d, 2)} | {e.b_only.r2:.4f} | {e.b_f.r2:.4f} | {e.b_only.adj_r2:.4f} | "
                f"{e.b_f.adj_r2:.4f} | {e.f_stat:.2f} | {e.p_value:.2g} | {'yes' if e.f_adds else 'no'} |"
            )
        out.append("")
    return "\n".join(out)


def write_section(path: str | Path, body: str, marker: str = MARKER) -> Path:
    """Replace this benchmark's section of ``path`` (appending it if absent)."""
    return common.write_section(path, body, marker)


def main_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
