"""The one SMILES reader (mam_core.chem.smiles_io) and the callers that use it."""

from __future__ import annotations

import gzip

import pytest

from mam_core.chem.smiles_io import SmilesInputError, parse_smiles_text, read_smiles_file
from mam_core.chem.molecules import MoleculeDataError, read_smiles
from mam_core.workflows.scoring import ScoringInputError, parse_smiles_text as scoring_parse


def test_csv_with_quoted_commas_reads_the_smiles_column(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text('id,name,SMILES\n1,"ethanol, absolute",CCO\n2,"benzene, '
                    '""dry""",c1ccccc1\n3,"a, b, c",CC(=O)O\n')
    assert read_smiles_file(path) == ["CCO", "c1ccccc1", "CC(=O)O"]
    assert read_smiles(str(path)) == ["CCO", "c1ccccc1", "CC(=O)O"]


def test_a_one_column_csv_is_a_table_by_its_suffix(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("smiles\nCCO\nCCN\n")
    assert read_smiles_file(path) == ["CCO", "CCN"]


def test_smi_with_names_comments_and_blank_lines(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text("# a comment\nCCO ethanol\n\nc1ccccc1\tbenzene ring\nCC#N  acetonitrile\n")
    assert read_smiles_file(path) == ["CCO", "c1ccccc1", "CC#N"]  # '#' inside a SMILES is a bond


def test_gzip_files_both_csv_and_smi(tmp_path):
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b'x,smiles\n"1,2",CCO\n3,CCN\n'))
    (tmp_path / "b.smi.gz").write_bytes(gzip.compress(b"CCO one\nCCN two\n"))
    assert read_smiles_file(tmp_path / "a.csv.gz") == ["CCO", "CCN"]
    assert read_smiles_file(tmp_path / "b.smi.gz", limit=1) == ["CCO"]


def test_empty_file_missing_file_and_bad_bytes_say_why(tmp_path):
    (tmp_path / "empty.smi").write_text("")
    with pytest.raises(SmilesInputError, match="empty.smi: no molecules given"):
        read_smiles_file(tmp_path / "empty.smi")
    with pytest.raises(SmilesInputError, match="not found"):
        read_smiles_file(tmp_path / "nope.smi")
    (tmp_path / "bin.smi").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SmilesInputError, match="UTF-8"):
        read_smiles_file(tmp_path / "bin.smi")
    (tmp_path / "head.csv").write_text("id,smiles\n")
    with pytest.raises(SmilesInputError, match="header but no rows"):
        read_smiles_file(tmp_path / "head.csv")


def test_missing_smiles_column_names_the_columns_found(tmp_path):
    (tmp_path / "t.csv").write_text("id,structure\n1,CCO\n")
    with pytest.raises(SmilesInputError,
                       match=r"'SMILES' column; its columns are \['id', 'structure'\]"):
        read_smiles_file(tmp_path / "t.csv")


def test_text_is_sniffed_headers_and_empty_cells_kept():
    assert parse_smiles_text("SMILES\nCCO\n") == ["CCO"]  # a header line is not a molecule
    # rows kept for reporting
    assert parse_smiles_text("\ufeffid,Smiles\n1,CCO\n2,\n3,NA\n") == ["CCO", "", "NA"]
    # a longer row is not re-indexed
    assert parse_smiles_text("smiles,b\nCCO,2,3\nCCN,4\n") == ["CCO", "CCN"]
    assert parse_smiles_text("CCO\n\nCCN", keep_blank_lines=True) == ["CCO", "", "CCN"]
    with pytest.raises(SmilesInputError, match="not a readable CSV"):
        parse_smiles_text('a,smiles\n"1,CCO\n')


def test_every_caller_raises_the_same_error_class():
    assert MoleculeDataError is SmilesInputError and ScoringInputError is SmilesInputError
    assert scoring_parse("id,Smiles\n1,CCO\n") == ["CCO"]
    with pytest.raises(ScoringInputError, match="limit of 2"):
        scoring_parse("C\nCC\nCCC", max_rows=2)
