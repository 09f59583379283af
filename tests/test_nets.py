"""The paper's nets: registry, complexity as the paper counts it, BN fusion, ONNX export."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the nets need the train extra (torch)")
onnx = pytest.importorskip("onnx")

from desktop_app.nets import create_net, get_spec, list_nets  # noqa: E402
from desktop_app.nets.complexity import count  # noqa: E402
from desktop_app.nets.export import export_onnx  # noqa: E402
from desktop_app.nets.fuse import fuse_bn  # noqa: E402


def _randomise_bn(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


def _within(value: float, target: float, rel: float) -> bool:
    return abs(value - target) <= rel * target


def test_fdfacenet_matches_the_paper() -> None:
    c = count(create_net("fdfacenet"))
    assert _within(c.params_m, 3.17, 0.01), c
    assert _within(c.macs_m, 130, 0.01), c
    assert _within(c.f_mb, 7.39, 0.01), c


def test_fdfn_star_matches_the_paper() -> None:
    c = count(create_net("fdfn_star"))
    assert _within(c.params_m, 7.10, 0.01), c
    assert _within(c.macs_m, 134, 0.01), c


def test_mobilefacenet_matches_the_paper() -> None:
    c = count(create_net("mobilefacenet"))
    assert _within(c.f_mb, 73.4, 0.01), c
    assert _within(c.macs_m, 230, 0.05), c


def test_activation_swap_keeps_complexity_but_changes_modules() -> None:
    a, b = create_net("fdfacenet"), create_net("fdfacenet_relu")
    assert count(a).macs == count(b).macs
    assert any(isinstance(m, torch.nn.PReLU) for m in a.modules())
    assert not any(isinstance(m, torch.nn.PReLU) for m in b.modules())


@pytest.mark.parametrize("name", list_nets())
def test_bn_fusion_is_exact(name: str) -> None:
    spec = get_spec(name)
    model = create_net(name)
    _randomise_bn(model)
    model.eval()
    x = torch.randn(2, 3, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(1))
    fused = fuse_bn(model)
    assert not any(isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d) for m in fused.modules())
    with torch.no_grad():
        diff = (model(x) - fused(x)).abs().max().item()
    assert diff < 1e-4


@pytest.mark.parametrize("name", list_nets())
def test_onnx_export_agrees_and_has_no_batchnorm(name: str, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    spec = get_spec(name)
    model = create_net(name)
    _randomise_bn(model)
    model.eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", input_size=spec.input_size)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "BatchNormalization" not in ops
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(2).standard_normal((3, 3, spec.input_size, spec.input_size)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out = sess.run(None, {"input": x})[0]
    assert out.shape == ref.shape  # dynamic batch: 3 in, 3 out
    assert np.abs(out - ref).max() < 1e-4


# --- the reconstructed nets: the paper's figures (Tables 3-5, 9-11) -------------------------------------------------

from desktop_app.nets.analysis import paper_style_macs  # noqa: E402

#: Paper F reproduced to 0.5 % (most are exact to the printed digits). Not CNN-8-FD-Pooling, whose printed F is
#: not the maps the net writes, nor DWFN* (2 maps per conv there, 3 for the other face nets): see docstrings.
F_PINNED = [n for n in list_nets() if "f_mb" in get_spec(n).paper
            and not n.startswith("cnn8_fd_pooling") and n not in ("dwfn_star_x1.25", "fdfn_star")]
B_PINNED = [n for n in list_nets() if "macs_m" in get_spec(n).paper and n != "fdfacenet_relu"]


def test_every_analysis_net_is_registered_at_224() -> None:
    names = set(list_nets("analysis"))
    expected = {"cnn8", "cnn8_ds"} | {f"cnn14_ds_x{w}" for w in ("0.5", "0.75", "1.0", "1.25")} \
        | {f"cnn8_fd_x{w}" for w in ("0.5", "0.75", "1.0", "1.25")} | {"cnn8_fd_pooling_x0.5", "cnn8_fd_pooling_x0.75"}
    assert names == expected
    assert all(get_spec(n).input_size == 224 for n in names)
    assert {"nfn", "nfn_star", "dwfn_star_x1.25"} <= set(list_nets("face"))


@pytest.mark.parametrize("name", F_PINNED)
def test_feature_traffic_matches_the_paper(name: str) -> None:
    spec = get_spec(name)
    c = count(create_net(name), spec.input_size)
    assert _within(c.f_mb, spec.paper["f_mb"], 0.005), (c.f_mb, spec.paper["f_mb"])


@pytest.mark.parametrize("name", B_PINNED)
def test_macs_match_the_paper(name: str) -> None:
    """Our MACs (convs + FCs) are 0-8 % under the paper's B (7.1 % for CNN-14-DS x0.5, its thinnest DS net); adding
    the elementwise ops the paper's counter evidently included (3 per conv output, 1 per max-pool input) lands within
    1 % of every B the paper prints, for the analysis family and the face nets alike."""
    spec = get_spec(name)
    model = create_net(name)
    paper = spec.paper["macs_m"]
    macs = count(model, spec.input_size).macs_m
    assert paper * 0.92 <= macs <= paper * 1.005, (macs, paper)
    assert _within(paper_style_macs(model, spec.input_size) / 1e6, paper, 0.01)


@pytest.mark.parametrize("name", [n for n in list_nets() if "params_m" in get_spec(n).paper])
def test_params_match_the_paper_to_its_printed_digits(name: str) -> None:
    """The analysis nets are built in inference form (conv bias = 1 parameter per channel); the paper counted their
    training form, conv + BN (2 per channel), which decides CNN-8-DS's rounding: 0.850 M -> 0.852 M, printed 0.9."""
    spec = get_spec(name)
    model = create_net(name)
    p = count(model, spec.input_size).params_m
    if spec.family == "analysis":
        p += sum(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)) / 1e6
    paper = spec.paper["params_m"]
    step = 0.01 if round(paper, 1) != paper else 0.1  # 3.17 is printed to 2 decimals, 3.4 to 1
    assert abs(p - paper) <= step / 2 + 1e-9, (p, paper)


def test_pooling_writes_more_than_strided_convs() -> None:
    """CNN-8-FD-Pooling runs convs 2-5 at twice the resolution: more MACs and more written maps than CNN-8-FD."""
    for w in ("0.5", "0.75"):
        pool = count(create_net(f"cnn8_fd_pooling_x{w}"), 224)
        fd = count(create_net(f"cnn8_fd_x{w}"), 224)
        assert pool.params == fd.params
        assert pool.macs > 3 * fd.macs
        assert pool.f_mb > 2 * fd.f_mb


def test_table5_is_the_same_nets_at_32x32() -> None:
    """Table 5's CIFAR-10 B and F are Tables 3-4's at 32x32 input: our nets at 32 land near them."""
    for name in ("cnn8", "cnn8_ds", "cnn14_ds_x1.0", "cnn8_fd_x1.0"):
        spec = get_spec(name)
        model = create_net(name, num_classes=10)
        c = count(model, 32)
        assert abs(c.f_mb - spec.paper["cifar10_f_mb"]) <= 0.02, (name, c.f_mb)
        assert _within(paper_style_macs(model, 32) / 1e6, spec.paper["cifar10_macs_m"], 0.03), name


# --- fdface analyze ------------------------------------------------------------------------------------------------

def test_analyze_prints_one_row_per_net(capsys) -> None:
    from desktop_app.cli import main

    assert main(["analyze"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in list_nets():
        rows = [ln for ln in lines if ln.split() and ln.split()[0] == name]
        assert len(rows) == 1, name
        fields = rows[0].split()
        assert int(fields[1]) == get_spec(name).input_size
        assert all(re.fullmatch(r"\d+\.\d\d", v) for v in fields[2:6]), rows[0]
    assert sum(1 for ln in lines if ln.split() and ln.split()[0] in list_nets()) == len(list_nets())


def test_analyze_rejects_an_unknown_net(capsys) -> None:
    from desktop_app.cli import main

    assert main(["analyze", "no_such_net"]) == 2
    assert "unknown net" in capsys.readouterr().err


# --- eq. 4 fit and the benchmark report -------------------------------------------------------------------------

from desktop_app.bench import nets as bench  # noqa: E402


def test_f_distribution_tail_matches_tables() -> None:
    assert abs(bench.f_sf(4.9646, 1, 10) - 0.05) < 2e-4  # F(1, 10) 95th percentile
    assert abs(bench.f_sf(10.044, 1, 10) - 0.01) < 1e-4  # 99th
    assert abs(bench.f_sf(3.4928, 2, 20) - 0.05) < 2e-4
    assert abs(bench.f_sf(1.0, 7, 7) - 0.5) < 1e-9
    assert bench.f_sf(0.0, 1, 9) == 1.0


def test_eq4_fit_recovers_known_constants() -> None:
    rng = np.random.default_rng(4)
    b = rng.uniform(0.1, 2.6, 12)  # GMAC
    f = rng.uniform(5, 140, 12)  # MB
    a0, b0, c0 = 30.0, 0.4, 1.5  # 33 GMAC/s, 2.5 GB/s, 1.5 ms
    t = a0 * b + b0 * f + c0 + rng.normal(0, 0.05, 12)
    e = bench.fit_eq4(b, f, t)
    assert abs(e.a - a0) / a0 < 0.01 and abs(e.b - b0) / b0 < 0.01 and abs(e.c - c0) < 0.1
    assert e.b_f.r2 > 0.9999 and e.b_only.r2 < 0.99
    assert e.f_adds and e.p_value < 1e-6
    assert abs(e.alpha_p - 1000 / a0) / (1000 / a0) < 0.01 and abs(e.theta_d - 1 / b0) / (1 / b0) < 0.01


def test_eq4_fit_says_when_f_adds_nothing() -> None:
    rng = np.random.default_rng(5)
    b = rng.uniform(0.1, 2.6, 12)
    f = rng.uniform(5, 140, 12)
    t = 30.0 * b + 1.5 + rng.normal(0, 0.5, 12)
    e = bench.fit_eq4(b, f, t)
    assert abs(e.b_only.coef[0] - 30.0) < 1.5
    assert not e.f_adds and e.p_value > 0.05


def test_write_section_replaces_only_its_own_block(tmp_path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Pipeline\nkeep me\n")
    bench.write_section(doc, "first")
    bench.write_section(doc, "second")
    text = doc.read_text()
    assert "keep me" in text and "second" in text and "first" not in text
    assert text.count("<!-- bench-nets:start -->") == 1 and text.count("<!-- bench-nets:end -->") == 1
    doc.write_text(text + "\n## After\nalso kept\n")
    bench.write_section(doc, "third")
    assert "also kept" in doc.read_text() and "third" in doc.read_text()


def test_report_has_a_row_per_model_and_ratios() -> None:
    rows = [bench.Timing("mobilefacenet", "face", 112, 1.0, 221.0, 73.4, {1: 10.0, 2: 6.0}),
            bench.Timing("fdfacenet", "face", 112, 3.17, 129.4, 7.38, {1: 2.5, 2: 1.5}, {"pi4b_ms": 44.1}),
            bench.Timing("teacher", "teacher", 112, 0.99, None, None, {1: 5.0, 2: 3.0})]
    res = bench.BenchResult(rows, (1, 2), 200, 20, [], {"date": "d", "cpu": "c", "onnxruntime": "o", "python": "p",
                                                        "os": "x", "load": "0"})
    md = bench.render_markdown(res, "fdface bench nets", provisional=True)
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| net ")]
    assert [ln.split("|")[1].strip() for ln in table] == ["mobilefacenet", "fdfacenet", "teacher"]
    fd = table[1].split("|")[1:-1]
    assert [c.strip() for c in fd[6:12]] == ["2.50", "1.50", "0.50", "0.25", "0.50", "0.25"]
    assert "Provisional" in md and "fdface bench nets" in md
    assert "0.50 x the teacher's (not met)" in md and "0.25 x our MobileFaceNet's (met)" in md


def test_report_compares_relu_nets_like_for_like() -> None:
    rows = [bench.Timing("mobilefacenet", "face", 112, 1.0, 221.0, 73.4, {1: 20.0}),
            bench.Timing("mobilefacenet_relu", "face", 112, 1.0, 221.0, 73.4, {1: 4.0}),
            bench.Timing("fdfacenet_relu", "face", 112, 3.17, 129.4, 7.38, {1: 2.0})]
    res = bench.BenchResult(rows, (1,), 200, 20, [], {"date": "d", "cpu": "c", "onnxruntime": "o", "python": "p",
                                                      "os": "x", "load": "0"})
    md = bench.render_markdown(res, "fdface bench nets")
    line = next(ln for ln in md.splitlines() if ln.startswith("- fdfacenet_relu:"))
    assert "0.10 x our MobileFaceNet's (met)" in line
    assert "0.50 x our MobileFaceNet-ReLU's (same activation) (not met)" in line


def test_bench_runs_end_to_end_on_two_nets() -> None:
    pytest.importorskip("onnxruntime")
    res = bench.run_bench(["cnn8_fd_x0.5", "fdfacenet"], threads=(1,), repeats=2, warmup=1, teacher=None, shipped=[])
    assert [r.name for r in res.rows] == ["cnn8_fd_x0.5", "fdfacenet"]
    assert all(r.ms[1] > 0 for r in res.rows)
    assert res.rows[0].input_size == 224 and res.fits == []  # too few analysis nets to fit
