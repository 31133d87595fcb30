"""Fréchet ChemNet Distance (Preuer et al., J. Chem. Inf. Model. 2018), the MOSES benchmark's
main distribution metric, through ``fcd_torch`` (the ``eval`` extra: ``pip install
'mam-studio[eval]'``), whose wheel ships the ChemNet weights.

Reference statistics: the MOSES test set's own (``test_stats.npz`` in the molsets wheel, the
numbers the MOSES tables use) when a wheel is given, otherwise computed here from the embedded
test subset; :class:`FCDReference` says which.  FCD grows as the sample shrinks, so report it at
30,000 samples (the MOSES protocol) or beside the same-n floor of training molecules.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FCDReference", "fcd_available", "reference_from_smiles", "reference_from_wheel", "fcd"]


@dataclass
class FCDReference:
    mu: np.ndarray  # (512,) mean ChemNet activation
    sigma: np.ndarray  # (512, 512) covariance
    source: str  # what the statistics were computed from


def fcd_available() -> bool:
    try:
        import fcd_torch  # noqa: F401
    except ImportError:
        return False
    return True


def _model(n_jobs: int = 1):
    try:
        from fcd_torch import FCD
    except ImportError:
        raise ImportError("FCD needs the eval extra: pip install 'mam-studio[eval]' "
                          "(fcd_torch)") from None
    import torch

    return FCD(device="cuda" if torch.cuda.is_available() else "cpu", n_jobs=n_jobs)


def reference_from_smiles(smiles: list[str], source: str, n_jobs: int = 1) -> FCDReference:
    stats = _model(n_jobs).precalc(list(smiles))
    return FCDReference(stats["mu"], stats["sigma"], source)


def reference_from_wheel(wheel: str | Path, split: str = "test") -> FCDReference:
    """MOSES's precomputed statistics from the molsets wheel (a file we downloaded from PyPI,
    never a user upload: the .npz holds pickled dicts)."""
    member = f"moses/dataset/data/{split}_stats.npz"
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as fh:
        data = np.load(fh, allow_pickle=True)
        stats = data["stats"].item()["FCD"]
    return FCDReference(np.asarray(stats["mu"]), np.asarray(stats["sigma"]),
                        f"MOSES {split} statistics ({Path(wheel).name})")


def fcd(smiles: list[str], reference: FCDReference, n_jobs: int = 1) -> float:
    """FCD of a set of molecules to the reference (invalid SMILES are dropped first, as MOSES
    does)."""
    from fcd_torch.utils import calculate_frechet_distance

    from .rdkit_utils import canonical

    valid = [c for c in map(canonical, smiles) if c is not None]
    if len(valid) < 2:
        return float("nan")
    stats = _model(n_jobs).precalc(valid)
    return float(calculate_frechet_distance(stats["mu"], stats["sigma"], reference.mu,
                                            reference.sigma))
