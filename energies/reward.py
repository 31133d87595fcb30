"""The one builder from a reward specification to the energy the trainers use.

The CLI (``mam train-eb --reward-spec``), the Fine-tune page and Python all call
:func:`build_reward`, so one spec (:mod:`energies.spec`) gives the same ``log f`` everywhere. The
result is a :class:`~energies.molecular.MolecularEnergy` like the named molecular energies:
``(B, D)`` token ids in, ``(B,)`` ``log f`` out, ``score_smiles`` for SMILES, the invalid-molecule
floor and the caches. Properties come from :func:`mam_core.chem.properties.property_of`, the
same numbers the evaluation report and the app show::

    >>> from energies import build_reward
    >>> reward = build_reward("reward.toml", tokenizer=tok)      # or a dict, or a RewardSpec
    >>> reward.score_smiles(["CCO", "CC(=O)Oc1ccccc1C(=O)O"])
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, Mapping

from rdkit import Chem

from energies.molecular import MolecularEnergy
from energies.spec import KINDS, ComponentSpec, RewardSpec, load_reward_spec
from mam_core.chem.properties import mol_from_smiles, property_of

__all__ = ["SpecReward", "build_reward"]


class SpecReward(MolecularEnergy):
    """``log f = S / temperature`` with ``S`` the aggregated component scores of a spec."""

    name = "reward_spec"

    def __init__(self, spec: RewardSpec, tokenizer=None, cache_size: int = 200_000):
        self.spec = spec
        self._raw = [_raw_property(c, cache_size) for c in spec.components]
        super().__init__(tokenizer, spec.floor, cache_size=cache_size)

    def default_floor(self) -> float:
        return self.spec.default_floor()

    def ceiling(self) -> float:
        return self.spec.score_range()[1] / self.spec.temperature

    def component_scores(self, smiles: str) -> list[float]:
        """Each component's transformed score (NaN where RDKit cannot compute the property)."""
        return [c.transform(raw(smiles)) for c, raw in zip(self.spec.components, self._raw)]

    def reward_smiles(self, smiles: str) -> float:
        return self.spec.aggregate_scores(self.component_scores(smiles)) / self.spec.temperature

    @property
    def params(self) -> dict[str, Any]:
        """The spec as plain data: what a run records, and what :func:`build_reward` reads."""
        return self.spec.to_dict()

    @property
    def description(self) -> str:
        return self.spec.describe()


def _raw_property(component: ComponentSpec, cache_size: int) -> Callable[[str], float]:
    """``smiles -> raw value`` of one component (cached by :func:`property_of` or here)."""
    prop = KINDS[component.kind].property
    if prop is not None:
        return lambda smiles: property_of(smiles, prop)
    pattern = Chem.MolFromSmarts(component.smarts)

    @functools.lru_cache(maxsize=cache_size)
    def has_match(smiles: str) -> float:
        mol = mol_from_smiles(smiles)
        return math.nan if mol is None else float(mol.HasSubstructMatch(pattern))

    return has_match


def build_reward(spec: RewardSpec | Mapping[str, Any] | str | os.PathLike, tokenizer=None,
                 cache_size: int = 200_000) -> SpecReward:
    """The energy for a reward spec: a :class:`RewardSpec`, its dict, or a .toml / .json path.

    Args:
        spec: what to reward (checked; see :mod:`energies.spec` for the format).
        tokenizer: the tokenizer of the model being trained; ``None`` scores SMILES only.
        cache_size: token rows (and SMARTS matches) whose values are remembered.

    Raises:
        ValueError: if the spec is invalid; the message names the key or value at fault.
    """
    return SpecReward(load_reward_spec(spec), tokenizer=tokenizer, cache_size=cache_size)
