"""Sample-quality metrics on hand-made lists with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mam_core.chem.metrics import (
    canonical,
    canonical_set,
    internal_diversity,
    novelty,
    property_distance,
    sample_quality,
    uniqueness,
    validity,
)

SAMPLES = ["CCO", "OCC", "c1ccccc1", "xx"]  # CCO and OCC are one molecule (ethanol)
DIFFERENT = [
    "CCO", "c1ccc2ccccc2c1", "FC(F)(F)Cl", "NC(=O)CCC(=O)O", "C1CCC2(CC1)CCCC2", "O=S(=O)(O)O"
]


def test_canonical():
    assert canonical("OCC") == canonical("CCO") == "CCO"
    assert canonical("C1=CC=CC=C1") == "c1ccccc1"
    assert canonical("xx") is None and canonical("") is None and canonical(None) is None
    assert canonical_set(SAMPLES) == {"CCO", "c1ccccc1"}


def test_validity():
    assert validity(SAMPLES) == 0.75
    assert validity(["", "CCO"]) == 0.5
    assert validity(["xx", ""]) == 0.0
    assert math.isnan(validity([]))


def test_uniqueness():
    assert np.isclose(uniqueness(SAMPLES), 2 / 3)
    assert uniqueness(["CCO", "c1ccccc1"]) == 1.0
    assert math.isnan(uniqueness(["xx", ""]))


def test_novelty_list_and_precomputed_set_agree():
    train = ["OCC", "CCN"]
    assert novelty(SAMPLES, train) == 0.5  # {CCO, benzene}: only benzene is new
    assert novelty(SAMPLES, canonical_set(train)) == 0.5
    assert novelty(SAMPLES, []) == 1.0
    assert novelty(SAMPLES, ["C1=CC=CC=C1", "CCO"]) == 0.0
    assert math.isnan(novelty(["xx"], train))


def test_internal_diversity():
    assert np.isclose(internal_diversity(["CCO", "OCC", "CCO"]), 0.0)
    div = internal_diversity(DIFFERENT)
    assert 0.5 < div <= 1.0
    assert math.isnan(internal_diversity(["CCO", "xx"]))  # one valid molecule: no pairs
    # subsampling is seeded, and the full set is used when it fits
    assert internal_diversity(DIFFERENT, max_molecules=3, seed=1) == internal_diversity(
        DIFFERENT, max_molecules=3, seed=1
    )
    assert internal_diversity(DIFFERENT, max_molecules=len(DIFFERENT), seed=5) == div


def test_sample_quality():
    q = sample_quality(SAMPLES)
    assert set(q) == {"n", "validity", "uniqueness", "novelty", "internal_diversity"}
    assert q["n"] == 4 and q["validity"] == 0.75 and math.isnan(q["novelty"])
    assert 0.0 < q["internal_diversity"] < 1.0
    assert sample_quality(SAMPLES, canonical_set(["CCO"]))["novelty"] == 0.5


def test_property_distance():
    a = [1.0, 2.0, 3.0, float("nan")]
    assert property_distance(a, a) == 0.0
    assert np.isclose(property_distance([0.0, 1.0], [1.0, 2.0]), 1.0)
    assert np.isclose(property_distance(pd.Series(a), np.array([2.0, 3.0, 4.0])), 1.0)
    assert math.isnan(property_distance([float("nan")], [1.0]))
