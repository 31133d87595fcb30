"""Shared rendering pieces: molecule grids and error display."""

from __future__ import annotations

import streamlit as st
from rdkit import Chem
from rdkit.Chem import Draw


def molecule_grid(smiles: list[str], legends: list[str] | None = None, per_row: int = 4, size: int = 220):
    """Draw molecules with RDKit in a grid image; invalid SMILES show as empty cells."""
    mols = [Chem.MolFromSmiles(s) if s else None for s in smiles]
    img = Draw.MolsToGridImage(
        [m if m is not None else Chem.Mol() for m in mols],
        molsPerRow=per_row,
        subImgSize=(size, size),
        legends=legends or [""] * len(mols),
    )
    st.image(img)
