"""Fréchet ChemNet Distance (`mam eval`'s distribution metric) on known sets of molecules."""

from __future__ import annotations

import pytest

from mam_core.chem.fcd import fcd, reference_from_smiles
from mam_core.chem.moses import load_moses

pytest.importorskip("fcd_torch")


@pytest.fixture(scope="module")
def test_set():
    return load_moses("test", limit=300)


@pytest.fixture(scope="module")
def reference(test_set):
    return reference_from_smiles(test_set, "300 MOSES test molecules")


def test_a_set_is_at_distance_zero_from_its_own_statistics(test_set, reference):
    assert reference.source == "300 MOSES test molecules"
    assert reference.mu.shape == (512,) and reference.sigma.shape == (512, 512)
    assert abs(fcd(test_set, reference)) < 1e-2


def test_training_molecules_are_closer_than_a_homologous_series(test_set, reference):
    train = load_moses("train", limit=300)
    alkanes = ["C" * k for k in range(2, 40)] + ["C" * k + "O" for k in range(2, 40)]
    near, far = fcd(train, reference), fcd(alkanes, reference)
    assert 0.5 < near < 15  # same distribution, finite sample: about 8 at n = 300
    assert far > 5 * near


def test_invalid_smiles_are_dropped_before_scoring(test_set, reference):
    some = test_set[:100]
    assert fcd(some + ["C1CC", "not a molecule"], reference) == pytest.approx(fcd(some, reference))
    assert fcd(["C1CC"], reference) != fcd(["C1CC"], reference)  # NaN: nothing left to score
