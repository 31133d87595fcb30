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

__all__ = ["CLIError", "add_common", "add_constraint_args", "constraint_arg", "load_model",
           "load_token_text", "parse_order_arg"]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")


def add_constraint_args(p: argparse.ArgumentParser) -> None:
    """``--constraint`` (and ``--no-grammar``, the same as ``--constraint off``)."""
    from ..chem.grammar import CONSTRAINT_MODES

    p.add_argument("--constraint", choices=("auto",) + CONSTRAINT_MODES, default="auto",
                   help="SMILES / fragment-block models: full (syntax and aromatic rings "
                        "steered), syntax (rings that cannot be kekulised are drawn again), "
                        "off; auto: the model's stored choice (mam export), else full")
    p.add_argument("--no-grammar", action="store_true", help="the same as --constraint off")


def constraint_arg(args) -> str:
    """The constraint mode the options ask for (a ``grammar`` argument of the workflows)."""
    return "off" if args.no_grammar else args.constraint


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
