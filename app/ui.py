"""Shared rendering pieces and the small conversions behind them: molecule grids with the
matched fragment highlighted, the molecule editor's SMILES dialect, design summaries, SDF
export, a lattice heat map, a model's training curves and the replay of one generation."""

from __future__ import annotations

import io
import math
import re
from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots
from rdkit import Chem, rdBase
from rdkit.Chem import Draw

from mam_core.chem.properties import mol_from_smiles
from mam_core.workflows.monitor import CURVE_METRICS

__all__ = [
    "molecule_grid",
    "highlight_bonds",
    "fragment_to_editor",
    "fragment_from_editor",
    "summary_line",
    "split_design_table",
    "to_sdf",
    "lattice_figure",
    "training_figure",
    "replay_generation",
    "replay_frame",
]

STATUS_OK = "ok"


# ------------------------------------------------------------------------------ molecule grid
def highlight_bonds(mol: Chem.Mol, atoms: Sequence[int]) -> list[int]:
    """Bonds whose two atoms are both in ``atoms`` (the matched substructure's bonds)."""
    chosen = set(int(a) for a in atoms)
    return [
        b.GetIdx()
        for b in mol.GetBonds()
        if b.GetBeginAtomIdx() in chosen and b.GetEndAtomIdx() in chosen
    ]


def molecule_grid(
    smiles: list[str],
    legends: list[str] | None = None,
    highlight_atoms: Sequence[Sequence[int]] | None = None,
    per_row: int = 4,
    size: int = 220,
):
    """Draw molecules with RDKit in a grid image; invalid SMILES show as empty cells.

    ``highlight_atoms`` gives, per molecule, the atom indices to colour (RDKit atom order of
    that SMILES), e.g. the ``matched_atoms`` a design returned; their bonds are coloured too.
    """
    mols = [mol_from_smiles(s) for s in smiles]
    atoms = bonds = None
    if highlight_atoms is not None:
        atoms = [
            [int(a) for a in hit] if m is not None else [] for m, hit in zip(mols, highlight_atoms)
        ]
        bonds = [highlight_bonds(m, hit) if m is not None else [] for m, hit in zip(mols, atoms)]
    img = Draw.MolsToGridImage(
        [m if m is not None else Chem.Mol() for m in mols],
        molsPerRow=per_row,
        subImgSize=(size, size),
        legends=legends or [""] * len(mols),
        highlightAtomLists=atoms,
        highlightBondLists=bonds,
    )
    st.image(img)


# ------------------------------------------------------------------------------ editor dialect
_BRACKET_DUMMY = re.compile(r"\[(\d*)\*\]")


def fragment_to_editor(text: str) -> str:
    """A fragment SMILES as the molecule editor (Ketcher) reads it.

    Ketcher reads a bare ``*`` as an "any atom" and ``[*:n]`` as the R-group label Rn, but
    leaves the canvas empty for ``[*]`` and ``[n*]``; those are rewritten, the rest is kept.
    """
    return _BRACKET_DUMMY.sub(lambda m: f"[*:{m.group(1)}]" if m.group(1) else "*", text or "")


def fragment_from_editor(text: str) -> str:
    """The editor's SMILES written the way fragments are typed: attachment points ``[*]``/``[n*]``.

    Ketcher writes an "any atom" as ``*``, an R-group label Rn as ``[*:n]`` followed by a
    CXSMILES block (``|$_R1;;;$|``), and aromatic rings with explicit ``:`` bonds. RDKit reads
    all of it; the label number becomes the attachment point's number. Text RDKit cannot read
    is returned unchanged (the fragment check then says what is wrong).
    """
    text = (text or "").strip()
    if not text:
        return ""
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(text)
    if mol is None:
        return text
    for atom in mol.GetAtoms():
        if atom.GetAtomicNum() == 0:
            label = atom.GetAtomMapNum()
            atom.SetAtomMapNum(0)
            atom.SetIsotope(label)
            for prop in ("dummyLabel", "_MolFileRLabel", "molFileAlias", "atomLabel"):
                if atom.HasProp(prop):
                    atom.ClearProp(prop)
    return Chem.MolToSmiles(mol)


# ------------------------------------------------------------------------------ design tables
def summary_line(summary: dict) -> str:
    """``"16 requested · 15 valid · 12 contain the fragment · 11 unique"`` (no fragment count
    for de novo designs)."""
    parts = [f"{summary['requested']} requested", f"{summary['valid']} valid"]
    if summary.get("matched") is not None:
        parts.append(f"{summary['matched']} contain the fragment")
    parts.append(f"{summary['unique']} unique")
    return " · ".join(parts)


def split_design_table(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows that satisfied the design (``status == "ok"``) and those that did not."""
    ok = table["status"] == STATUS_OK
    return table[ok], table[~ok]


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def to_sdf(table: pd.DataFrame, smiles_column: str = "SMILES") -> str:
    """An SD file of the table's valid molecules, every other column stored as an SD property."""
    buf = io.StringIO()
    writer = Chem.SDWriter(buf)
    for _, row in table.iterrows():
        mol = mol_from_smiles(row[smiles_column])
        if mol is None:
            continue
        mol.SetProp("_Name", str(row[smiles_column]))
        for col, value in row.items():
            if col == smiles_column:
                continue
            if isinstance(value, (list, tuple)):  # e.g. the matched fragment atoms
                mol.SetProp(str(col), " ".join(map(str, value)))
            elif not _is_missing(value):
                mol.SetProp(str(col), str(value))
        writer.write(mol)
    writer.close()
    return buf.getvalue()


# ------------------------------------------------------------------------------ lattices
def lattice_figure(
    state, side: int, title: str = "blue = −1, yellow = +1, grey = not yet generated"
) -> go.Figure:
    """Heat map of one lattice state: ``state`` holds ``side * side`` ids (0, 1, or 2 = masked)."""
    values = [int(v) for v in state.reshape(-1).tolist()]
    if len(values) != side * side:
        raise ValueError(
            f"a {side}×{side} lattice has {side * side} sites, the state has {len(values)}"
        )
    grid = [values[r * side : (r + 1) * side] for r in range(side)]
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            zmin=0,
            zmax=2,
            showscale=False,
            colorscale=[[0, "#2b6cb0"], [0.5, "#f6e05e"], [1, "#bbbbbb"]],
        )
    )
    fig.update_layout(title=title, width=420, height=420, yaxis_autorange="reversed")
    return fig


# ------------------------------------------------------------------------------ training curves
_CURVE_AXES = {"nll": "nats per molecule", "samples": "fraction of samples",
               "self_consistency": "nats", "reward": "fine-tuning"}
_CURVE_NAMES = {
    "nll_nats": "training batch", "heldout_nll": "held-out, any order",
    "heldout_nll_l2r": "held-out, left to right", "quality": "drug-like (QED ≥ 0.6, SA ≤ 4)",
    "validity": "valid", "uniqueness": "unique", "sc_abs_err": "self-consistency |error|",
    "reward_mean": "mean reward", "kl_minus_logz": "KL − log Z",
}
_CURVE_COLOURS = {
    "nll_nats": "#a0aec0", "heldout_nll": "#2b6cb0", "heldout_nll_l2r": "#dd6b20",
    "quality": "#2f855a", "validity": "#805ad5", "uniqueness": "#d69e2e",
    "sc_abs_err": "#c53030", "reward_mean": "#2f855a", "kl_minus_logz": "#2b6cb0",
}


def training_figure(curves: pd.DataFrame) -> go.Figure:
    """Every stage of a model's training on one step axis (``training_curves``'s table): a
    panel per kind of measurement that was recorded, a dotted line and the stage's number
    where a stage begins.

    Metrics measured every N steps (held-out NLL, sample quality) are drawn with markers, so a
    curve with a point every 1,000 steps shows; each line breaks between stages."""
    groups = [g for g, ms in CURVE_METRICS.items() if curves["metric"].isin(ms).any()]
    fig = make_subplots(rows=max(len(groups), 1), cols=1, shared_xaxes=True,
                        vertical_spacing=0.06)
    for row, group in enumerate(groups, start=1):
        for metric in CURVE_METRICS[group]:
            part = curves[curves["metric"] == metric]
            if part.empty:
                continue
            x: list = []
            y: list = []
            text: list = []
            for _, stage in part.groupby("stage_no", sort=True):
                x += stage["total_step"].tolist() + [None]
                y += stage["value"].tolist() + [None]
                text += [f"stage {n} ({s}), step {t}" for n, s, t in
                         zip(stage["stage_no"], stage["stage"], stage["step"])] + [None]
            logged = curves[curves["stage_no"].isin(part["stage_no"])]
            sparse = len(part) < len(logged.drop_duplicates(["stage_no", "step"]))
            fig.add_scatter(x=x, y=y, text=text, name=_CURVE_NAMES.get(metric, metric),
                            mode="lines+markers" if sparse else "lines", row=row, col=1,
                            line_color=_CURVE_COLOURS.get(metric),
                            hovertemplate="%{text}: %{y:.4g}<extra>%{fullData.name}</extra>")
        fig.update_yaxes(title_text=_CURVE_AXES[group], row=row, col=1)
        if group == "nll":  # the first steps of a fresh model would flatten everything else
            values = curves.loc[curves["metric"].isin(CURVE_METRICS[group]), "value"]
            low, high = float(values.min()), float(values.quantile(0.95))
            pad = 0.1 * max(high - low, 1.0)
            fig.update_yaxes(range=[low - pad, high + pad], row=row, col=1)
    stages = curves.assign(offset=curves["total_step"] - curves["step"]).drop_duplicates(
        "stage_no")
    for no, stage, offset in zip(stages["stage_no"], stages["stage"], stages["offset"]):
        fig.add_vline(x=int(offset), line_dash="dot", line_color="#999999")
        # stage numbers, staggered so short stages stay readable; the table names them
        fig.add_annotation(x=int(offset), y=1.0 + 0.03 * (no % 2), xref="x", yref="paper",
                           text=str(no), hovertext=f"stage {no}: {stage}", showarrow=False,
                           xanchor="left", yanchor="bottom", font_size=10)
    fig.update_xaxes(title_text="step (all stages)", row=max(len(groups), 1), col=1)
    fig.update_layout(height=220 * max(len(groups), 1) + 60, margin=dict(t=40, b=40),
                      legend=dict(orientation="h", y=-0.12))
    return fig


# ------------------------------------------------------------------------------ replay
def replay_generation(
    model,
    fragment: str | None,
    start: int,
    order,
    seed: int,
    temperature: float,
    top_p: float = 1.0,
    grammar: bool | str = "auto",
) -> list:
    """One molecule sampled with the design's settings, as the list of ``(D,)`` states after
    each filled position (the first is the template)."""
    from mam_core.chem.grammar import constraint_for
    from mam_core.chem.molecules import tokenizer_of
    from mam_core.workflows.generate import constraint_mode, default_order, plan_design

    req = plan_design(model, 1, fragment or None, start, seed)
    _, traj = model.sample(
        1,
        order=default_order(model) if isinstance(order, str) and order == "auto" else order,
        constraint=constraint_for(tokenizer_of(model), constraint_mode(model, grammar)),
        template=req.templates,
        seed=seed,
        temperature=temperature,
        top_p=top_p,
        return_trajectory=True,
    )
    return [t[0].cpu() for t in traj]


def replay_frame(model, tok, ids) -> tuple[str, int, str]:
    """What one replay state shows: its tokens (``·`` where masked), how many positions are
    filled, and the filled tokens read as SMILES (``""`` when none are filled yet)."""
    tokens = ["·" if int(i) == model.mask_id else tok.vocab.tokens[int(i)] for i in ids]
    observed = ids[ids != model.mask_id]
    partial = tok.decode(observed) if len(observed) else ""
    return " ".join(tokens), int(len(observed)), partial
