"""Score transforms: a raw molecular property → a score, in [0, 1] for every shape but identity.

Properties live on different scales (logP around 0–5, molecular weight in hundreds of daltons,
SA from 1 to 10). Mapping each onto [0, 1] before weighting makes a weight mean "how much this
matters" rather than "what unit this is in", and it lets a chemist say what they actually ask
for: "logP between 1 and 3", "SA below 4". The shapes and their parameters follow REINVENT4's
scoring transforms so that its users recognise them:

* ``identity`` — the raw value, unchanged (QED and SMARTS matches are already in [0, 1]);
* ``sigmoid`` — rises from 0 to 1 between ``low`` and ``high``, exactly 0.5 half-way; ``k`` sets
  the steepness (REINVENT4's formula ``1 / (1 + 10^(10k (x − mid) / (low − high)))``);
* ``reverse_sigmoid`` — the mirror image, 1 for low values, for properties to keep small;
* ``step`` — 1 inside ``[low, high]`` (either side may be left open), 0 outside;
* ``window`` — 1 inside ``[low, high]``, falling smoothly outside as ``0.5^((d / width)²)`` with
  ``d`` the distance to the window: the score halves ``width`` away from an edge.

A transform is plain data (:meth:`Transform.from_dict` / :meth:`Transform.to_dict`) and is checked
when it is made: an unknown type or parameter, a missing one, an empty window or a width that is
not positive raises :class:`ValueError` naming what is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Transform", "TRANSFORM_PARAMETERS", "check_number"]

_REQUIRED = object()

#: Parameters each transform type takes, with their defaults (``_REQUIRED``: no default).
TRANSFORM_PARAMETERS: dict[str, dict[str, Any]] = {
    "identity": {},
    "sigmoid": {"low": _REQUIRED, "high": _REQUIRED, "k": 0.5},
    "reverse_sigmoid": {"low": _REQUIRED, "high": _REQUIRED, "k": 0.5},
    "step": {"low": None, "high": None},
    "window": {"low": _REQUIRED, "high": _REQUIRED, "width": _REQUIRED},
}

# 10 ** 300 still fits a float; past it the sigmoid is 0 or 1 to double precision anyway.
_MAX_EXPONENT = 300.0


def check_number(where: str, key: str, value: Any) -> float:
    """``value`` as a finite float, or a ``ValueError`` naming ``where`` and ``key``.

    Booleans are refused although Python counts them as integers: ``low = true`` in a spec file is
    a mistake, not the number 1.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: {key!r} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where}: {key!r} must be finite, got {value!r}")
    return value


@dataclass(frozen=True)
class Transform:
    """One score transform; call it on a raw property value to get the score.

    Unused parameters stay ``None``; :meth:`from_dict` is the checked way to build one from data,
    and direct construction is checked the same way.
    """

    type: str = "identity"
    low: float | None = None
    high: float | None = None
    k: float | None = None
    width: float | None = None
    # what error messages call it; not part of the data
    where: str = field(default="transform", compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type not in TRANSFORM_PARAMETERS:
            raise ValueError(f"{self.where}: unknown transform type {self.type!r}; allowed: "
                             f"{', '.join(TRANSFORM_PARAMETERS)}")
        allowed = TRANSFORM_PARAMETERS[self.type]
        for key in ("low", "high", "k", "width"):
            value = getattr(self, key)
            if key not in allowed:
                if value is not None:
                    raise ValueError(f"{self.where}: {self.type} takes no {key!r}; allowed: "
                                     f"{_allowed_keys(self.type)}")
                continue
            if value is None:
                value = allowed[key]
                if value is _REQUIRED:
                    raise ValueError(f"{self.where}: {self.type} needs {key!r}")
            if value is not None:
                object.__setattr__(self, key, check_number(self.where, key, value))
        self._check_shape()

    def _check_shape(self) -> None:
        t, low, high = self.type, self.low, self.high
        if t in ("sigmoid", "reverse_sigmoid"):
            if not low < high:
                raise ValueError(f"{self.where}: {t} needs low < high, got low={low:g}, "
                                 f"high={high:g}")
            if self.k <= 0:
                raise ValueError(f"{self.where}: {t} needs k > 0, got {self.k:g}")
        elif t == "step":
            if low is None and high is None:
                raise ValueError(f"{self.where}: step needs 'low', 'high' or both")
            if low is not None and high is not None and low > high:
                raise ValueError(f"{self.where}: the step window is empty: low={low:g} > "
                                 f"high={high:g}")
        elif t == "window":
            if low > high:
                raise ValueError(f"{self.where}: the window is empty: low={low:g} > high={high:g}")
            if self.width <= 0:
                raise ValueError(f"{self.where}: window needs width > 0, got {self.width:g}")

    # --- data in and out ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "transform") -> Transform:
        """A checked transform from ``{"type": ..., **parameters}``; ``None`` is identity."""
        if data is None:
            return cls(where=where)
        if isinstance(data, Transform):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be a table like {{type = \"sigmoid\", low = 1, "
                             f"high = 3}}, got {data!r}")
        kind = data.get("type", "identity")
        if not isinstance(kind, str) or kind not in TRANSFORM_PARAMETERS:
            raise ValueError(f"{where}: unknown transform type {kind!r}; allowed: "
                             f"{', '.join(TRANSFORM_PARAMETERS)}")
        unknown = sorted(set(data) - {"type"} - set(TRANSFORM_PARAMETERS[kind]))
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} for a {kind} transform; "
                             f"allowed: {_allowed_keys(kind)}")
        params = {k: v for k, v in data.items() if k != "type"}
        return cls(type=kind, where=where, **params)

    def to_dict(self) -> dict[str, Any]:
        """``{"type": ..., **parameters}`` with defaults filled in; :meth:`from_dict` reads it."""
        out: dict[str, Any] = {"type": self.type}
        for key in TRANSFORM_PARAMETERS[self.type]:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    # --- values -------------------------------------------------------------------------------
    def __call__(self, x: float) -> float:
        """The score of raw value ``x`` (NaN stays NaN: the molecule could not be scored)."""
        x = float(x)
        if math.isnan(x) or self.type == "identity":
            return x
        if self.type in ("sigmoid", "reverse_sigmoid"):
            span = self.low - self.high if self.type == "sigmoid" else self.high - self.low
            exponent = 10.0 * self.k * (x - 0.5 * (self.low + self.high)) / span
            exponent = min(max(exponent, -_MAX_EXPONENT), _MAX_EXPONENT)
            return 1.0 / (1.0 + 10.0**exponent)
        if self.type == "step":
            above = self.low is None or x >= self.low
            below = self.high is None or x <= self.high
            return 1.0 if above and below else 0.0
        distance = max(0.0, self.low - x, x - self.high)  # window
        return 0.5 ** ((distance / self.width) ** 2)

    def output_range(self, low: float, high: float) -> tuple[float, float]:
        """Bounds of the score for raw values in ``[low, high]`` (identity passes them on)."""
        return (low, high) if self.type == "identity" else (0.0, 1.0)

    def describe(self, what: str) -> str:
        """A short formula-like label, e.g. ``window(logP; 1..3, width 0.5)``."""
        if self.type == "identity":
            return what
        parts = []
        if self.low is not None or self.high is not None:
            lo = "" if self.low is None else f"{self.low:g}"
            hi = "" if self.high is None else f"{self.high:g}"
            parts.append(f"{lo}..{hi}")
        if self.k is not None:
            parts.append(f"k {self.k:g}")
        if self.width is not None:
            parts.append(f"width {self.width:g}")
        return f"{self.type}({what}; {', '.join(parts)})"


def _allowed_keys(kind: str) -> str:
    return ", ".join(["type", *TRANSFORM_PARAMETERS[kind]])
