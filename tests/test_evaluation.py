"""`mam eval` pieces: likelihood agreement maths and the end-to-end report on a tiny model."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import perturbed
from mam_core import MaM, NetworkConfig, TrainConfig, distill, train_arm
from mam_core.workflows.evaluation import (
    MOLECULE_ROW,
    evaluate_molecule_model,
    likelihood_agreement,
    mask_random_subsets,
)
from mam_core.workflows.generate import SAMPLING_KEY
from mam_core.chem.metrics import drug_like_quality, uniqueness, validity
from mam_core.chem.molecules import attach_tokenizer
from mam_core.chem.moses import load_moses
from mam_core.chem.tokenizers import SelfiesTokenizer


def test_agreement_is_perfect_for_a_model_compared_with_itself_at_the_empty_set():
    m = perturbed(MaM(NetworkConfig(D=6, K=3, arch="mlp", hidden=16, n_layers=1)))
    x = m.empty(5)
    agree = likelihood_agreement(m, x)
    assert np.allclose(agree.mam, 0, atol=1e-6) and np.allclose(agree.arm, 0)
    s = agree.summary()
    assert s["n"] == 5 and s["observed_per_row"] == 0 and math.isnan(s["bits_per_token_mam"])


def test_the_timed_sides_are_one_pass_against_one_pass_per_observed_position():
    m = perturbed(MaM(NetworkConfig(D=6, K=3, arch="mlp", hidden=16, n_layers=1)))
    calls = {"marginal": 0, "conditional": 0}
    for head in calls:
        original = getattr(m.net, head)

        def counted(x, _original=original, _head=head, **kw):
            calls[_head] += 1
            return _original(x, **kw)

        setattr(m.net, head, counted)
    x = torch.randint(0, 3, (10, 6))
    agree = likelihood_agreement(m, x, batch_size=4)  # 3 batches
    assert calls == {"marginal": 1 + 3,
                     "conditional": 3 * 6}  # warm-up + one per batch; D per batch
    s = agree.summary()
    assert s["speedup"] == pytest.approx(agree.seconds_arm / agree.seconds_mam)
    assert s["ms_per_molecule_arm"] == pytest.approx(1e3 * agree.seconds_arm / 10)


def test_the_speed_up_is_over_one_order_however_many_the_reference_averages():
    """Averaging 4 orders costs 4·D passes; the speed-up of one pass is over D of them."""
    m = perturbed(MaM(NetworkConfig(D=6, K=3, arch="mlp", hidden=16, n_layers=1)))
    calls = {"conditional": 0}
    original = m.net.conditional

    def counted(x, **kw):
        calls["conditional"] += 1
        return original(x, **kw)

    m.net.conditional = counted
    agree = likelihood_agreement(m, torch.randint(0, 3, (10, 6)), num_orders=4, batch_size=4)
    assert calls["conditional"] == 3 * 4 * 6  # batches × orders × D
    s = agree.summary()
    assert s["speedup"] == pytest.approx(agree.seconds_arm / 4 / agree.seconds_mam)
    assert s["ms_per_molecule_arm"] == pytest.approx(1e3 * agree.seconds_arm / 10)


def test_both_reductions_over_orders_come_from_the_same_orders():
    from mam_core.core.likelihood import log_likelihood_arm_per_order

    m = perturbed(MaM(NetworkConfig(D=6, K=3, arch="mlp", hidden=16, n_layers=1)))
    x = torch.randint(0, 3, (10, 6), generator=torch.Generator().manual_seed(0))
    agree = likelihood_agreement(m, x, num_orders=4, batch_size=4, seed=2)
    per = torch.cat([log_likelihood_arm_per_order(m, b, num_orders=4, seed=2 + i)
                     for i, b in enumerate(x.split(4))], dim=1).numpy()  # (4, 10)
    assert np.allclose(agree.arm_mean, per.mean(0))
    assert np.allclose(agree.arm, np.logaddexp.reduce(per, axis=0) - math.log(4))
    assert (agree.arm >= agree.arm_mean - 1e-9).all()  # Jensen
    s = agree.summary()
    assert s["nll_arm_mean_nats"] == pytest.approx(-per.mean())
    assert s["relative_gap_mean"] == pytest.approx(
        (s["nll_mam_nats"] - s["nll_arm_mean_nats"]) / s["nll_arm_mean_nats"])


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.8])
def test_bits_per_token_count_the_observed_positions(fraction):
    """A fresh MaM is the uniform distribution: log2 K bits per observed token however much is
    masked."""
    m = MaM(NetworkConfig(D=8, K=4, arch="mlp", hidden=16, n_layers=1))
    x = mask_random_subsets(torch.randint(0, 4, (50, 8)), m.mask_id, fraction, seed=1)
    s = likelihood_agreement(m, x, with_arm=False).summary()
    assert s["observed_per_row"] == pytest.approx(float((x != m.mask_id).sum()) / 50)
    assert s["bits_per_token_mam"] == pytest.approx(2.0, abs=1e-5)
    assert math.isnan(s["bits_per_token_arm"]) and math.isnan(s["speedup"])  # MaM only


def test_mask_random_subsets_hides_about_the_requested_fraction():
    x = torch.zeros(200, 50, dtype=torch.long)
    y = mask_random_subsets(x, 7, 0.3, seed=1)
    assert abs(float((y == 7).float().mean()) - 0.3) < 0.02
    assert torch.equal(y, mask_random_subsets(x, 7, 0.3, seed=1))


def test_report_end_to_end(tmp_path):
    train = load_moses("train", limit=300)
    tok, batch = SelfiesTokenizer.fit_encode(train, drop_invalid=True, drop_long=True,
                                             max_length=50)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=32, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    train_arm(model, batch.ids, TrainConfig(steps=30, batch_size=32), progress=False)
    distill(model, batch.ids, TrainConfig(steps=10, batch_size=32), progress=False)
    # the report samples as the app does: with the model's stored settings (regression: it
    # drew at temperature 1 and top-p 1 whatever the model stored)
    model.metadata[SAMPLING_KEY] = {"temperature": 0.8, "top_p": 0.9}
    res = evaluate_molecule_model(model, load_moses("test", limit=60), train, tmp_path, n_test=40,
                                  n_samples=40)
    lik, partial = res["likelihood"]["test molecules"], res["likelihood"]["partial (50% observed)"]
    assert MOLECULE_ROW not in res["likelihood"]  # SELFIES writes a molecule one way
    assert lik["n"] > 30 and np.isfinite(lik["nll_arm_nats"])
    # molecule size alone orders them
    assert lik["spearman"] > 0.5 and res["arm_vs_arm_spearman"] > 0.9
    # per observed token, hiding half of each molecule leaves the rate about where it was
    assert partial["observed_per_row"] < 0.6 * lik["observed_per_row"]
    assert partial["bits_per_token_arm"] == pytest.approx(lik["bits_per_token_arm"], rel=0.25)
    samples = pd.read_csv(tmp_path / "samples.csv", keep_default_na=False)
    smiles = samples["SMILES"].tolist()
    assert len(smiles) == 40 and all(smiles)  # no sample decodes to an empty string
    assert res["samples"]["validity"] == validity(smiles)
    assert res["samples"]["uniqueness"] == uniqueness(smiles)
    # unconditional samples of this tiny model have no aromatic ring; the fixed fragment brings
    # benzene
    assert res["conditional"]["task"] == "superstructure"
    assert res["conditional"]["matched_first_draw"] >= 0.5
    for name in ["report.md", "metrics.json", "likelihood.csv", "samples.csv",
                 "test_likelihoods.csv", "mam_vs_arm.html", "property_logP.html"]:
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "metrics.json").read_text())["samples"]["n"] == 40
    # FCD (fcd_torch is a test dependency) beside its same-n floor of training molecules
    floor = res["fcd"]["training molecules (same n, floor)"]
    assert res["fcd"]["samples"]["n"] == 40 and floor["n"] == 40
    assert res["fcd"]["samples"]["FCD/Test"] > floor["FCD/Test"] > 0
    assert res["sampling"]["temperature"] == 0.8 and res["sampling"]["top_p"] == 0.9
    # SELFIES has no syntax to steer; every sample is valid, so what redraws deliver is the draw
    assert res["sampling"]["constraint"] == "off"
    assert res["samples"]["quality_of_valid"] == res["samples"]["quality"] == drug_like_quality(
        smiles)


def test_spread_slope_tells_a_shrunk_marginal_from_a_noisy_one():
    """Both have rank correlation below 1; only the shrunk one has a slope below 1."""
    from mam_core.workflows.evaluation import spread_slope

    arm = np.random.default_rng(0).normal(-36, 6, 500)
    noise = np.random.default_rng(1).normal(0, 2, 500)
    assert spread_slope(0.43 * arm + noise, arm) == pytest.approx(0.43, abs=0.03)
    assert spread_slope(arm + noise, arm) == pytest.approx(1.0, abs=0.03)
    assert spread_slope(arm, arm) == pytest.approx(1.0)
    assert math.isnan(spread_slope(arm[:2], arm[:2]))
    assert math.isnan(spread_slope(arm, np.full(500, -30.0)))


def test_compare_evals_names_the_better_report_row_by_row(tmp_path, monkeypatch, capsys):
    """bench/compare_evals.py decides whether a candidate default model replaces the shipped one."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "compare_evals.py"
    spec = importlib.util.spec_from_file_location("compare_evals", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def report(name, diversity, fcd, gap, n_fcd=1000):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({
            "samples": {"internal_diversity": diversity, "quality_of_valid": 0.85},
            "test_set": {"internal_diversity": 0.864},
            "fcd": {"samples": {"n": n_fcd, "FCD/Test": fcd}},
            "likelihood": {"test molecules": {"relative_gap": gap}}}))
        return str(folder)

    shipped = report("shipped", 0.849, 4.1, 0.037)
    candidate = report("candidate", 0.880, 3.2, -0.02, n_fcd=30000)
    monkeypatch.setattr(sys, "argv", ["compare_evals.py", shipped, candidate])
    script.main()
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0].strip("| "): line.rstrip(" |").split(" | ")[-1]
            for line in out.splitlines() if line.startswith("| ")}
    assert rows["internal diversity"] == "shipped"  # 0.015 from the test set's, not 0.016
    assert rows["FCD/Test"] == "candidate"  # lower is better
    assert rows["MaM vs AO-ARM gap"] == "candidate"  # |-2 %| < 3.7 %
    assert rows["quality delivered"] == "shipped"  # a tie goes to the first
    assert "different sample counts ([1000, 30000])" in out
    assert "validity (first draw)" not in rows  # no report measured it
