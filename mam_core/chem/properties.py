"""Molecular properties from SMILES: logP, QED, SA score and molecular weight.

Why this module exists: the energies, the evaluation report and the app all need the same few
RDKit descriptors of the same molecules, and they must agree on what "cannot be scored" means.
Here that is decided once:

* a string RDKit cannot parse (or an empty one, or a non-string) is **missing** and scores NaN,
  never a silent 0 and never an exception; turning NaN into a finite training penalty is the
  energy's job, not this module's;
* a molecule already scored is not scored again: :func:`property_of` keeps an LRU cache of
  200,000 (SMILES, property) pairs, because sampling revisits the same molecules often and QED
  alone costs about 1 ms per molecule on one core.

Nothing here uses torch.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import os
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Iterable, Literal, Sequence

import pandas as pd
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors, RDConfig

# Validity is decided in one place for the whole project; re-exported here for callers.
from .rdkit_utils import is_valid, mol_from_smiles

__all__ = [
    "PropertySpec",
    "PROPERTIES",
    "mol_from_smiles",
    "is_valid",
    "logp",
    "qed",
    "sa_score",
    "mol_weight",
    "property_of",
    "compute_properties",
]

log = logging.getLogger(__name__)


# --- property functions on a parsed molecule --------------------------------------------------


def logp(mol: Chem.Mol) -> float:
    """Octanol–water partition coefficient estimated by Crippen's atom contributions.

    Wildman & Crippen, J. Chem. Inf. Comput. Sci. 39, 868 (1999); RDKit's ``MolLogP``.

    Args:
        mol: A sanitised RDKit molecule.

    Returns:
        logP (dimensionless, log10 of a concentration ratio); benzene gives 1.6866.
    """
    return float(Crippen.MolLogP(mol))


def qed(mol: Chem.Mol) -> float:
    """Quantitative estimate of drug-likeness (Bickerton et al., Nat. Chem. 4, 90 (2012)).

    Args:
        mol: A sanitised RDKit molecule.

    Returns:
        QED in [0, 1], higher is more drug-like; aspirin gives about 0.55.
    """
    return float(QED.qed(mol))


_SA_LOCK = threading.Lock()
_SASCORER: ModuleType | None = None


class _SAScoreUnavailable(RuntimeError):
    """RDKit's Contrib SA_Score module is not where RDKit says it should be."""


def _sascorer() -> ModuleType:
    """Load RDKit's ``Contrib/SA_Score/sascorer.py`` once, on first use.

    The module is not importable as a package, so it is loaded from its file. The lock keeps two
    threads (e.g. two Streamlit sessions) from loading it twice.
    """
    global _SASCORER
    if _SASCORER is not None:
        return _SASCORER
    with _SA_LOCK:
        if _SASCORER is None:
            path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
            if not os.path.isfile(path):
                raise _SAScoreUnavailable(
                    f"SA score needs RDKit's Contrib/SA_Score/sascorer.py, not found at {path}; "
                    "install an RDKit build that ships Contrib (the PyPI 'rdkit' wheel does)"
                )
            spec = importlib.util.spec_from_file_location("_rdkit_contrib_sascorer", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            module.readFragmentScores()  # read fpscores.pkl.gz now, also under the lock
            _SASCORER = module
    return _SASCORER


def sa_score(mol: Chem.Mol) -> float:
    """Synthetic accessibility score of Ertl & Schuffenhauer (2009).

    P. Ertl and A. Schuffenhauer, "Estimation of synthetic accessibility score of drug-like
    molecules based on molecular complexity and fragment contributions", J. Cheminform. 1, 8
    (2009). Uses RDKit's Contrib implementation (``sascorer.py``), loaded lazily once.

    Args:
        mol: A sanitised RDKit molecule.

    Returns:
        SA score from 1 (easy to make) to 10 (hard); aspirin gives about 1.58.

    Raises:
        RuntimeError: If RDKit's Contrib ``SA_Score`` directory is missing.
    """
    value = _sascorer().calculateScore(mol)
    return math.nan if value is None else float(value)


def mol_weight(mol: Chem.Mol) -> float:
    """Average molecular weight, including implicit hydrogens.

    Args:
        mol: A sanitised RDKit molecule.

    Returns:
        Molecular weight in daltons (g/mol); aspirin gives 180.16.
    """
    return float(Descriptors.MolWt(mol))


def ring_count(mol: Chem.Mol) -> float:
    """Number of rings (SSSR); MOSES molecules mostly have 2-4."""
    return float(mol.GetRingInfo().NumRings())


# --- registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PropertySpec:
    """A molecular property as the app and the reports show it.

    Attributes:
        name: Short key used in configs and DataFrame columns (``"QED"``).
        label: What a chemist reads on an axis or a table header.
        fn: ``Mol -> float``; may assume a sanitised, non-empty molecule.
        description: One sentence for tooltips.
        better: Which direction is usually desirable: ``"higher"``, ``"lower"``, or
            ``"neither"`` when a target range matters more than a direction.
    """

    name: str
    label: str
    fn: Callable[[Chem.Mol], float]
    description: str
    better: Literal["higher", "lower", "neither"]


PROPERTIES: dict[str, PropertySpec] = {
    "logP": PropertySpec(
        name="logP",
        label="logP (Crippen)",
        fn=logp,
        description="Octanol–water partition coefficient (lipophilicity); oral drugs mostly lie "
        "between 1 and 3, benchmarks often maximise it.",
        better="higher",
    ),
    "QED": PropertySpec(
        name="QED",
        label="QED (0–1, drug-likeness)",
        fn=qed,
        description="Quantitative estimate of drug-likeness (Bickerton et al. 2012).",
        better="higher",
    ),
    "SA": PropertySpec(
        name="SA",
        label="SA score (1 easy – 10 hard)",
        fn=sa_score,
        description="Synthetic accessibility (Ertl & Schuffenhauer 2009); lower is easier to make.",
        better="lower",
    ),
    "MW": PropertySpec(
        name="MW",
        label="Molecular weight (Da)",
        fn=mol_weight,
        description="Average molecular weight; drug-like molecules are mostly under 500 Da.",
        better="neither",
    ),
    "rings": PropertySpec(
        name="rings",
        label="Rings",
        fn=ring_count,
        description="Number of rings (smallest set of smallest rings).",
        better="neither",
    ),
}
"""The properties this module can compute, by name."""


def _check_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in PROPERTIES]
    if unknown:
        raise ValueError(f"unknown property {unknown!r}; valid names: {sorted(PROPERTIES)}")
    return names


@functools.lru_cache(maxsize=200_000)
def property_of(smiles: str, name: str) -> float:
    """One property of one molecule, NaN if the molecule cannot be scored.

    Results are cached on the raw ``(smiles, name)`` pair (about 200k entries, a few tens of MB).
    The key is the string as given rather than its canonical form: canonicalising would cost a
    parse on every call, which is the very work the cache saves, and a model decodes the same
    molecule to the same string. Inspect or reset with ``property_of.cache_info()`` and
    ``property_of.cache_clear()``.

    Args:
        smiles: A SMILES string; invalid, empty or non-string input gives NaN.
        name: A key of :data:`PROPERTIES` (``"logP"``, ``"QED"``, ``"SA"``, ``"MW"``).

    Returns:
        The property value, or NaN if the SMILES does not parse or RDKit fails on the molecule.

    Raises:
        ValueError: If ``name`` is not a known property (the message lists the valid names).
        RuntimeError: If the SA score is asked for and RDKit's Contrib SA_Score is missing.
    """
    spec = PROPERTIES[_check_names([name])[0]]
    mol = mol_from_smiles(smiles)
    if mol is None:
        return math.nan
    try:
        return spec.fn(mol)
    except _SAScoreUnavailable:
        raise
    except Exception as err:  # an RDKit failure on one odd molecule must not stop a batch
        log.debug("%s failed on %r: %s", name, smiles, err)
        return math.nan


def compute_properties(
    smiles_list: Sequence[str], names: Sequence[str] = ("logP", "QED", "SA", "MW")
) -> pd.DataFrame:
    """A table of properties for many molecules, in input order.

    Args:
        smiles_list: SMILES strings (a list, tuple or pandas Series); invalid entries are kept.
        names: Property keys of :data:`PROPERTIES`, one output column each.

    Returns:
        A DataFrame with one row per input: ``SMILES`` (as given), ``valid`` (bool, RDKit could
        parse it) and one float column per property, NaN where invalid.

    Raises:
        ValueError: If a name is not a known property.
    """
    names = _check_names(names)
    smiles = list(smiles_list)
    columns: dict[str, list] = {"SMILES": smiles}
    columns["valid"] = [is_valid(s) for s in smiles]
    for name in names:
        columns[name] = [
            property_of(s, name) if ok else math.nan for s, ok in zip(smiles, columns["valid"])
        ]
    frame = pd.DataFrame(columns)
    frame["valid"] = frame["valid"].astype(bool)
    for name in names:
        frame[name] = frame[name].astype(float)
    return frame
