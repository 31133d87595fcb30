"""Outlier scores on the shipped default model: size does not decide the ranking, every row is
kept, and the calibration makes training molecules' percentiles uniform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rdkit import Chem

from mam_core.core import checkpoint as ckpt
from mam_core.paths import default_model_path
from mam_core.chem.moses import load_moses
from mam_core.workflows.outliers import SCORES, calibrate, calibration_of, score_table


@pytest.fixture(scope="module")
def calibrated():
    model = ckpt.load(default_model_path(), "cpu")
    train = load_moses("train")
    cal = calibrate(model, train[-3000:], "test calibration")
    return model, cal, train


def _largest_ring_system(smiles: str) -> str | None:
    """The molecule's largest ring with its atoms only (a smaller piece of the same molecule)."""
    mol = Chem.MolFromSmiles(smiles)
    rings = sorted(mol.GetRingInfo().AtomRings(), key=len, reverse=True)
    if not rings:
        return None
    piece = Chem.MolFragmentToSmiles(mol, atomsToUse=list(rings[0]))
    return piece if Chem.MolFromSmiles(piece) is not None else None


def test_a_piece_is_not_more_typical_than_its_molecule_just_for_being_small(calibrated):
    model, cal, _ = calibrated
    whole, pieces = [], []
    for s in load_moses("test", limit=80):
        p = _largest_ring_system(s)
        if p is not None:
            whole.append(s)
            pieces.append(p)
    raw_w, raw_p = (score_table(model, x, "raw", cal)["outlier_score"].to_numpy()
                    for x in (whole, pieces))
    lr_w, lr_p = (score_table(model, x, "likelihood_ratio", cal)["outlier_score"].to_numpy()
                  for x in (whole, pieces))
    ok = np.isfinite(raw_w) & np.isfinite(raw_p)
    assert ok.sum() >= 40
    # raw NLL calls most lone rings more typical than the drug-like molecule they came from
    assert (raw_p[ok] < raw_w[ok]).mean() > 0.6
    # the likelihood ratio does not: most lone rings are the more atypical of the pair
    assert (lr_p[ok] > lr_w[ok]).mean() > 0.6


def _with_group(smiles: str, group: str) -> str | None:
    """The molecule with ``group`` (SMILES with one ``*``) on its first aromatic CH."""
    mol = Chem.MolFromSmiles(smiles)
    hit = mol.GetSubstructMatch(Chem.MolFromSmarts("[cH]"))
    if not hit:
        return None
    rw = Chem.RWMol(Chem.CombineMols(mol, Chem.MolFromSmiles(group)))
    star = next(a for a in rw.GetAtoms() if a.GetAtomicNum() == 0)
    rw.AddBond(hit[0], star.GetNeighbors()[0].GetIdx(), Chem.BondType.SINGLE)
    rw.RemoveAtom(star.GetIdx())
    Chem.SanitizeMol(rw)
    return Chem.MolToSmiles(rw)


def test_one_odd_group_makes_a_molecule_more_atypical_and_worst_fragment_names_it(calibrated):
    """Groups filtered out of MOSES, put on test molecules.  A few cheap extra tokens can lower
    the per-token NLL: a marginal that shrinks every molecule's log p towards the average
    (slope 0.43 on the AO-ARM's, the default model before chain distillation) called the changed
    molecule *more* typical in 70 % of cases.  The worst block's surprise does not average the
    group away, and names it."""
    model, cal, _ = calibrated
    base, odd, core = [], [], []
    for group in ("*C(=S)S", "*N=NC", "*C(Br)(Br)Br"):
        for s in load_moses("test", limit=150):
            o = _with_group(s, group)
            if o is not None:
                base.append(s), odd.append(o), core.append(group[1:3])
    up = {}
    for name in ("per_token", "worst_fragment"):
        a, b = (score_table(model, x, name, cal) for x in (base, odd))
        assert (a["error"] == "").all() and (b["error"] == "").all()
        up[name] = float((b["percentile"] > a["percentile"]).mean())
        if name == "worst_fragment":
            named = [c in f for c, f in zip(core, b["atypical_fragment"])]
            # a block picked at random would hold the group in about 1 of 6 molecules
            assert np.mean(named) > 0.4
    # shipped model, 432 molecules, scoring the molecule (log p + log of its block orders):
    # per token 0.92, worst fragment 0.86 (one string: 0.84 and 0.86; chains of 16 steps: 0.67
    # and 0.68; one step at a time: 0.30 and 0.50)
    assert up["per_token"] > 0.75 and up["worst_fragment"] > 0.75, up


def test_worst_fragment_needs_fragment_blocks_and_its_calibration(calibrated):
    model, cal, _ = calibrated
    stale = calibrate(model, load_moses("train")[:300], "no fragment statistics", store=False,
                      n_fragment=0)
    with pytest.raises(ValueError, match="calibration made with it"):
        score_table(model, ["CCO"], "worst_fragment", stale)


def test_every_row_is_kept_in_order_with_its_reason(calibrated):
    model, cal, _ = calibrated
    rows = ["CCOC(=O)c1ccccc1", "not a molecule", "C[Si](C)(C)C", "", "CC" * 60, "c1ccccc1O"]
    for score in SCORES:
        t = score_table(model, rows, score, cal)
        assert t["smiles"].tolist() == rows
        bad = t["error"] != ""
        assert bad.tolist() == [False, True, True, True, True, False]
        assert np.isinf(t.loc[bad, "outlier_score"]).all()
        assert (t.loc[bad, "percentile"] == 100).all()
        assert np.isfinite(t.loc[~bad, "outlier_score"]).all()
        assert t["outlier_score"].rank(ascending=False).loc[bad].max() <= bad.sum()  # ranked first
    errors = score_table(model, rows, "raw", cal)["error"].tolist()
    assert "[Si]" in errors[2] and "longer than" in errors[4]


@pytest.mark.slow
def test_training_percentiles_are_close_to_uniform(calibrated):
    model, cal, train = calibrated
    fresh = train[:2000]  # not in the calibration set
    for score in ("per_token", "likelihood_ratio", "length_z"):
        pct = score_table(model, fresh, score, cal)["percentile"].dropna().to_numpy()
        deciles = np.histogram(pct, bins=10, range=(0, 100))[0] / len(pct)
        assert np.abs(deciles - 0.1).max() < 0.035, (score, deciles)


def test_calibration_is_stored_with_the_model_and_survives_a_checkpoint(calibrated, tmp_path):
    model, cal, _ = calibrated
    ckpt.save(model, tmp_path / "m.pt")
    again = calibration_of(ckpt.load(tmp_path / "m.pt", "cpu"))
    assert again is not None and again.train_scores.keys() == cal.train_scores.keys()
    a = score_table(model, ["CCOC(=O)c1ccccc1"], "likelihood_ratio", cal)["percentile"][0]
    b = score_table(model, ["CCOC(=O)c1ccccc1"], "likelihood_ratio", again)["percentile"][0]
    assert a == b


def test_scores_needing_a_calibration_say_so():
    model = ckpt.load(default_model_path(), "cpu")
    model.metadata.pop("outlier_calibration", None)
    with pytest.raises(ValueError, match="calibrated model"):
        score_table(model, ["CCO"], "likelihood_ratio")
    with pytest.raises(ValueError, match="unknown outlier score"):
        score_table(model, ["CCO"], "bogus")
    assert np.isfinite(score_table(model, ["CCO"], "per_token")["outlier_score"][0])


def test_partial_molecules_are_scored_in_one_pass_and_keep_their_rows(calibrated):
    from mam_core.workflows.outliers import partial_table

    model, cal, _ = calibrated
    frags = ["c1ccccc1", "[*]c1ccc(F)cc1", "[Si]", "not a fragment"]
    t = partial_table(model, frags, cal)
    assert t["fragment"].tolist() == frags
    assert (t["error"][:2] == "").all() and (t["error"][2:] != "").all()
    assert np.isinf(t["outlier_score"][2:]).all() and (t["percentile"][2:] == 100).all()
    assert (t["n_observed"][:2] > 0).all() and np.isfinite(t["log_marginal_mam"][:2]).all()
    # the one-pass marginal of the placed fragment is what the model says (at the precision
    # screening uses on this machine; bfloat16 results move by ~1e-3 with the batch)
    from mam_core.core.model import bf16_is_faster
    from mam_core.workflows.generate import plan_design

    x = plan_design(model, 1, "c1ccccc1").templates
    with torch.no_grad():
        said = model.log_marginal(x, bf16=bf16_is_faster(model.device))[0]
    assert abs(float(said) - t["log_marginal_mam"][0]) < 1e-2
