"""Scoring molecules by likelihood: MaM in one pass, the AO-ARM the slow way, side by side.

The app's Likelihood page and ``mam score`` both need the same thing: take SMILES a user pasted
or uploaded, keep every input row (a molecule that cannot be encoded gets a reason, not an
exception), score the rest with the marginal head, optionally with the exact AO-ARM, and time
both on the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..chem import encoding_pool
from ..chem.molecules import tokenizer_of
from ..chem.smiles_io import SmilesInputError
from ..chem.smiles_io import parse_smiles_text as _parse_smiles_text
from ..core.model import MaM, bf16_is_faster, scoring_batch_size
from .evaluation import (correlations, likelihood_agreement, molecule_likelihoods,
                         speedup_over_one_order)

__all__ = ["ARM_ROWS", "PAGE_SPELLINGS", "ScoreResult", "ScoringInputError", "decode_upload",
           "parse_smiles_text", "score_molecules", "molecule_columns", "position_distributions",
           "agreement"]

MAX_ROWS = 10_000
MAX_UPLOAD_BYTES = 2 * 2**20


#: The pasted or uploaded text holds no usable SMILES; the message says why. The same class as
#: every other SMILES reader's error (:class:`mam_core.chem.smiles_io.SmilesInputError`).
ScoringInputError = SmilesInputError


def parse_smiles_text(text: str, max_rows: int = MAX_ROWS) -> list[str]:
    """SMILES from pasted lines (first whitespace-separated field) or CSV text with a SMILES column,
    at most ``max_rows``; :func:`mam_core.chem.smiles_io.parse_smiles_text` with the app's limit.

    Raises:
        ScoringInputError: empty input, a CSV without a SMILES column, or more than ``max_rows``.
    """
    return _parse_smiles_text(text, max_rows=max_rows)


def decode_upload(filename: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The text of an uploaded SMILES/CSV file, refusing oversized or non-UTF-8 files by name."""
    if len(data) > max_bytes:
        raise ScoringInputError(f"{filename} is {len(data) / 2**20:.1f} MB; the limit is "
                                f"{max_bytes / 2**20:.0f} MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScoringInputError(f"{filename} is not UTF-8 text") from None


#: rows the app scores with the exact AO-ARM too: D passes per molecule would keep a chemist
#: waiting minutes on a library for a comparison a sample shows as well
ARM_ROWS = 50
#: fragment orders the Likelihood page sums per molecule by default: four passes more, where the
#: sum over a molecule's n! strings moves log p by about log n! (5 nats on MOSES molecules)
PAGE_SPELLINGS = 4


@dataclass
class ScoreResult:
    """``table`` has one row per input in input order: ``input``, ``log_p_mam``, ``log_p_arm``
    (NaN unless asked, and beyond the first ``n_arm`` scored rows), ``outlier_rank`` (1 = least
    likely) and ``error`` (empty when scored); with spellings asked for, also
    ``log_p_molecule`` (the MaM's sum over the strings the model writes the molecule as) and
    ``block_orders`` (how many strings write it), and the rank follows ``log_p_molecule``.

    ``seconds_mam`` times MaM on all ``n_scored`` rows; ``seconds_arm`` the AO-ARM on its
    ``n_arm`` rows (all ``num_orders`` orders), and ``seconds_mam_arm_rows`` MaM on those same
    rows, timed beside it; ``seconds_molecule`` the sums over spellings."""

    table: pd.DataFrame
    seconds_mam: float
    seconds_arm: float | None
    n_scored: int
    n_arm: int = 0
    seconds_mam_arm_rows: float | None = None
    num_orders: int = 1
    seconds_molecule: float | None = None

    @property
    def speedup(self) -> float | None:
        """Time of one AO-ARM order (D passes) over MaM's on the same rows."""
        if self.seconds_arm is None or not self.seconds_mam_arm_rows:
            return None
        return speedup_over_one_order(self.seconds_arm, self.num_orders,
                                      self.seconds_mam_arm_rows)


@torch.no_grad()
def score_molecules(
    model: MaM,
    smiles: list[str],
    with_arm: bool = False,
    num_orders: int = 1,
    batch_size: int | None = None,
    seed: int = 0,
    arm_limit: int | None = None,
    spellings: int = 0,
    bf16: bool | None = None,
) -> ScoreResult:
    """Log-likelihood of each molecule under ``model``: MaM (one pass) and optionally AO-ARM
    (D passes per molecule, so ``arm_limit`` keeps it to the first that many scored rows).

    ``spellings``: for a model that writes a molecule several ways (fragment blocks in any
    order), also sum the MaM over up to that many of them (one pass each): ``log p`` of the
    molecule rather than of one string, which otherwise penalises a molecule of ``n``
    fragments by about ``log n!`` nats against one of fewer.  The sum runs the trunk in bfloat16
    where that is measured faster (``bf16=None``; a few hundredths of a nat)."""
    tok = tokenizer_of(model)
    if tok is None:
        raise ValueError("this model has no molecule tokenizer")
    model.eval()
    batch = tok.encode_filtered(smiles, pool=encoding_pool.pool_for(len(smiles)))
    n = len(smiles)
    mam = np.full(n, np.nan)
    arm = np.full(n, np.nan)
    errors = [""] * n
    for idx, msg in batch.errors:
        errors[idx] = msg
    t_mam, t_arm, t_mam_sub = 0.0, None, None
    batch_size = batch_size or scoring_batch_size(model.device)
    n_arm = 0
    if with_arm:
        n_arm = len(batch.kept) if arm_limit is None else min(len(batch.kept), max(0, arm_limit))
    if batch.kept:
        ids = batch.ids.to(model.device)
        every_row = n_arm == len(batch.kept)  # both sides in one run, timed side by side
        scored = likelihood_agreement(model, ids, num_orders, batch_size, seed, every_row)
        mam[batch.kept], t_mam = scored.mam, scored.seconds_mam
        if every_row:
            arm[batch.kept], t_arm, t_mam_sub = scored.arm, scored.seconds_arm, t_mam
        elif n_arm:
            sub = likelihood_agreement(model, ids[:n_arm], num_orders, batch_size, seed, True)
            arm[batch.kept[:n_arm]] = sub.arm
            t_arm, t_mam_sub = sub.seconds_arm, sub.seconds_mam
    table = pd.DataFrame({"input": list(smiles), "log_p_mam": mam, "log_p_arm": arm,
                          "error": errors})
    rank_by, t_molecule = "log_p_mam", None
    if spellings and tok.many_spellings:
        whole, counts, t_molecule = molecule_columns(
            model, smiles, batch.kept, spellings, batch_size, seed,
            bf16_is_faster(model.device) if bf16 is None else bf16)
        table.insert(2, "log_p_molecule", whole)
        table.insert(3, "block_orders", counts)
        rank_by = "log_p_molecule"
    table.insert(table.columns.get_loc("error"), "outlier_rank",
                 table[rank_by].rank(method="first", na_option="keep").astype("Int64"))
    return ScoreResult(table, t_mam, t_arm, len(batch.kept), n_arm, t_mam_sub, num_orders,
                       t_molecule)


def molecule_columns(model: MaM, smiles: list[str], rows: list[int], spellings: int,
                     batch_size: int = 256, seed: int = 0, bf16: bool = False
                     ) -> tuple[np.ndarray, pd.arrays.IntegerArray, float]:
    """``log_p_molecule`` and ``block_orders`` columns for a table with one row per input:
    the marginal summed over up to ``spellings`` block orders of each molecule
    (:func:`~mam_core.workflows.evaluation.molecule_likelihoods`) at ``rows`` (those that
    encode), missing elsewhere; and the seconds the sums took."""
    whole = np.full(len(smiles), np.nan)
    counts = pd.array([pd.NA] * len(smiles), dtype="Int64")
    if not rows:
        return whole, counts, 0.0
    scored, kept, n = molecule_likelihoods(model, [smiles[i] for i in rows], spellings,
                                           batch_size=batch_size, seed=seed, with_arm=False,
                                           bf16=bf16)
    at = [rows[i] for i in kept]
    whole[at], counts[at] = scored.mam, n
    return whole, counts, scored.seconds_mam


@torch.no_grad()
def position_distributions(model: MaM, template: torch.Tensor) -> tuple[np.ndarray, float]:
    """For a partial sequence ``x_S`` (``(D,)`` ids, mask id = unobserved): the conditional
    distribution ``p(x_i | x_S)`` at every position (``(D, K)``; observed rows are one-hot) and
    the marginal ``log p(x_S)`` from one pass."""
    x = model.check_input(template)[:1].to(model.device)
    probs = F.softmax(model.conditional_logits(x)[0].double(), dim=-1).cpu()
    observed = x[0].cpu() != model.mask_id
    probs[observed] = F.one_hot(x[0].cpu()[observed], model.K).double()
    return probs.numpy(), float(model.log_marginal(x)[0])


def agreement(table: pd.DataFrame) -> dict[str, float]:
    """Spearman and Pearson correlation of MaM against AO-ARM over the rows scored both ways."""
    both = table[["log_p_mam", "log_p_arm"]].dropna()
    return {"n": len(both), **correlations(both["log_p_mam"], both["log_p_arm"])}
