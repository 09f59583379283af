"""The one-shot GPU run (desktop_app/train/gpu.py), checked on the CPU: the pack, the device-side augmentation and
mixup, the warm-up of the schedule, and a short run whose checkpoint the CPU tools take (export, resume)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (torch)")

from desktop_app.train.augment import AugmentConfig  # noqa: E402
from desktop_app.train.gpu import GpuAugment, decode_faces, encode_faces, mixup  # noqa: E402
from desktop_app.train.recipe import load_recipe, scheduled_lr  # noqa: E402
from tests.test_train import _batch1_teacher, smooth_faces, synthetic_folder  # noqa: E402

STILL = AugmentConfig(flip=0.0, rotate_deg=0.0, scale=(1.0, 1.0), shift_px=0.0, downsample_p=0.0, blur_p=0.0,
                      grey_p=0.0, brightness=(1.0, 1.0), offset=0.0)


def _gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_faces_come_back_from_the_pack_close_to_what_went_in() -> None:
    faces = smooth_faces(6)
    blob, offsets = encode_faces(faces, quality=55)
    assert len(offsets) == 7 and offsets[-1] == len(blob) and len(blob) < faces.nbytes / 4
    back = decode_faces(blob, offsets, threads=2)
    assert back.shape == faces.shape and back.dtype == np.uint8
    err = np.abs(back.astype(int) - faces.astype(int)).mean()
    assert err < 8, err  # lossy, but the same pictures in the same order (RGB kept RGB)
    assert np.abs(back[::-1].astype(int) - faces.astype(int)).mean() > 4 * err
    with pytest.raises(ValueError, match="face 1 of the pack does not decode"):
        decode_faces(blob[: offsets[1]] + b"\0" * 64, np.array([0, offsets[1], offsets[1] + 64]), threads=1)


def test_with_every_step_off_but_the_flip_a_face_comes_back_itself_or_mirrored() -> None:
    faces = torch.from_numpy(smooth_faces(64))
    x, flip = GpuAugment(dataclasses.replace(STILL, flip=0.5), _gen())(faces)
    ref = faces.permute(0, 3, 1, 2).float()
    assert 10 < int(flip.sum()) < 54
    torch.testing.assert_close(x[~flip], ref[~flip], atol=1e-3, rtol=0)  # the identity warp samples pixel centres
    torch.testing.assert_close(x[flip], ref[flip].flip(3), atol=1e-3, rtol=0)


def test_the_steps_do_what_they_say() -> None:
    faces = torch.from_numpy(smooth_faces(16))
    ref = faces.permute(0, 3, 1, 2).float()
    grey, _ = GpuAugment(dataclasses.replace(STILL, grey_p=1.0), _gen())(faces)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    noise = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (4, 112, 112, 3), dtype=np.uint8))
    blur, _ = GpuAugment(dataclasses.replace(STILL, blur_p=1.0), _gen())(noise)
    d_ref = (noise[:, :, 1:].float() - noise[:, :, :-1].float()).abs().mean()
    assert (blur[..., 1:] - blur[..., :-1]).abs().mean() < 0.7 * d_ref  # neighbouring pixels closer: smoother
    warped, _ = GpuAugment(dataclasses.replace(STILL, rotate_deg=6.0, shift_px=3.0), _gen())(faces)
    change = (warped - ref).abs().mean(dim=(1, 2, 3))
    assert bool((change > 1).all())  # every face moved
    bright, _ = GpuAugment(dataclasses.replace(STILL, brightness=(1.5, 1.5), offset=0.0), _gen())(faces)
    torch.testing.assert_close(bright, (ref * 1.5).clamp(0, 255), atol=1e-3, rtol=0)  # the identity warp: ~1e-4
    assert float(bright.max()) == 255.0 and float(bright.min()) >= 0


def test_the_warp_is_the_cpu_augmentations_warp() -> None:
    """The same rotation, scale and shift as cv2.getRotationMatrix2D + warpAffine in augment.py, on a picture that
    is not square (a wrong sign, aspect factor or centre shows at once)."""
    import cv2
    import torch.nn.functional as F

    from desktop_app.train.gpu import rotation_matrices, theta_of_warp

    h, w = 96, 128
    img = cv2.resize(np.random.default_rng(4).integers(0, 256, (12, 16, 3), dtype=np.uint8), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    for ang, sc, sx, sy in ((10.0, 1.1, 3.0, -2.0), (-6.0, 0.95, -3.0, 1.5)):
        m_cv = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), ang, sc)
        m_cv[:, 2] += (sx, sy)
        want = cv2.warpAffine(img, m_cv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        m = rotation_matrices(torch.tensor([ang]), torch.tensor([sc]), torch.tensor([[sx, sy]]), h, w)
        np.testing.assert_allclose(m[0].double().numpy(), m_cv, atol=1e-4)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
        grid = F.affine_grid(theta_of_warp(m.double(), h, w).float(), [1, 3, h, w], align_corners=False)
        got = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        got = got[0].permute(1, 2, 0).numpy()
        inner = (slice(16, -16), slice(16, -16))  # the borders are filled differently (reflection about edges)
        assert np.abs(got[inner] - want[inner].astype(np.float32)).max() < 1.5


def test_steps_the_device_does_not_have_are_refused_not_skipped() -> None:
    for cfg in (dataclasses.replace(STILL, lowlight_p=0.3), dataclasses.replace(STILL, jpeg_p=0.3)):
        with pytest.raises(ValueError, match="no low-light or JPEG step"):
            GpuAugment(cfg, _gen())


def test_mixup_mixes_the_first_faces_with_faces_of_the_batch() -> None:
    x = torch.from_numpy(smooth_faces(8)).permute(0, 3, 1, 2).float()
    orig = x.clone()
    assert mixup(x, 0.5, _gen()) == 4
    assert torch.equal(x[4:], orig[4:])
    for k in range(4):  # each mixed face lies on the segment between its own face and one of the batch
        ok = False
        for j in range(8):
            d = (orig[k] - orig[j]).flatten()
            if float(d.norm()) == 0:
                ok = ok or torch.allclose(x[k], orig[k])
                continue
            lam = float(((x[k] - orig[j]).flatten() @ d) / (d @ d))
            ok = ok or (0 <= lam <= 1 and torch.allclose(x[k], lam * orig[k] + (1 - lam) * orig[j], atol=1e-3))
        assert ok, k


def test_the_learning_rate_warms_up_then_follows_the_cosine(tmp_path: Path) -> None:
    rp = tmp_path / "recipes" / "w.toml"
    rp.parent.mkdir()
    rp.write_text('name = "w"\nlr = 0.4\nwarmup = 0.1\nminutes = 1\n')
    r = load_recipe(rp)
    assert scheduled_lr(r, 0.0) == 0.0
    assert scheduled_lr(r, 0.05) == pytest.approx(0.5 * 0.4 * (1 + math.cos(math.pi * 0.05)) * 0.5)
    assert scheduled_lr(r, 0.5) == pytest.approx(0.2)
    assert scheduled_lr(r, 1.0) == pytest.approx(0.0)
    rp.write_text('name = "w"\nlr = 0.4\nwarmup = 1.5\nminutes = 1\n')
    with pytest.raises(ValueError, match="warmup is a fraction of the budget"):
        load_recipe(rp)


def test_a_short_run_on_the_cpu_writes_a_checkpoint_that_ships_and_resumes(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnx")
    from desktop_app.train.export import export_checkpoint
    from desktop_app.train.gpu import main
    from desktop_app.train.loop import Trainer

    monkeypatch.setenv("FDFACE_CACHE", str(tmp_path / "cache"))
    folder = synthetic_folder(tmp_path)
    t1, t2 = _batch1_teacher(tmp_path / "t1.onnx"), _batch1_teacher(tmp_path / "t2.onnx")
    rp = tmp_path / "recipes" / "g.toml"
    rp.parent.mkdir()
    rp.write_text(f'name = "g"\nnet = "fdfacenet_relu"\nimage_folder = "{folder}"\nteacher = "{t1}"\n'
                  f'teacher_dim = 1568\nteacher2 = "{t2}"\nteacher2_dim = 1568\nrelational = 15.0\nbatch = 8\n'
                  f'lr = 0.05\nwarmup = 0.05\nminutes = 1\nthreads = 1\nbf16 = false\nchannels_last = false\n')
    pack = tmp_path / "pack"
    assert main(["pack", str(rp), str(pack), "--quality", "60"]) == 0
    z = np.load(pack / "faces.npz")
    assert int(z["n_train"]) == 24 and len(z["offsets"]) == 25

    run = tmp_path / "run"
    assert main(["train", str(rp), str(pack), str(run), "--device", "cpu", "--seconds", "3", "--threads", "1"]) == 0
    st = torch.load(run / "final.pt", map_location="cpu", weights_only=False)
    assert st["step"] >= 1 and st["recipe"] == "g" and st["history"][-1]["step"] == st["step"]
    assert all(v.dtype == torch.float32 for v in st["model"].values() if v.is_floating_point())
    assert not (run / "last.pt").exists() and (run / "log.jsonl").read_text().count("\n") == len(st["history"])
    path, _ = export_checkpoint(run / "final.pt", tmp_path / "g.onnx")
    assert path.stat().st_size > 1e6

    tr = Trainer(load_recipe(rp), tmp_path / "cpu-run")  # the CPU trainer continues it (`fdface train --resume-from`)
    tr.load_kept(run / "final.pt")
    assert tr.step == st["step"]
    torch.testing.assert_close(tr.distill_head2.weight, st["distill_head2"]["weight"].float())

    assert main(["train", str(tmp_path / "missing.toml"), str(pack), str(run)]) == 2  # a message, no traceback
    from desktop_app.train.gpu import GpuRun

    with pytest.raises(ValueError, match="holds a run already"):  # a second run never mixes into the first's log
        GpuRun(load_recipe(rp), pack, "cpu", 1).run(run, 1.0)
    big = rp.with_name("big.toml")
    big.write_text(rp.read_text().replace("batch = 8", "batch = 64"))
    with pytest.raises(ValueError, match="24 training faces, fewer than one batch of 64"):
        GpuRun(load_recipe(big), pack, "cpu", 1)  # (an epoch of no steps would spin for ever)
    step = rp.with_name("step.toml")
    step.write_text(rp.read_text().replace('name = "g"', 'name = "g"\nschedule = "step"\nmilestones = [5]\n'
                                           'init_onnx = "x.onnx"'))
    with pytest.raises(ValueError, match='does not do schedule = "step".*init_onnx'):
        GpuRun(load_recipe(step), pack, "cpu", 1)
    if not torch.cuda.is_available():
        assert main(["train", str(rp), str(pack), str(run)]) == 2  # "no CUDA device here; pass --device cpu"
