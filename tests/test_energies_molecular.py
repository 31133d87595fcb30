"""Molecular energies: hand-computed values on known molecules, the invalid floor, caching,
tensors."""

from __future__ import annotations

import math

import pytest
import torch

from energies import ENERGIES, MOLECULAR_ENERGIES, get_energy
from energies.molecular import LipophilicityEnergy, SubstructureEnergy, WeightedSumEnergy
from mam_core.chem.tokenizers import SelfiesTokenizer

BENZENE = "c1ccccc1"
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
# Crippen logP, QED, SA and MW of these two molecules (RDKit reference values).
LOGP = {BENZENE: 1.6866, ASPIRIN: 1.3101}
QED_ASPIRIN = 0.5501
SA_ASPIRIN = 1.580
MW_ASPIRIN = 180.159


@pytest.fixture(scope="module")
def tok():
    return SelfiesTokenizer.build([BENZENE, ASPIRIN, "CCO", "CCN(CC)CC", "O=C(O)c1ccncc1"],
                                  max_length=20)


def test_all_molecular_energies_are_registered():
    assert set(MOLECULAR_ENERGIES) <= set(ENERGIES)


def test_lipophilicity_matches_hand_computed_values():
    e = get_energy("lipophilicity", target=-4.0, tau=0.1)
    got = e.score_smiles([BENZENE, ASPIRIN])
    for value, smi in zip(got, (BENZENE, ASPIRIN)):
        assert value == pytest.approx(-((LOGP[smi] + 4.0) ** 2) / 0.1, abs=1e-2)
    # at the target the reward is maximal (0)
    e0 = get_energy("lipophilicity", target=LOGP[BENZENE], tau=1.0)
    assert e0.score_smiles([BENZENE])[0] == pytest.approx(0.0, abs=1e-3)


def test_qed_sa_and_weight_window_on_aspirin():
    qed = get_energy("qed", tau=0.5).score_smiles([ASPIRIN])[0]
    assert qed == pytest.approx(QED_ASPIRIN / 0.5, abs=1e-3)
    sa = get_energy("sa", tau=2.0).score_smiles([ASPIRIN])[0]
    assert sa == pytest.approx(-SA_ASPIRIN / 2.0, abs=1e-2)
    inside = get_energy("mol_weight", low=150, high=200)
    assert inside.score_smiles([ASPIRIN])[0] == 0.0
    below = get_energy("mol_weight", low=200, high=300, scale=10.0, tau=2.0)
    expected = -(((200 - MW_ASPIRIN) / 10.0) ** 2) / 2.0
    assert below.score_smiles([ASPIRIN])[0] == pytest.approx(expected, abs=1e-3)


def test_substructure_presence():
    acid = get_energy("substructure", smarts="C(=O)[OX2H1]", penalty=3.0)
    assert list(acid.score_smiles([ASPIRIN, BENZENE])) == [0.0, -3.0]
    with pytest.raises(ValueError, match="SMARTS"):
        SubstructureEnergy(smarts="C((")


def test_weighted_sum_adds_its_terms():
    terms = [{"name": "qed", "weight": 2.0, "tau": 1.0}, {"name": "sa", "weight": 0.5}]
    e = get_energy("weighted_sum", terms=terms)
    expected = 2.0 * QED_ASPIRIN - 0.5 * SA_ASPIRIN
    assert e.score_smiles([ASPIRIN])[0] == pytest.approx(expected, abs=1e-2)
    assert e.params["terms"][0]["name"] == "qed"
    with pytest.raises(ValueError, match="unknown molecular energy"):
        WeightedSumEnergy(terms=[{"name": "ising"}])
    with pytest.raises(ValueError, match="at least one"):
        WeightedSumEnergy(terms=[])


def test_weighted_sum_with_a_negative_weight_still_ranks_molecules():
    """A negative weight uses the term's ceiling for the floor: valid molecules are not all
    clipped to one value, and invalid ones still score no better than any valid one."""
    e = get_energy("weighted_sum", terms=[{"name": "qed", "weight": -1.0, "tau": 1.0}])
    assert e.floor == pytest.approx(-1.0)
    aspirin, benzene = e.score_smiles([ASPIRIN, BENZENE])
    assert aspirin == pytest.approx(-QED_ASPIRIN, abs=1e-3) and aspirin != benzene
    assert e.score_smiles(["not a molecule"])[0] == e.floor <= min(aspirin, benzene)


@pytest.mark.parametrize("name", MOLECULAR_ENERGIES)
def test_invalid_molecules_get_the_finite_floor(name):
    kw = {"terms": [{"name": "qed"}]} if name == "weighted_sum" else {}
    e = get_energy(name, **kw)
    values = e.score_smiles(["", "not a molecule", "C1CC", None])
    assert all(math.isfinite(v) for v in values)
    assert all(v == e.floor for v in values)
    # a valid molecule never scores below the floor
    assert e.score_smiles([ASPIRIN, BENZENE]).min() >= e.floor


def test_lipophilicity_floor_clips_extreme_molecules():
    e = LipophilicityEnergy(target=-4.0, tau=0.1, floor=-50.0)
    assert e.score_smiles(["CCCCCCCCCCCCCCCCCCCC"])[0] == -50.0  # logP ≈ 8: far below the floor


def test_bad_parameters_are_rejected_clearly():
    with pytest.raises(ValueError, match="tau"):
        LipophilicityEnergy(tau=0.0)
    with pytest.raises(ValueError, match="window is empty"):
        get_energy("mol_weight", low=500, high=100)
    with pytest.raises(ValueError, match="unknown energy"):
        get_energy("lipophilicty")


def test_tensor_interface_decodes_and_caches(tok):
    e = get_energy("lipophilicity", tokenizer=tok, target=-4.0, tau=0.1)
    assert (e.D, e.K) == (tok.D, tok.K)
    x = tok.encode_batch([BENZENE, ASPIRIN, BENZENE])
    out = e(x)
    assert out.dtype == torch.float32 and out.shape == (3,)
    assert torch.allclose(out,
                          torch.tensor(e.score_smiles([BENZENE, ASPIRIN, BENZENE]),
                                       dtype=torch.float32))
    assert e.cache_info().hits == 1  # the second benzene row was not scored again
    empty = torch.full((1, tok.D), tok.pad_id)  # decodes to the empty molecule
    assert e(empty).item() == e.floor
    with pytest.raises(ValueError, match=r"shape \(B, 20\)"):
        e(torch.zeros(2, 7, dtype=torch.long))


def test_energy_without_tokenizer_says_so():
    with pytest.raises(ValueError, match="without a tokenizer"):
        get_energy("qed")(torch.zeros(1, 5, dtype=torch.long))
