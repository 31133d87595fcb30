"""One validity/canonical helper; the older names are the same functions."""

from __future__ import annotations

from mam_core.chem import metrics, properties, tokenizers
from mam_core.chem.rdkit_utils import canonical, is_valid, mol_from_smiles


def test_canonical_and_validity_agree_on_edge_cases():
    assert canonical("OCC") == canonical(" CCO\n") == "CCO"
    assert canonical("C1=CC=CC=C1") == "c1ccccc1"
    for bad in ("", "   ", "C1CC(", "xx", None, 3, ["CCO"]):
        assert canonical(bad) is None and not is_valid(bad) and mol_from_smiles(bad) is None
    assert is_valid("CCO") and mol_from_smiles("CCO").GetNumAtoms() == 3


def test_old_names_are_thin_aliases_of_one_implementation():
    assert tokenizers.canonicalize_smiles is canonical and tokenizers.is_valid_smiles is is_valid
    assert properties.mol_from_smiles is mol_from_smiles and properties.is_valid is is_valid
    assert metrics.canonical is canonical
