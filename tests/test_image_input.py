"""Hostile still images (a header claiming 100000 x 100000 pixels, an empty file, a truncated JPEG, text named
.jpg) through the one guarded reader: every command and the capture say which file and why, and go on with the
next. Real models, a real SQLite database, the repository's own face photo (no ../shared needed)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop_app.capture import CaptureReader, CaptureState, FolderSource
from desktop_app.cli import main
from desktop_app.vision.media import (
    MAX_IMAGE_PIXELS,
    ImageReadError,
    MediaError,
    decode_image,
    image_header_size,
    read_image,
)

REPO = Path(__file__).resolve().parent.parent
FACE = REPO / "assets" / "selftest" / "face.jpg"  # one frontal face, shipped with the app for its self-test


def png_claiming(w: int, h: int) -> bytes:
    """A tiny PNG whose IHDR (with a valid CRC) declares w x h RGB pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def jpeg_claiming(w: int, h: int) -> bytes:
    """SOI, a baseline frame header declaring w x h, EOI: no pixel data at all."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


def write_bad_images(d: Path) -> dict[str, Path]:
    """The four kinds of hostile file in folder ``d``, named so that they sort before 'z_face.jpg'."""
    d.mkdir(parents=True, exist_ok=True)
    files = {
        "huge": (d / "a_huge.png", png_claiming(100_000, 100_000)),
        "empty": (d / "b_empty.jpg", b""),
        "truncated": (d / "c_truncated.jpg", FACE.read_bytes()[: FACE.stat().st_size // 2]),
        "text": (d / "d_text.jpg", b"these are my holiday notes, not a photo\n"),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {k: p for k, (p, _) in files.items()}


@pytest.fixture
def bad_images(tmp_path: Path) -> dict[str, Path]:
    return write_bad_images(tmp_path / "in")


REASONS = {"huge": "100000 x 100000 pixels is too large (limit 50 megapixels)", "empty": "empty file",
           "truncated": "not a readable image", "text": "not a readable image"}


# ------------------------------------------------------------------------------------------------ the reader
def test_the_guarded_reader_refuses_each_kind_with_a_reason(bad_images) -> None:
    for kind, path in bad_images.items():
        with pytest.raises(ImageReadError) as got:
            read_image(path)
        assert isinstance(got.value, MediaError)
        assert got.value.path == path and REASONS[kind] in got.value.reason
        assert str(got.value) == f"{path}: {got.value.reason}"
    img = read_image(FACE)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_declared_size_is_checked_before_decoding(tmp_path) -> None:
    # over the app's limit but under OpenCV's own (2^30): refused for its size, not as "damaged"
    w, h = 8000, 7000
    assert w * h > MAX_IMAGE_PIXELS
    for name, data in [("big.png", png_claiming(w, h)), ("big.jpg", jpeg_claiming(w, h)),
                       ("huge.jpg", jpeg_claiming(65000, 65000))]:
        with pytest.raises(ImageReadError, match="pixels is too large"):
            decode_image(data, name)
    with pytest.raises(ImageReadError, match="damaged"):
        decode_image(png_claiming(0, 10), "zero.png")
    with pytest.raises(ImageReadError, match="a folder"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "nothing.jpg")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tif", ".pgm", ".ppm"])
def test_header_sizes_match_the_decoded_images(ext) -> None:
    img = np.random.default_rng(0).integers(0, 255, (123, 457, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img[..., 0] if ext == ".pgm" else img)
    assert ok and image_header_size(buf.tobytes()) == (457, 123)
    assert decode_image(buf.tobytes()).shape == (123, 457, 3)


# ------------------------------------------------------------------------------------------------ the capture
def test_folder_source_skips_bad_files_names_them_and_goes_on(bad_images) -> None:
    folder = bad_images["huge"].parent
    (folder / "z_face.jpg").write_bytes(FACE.read_bytes())
    statuses = []
    reader = CaptureReader(FolderSource(folder), pace=False, on_status=statuses.append).start()
    frames = []
    while not reader.finished:
        f = reader.get(0.1)
        if f is not None:
            frames.append(f)
    st = reader.status
    assert [Path(f.origin).name for f in frames] == ["z_face.jpg"]
    assert st.state is CaptureState.ENDED, st.message
    assert [s.path.name for s in st.skipped] == sorted(p.name for p in bad_images.values())
    for kind, path in bad_images.items():
        assert f"{path.name}: {REASONS[kind]}" in st.message
        assert any(f"{path.name}: {REASONS[kind]}" in s.message for s in statuses if s.state is CaptureState.RUNNING)
    assert "1 image(s) read, 4 skipped" in st.message


def test_a_folder_with_no_readable_image_fails_naming_the_files(bad_images) -> None:
    reader = CaptureReader(FolderSource(bad_images["huge"].parent), pace=False).start()
    while not reader.finished:
        reader.get(0.1)
    st = reader.status
    assert st.state is CaptureState.FAILED and "none of the 4 image(s)" in st.message
    assert all(p.name in st.message for p in bad_images.values())


# ------------------------------------------------------------------------------------------------ the CLI
def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def assert_named(err: str, bad_images: dict[str, Path], full_path: bool = True) -> None:
    for kind, path in bad_images.items():
        name = str(path) if full_path else path.name
        line = next((ln for ln in err.splitlines() if name in ln), "")
        assert REASONS[kind] in line, (kind, err)


def test_detect_names_each_bad_image_and_goes_on(bad_images, capsys) -> None:
    code, out, err = cli(capsys, "detect", *map(str, bad_images.values()), str(FACE), "--threads", "1")
    assert code == 1  # some input could not be read; the rest was processed
    assert f"{FACE}: 1 face(s)" in out
    assert_named(err, bad_images)
    assert "4 of 5 image(s) could not be read" in err


def test_identify_skips_bad_photos_of_people_and_of_the_source(bad_images, tmp_path, capsys) -> None:
    people = tmp_path / "people" / "sam"
    people.mkdir(parents=True)
    for p in [*bad_images.values(), FACE]:
        (people / p.name).write_bytes(p.read_bytes())
    source = bad_images["huge"].parent
    (source / "z_face.jpg").write_bytes(FACE.read_bytes())
    code, out, err = cli(capsys, "identify", "--people", str(people.parent), str(source), "--threads", "1",
                         "--threshold", "0.5")
    assert code == 1
    assert "enrolled 1 people, 1 photos" in err
    assert "z_face.jpg: 1 face(s)" in out and "sam" in out
    assert_named(err, {k: people / p.name for k, p in bad_images.items()})
    assert_named(err, bad_images)
    # one unreadable still as the source: one line, rc 2
    code, out, err = cli(capsys, "identify", "--people", str(people.parent), str(bad_images["huge"]),
                         "--threads", "1")
    assert code == 2 and f"{bad_images['huge']}: {REASONS['huge']}" in err


@pytest.fixture
def db(tmp_path, monkeypatch) -> str:
    from tests.test_gallery_enroll import embedder_entry

    if embedder_entry().name != "fdfacenet":
        pytest.skip("the CLI uses the installed model: models/fdfacenet.onnx is absent or does not match its manifest")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FDFACE_DB", url)
    return url


def test_enroll_refuses_bad_photos_and_enrolls_the_good_one(db, bad_images, capsys) -> None:
    code, out, err = cli(capsys, "enroll", "Sam", *map(str, bad_images.values()), str(FACE), "--threads", "1")
    assert code == 0 and "enrolled Sam (#1): 1 template(s), 4 photo(s) refused" in out
    assert_named(err, bad_images, full_path=False)
    code, out, err = cli(capsys, "enroll", "Nobody", *map(str, bad_images.values()), "--threads", "1")
    assert code == 2 and "nothing enrolled" in err
    assert_named(err, bad_images, full_path=False)


def test_run_on_a_folder_names_skipped_files_and_records_the_good_one(db, bad_images, capsys) -> None:
    assert cli(capsys, "enroll", "Sam", str(FACE), "--threads", "1")[0] == 0
    folder = bad_images["huge"].parent
    (folder / "z_face.jpg").write_bytes(FACE.read_bytes())
    code, out, err = cli(capsys, "run", str(folder), "--threads", "1", "--threshold", "0.5")
    assert code == 1  # an attendance run over a folder with unreadable files says so in its exit status too
    assert "check-in" in out and "Sam (#1)" in out
    assert_named(err, bad_images)
    assert "1 frame(s), 1 event(s), 4 unreadable file(s) skipped" in err


def test_stray_bytes_between_jpeg_segments_do_not_hide_the_declared_size() -> None:
    """libjpeg skips bytes between segments to the next marker; the size check must too, or a few-kB file can
    make the decoder allocate gigabytes (review of 2026-12-04)."""
    data = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes())
    assert data[2:4] == b"\xff\xe0"
    app0_end = 4 + struct.unpack(">H", bytes(data[4:6]))[0]
    data[app0_end:app0_end] = b"\x00\x00"  # padding after APP0
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 8000, 8000)
    assert image_header_size(bytes(data)) == (8000, 8000)
    with pytest.raises(ImageReadError, match="pixels is too large"):
        decode_image(bytes(data), "padded.jpg")
