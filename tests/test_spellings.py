"""A molecule written several ways: its fragment blocks in every order, and the probability of
the molecule as the sum over them (against brute-force enumeration)."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

from mam_core import MaM, NetworkConfig
from mam_core.chem import safe
from mam_core.chem.molecules import attach_tokenizer
from mam_core.chem.moses import load_moses
from mam_core.chem.tokenizers import SmilesTokenizer
from mam_core.chem.training_data import fragment_block_dataset
from mam_core.core.likelihood import log_sum_over_spellings
from mam_core.workflows.evaluation import molecule_likelihoods
from mam_core.workflows.scoring import score_molecules


def all_orders(text: str) -> set[str]:
    blocks = text.split(".")
    return {safe.renumber_labels(".".join(p)) for p in itertools.permutations(blocks)}


@pytest.fixture(scope="module")
def moses_200():
    return load_moses("train", limit=200)


# ------------------------------------------------------------------------------ block orders
def test_block_orders_count_the_distinct_strings_of_every_order(moses_200):
    n_blocks = Counter()
    for smi in moses_200:
        text = safe.encode(smi)
        if text.count(".") > 5:  # up to 6 blocks: 720 orders to enumerate
            continue
        truth = all_orders(text)
        orders = safe.block_orders(text, 1000)
        assert orders.count == len(truth) and orders.complete
        assert set(orders.strings) == truth
        n_blocks[text.count(".") + 1] += 1
        # fewer asked for: distinct strings of the same molecule
        few = safe.block_orders(text, 3, random.Random(1))
        assert len(few.strings) == min(3, len(truth)) == len(set(few.strings))
        assert set(few.strings) <= truth
    assert n_blocks[1] and n_blocks[5] and n_blocks[6]  # the loop saw every kind


@pytest.mark.parametrize("smiles, count", [
    ("c1ccc(-c2ccccc2)cc1", 1),  # two phenyl blocks bonded to each other: one string, not 2!
    ("COc1cc(OC)cc(OC)c1", 24),  # three methoxy blocks on distinct ring slots: all 4! differ
    ("c1ccc(-c2ccccc2)cc1C(=O)NC", 24),
])
def test_blocks_that_look_alike_are_counted_by_the_strings_they_give(smiles, count):
    text = safe.encode(smiles)
    truth = all_orders(text)
    assert len(truth) == count
    assert safe.block_orders(text, 10_000).count == count
    for s in truth:  # every order writes the same molecule
        assert safe.decode(s) == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))


def test_block_orders_are_drawn_uniformly():
    text = safe.encode("CC(=O)Nc1ccc(OCC(=O)N2CCCC2)cc1")
    truth = sorted(all_orders(text))
    assert len(truth) > 6
    rng = random.Random(0)
    seen = Counter(safe.block_orders(text, 1, rng).strings[0] for _ in range(200 * len(truth)))
    assert set(seen) == set(truth)
    assert all(abs(c - 200) < 60 for c in seen.values())  # ±4 standard deviations


def test_block_orders_refuse_k_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        safe.block_orders("CC%10.C%10", 0)


# ------------------------------------------------------------------------------ the sum
def test_log_sum_over_spellings_is_exact_with_every_spelling_and_unbiased_with_some():
    values = torch.tensor([-3.0, -1.0, -2.5, -4.0], dtype=torch.float64)
    truth = torch.logsumexp(values, 0)
    everything = log_sum_over_spellings(values, torch.zeros(4, dtype=torch.long),
                                        torch.tensor([4]))
    assert float(everything[0]) == pytest.approx(float(truth))
    # every pair, as a uniform draw without replacement would give: the sum on average
    pairs = list(itertools.combinations(range(4), 2))
    one_group = torch.zeros(2, dtype=torch.long)
    four = torch.tensor([4])
    estimates = torch.stack([log_sum_over_spellings(values[list(p)], one_group, four)[0]
                             for p in pairs])
    assert float(estimates.exp().mean()) == pytest.approx(float(truth.exp()))
    # a pair scored twice each counts as the pair
    twice = log_sum_over_spellings(values[[0, 0, 1, 1]], torch.zeros(4, dtype=torch.long),
                                   torch.tensor([4]))
    once = log_sum_over_spellings(values[:2], torch.zeros(2, dtype=torch.long), torch.tensor([4]))
    assert float(twice[0]) == pytest.approx(float(once[0]))
    # the mean of the logs: the lower bound
    bound = log_sum_over_spellings(values, torch.zeros(4, dtype=torch.long), torch.tensor([4]),
                                   reduce="mean")
    assert float(bound[0]) == pytest.approx(math.log(4) + float(values.mean()))
    assert float(bound[0]) < float(truth)


def test_log_sum_over_spellings_keeps_groups_apart_and_refuses_an_empty_group():
    log_p = torch.tensor([-1.0, -2.0, -5.0])
    out = log_sum_over_spellings(log_p, torch.tensor([1, 0, 1]), torch.tensor([1, 2]))
    both = float(torch.logsumexp(torch.tensor([-1.0, -5.0]), 0))
    assert out.tolist() == pytest.approx([-2.0, both])
    with pytest.raises(ValueError, match="at least one scored row"):
        log_sum_over_spellings(log_p, torch.tensor([0, 0, 0]), torch.tensor([3, 1]))


# ------------------------------------------------------------------------------ molecules
@pytest.fixture(scope="module")
def safe_model(moses_200):
    tok, _ = fragment_block_dataset(moses_200, copies=1, seed=0, max_length=64)
    torch.manual_seed(0)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    return model.eval(), tok


def test_encode_spellings_groups_each_molecule_with_its_count(safe_model, moses_200):
    _, tok = safe_model
    smiles = moses_200[:20] + ["not a molecule"]
    batch = tok.encode_spellings(smiles, 8, seed=3)
    assert batch.kept == list(range(20)) and batch.errors[0][0] == 20
    for g, smi in enumerate(smiles[:20]):
        rows = batch.ids[batch.group == g]
        texts = {"".join(t for t in tok.vocab.decode(r.tolist()) if t != tok.pad_token)
                 for r in rows}
        truth = all_orders(safe.encode(smi))
        assert int(batch.count[g]) == len(truth) and texts <= truth
        assert len(texts) == len(rows) == min(8, len(truth))
    again = tok.encode_spellings(smiles, 8, seed=3)
    assert torch.equal(again.ids, batch.ids)  # reproducible


def test_a_canonical_smiles_model_writes_each_molecule_one_way(moses_200):
    tok, _ = SmilesTokenizer.fit_encode(moses_200[:50], max_length=80)
    batch = tok.encode_spellings(moses_200[:50], 8)
    assert batch.count.tolist() == [1] * len(batch.kept)
    assert torch.equal(batch.ids, tok.encode_batch([moses_200[i] for i in batch.kept]))


def test_the_marginal_sums_a_molecule_over_all_its_block_orders(safe_model, moses_200):
    model, tok = safe_model
    smiles = [s for s in moses_200 if safe.encode(s).count(".") <= 3][:6]  # up to 24 orders
    agreement, kept, counts = molecule_likelihoods(model, smiles, spellings=100, with_arm=False)
    assert kept == list(range(6))
    for i, smi in enumerate(smiles):
        texts = sorted(all_orders(safe.encode(smi)))
        ids = torch.tensor([tok._tokens_to_ids(smi, tok.regex_tokens(t)) for t in texts])
        with torch.no_grad():
            truth = torch.logsumexp(model.log_marginal(ids).double(), 0)
        assert counts[i] == len(texts)
        assert agreement.mam[i] == pytest.approx(float(truth), abs=1e-4)


def test_a_uniform_model_gives_a_molecule_its_count_of_spellings_both_ways(moses_200, safe_model):
    _, tok = safe_model
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    torch.nn.init.zeros_(model.net.conditional_head.weight)  # uniform conditionals; the
    torch.nn.init.zeros_(model.net.conditional_head.bias)  # marginal starts uniform
    agreement, _, counts = molecule_likelihoods(model.eval(), moses_200[:12], spellings=4,
                                                num_orders=3)
    want = torch.tensor(counts, dtype=torch.float64).log() - model.D * math.log(model.K)
    assert agreement.mam.tolist() == pytest.approx(want.tolist(), abs=1e-3)
    assert agreement.arm.tolist() == pytest.approx(want.tolist(), abs=1e-6)
    assert agreement.arm_mean.tolist() == pytest.approx(want.tolist(), abs=1e-6)
    assert max(counts) > 100  # molecules of many blocks were among them


def test_scoring_adds_the_molecule_sum_and_ranks_by_it(safe_model, moses_200):
    model, _ = safe_model
    smiles = moses_200[:8] + ["not a molecule"]
    plain = score_molecules(model, smiles).table
    assert "log_p_molecule" not in plain
    table = score_molecules(model, smiles, spellings=6, seed=2, bf16=False).table
    whole, kept, counts = molecule_likelihoods(model, moses_200[:8], 6, seed=2, with_arm=False)
    assert table["log_p_molecule"][:8].tolist() == pytest.approx(whole.mam.tolist())
    assert table["block_orders"][:8].tolist() == counts.tolist()
    assert pd.isna(table.loc[8, "log_p_molecule"]) and pd.isna(table.loc[8, "outlier_rank"])
    assert table["outlier_rank"][:8].tolist() == (
        table["log_p_molecule"][:8].rank(method="first").astype(int).tolist())
    assert table["log_p_mam"].tolist()[:8] == pytest.approx(plain["log_p_mam"].tolist()[:8])


def test_mam_score_adds_the_molecule_sum_for_fragment_block_models(safe_model, tmp_path, capsys):
    import io

    from mam_core.cli import main
    from mam_core.core.checkpoint import save

    model, _ = safe_model
    path = save(model, tmp_path / "m.pt")
    inp = tmp_path / "mols.smi"
    inp.write_text("CCOC(=O)c1ccccc1\nnot_a_smiles\nCC(=O)Nc1ccc(O)cc1\n")
    assert main(["score", "--model", str(path), "--input", str(inp), "--spellings", "30"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False,
                        na_values=[""])
    assert list(table.columns)[:4] == ["smiles", "log_marginal_mam", "log_p_molecule",
                                       "block_orders"]
    assert table["block_orders"].tolist()[::2] == [24, 6]  # 4 and 3 blocks, all orders scored
    assert pd.isna(table["log_p_molecule"][1])
    whole, _, _ = molecule_likelihoods(model, ["CCOC(=O)c1ccccc1", "CC(=O)Nc1ccc(O)cc1"], 30,
                                       with_arm=False)
    assert table["log_p_molecule"].tolist()[::2] == pytest.approx(whole.mam.tolist(), abs=1e-5)


def test_mam_eval_reports_the_molecule_row_for_a_fragment_block_model(safe_model, moses_200,
                                                                       tmp_path):
    from mam_core.workflows.evaluation import MOLECULE_ROW, compute_eval
    from mam_core.workflows.report import write_report

    model, _ = safe_model  # untrained: its marginal gives every string the same log p
    test = load_moses("test", limit=12)
    result = compute_eval(model, test, moses_200, n_test=12, n_samples=8, num_orders=2,
                          with_fcd=False, spellings=8)
    one, whole = (result.metrics["likelihood"][k] for k in ("test molecules", MOLECULE_ROW))
    counts = result.test_likelihoods["block_orders"].to_numpy()
    assert len(counts) == one["n"] == whole["n"] == 12
    # the same strings' log p, plus the log of how many strings write each molecule
    assert whole["nll_mam_nats"] == pytest.approx(one["nll_mam_nats"] - np.log(counts).mean())
    assert np.isfinite(result.test_likelihoods["log_p_arm_molecule"]).all()
    report = (write_report(result, tmp_path)).read_text()
    assert f"| {MOLECULE_ROW} |" in report and "Summing over block orders" in report


def test_screening_scores_the_molecule_the_way_its_calibration_did(safe_model, moses_200):
    from mam_core.workflows.outliers import Calibration, calibrate, score_table

    model, _ = safe_model
    cal = calibrate(model, moses_200, "train", store=False, n_fragment=0)
    assert cal.molecule  # a fragment-block model is calibrated on molecules by default
    rows = moses_200[:6] + ["not a molecule"]
    table = score_table(model, rows, "per_token", cal, bf16=False)
    counts = [safe.block_order_count(safe.encode(s)) for s in moses_200[:6]]
    assert table["block_orders"][:6].tolist() == counts and pd.isna(table["block_orders"][6])
    # the canonical string's log p stands for each of the molecule's strings: no extra pass
    string = score_molecules(model, moses_200[:6]).table["log_p_mam"].to_numpy()
    assert table["log_marginal_mam"][:6].tolist() == pytest.approx(string.tolist(), abs=1e-4)
    assert table["outlier_score"][:6].tolist() == pytest.approx(
        (-(string + np.log(counts)) / table["n_tokens"][:6].astype(float)).tolist(), abs=1e-4)
    # a calibration stored before molecules were scored screens one string, as it was made
    old = {k: v for k, v in cal.to_dict().items() if k != "molecule"}
    string_only = score_table(model, rows, "per_token", Calibration.from_dict(old), bf16=False)
    assert "block_orders" not in string_only
    assert string_only["outlier_score"][:6].tolist() == pytest.approx(
        (-string / string_only["n_tokens"][:6].astype(float)).tolist(), abs=1e-4)
