"""Molecular rewards as energies: token ids → SMILES → RDKit property → finite ``log f``.

Every class here decodes a ``(B, D)`` batch of token ids with the model's tokenizer, scores each
molecule, and returns ``log f(x)`` (``(B,)`` float32; larger is better, see :mod:`energies`).

Two decisions are made once, in :class:`MolecularEnergy`:

* **Never an exception, never NaN.** A row that decodes to nothing RDKit accepts (an empty
  SELFIES, an unparsable SMILES) gets the energy's ``floor``; valid molecules are clipped below at
  the same ``floor``, so an invalid molecule is never preferred to a valid one and REINFORCE
  always sees finite numbers.
* **A molecule is scored once.** ``log f`` is cached per token row (sampling chains revisit the
  same molecules constantly) and the RDKit properties behind it are cached per SMILES by
  :func:`mam_core.chem.properties.property_of`.

Build them by name, with the tokenizer of the model they will train::

    >>> from energies import get_energy
    >>> lipo = get_energy("lipophilicity", tokenizer=tok, target=-4.0, tau=0.1)
    >>> lipo(x)             # (B,) log f
    >>> lipo.score_smiles(["CCO"])   # the same numbers for SMILES
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import torch
from rdkit import Chem

from energies import ENERGIES, register
from mam_core.chem.properties import is_valid, mol_from_smiles, property_of

__all__ = [
    "MolecularEnergy",
    "LipophilicityEnergy",
    "QEDEnergy",
    "SAEnergy",
    "MolWeightWindowEnergy",
    "SubstructureEnergy",
    "WeightedSumEnergy",
    "MOLECULAR_ENERGIES",
]

#: Energies that need a molecule tokenizer (what the app offers as rewards).
MOLECULAR_ENERGIES = ("lipophilicity", "qed", "sa", "mol_weight", "substructure", "weighted_sum")


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


class MolecularEnergy:
    """Shared machinery: decoding, caching, the invalid-molecule floor, tensor in/out.

    Subclasses set ``name`` and implement :meth:`reward_smiles` (``str -> float``, NaN when the
    molecule cannot be scored) and :meth:`default_floor`; :meth:`ceiling` (the best ``log f``)
    lets a weighted sum give the energy a negative weight without clipping every molecule.

    Args:
        tokenizer: the :class:`mam_core.chem.tokenizers.MolTokenizer` of the model being trained; it
            fixes ``D``, ``K`` and the vocabulary. ``None`` allows scoring SMILES only.
        floor: smallest ``log f``; invalid molecules get exactly this. Default: per energy.
        cache_size: token rows whose ``log f`` is remembered.
    """

    name = "molecular"

    def __init__(self, tokenizer=None, floor: float | None = None, cache_size: int = 200_000):
        self.tokenizer = tokenizer
        self.floor = _finite("floor", self.default_floor() if floor is None else floor)
        self._row_log_f = functools.lru_cache(maxsize=cache_size)(self._uncached_row_log_f)

    # --- what subclasses define ----------------------------------------------------------------
    def reward_smiles(self, smiles: str) -> float:
        """``log f`` of one SMILES before the floor; NaN when it cannot be scored."""
        raise NotImplementedError

    def default_floor(self) -> float:
        raise NotImplementedError

    def ceiling(self) -> float:
        """Largest ``log f`` any valid molecule can get (``inf`` when unbounded)."""
        return math.inf

    @property
    def params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), stored with trained models."""
        return {"floor": self.floor}

    @property
    def description(self) -> str:
        return self.name

    # --- shape facts for the trainers ---------------------------------------------------------
    def _need_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError(f"the {self.name!r} energy was built without a tokenizer; pass "
                             "tokenizer=")
        return self.tokenizer

    @property
    def D(self) -> int:  # noqa: N802
        return self._need_tokenizer().D

    @property
    def K(self) -> int:  # noqa: N802
        return self._need_tokenizer().K

    @property
    def vocab(self):
        return self._need_tokenizer().vocab

    # --- scoring ------------------------------------------------------------------------------
    def log_f_smiles(self, smiles: str) -> float:
        """Finite ``log f`` of one SMILES: the floor for invalid molecules, clipped below."""
        if not isinstance(smiles, str) or not is_valid(smiles):
            return self.floor
        value = self.reward_smiles(smiles)
        if not math.isfinite(value):
            return self.floor
        return max(value, self.floor)

    def score_smiles(self, smiles: Sequence[str]) -> np.ndarray:
        """``log f`` of each SMILES, ``(N,)`` float64."""
        return np.array([self.log_f_smiles(s) for s in smiles], dtype=np.float64)

    def _uncached_row_log_f(self, row: tuple[int, ...]) -> float:
        return self.log_f_smiles(self.tokenizer.decode(list(row)))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` token ids → ``(B,)`` float32 ``log f`` on ``x``'s device."""
        tok = self._need_tokenizer()
        if not torch.is_tensor(x) or x.dim() != 2 or x.shape[1] != tok.D:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"{self.name}: expected token ids of shape (B, {tok.D}), got {shape}")
        values = [self._row_log_f(tuple(r)) for r in x.tolist()]
        return torch.tensor(values, dtype=torch.float32, device=x.device)

    def cache_info(self):
        return self._row_log_f.cache_info()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


@register("lipophilicity")
class LipophilicityEnergy(MolecularEnergy):
    """``log f = −(logP − target)² / τ`` with Crippen logP (paper: target −4, τ 0.1)."""

    name = "lipophilicity"

    def __init__(self, tokenizer=None, target: float = -4.0, tau: float = 0.1,
                 floor: float | None = None, **kw):
        self.target = _finite("target", target)
        self.tau = _positive("tau", tau)
        super().__init__(tokenizer, floor, **kw)

    def default_floor(self) -> float:
        # a logP 15 units off target: worse than any drug-like molecule
        return -(15.0**2) / self.tau

    def ceiling(self) -> float:
        return 0.0  # logP exactly on target

    def reward_smiles(self, smiles: str) -> float:
        return -((property_of(smiles, "logP") - self.target) ** 2) / self.tau

    @property
    def params(self) -> dict[str, Any]:
        return {"target": self.target, "tau": self.tau, "floor": self.floor}

    @property
    def description(self) -> str:
        return f"lipophilicity: −(logP − {self.target:g})² / {self.tau:g}"


@register("qed")
class QEDEnergy(MolecularEnergy):
    """``log f = QED / τ``: drug-likeness in [0, 1], sharpened by a temperature."""

    name = "qed"

    def __init__(self, tokenizer=None, tau: float = 0.1, floor: float | None = None, **kw):
        self.tau = _positive("tau", tau)
        super().__init__(tokenizer, floor, **kw)

    def default_floor(self) -> float:
        return 0.0  # QED's own minimum

    def ceiling(self) -> float:
        return 1.0 / self.tau  # QED's own maximum

    def reward_smiles(self, smiles: str) -> float:
        return property_of(smiles, "QED") / self.tau

    @property
    def params(self) -> dict[str, Any]:
        return {"tau": self.tau, "floor": self.floor}

    @property
    def description(self) -> str:
        return f"QED / {self.tau:g}"


@register("sa")
class SAEnergy(MolecularEnergy):
    """``log f = −SA / τ``: synthetic accessibility, 1 (easy) to 10 (hard), lower is rewarded."""

    name = "sa"

    def __init__(self, tokenizer=None, tau: float = 1.0, floor: float | None = None, **kw):
        self.tau = _positive("tau", tau)
        super().__init__(tokenizer, floor, **kw)

    def default_floor(self) -> float:
        return -10.0 / self.tau  # SA's own maximum

    def ceiling(self) -> float:
        return -1.0 / self.tau  # SA's own minimum

    def reward_smiles(self, smiles: str) -> float:
        return -property_of(smiles, "SA") / self.tau

    @property
    def params(self) -> dict[str, Any]:
        return {"tau": self.tau, "floor": self.floor}

    @property
    def description(self) -> str:
        return f"−SA / {self.tau:g}"


@register("mol_weight")
class MolWeightWindowEnergy(MolecularEnergy):
    """Flat inside ``[low, high]`` Da, quadratic outside: ``log f = −(distance / scale)² / τ``."""

    name = "mol_weight"

    def __init__(
        self,
        tokenizer=None,
        low: float = 250.0,
        high: float = 450.0,
        scale: float = 50.0,
        tau: float = 1.0,
        floor: float | None = None,
        **kw,
    ):
        self.low, self.high = _finite("low", low), _finite("high", high)
        if self.low > self.high:
            raise ValueError(f"the molecular-weight window is empty: low={self.low} > "
                             f"high={self.high}")
        self.scale = _positive("scale", scale)
        self.tau = _positive("tau", tau)
        super().__init__(tokenizer, floor, **kw)

    def default_floor(self) -> float:
        return -100.0 / self.tau  # 10 scales outside the window

    def ceiling(self) -> float:
        return 0.0  # inside the window

    def reward_smiles(self, smiles: str) -> float:
        mw = property_of(smiles, "MW")
        distance = max(0.0, self.low - mw, mw - self.high)
        return -((distance / self.scale) ** 2) / self.tau

    @property
    def params(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "scale": self.scale, "tau": self.tau,
                "floor": self.floor}

    @property
    def description(self) -> str:
        return f"MW in [{self.low:g}, {self.high:g}] Da (scale {self.scale:g}, τ {self.tau:g})"


@register("substructure")
class SubstructureEnergy(MolecularEnergy):
    """``log f = 0`` when the molecule contains the SMARTS pattern, ``−penalty`` otherwise."""

    name = "substructure"

    def __init__(self, tokenizer=None, smarts: str = "c1ccccc1", penalty: float = 5.0,
                 floor: float | None = None, **kw):
        if not isinstance(smarts, str) or not smarts.strip():
            raise ValueError("substructure needs a non-empty SMARTS pattern")
        pattern = Chem.MolFromSmarts(smarts)
        if pattern is None:
            raise ValueError(f"RDKit cannot parse the SMARTS pattern {smarts!r}")
        self.smarts = smarts
        self.pattern = pattern
        self.penalty = _positive("penalty", penalty)
        super().__init__(tokenizer, floor, **kw)
        self._has = functools.lru_cache(maxsize=200_000)(self._uncached_has)

    def default_floor(self) -> float:
        return -self.penalty

    def ceiling(self) -> float:
        return 0.0  # the pattern is present

    def _uncached_has(self, smiles: str) -> bool:
        mol = mol_from_smiles(smiles)
        return mol is not None and mol.HasSubstructMatch(self.pattern)

    def reward_smiles(self, smiles: str) -> float:
        return 0.0 if self._has(smiles) else -self.penalty

    @property
    def params(self) -> dict[str, Any]:
        return {"smarts": self.smarts, "penalty": self.penalty, "floor": self.floor}

    @property
    def description(self) -> str:
        return f"contains {self.smarts} (else −{self.penalty:g})"


@register("weighted_sum")
class WeightedSumEnergy(MolecularEnergy):
    """``log f = Σ_k w_k · log f_k``: a weighted sum of other molecular energies.

    The default floor is the worst the sum can be: each term at its floor, or at its ceiling when
    its weight is negative. Taking ``w · floor`` for a negative weight would put the floor above
    every valid molecule and give them all the same ``log f``.

    Args:
        terms: ``[{"name": "qed", "weight": 1.0, **params}, ...]`` (plain data, so a config or the
            app can describe it) or ``[(weight, energy), ...]`` with built energies.
    """

    name = "weighted_sum"

    def __init__(self, tokenizer=None, terms: Sequence = (), floor: float | None = None, **kw):
        built: list[tuple[float, MolecularEnergy]] = []
        for term in terms:
            if isinstance(term, dict):
                spec = dict(term)
                name = spec.pop("name", None)
                weight = _finite("weight", spec.pop("weight", 1.0))
                known = name in ENERGIES and name != "weighted_sum"
                if not known or not issubclass(ENERGIES[name], MolecularEnergy):
                    valid = [n for n in MOLECULAR_ENERGIES if n != "weighted_sum"]
                    raise ValueError(f"unknown molecular energy {name!r} in weighted_sum; valid: "
                                     f"{valid}")
                built.append((weight, ENERGIES[name](tokenizer=tokenizer, **spec)))
            else:
                weight, energy = term
                if not isinstance(energy, MolecularEnergy):
                    raise TypeError("weighted_sum terms must be molecular energies, got "
                                    f"{type(energy).__name__}")
                built.append((_finite("weight", weight), energy))
        if not built:
            raise ValueError("weighted_sum needs at least one term")
        self.terms = built
        super().__init__(tokenizer, floor, **kw)

    def default_floor(self) -> float:
        floor = sum(w * (e.floor if w >= 0 else e.ceiling()) for w, e in self.terms if w != 0)
        if not math.isfinite(floor):
            raise ValueError("weighted_sum: a negative weight on an energy with no largest value "
                             "leaves the sum unbounded below; pass floor=")
        return floor

    def ceiling(self) -> float:
        return sum(w * (e.ceiling() if w >= 0 else e.floor) for w, e in self.terms if w != 0)

    def reward_smiles(self, smiles: str) -> float:
        return sum(w * e.log_f_smiles(smiles) for w, e in self.terms)

    @property
    def params(self) -> dict[str, Any]:
        terms = [{"name": e.name, "weight": w, **e.params} for w, e in self.terms]
        return {"terms": terms, "floor": self.floor}

    @property
    def description(self) -> str:
        return " + ".join(f"{w:g}·[{e.description}]" for w, e in self.terms)
