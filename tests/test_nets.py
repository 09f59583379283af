"""The paper's nets: registry, complexity as the paper counts it, BN fusion, ONNX export."""

from __future__ import annotations

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
