"""Checkpoints: bit-exact round trips, atomic writes, safe loading, clear errors."""

from __future__ import annotations

import os

import pytest
import torch

from conftest import perturbed
from mam_core import CheckpointError, MaM, NetworkConfig, Vocabulary, load, load_checkpoint, save


@pytest.fixture
def model():
    vocab = Vocabulary(tokens=("C", "N", "O", "[nop]"), pad_token="[nop]", name="toy")
    m = MaM(NetworkConfig(D=5, K=4, arch="transformer", d_model=16, n_layers=1, n_heads=2), vocab)
    return perturbed(m)


def test_old_histories_are_read_with_the_renamed_metric(model, tmp_path):
    old = {"training": [{"stage": "eb",
                         "history": [{"step": 1, "kl_plus_logz": -3.0}, {"step": 2}]}]}
    history = load(save(model, tmp_path / "old.pt", old)).metadata["training"][0]["history"]
    assert history == [{"step": 1, "kl_minus_logz": -3.0}, {"step": 2}]


def test_round_trip_is_bit_exact(model, tmp_path):
    path = save(model, tmp_path / "m.pt", {"note": "hello", "training": [{"stage": "arm"}]})
    back = load(path)
    assert back.config == model.config and back.vocab == model.vocab
    assert back.metadata["note"] == "hello"
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.tensor([[0, 1, 4, 3, 4], [4, 4, 4, 4, 4]])
    assert torch.equal(model.log_marginal(x), back.log_marginal(x))
    assert torch.equal(model.conditional_logits(x), back.conditional_logits(x))
    assert torch.equal(model.sample(4, seed=1), back.sample(4, seed=1))


def test_save_is_atomic_and_leaves_no_temp_files(model, tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    save(model, path)
    before = path.read_bytes()

    def exploding_save(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", exploding_save)
    with pytest.raises(OSError, match="disk full"):
        save(model, path)
    assert path.read_bytes() == before  # the old checkpoint is untouched
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a PyTorch archive"),
        (b"garbage" * 100, "not a PyTorch archive"),
    ],
)
def test_corrupt_files_give_clear_errors(tmp_path, content, message):
    p = tmp_path / "bad.pt"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load(p)


def test_truncated_checkpoint(model, tmp_path):
    p = save(model, tmp_path / "m.pt")
    data = p.read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load(tmp_path / "t.pt")


def test_foreign_and_unsafe_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a MaM Studio checkpoint"):
        load(tmp_path / "foreign.pt")
    torch.save({"format": "mam-studio/checkpoint", "hook": os.system}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="code execution"):
        load(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load(tmp_path / "missing.pt")


def test_mismatched_weights_are_reported(model, tmp_path):
    p = save(model, tmp_path / "m.pt")
    payload = torch.load(p, weights_only=True)
    payload["config"] = payload["config"].replace('"d_model": 16', '"d_model": 32')
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="invalid config or weights"):
        load(tmp_path / "bad.pt")


def test_train_state_round_trip(model, tmp_path):
    from mam_core import save_checkpoint

    state = {"stage": "eb", "step": 7, "extra": {"chains": torch.ones(2, 5, dtype=torch.long)}}
    save_checkpoint(model, tmp_path / "c.pt", train_state=state)
    ck = load_checkpoint(tmp_path / "c.pt")
    assert ck.train_state["step"] == 7
    assert torch.equal(ck.train_state["extra"]["chains"], torch.ones(2, 5, dtype=torch.long))


def test_half_precision_checkpoint_is_smaller_and_loads_close(tmp_path):
    from conftest import perturbed
    from mam_core import MaM, NetworkConfig, load, save

    m = perturbed(MaM(NetworkConfig(D=8, K=5, d_model=32, n_layers=2, n_heads=4)))
    full, half = save(m, tmp_path / "full.pt"), save(m, tmp_path / "half.pt", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    back = load(half)
    assert all(p.dtype == torch.float32 for p in back.parameters())
    x = torch.randint(0, 6, (16, 8))
    assert torch.allclose(back.log_marginal(x), m.log_marginal(x), rtol=1e-2,
                          atol=0.05)  # float16 rounding
    assert torch.allclose(back.conditional_log_probs(x), m.conditional_log_probs(x), atol=1e-2)
