"""Reward-driven fine-tuning: the reward moves the right way, fixed positions stay fixed, the prior
term is what it says, and the CLI runs it end to end."""

from __future__ import annotations

import copy

import pytest
import torch

from energies import get_energy
from mam_core.core.config import NetworkConfig, TrainConfig
from mam_core.workflows.finetune import PriorTiltedTarget, fine_tune
from mam_core.core.model import MaM
from mam_core.chem.molecules import attach_tokenizer, tokenizer_of
from mam_core.chem.tokenizers import SelfiesTokenizer, make_template

SMILES = ["CCO", "CCN(CC)CC", "O=C(O)c1ccncc1", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "ClCCl",
          "OCC(O)CO", "CCCCCC"]


@pytest.fixture(scope="module")
def tok():
    return SelfiesTokenizer.build(SMILES, max_length=20)


def _model(tok, seed=0):
    torch.manual_seed(seed)
    m = MaM(NetworkConfig(D=tok.D, K=tok.K, arch="mlp", hidden=128, n_layers=2), tok.vocab)
    attach_tokenizer(m, tok)
    return m


def _mean_reward(model, energy, n=256, template=None, seed=1):
    x = model.sample(n, template=template, seed=seed)
    return float(energy(x).mean()), x


def test_prior_tilted_target_is_beta_log_prior_plus_log_f(tok):
    prior = _model(tok)
    energy = get_energy("qed", tokenizer=tok, tau=1.0)
    x = prior.sample(8, seed=0)
    t = PriorTiltedTarget(copy.deepcopy(prior), energy, beta=0.5)
    expected = 0.5 * prior.log_marginal(x) + energy(x)
    assert torch.allclose(t(x), expected, atol=1e-5)
    assert set(t.last_metrics) == {"reward_mean", "reward_std", "prior_log_p_mean"}
    with pytest.raises(ValueError, match="beta"):
        PriorTiltedTarget(prior, energy, beta=-1.0)


@pytest.mark.slow
def test_fine_tuning_moves_the_reward_up(tok):
    model = _model(tok)
    energy = get_energy("lipophilicity", tokenizer=tok, target=4.0, tau=1.0)
    before, _ = _mean_reward(model, energy)
    untouched = copy.deepcopy(model)
    cfg = TrainConfig(steps=300, batch_size=64, lr=3e-3, log_every=25, seed=0, sc_weight=1.0)
    res = fine_tune(model, energy, cfg, beta=0.2, progress=False)
    after, _ = _mean_reward(model, energy)
    assert after > before + 1.5, (before, after)  # measured: about −14.9 → −10
    rec = res.history[-1]
    for key in ("reward_mean", "kl_minus_logz", "sc_abs_err", "log_f_mean", "sec_per_step"):
        assert key in rec
    # the prior handed in explicitly is left trainable (the app fine-tunes copies of one shared
    # model)
    fine_tune(copy.deepcopy(untouched), energy, TrainConfig(steps=1, batch_size=8), prior=untouched,
              progress=False)
    assert all(p.requires_grad for p in untouched.parameters())
    info = model.metadata["training"][-1]
    assert info["fine_tuned"] and info["beta"] == 0.2 and info["energy"] == "lipophilicity"


def test_fixed_substructure_stays_fixed(tok):
    model = _model(tok)
    template = make_template(tok, "c1ccccc1", start=0)
    fixed = template != tok.mask_id
    energy = get_energy("lipophilicity", tokenizer=tok, target=4.0, tau=1.0)
    cfg = TrainConfig(steps=20, batch_size=32, lr=1e-3, log_every=10, seed=0)
    res = fine_tune(model, energy, cfg, beta=1.0, template=template, progress=False)
    assert res.step == 20
    _, x = _mean_reward(model, energy, n=64, template=template)
    assert (x[:, fixed] == template[fixed]).all()


def test_cli_fine_tunes_and_trains_from_scratch(tok, tmp_path):
    from mam_core.core import checkpoint as ckpt
    from mam_core.cli import main

    init = tmp_path / "prior.pt"
    ckpt.save(_model(tok), init)
    out = tmp_path / "ft"
    rc = main(["train-eb", "--energy", "lipophilicity", "--target", "-2", "--tau", "0.5", "--init",
               str(init),
               "--beta", "0.5", "--fragment", "c1ccccc1", "--steps", "6", "--batch-size", "16",
               "--out", str(out), "--no-progress"])
    assert rc in (0, None)
    m = ckpt.load(out / "checkpoint.pt")
    assert tokenizer_of(m).D == tok.D
    rec = m.metadata["training"][-1]
    assert rec["energy_params"]["target"] == -2.0 and rec["beta"] == 0.5

    scratch = tmp_path / "scratch"
    rc = main(["train-eb", "--energy", "qed", "--length", "30", "--steps", "4", "--batch-size", "8",
               "--hidden", "64", "--out", str(scratch), "--no-progress"])
    assert rc in (0, None)
    m2 = ckpt.load(scratch / "checkpoint.pt")
    assert m2.D == 30 and tokenizer_of(m2).D == 30


def test_cli_rejects_bad_energy_input(tmp_path, capsys):
    from mam_core.cli import main

    assert main(["train-eb", "--energy", "substructure", "--smarts", "C((", "--steps", "1",
                 "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "SMARTS" in capsys.readouterr().err
    assert main(["train-eb", "--energy", "qed", "--energy-params", "[1]", "--out",
                 str(tmp_path / "y")]) == 2


def test_fragment_block_models_fine_tune_the_sampler_and_stay_in_the_syntax():
    """SMILES / fragment-block models fine-tune the left-to-right sampler under the syntax
    constraint (their random-order chains are mostly not molecules); SELFIES keep the chains."""
    from mam_core.chem.grammar import grammar_for
    from mam_core.chem.moses import load_moses
    from mam_core.chem.tokenizers import SafeTokenizer
    from mam_core.workflows.finetune import fine_tune_method

    safe_tok = SafeTokenizer.build(load_moses("train")[:200], max_length=40, drop_long=True)
    torch.manual_seed(0)
    model = MaM(NetworkConfig(D=safe_tok.D, K=safe_tok.K, arch="mlp", hidden=64, n_layers=2),
                safe_tok.vocab)
    attach_tokenizer(model, safe_tok)
    assert fine_tune_method(model) == "sampler"
    assert fine_tune_method(_model(SelfiesTokenizer.build(SMILES, max_length=20))) == "chains"
    with pytest.raises(ValueError, match="method"):
        fine_tune_method(model, "gibbs")
    # the sampler method runs in bfloat16 where that is faster, the chains always in float32
    import mam_core.workflows.finetune as ft

    selfies_model = _model(SelfiesTokenizer.build(SMILES, max_length=20))
    for faster in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ft, "bf16_is_faster", lambda device: faster)
            assert ft.fine_tune_precision(model) == ("bf16" if faster else "fp32")
            assert ft.fine_tune_precision(selfies_model) == "fp32"
            assert ft.fine_tune_precision(model, "chains") == "fp32"

    grammar = grammar_for(safe_tok)
    drawn = []
    energy = get_energy("qed", tokenizer=safe_tok, tau=0.1)

    def spy(x):
        drawn.append(x.clone())
        return energy(x)

    spy.name = "qed"
    res = fine_tune(model, spy, TrainConfig(steps=3, batch_size=8, lr=1e-4), beta=1.0,
                    progress=False)
    assert res.step == 3 and model.metadata["training"][-1]["method"] == "sampler"
    x = torch.cat(drawn)  # every training molecule was drawn under the constraint
    for row in x:
        cur = torch.full((1, safe_tok.D), model.mask_id)
        for d in range(safe_tok.D):
            assert grammar(cur, torch.tensor([d]), model.mask_id)[0, row[d]], (row, d)
            cur[0, d] = row[d]


def test_cli_fine_tunes_a_fragment_block_model_gently_by_default(tmp_path):
    """Without --lr / --batch-size, `train-eb --init` on a fragment-block model uses the sampler
    settings (the lattice preset's 1e-3 destroys a pretrained molecule model), and without
    --precision the app's precision."""
    from mam_core.workflows.finetune import fine_tune_precision
    from mam_core.chem.moses import load_moses
    from mam_core.chem.tokenizers import SafeTokenizer
    from mam_core.cli import main
    from mam_core.core import checkpoint as ckpt
    from mam_core.cli.train import SAMPLER_DEFAULTS

    safe_tok = SafeTokenizer.build(load_moses("train")[:200], max_length=40, drop_long=True)
    model = MaM(NetworkConfig(D=safe_tok.D, K=safe_tok.K, arch="mlp", hidden=32, n_layers=1),
                safe_tok.vocab)
    attach_tokenizer(model, safe_tok)
    init = tmp_path / "prior.pt"
    ckpt.save(model, init)
    rc = main(["train-eb", "--energy", "qed", "--init", str(init), "--steps", "2",
               "--fragment", "[*]c1ccccc1", "--out", str(tmp_path / "ft"), "--no-progress"])
    assert rc in (0, None)
    rec = ckpt.load(tmp_path / "ft" / "checkpoint.pt").metadata["training"][-1]
    assert rec["method"] == "sampler" and rec["config"]["steps"] == 2
    for key in ("lr", "batch_size", "warmup", "sc_weight"):
        assert rec["config"][key] == SAMPLER_DEFAULTS[key], key
    assert rec["config"]["precision"] == fine_tune_precision(model)
