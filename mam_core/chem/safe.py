"""Fragment blocks: a molecule written as dot-separated fragments joined by ring-closure labels.

This is the SAFE idea (Noutahi et al., "Gotta be SAFE: a new framework for molecular design",
Digital Discovery 2024): cut a molecule at its BRICS bonds (Degen et al., ChemMedChem 2008),
write every fragment as a SMILES block, and turn each cut bond into a ring-closure label shared
by the two blocks it joins.  The string is still a valid SMILES (RDKit reads it as it is), but a
fragment is now a *contiguous* run of tokens, so "keep this fragment, grow the rest" becomes
plain infilling: fix the fragment's block, let the model write the other blocks.

Conventions (ours, so that a fixed block means the same thing in training and at design time):

* cut bonds get the two-digit labels ``%10, %11, ...`` in order of first appearance in the
  string, so they never clash with the one-digit ring closures inside a block;
* a fragment's atoms bond to the rest of the molecule only through its labels, which is what
  makes a fixed block a chemical constraint: new atoms attach at its attachment points only;
* the fragment order is canonical (largest block first) unless a random generator is given,
  which training uses to show the model every fragment in every place.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass

from rdkit import Chem
from rdkit.Chem import BRICS

from .rdkit_utils import mol_from_smiles
from .tokenizers.smiles import SMILES_REGEX

__all__ = [
    "FIRST_LABEL",
    "SafeEncodingError",
    "encode",
    "decode",
    "block_mol",
    "block_smiles",
    "block_spans",
    "block_with_labels",
    "BlockOrders",
    "block_orders",
    "block_order_count",
    "renumber_labels",
]

#: First ring-closure number used for cut bonds; block-internal rings use 1..9.
FIRST_LABEL = 10
_MAX_LABEL = 99

# The atom-level SMILES tokeniser's own pattern: blocks are tokenised exactly as models read them.
_TOKEN = re.compile(SMILES_REGEX)
_DUMMY = re.compile(r"^\[(\d*)\*\]$")
_BONDS = {"-", "=", "#", ":", "/", "\\"}
# One substructure query instead of a Python loop over atoms (RDKit's atom sequence wrapper is
# the slowest part of encoding in pure Python).
_ANY_DUMMY = Chem.MolFromSmarts("[#0]")


class SafeEncodingError(ValueError):
    """A molecule could not be written as fragment blocks (the message says why)."""


def _label(n: int) -> str:
    return f"%{n}"


def _is_atom(tok: str) -> bool:
    return (tok[0] == "[" or tok[0].isalpha()) and not _DUMMY.match(tok)


def block_with_labels(mol: Chem.Mol, labels: dict[int, int]) -> str:
    """SMILES of one fragment whose dummy atoms become ring-closure labels on their neighbours.

    Args:
        mol: a connected fragment; dummy atoms (atomic number 0, degree 1) mark cut bonds.
        labels: dummy atom index -> label number (``>= 10``).
    Raises:
        SafeEncodingError: a dummy atom is bonded to more than one atom, or the fragment is
            only dummies.
    """
    dummies = _dummy_atoms(mol)
    roots = [i for i in range(mol.GetNumAtoms()) if i not in dummies]
    if not roots:
        raise SafeEncodingError("a fragment made only of attachment points")
    for d in dummies:
        if mol.GetAtomWithIdx(d).GetDegree() != 1:
            raise SafeEncodingError("an attachment point must be bonded to exactly one atom")
    ranks = list(Chem.CanonicalRankAtoms(mol, breakTies=True))
    root = min(roots, key=lambda i: ranks[i])
    # Dummy atoms are written with their label as isotope so each can be found again.
    work = Chem.RWMol(mol)
    for d in dummies:
        a = work.GetAtomWithIdx(d)
        a.SetIsotope(labels[d])
        a.SetAtomMapNum(0)
    text = Chem.MolToSmiles(work, rootedAtAtom=root, canonical=True)
    toks = _TOKEN.findall(text)
    if "".join(toks) != text:
        raise SafeEncodingError(f"could not tokenise fragment {text!r}")
    return _move_dummies(toks)


def _dummy_atoms(mol: Chem.Mol) -> set[int]:
    """Indices of the dummy atoms (attachment points) of a molecule or fragment."""
    return {m[0] for m in mol.GetSubstructMatches(_ANY_DUMMY, uniquify=False, maxMatches=10_000)}


def _move_dummies(toks: list[str]) -> str:
    """Replace every ``[N*]`` token by the label ``%N`` written right after its atom."""
    out: list[list[str]] = [[t] for t in toks]  # per token: what to print in its place
    for i, t in enumerate(toks):
        m = _DUMMY.match(t)
        if not m:
            continue
        lab = _label(int(m.group(1)))
        bond = ""
        j = i - 1
        if j >= 0 and toks[j] in _BONDS:
            bond = toks[j]
            out[j] = []
            j -= 1
        if j >= 0 and toks[j] == "(" and i + 1 < len(toks) and toks[i + 1] == ")":
            # "X(-[N*])": a branch holding only the dummy: drop the parentheses.
            out[j] = []
            out[i + 1] = []
            j -= 1
        # Walk back to the dummy's atom over any closed branches ("X(...)(...)[N*]").
        depth = 0
        while j >= 0:
            if toks[j] == ")":
                depth += 1
            elif toks[j] == "(":
                depth -= 1
            elif depth == 0 and _is_atom(toks[j]):
                break
            j -= 1
        if j < 0 or not _is_atom(toks[j]):
            raise SafeEncodingError("an attachment point without a neighbouring atom")
        # Insert after the atom and its ring-closure digits.
        k = j + 1
        while k < len(toks) and (toks[k].isdigit() or toks[k].startswith("%")) and not out[k] == []:
            k += 1
        out[i] = []
        out[k - 1] = out[k - 1] + [bond + lab] if k - 1 != j else out[j] + [bond + lab]
    return "".join("".join(p) for p in out)


def renumber_labels(text: str) -> str:
    """Relabel cut bonds ``%10, %11, ...`` in order of first appearance."""
    mapping: dict[str, str] = {}

    def sub(m: re.Match) -> str:
        old = m.group(0)
        if old not in mapping:
            mapping[old] = _label(FIRST_LABEL + len(mapping))
        return mapping[old]

    return re.sub(r"%[0-9]{2}", sub, text)


@dataclass(frozen=True)
class BlockOrders:
    """Strings that write one molecule with its blocks in other orders (:func:`block_orders`).

    Attributes:
        strings: distinct strings, drawn uniformly without replacement from all ``count``.
        count: how many distinct strings the block orders give (``n!`` over the number of
            block orders that leave the string as it is).
    """

    strings: list[str]
    count: int

    @property
    def complete(self) -> bool:
        """``True`` when ``strings`` are all ``count`` of them (a sum over them is exact)."""
        return len(self.strings) == self.count


def _order_symmetries(blocks: list[str]) -> int:
    """How many block orders give the same string as ``blocks`` after renumbering: the orders
    that only swap blocks of the same shape (same text up to label numbers) and leave the
    string as it was.  Every string is given by that many orders, so there are ``n!`` over it."""
    shape = [re.sub(r"%[0-9]{2}", "%", b) for b in blocks]
    if len(set(shape)) == len(shape):
        return 1
    text = renumber_labels(".".join(blocks))
    groups = [[i for i, s in enumerate(shape) if s == k] for k in dict.fromkeys(shape)]
    found = 0
    for images in itertools.product(*(itertools.permutations(g) for g in groups)):
        perm = list(range(len(blocks)))
        for g, img in zip(groups, images):
            for src, dst in zip(g, img):
                perm[src] = dst
        found += renumber_labels(".".join(blocks[perm[i]] for i in range(len(blocks)))) == text
    return found


def block_order_count(text: str) -> int:
    """How many distinct strings the block orders of ``text`` give (see :func:`block_orders`)."""
    blocks = text.split(".")
    return math.factorial(len(blocks)) // _order_symmetries(blocks)


def block_orders(text: str, k: int, rng: random.Random | None = None) -> BlockOrders:
    """Up to ``k`` distinct strings of the molecule ``text`` writes, its blocks in other orders.

    A model trained on shuffled fragment orders spreads a molecule's probability over all of
    them, so ``p(molecule)`` is their sum, not the probability of one string: ``log n!`` nats
    apart for ``n`` distinct blocks (about 5 nats for a MOSES molecule).  When there are at most
    ``k`` strings all are returned (the sum is exact), otherwise ``k`` drawn uniformly without
    replacement (for an unbiased estimate of the sum: ``count`` times their mean).

    Args:
        text: a fragment-block string (:func:`encode`), labels numbered by first appearance.
        k: the most strings to return (at least 1).
        rng: draws the orders when there are more than ``k`` (default: seeded with 0).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    blocks = text.split(".")
    n = len(blocks)
    count = block_order_count(text)
    rng = rng or random.Random(0)
    seen: dict[str, None] = {}
    # Every string is given by as many orders as any other (see _order_symmetries), so uniform
    # orders draw uniform strings; with count <= k this collects all of them.
    while len(seen) < min(k, count):
        seen.setdefault(renumber_labels(".".join(rng.sample(blocks, n))), None)
    return BlockOrders(list(seen), count)


def _cut_bonds(mol: Chem.Mol) -> list[int]:
    bonds = []
    for (a, b), _ in BRICS.FindBRICSBonds(mol):
        bond = mol.GetBondBetweenAtoms(a, b)
        if bond is not None and bond.GetBondType() == Chem.BondType.SINGLE and not bond.IsInRing():
            bonds.append(bond.GetIdx())
    return sorted(set(bonds))


def encode(smiles: str | Chem.Mol, rng: random.Random | None = None) -> str:
    """Fragment-block string of a molecule (BRICS cuts; labels ``%10``...).

    Args:
        smiles: a SMILES string or an RDKit molecule (stereo is kept when present).
        rng: shuffles the fragment order when given (training augmentation); otherwise the
            order is canonical, so one molecule always gives one string.
    Raises:
        SafeEncodingError: RDKit cannot parse the input, it has more than 90 cut bonds, or
            the blocks do not decode back to the same molecule.
    """
    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else smiles
    if mol is None:
        raise SafeEncodingError(f"RDKit cannot parse {smiles!r}")
    if mol.HasSubstructMatch(_ANY_DUMMY):
        raise SafeEncodingError("the molecule already has attachment points")
    want = Chem.MolToSmiles(mol)
    bonds = _cut_bonds(mol)
    if len(bonds) > _MAX_LABEL - FIRST_LABEL:
        raise SafeEncodingError(f"too many cut bonds ({len(bonds)})")
    if not bonds:
        text = Chem.MolToSmiles(mol)
        if "%" in text:
            raise SafeEncodingError("more than nine open rings in one block")
        return text
    labels = [(FIRST_LABEL + i, FIRST_LABEL + i) for i in range(len(bonds))]
    pieces = Chem.FragmentOnBonds(mol, bonds, addDummies=True, dummyLabels=labels)
    blocks = []
    for frag in Chem.GetMolFrags(pieces, asMols=True, sanitizeFrags=False):
        lab = {d: frag.GetAtomWithIdx(d).GetIsotope() for d in _dummy_atoms(frag)}
        blocks.append(block_with_labels(frag, lab))
    if rng is not None:
        rng.shuffle(blocks)
    else:
        blocks.sort(key=lambda b: (-len(b), b))
    text = renumber_labels(".".join(blocks))
    if decode(text) != want:
        raise SafeEncodingError("fragment blocks do not decode back to the same molecule")
    return text


def block_spans(row: list[int], dot: int, pad: int) -> list[tuple[int, int]]:
    """``(start, end)`` token spans of the dot-separated blocks of one encoded row (token ids,
    ``dot`` and ``pad`` the ids of ``.`` and the padding)."""
    n = row.index(pad) if pad in row else len(row)
    spans, start = [], 0
    for i in range(n + 1):
        if i == n or row[i] == dot:
            if i > start:
                spans.append((start, i))
            start = i + 1
    return spans


def block_mol(block: str) -> Chem.Mol | None:
    """One block alone as a molecule, ``[*]`` where its labels were (the bonds to the other
    fragments); ``None`` when RDKit cannot read or kekulise it."""
    return mol_from_smiles(re.sub(r"([-=#:/\\]?)%[0-9]{2}", r"(\1[*])", block))


def block_smiles(block: str) -> str:
    """One block as a chemist reads it: canonical SMILES with ``[*]`` where its labels were
    (the bonds to the other fragments); the block text itself if RDKit cannot read that."""
    mol = block_mol(block)
    return Chem.MolToSmiles(mol) if mol is not None else block


def decode(text: str) -> str | None:
    """Canonical SMILES of a fragment-block string, or ``None`` when it is not a molecule.

    A valid string joins all its blocks into one connected molecule with every label closed.
    """
    if not text:
        return None
    mol = Chem.MolFromSmiles(text)
    if mol is None or len(Chem.GetMolFrags(mol)) != 1:
        return None
    return Chem.MolToSmiles(mol)


def _variants_chunk(payload: tuple[list[str], int, int]) -> list[str | None]:
    smiles, copies, seed = payload
    rng = random.Random(seed)
    out: list[str | None] = []
    for s in smiles:
        for _ in range(copies):
            try:
                out.append(encode(s, rng=rng))
            except SafeEncodingError:
                out.append(None)
    return out


def fragment_order_variants(
    smiles: list[str], copies: int = 1, seed: int = 0, n_jobs: int = 1
) -> list[str | None]:
    """``copies`` block strings per molecule, each with a random fragment order.

    Training on shuffled orders shows the model every fragment at the start of the string, which
    is where design puts the user's fragment.  ``None`` marks molecules that cannot be encoded.
    Deterministic for a given ``seed`` whatever ``n_jobs`` is (each chunk has its own seed).
    """
    from concurrent.futures import ProcessPoolExecutor

    chunk = 5_000
    payloads = [(smiles[i : i + chunk], copies, seed * 100_003 + i) for i in range(0, len(smiles), chunk)]
    out: list[str | None] = []
    if n_jobs <= 1:
        for p in payloads:
            out.extend(_variants_chunk(p))
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            for res in pool.map(_variants_chunk, payloads):
                out.extend(res)
    return out
