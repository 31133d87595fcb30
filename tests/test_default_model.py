"""The shipped default model: it loads safely, samples valid molecules, keeps fragments, and its
one-pass marginals track its own AO-ARM on held-out MOSES molecules."""

from __future__ import annotations

import os

import pytest
import torch
from scipy.stats import spearmanr

from mam_core.core.checkpoint import load
from mam_core.chem.metrics import uniqueness, validity
from mam_core.chem.molecules import tokenizer_of
from mam_core.paths import default_model_path
from mam_core.chem.moses import load_moses
from mam_core.chem.tokenizers import make_template


@pytest.fixture(scope="module")
def shipped():
    saved = os.environ.pop("MAM_DEFAULT_MODEL", None)
    try:
        path = default_model_path()
    finally:
        if saved is not None:
            os.environ["MAM_DEFAULT_MODEL"] = saved
    assert path.name == "default.pt" and path.is_file()
    assert path.stat().st_size < 25 * 2**20
    return load(path).eval()


def test_it_is_a_selfies_model_with_its_tokenizer(shipped):
    tok = tokenizer_of(shipped)
    assert tok.kind == "selfies" and (tok.D, tok.K) == (shipped.D, shipped.K)
    stages = [r["stage"] for r in shipped.metadata["training"]]
    assert stages == ["arm", "distill"]


@torch.no_grad()
def test_samples_are_valid_unique_and_keep_a_fragment(shipped):
    tok = tokenizer_of(shipped)
    smiles = tok.decode_batch(shipped.sample(64, seed=0))
    assert validity(smiles) == 1.0 and uniqueness(smiles) >= 0.9
    template = make_template(tok, "c1ccccc1", start=0)
    x = shipped.sample(16, template=template, seed=1)
    fixed = template != shipped.mask_id
    assert (x[:, fixed] == template[fixed]).all()


@torch.no_grad()
def test_marginals_track_the_ao_arm_on_test_molecules(shipped):
    tok = tokenizer_of(shipped)
    x = tok.encode_filtered(load_moses("test", limit=64)).ids
    mam = shipped.log_marginal(x).numpy()
    arm = shipped.log_likelihood_arm(x, num_orders=1, seed=0).numpy()
    assert spearmanr(mam, arm).statistic > 0.75
    assert abs(mam.mean() - arm.mean()) < 0.1 * abs(arm.mean())
