"""Helpers behind the pages: typed orders, SDF export, the editor's SMILES, design summaries,
highlighted grids, lattice pictures and the live view's refresh."""

from __future__ import annotations

import pandas as pd
import pytest
from rdkit import Chem

from app.ui import to_sdf
from mam_core.core.orders import parse_order


def test_parse_order_puts_listed_positions_first():
    assert parse_order("3, 1", 5).tolist() == [3, 1, 0, 2, 4]
    assert parse_order("", 3).tolist() == [0, 1, 2]
    for bad, msg in (("1 x", "not a position"), ("7", "outside"), ("1 1", "twice")):
        with pytest.raises(ValueError, match=msg):
            parse_order(bad, 5)


def test_to_sdf_keeps_valid_molecules_and_their_properties():
    table = pd.DataFrame(
        {"SMILES": ["CCO", "not-a-molecule", "c1ccccc1"], "logP": [-0.0014, float("nan"), 1.6866]}
    )
    sdf = to_sdf(table)
    supplier = Chem.SDMolSupplier()
    supplier.SetData(sdf)
    mols = [m for m in supplier]
    assert [Chem.MolToSmiles(m) for m in mols] == ["CCO", "c1ccccc1"]
    assert float(mols[1].GetProp("logP")) == pytest.approx(1.6866)


def test_to_sdf_writes_list_columns_such_as_the_matched_atoms():
    table = pd.DataFrame({"SMILES": ["CCO", "c1ccccc1"], "matched_atoms": [[0, 1], []],
                          "status": ["ok", "ok"]})
    supplier = Chem.SDMolSupplier()
    supplier.SetData(to_sdf(table))
    mols = [m for m in supplier]
    assert mols[0].GetProp("matched_atoms") == "0 1" and mols[1].GetProp("status") == "ok"
def test_to_sdf_writes_list_columns_as_text():
    table = pd.DataFrame(
        {"SMILES": ["Oc1ccccc1"], "matched_atoms": [[1, 2, 3, 4, 5, 6]], "status": ["ok"]}
    )
    supplier = Chem.SDMolSupplier()
    supplier.SetData(to_sdf(table))
    mol = next(iter(supplier))
    assert mol.GetProp("matched_atoms") == "1 2 3 4 5 6" and mol.GetProp("status") == "ok"


@pytest.mark.parametrize(
    "typed, editor",
    [
        ("[*]c1ccccc1", "*c1ccccc1"),
        ("[1*]c1ccc([2*])nc1", "[*:1]c1ccc([*:2])nc1"),
        ("c1ccccc1", "c1ccccc1"),
        ("", ""),
    ],
)
def test_fragments_go_to_the_editor_in_a_form_it_reads(typed, editor):
    from app.ui import fragment_to_editor

    assert fragment_to_editor(typed) == editor


@pytest.mark.parametrize(
    "editor, typed",
    [
        ("*C1:C:C:C:C:C:1", "*c1ccccc1"),  # a drawn "any atom" on an aromatic ring
        ("[*:1]c1ccccc1 |$_R1;;;;;;$|", "[1*]c1ccccc1"),  # an R-group label R1
        ("[*:1]c1ccc([*:2])nc1 |$_R1;;;;;_R2;;$|", "[1*]c1ccc([2*])nc1"),
        ("C1CC", "C1CC"),  # not readable: kept for the fragment check to explain
        ("", ""),
    ],
)
def test_editor_smiles_become_fragments_with_attachment_points(editor, typed):
    from app.ui import fragment_from_editor
    from mam_core.chem.fragments import parse_fragment

    out = fragment_from_editor(editor)
    if typed and Chem.MolFromSmiles(typed) is not None:
        assert Chem.CanonSmiles(out) == Chem.CanonSmiles(typed)
        assert parse_fragment(out).n_attachments == typed.count("*")
    else:
        assert out == typed


def test_summary_line_and_split_of_a_design_table():
    from app.ui import split_design_table, summary_line

    assert summary_line({"requested": 16, "valid": 15, "matched": 12, "unique": 11}) == (
        "16 requested · 15 valid · 12 contain the fragment · 11 unique"
    )
    assert summary_line({"requested": 4, "valid": 4, "matched": None, "unique": 3}) == (
        "4 requested · 4 valid · 3 unique"
    )
    table = pd.DataFrame(
        {"SMILES": ["CCO", "C1CC", "CC"], "status": ["ok", "invalid molecule", "ok"]}
    )
    ok, failed = split_design_table(table)
    assert ok["SMILES"].tolist() == ["CCO", "CC"] and failed["SMILES"].tolist() == ["C1CC"]


def test_highlight_bonds_are_the_bonds_inside_the_match():
    from app.ui import highlight_bonds

    mol = Chem.MolFromSmiles("Oc1ccccc1")  # O0, ring atoms 1..6
    bonds = highlight_bonds(mol, [1, 2, 3, 4, 5, 6])
    assert len(bonds) == 6  # the ring's six bonds, not the C–O bond
    assert mol.GetBondBetweenAtoms(0, 1).GetIdx() not in bonds


def test_lattice_figure_uses_the_given_side():
    import torch

    from app.ui import lattice_figure

    fig = lattice_figure(torch.tensor([0, 1, 2, 1, 0, 1, 2, 1, 0]), 3)
    assert len(fig.data[0].z) == 3
    with pytest.raises(ValueError, match="3×3 lattice has 9 sites"):
        lattice_figure(torch.zeros(16, dtype=torch.long), 3)


def test_live_view_refreshes_only_while_a_job_runs():
    import threading

    from app.jobs import Job, refresh_interval

    assert refresh_interval(None) is None
    release = threading.Event()
    job = Job(lambda on_log, stop_file: release.wait(10), total_steps=1)
    assert refresh_interval(job) == 1.0
    release.set()
    job.wait(10)
    assert refresh_interval(job) is None
