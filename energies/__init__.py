"""Target energies (unnormalised log densities) for energy-based training and evaluation.

Sign and temperature convention, stated once for the whole package:

    Every energy is a callable ``energy(x) -> log f(x)`` with ``x`` an integer tensor ``(B, D)`` of
    token ids in ``0..K-1`` and the result a float tensor ``(B,)``. The returned value is

        log f(x) = reward(x) / tau = -E(x) / T,

    so **larger means more probable**, and the target distribution is ``p*(x) ∝ f(x)``. Callers
    never negate or rescale by a temperature themselves; the temperature lives in the energy's
    params. Classes may offer ``energy(x) = -log f(x)`` as a convenience for physics-style plots.

Energies are registered by name so that configs, the CLI and the app can build them from plain data:

    >>> from energies import get_energy
    >>> ising = get_energy("ising", n=4, sigma=0.1)

Molecular rewards made of several scored properties are written as a reward spec (components,
transforms, weights, an aggregate; :mod:`energies.spec`) and built by :func:`build_reward`, the
one builder the CLI, the app and Python share.

A registered class is constructed as ``cls(**params)``. To add a family, write one module with
classes decorated by ``@register("name")`` and import that module by name at the bottom of this file
(no package scanning).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

__all__ = [
    "ENERGIES",
    "register",
    "get_energy",
    "IsingEnergy",
    "IsingParams",
    "MOLECULAR_ENERGIES",
    "RewardSpec",
    "load_reward_spec",
    "build_reward",
]

ENERGIES: dict[str, type] = {}
"""Registry of energy classes by name; filled by the ``@register`` decorators on import."""

_T = TypeVar("_T", bound=type)


def register(name: str) -> Callable[[_T], _T]:
    """Class decorator that adds an energy class to :data:`ENERGIES` under ``name``.

    Args:
        name: Registry key, used in configs and reward specs (e.g. ``"ising"``, ``"qed"``).

    Returns:
        The decorator, which returns the class unchanged.

    Raises:
        ValueError: If ``name`` is already taken by a different class, because silently
            replacing an energy would make configs mean different things depending on import order.
    """

    def decorator(cls: _T) -> _T:
        existing = ENERGIES.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"energy name {name!r} is already registered to {existing.__qualname__}"
            )
        ENERGIES[name] = cls
        return cls

    return decorator


def get_energy(name: str, **params: Any) -> Any:
    """Build a registered energy by name.

    Args:
        name: Registry key (see :data:`ENERGIES`).
        **params: Keyword arguments forwarded to the class constructor.

    Returns:
        The energy instance, a callable ``x (B, D) -> log f(x) (B,)``.

    Raises:
        ValueError: If ``name`` is unknown; the message lists the valid names.
    """
    try:
        cls = ENERGIES[name]
    except KeyError:
        valid = ", ".join(sorted(ENERGIES)) or "(none registered)"
        raise ValueError(f"unknown energy {name!r}; valid names: {valid}") from None
    return cls(**params)


# Energy families, imported by name so their @register decorators run. Add new modules here.
from energies import ising  # noqa: E402,F401
from energies.ising import IsingEnergy, IsingParams  # noqa: E402
from energies import molecular  # noqa: E402,F401
from energies.molecular import MOLECULAR_ENERGIES  # noqa: E402
from energies.spec import RewardSpec, load_reward_spec  # noqa: E402
from energies.reward import build_reward  # noqa: E402
