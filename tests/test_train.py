"""Trainer mechanics: LFW protocol, open-set metric, recipes, a few real training steps, resume, export, INT8."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop_app.train.evaluate import open_set, read_lfw_pairs, ten_fold
from tests.conftest import shared_path

torch = pytest.importorskip("torch", reason="training needs the train extra (torch)")

from desktop_app.train.recipe import load_recipe  # noqa: E402


def test_ten_fold_picks_threshold_on_other_folds() -> None:
    rng = np.random.default_rng(0)
    same = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    sims = np.where(same, rng.normal(0.6, 0.1, same.size), rng.normal(0.1, 0.1, same.size))
    res = ten_fold(sims, same)
    assert 98.0 < res.accuracy <= 100.0
    assert 0.2 < res.threshold < 0.5
    noisy = ten_fold(rng.normal(0, 1, same.size), same)  # no signal: chance level
    assert 40 < noisy.accuracy < 60


def test_lfw_pairs_parse(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text("10\t300\nAbel_Pacheco\t1\t4\nAJ_Cook\t1\tAbdoulaye_Wade\t3\n")
    assert read_lfw_pairs(f) == [
        ("Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg", True),
        ("AJ_Cook/AJ_Cook_0001.jpg", "Abdoulaye_Wade/Abdoulaye_Wade_0003.jpg", False),
    ]


def test_open_set_separates_good_from_random_embeddings() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(40, 64))
    labels = np.repeat(np.arange(40), 5)
    good = centres[labels] + 0.2 * rng.normal(size=(200, 64))
    bad = rng.normal(size=(200, 64))
    assert open_set(good, labels).dir_at_far > 90
    assert open_set(bad, labels).dir_at_far < 20


def test_recipe_rejects_unknown_keys_and_missing_budget(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    bad = tmp_path / "r" / "bad.toml"
    bad.write_text('name = "x"\nminutes = 1\nlearning_rate = 0.1\n')
    with pytest.raises(ValueError, match="learning_rate"):
        load_recipe(bad)
    nobudget = tmp_path / "r" / "nb.toml"
    nobudget.write_text('name = "x"\n')
    with pytest.raises(ValueError, match="minutes or steps"):
        load_recipe(nobudget)


def test_shipped_recipes_load() -> None:
    for p in sorted(Path(__file__).resolve().parents[1].joinpath("recipes").glob("*.toml")):
        r = load_recipe(p)
        assert r.minutes > 0 or r.steps > 0


def _tiny_folder(tmp_path: Path) -> Path:
    """8 people x 5 crops from ../shared/media/people, as an ImageFolder."""
    people = shared_path("media", "people")
    root = tmp_path / "folder"
    for d in sorted(people.iterdir()):
        (root / d.name).mkdir(parents=True)
        for f in sorted(d.glob("*.png")):
            img = cv2.resize(cv2.imread(str(f)), (112, 112))
            cv2.imwrite(str(root / d.name / (f.stem + ".jpg")), img)
    return root


def smooth_faces(n: int, seed: int = 0) -> np.ndarray:
    """Smooth, asymmetric 112x112 test pictures (a mirror differs from the original; lossy codecs keep them close)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, 14, 14, 3), dtype=np.uint8)
    return np.stack([cv2.resize(s, (112, 112), interpolation=cv2.INTER_CUBIC) for s in small])


def synthetic_folder(tmp_path: Path, n: int = 24, people: int = 4) -> Path:
    """An ImageFolder of made-up faces (no ../shared needed)."""
    root = tmp_path / "folder"
    for k, face in enumerate(smooth_faces(n, seed=1)):
        (root / f"p{k % people}").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / f"p{k % people}" / f"{k}.jpg"), face)
    return root


def test_arcface_steps_reduce_loss_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.train.loop import Trainer

    monkeypatch.setenv("FDFACE_CACHE", str(tmp_path / "cache"))
    folder = _tiny_folder(tmp_path)
    (tmp_path / "recipes").mkdir()
    rp = tmp_path / "recipes" / "t.toml"
    rp.write_text(
        f'name = "t"\nnet = "fdfacenet_relu"\nloss = "arcface"\nimage_folder = "{folder}"\nbatch = 8\n'
        'lr = 0.05\nsteps = 30\nthreads = 1\nbf16 = false\nchannels_last = false\narcface_s = 16.0\n'
        'arcface_m = 0.2\nmixup = 0.0\n[augment]\nflip = 0.0\nrotate_deg = 0.0\nshift_px = 0.0\n'
        "downsample_p = 0.0\ngrey_p = 0.0\nbrightness = [1.0, 1.0]\noffset = 0.0\n"
    )
    r = load_recipe(rp)
    tr = Trainer(r, tmp_path / "run")
    idx = np.arange(8)
    first = tr.train_step(idx)
    for _ in range(25):
        last = tr.train_step(idx)
    assert last < 0.7 * first  # the net fits a fixed batch: the loss really falls
    tr.step = 26
    tr.save()
    again = Trainer(r, tmp_path / "run")
    again.load(tmp_path / "run" / "last.pt")
    assert again.step == 26
    for a, b in zip(tr.model.state_dict().values(), again.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    hist = again.run(resume=True)  # finishes the remaining steps of the 30-step budget
    assert again.step == 30 and (tmp_path / "run" / "final.pt").exists() and "val_rank1" not in hist


def test_sigterm_checkpoints_and_the_run_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal

    from desktop_app.train.loop import Trainer

    monkeypatch.setenv("FDFACE_CACHE", str(tmp_path / "cache"))
    folder = _tiny_folder(tmp_path)
    rp = tmp_path / "t.toml"
    rp.write_text(
        f'name = "t"\nnet = "fdfacenet_relu"\nloss = "arcface"\nimage_folder = "{folder}"\nbatch = 8\n'
        'lr = 0.05\nsteps = 30\nthreads = 1\nbf16 = false\nchannels_last = false\nmixup = 0.0\nval_ids = 0\n'
    )
    r = load_recipe(rp)
    tr = Trainer(r, tmp_path / "run")

    def stop_at_20(t: Trainer) -> None:
        if t.step == 20:
            os.kill(os.getpid(), signal.SIGTERM)  # what `kill PID` or a closing session sends

    tr.run(on_progress=stop_at_20)
    assert tr.stopped and tr.step in (20, 21)  # the step in flight finishes, then the run stops
    assert not (tmp_path / "run" / "final.pt").exists()
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == tr.step
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again
    again = Trainer(r, tmp_path / "run")
    again.run()
    assert again.step == 30 and (tmp_path / "run" / "final.pt").exists()


def test_distillation_step_with_the_teacher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    teacher = shared_path("teachers", "mobilefacenet-foamliu", "MobileFaceNet.onnx")
    pytest.importorskip("onnx")
    from desktop_app.train.loop import Trainer

    monkeypatch.setenv("FDFACE_CACHE", str(tmp_path / "cache"))
    folder = _tiny_folder(tmp_path)
    (tmp_path / "recipes").mkdir()
    rp = tmp_path / "recipes" / "d.toml"
    rp.write_text(f'name = "d"\nnet = "fdfacenet_relu"\nloss = "distill"\nimage_folder = "{folder}"\n'
                  f'teacher = "{teacher}"\nbatch = 8\nsteps = 5\nthreads = 1\nmixup = 0.5\n')
    tr = Trainer(load_recipe(rp), tmp_path / "run")
    losses = [tr.train_step(np.arange(8)) for _ in range(5)]
    assert all(0.0 <= v <= 2.0 for v in losses)  # 1 - cosine lies in [0, 2]
    assert losses[-1] < losses[0]


def test_relational_distill_is_zero_for_the_same_geometry_only() -> None:
    from desktop_app.train.losses import relational_distill

    g = torch.Generator().manual_seed(0)
    t = torch.nn.functional.normalize(torch.randn(16, 128, generator=g), dim=1)
    q, _ = torch.linalg.qr(torch.randn(512, 512, generator=g))
    same = 3.0 * torch.cat([t, torch.zeros(16, 384)], 1) @ q  # rotated, scaled, padded: same cosines
    assert float(relational_distill(same, t)) < 1e-10
    other = torch.randn(16, 512, generator=g)
    loss = relational_distill(other, t)
    assert float(loss) > 1e-3
    other.requires_grad_(True)
    relational_distill(other, t).backward()
    assert other.grad is not None and float(other.grad.abs().sum()) > 0


def test_export_and_int8_agree_with_torch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from desktop_app.nets import create_net
    from desktop_app.nets.export import export_onnx
    from desktop_app.train.export import manifest_entry, quantize_int8
    from desktop_app.vision.embedder import Embedder

    model = create_net("fdfacenet_relu").eval()
    p = export_onnx(model, tmp_path / "m.onnx")
    entry = manifest_entry("m", p, {"test": True})
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (6, 112, 112, 3), dtype=np.uint8)
    got = Embedder(entry, threads=1).infer(crops)
    x = torch.from_numpy(((crops[..., ::-1].astype(np.float32) - 127.5) / 128).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        ref = torch.nn.functional.normalize(model(x), dim=1).numpy()
    assert np.abs(got - ref).max() < 1e-4
    q = quantize_int8(p, tmp_path / "m-int8.onnx", crops[..., ::-1].copy())
    onnx = pytest.importorskip("onnx")
    g = onnx.load(str(q)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in g.node}
    # reduce_range: int8 weights use 7 bits, so u8 x s8 kernels on CPUs without VNNI do not saturate
    w8 = [onnx.numpy_helper.to_array(t) for t in g.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(w8) >= 10 and max(int(np.abs(w.astype(np.int32)).max()) for w in w8) <= 64
    sess = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"input": x.numpy()})[0].shape == (6, 512)


def test_warm_start_restores_a_fused_export_exactly(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from desktop_app.nets import create_net
    from desktop_app.nets.export import export_onnx
    from desktop_app.train.warmstart import fit_head, unfuse_from_onnx

    torch.manual_seed(0)
    src = create_net("fdfacenet_relu")
    with torch.no_grad():  # BN statistics and affine parameters far from their defaults, as after training
        for m in src.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    src.eval()
    path = export_onnx(src, tmp_path / "m.onnx")
    x = torch.randn(64, 3, 112, 112)
    dst = unfuse_from_onnx(create_net("fdfacenet_relu"), path, x)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in dst.modules())
    with torch.no_grad():
        y_src = src(x[:16])
        assert (dst.eval()(x[:16]) - y_src).abs().max() < 1e-3 * y_src.abs().max()
        y_train = dst.train()(torch.randn(64, 3, 112, 112))  # batch statistics instead of the running ones
    assert torch.isfinite(y_train).all()
    with pytest.raises(ValueError, match="no fused weights|no weights in the export|shape"):
        unfuse_from_onnx(create_net("fdfacenet"), path, x)

    rng = np.random.default_rng(0)
    s = rng.normal(size=(600, 512)).astype(np.float32)
    w_true = rng.normal(size=(512, 128)).astype(np.float32)
    t = s @ w_true
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    head = torch.nn.Linear(512, 128)
    assert fit_head(head, s, t, ridge=1e-4) > 0.99


def test_flip_embedding_is_the_sum_of_crop_and_mirror(tmp_path: Path) -> None:
    import dataclasses

    from desktop_app.nets import create_net
    from desktop_app.nets.export import export_onnx
    from desktop_app.train.export import manifest_entry
    from desktop_app.vision.embedder import Embedder

    p = export_onnx(create_net("fdfacenet_relu").eval(), tmp_path / "m.onnx")
    plain = manifest_entry("m", p, {})
    flipped = dataclasses.replace(plain, flip=True)
    crops = np.random.default_rng(1).integers(0, 255, (3, 112, 112, 3), dtype=np.uint8)
    e0, e1 = Embedder(plain, threads=1), Embedder(flipped, threads=1)
    a, m = e0._run(e0._preprocess(crops)), e0._run(e0._preprocess(np.ascontiguousarray(crops[:, :, ::-1])))
    want = (a + m) / np.linalg.norm(a + m, axis=1, keepdims=True)
    assert np.abs(e1.infer(crops) - want).max() < 1e-5  # the entry's flip is the default
    assert np.abs(e0.infer(crops, flip=True) - want).max() < 1e-5
    assert np.abs(e0.infer(crops) - e1.infer(crops, flip=False)).max() < 1e-6
    assert np.abs(e0.infer(crops) - want).max() > 1e-3  # a random net is not mirror-symmetric


def _batch1_teacher(path: Path) -> Path:
    """A tiny embedder saved the way the faceplugin recognizer is: input batch fixed at 1 and a final Reshape
    whose shape [1, -1] is an initializer."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.1, (8, 3, 8, 8)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "703")
    g = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["c"], strides=[8, 8]),
         helper.make_node("Reshape", ["c", "703"], ["output"])],
        "t", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8 * 14 * 14])], [w, shape])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, str(path))
    return path


def test_batched_copy_of_an_initializer_reshape_matches_batch_one(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from desktop_app.train.teacher import Teacher, TorchTeacher, batched_copy

    src = _batch1_teacher(tmp_path / "t.onnx")
    x = np.random.default_rng(1).normal(size=(3, 3, 112, 112)).astype(np.float32)
    one = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    ref = np.concatenate([one.run(None, {"input": x[i : i + 1]})[0] for i in range(3)])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    dst = batched_copy(src, tmp_path / "b.onnx")
    np.testing.assert_allclose(Teacher(dst, threads=1)(x), ref, atol=1e-6)
    np.testing.assert_allclose(TorchTeacher(dst, bf16=False)(x), ref, atol=1e-5)


def test_second_teacher_cached_targets_follow_the_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    teacher = shared_path("teachers", "mobilefacenet-foamliu", "MobileFaceNet.onnx")
    from desktop_app.train.augment import to_input
    from desktop_app.train.loop import Trainer

    monkeypatch.setenv("FDFACE_CACHE", str(tmp_path / "cache"))
    folder = _tiny_folder(tmp_path)
    t2 = _batch1_teacher(tmp_path / "t2.onnx")
    (tmp_path / "recipes").mkdir()
    rp = tmp_path / "recipes" / "d2.toml"
    rp.write_text(f'name = "d2"\nnet = "fdfacenet_relu"\nloss = "distill"\nimage_folder = "{folder}"\n'
                  f'teacher = "{teacher}"\nteacher_backend = "torch"\nteacher2 = "{t2}"\nteacher2_dim = 1568\n'
                  'relational = 5.0\nlr = 0.02\nbatch = 8\nsteps = 5\nthreads = 1\nbf16 = false\n'
                  'channels_last = false\n'
                  'mixup = 0.5\n[augment]\nflip = 1.0\n')
    tr = Trainer(load_recipe(rp), tmp_path / "run")
    t = tr.targets2
    assert t is not None and t.shape == (len(tr.train_set), 2, 1568)
    assert len(list((tmp_path / "cache").glob("targets-*.npy"))) == 1  # computed once, kept for the next run
    from desktop_app.train.teacher import Teacher, batched_copy

    ref = Teacher(batched_copy(t2, tmp_path / "ref.onnx"), threads=1)
    imgs = tr.train_set.images[:4]
    np.testing.assert_allclose(t[:4, 0], ref(to_input(imgs)), atol=1e-5)
    np.testing.assert_allclose(t[:4, 1], ref(to_input(imgs[:, :, ::-1].copy())), atol=1e-5)
    assert not np.allclose(t[:4, 0], t[:4, 1], atol=1e-3)  # the mirror is a different target
    losses = [tr.train_step(np.arange(8)) for _ in range(8)]
    assert tr._flipped.all() and tr._n_mix == 4  # every face mirrored: the mirror targets were the ones used
    assert losses[-1] < losses[0]
    again = Trainer(load_recipe(rp), tmp_path / "run2")  # reuses the cached targets
    np.testing.assert_array_equal(again.targets2, t)


def test_a_kept_checkpoint_continues_the_run_on_a_new_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.cli import main
    from desktop_app.train.loop import Trainer

    monkeypatch.setenv("FDFACE_CACHE", str(tmp_path / "cache"))
    folder = _tiny_folder(tmp_path)
    (tmp_path / "recipes").mkdir()
    rp = tmp_path / "recipes" / "k.toml"
    rp.write_text(f'name = "k"\nnet = "fdfacenet_relu"\nloss = "arcface"\nimage_folder = "{folder}"\nbatch = 8\n'
                  'lr = 0.05\nsteps = 16\nthreads = 1\nbf16 = false\nchannels_last = false\nmixup = 0.0\n')
    r = load_recipe(rp)
    tr = Trainer(r, tmp_path / "run")
    for _ in range(10):
        tr.train_step(np.arange(8))
    tr.step = 10
    tr.save()
    kept = tmp_path / "kept" / "k.pt"
    assert main(["keep", str(tmp_path / "run"), "--recipe", str(rp), "--out", str(kept)]) == 0
    full, small = (tmp_path / "run" / "last.pt").stat().st_size, kept.stat().st_size
    assert small < 0.6 * full  # no optimizer state, fp16 weights

    fresh = Trainer(r, tmp_path / "elsewhere")  # a new machine: no runs/ folder
    fresh.load_kept(kept)
    assert fresh.step == 10
    for (name, a), b in zip(tr.model.state_dict().items(), fresh.model.state_dict().values(), strict=True):
        assert a.dtype == b.dtype, name
        if a.is_floating_point():
            assert torch.allclose(a, b, rtol=2e-3, atol=1e-4), name
    lr_before = fresh.lr_now()
    assert abs(lr_before - tr.lr_now()) < 1e-12  # the same point of the same cosine curve
    fresh2 = Trainer(r, tmp_path / "elsewhere2")
    fresh2.run(kept=kept)
    assert fresh2.step == 16 and (tmp_path / "elsewhere2" / "final.pt").exists()

    other = tmp_path / "recipes" / "other.toml"
    other.write_text(rp.read_text().replace('name = "k"', 'name = "other"'))
    with pytest.raises(ValueError, match="not a kept checkpoint of recipe 'other'"):
        Trainer(load_recipe(other), tmp_path / "o").load_kept(kept)


def test_teacher_runs_in_pytorch_as_in_onnx_runtime(tmp_path: Path) -> None:
    """The in-house ONNX interpreter reproduces the real foamliu teacher (Constant, Clip, Relu, Conv with groups,
    Add, Reshape) in fp32, and stays within bf16 rounding of it with autocast."""
    src = shared_path("teachers", "mobilefacenet-foamliu", "MobileFaceNet.onnx")
    from desktop_app.train.teacher import Teacher, TorchTeacher, batched_copy

    dst = batched_copy(src, tmp_path / "b.onnx")
    x = (np.random.default_rng(2).uniform(0, 255, size=(4, 3, 112, 112)).astype(np.float32) - 127.5) / 128
    ref = Teacher(dst, threads=1)(x)
    np.testing.assert_allclose(TorchTeacher(dst, bf16=False)(x), ref, atol=1e-4)
    cos = (TorchTeacher(dst, bf16=True)(x) * ref).sum(1)
    assert cos.min() > 0.99


def test_prelu_and_asymmetric_padding_follow_onnx_runtime(tmp_path: Path) -> None:
    """The operators of the faceplugin teacher (PRelu with per-channel slopes) and a Conv with uneven pads."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from desktop_app.train.onnx_torch import convert

    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.normal(0, 0.1, (4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "b")
    s = numpy_helper.from_array(rng.uniform(0.05, 0.5, (4, 1, 1)).astype(np.float32), "s")
    g = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["c"], strides=[2, 2], pads=[0, 1, 1, 0]),
         helper.make_node("PRelu", ["c", "s"], ["p"]),
         helper.make_node("Flatten", ["p"], ["output"])],
        "t", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", None])], [w, b, s])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)])
    m.ir_version = 7
    onnx.save(m, str(tmp_path / "p.onnx"))
    x = rng.normal(size=(2, 3, 16, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    import torch

    with torch.no_grad():
        got = convert(tmp_path / "p.onnx")(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_an_operator_the_converter_does_not_know_is_named(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from desktop_app.train.onnx_torch import convert

    g = helper.make_graph([helper.make_node("Softmax", ["input"], ["output"])], "t",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(g), str(tmp_path / "s.onnx"))
    with pytest.raises(NotImplementedError, match="Softmax"):
        convert(tmp_path / "s.onnx")


def test_webcam_augmentations_darken_add_noise_and_compress() -> None:
    from desktop_app.train.augment import AugmentConfig, augment_batch, jpeg_round_trip, low_light

    rng = np.random.default_rng(0)
    face = cv2.resize(rng.integers(60, 200, (14, 14, 3), dtype=np.uint8), (112, 112), interpolation=cv2.INTER_CUBIC)
    dark = low_light(face, 2.0, 5.0, rng)
    assert dark.dtype == np.uint8 and dark.mean() < 0.75 * face.mean()
    clean_dark = low_light(face, 2.0, 0.0, rng)
    assert 3.0 < (dark.astype(float) - clean_dark).std() < 7.0  # the sensor noise asked for
    err = {q: np.abs(jpeg_round_trip(face, q).astype(float) - face).mean() for q in (20, 95)}
    assert 0 < err[95] < err[20]  # lower quality, more damage
    still = AugmentConfig(flip=0.0, rotate_deg=0.0, scale=(1.0, 1.0), shift_px=0.0, downsample_p=0.0, grey_p=0.0,
                          brightness=(1.0, 1.0), offset=0.0)
    batch = np.stack([face] * 4)
    np.testing.assert_array_equal(augment_batch(batch, still, np.random.default_rng(1)), batch)
    from dataclasses import replace

    out = augment_batch(batch, replace(still, lowlight_p=1.0, jpeg_p=1.0), np.random.default_rng(1))
    assert (out.reshape(4, -1).mean(1) < 0.8 * face.mean()).all()
    # the new steps draw nothing when off: the random stream, and so every other augmentation, is unchanged
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    a = augment_batch(batch, AugmentConfig(), r1)
    b = augment_batch(batch, AugmentConfig(jpeg_quality=(10, 20), lowlight_gamma=(3.0, 4.0)), r2)
    np.testing.assert_array_equal(a, b)
    assert r1.random() == r2.random()


def test_nearest_neighbours_rank_by_similarity_without_itself_or_copies() -> None:
    from desktop_app.train.mining import nearest_neighbours

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16))
    emb = np.concatenate([c + 0.3 * rng.normal(size=(6, 16)) for c in centres])  # 5 people x 6 faces
    emb = np.concatenate([emb, emb[:1] * 2.0])  # face 30: a copy of face 0 (same direction)
    idx, sims = nearest_neighbours(emb, k=4, chunk=7)  # chunks smaller than the set: the offsets matter
    assert idx.shape == (31, 4) and sims.shape == (31, 4)
    person = np.r_[np.repeat(np.arange(5), 6), 0]
    assert all(i not in row for i, row in enumerate(idx))  # never itself
    assert 30 not in idx[0, :3] and 0 not in idx[30, :3]  # the copy only where nothing real is left
    assert (person[idx[:30, :3]] == person[:30, None]).mean() > 0.95  # the nearest are the same person
    assert (np.diff(sims[1:30], axis=1) <= 1e-6).all()  # most similar first
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    full = u @ u.T
    np.testing.assert_allclose(sims[5], full[5, idx[5]], atol=1e-5)


def test_pairs_bring_the_teachers_neighbours_into_the_unmixed_faces(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop_app.train.loop import Trainer
    from desktop_app.train.mining import nearest_neighbours
    from desktop_app.train.teacher import Teacher, batched_copy

    monkeypatch.setenv("FDFACE_CACHE", str(tmp_path / "cache"))
    folder = _tiny_folder(tmp_path)
    teacher = _batch1_teacher(tmp_path / "t.onnx")
    (tmp_path / "recipes").mkdir()
    rp = tmp_path / "recipes" / "p.toml"
    base = (f'name = "p"\nnet = "fdfacenet_relu"\nloss = "distill"\nimage_folder = "{folder}"\n'
            f'teacher = "{teacher}"\nteacher_dim = 1568\nlr = 0.02\nbatch = 8\nsteps = 6\nthreads = 1\n'
            'bf16 = false\nchannels_last = false\nmixup = 0.5\nrelational = 5.0\n')
    rp.write_text(base + 'pairs = 0.75\n')
    with pytest.raises(ValueError, match="1 - mixup"):
        load_recipe(rp)
    rp.write_text(base + 'pairs = 0.5\npairs_k = 3\n')
    tr = Trainer(load_recipe(rp), tmp_path / "run")
    assert tr.n_pairs() == 2 and tr.neighbours is not None and tr.neighbours.shape == (len(tr.train_set), 3)
    ref = Teacher(batched_copy(teacher, tmp_path / "ref.onnx"), threads=1)
    from desktop_app.train.augment import to_input

    want, _ = nearest_neighbours(ref(to_input(tr.train_set.images)), 3)
    np.testing.assert_array_equal(tr.neighbours, want)  # ranked by the teacher's similarity of the clean crops
    batches: list[np.ndarray] = []
    step = tr.train_step

    def spy(idx: np.ndarray) -> float:
        batches.append(idx.copy())
        return step(idx)

    tr.train_step = spy
    tr.run()
    assert len(batches) == 6 and all(len(b) == 8 for b in batches)
    assert tr._n_mix == 4  # faces 0-3 of a batch are mixed; the anchors (4, 5) and their neighbours (6, 7) are not
    for b in batches:
        for a, n in zip(b[4:6], b[6:8], strict=True):
            assert n in tr.neighbours[a]
    epoch = np.concatenate([b[:6] for b in batches[:len(tr.train_set) // 6]])
    assert len(np.unique(epoch)) == len(epoch)  # the epoch's order is still a permutation; neighbours come on top


def test_warm_start_points_the_arcface_rows_at_the_class_means(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With loss "arcface" or "both" from a shipped export, each class row starts at the mean embedding of its faces
    (a random row would spend the first steps' large margin gradients pulling the trained net at noise)."""
    pytest.importorskip("onnx")
    from desktop_app.nets import create_net
    from desktop_app.nets.export import export_onnx
    from desktop_app.train.loop import Trainer, embed
    from desktop_app.train.losses import ArcFace

    monkeypatch.setenv("FDFACE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    for k in range(4):  # 4 people, 4 faces each: a base picture per person plus noise
        d = tmp_path / "folder" / f"p{k}"
        d.mkdir(parents=True)
        base = rng.integers(0, 255, (112, 112, 3))
        for j in range(4):
            cv2.imwrite(str(d / f"{j}.jpg"), np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
    torch.manual_seed(0)
    src = create_net("fdfacenet_relu")
    with torch.no_grad():  # BN away from its defaults, as after training (the export keeps every bias apart)
        for m in src.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.2, 0.2)
    export_onnx(src.eval(), tmp_path / "m.onnx")
    (tmp_path / "recipes").mkdir()
    rp = tmp_path / "recipes" / "t.toml"
    rp.write_text(
        f'name = "t"\nnet = "fdfacenet_relu"\nloss = "arcface"\nimage_folder = "{tmp_path / "folder"}"\n'
        f'init_onnx = "{tmp_path / "m.onnx"}"\ninit_faces = 16\nbatch = 8\nlr = 0.05\nsteps = 1\nthreads = 1\n'
        'bf16 = false\nchannels_last = false\nmixup = 0.0\n'
    )
    tr = Trainer(load_recipe(rp), tmp_path / "run")
    assert tr.warm_start() and not tr.warm_start()  # once
    ds = tr.train_set
    emb = embed(tr.model, ds.images)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    rows = tr.arcface.weight.detach().numpy()
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    for c in np.unique(ds.labels):
        mean = emb[ds.labels == c].mean(0)
        assert float(rows[c] @ mean / np.linalg.norm(mean)) > 0.999
    e, lab = torch.from_numpy(emb), torch.from_numpy(ds.labels.astype(np.int64))
    fresh = ArcFace(512, rows.shape[0], tr.r.arcface_s, tr.r.arcface_m)
    with torch.no_grad():
        assert float(tr.arcface(e, lab)) < 0.5 * float(fresh(e, lab))

    tr.save("last.pt")  # a paused run of this recipe: resuming it does not embed the pool for the export again
    calls: list[Path] = []
    monkeypatch.setattr(Trainer, "_warm_start", lambda self, path: calls.append(path))
    again = Trainer(load_recipe(rp), tmp_path / "run")
    again.run()
    assert calls == [] and again.step == 1
    assert torch.allclose(again.arcface.weight, tr.arcface.weight, atol=0.05)  # one step from the saved rows
    Trainer(load_recipe(rp), tmp_path / "run").run(resume=False)  # --fresh starts from the export again
    assert calls == [tmp_path / "m.onnx"]

    # a batch whose loss is not finite is skipped, not applied: the weights stay as they were
    monkeypatch.setattr(ArcFace, "forward", lambda self, e, lab: e.sum() * float("nan"))
    bad = Trainer(load_recipe(rp), tmp_path / "bad")
    before = {k: v.clone() for k, v in bad.model.state_dict().items()}  # weights and BN statistics
    bad.run()
    assert bad.step == 1 and bad.skipped == 1 and bad.history[-1]["skipped"] == 1
    assert all(torch.equal(before[k], v) for k, v in bad.model.state_dict().items() if v.is_floating_point())
    monkeypatch.setattr("desktop_app.train.loop.MAX_SKIPPED_IN_A_ROW", 1)  # a run that is never finite stops
    with pytest.raises(ValueError, match="not finite for 1 steps in a row"):
        Trainer(load_recipe(rp), tmp_path / "worse").run()


def test_arcface_stays_finite_where_a_face_lies_on_a_class_row() -> None:
    """sin(theta) = sqrt(1 - cos^2) has an infinite slope at cos = 1: a face on its class row, or two class rows
    that coincide (a warm start from an untrained export), must still give finite gradients."""
    from desktop_app.train.losses import ArcFace

    head = ArcFace(8, 3)
    with torch.no_grad():
        head.weight.copy_(torch.eye(8)[[0, 0, 1]])  # classes 0 and 1 on the same unit row: cos is exactly 1
    emb = head.weight[:2].detach().clone().requires_grad_()
    loss = head(emb, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all() and torch.isfinite(head.weight.grad).all()


def test_a_held_out_person_trains_no_margin_class_through_another_source() -> None:
    """Identity labels are shared across sources (celeba-small holds faces of celeba-wild people): the held-out
    people's faces elsewhere stay in the pool for distillation but lose their label, and only they do."""
    from desktop_app.train.data import FaceArray, hold_out
    from desktop_app.train.losses import ArcFace
    from desktop_app.train.warmstart import init_arcface

    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 0, 1, 2, -1, 5], np.int64)
    sources = ["wild"] * 8 + ["small"] * 5
    arr = FaceArray(np.zeros((13, 4, 4, 3), np.uint8), labels, [f"f{i}" for i in range(13)])
    train, val = hold_out(arr, sources, "wild", 2, seed=0)
    held = set(np.unique(val.labels).tolist())
    assert len(held) == 2 and len(train) + len(val) == 13 and (arr.labels == labels).all()
    assert not held & set(train.labels.tolist())
    small = [p for p in train.paths if int(p[1:]) >= 8]
    assert small == ["f8", "f9", "f10", "f11", "f12"]  # every other-source face stays in the pool
    kept = {int(p[1:]): int(lab) for p, lab in zip(train.paths, train.labels, strict=True)}
    for i in range(8, 13):  # other-source faces keep their label unless it is a held-out person's
        assert kept[i] == (-1 if labels[i] in held else labels[i])

    head = ArcFace(4, 6)
    before = head.weight.detach().clone()
    emb = np.eye(4, dtype=np.float32)[[0, 1, 2, 3]]
    assert init_arcface(head, emb, np.array([0, -1, 0, 2])) == 2  # an unknown face moves no row
    w = head.weight.detach()
    assert torch.allclose(w[0], torch.tensor([0.7071, 0, 0.7071, 0]), atol=1e-4)
    assert torch.allclose(w[2], torch.tensor([0.0, 0, 0, 1.0]))
    assert torch.equal(w[[1, 3, 4, 5]], before[[1, 3, 4, 5]])


def test_a_checkpoint_from_before_the_second_teacher_gets_a_fitted_head(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    from desktop_app.train.loop import Trainer, kept_checkpoint

    monkeypatch.setenv("FDFACE_CACHE", str(tmp_path / "cache"))
    folder = synthetic_folder(tmp_path)
    t1, t2 = _batch1_teacher(tmp_path / "t1.onnx"), _batch1_teacher(tmp_path / "t2.onnx")
    (tmp_path / "recipes").mkdir()
    base = (f'name = "h"\nnet = "fdfacenet_relu"\nimage_folder = "{folder}"\nteacher = "{t1}"\nteacher_dim = 1568\n'
            'batch = 8\nlr = 0.02\nsteps = 4\nthreads = 1\nbf16 = false\nchannels_last = false\nmixup = 0.0\n')
    one = tmp_path / "recipes" / "one.toml"
    one.write_text(base)
    tr = Trainer(load_recipe(one), tmp_path / "run")
    tr.train_step(np.arange(8))
    tr.step = 1
    tr.save()
    kept = tmp_path / "kept.pt"
    torch.save(kept_checkpoint(tr.state()), kept)

    two = tmp_path / "recipes" / "two.toml"  # the same run, its recipe now naming a second teacher
    two.write_text(base + f'teacher2 = "{t2}"\nteacher2_dim = 1568\n')
    for resume in ("last", "kept"):
        tr2 = Trainer(load_recipe(two), tmp_path / ("run" if resume == "last" else "elsewhere"))
        random_head = tr2.distill_head2.weight.detach().clone()
        caplog.clear()
        with caplog.at_level("WARNING"):
            tr2.load(tmp_path / "run" / "last.pt") if resume == "last" else tr2.load_kept(kept)
        assert "no head for the second teacher" in caplog.text, resume
        assert not torch.equal(tr2.distill_head2.weight, random_head)
        from desktop_app.train.loop import embed

        s = embed(tr2.model, tr2.train_set.images)
        pred = tr2.distill_head2(torch.from_numpy(s)).detach().numpy()
        pred /= np.linalg.norm(pred, axis=1, keepdims=True)
        fitted = float((pred * tr2.targets2[:, 0]).sum(1).mean())
        rnd = torch.nn.functional.linear(torch.from_numpy(s), random_head).numpy()
        rnd /= np.linalg.norm(rnd, axis=1, keepdims=True)
        assert fitted > float((rnd * tr2.targets2[:, 0]).sum(1).mean()) + 0.2, resume  # the fit points at the teacher
        assert np.isfinite(tr2.train_step(np.arange(8)))  # and the run goes on (an optimizer for every head)


def test_a_shipped_model_says_where_it_comes_from(tmp_path: Path) -> None:
    from desktop_app.cli.train_cmds import provenance

    st = {"net": "fdfacenet_relu", "step": 9443, "elapsed": 390.4}
    rp = Path("recipes/gpu-h100.toml")
    info = provenance(load_recipe(rp), rp, st)
    assert info == {"recipe": "recipes/gpu-h100.toml", "net": "fdfacenet_relu", "steps": 9443, "train_minutes": 6.5,
                    "data": "faces112 train/ pool minus 50 held-out celeba-wild identities",
                    "teacher": "mobilefacenet-foamliu", "teacher2": "fr_feature.onnx"}
    (tmp_path / "recipes").mkdir()
    arc = tmp_path / "recipes" / "a.toml"  # no teacher taught it, so none is named
    arc.write_text('name = "a"\nloss = "arcface"\nimage_folder = "/data/ms1m"\nval_ids = 20\nsteps = 5\n')
    info = provenance(load_recipe(arc), arc, st)
    assert "teacher" not in info and "teacher2" not in info and info["data"] == "image folder ms1m"
