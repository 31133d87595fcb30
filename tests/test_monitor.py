"""The learning-curve callback of ``train-arm --eval-every``."""

import torch

from mam_core import MaM, NetworkConfig
from mam_core.chem.moses import load_moses
from mam_core.chem.tokenizers import SafeTokenizer
from mam_core.workflows.monitor import molecule_monitor


def test_monitor_adds_heldout_nll_and_sample_quality_on_its_steps_only():
    tok = SafeTokenizer.build(load_moses("train")[:200], max_length=60, drop_long=True)
    torch.manual_seed(0)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    from mam_core.chem.molecules import attach_tokenizer

    attach_tokenizer(model, tok)
    heldout = tok.encode_batch(load_moses("test")[:20])
    on_log = molecule_monitor(model, heldout, every=10, n_samples=16)
    off, on = {"step": 5}, {"step": 10}
    on_log(off)
    on_log(on)
    assert off == {"step": 5}
    assert on["heldout_nll"] > 0 and {"validity", "uniqueness", "quality"} <= set(on)
    # the samples are drawn under the syntax constraint: an untrained model then writes some
    # molecules, and none without it
    from mam_core.chem.metrics import validity

    assert on["validity"] >= 0.1
    assert validity(tok.decode_batch(model.sample(16, order="l2r", seed=10))) == 0


def test_monitor_adds_the_left_to_right_nll_the_sampler_draws_from():
    """Fragment-block models are sampled left to right; the curve shows that order's exact NLL,
    here against the chain rule written out position by position."""
    from mam_core.chem.molecules import attach_tokenizer

    tok = SafeTokenizer.build(load_moses("train")[:200], max_length=60, drop_long=True)
    torch.manual_seed(0)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    heldout = tok.encode_batch(load_moses("test")[:10])
    rec = {"step": 0}
    molecule_monitor(model, heldout, every=1, n_samples=0, n_ordered=3)(rec)
    x = heldout[:3]
    expected = 0.0
    with torch.no_grad():
        for d in range(model.D):
            prefix = torch.where(torch.arange(model.D) < d, x, model.mask_id)
            lp = model.conditional_log_probs(prefix)[torch.arange(3), d]
            expected -= float(lp.gather(1, x[:, d:d + 1]).sum()) / 3
    assert abs(rec["heldout_nll_l2r"] - expected) < 1e-4
    assert rec["heldout_nll"] > 0
