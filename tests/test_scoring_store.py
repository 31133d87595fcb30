"""Scoring helpers and the model store: limits, clear errors, safe names, safe imports."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from mam_core import MaM, NetworkConfig
from mam_core.workflows.model_store import (
    ModelStoreError,
    delete_model,
    import_model,
    list_models,
    model_names,
    sanitize_name,
    save_model,
)
from mam_core.workflows.scoring import (
    ScoringInputError,
    agreement,
    decode_upload,
    parse_smiles_text,
    position_distributions,
    score_molecules,
)
from mam_core.chem.tokenizers import SelfiesTokenizer, make_template

from conftest import install_default_molecule_model, perturbed


@pytest.fixture()
def mol_model(tmp_path, monkeypatch):
    tok = SelfiesTokenizer.build(["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CCN"], max_length=24)
    m = perturbed(MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2),
                      tok.vocab), 0.1)
    return install_default_molecule_model(m, tok, tmp_path, monkeypatch)


def test_parse_smiles_text_lines_csv_and_limits():
    assert parse_smiles_text("CCO extra\n# comment\n\nc1ccccc1") == ["CCO", "c1ccccc1"]
    assert parse_smiles_text("id,Smiles\n1,CCO\n2,CCN\n") == ["CCO", "CCN"]
    with pytest.raises(ScoringInputError, match="no molecules"):
        parse_smiles_text(" \n ")
    with pytest.raises(ScoringInputError, match="'SMILES' column"):
        parse_smiles_text("a,b\n1,2")
    with pytest.raises(ScoringInputError, match="limit of 3"):
        parse_smiles_text("C\nCC\nCCC\nCCCC", max_rows=3)


def test_uploads_are_size_limited_and_must_be_text():
    assert decode_upload("a.csv", b"SMILES\nCCO\n") == "SMILES\nCCO\n"
    with pytest.raises(ScoringInputError, match="big.csv is 3.0 MB; the limit is 2 MB"):
        decode_upload("big.csv", b"C" * (3 * 2**20))
    with pytest.raises(ScoringInputError, match="not UTF-8"):
        decode_upload("bin.csv", b"\xff\xfe\x00")


def test_score_molecules_matches_the_model_and_keeps_bad_rows(mol_model):
    res = score_molecules(mol_model, ["CCO", "nope", "c1ccccc1"], with_arm=True, num_orders=2)
    t = res.table
    assert list(t["input"]) == ["CCO", "nope", "c1ccccc1"] and res.n_scored == 2
    assert np.isnan(t.loc[1, "log_p_mam"]) and "RDKit cannot parse" in t.loc[1, "error"]
    from mam_core.chem.molecules import tokenizer_of

    x = tokenizer_of(mol_model).encode_batch(["CCO", "c1ccccc1"])
    expected = mol_model.log_marginal(x).detach().double().numpy()
    assert np.allclose(t["log_p_mam"].to_numpy()[[0, 2]], expected, atol=1e-5)
    assert t["outlier_rank"].isna().tolist() == [False, True, False]
    assert sorted(t["outlier_rank"].dropna().tolist()) == [1, 2]
    stats = agreement(t)
    assert stats["n"] == 2 and np.isnan(stats["spearman"])  # fewer than 3 rows: undefined


def test_position_distributions_are_distributions(mol_model):
    from mam_core.chem.molecules import tokenizer_of

    tok = tokenizer_of(mol_model)
    template = make_template(tok, "CCO", start=2)
    probs, lm = position_distributions(mol_model, template)
    assert probs.shape == (tok.D, tok.K) and np.allclose(probs.sum(1), 1.0)
    observed = (template != tok.mask_id).numpy()
    assert np.allclose(probs[observed].max(1), 1.0)
    assert lm == pytest.approx(float(mol_model.log_marginal(template[None]).detach()[0]), abs=1e-5)


def test_model_store_round_trip_and_refusals(mol_model, tmp_path):
    assert model_names() == ["default"]
    save_model(mol_model, "tuned v1")
    assert model_names() == ["default", "tuned_v1"]
    with pytest.raises(ModelStoreError, match="already exists"):
        save_model(mol_model, "tuned v1")
    infos = {i.name: i for i in list_models()}
    assert infos["tuned_v1"].D == mol_model.D and infos["tuned_v1"].tokenizer == "selfies"
    with pytest.raises(ModelStoreError, match="cannot be deleted"):
        delete_model("default")
    delete_model("tuned_v1")
    assert model_names() == ["default"]
    for bad in ("", "../", "default", "///"):
        with pytest.raises(ModelStoreError):
            sanitize_name(bad)
    assert sanitize_name("../../etc/passwd") == "etc_passwd"


def test_import_model_checks_size_and_safety(mol_model, tmp_path):
    data = (tmp_path / "default.pt").read_bytes()
    path = import_model("../evil name.pt", data)
    assert path.name == "evil_name.pt" and path.parent.name == "store"
    with pytest.raises(ModelStoreError, match="limit"):
        import_model("big.pt", data, max_bytes=100)
    with pytest.raises(ModelStoreError, match="not a MaM Studio checkpoint"):
        import_model("junk.pt", b"\x00" * 1000)
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    buf = io.BytesIO()
    torch.save({"format": "mam-studio/checkpoint", "x": Evil()}, buf)
    with pytest.raises(ModelStoreError, match="refused|cannot be loaded"):
        import_model("evil.pt", buf.getvalue())
    assert sorted(p.name
                  for p in path.parent.iterdir()) == ["evil_name.pt"]  # nothing half-written left


def test_arm_limit_scores_the_first_rows_and_times_them_side_by_side(mol_model):
    smiles = ["CCO", "nope", "c1ccccc1", "CCN", "CC(=O)Oc1ccccc1C(=O)O"]
    full = score_molecules(mol_model, smiles, with_arm=True, num_orders=1)
    res = score_molecules(mol_model, smiles, with_arm=True, num_orders=1, arm_limit=2)
    t = res.table
    assert res.n_scored == 4 and res.n_arm == 2
    # AO-ARM on the first two scored rows (input rows 0 and 2), the same values as unlimited
    assert t["log_p_arm"].notna().tolist() == [True, False, True, False, False]
    assert np.allclose(t["log_p_arm"].to_numpy()[[0, 2]],
                       full.table["log_p_arm"].to_numpy()[[0, 2]], atol=1e-5)
    assert np.allclose(t["log_p_mam"].to_numpy(), full.table["log_p_mam"].to_numpy(),
                       equal_nan=True, atol=1e-6)
    assert res.speedup == pytest.approx(res.seconds_arm / res.seconds_mam_arm_rows)
    three = score_molecules(mol_model, smiles, with_arm=True, num_orders=3, arm_limit=2)
    assert three.num_orders == 3  # the speed-up is over one order's D passes, not all three
    assert three.speedup == pytest.approx(three.seconds_arm / 3 / three.seconds_mam_arm_rows)
    plain = score_molecules(mol_model, smiles, with_arm=False, arm_limit=2)
    assert plain.n_arm == 0 and plain.speedup is None and plain.table["log_p_arm"].isna().all()
