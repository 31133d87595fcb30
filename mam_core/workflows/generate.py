"""Design molecules: sample from a molecule model, optionally around a chemist's fragment, and
return only what was asked for.

The guarantee: a row marked ``ok`` is a valid molecule that contains the fragment (attachment
points removed) as an RDKit substructure.  Rows that fail are sampled again, up to
``max_rounds`` times in all; those still failing are returned with ``status`` saying why, never
as if they satisfied the constraint.  ``table.attrs["summary"]`` counts requested, valid,
matched and unique rows; ``table.attrs["notices"]`` says what the user should know (stereo
removed, say).

How the fragment becomes a constraint depends on the model's representation:

* fragment blocks (``safe`` tokenizer): the fragment's blocks are fixed at the start and the
  model writes the rest, which can bond to the fragment only at its attachment points;
* SELFIES / SMILES models: the fragment (attachment points capped with hydrogens) is placed
  as tokens at ``start``; new atoms may then grow anywhere, and linkers cannot be expressed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..chem import safe
from ..chem.grammar import CONSTRAINT_MODES, constraint_for, grammar_for
from ..chem.fragments import (
    FragmentBlocks,
    FragmentError,
    FragmentSpec,
    capped_smiles,
    fragment_blocks,
    match_atoms,
    parse_fragment,
)
from ..core.model import MaM, bf16_is_faster
from ..chem.molecules import tokenizer_of
from ..chem.tokenizers import MolTokenizer, make_template

__all__ = ["generate_molecules", "default_order", "recommended_sampling", "recommended_constraint",
           "constraint_mode", "DesignRequest", "plan_design", "STATUS_OK", "SAMPLING_KEY", "SAMPLING_LIMITS"]

STATUS_OK = "ok"
_INVALID = "invalid molecule"
_MISSING = "fragment not found in the molecule"


@dataclass
class DesignRequest:
    """How each row will be sampled: its template and how to read the result back."""

    spec: FragmentSpec | None
    templates: torch.Tensor | None  # (n, D) or None for de novo
    blocks: list[FragmentBlocks | None]  # per row, fragment-block models only
    notices: list[str]


#: metadata key of the temperature / top-p chosen for a shipped model (``mam export``)
SAMPLING_KEY = "sampling"
#: the largest value each stored sampling setting may take (both must be > 0)
SAMPLING_LIMITS = {"temperature": 5.0, "top_p": 1.0}


def recommended_sampling(model: MaM, temperature: float | None = None,
                         top_p: float | None = None) -> dict:
    """``{"temperature", "top_p"}`` to draw this model's molecules with: each value given here,
    else the one stored when it was exported (chosen by ``bench/sampling_orders.py``), else the
    plain model's 1.0."""
    stored = model.metadata.get(SAMPLING_KEY) or {}
    out = {"temperature": 1.0, "top_p": 1.0}
    for key, high in SAMPLING_LIMITS.items():
        value = stored.get(key)
        if isinstance(value, (int, float)) and 0.0 < float(value) <= high:
            out[key] = float(value)
    given = {"temperature": temperature, "top_p": top_p}
    return {key: value if given[key] is None else given[key] for key, value in out.items()}


def recommended_constraint(model: MaM) -> str:
    """The constraint mode (:data:`~mam_core.chem.grammar.CONSTRAINT_MODES`) to draw this
    model's molecules with: the one stored when it was exported (``mam export --constraint``,
    chosen by ``bench/sampling_orders.py``), else ``full``."""
    stored = (model.metadata.get(SAMPLING_KEY) or {}).get("constraint")
    return stored if stored in CONSTRAINT_MODES else "full"


def constraint_mode(model: MaM, grammar: bool | str) -> str:
    """A ``grammar`` argument as a mode: ``"auto"`` is :func:`recommended_constraint`, ``True``
    ``full``, ``False`` ``off``; a mode name stays.

    Raises:
        ValueError: anything else (the message lists the modes).
    """
    if grammar is True or grammar is False:
        return "full" if grammar else "off"
    if grammar == "auto":
        return recommended_constraint(model)
    if grammar not in CONSTRAINT_MODES:
        raise ValueError(f"grammar must be auto, {', '.join(CONSTRAINT_MODES)} or a bool; "
                         f"got {grammar!r}")
    return grammar


def default_order(model: MaM) -> str:
    """The order that gives the most drug-like molecules for this model's representation:
    left to right for SMILES and fragment blocks, where the syntax constraint then acts at every
    position (``bench/sampling_orders.py`` measures it), random for SELFIES."""
    tok = tokenizer_of(model)
    return "l2r" if grammar_for(tok) is not None else "random"


def _block_template(tok: MolTokenizer, blocks: FragmentBlocks) -> torch.Tensor:
    tokens = tok.regex_tokens(blocks.model_text)
    unknown = sorted({t for t in tokens if t not in tok.vocab})
    if unknown:
        raise FragmentError(
            f"the model's vocabulary has no {', '.join(map(repr, unknown))}: it never saw these "
            "atoms or labels in training"
        )
    if len(tokens) >= tok.D:
        raise FragmentError(
            f"the fragment takes {len(tokens)} of the model's {tok.D} positions, leaving no room to grow"
        )
    t = torch.full((tok.D,), tok.mask_id, dtype=torch.long)
    t[: len(tokens)] = torch.tensor([tok.vocab.id_of(x) for x in tokens])
    return t


def plan_design(model: MaM, n: int, fragment: str | None, start: int = 0, seed: int | None = None) -> DesignRequest:
    """Parse ``fragment`` and build one template per row (different attachment sites per row
    for a superstructure on a fragment-block model).

    Raises:
        FragmentError: the fragment cannot be read or this model cannot express it.
        ValueError: a model without a molecule tokenizer.
    """
    tok = tokenizer_of(model)
    if tok is None:
        raise ValueError("this page needs a molecule model; the selected model has no molecule tokenizer")
    if not fragment:
        return DesignRequest(None, None, [None] * n, [])
    spec = parse_fragment(fragment)
    notices: list[str] = []
    if tok.kind == "safe":
        rng = random.Random(0 if seed is None else seed)
        per_row = 1 if spec.task != "superstructure" else n
        plans = [fragment_blocks(spec, rng) for _ in range(per_row)]
        if spec.has_stereo:
            if plans[0].stereo_kept:
                notices.append("Stereo of the fragment is kept: written back into every molecule.")
            else:
                notices.append("Stereo of the fragment was removed: it could not be kept in fragment blocks.")
        rows = [_block_template(tok, p) for p in plans]
        templates = torch.stack(rows).expand(n, -1) if per_row == 1 else torch.stack(rows)
        blocks = plans * n if per_row == 1 else plans
        return DesignRequest(spec, templates.clone(), blocks, notices)
    if spec.task == "linker design":
        raise FragmentError(
            f"linker design needs a fragment-block model; this one reads {tok.kind.upper()}, "
            "which cannot hold two separate pieces"
        )
    if spec.has_stereo:
        notices.append(f"Stereo of the fragment was removed: this {tok.kind.upper()} model has no stereo tokens.")
    if spec.n_attachments:
        notices.append(
            f"This {tok.kind.upper()} model cannot restrict growth to attachment points; new atoms "
            "may appear anywhere on the fragment."
        )
    template = make_template(tok, capped_smiles(spec), start=start)
    return DesignRequest(spec, template.expand(n, -1).clone(), [None] * n, notices)


def _decode_rows(tok: MolTokenizer, x: torch.Tensor, blocks: list[FragmentBlocks | None]) -> list[str]:
    """SMILES per row; fragment-block rows get the user's stereo written back first."""
    if tok.kind != "safe" or all(b is None or not b.stereo_kept for b in blocks):
        return tok.decode_batch(x)
    out = []
    for row, b in zip(x.tolist(), blocks):
        text = "".join(tok.vocab.tokens[i] for i in row if i != tok.pad_id)
        if b is not None and b.stereo_kept and text.startswith(b.model_text):
            text = b.stereo_text + text[len(b.model_text) :]
        canon = safe.decode(text)
        out.append(text if canon is None else canon)
    return out


def _check(smiles: str, spec: FragmentSpec | None) -> tuple[str, tuple[int, ...], str]:
    """``(status, matched atoms, canonical SMILES or "")`` of one sampled row."""
    from rdkit import Chem

    from ..chem.properties import mol_from_smiles

    mol = mol_from_smiles(smiles)
    if mol is None:
        return _INVALID, (), ""
    canon = Chem.MolToSmiles(mol)
    if spec is None:
        return STATUS_OK, (), canon
    hit = match_atoms(mol, spec)
    return (STATUS_OK, hit, canon) if hit else (_MISSING, (), canon)


@torch.no_grad()
def generate_molecules(
    model: MaM,
    n: int,
    fragment: str | None = None,
    start: int = 0,
    order="auto",
    temperature: float = 1.0,
    seed: int | None = None,
    template: torch.Tensor | None = None,
    top_p: float = 1.0,
    max_rounds: int = 4,
    grammar: bool | str = "auto",
    bf16: bool | None = None,
    distinct: bool = True,
    typicality: bool = False,
) -> pd.DataFrame:
    """Sample ``n`` molecules, keeping a fragment when given, and return a table.

    Args:
        model: a molecule model (its tokenizer is in the checkpoint).
        n: molecules requested.
        fragment: SMILES with optional attachment points (see :mod:`mam_core.chem.fragments`).
        start: SELFIES/SMILES models only: position of the fragment's first token.
        order: ``auto`` (see :func:`default_order`), ``random``, ``l2r``, ``r2l``,
            ``confidence`` or a permutation of the positions.
        temperature / top_p: sampling sharpness and nucleus truncation.
        seed: makes the whole table reproducible.
        template: explicit ``(D,)`` ids with the mask id where the model writes (no fragment
            check then, since no fragment was named).
        max_rounds: sampling rounds; rows failing after the last round keep their reason.
        grammar: SMILES and fragment-block models: draw only tokens that keep the string a
            completable molecule (:mod:`mam_core.chem.grammar`; it acts where the left
            context is known, so with ``l2r`` at every position).  ``"full"`` (or ``True``)
            also steers aromatic rings, ``"syntax"`` leaves rings that cannot be kekulised to
            the rounds below (drawn again), ``"off"`` (or ``False``) steers nothing, and
            ``"auto"`` takes the model's stored mode (:func:`recommended_constraint`).
        bf16: run the network in bfloat16 (twice as fast on some CPUs and GPUs, slower on
            others); ``None`` does so where it is measured faster
            (:func:`mam_core.core.model.bf16_is_faster`).
        distinct: a row repeating the molecule of an earlier ``ok`` row is drawn again in the
            next round, like a failed one, so the table holds as many different molecules as
            the rounds allow; repeats left after the last round stay ``ok`` with ``duplicate``
            set.  ``attrs["summary"]["first_round"]`` counts what the first draw alone gave.
        typicality: add ``percentile``, how atypical each valid molecule is among the training
            molecules (the share scoring at or below it by the default outlier score, as the
            Likelihood page screens: :func:`~mam_core.workflows.outliers.score_table`); only
            for a model that stores an outlier calibration, missing for rows that are not
            molecules.

    Returns:
        One row per requested molecule: ``SMILES``, ``status`` (``ok`` or why not),
        ``matched_atoms`` (fragment atoms in the molecule), ``log_likelihood`` (one-pass MaM
        marginal of the sampled tokens), ``rounds`` (draws it took), ``duplicate`` (same
        molecule as an earlier ``ok`` row), ``valid`` and the properties.

    Raises:
        FragmentError: the fragment cannot be used with this model (the message says why).
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of molecules, got {n}")
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    from ..chem.properties import compute_properties

    tok = tokenizer_of(model)
    if tok is None:
        raise ValueError("this page needs a molecule model; the selected model has no molecule tokenizer")
    if template is not None and fragment:
        raise ValueError("give a fragment or a template, not both")
    req = plan_design(model, n, fragment, start, seed)
    templates = req.templates
    if template is not None:
        templates = model.check_input(template).expand(n, -1).clone().cpu()
    order = default_order(model) if order == "auto" else order
    constraint = constraint_for(tok, constraint_mode(model, grammar))
    if bf16 is None:
        bf16 = bf16_is_faster(model.device)
    gen = torch.Generator(device=model.device)
    gen.manual_seed(0 if seed is None else int(seed))
    x = torch.empty(n, model.D, dtype=torch.long)
    smiles: list[str] = [""] * n
    status: list[str] = [_INVALID] * n
    hits: list[tuple[int, ...]] = [()] * n
    rounds = [0] * n
    duplicate = [False] * n
    kept: set[str] = set()  # canonical SMILES of the ok rows kept so far
    first_round: dict = {}
    todo = list(range(n))
    for round_no in range(max_rounds):
        if not todo:
            break
        t = None if templates is None else templates[todo]
        rows = model.sample(len(todo), order=order, template=t, temperature=temperature, generator=gen,
                            top_p=top_p, constraint=constraint, bf16=bf16)
        rows = rows.cpu()
        decoded = _decode_rows(tok, rows, [req.blocks[i] for i in todo])
        still = []
        for j, i in enumerate(todo):
            x[i] = rows[j]
            smiles[i] = decoded[j]
            rounds[i] += 1
            status[i], hits[i], canon = _check(decoded[j], req.spec)
            duplicate[i] = status[i] == STATUS_OK and canon in kept
            if status[i] != STATUS_OK or (distinct and duplicate[i]):
                still.append(i)
            else:
                kept.add(canon)
        if round_no == 0:
            first_round = {"valid": sum(status[i] != _INVALID for i in todo),
                           "matched": sum(status[i] == STATUS_OK for i in todo),
                           "unique": len(kept)}
        todo = still
    table = compute_properties(smiles)
    table.insert(1, "status", status)
    table.insert(2, "matched_atoms", [list(h) for h in hits])
    table.insert(3, "log_likelihood", model.log_marginal(x.to(model.device)).double().cpu().numpy())
    table.insert(4, "rounds", rounds)
    table.insert(5, "duplicate", duplicate)
    if typicality:
        _add_typicality(model, table, bf16)
    ok = table["status"] == STATUS_OK
    canon = table.loc[ok, "SMILES"]
    table.attrs["summary"] = {
        "requested": n,
        "valid": int(table["valid"].sum()),
        "matched": int(ok.sum()) if req.spec is not None else None,
        "unique": int(canon.nunique()),
        "first_round": first_round,
    }
    table.attrs["task"] = req.spec.task if req.spec is not None else "de novo"
    table.attrs["notices"] = list(req.notices)
    return table


def _add_typicality(model: MaM, table: pd.DataFrame, bf16: bool) -> None:
    """Insert ``percentile`` after ``log_likelihood`` (see :func:`generate_molecules`)."""
    from .outliers import DEFAULT_SCORE, calibration_of, score_table

    cal = calibration_of(model)
    if cal is None:
        return
    pct = np.full(len(table), np.nan)
    valid = np.flatnonzero(table["valid"].to_numpy(dtype=bool))
    if len(valid):
        scored = score_table(model, table["SMILES"].iloc[valid].tolist(), DEFAULT_SCORE, cal,
                             bf16=bf16)
        pct[valid] = scored["percentile"].to_numpy()
    table.insert(table.columns.get_loc("log_likelihood") + 1, "percentile", pct)
