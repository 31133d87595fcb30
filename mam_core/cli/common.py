"""What every ``mam`` command shares: the error it reports as one line, the common options, the
model it loads, typed orders and rows of token ids."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..core import checkpoint as ckpt
from ..core.data import DataError, parse_token_rows
from ..core.model import MaM, resolve_device
from ..paths import default_model_path

__all__ = ["CLIError", "add_common", "load_model", "load_token_text", "parse_order_arg"]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")


def load_model(args) -> MaM:
    """--model, or the shipped default molecule model when none is given."""
    if args.model is None:
        path = default_model_path()  # read per call so $MAM_DEFAULT_MODEL is honoured
        if not path.is_file():
            raise CLIError(f"no --model given and no default model at {path}")
        return ckpt.load(path, resolve_device(args.device))
    return ckpt.load(args.model, resolve_device(args.device))


def parse_order_arg(spec: str, D: int):
    """A named order, or typed positions (listed first, the rest left to right), as in the app."""
    from ..core.orders import ORDERS, parse_order
    from ..core.sampling import DYNAMIC_ORDERS

    if spec in ORDERS or spec in DYNAMIC_ORDERS or spec == "auto":
        return spec
    try:
        return parse_order(spec, D)
    except ValueError as err:
        raise CLIError(
            f"--order must be one of auto, {', '.join(sorted(ORDERS) + list(DYNAMIC_ORDERS))} or "
            f"positions: {err}"
        ) from None


def load_token_text(text_or_path: str, model: MaM, what: str) -> torch.Tensor:
    """Rows of token ids (``?`` = masked) from a file path or an inline string."""
    p = Path(text_or_path)
    lines = p.read_text(encoding="utf-8").splitlines() if p.is_file() else [text_or_path]
    try:
        return parse_token_rows(lines, mask_id=model.mask_id, K=model.K, source=what)
    except DataError as err:
        raise CLIError(str(err)) from None
