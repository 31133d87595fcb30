"""Shared rendering pieces: molecule grids (with a highlighted fixed part) and SDF export."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st
from rdkit import Chem
from rdkit.Chem import Draw

from energies.properties import mol_from_smiles


def molecule_grid(
    smiles: list[str],
    legends: list[str] | None = None,
    highlight: str | None = None,
    per_row: int = 4,
    size: int = 220,
):
    """Draw molecules with RDKit in a grid image; invalid SMILES show as empty cells.

    ``highlight`` (SMILES or SMARTS of the fixed fragment) colours its atoms where it matches.
    """
    mols = [mol_from_smiles(s) for s in smiles]
    pattern = (mol_from_smiles(highlight) or Chem.MolFromSmarts(highlight)) if highlight else None
    atoms = [list(m.GetSubstructMatch(pattern)) if m is not None and pattern is not None else [] for m in mols]
    img = Draw.MolsToGridImage(
        [m if m is not None else Chem.Mol() for m in mols],
        molsPerRow=per_row,
        subImgSize=(size, size),
        legends=legends or [""] * len(mols),
        highlightAtomLists=atoms if pattern is not None else None,
    )
    st.image(img)


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
            elif pd.notna(value):
                mol.SetProp(str(col), str(value))
        writer.write(mol)
    writer.close()
    return buf.getvalue()
