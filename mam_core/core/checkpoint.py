"""Self-describing checkpoints: weights + JSON config, safe to load, written atomically.

A checkpoint is one ``torch.save`` file holding only tensors, strings and numbers:

* ``format`` / ``version`` — identify the file as ours;
* ``config`` / ``vocab`` / ``metadata`` — JSON strings (network shape, vocabulary, training
  history, tokenizer, ...), enough to rebuild the model with no other file;
* ``state_dict`` — the weights;
* ``train_state`` (optional) — step, optimizer state and extra tensors (persistent chains, RNG)
  for ``--resume``.

Loading uses ``torch.load(weights_only=True)``, which never executes code from the file.
Saving writes a temporary file in the same folder, fsyncs it and renames it over the target,
so a crash never leaves a truncated checkpoint behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import NetworkConfig
from .model import MaM
from .vocab import Vocabulary

__all__ = ["save", "load", "load_checkpoint", "save_checkpoint", "Checkpoint", "CheckpointError"]

FORMAT = "mam-studio/checkpoint"
VERSION = 1

#: History metrics renamed since older checkpoints were written (old key -> new key); loading
#: renames them so every reader of stored histories sees one name. ``kl_plus_logz`` always held
#: ``mean(log p_θ − log f) = KL − log Z``.
RENAMED_METRICS = {"kl_plus_logz": "kl_minus_logz"}


class CheckpointError(ValueError):
    """The file is missing, corrupt, or not a MaM Studio checkpoint; the message says which."""


@dataclass
class Checkpoint:
    """Everything read back from a checkpoint file."""

    model: MaM
    metadata: dict
    train_state: dict | None = None
    path: str = ""
    extra: dict = field(default_factory=dict)


def _atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shared checkpoints unreadable
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed mid-write
        try:
            stale.unlink()
        except OSError:
            pass
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save_checkpoint(
    model: MaM,
    path: str | os.PathLike,
    metadata: dict | None = None,
    train_state: dict | None = None,
    half: bool = False,
) -> Path:
    """Write ``model`` (and optionally the training state for resuming) atomically to ``path``.

    ``half`` stores floating-point weights in float16 (half the file; loading casts them back
    to the model's float32), for shipped models rather than resumable runs.
    """
    if half and train_state is not None:
        raise ValueError("half-precision checkpoints are for use, not for resuming training")
    path = Path(path)
    meta = dict(model.metadata)
    if metadata:
        meta.update(metadata)
    try:
        meta_json = json.dumps(meta)
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint metadata must be JSON-serialisable: {err}") from None
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(model.config.to_dict()),
        "vocab": json.dumps(model.vocab.to_dict()),
        "metadata": meta_json,
        "state_dict": {
            k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
            for k, v in model.state_dict().items()
        },
    }
    if train_state is not None:
        payload["train_state"] = train_state
    _atomic_torch_save(payload, path)
    return path


def save(model: MaM, path: str | os.PathLike, metadata: dict | None = None,
         half: bool = False) -> Path:
    """Save a model for use (no optimizer state). See :func:`save_checkpoint`."""
    return save_checkpoint(model, path, metadata, half=half)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint without executing code; rebuild the model on ``device``.

    Raises:
        CheckpointError: missing file, corrupt or truncated file, foreign file, or weights that
            do not fit the stored config.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a MaM Studio checkpoint (not a PyTorch archive; "
                              "corrupt or foreign file)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch raise many types for bad bytes
        text = str(err)
        if "Weights only load failed" in text or "Unsupported global" in text:
            reason = "it holds Python objects that would need code execution to load; refused"
        else:
            first = text.strip().splitlines()[0][:200] if text.strip() else ""
            reason = f"corrupt or truncated ({type(err).__name__}: {first})"
        raise CheckpointError(f"{path} cannot be loaded as a MaM Studio checkpoint: "
                              f"{reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a MaM Studio checkpoint (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')}; this build "
                              f"reads {VERSION}")
    try:
        config = NetworkConfig.from_dict(json.loads(payload["config"]))
        vocab = Vocabulary.from_dict(json.loads(payload["vocab"]))
        metadata = _upgrade_histories(json.loads(payload.get("metadata") or "{}"))
        model = MaM(config, vocab, metadata)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} has an invalid config or weights: "
                              f"{str(err)[:300]}") from None
    from .model import resolve_device

    model.to(resolve_device(device))
    return Checkpoint(model=model, metadata=metadata, train_state=payload.get("train_state"),
                      path=str(path))


def _upgrade_histories(metadata: dict) -> dict:
    """Rename :data:`RENAMED_METRICS` in every stored training history, in place."""
    stages = metadata.get("training") if isinstance(metadata, dict) else None
    for stage in stages if isinstance(stages, list) else []:
        for rec in stage.get("history", []) if isinstance(stage, dict) else []:
            for old, new in RENAMED_METRICS.items():
                if isinstance(rec, dict) and old in rec and new not in rec:
                    rec[new] = rec.pop(old)
    return metadata


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> MaM:
    """Load a model from a checkpoint (safe: never executes code from the file)."""
    return load_checkpoint(path, device).model
