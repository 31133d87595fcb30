"""A folder of named models next to the shipped default: list, save, import, delete.

The app's Models and Fine-tune pages keep user models here so a fine-tuned model survives a
restart. The folder is ``$MAM_MODELS_DIR`` if set, else ``~/.mam_studio/models``. Names are
sanitised to a safe file stem (letters, digits, ``-``, ``_``, ``.``), so an uploaded file name or a
typed name can never point outside the folder. Imports are checked by loading them safely
(weights only, no code) before they are kept.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core.checkpoint import CheckpointError, load_checkpoint, save
from ..core.model import MaM
from ..paths import default_model_path

__all__ = [
    "DEFAULT_NAME",
    "MAX_IMPORT_BYTES",
    "ModelInfo",
    "ModelStoreError",
    "models_dir",
    "sanitize_name",
    "list_models",
    "model_path",
    "save_model",
    "import_model",
    "delete_model",
    "model_names",
]

DEFAULT_NAME = "default"
MAX_IMPORT_BYTES = 100 * 2**20


class ModelStoreError(ValueError):
    """A name, file or operation the store refuses; the message says why."""


def models_dir() -> Path:
    env = os.environ.get("MAM_MODELS_DIR")
    return Path(env) if env else Path.home() / ".mam_studio" / "models"


def sanitize_name(name: str) -> str:
    """A safe file stem from a user-typed or uploaded name (``"My model (v2).pt"`` →
    ``"My_model_v2"``)."""
    stem = str(name).strip()
    if stem.lower().endswith(".pt"):
        stem = stem[:-3]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:64]
    if not stem:
        raise ModelStoreError(f"{name!r} is not a usable model name: use letters, digits, '-', '_' "
                              "or '.'")
    if stem == DEFAULT_NAME:
        raise ModelStoreError("'default' is the shipped model's name; choose another")
    return stem


@dataclass
class ModelInfo:
    name: str
    path: Path
    is_default: bool
    size_mb: float
    D: int | None = None
    K: int | None = None
    tokenizer: str | None = None
    training: list | None = None
    error: str | None = None

    def stages(self) -> str:
        """A one-line training summary: ``arm 3000 → distill 4000 → eb 300``."""
        return " → ".join(f"{r.get('stage')} {r.get('steps_done', '?')}"
                          for r in (self.training or [])) or "—"


def _info(name: str, path: Path, is_default: bool) -> ModelInfo:
    info = ModelInfo(name, path, is_default, round(path.stat().st_size / 2**20, 2))
    try:
        ck = load_checkpoint(path)
    except CheckpointError as err:
        info.error = str(err)
        return info
    info.D, info.K = ck.model.D, ck.model.K
    info.tokenizer = (ck.metadata.get("tokenizer") or {}).get("kind")
    info.training = [{**r, "history": r.get("history", [])}
                     for r in ck.metadata.get("training", [])]
    return info


def list_models() -> list[ModelInfo]:
    """The default model first, then the stored models by name."""
    out = []
    if default_model_path().is_file():
        out.append(_info(DEFAULT_NAME, default_model_path(), True))
    folder = models_dir()
    if folder.is_dir():
        out += [_info(p.stem, p, False) for p in sorted(folder.glob("*.pt"))]
    return out


def model_path(name: str) -> Path:
    if name == DEFAULT_NAME:
        return default_model_path()
    path = models_dir() / f"{sanitize_name(name)}.pt"
    if not path.is_file():
        raise ModelStoreError(f"no model named {name!r} in {models_dir()}")
    return path


def save_model(model: MaM, name: str, overwrite: bool = False) -> Path:
    """Save ``model`` under a sanitised ``name`` (atomically); refuses to replace unless asked."""
    path = models_dir() / f"{sanitize_name(name)}.pt"
    if path.exists() and not overwrite:
        raise ModelStoreError(f"a model named {path.stem!r} already exists")
    return save(model, path)


def import_model(filename: str, data: bytes, max_bytes: int = MAX_IMPORT_BYTES) -> Path:
    """Keep an uploaded checkpoint after checking it loads safely (no code execution)."""
    if len(data) > max_bytes:
        raise ModelStoreError(f"{filename} is {len(data) / 2**20:.1f} MB; the limit is "
                              f"{max_bytes / 2**20:.0f} MB")
    name = sanitize_name(Path(str(filename)).name)
    folder = models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.pt"
    if target.exists():
        raise ModelStoreError(f"a model named {name!r} already exists; delete it first or rename "
                              "the file")
    fd, tmp = tempfile.mkstemp(prefix=".upload.", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            load_checkpoint(tmp)
        except CheckpointError as err:
            raise ModelStoreError(str(err).replace(tmp, filename)) from None
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def delete_model(name: str) -> None:
    if name == DEFAULT_NAME:
        raise ModelStoreError("the shipped default model cannot be deleted")
    model_path(name).unlink()


def model_names() -> list[str]:
    """Names only (no loading): the default first, then the stored models."""
    names = [DEFAULT_NAME] if default_model_path().is_file() else []
    folder = models_dir()
    if folder.is_dir():
        names += sorted(p.stem for p in folder.glob("*.pt"))
    return names
