"""Molecular properties: known values, NaN for bad input, and the score cache."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mam_core.chem import properties
from mam_core.chem.properties import (
    PROPERTIES,
    compute_properties,
    logp,
    mol_from_smiles,
    mol_weight,
    property_of,
    qed,
    sa_score,
)

BENZENE = "c1ccccc1"
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
ETHANOL = "CCO"
CAFFEINE = "Cn1cnc2c1c(=O)n(C)c(=O)n2C"
BAD = ["", "xx", "C1CC", "c1cccc1", "C(C)(C)(C)(C)C", "   "]  # syntax, ring, aromaticity, valence


def test_known_values():
    cases = {  # Crippen logP, QED, SA, MW (Da); values from RDKit and the literature
        BENZENE: (1.6866, 0.443, 1.00, 78.114),
        ASPIRIN: (1.3101, 0.55, 1.58, 180.16),
        ETHANOL: (-0.0014, 0.407, 1.98, 46.069),
        CAFFEINE: (-1.0293, 0.538, 2.30, 194.19),
    }
    for smi, expected in cases.items():
        mol = mol_from_smiles(smi)
        got = (logp(mol), qed(mol), sa_score(mol), mol_weight(mol))
        assert np.allclose(got, expected, atol=1e-2), (smi, got)
        # the cached string API agrees with the Mol API
        assert np.allclose([property_of(smi, n) for n in ("logP", "QED", "SA", "MW")], got)


def test_sa_in_range_and_harder_for_complex_molecules():
    taxol_core = "CC1=C2C(C(=O)C3(C)C(CC4OCC4(OC(C)=O)C3C(OC(=O)c3ccccc3)C(O)(CC1O)C2(C)C)O)O"
    assert 1.0 <= property_of(BENZENE, "SA") < property_of(taxol_core, "SA") <= 10.0


@pytest.mark.parametrize("bad", BAD + [None, 3.0, float("nan")])
def test_bad_input_gives_none_and_nan(bad):
    assert mol_from_smiles(bad) is None
    for name in PROPERTIES:
        assert math.isnan(property_of(bad, name))


def test_unknown_property_name_lists_valid_names():
    with pytest.raises(ValueError, match="QED"):
        property_of(ASPIRIN, "toxicity")
    with pytest.raises(ValueError, match="logP"):
        compute_properties([ASPIRIN], names=("logP", "toxicity"))


def test_compute_properties_table():
    smiles = [ASPIRIN, "xx", BENZENE, "", ETHANOL]
    df = compute_properties(smiles)
    assert list(df.columns) == ["SMILES", "valid", "logP", "QED", "SA", "MW"]
    assert df["SMILES"].tolist() == smiles
    assert df["valid"].dtype == bool
    assert df["valid"].tolist() == [True, False, True, False, True]
    assert df.loc[~df["valid"], ["logP", "QED", "SA", "MW"]].isna().all().all()
    assert df.loc[df["valid"], ["logP", "QED", "SA", "MW"]].notna().all().all()
    assert np.allclose(df["MW"].iloc[[0, 2, 4]], [180.159, 78.114, 46.069], atol=1e-2)
    sub = compute_properties(pd.Series([BENZENE]), names=("MW",))
    assert list(sub.columns) == ["SMILES", "valid", "MW"]
    assert len(compute_properties([])) == 0


def test_cache_scores_each_molecule_once(monkeypatch):
    calls = []

    def counting_parse(smiles):
        calls.append(smiles)
        return mol_from_smiles(smiles)

    monkeypatch.setattr(properties, "mol_from_smiles", counting_parse)
    smi = "OCCCCCCCCCCCCCCCCCCCN"  # used by no other test, so the first call is a miss
    before = property_of.cache_info()
    first = property_of(smi, "QED")
    second = property_of(smi, "QED")
    after = property_of.cache_info()
    assert first == second and not math.isnan(first)
    assert len(calls) == 1
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)


def test_registry_labels():
    assert set(PROPERTIES) == {"logP", "QED", "SA", "MW", "rings"}
    assert PROPERTIES["SA"].label == "SA score (1 easy – 10 hard)"
    assert PROPERTIES["SA"].better == "lower" and PROPERTIES["QED"].better == "higher"
    for name, spec in PROPERTIES.items():
        assert spec.name == name and spec.label and spec.description and callable(spec.fn)


def test_missing_sa_contrib_raises_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(properties, "_SASCORER", None)
    monkeypatch.setattr(properties.RDConfig, "RDContribDir", str(tmp_path))
    with pytest.raises(RuntimeError, match="SA_Score"):
        sa_score(mol_from_smiles(ASPIRIN))
    with pytest.raises(RuntimeError, match="SA_Score"):  # not swallowed into NaN
        property_of("CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCO", "SA")
