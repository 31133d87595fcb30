"""Helpers behind the Design page: typed orders, SDF export, highlighted grids."""

from __future__ import annotations

import pandas as pd
import pytest
from rdkit import Chem

from app.ui import to_sdf
from mam_core.orders import parse_order


def test_parse_order_puts_listed_positions_first():
    assert parse_order("3, 1", 5).tolist() == [3, 1, 0, 2, 4]
    assert parse_order("", 3).tolist() == [0, 1, 2]
    for bad, msg in (("1 x", "not a position"), ("7", "outside"), ("1 1", "twice")):
        with pytest.raises(ValueError, match=msg):
            parse_order(bad, 5)


def test_to_sdf_keeps_valid_molecules_and_their_properties():
    table = pd.DataFrame({"SMILES": ["CCO", "not-a-molecule", "c1ccccc1"], "logP": [-0.0014, float("nan"), 1.6866]})
    sdf = to_sdf(table)
    supplier = Chem.SDMolSupplier()
    supplier.SetData(sdf)
    mols = [m for m in supplier]
    assert [Chem.MolToSmiles(m) for m in mols] == ["CCO", "c1ccccc1"]
    assert float(mols[1].GetProp("logP")) == pytest.approx(1.6866)


def test_to_sdf_writes_list_columns_such_as_the_matched_atoms():
    table = pd.DataFrame({"SMILES": ["CCO", "c1ccccc1"], "matched_atoms": [[0, 1], []], "status": ["ok", "ok"]})
    supplier = Chem.SDMolSupplier()
    supplier.SetData(to_sdf(table))
    mols = [m for m in supplier]
    assert mols[0].GetProp("matched_atoms") == "0 1" and mols[1].GetProp("status") == "ok"
