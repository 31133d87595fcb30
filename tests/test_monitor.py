"""The learning-curve callback of ``train-arm --eval-every`` and the training-history figure."""

import pandas as pd
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


def _two_stage_training() -> list[dict]:
    """Stage 1 logs the loss every 50 steps and held-out NLL and quality every 100; stage 2 (a
    distillation of 60 steps) logs its self-consistency error every 20."""
    arm = [{"step": s, "loss": 50.0 - s / 10, "nll_nats": 50.0 - s / 10, "lr": 1e-4}
           for s in (50, 100, 150, 200)]
    arm[1].update(heldout_nll=45.0, quality=0.5, validity=0.9)
    arm[3].update(heldout_nll=44.0, quality=0.75, validity=1.0)
    distill = [{"step": s, "loss": 3.0, "sc_abs_err": 1.0 / s} for s in (20, 40, 60)]
    return [{"stage": "arm", "config": {"steps": 300, "batch_size": 128, "lr": 3e-4},
             "n_train": 1000, "steps_done": 200, "history": arm},
            {"stage": "distill", "config": {"steps": 60, "batch_size": 64, "lr": 1e-3,
                                            "precision": "bf16"},
             "history": distill, "method": "chains"}]


def test_training_curves_put_the_stages_one_after_the_other_and_keep_sparse_metrics_sparse():
    from mam_core.workflows.monitor import training_curves

    c = training_curves(_two_stage_training())
    held = c[c["metric"] == "heldout_nll"]
    assert held["total_step"].tolist() == [100, 200] and held["value"].tolist() == [45.0, 44.0]
    sc = c[c["metric"] == "sc_abs_err"]
    # stage 1 stopped at step 200 of 300: stage 2 starts where it stopped, not at 300
    assert sc["total_step"].tolist() == [220, 240, 260] and set(sc["stage_no"]) == {2}
    assert sc["step"].tolist() == [20, 40, 60]
    assert set(c["metric"]) == {"nll_nats", "heldout_nll", "quality", "validity", "sc_abs_err"}
    # a stage with no steps_done is as long as its last recorded step
    rec = _two_stage_training()
    del rec[0]["steps_done"]
    assert training_curves(rec + rec[:1])["total_step"].max() == 200 + 60 + 200
    assert training_curves([]).empty


def test_stage_table_says_what_each_stage_ran_and_where_it_ended():
    from mam_core.workflows.monitor import stage_table

    t = stage_table(_two_stage_training())
    assert t["kind"].tolist() == ["arm", "distill"]
    assert t["steps"].tolist() == [200, 60] and t["of"].tolist() == [300, 60]
    assert t["precision"].tolist() == ["fp32", "bf16"]
    assert t.loc[0, "last held-out NLL"] == 44.0 and pd.isna(t.loc[1, "last held-out NLL"])
    assert t.loc[1, "details"] == "method chains" and t.loc[0, "details"] == ""


def test_training_figure_draws_a_panel_per_measurement_and_the_sparse_points():
    from app.ui import training_figure
    from mam_core.workflows.monitor import training_curves

    fig = training_figure(training_curves(_two_stage_training()))
    by_name = {t.name: t for t in fig.data}
    held = by_name["held-out, any order"]
    assert [x for x in held.x if x is not None] == [100, 200] and "markers" in held.mode
    assert by_name["training batch"].mode == "lines"
    assert by_name["self-consistency |error|"].yaxis == "y3"  # NLL, samples, self-consistency
    labels = [a.text for a in fig.layout.annotations]
    assert labels == ["1", "2"]  # numbered as in the table of stages
