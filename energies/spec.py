"""The reward specification: what to reward, written once as plain data, for CLI, app and Python.

A reward is described the same way wherever it is asked for — ``mam train-eb --reward-spec
FILE``, the Fine-tune page (its widgets write this dict, and it accepts an uploaded file) and
:func:`energies.reward.build_reward` in Python — so a reward tried in the app can be saved and
rerun from the command line with the same numbers. The format follows REINVENT4's scoring
components: each component computes a molecular property, a transform maps it to a score
(:mod:`energies.transforms`), a weight says how much it matters, and the weighted scores are
aggregated into one score ``S``. The energy the trainers see is ``log f = S / temperature``
(REINVENT4's ``σ · S`` with ``σ = 1 / temperature``).

In TOML (a JSON file or a dict holds the same keys)::

    aggregate = "sum"        # weighted arithmetic mean; "product": weighted geometric mean
    temperature = 0.1        # log f = S / temperature
    # floor = -1.0           # log f of invalid molecules; default: the worst score possible

    [[components]]
    kind = "logp"
    weight = 1.0
    transform = { type = "window", low = 1.0, high = 3.0, width = 0.5 }

    [[components]]
    kind = "qed"             # in [0, 1] already: the transform defaults to identity

    [[components]]
    kind = "smarts"
    smarts = "C(=O)N"        # 1 when the molecule contains the pattern, else 0
    weight = 0.5

Component kinds are the keys of :data:`KINDS`. ``"sum"`` divides by the sum of absolute
weights, so a negative weight penalises a component; ``"product"`` needs weights >= 0 and scores
>= 0. Invalid molecules get ``floor``, by default the lowest ``log f`` a valid molecule can reach
(with negative weights, reached at the component's best score), so an invalid molecule is never
preferred to a valid one and no valid molecule is clipped.

Everything is checked when the spec is made: unknown keys are refused with the key and the
allowed ones named, and wrong types, empty windows, non-positive widths or temperatures and
unknown kinds raise :class:`ValueError` saying where.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from energies.transforms import Transform, check_number

__all__ = [
    "ComponentKind",
    "KINDS",
    "AGGREGATES",
    "ComponentSpec",
    "RewardSpec",
    "load_reward_spec",
    "parse_reward_spec",
]


@dataclass(frozen=True)
class ComponentKind:
    """What a component kind measures: its label, the property behind it and its raw range."""

    label: str
    property: str | None  # key of mam_core.chem.properties.PROPERTIES; None: a SMARTS match
    low: float
    high: float


KINDS: dict[str, ComponentKind] = {
    "logp": ComponentKind("logP", "logP", -math.inf, math.inf),
    "qed": ComponentKind("QED", "QED", 0.0, 1.0),
    "sa": ComponentKind("SA", "SA", 1.0, 10.0),
    "mw": ComponentKind("MW", "MW", 0.0, math.inf),
    "rings": ComponentKind("rings", "rings", 0.0, math.inf),
    "smarts": ComponentKind("SMARTS match", None, 0.0, 1.0),
}
"""Component kinds by the name a spec uses."""

#: Aggregates and what they compute from the weighted scores.
AGGREGATES = {"sum": "weighted mean", "product": "weighted geometric mean"}

_SPEC_KEYS = ("components", "aggregate", "temperature", "floor")
_COMPONENT_KEYS = ("kind", "weight", "transform", "smarts", "name")


def _refuse_unknown(data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")


@dataclass(frozen=True)
class ComponentSpec:
    """One scored property: ``weight × transform(property(molecule))``."""

    kind: str
    weight: float = 1.0
    transform: Transform = field(default_factory=Transform)
    smarts: str | None = None
    name: str | None = None  # a label for descriptions; the kind's label otherwise
    where: str = field(default="component", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ValueError(f"{self.where}: unknown kind {self.kind!r}; allowed: "
                             f"{', '.join(KINDS)}")
        object.__setattr__(self, "weight", check_number(self.where, "weight", self.weight))
        if not isinstance(self.transform, Transform):
            object.__setattr__(self, "transform",
                               Transform.from_dict(self.transform, f"{self.where} transform"))
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ValueError(f"{self.where}: 'name' must be a non-empty string, got "
                             f"{self.name!r}")
        if self.kind == "smarts":
            _check_smarts(self.smarts, self.where)
        elif self.smarts is not None:
            raise ValueError(f"{self.where}: 'smarts' belongs to kind \"smarts\" only, not "
                             f"{self.kind!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "component") -> ComponentSpec:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be a table with at least 'kind', got {data!r}")
        _refuse_unknown(data, _COMPONENT_KEYS, where)
        if "kind" not in data:
            raise ValueError(f"{where}: 'kind' is missing; one of {', '.join(KINDS)}")
        kind = data["kind"]
        if isinstance(kind, str) and kind in KINDS:
            where = f"{where} ({kind})"
        transform = Transform.from_dict(data.get("transform"), f"{where} transform")
        return cls(kind=kind, weight=data.get("weight", 1.0), transform=transform,
                   smarts=data.get("smarts"), name=data.get("name"), where=where)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.name is not None:
            out["name"] = self.name
        if self.smarts is not None:
            out["smarts"] = self.smarts
        out["weight"] = self.weight
        out["transform"] = self.transform.to_dict()
        return out

    def score_range(self) -> tuple[float, float]:
        """Bounds of the transformed score over all valid molecules."""
        kind = KINDS[self.kind]
        return self.transform.output_range(kind.low, kind.high)

    def describe(self) -> str:
        label = self.name or (f"has {self.smarts}" if self.kind == "smarts"
                              else KINDS[self.kind].label)
        return f"{self.weight:g}×{self.transform.describe(label)}"


def _check_smarts(smarts: Any, where: str) -> None:
    if not isinstance(smarts, str) or not smarts.strip():
        raise ValueError(f"{where}: kind \"smarts\" needs a non-empty SMARTS pattern in 'smarts'")
    from rdkit import Chem

    if Chem.MolFromSmarts(smarts) is None:
        raise ValueError(f"{where}: RDKit cannot parse the SMARTS pattern {smarts!r}")


@dataclass(frozen=True)
class RewardSpec:
    """A whole reward: components, how their scores are aggregated, temperature and floor."""

    components: tuple[ComponentSpec, ...]
    aggregate: str = "sum"
    temperature: float = 1.0
    floor: float | None = None

    def __post_init__(self) -> None:
        components = self.components
        if isinstance(components, (str, bytes, Mapping)) or not isinstance(components, Sequence):
            raise ValueError(f"'components' must be a list of tables, got {components!r}")
        components = tuple(
            c if isinstance(c, ComponentSpec)
            else ComponentSpec.from_dict(c, f"component {i + 1}")
            for i, c in enumerate(components)
        )
        object.__setattr__(self, "components", components)
        if not components:
            raise ValueError("a reward spec needs at least one component in 'components'")
        if not isinstance(self.aggregate, str) or self.aggregate not in AGGREGATES:
            raise ValueError(f"unknown aggregate {self.aggregate!r}; allowed: "
                             f"{', '.join(AGGREGATES)}")
        temperature = check_number("reward spec", "temperature", self.temperature)
        if temperature <= 0:
            raise ValueError(f"reward spec: 'temperature' must be > 0, got {temperature:g}")
        object.__setattr__(self, "temperature", temperature)
        if self.floor is not None:
            object.__setattr__(self, "floor", check_number("reward spec", "floor", self.floor))
        if not any(c.weight != 0 for c in components):
            raise ValueError("reward spec: every weight is 0; give at least one component a "
                             "weight")
        if self.aggregate == "product":
            self._check_product()
        if self.floor is None and not math.isfinite(self.score_range()[0]):
            unbounded = [c.where for c in components if not math.isfinite(c.score_range()[0])
                         or not math.isfinite(c.score_range()[1])]
            raise ValueError(f"reward spec: {', '.join(unbounded)} can score without bound "
                             "(identity transform); give it a transform (sigmoid, "
                             "reverse_sigmoid, step, window) or set 'floor'")

    def _check_product(self) -> None:
        for c in self.components:
            if c.weight < 0:
                raise ValueError(f"{c.where}: the product aggregate needs weights >= 0, got "
                                 f"{c.weight:g}; reward low values with reverse_sigmoid instead")
            if c.score_range()[0] < 0:
                raise ValueError(f"{c.where}: the product aggregate needs scores >= 0, but the "
                                 f"{c.transform.type} transform of {c.kind} can be negative; "
                                 "give it a transform (sigmoid, window, ...)")

    # --- data in and out ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RewardSpec:
        """A checked spec from plain data (what a TOML or JSON file holds)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a reward spec must be a table (dict), got {type(data).__name__}")
        _refuse_unknown(data, _SPEC_KEYS, "reward spec")
        if "components" not in data:
            raise ValueError("reward spec: 'components' is missing (a list of tables with "
                             "'kind', 'weight', 'transform')")
        return cls(components=data["components"], aggregate=data.get("aggregate", "sum"),
                   temperature=data.get("temperature", 1.0), floor=data.get("floor"))

    def to_dict(self) -> dict[str, Any]:
        """Plain data with every default written out; :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {"aggregate": self.aggregate, "temperature": self.temperature}
        if self.floor is not None:
            out["floor"] = self.floor
        out["components"] = [c.to_dict() for c in self.components]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_toml(self) -> str:
        """The spec as a TOML document (the standard library reads TOML but does not write it)."""
        data = self.to_dict()
        lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if k != "components"]
        for component in data["components"]:
            lines += ["", "[[components]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in component.items()]
        return "\n".join(lines) + "\n"

    # --- what the spec computes ---------------------------------------------------------------
    def aggregate_scores(self, scores: Sequence[float]) -> float:
        """``S`` from the components' transformed scores, in component order (NaN if any is)."""
        weights = [c.weight for c in self.components]
        if len(scores) != len(weights):
            raise ValueError(f"expected {len(weights)} scores, got {len(scores)}")
        used = [(w, float(s)) for w, s in zip(weights, scores) if w != 0]
        if any(math.isnan(s) for _, s in used):
            return math.nan
        if self.aggregate == "sum":
            return sum(w * s for w, s in used) / sum(abs(w) for w, _ in used)
        total = sum(w for w, _ in used)
        if any(s == 0.0 for _, s in used):
            return 0.0
        return math.prod(s ** (w / total) for w, s in used)

    def score_range(self) -> tuple[float, float]:
        """Lowest and highest ``S`` any valid molecule can get (infinite when unbounded)."""
        ranges = [(c.weight, *c.score_range()) for c in self.components if c.weight != 0]
        if self.aggregate == "sum":
            norm = sum(abs(w) for w, _, _ in ranges)
            low = sum(w * (lo if w > 0 else hi) for w, lo, hi in ranges) / norm
            high = sum(w * (hi if w > 0 else lo) for w, lo, hi in ranges) / norm
            return low, high
        total = sum(w for w, _, _ in ranges)
        low = math.prod(lo ** (w / total) for w, lo, _ in ranges)
        high = math.prod(hi ** (w / total) for w, _, hi in ranges)
        return low, high

    def default_floor(self) -> float:
        """``log f`` of invalid molecules when ``floor`` is not set: the lowest a valid one gets."""
        return self.score_range()[0] / self.temperature

    def describe(self) -> str:
        parts = ", ".join(c.describe() for c in self.components)
        return f"{AGGREGATES[self.aggregate]} of [{parts}] / τ {self.temperature:g}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value))
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _read_toml(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ValueError("reading a TOML reward spec needs Python 3.11+ or the 'tomli' "
                             "package; use a JSON file otherwise") from None
    return tomllib.loads(text)


def parse_reward_spec(text: str, fmt: str) -> RewardSpec:
    """A checked spec from the text of a file; ``fmt`` is ``"toml"`` or ``"json"``."""
    if fmt == "toml":
        try:
            data = _read_toml(text)
        except ValueError as err:  # tomllib.TOMLDecodeError is a ValueError
            raise ValueError(f"the reward spec is not valid TOML: {err}") from None
    elif fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"the reward spec is not valid JSON: {err}") from None
    else:
        raise ValueError(f"unknown reward spec format {fmt!r}; allowed: toml, json")
    return RewardSpec.from_dict(data)


def load_reward_spec(source: RewardSpec | Mapping[str, Any] | str | os.PathLike) -> RewardSpec:
    """A checked spec from a spec, a dict, or a ``.toml`` / ``.json`` file path."""
    if isinstance(source, RewardSpec):
        return source
    if isinstance(source, Mapping):
        return RewardSpec.from_dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"a reward spec is a RewardSpec, a dict or a file path, got "
                         f"{type(source).__name__}")
    path = Path(source)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("toml", "json"):
        raise ValueError(f"{path}: a reward spec file ends in .toml or .json")
    if not path.is_file():
        raise ValueError(f"reward spec file not found: {path}")
    try:
        return parse_reward_spec(path.read_text(encoding="utf-8"), fmt)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
