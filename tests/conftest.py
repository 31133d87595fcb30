"""Shared fixtures: tiny exactly-enumerable problems and seeded models."""

from __future__ import annotations

import pytest
import torch

from mam_core import MaM, NetworkConfig
from mam_core.core.enumeration import all_states, exact_log_marginal, pairwise_field  # noqa: F401 (re-exported to tests)


def perturbed(model: MaM, scale: float = 0.2, seed: int = 0) -> MaM:
    """Randomise every weight (incl. the zero-initialised marginal output) so tests are not
    trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


def install_default_molecule_model(model: MaM, tokenizer, tmp_path, monkeypatch) -> MaM:
    """Make ``model`` (with its tokenizer) the shipped default and give it an empty model store."""
    from mam_core import save
    from mam_core.chem.molecules import attach_tokenizer

    attach_tokenizer(model, tokenizer)
    save(model, tmp_path / "default.pt")
    monkeypatch.setenv("MAM_DEFAULT_MODEL", str(tmp_path / "default.pt"))
    monkeypatch.setenv("MAM_MODELS_DIR", str(tmp_path / "store"))
    return model


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


ARCHS = [
    dict(arch="mlp", hidden=32, n_layers=2),
    dict(arch="mlp", hidden=32, n_layers=2, shared_trunk=True),
    dict(arch="transformer", d_model=32, n_layers=2, n_heads=4),
    dict(arch="transformer", d_model=32, n_layers=2, n_heads=4, shared_trunk=True),
]


@pytest.fixture(params=ARCHS, ids=["mlp", "mlp-shared", "transformer", "transformer-shared"])
def tiny_model(request):
    """An untrained (but perturbed) D=6, K=3 model of every architecture."""
    return perturbed(MaM(NetworkConfig(D=6, K=3, **request.param)))
