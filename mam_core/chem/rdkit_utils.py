"""The one place that decides whether a SMILES string is a molecule, and what its canonical
form is.

Tokenizers, property tables, sample metrics and energies all ask the same two questions; they
must agree on the edge cases, so the answers live here once:

* a non-string, an empty or blank string, a string RDKit cannot parse or sanitise, and a
  molecule with no atoms are all **invalid** (``None`` / ``False``), never an exception;
* surrounding white space is ignored (``" CCO\\n"`` is ethanol);
* RDKit's error chatter is silenced only for the duration of a call (:func:`quiet_rdkit`),
  never globally, so a user's own logging settings survive.

Nothing here needs torch.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from rdkit import Chem, RDLogger, rdBase

__all__ = ["quiet_rdkit", "mol_from_smiles", "canonical", "is_valid"]


@contextlib.contextmanager
def quiet_rdkit() -> Iterator[None]:
    """Silence RDKit's C++ log for the duration of the block and restore the previous state.

    ``rdBase.BlockLogs`` restores exactly what was enabled before (so logs a user had switched
    off stay off); very old RDKit builds lack it and fall back to ``RDLogger``.
    """
    if hasattr(rdBase, "BlockLogs"):
        blocker = rdBase.BlockLogs()
        try:
            yield
        finally:
            del blocker
    else:  # pragma: no cover - RDKit < 2022.03
        RDLogger.DisableLog("rdApp.*")
        try:
            yield
        finally:
            RDLogger.EnableLog("rdApp.error")


def mol_from_smiles(smiles: str) -> Chem.Mol | None:
    """Parse and sanitise a SMILES string with RDKit, quietly.

    Args:
        smiles: A SMILES string; surrounding white space is ignored.

    Returns:
        The sanitised molecule, or ``None`` if ``smiles`` is not a string, is blank, cannot be
        parsed or sanitised, or describes a molecule with no atoms.
    """
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def canonical(smiles: str) -> str | None:
    """RDKit canonical (isomeric) SMILES, or ``None`` if ``smiles`` is not a valid molecule.

    Two spellings of one molecule (``"CCO"``, ``"OCC"``) give the same string, so molecules can
    be compared, counted and looked up by string.
    """
    mol = mol_from_smiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def is_valid(smiles: str) -> bool:
    """Whether ``smiles`` is a molecule by :func:`mol_from_smiles`'s rules.

    Strings are cached (200k) because energies check validity on every training step and
    sampling revisits the same molecules.
    """
    return isinstance(smiles, str) and _is_valid_string(smiles)


@functools.lru_cache(maxsize=200_000)
def _is_valid_string(smiles: str) -> bool:
    return mol_from_smiles(smiles) is not None
