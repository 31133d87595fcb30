"""A chemist's fragment: SMILES with attachment points, what it asks for, and how to check it.

Input as GenMol, SAFE and RDKit write it: ``[*]``, ``[1*]``, ``[2*]``... mark where new atoms may
grow.  The fragment's shape says the task:

==================  =================================================  ========================
task                fragment                                           example
==================  =================================================  ========================
superstructure      one piece, no attachment point (grow anywhere)     ``c1ccc2[nH]ccc2c1``
motif extension     one piece, one attachment point                    ``[*]c1ccc(F)cc1``
scaffold decoration one piece, two or more attachment points           ``[1*]c1ccc([2*])nc1``
linker design       two pieces, each with attachment points            ``[*]c1ccccc1.[*]N1CCOCC1``
==================  =================================================  ========================

Every molecule a design returns must contain :attr:`FragmentSpec.query` (the fragment with its
attachment points removed) as an RDKit substructure; :func:`match_atoms` is that check.

Stereo (``@``, ``/``, ``\\``) is accepted.  A model whose vocabulary has no stereo tokens sees the
fragment without them; fragment-block models get the stereo written back into the fixed blocks
after sampling (:func:`fragment_blocks`), other models lose it, and the spec's ``notices`` say
which happened.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rdkit import Chem, rdBase

from . import safe

__all__ = [
    "FragmentError",
    "FragmentSpec",
    "TASKS",
    "parse_fragment",
    "match_atoms",
    "fragment_blocks",
    "FragmentBlocks",
    "capped_smiles",
    "strip_attachments",
]

#: Task names, in the order the benchmark reports them.
TASKS = ("linker design", "motif extension", "scaffold decoration", "superstructure")

_MAX_PIECES = 2
_MAX_ATTACHMENTS = 8


class FragmentError(ValueError):
    """The fragment cannot be used; the message says why and how to fix it."""


@dataclass(frozen=True)
class FragmentSpec:
    """A parsed fragment.

    Attributes:
        text: what the user gave.
        pieces: one RDKit molecule per dot-separated piece; attachment points are dummy atoms.
        task: one of :data:`TASKS`.
        query: the fragment without attachment points (the substructure every result contains).
        n_attachments: attachment points over all pieces.
        has_stereo: the fragment carries tetrahedral or double-bond stereo.
        notices: things the user should know (stereo dropped, ...), filled by the caller.
    """

    text: str
    pieces: tuple
    task: str
    query: Chem.Mol
    n_attachments: int
    has_stereo: bool
    notices: tuple = field(default_factory=tuple)

    @property
    def query_smiles(self) -> str:
        return Chem.MolToSmiles(self.query)


def _has_stereo(mol: Chem.Mol) -> bool:
    if any(a.GetChiralTag() != Chem.ChiralType.CHI_UNSPECIFIED for a in mol.GetAtoms()):
        return True
    return any(b.GetStereo() != Chem.BondStereo.STEREONONE for b in mol.GetBonds())


def strip_attachments(mol: Chem.Mol) -> Chem.Mol:
    """The molecule without its dummy atoms, each replaced by a hydrogen on its neighbour (an
    aromatic ``n`` that lost a substituent becomes ``[nH]``, so the result stays a molecule)."""
    rw = Chem.RWMol(mol)
    dummies = sorted((a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0), reverse=True)
    for d in dummies:
        for nb in rw.GetAtomWithIdx(d).GetNeighbors():
            nb.SetNumExplicitHs(nb.GetNumExplicitHs() + 1)
    for a in dummies:
        rw.RemoveAtom(a)
    out = rw.GetMol()
    out.UpdatePropertyCache(strict=False)
    return out


def parse_fragment(text: str) -> FragmentSpec:
    """Read a fragment SMILES with optional attachment points.

    Raises:
        FragmentError: empty, not a SMILES RDKit can read, an attachment point bonded to more
            or fewer than one atom, more than two pieces, a piece of a linker without an
            attachment point, or nothing but attachment points.
    """
    if not isinstance(text, str) or not text.strip():
        raise FragmentError("the fragment is empty: paste a SMILES such as [*]c1ccccc1")
    text = text.strip()
    if any(ch.isspace() for ch in text):
        raise FragmentError(f"a fragment SMILES has no spaces: {text!r}")
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(text)
    if mol is None:
        raise FragmentError(
            f"RDKit cannot read {text!r} as SMILES; attachment points are written [*] or [1*]"
        )
    pieces = Chem.GetMolFrags(mol, asMols=True)
    if len(pieces) > _MAX_PIECES:
        raise FragmentError(
            f"the fragment has {len(pieces)} dot-separated pieces; give one (decoration, "
            "extension, superstructure) or two (linker design)"
        )
    n_att = []
    for piece in pieces:
        dummies = [a for a in piece.GetAtoms() if a.GetAtomicNum() == 0]
        if len(dummies) == piece.GetNumAtoms():
            raise FragmentError("a piece made only of attachment points")
        for a in dummies:
            if a.GetDegree() != 1 or a.GetBonds()[0].GetBondType() != Chem.BondType.SINGLE:
                raise FragmentError(
                    "every attachment point must be bonded to exactly one atom by a single bond"
                )
        n_att.append(len(dummies))
    total = sum(n_att)
    if total > _MAX_ATTACHMENTS:
        raise FragmentError(f"{total} attachment points; at most {_MAX_ATTACHMENTS} are supported")
    if len(pieces) == 2:
        if min(n_att) == 0:
            raise FragmentError(
                "linker design needs an attachment point on each piece, e.g. "
                "[*]c1ccccc1.[*]N1CCOCC1"
            )
        task = "linker design"
    elif total == 0:
        task = "superstructure"
    elif total == 1:
        task = "motif extension"
    else:
        task = "scaffold decoration"
    query = strip_attachments(mol)
    return FragmentSpec(
        text=text,
        pieces=tuple(pieces),
        task=task,
        query=query,
        n_attachments=total,
        has_stereo=_has_stereo(mol),
    )


def match_atoms(smiles_or_mol, spec: FragmentSpec) -> tuple[int, ...] | None:
    """Atom indices of the fragment in a molecule (RDKit substructure match), or ``None``.

    Matching ignores stereo, as RDKit's default does: the guarantee is the substructure.
    """
    mol = smiles_or_mol
    if isinstance(smiles_or_mol, str):
        with rdBase.BlockLogs():
            mol = Chem.MolFromSmiles(smiles_or_mol)
    if mol is None:
        return None
    hit = mol.GetSubstructMatch(spec.query)
    return tuple(hit) if hit else None


def capped_smiles(spec: FragmentSpec, keep_stereo: bool = False) -> str:
    """The fragment with attachment points replaced by hydrogens (for token templates)."""
    mol = Chem.Mol(spec.query)
    if not keep_stereo:
        Chem.RemoveStereochemistry(mol)
    with rdBase.BlockLogs():
        Chem.SanitizeMol(mol, catchErrors=True)
    return Chem.MolToSmiles(mol)


# ----------------------------------------------------------------------------- fragment blocks
@dataclass(frozen=True)
class FragmentBlocks:
    """The fixed prefix of a fragment-block design.

    Attributes:
        model_text: the blocks as the model sees them (stereo removed), ending with ``.``.
        stereo_text: the same blocks with the user's stereo; equal to ``model_text`` without it.
        open_labels: labels the rest of the molecule must close (one per attachment point).
        stereo_kept: the fragment's stereo is in ``stereo_text`` (``False`` when it had none,
            or when it could not be written into the blocks faithfully).
    """

    model_text: str
    stereo_text: str
    open_labels: tuple[str, ...]
    stereo_kept: bool = False


def _random_attachments(piece: Chem.Mol, rng: random.Random) -> Chem.Mol:
    """A superstructure piece with 1-3 attachment points on random atoms that carry hydrogens."""
    sites = [a.GetIdx() for a in piece.GetAtoms() if a.GetTotalNumHs() > 0]
    if not sites:
        raise FragmentError("the fragment has no hydrogen to replace, so nothing can grow on it")
    k = min(len(sites), rng.choices((1, 2, 3), weights=(0.5, 0.35, 0.15))[0])
    rw = Chem.RWMol(piece)
    for idx in rng.sample(sites, k):
        atom = rw.GetAtomWithIdx(idx)
        d = rw.AddAtom(Chem.Atom(0))
        rw.AddBond(idx, d, Chem.BondType.SINGLE)
        if atom.GetNumExplicitHs():
            atom.SetNumExplicitHs(atom.GetNumExplicitHs() - 1)
        atom.SetNoImplicit(False)
    out = rw.GetMol()
    with rdBase.BlockLogs():
        Chem.SanitizeMol(out)
    return out


def _blocks_of_piece(piece: Chem.Mol, user_label: int) -> tuple[list[str], int]:
    """BRICS blocks of one piece, its own cuts closed inside the prefix, its attachment points
    left open.  Labels are unique isotope numbers starting at ``user_label``."""
    mol = Chem.RWMol(piece)
    label = user_label
    for a in mol.GetAtoms():
        if a.GetAtomicNum() == 0:
            a.SetIsotope(label)
            label += 1
    mol = mol.GetMol()
    mol.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(mol)
    bonds = [
        b
        for b in safe._cut_bonds(mol)
        if all(x.GetAtomicNum() != 0
               for x in (mol.GetBondWithIdx(b).GetBeginAtom(), mol.GetBondWithIdx(b).GetEndAtom()))
    ]
    if not bonds:
        frags = [mol]
    else:
        labels = [(label + i, label + i) for i in range(len(bonds))]
        label += len(bonds)
        cut = Chem.FragmentOnBonds(mol, bonds, addDummies=True, dummyLabels=labels)
        frags = list(Chem.GetMolFrags(cut, asMols=True, sanitizeFrags=False))
    blocks = []
    for f in frags:
        lab = {a.GetIdx(): a.GetIsotope() for a in f.GetAtoms() if a.GetAtomicNum() == 0}
        blocks.append(safe.block_with_labels(f, lab))
    return blocks, label


def fragment_blocks(spec: FragmentSpec, rng: random.Random | None = None) -> FragmentBlocks:
    """The fragment written as fixed blocks for a fragment-block model.

    Each piece is cut at its BRICS bonds like training molecules are (its internal labels are
    closed within the prefix), and every attachment point becomes an open label that the model
    must close with new blocks.  A superstructure fragment gets 1-3 attachment points on random
    hydrogen-bearing atoms (``rng``), so every call can grow it in other places.

    Raises:
        FragmentError: a superstructure fragment with no hydrogens.
    """
    pieces = list(spec.pieces)
    if spec.task == "superstructure":
        pieces = [_random_attachments(pieces[0], rng or random.Random(0))]
    texts = {}
    for stereo in (True, False):
        blocks: list[str] = []
        label = safe.FIRST_LABEL
        for p in pieces:
            p = Chem.Mol(p)
            if not stereo:
                Chem.RemoveStereochemistry(p)
            bl, label = _blocks_of_piece(p, label)
            blocks.extend(bl)
        texts[stereo] = ".".join(blocks)
    # Number labels by first appearance in the model's text, and use the same numbers in the
    # stereo text, so an attachment point is the same label in both.
    mapping: dict[str, str] = {}
    for lab in _labels(texts[False]):
        mapping.setdefault(lab, f"%{safe.FIRST_LABEL + len(mapping)}")
    model_text = _relabel(texts[False], mapping) + "."
    stereo_text = _relabel(texts[True], mapping) + "."
    counts: dict[str, int] = {}
    for lab in _labels(model_text):
        counts[lab] = counts.get(lab, 0) + 1
    open_labels = tuple(lab for lab, c in counts.items() if c % 2 == 1)
    kept = spec.has_stereo and _same_with_methyls(stereo_text, open_labels, pieces)
    if not kept:
        stereo_text = model_text
    return FragmentBlocks(model_text, stereo_text, open_labels, kept)


def _same_with_methyls(text: str, open_labels: tuple[str, ...], pieces: list) -> bool:
    """Do the stereo blocks mean the user's stereo?  Close every open label with a labelled
    methyl (¹³C, so it differs from the fragment's own methyls) on both sides and compare
    isomeric canonical SMILES."""
    closed = text + ".".join(f"[13CH3]{lab}" for lab in open_labels)
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(closed)
    if mol is None:
        return False
    ref = Chem.RWMol()
    for p in pieces:
        ref.InsertMol(p)
    for a in ref.GetAtoms():
        if a.GetAtomicNum() == 0:
            a.SetAtomicNum(6)
            a.SetIsotope(13)
            a.SetNoImplicit(False)
            a.SetNumExplicitHs(0)
    ref = ref.GetMol()
    with rdBase.BlockLogs():
        if Chem.SanitizeMol(ref, catchErrors=True) != Chem.SanitizeFlags.SANITIZE_NONE:
            return False
    return Chem.MolToSmiles(mol) == Chem.MolToSmiles(ref)


def _labels(text: str) -> list[str]:
    return [t for t in safe._TOKEN.findall(text) if t.startswith("%")]


def _relabel(text: str, mapping: dict[str, str]) -> str:
    toks = safe._TOKEN.findall(text)
    return "".join(mapping.get(t, t) for t in toks)
