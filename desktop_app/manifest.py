"""Model manifest entries: a model file is described by data, not by code branches.

``models/manifest.json`` holds ``{"models": {name: entry}}``; an entry names the file (relative to the manifest),
its sha256, task, input size, colour order, mean/std and output dimension. The loader reads only this.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent


def default_models_dir() -> Path:
    """models/ beside the package (source checkout), or inside it (wheel / frozen bundle)."""
    for cand in (PACKAGE_DIR.parent / "models", PACKAGE_DIR / "models"):
        if (cand / "manifest.json").exists():
            return cand
    return PACKAGE_DIR.parent / "models"


class ManifestError(ValueError):
    """A manifest or model file that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    task: str = "embedding"
    sha256: str = ""
    input_size: int = 112
    color: str = "RGB"  # channel order the model expects
    mean: float = 127.5
    std: float = 128.0
    output_dim: int = 512
    input_name: str = ""  # empty: the session's first input
    flip: bool = False  # embedding = model(crop) + model(mirrored crop): what the thresholds were calibrated with
    # the match threshold and margin calibrated for this model (`fdface ship`, docs/CALIBRATION.md); None: not
    # calibrated, the settings' fallback applies (config.RecognitionSettings.for_model)
    threshold: float | None = None
    margin: float | None = None
    rule: str | None = None  # the decision rule calibrated with them (config.DECISION_RULES); None: "best"
    info: dict[str, Any] = field(default_factory=dict)  # recipe, data, measured LFW, licence...
    base_dir: str = ""  # where ``file`` is resolved from

    @property
    def path(self) -> Path:
        return (Path(self.base_dir) / self.file).resolve()

    def verify(self) -> Path:
        p = self.path
        if not p.exists():
            raise ManifestError(f"model file for {self.name!r} not found: {p}")
        if self.sha256 and sha256_file(p) != self.sha256:
            raise ManifestError(f"model file {p} does not match its manifest checksum; reinstall the app")
        return p

    @property
    def lfw_text(self) -> str:
        """The LFW accuracy measured the way the app embeds (with the mirrored crop when ``flip``), e.g.
        "LFW 97.33 %"; empty when the manifest has no figure."""
        lfw = self.info.get("lfw_flip") if self.flip else None
        lfw = lfw if lfw is not None else self.info.get("lfw")
        return f"LFW {lfw} %" if lfw is not None else ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("base_dir")
        d.pop("name")
        return d


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(path: str | Path) -> dict[str, ModelEntry]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        models = data["models"]
        return {
            name: ModelEntry(name=name, base_dir=str(path.parent), **{k: v for k, v in e.items()})
            for name, e in models.items()
        }
    except FileNotFoundError:
        raise ManifestError(f"model manifest not found: {path}") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ManifestError(f"model manifest {path} is malformed: {exc}") from None


def write_entry(manifest_path: str | Path, entry: ModelEntry) -> None:
    """Add or replace one entry, keeping the others."""
    manifest_path = Path(manifest_path)
    data: dict[str, Any] = {"models": {}}
    if manifest_path.exists():
        data = json.loads(manifest_path.read_text())
    data.setdefault("models", {})[entry.name] = entry.to_json()
    manifest_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
