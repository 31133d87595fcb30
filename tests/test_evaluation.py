"""`mam eval` pieces: likelihood agreement maths and the end-to-end report on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import torch

from conftest import perturbed
from mam_core import MaM, NetworkConfig, TrainConfig, distill, train_arm
from mam_core.evaluation import evaluate_molecule_model, likelihood_agreement, mask_random_subsets
from mam_core.molecules import attach_tokenizer
from mam_core.moses import load_moses
from mam_core.tokenizers import SelfiesTokenizer


def test_agreement_is_perfect_for_a_model_compared_with_itself_at_the_empty_set():
    m = perturbed(MaM(NetworkConfig(D=6, K=3, arch="mlp", hidden=16, n_layers=1)))
    x = m.empty(5)
    agree = likelihood_agreement(m, x)
    assert np.allclose(agree.mam, 0, atol=1e-6) and np.allclose(agree.arm, 0)
    s = agree.summary()
    assert s["n"] == 5 and s["speedup"] > 0


def test_mask_random_subsets_hides_about_the_requested_fraction():
    x = torch.zeros(200, 50, dtype=torch.long)
    y = mask_random_subsets(x, 7, 0.3, seed=1)
    assert abs(float((y == 7).float().mean()) - 0.3) < 0.02
    assert torch.equal(y, mask_random_subsets(x, 7, 0.3, seed=1))


def test_report_end_to_end(tmp_path):
    train = load_moses("train", limit=300)
    tok, batch = SelfiesTokenizer.fit_encode(train, drop_invalid=True, drop_long=True, max_length=50)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=32, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    train_arm(model, batch.ids, TrainConfig(steps=30, batch_size=32), progress=False)
    distill(model, batch.ids, TrainConfig(steps=10, batch_size=32), progress=False)
    res = evaluate_molecule_model(model, load_moses("test", limit=60), train, tmp_path, n_test=40, n_samples=40)
    lik = res["likelihood"]["test molecules"]
    assert lik["n"] > 30 and np.isfinite(lik["nll_arm_nats"]) and -1 <= lik["spearman"] <= 1
    assert lik["speedup"] > 1
    assert res["samples"]["validity"] == 1.0  # SELFIES: every sample decodes to a molecule
    assert res["conditional"]["fragment_tokens_kept"] == 1.0
    for name in ["report.md", "metrics.json", "likelihood.csv", "samples.csv", "test_likelihoods.csv", "mam_vs_arm.html", "property_logP.html"]:
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "metrics.json").read_text())["samples"]["n"] == 40
