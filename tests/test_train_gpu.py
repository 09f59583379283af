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
    assert st["step"] >= 1 and st["recipe"] == "g" and st["history"][-1]["lr"] == 0.0
    assert all(v.dtype == torch.float32 for v in st["model"].values() if v.is_floating_point())
    assert not (run / "last.pt").exists() and (run / "log.jsonl").read_text().count("\n") == len(st["history"])
    path, _ = export_checkpoint(run / "final.pt", tmp_path / "g.onnx")
    assert path.stat().st_size > 1e6

    tr = Trainer(load_recipe(rp), tmp_path / "cpu-run")  # the CPU trainer continues it (`fdface train --resume-from`)
    tr.load_kept(run / "final.pt")
    assert tr.step == st["step"]
    torch.testing.assert_close(tr.distill_head2.weight, st["distill_head2"]["weight"].float())

    assert main(["train", str(tmp_path / "missing.toml"), str(pack), str(run)]) == 2  # a message, no traceback
    if not torch.cuda.is_available():
        assert main(["train", str(rp), str(pack), str(run)]) == 2  # "no CUDA device here; pass --device cpu"
