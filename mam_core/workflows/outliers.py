"""Outlier scores a chemist can screen with: likelihoods that do not reward being small.

A raw ``log p(x)`` favours short molecules (fewer tokens, fewer factors below one), so ranking a
library by it puts small, odd molecules among the most typical.  The scores here remove that
size effect in different ways; ``bench/outlier_screening.py`` measures them side by side:

* ``raw`` — ``−log p(x)`` (the one-pass MaM marginal), for reference;
* ``per_token`` — ``−log p(x) / n``, n the molecule's tokens (pads excluded): perplexity's log;
* ``likelihood_ratio`` — ``−log p(x) + log q(x)``, q a background model of independent tokens
  fitted on the training set (Ren et al., NeurIPS 2019): what the model knows beyond token
  frequencies;
* ``length_z`` — ``(−log p(x) − μ(n)) / σ(n)``: how far the NLL sits from the training
  molecules *of the same length*, μ and σ fitted per length on training molecules;
* ``worst_fragment`` (fragment-block models) — a molecule can be typical on average and still
  carry one odd group (a reactive or assay-interfering one), which the per-token average
  dilutes.  For each fragment block b the surprise ``(log p(x without b) − log p(x)) / √|b|``
  is ``−log p(b | the rest)`` per √token, read off two one-pass marginals; the score is the
  larger of the per-token score and the worst block's surprise, each as a z-score against
  training molecules.  It costs one more pass per block (about six per molecule) and names
  the block (``atypical_fragment``).

For a fragment-block model ``log p(x)`` is the molecule's: it writes a molecule as N strings
(its block orders), so one string's log p is lower by about log N, which would call molecules
cut into many fragments atypical; the canonical string's log p plus log N stands for the sum.

Calibration (:func:`calibrate`) scores training molecules once and stores, in the model's
metadata, the background model, the per-length fit and the sorted training scores, so a
percentile ("more atypical than 97 % of the training set") is one lookup.  Molecules the model
cannot represent (unknown token, too long, not a molecule) are out of domain: they get an
infinite score, percentile 100 and the reason in ``error``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..chem import encoding_pool
from ..chem.molecules import tokenizer_of
from ..core.model import MaM, bf16_is_faster, scoring_batch_size

__all__ = [
    "SCORES",
    "DEFAULT_SCORE",
    "SLOW_SCORES",
    "SCORE_LABELS",
    "scores_for",
    "Calibration",
    "calibrate",
    "calibration_of",
    "score_table",
    "partial_table",
    "ensure_calibration",
    "raw_scores",
]

SCORES = ("raw", "per_token", "likelihood_ratio", "length_z", "worst_fragment")
DEFAULT_SCORE = "per_token"
#: scores that need one more pass per fragment block of every molecule
SLOW_SCORES = ("worst_fragment",)
#: what each score means, in a sentence a chemist can read beside the ranking
SCORE_LABELS = {
    "raw": "−log p(x): rewards small molecules, for reference only",
    "per_token": "−log p(x) per token: atypical on average, whatever the size",
    "likelihood_ratio": "−log p(x) + log q(x): beyond what token frequencies explain",
    "length_z": "NLL as a z-score among training molecules of the same length",
    "worst_fragment": "atypical on average or in one fragment (slower: one pass per fragment); "
                      "names that fragment",
}


def scores_for(model: MaM) -> list[str]:
    """The scores this model can give (``worst_fragment`` needs fragment blocks)."""
    tok = tokenizer_of(model)
    return [s for s in SCORES if s != "worst_fragment" or (tok is not None and _has_blocks(tok))]


_META_KEY = "outlier_calibration"


@dataclass
class Calibration:
    """What scoring needs from the training set; plain JSON in ``model.metadata``."""

    background: list[float]  # (K,) log q(token), pads included, from training tokens
    lengths: list[int]  # lengths with a fitted mean/std
    mean_nll: list[float]  # μ(n) for each length
    std_nll: list[float]  # σ(n) for each length
    train_scores: dict[str, list[float]]  # score name -> sorted scores of training molecules
    n_train: int
    source: str
    #: score name -> [mean, std] on training molecules (what the z-scores of worst_fragment use)
    score_stats: dict[str, list[float]] = field(default_factory=dict)
    #: scores were made on the molecule's log p, one string's plus the log of how many strings
    #: write the molecule (block orders); screening scores the same way
    molecule: bool = False

    def to_dict(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return cls(**d)

    def length_stats(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """μ(n), σ(n) by interpolation over the fitted lengths (clamped at the ends)."""
        return (np.interp(n, self.lengths, self.mean_nll), np.interp(n, self.lengths, self.std_nll))

    def percentile(self, name: str, scores: np.ndarray) -> np.ndarray:
        """Share of training molecules (in %) with a score at or below each score."""
        ref = np.asarray(self.train_scores[name])
        pct = 100.0 * np.searchsorted(ref, scores, side="right") / len(ref)
        return np.where(np.isnan(scores), np.nan, pct)


@dataclass
class _Raw:
    log_p: np.ndarray  # (N,) MaM log p(x), NaN where not encodable
    n_tokens: np.ndarray  # (N,) non-pad tokens
    log_q: np.ndarray  # (N,) background log q(x)
    errors: list[str]
    surprise: np.ndarray | None = None  # (N,) worst block's −log p(b | rest) / √|b|
    worst_block: list[str] | None = None  # (N,) that block as SMILES with [*], "" if none
    block_orders: np.ndarray | None = None  # (N,) strings per molecule (log_p: the molecule's)

    @property
    def log_p_string(self) -> np.ndarray:
        """One string's log p (``log_p`` less the log of the block orders it stands for)."""
        return self.log_p if self.block_orders is None else self.log_p - np.log(self.block_orders)


def _fragment_surprise(model: MaM, tok, ids: torch.Tensor, log_p: np.ndarray,
                       batch_size: int | None, bf16: bool | None
                       ) -> tuple[np.ndarray, list[str]]:
    """Per row: the largest ``(log p(x with block b masked) − log p(x)) / √|b|`` over its
    blocks, and that block's SMILES; one marginal per block, in batches."""
    from ..chem.safe import block_smiles, block_spans

    dot = tok.vocab.id_of(".")
    masked, owner, size, spans = [], [], [], []
    for r, row in enumerate(ids.tolist()):
        for a, b in block_spans(row, dot, tok.pad_id):
            x = ids[r].clone()
            x[a:b] = model.mask_id
            masked.append(x)
            owner.append(r)
            size.append(b - a)
            spans.append((a, b))
    worst = np.full(len(ids), np.nan)
    text = [""] * len(ids)
    if not masked:
        return worst, text
    lp_rest = _log_marginals(model, torch.stack(masked), batch_size, bf16)
    owner_a = np.asarray(owner)
    surprise = (lp_rest - log_p[owner_a]) / np.sqrt(np.asarray(size))
    best = np.full(len(ids), -1)
    for k, r in enumerate(owner):
        if best[r] < 0 or surprise[k] > worst[r]:
            worst[r], best[r] = surprise[k], k
    for r, k in enumerate(best):
        if k >= 0:
            a, b = spans[k]
            text[r] = block_smiles("".join(tok.vocab.tokens[i] for i in ids[r, a:b].tolist()))
    return worst, text


@torch.no_grad()
def raw_scores(model: MaM, smiles: list[str], background: np.ndarray | None,
               batch_size: int | None = None, bf16: bool | None = False,
               fragments: bool = False, molecule: bool = False) -> _Raw:
    """One-pass log-likelihoods plus what the size corrections need (``bf16``: see
    :func:`_log_marginals`); ``fragments`` adds the worst block's surprise (fragment-block
    models only, one more pass per block).  ``molecule``: for a model that writes a molecule as
    N strings (its block orders), ``log p`` is the molecule's, ``log p(string) + log N``: the
    canonical string standing for all N, as the marginal treats a molecule's block orders
    nearly alike (no extra pass; ``docs/outliers/README.md`` compares it with sums over drawn
    orders).  The block surprise stays within one string."""
    tok = tokenizer_of(model)
    if tok is None:
        raise ValueError("outlier scores need a molecule model; the selected model has no "
                         "molecule tokenizer")
    model.eval()
    smiles = list(smiles)
    enc = tok.encode_filtered(smiles, pool=encoding_pool.pool_for(len(smiles)))
    n = len(smiles)
    log_p, n_tok, log_q = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    errors = [""] * n
    for i, msg in enc.errors:
        errors[i] = msg
    if fragments and not _has_blocks(tok):
        raise ValueError("the worst_fragment score needs a fragment-block model; this one reads "
                         f"{tok.kind.upper()}")
    surprise, worst_block = (np.full(n, np.nan), [""] * n) if fragments else (None, None)
    block_orders = None
    if enc.kept:
        lp = _log_marginals(model, enc.ids, batch_size, bf16)
        kept = np.asarray(enc.kept)
        log_p[kept] = lp
        n_tok[kept] = (enc.ids != tok.pad_id).sum(dim=1).numpy()
        if background is not None:
            log_q[kept] = np.asarray(background)[enc.ids.numpy()].sum(axis=1)
        if molecule and tok.many_spellings:
            block_orders = np.full(n, np.nan)
            block_orders[kept] = _spelling_counts(tok, enc.ids)
            log_p[kept] += np.log(block_orders[kept])
        if fragments:
            worst, text = _fragment_surprise(model, tok, enc.ids, lp, batch_size, bf16)
            surprise[kept] = worst
            for j, i in enumerate(enc.kept):
                worst_block[i] = text[j]
    return _Raw(log_p, n_tok, log_q, errors, surprise, worst_block, block_orders)


def _spelling_counts(tok, ids: torch.Tensor) -> np.ndarray:
    """``(N,)`` how many strings write the molecule of each row (block orders)."""
    tokens = tok.vocab.tokens
    return np.array([tok.spelling_count([tokens[i] for i in row if i != tok.pad_id])
                     for row in ids.tolist()], dtype=float)


def _has_blocks(tok) -> bool:
    return tok.kind == "safe" and "." in tok.vocab


def _named_scores(raw: _Raw, cal: Calibration | None) -> dict[str, np.ndarray]:
    nll = -raw.log_p
    out = {"raw": nll, "per_token": nll / raw.n_tokens}
    if cal is not None:
        out["likelihood_ratio"] = nll + raw.log_q
        mu, sd = cal.length_stats(raw.n_tokens)
        out["length_z"] = (nll - mu) / sd
        stats = cal.score_stats
        if raw.surprise is not None and {"per_token", "fragment_surprise"} <= stats.keys():
            out["worst_fragment"] = _worst_fragment(out["per_token"], raw.surprise, stats)
    return out


def _worst_fragment(per_token: np.ndarray, surprise: np.ndarray, stats: dict) -> np.ndarray:
    """The larger of the two z-scores against training molecules (NaN-ignoring)."""
    z_token = (per_token - stats["per_token"][0]) / stats["per_token"][1]
    z_block = (surprise - stats["fragment_surprise"][0]) / stats["fragment_surprise"][1]
    return np.fmax(z_token, z_block)


def calibrate(
    model: MaM,
    train_smiles: list[str],
    source: str = "training molecules",
    min_per_length: int = 30,
    store: bool = True,
    n_fragment: int = 500,
    molecule: bool | None = None,
) -> Calibration:
    """Score training molecules once; store and return the calibration.

    Args:
        train_smiles: a few thousand training molecules (5,000 take seconds).
        min_per_length: lengths with fewer molecules borrow the fit of their neighbours
            (by pooling a window of lengths around them).
        store: keep it in ``model.metadata`` (saved with the next checkpoint); ``False`` for a
            shared model that must not change (the app's cached one).
        n_fragment: fragment-block models: how many of the molecules also calibrate the
            ``worst_fragment`` score (one pass per block each).
        molecule: score the molecule's log p rather than one string's (see
            :func:`raw_scores`); ``None``: where the model writes a molecule several ways.
    """
    tok = tokenizer_of(model)
    if tok is None:
        raise ValueError("calibration needs a molecule model")
    train_smiles = list(train_smiles)
    enc = tok.encode_filtered(train_smiles, pool=encoding_pool.pool_for(len(train_smiles)))
    if len(enc.kept) < 100:
        raise ValueError(f"only {len(enc.kept)} of the training molecules could be encoded; need "
                         "at least 100")
    counts = torch.bincount(enc.ids.flatten(), minlength=tok.K).double() + 1.0  # add-one smoothing
    background = torch.log(counts / counts.sum()).numpy()
    if molecule is None:
        molecule = tok.many_spellings
    # at the precision screening uses on this hardware, so percentiles compare like with like
    raw = raw_scores(model, [train_smiles[i] for i in enc.kept], background, bf16=None,
                     molecule=molecule)
    nll, n = -raw.log_p, raw.n_tokens.astype(int)
    lengths, means, stds = [], [], []
    for length in range(int(n.min()), int(n.max()) + 1):
        half = 0
        sel = n == length
        while sel.sum() < min_per_length and half < tok.D:
            half += 1
            sel = np.abs(n - length) <= half
        vals = nll[sel]
        lengths.append(length)
        means.append(float(vals.mean()))
        stds.append(float(max(vals.std(), 1e-3)))
    cal = Calibration(background.tolist(), lengths, means, stds, {}, len(nll), source,
                      molecule=molecule)
    named = _named_scores(raw, cal)
    partials = _training_partials(tok, enc.ids)
    named["partial"] = _partial_lr(partials, _log_marginals(model, partials), background, model.K)
    if _has_blocks(tok) and n_fragment > 0:
        # a block pass per fragment is the cost, so fewer molecules (mean, std and percentiles
        # need hundreds, not thousands)
        # (the molecules' own log p is already in ``raw``, row for row with ``enc.ids``)
        string_lp = raw.log_p_string
        surprise, _ = _fragment_surprise(model, tok, enc.ids[:n_fragment],
                                         string_lp[:n_fragment], None, None)
        per_token = named["per_token"]
        cal.score_stats = {
            "per_token": [float(per_token.mean()), float(max(per_token.std(), 1e-6))],
            "fragment_surprise": [float(np.nanmean(surprise)),
                                  float(max(np.nanstd(surprise), 1e-6))],
        }
        named["worst_fragment"] = _worst_fragment(per_token[:n_fragment], surprise,
                                                  cal.score_stats)
    cal.train_scores = {k: np.sort(v[np.isfinite(v)]).tolist() for k, v in named.items()}
    if store:
        model.metadata[_META_KEY] = cal.to_dict()
    return cal


def ensure_calibration(model: MaM, n: int = 5000) -> Calibration:
    """The model's stored calibration, or one made now on ``n`` embedded MOSES training
    molecules (not stored: the model is left unchanged)."""
    from ..chem.moses import load_moses

    return calibration_of(model) or calibrate(
        model, load_moses("train", limit=n), f"embedded MOSES train (first {n:,})", store=False
    )


def _training_partials(tok, ids: torch.Tensor) -> torch.Tensor:
    """Partial molecules shaped like design templates, cut from training molecules: for
    fragment blocks the first block (a random fragment, since training strings are shuffled),
    otherwise the first half of the tokens; everything else masked."""
    out = torch.full_like(ids, tok.mask_id)
    if tok.kind == "safe" and "." in tok.vocab:
        dot = tok.vocab.id_of(".")
        for r, row in enumerate(ids.tolist()):
            j = row.index(dot) + 1 if dot in row else len(row)
            out[r, :j] = ids[r, :j]
    else:
        n = (ids != tok.pad_id).sum(dim=1)
        for r in range(ids.shape[0]):
            k = max(1, int(n[r]) // 2)
            out[r, :k] = ids[r, :k]
    return out


@torch.no_grad()
def _log_marginals(model: MaM, x: torch.Tensor, batch_size: int | None = None,
                   bf16: bool | None = None) -> np.ndarray:
    """One-pass ``log p(x_S)`` of every row, in batches; ``bf16=None``: the bfloat16 trunk
    where it is measured faster than float32 (:func:`~mam_core.core.model.bf16_is_faster`)."""
    if bf16 is None:
        bf16 = bf16_is_faster(model.device)
    if batch_size is None:
        batch_size = scoring_batch_size(model.device)
    return torch.cat([model.log_marginal(b.to(model.device), bf16=bf16)
                      for b in x.split(batch_size)]).double().cpu().numpy()


def _partial_lr(x: torch.Tensor, lp: np.ndarray, background: np.ndarray, K: int) -> np.ndarray:
    """``(−log p(x_S) + log q(x_S)) / |S|`` of partial rows: the likelihood ratio against the
    token background over the observed tokens, per observed token (fragments differ in size
    far more than molecules do)."""
    observed = (x != K).numpy()  # the mask id is K
    bg = np.where(observed, np.asarray(background)[np.minimum(x.numpy(), K - 1)], 0.0).sum(axis=1)
    return (-lp + bg) / np.maximum(observed.sum(axis=1), 1)


def partial_table(model: MaM, fragments: list[str], cal: Calibration | None = None) -> pd.DataFrame:
    """Scores of partial molecules: each fragment placed as a design places it (fixed blocks for
    fragment-block models, tokens at the start otherwise), the rest masked, scored in ONE pass.

    Columns: ``fragment``, ``log_marginal_mam`` (log p(x_S)), ``n_observed``, ``outlier_score``
    (likelihood ratio against the token background, higher = more atypical; inf when the
    fragment cannot be placed), ``percentile`` (against fragments of training molecules) and
    ``error``.  The score is per observed token.
    """
    from ..chem.fragments import FragmentError
    from .generate import plan_design

    cal = cal or calibration_of(model)
    if cal is None:
        raise ValueError("partial scores need a calibrated model: run `mam eval` or calibrate() "
                         "first")
    rows, errors = [], []
    for frag in fragments:
        try:
            req = plan_design(model, 1, frag, seed=0)
            rows.append(req.templates[0] if req.templates is not None else model.empty(1)[0].cpu())
            errors.append("")
        except (FragmentError, ValueError) as err:
            rows.append(model.empty(1)[0].cpu())
            errors.append(str(err))
    x = torch.stack(rows).cpu()
    lp = _log_marginals(model, x)
    lr = _partial_lr(x, lp, np.asarray(cal.background), model.K)
    bad = np.array([bool(e) for e in errors])
    lr = np.where(bad, math.inf, lr)
    pct = np.nan
    if "partial" in cal.train_scores:
        pct = np.where(bad, 100.0, cal.percentile("partial", lr))
    return pd.DataFrame({
        "fragment": list(fragments),
        "log_marginal_mam": np.where(bad, np.nan, lp),
        "n_observed": (x != model.mask_id).sum(dim=1).numpy(),
        "outlier_score": lr,
        "percentile": pct,
        "error": errors,
    })


def calibration_of(model: MaM) -> Calibration | None:
    d = model.metadata.get(_META_KEY)
    return Calibration.from_dict(d) if d else None


def score_table(model: MaM, smiles: list[str], score: str = DEFAULT_SCORE,
                cal: Calibration | None = None, bf16: bool | None = None) -> pd.DataFrame:
    """One row per input, in order: ``smiles``, ``log_marginal_mam`` (one string), for a
    calibration made on molecules ``block_orders`` (the strings that write the molecule: the
    scores use ``log_marginal_mam + log block_orders``), ``n_tokens``,
    ``outlier_score`` (higher = more atypical; ``inf`` out of domain), ``percentile`` (share of
    training molecules scoring at or below, in %; 100 out of domain) and ``error``; with
    ``worst_fragment`` also ``atypical_fragment``, the block that score found (SMILES with
    ``[*]`` where it bonds to the rest).

    ``bf16``: screen with the bfloat16 trunk (:meth:`MaM.log_marginal`); ``None`` uses it where
    it is measured faster, as :func:`calibrate` does.

    Raises:
        ValueError: unknown score name, or a score that needs a calibration the model lacks.
    """
    if score not in SCORES:
        raise ValueError(f"unknown outlier score {score!r}; valid: {', '.join(SCORES)}")
    cal = cal or calibration_of(model)
    if cal is None and score in ("likelihood_ratio", "length_z", "worst_fragment"):
        raise ValueError(f"the {score!r} score needs a calibrated model: run `mam eval` or "
                         "calibrate() first")
    fragments = score == "worst_fragment"
    if fragments and "fragment_surprise" not in cal.score_stats:
        raise ValueError("the 'worst_fragment' score needs a calibration made with it: "
                         "calibrate() the model again (its calibration predates this score)")
    raw = raw_scores(model, smiles, np.asarray(cal.background) if cal else None, bf16=bf16,
                     fragments=fragments, molecule=bool(cal and cal.molecule))
    values = _named_scores(raw, cal)[score]
    ood = np.array([bool(e) for e in raw.errors])
    values = np.where(ood, math.inf, values)
    pct = cal.percentile(score, values) if cal else np.full(len(values), np.nan)
    pct = np.where(ood, 100.0, pct)
    table = pd.DataFrame({
        "smiles": list(smiles),
        "log_marginal_mam": raw.log_p_string,
        "n_tokens": pd.array(np.where(np.isnan(raw.n_tokens), pd.NA, raw.n_tokens), dtype="Int64"),
        "outlier_score": values,
        "percentile": pct,
        "error": raw.errors,
    })
    if raw.block_orders is not None:
        table.insert(2, "block_orders", pd.array(
            np.where(np.isnan(raw.block_orders), pd.NA, raw.block_orders), dtype="Int64"))
    if fragments:
        table.insert(table.columns.get_loc("error"), "atypical_fragment", raw.worst_block)
    return table
