"""Syntax-constrained sampling of fragment-block strings.

A fragment-block string is only a molecule when every bracket, ring digit and ``%NN`` label
is closed and the labels join all blocks into one piece.  A small model gets most tokens right
and one of them wrong, and one wrong token is enough to lose the molecule.  This module states
the syntax as a left-to-right automaton and tells the sampler which tokens may come next, so
the model's conditional ``p(x_i | x_<i)`` is renormalised over tokens that keep the string
completable (grammar-constrained decoding).  It also counts bonds per atom against the usual
valences and refuses a ring bond between atoms already bonded.  An aromatic ring system must be
one RDKit can kekulise: after every token, some choice of ring double bonds must still be able
to give every ``c`` and pyridine-like ``n`` exactly one, and every aromatic atom must lie on a
ring or still be able to join one, so ``c1cccc1`` or ``c1ccnc1`` are refused at the closing
digit and the model writes a longer ring or a ``[nH]`` instead.  The length bound and these
checks look one token ahead; where that is not enough (near the last position, or where one
atom must carry the string on) a short search for a way to finish decides.

The constraint applies at the *frontier*: a position whose left context is fully known.  With
the ``l2r`` order (or a fixed prefix such as a fragment's blocks followed by masks) every drawn
position is a frontier; elsewhere every token stays allowed.  The engine knows nothing of this:
it calls :meth:`BlockGrammar.__call__` through the ``constraint`` hook of
:func:`mam_core.sampling.sample`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

__all__ = ["BlockGrammar", "GrammarState", "grammar_for", "constraint_for", "CONSTRAINT_MODES",
           "max_valence", "is_aromatic_atom"]

_BONDS = {"-": 1, "=": 2, "#": 3, ":": 1, "/": 1, "\\": 1}
# what the previous token was
_START, _ATOM, _BOND, _OPEN, _CLOSE, _RING = range(6)
_AFTER_ATOM = (_ATOM, _RING, _CLOSE)  # where a branch, a bond or the end of a block may come
_NO_LIMIT = 8
_UNREACHABLE = 10**6

# Bonds an uncharged atom makes (aromatic bonds count as one; an aromatic carbon may still
# carry an exocyclic double bond, as in pyridones written ``O=c1cc...``).
_VALENCE = {"B": 3, "C": 4, "N": 3, "O": 2, "P": 5, "S": 6, "Si": 4, "Se": 6,
            "F": 1, "Cl": 1, "Br": 1, "I": 1,
            "b": 3, "c": 4, "n": 3, "o": 2, "p": 3, "s": 2, "se": 2}
_BRACKET = re.compile(r"^\[(\d*)([A-Za-z][a-z]?)(@*)(H\d*)?([+-]+\d*)?(:\d+)?\]$")
# aromatic atoms whose ring share is settled by their bond count: with a bond to spare they need
# one ring double bond, with none they take none ("[nH]", "o", "s" are always full)
_KEKULE_STRICT = {"c", "n", "o", "s", "[nH]", "[se]"}
_KEKULE_SEARCH_LIMIT = 20_000  # matching steps before a check gives up (and allows)


def is_aromatic_atom(token: str) -> bool:
    """``c``, ``n``, ``[nH]``, ``[se]``...: an atom written in lower case."""
    if token in ("c", "n", "o", "s", "p", "b", "se", "as", "te"):
        return True
    m = _BRACKET.match(token)
    return bool(m) and m.group(2)[0].islower()


def max_valence(token: str) -> int:
    """How many bonds (aromatic ones counted as one) an atom token may make."""
    if token in _VALENCE:
        return _VALENCE[token]
    m = _BRACKET.match(token)
    if not m or m.group(2) not in _VALENCE:
        return _NO_LIMIT
    base = _VALENCE[m.group(2)]
    h = m.group(4)
    n_h = 0 if not h else (int(h[1:]) if len(h) > 1 else 1)
    sign = m.group(5) or ""
    charge = 0
    if sign:
        digits = sign.lstrip("+-")
        charge = (int(digits) if digits else len(sign)) * (1 if sign[0] == "+" else -1)
    if m.group(2).upper() in ("N", "O", "S", "P", "SE"):
        base += charge  # onium: one more bond; anion: one fewer
    else:
        base -= abs(charge)  # carbanion, carbocation
    return max(base - n_h, 0)


@dataclass
class GrammarState:
    """Everything the automaton remembers about a left context."""

    prev: int = _START
    bond: int = 0  # order of a bond token just written (0: none)
    bond_follows_atom: bool = False  # such a bond may carry a ring closure
    cur: int = -1  # the atom the next atom bonds to (-1 at the start of a block)
    stack: list = field(default_factory=list)  # branch points of open branches
    used: list = field(default_factory=list)  # bonds made, per atom
    room: list = field(default_factory=list)  # bonds allowed, per atom
    bonds: set = field(default_factory=set)  # bonded atom pairs (i < j)
    rings: dict = field(default_factory=dict)  # open ring digit -> (atom, order)
    labels: dict = field(default_factory=dict)  # open %NN label -> (block, atom, bond order)
    n_labels: int = 0  # distinct labels seen (labels are numbered by first appearance)
    block: int = 0
    parent: list = field(default_factory=lambda: [0])  # union-find over blocks
    ended: bool = False
    dead: bool = False  # the prefix already breaks the syntax
    explicit_bond: bool = False  # the bond token just written is not aromatic (``-``, ``=``...)
    atom_tok: list = field(default_factory=list)  # token id per atom (replaced, never mutated)
    arom_bonds: set = field(default_factory=set)  # aromatic atom pairs (i < j)
    ring_explicit: dict = field(default_factory=dict)  # open ring digit -> opened with a bond token
    block_start: int = 0  # first atom of the current block
    tree_parent: list = field(default_factory=list)  # atom each atom was written after (-1: none)
    ring_bonds: frozenset = frozenset()  # bonds (i < j) of the current block that lie on a ring

    def copy(self) -> "GrammarState":
        return GrammarState(self.prev, self.bond, self.bond_follows_atom, self.cur,
                            list(self.stack), list(self.used), self.room, self.bonds,
                            dict(self.rings), dict(self.labels), self.n_labels, self.block,
                            self.parent, self.ended, self.dead, self.explicit_bond,
                            self.atom_tok, self.arom_bonds, dict(self.ring_explicit),
                            self.block_start, self.tree_parent, self.ring_bonds)

    @property
    def depth(self) -> int:
        return len(self.stack)

    def free(self, atom: int) -> int:
        return self.room[atom] - self.used[atom]

    def find(self, b: int) -> int:
        while self.parent[b] != b:
            b = self.parent[b]
        return b

    def component_has_open_label(self, b: int) -> bool:
        root = self.find(b)
        return any(self.find(owner) == root for owner, *_ in self.labels.values())

    def completion_length(self) -> int:
        """About the fewest tokens that finish the molecule from here (0: it may end now).

        The current block closes its rings and branches.  Open labels of other pieces cost a
        token each (closed here or by a later block, which joins them: the blocks form a
        tree); every other open label needs a block of its own (a dot, an atom, the label).
        A piece with no open label left must join another piece in the current block.  A ring
        opened on the current atom needs two more atoms to close on.
        """
        if self.ended:
            return 0
        mine = self.find(self.block)
        pieces = {self.find(o) for o, *_ in self.labels.values()}
        others = len(pieces - {mine})
        closures = len(self.rings) + int(others > 0 and mine not in pieces)
        ring_bonds = sum(order for _, order in self.rings.values())
        bonds_here = ring_bonds + int(closures > len(self.rings))
        bond_to_ring = self.prev == _BOND and self.bond_follows_atom and any(
            a != self.cur and self.free(self.cur) >= max(self.bond, o)
            and self.free(a) >= self.bond - o
            and (min(a, self.cur), max(a, self.cur)) not in self.bonds
            for a, o in self.rings.values())
        atoms = int(self.prev in (_START, _OPEN) or (self.prev == _BOND and not bond_to_ring)
                    or (closures > 0 and (self.prev == _CLOSE or self.free(self.cur) < bonds_here)))
        per_atom: dict = {}
        for a, _ in self.rings.values():
            per_atom[a] = per_atom.get(a, 0) + 1
            if a == self.cur:
                atoms = max(atoms, 2)
            elif (min(a, self.cur), max(a, self.cur)) in self.bonds:
                atoms = max(atoms, 1)
        leaves = len(self.labels) - others
        if leaves == 0 and self.prev in (_ATOM, _RING):
            # closures beyond what the current atom can bond need new atoms (three at most each)
            excess = sum(order for _, order in self.rings.values()) + others - self.free(self.cur)
            atoms = max(atoms, -(-excess // 3))
        # rings opened on one atom close on different atoms (one bond per pair of atoms)
        atoms = max([atoms, *(k - 1 for k in per_atom.values())])
        if atoms and self.prev in _AFTER_ATOM and self.free(self.cur) < 1:
            # nothing more can bond here: only a branch point further up may carry on
            if not any(self.free(b) >= 1 for b in self.stack):
                return _UNREACHABLE
        return atoms + len(self.rings) + self.depth + others + 3 * leaves


class BlockGrammar:
    """Allowed next tokens for a fragment-block (or plain SMILES) vocabulary.

    Args:
        tokens: the vocabulary's tokens in id order (``tokenizer.vocab.tokens``).
        pad_token: the padding token that ends a string.
        first_label: the first two-digit label (``%10``); labels must appear in order.
        kekule: also refuse aromatic systems RDKit cannot kekulise (see :meth:`kekule_ok`).
    """

    #: a token whose state leaves fewer spare positions than this (beyond its length bound),
    #: or that corners the string, is allowed only once a search finds a way to finish
    search_slack = 4
    #: states that search may visit before it gives up and allows the token
    search_nodes = 8

    def __init__(self, tokens, pad_token: str, first_label: int = 10, kekule: bool = True):
        self.tokens = list(tokens)
        self.kekule = kekule
        self.K = len(self.tokens)
        self.pad = self.tokens.index(pad_token)
        self.first_label = first_label
        self._cache: dict[tuple, GrammarState] = {}
        self.kind, self.room = [], []
        for t in self.tokens:
            kind = "atom"
            if t == pad_token:
                kind = "pad"
            elif t in _BONDS:
                kind = "bond"
            elif t == "(":
                kind = "open"
            elif t == ")":
                kind = "close"
            elif t == ".":
                kind = "dot"
            elif t.isdigit():
                kind = "ring"
            elif t.startswith("%") and t[1:].isdigit():
                kind = "label"
            self.kind.append(kind)
            self.room.append(max_valence(t) if kind == "atom" else 0)
        self.aromatic = [k == "atom" and is_aromatic_atom(t)
                         for k, t in zip(self.kind, self.tokens)]
        self.strict = [t in _KEKULE_STRICT for t in self.tokens]
        # the lookahead tries atoms first (what most often follows a cornered atom) and one
        # atom of each kind the automaton tells apart
        first = {"atom": 0, "ring": 1, "label": 2, "close": 3, "bond": 4, "open": 5}
        seen, order = set(), []
        for i in sorted((i for i, k in enumerate(self.kind) if k in first),
                        key=lambda i: first[self.kind[i]]):
            key = (self.room[i], self.aromatic[i], self.strict[i], self.tokens[i] == "c") \
                if self.kind[i] == "atom" else i
            if key not in seen:
                seen.add(key)
                order.append(i)
        self._lookahead_order = order
        # the completion search ends the string first, then closes what is open
        ends = [i for i, k in enumerate(self.kind) if k in ("pad", "dot")]
        closers = [i for i in order if self.kind[i] in ("ring", "label", "close")]
        self._search_order = ends + closers + [i for i in order if i not in closers]

    @classmethod
    def for_tokenizer(cls, tokenizer, kekule: bool = True) -> "BlockGrammar":
        return cls(tokenizer.vocab.tokens, tokenizer.pad_token, kekule=kekule)

    # ------------------------------------------------------------------ the automaton
    def syntax_ok(self, s: GrammarState, i: int) -> bool:
        """May token ``i`` follow the left context ``s``?"""
        kind, tok = self.kind[i], self.tokens[i]
        if s.dead:
            return True
        if s.ended:
            return kind == "pad"
        order = s.bond or 1
        if kind == "atom":
            return s.cur < 0 or (s.free(s.cur) >= order and self.room[i] >= order)
        if kind == "bond":
            return s.prev in (_ATOM, _RING, _CLOSE, _OPEN) and s.free(s.cur) >= _BONDS[tok]
        if kind == "open":
            return s.prev in _AFTER_ATOM and s.free(s.cur) >= 1
        if kind == "close":
            return s.depth > 0 and s.prev in _AFTER_ATOM
        if kind in ("ring", "label"):
            if not (s.prev in (_ATOM, _RING) or (s.prev == _BOND and s.bond_follows_atom)):
                return False
            if kind == "ring":
                if tok not in s.rings:
                    return s.free(s.cur) >= order
                a, opened = s.rings[tok]
                pair = (min(a, s.cur), max(a, s.cur))
                bond = max(order, opened)  # the order may be written at either end
                return (a != s.cur and pair not in s.bonds and s.free(s.cur) >= bond
                        and s.free(a) >= bond - opened)
            if tok in s.labels:  # close: a label of another piece only (the blocks form a tree)
                owner, a, opened = s.labels[tok]
                bond = max(order, opened)  # as for ring digits: counted at the larger order
                return (s.find(owner) != s.find(s.block) and s.free(s.cur) >= bond
                        and s.free(a) >= bond - opened)
            return s.free(s.cur) >= order and int(tok[1:]) == self.first_label + s.n_labels
        if kind == "dot":
            # a block whose piece has no open label left could never be joined to the rest
            return (s.prev in _AFTER_ATOM and not s.depth and not s.rings
                    and s.component_has_open_label(s.block) and self.kekule_ok(s, final=True))
        if kind == "pad":
            return (s.prev in _AFTER_ATOM and not s.depth and not s.rings and not s.labels
                    and self.kekule_ok(s, final=True))
        return False

    # ------------------------------------------------------------------ aromaticity
    def kekule_ok(self, s: GrammarState, final: bool) -> bool:
        """Can the aromatic systems of the current block still be kekulised (as RDKit does)?

        Every ``c`` or ``n`` with a bond to spare needs exactly one ring double bond, atoms
        already full take none, and an aromatic atom must lie on a ring.  Before the block
        ends, atoms that may still gain bonds (the current atom, branch points, atoms with an
        open ring digit) may go either way, and an atom off every ring passes while a later
        ring closure could still take it in; so a block is refused as soon as no later token
        could fix it.  A bond or branch just written counts against the current atom.
        """
        if not self.kekule:
            return True
        atoms = [a for a in range(s.block_start, len(s.used)) if self.aromatic[s.atom_tok[a]]]
        if not atoms:
            return True
        used = s.used
        if final:
            flexible: set = set()
            reachable: set = set()
        else:
            reachable = _may_join_a_ring(s)
            pending = s.bond if s.prev == _BOND else int(s.prev == _OPEN)
            if pending:
                used = list(used)
                used[s.cur] += pending
            # the current atom and branch points may still change only with a bond to spare
            # (a carbon closing its third aromatic bond has none: it is settled now)
            flexible = {a for a in (s.cur, *s.stack) if a >= 0 and s.room[a] > used[a]}
            flexible.update(a for a, _ in s.rings.values())
        # RDKit reads a bond written between two aromatic atoms as aromatic even off every
        # ring (a biaryl bond without ``-``), so both atoms need their ring double bond, but it
        # never puts the double bond there: such a bond is no partner, unless a later closure
        # may still put it on a ring
        ring_bonds = s.ring_bonds
        adj: dict = {a: [] for a in atoms}
        partners: dict = {a: [] for a in atoms}
        for i, j in s.arom_bonds:
            if i in adj and j in adj:
                adj[i].append(j)
                adj[j].append(i)
                if (i, j) in ring_bonds or (i in reachable and j in reachable):
                    partners[i].append(j)
                    partners[j].append(i)
        on_rings = {a for pair in ring_bonds for a in pair}
        if any(a not in reachable and a not in on_rings for a in atoms):
            return False
        return all(self._matchable(s, comp, adj, partners, flexible, used)
                   for comp in _components(atoms, adj))

    def _matchable(self, s: GrammarState, comp: list, adj: dict, partners: dict,
                   flexible: set, used: list) -> bool:
        must, may = set(), set()
        for a in comp:
            # RDKit counts an aromatic bond as 1.5: four are too many, three leave carbon none
            if len(adj[a]) > 3 or (len(adj[a]) == 3 and used[a] > 3
                                   and self.tokens[s.atom_tok[a]] == "c"):
                return False
            if not adj[a]:
                continue  # no aromatic bond: RDKit leaves it as written
            spare = self.room[s.atom_tok[a]] - used[a] >= 1  # the atom's own valence
            if a in flexible or not self.strict[s.atom_tok[a]]:
                if spare:
                    may.add(a)
            elif spare:
                must.add(a)
        eligible = must | may
        steps = [0]

        def solve(left: frozenset, taken: frozenset) -> bool:
            if not left:
                return True
            steps[0] += 1
            if steps[0] > _KEKULE_SEARCH_LIMIT:
                return True  # too many choices to settle here: allow
            options = {m: [b for b in partners[m] if b in eligible and b not in taken]
                       for m in left}
            m = min(options, key=lambda a: len(options[a]))
            for b in options[m]:
                if solve(left - {m, b}, taken | {m, b}):
                    return True
            return False

        return solve(frozenset(must), frozenset())

    def step(self, s: GrammarState, i: int) -> None:
        """Advance ``s`` by token id ``i`` in place (a syntax error marks it dead)."""
        if s.dead:
            return
        if not self.syntax_ok(s, i):
            s.dead = True
            return
        kind, tok = self.kind[i], self.tokens[i]
        order = s.bond or 1
        explicit = bool(s.bond and s.explicit_bond)  # the bond into this token is not aromatic
        if kind != "bond":
            s.bond = 0
            s.explicit_bond = False
        if kind == "pad":
            s.ended = True
        elif kind == "bond":
            s.bond = _BONDS[tok]
            s.explicit_bond = tok != ":"
            s.bond_follows_atom = s.prev in (_ATOM, _RING)
            s.prev = _BOND
        elif kind == "atom":
            new = len(s.used)
            s.used.append(0)
            s.room = [*s.room, self.room[i]]  # shared with copies: replaced, never mutated
            s.atom_tok = [*s.atom_tok, i]
            s.tree_parent = [*s.tree_parent, s.cur]
            if s.cur >= 0:
                s.used[s.cur] += order
                s.used[new] += order
                s.bonds = s.bonds | {(s.cur, new)}
                if self.aromatic[i] and self.aromatic[s.atom_tok[s.cur]] and not explicit:
                    self._add_aromatic_bond(s, s.cur, new)
            s.cur = new
            s.prev = _ATOM
        elif kind == "open":
            s.stack.append(s.cur)
            s.prev = _OPEN
        elif kind == "close":
            s.cur = s.stack.pop()
            s.prev = _CLOSE
        elif kind == "ring":
            if tok in s.rings:
                self._close_ring(s, tok, order, explicit)
            else:
                s.rings[tok] = (s.cur, order)
                s.ring_explicit[tok] = explicit
                s.used[s.cur] += order
            s.prev = _RING
        elif kind == "label":
            if tok in s.labels:
                owner, a, opened = s.labels.pop(tok)
                parent = list(s.parent)
                parent[s.find(owner)] = s.find(s.block)
                s.parent = parent
                s.bonds = s.bonds | {(min(a, s.cur), max(a, s.cur))}
                s.used[a] += max(order - opened, 0)
                s.used[s.cur] += max(order, opened)
            else:
                s.labels[tok] = (s.block, s.cur, order)
                s.n_labels += 1
                s.used[s.cur] += order
            s.prev = _RING
        elif kind == "dot":
            s.block_start = len(s.used)
            s.ring_bonds = frozenset()
            s.block += 1
            s.parent = [*s.parent, s.block]
            s.cur = -1
            s.prev = _START

    def _close_ring(self, s: GrammarState, tok: str, order: int, explicit: bool) -> None:
        """Close ring digit ``tok`` on the current atom (``order`` / ``explicit``: the bond
        written here, if any)."""
        a, opened = s.rings.pop(tok)
        explicit = s.ring_explicit.pop(tok, False) or explicit
        s.used[a] += max(order - opened, 0)
        s.used[s.cur] += max(order, opened)
        pair = (min(a, s.cur), max(a, s.cur))
        s.bonds = s.bonds | {pair}
        s.ring_bonds = s.ring_bonds | {pair} | _tree_path(s.tree_parent, a, s.cur)
        if not explicit and self.aromatic[s.atom_tok[a]] and self.aromatic[s.atom_tok[s.cur]]:
            self._add_aromatic_bond(s, *pair)

    def _add_aromatic_bond(self, s: GrammarState, i: int, j: int) -> None:
        s.arom_bonds = s.arom_bonds | {(min(i, j), max(i, j))}
        for a in (i, j):
            # RDKit counts an aromatic bond as 1.5: a carbon with three has no bond to spare
            if self.kekule and self.tokens[s.atom_tok[a]] == "c" and s.room[a] > 3 and sum(
                    a in pair for pair in s.arom_bonds) >= 3:
                s.room = [*s.room[:a], 3, *s.room[a + 1:]]

    def allowed_in(self, s: GrammarState, budget: int) -> list[bool]:
        """Tokens that may follow ``s`` and still leave a molecule that fits in ``budget``
        more positions.

        Where a token corners the string (see :func:`_cornered`), it is allowed only if some
        token may follow it: the length bound and the aromaticity check, each right on its own,
        can together leave no way forward, typically an aromatic ring closed on the one atom
        that must still take a label."""
        return [self.allows(s, i, budget) for i in range(self.K)]

    def allows(self, s: GrammarState, i: int, budget: int) -> bool:
        """One entry of :meth:`allowed_in`: may token ``i`` follow ``s``?"""
        if s.dead:
            return True
        nxt = self._next_state(s, i, budget)
        if nxt is None:
            return False
        if budget == 0 or nxt.ended:
            return True
        if _cornered(nxt) or budget - 1 - nxt.completion_length() < self.search_slack:
            return self._completes(nxt, budget - 1, [self.search_nodes])
        return True

    def _next_state(self, s: GrammarState, i: int, budget: int) -> GrammarState | None:
        """The state after token ``i`` if it keeps a molecule within ``budget`` more positions
        reachable (one step of look, no further)."""
        if not self.syntax_ok(s, i):
            return None
        nxt = s.copy()
        self.step(nxt, i)
        # a dot was checked as the block's end (syntax_ok); a new block has no atoms yet
        ok = nxt.completion_length() <= budget and (
            nxt.ended or self.kind[i] == "dot" or self.kekule_ok(nxt, final=budget == 0))
        return nxt if ok else None

    def _completes(self, s: GrammarState, budget: int, nodes: list) -> bool:
        """Is there a molecule within ``budget`` more tokens after ``s``?  A depth-first search
        that ends or closes first; past ``nodes[0]`` states it stops undecided and says yes."""
        for i in self._search_order:
            nxt = self._next_state(s, i, budget)
            if nxt is None:
                continue
            if budget == 0 or nxt.ended:
                return True
            nodes[0] -= 1
            if nodes[0] < 0 or self._completes(nxt, budget - 1, nodes):
                return True
        return False

    def state_of(self, ids) -> GrammarState:
        """The state after the token ids ``ids`` (a fresh object the caller may change)."""
        s = GrammarState()
        for i in ids:
            self.step(s, int(i))
        return s

    def _cached_state(self, prefix: tuple) -> GrammarState:
        """State after ``prefix``, built from the state one token shorter when it is cached
        (left-to-right sampling asks for each prefix once, one token longer each time)."""
        s = self._cache.get(prefix)
        if s is None:
            if len(self._cache) > 50_000:
                self._cache.clear()
            if prefix and prefix[:-1] in self._cache:
                s = self._cache[prefix[:-1]].copy()
                self.step(s, prefix[-1])
            else:
                s = self.state_of(prefix)
            self._cache[prefix] = s
        return s

    def is_complete(self, ids) -> bool:
        """True when ``ids`` (a whole row) is syntactically one molecule."""
        s = self.state_of(ids)
        return (not s.dead and s.prev != _START and s.completion_length() == 0
                and (s.ended or self.kekule_ok(s, final=True)))

    # ------------------------------------------------------------------ the sampler hooks
    def __call__(self, x: torch.Tensor, pos: torch.Tensor, mask_id: int) -> torch.Tensor:
        """``(n, K)`` bool: tokens allowed at ``pos[b]`` of row ``x[b]``.

        Rows whose left context still has masked positions, or whose known prefix already
        breaks the syntax, allow everything.  So does a row where no token would keep the
        string completable (the sampler then falls back to the model's own conditional).
        """
        out = torch.ones(x.shape[0], self.K, dtype=torch.bool)
        for b, check in enumerate(self.checks(x, pos, mask_id)):
            if check is None:
                continue
            allowed = [check == i for i in range(self.K)] if isinstance(check, int) else [
                check(i) for i in range(self.K)]
            if any(allowed):
                out[b] = torch.tensor(allowed)
        return out.to(x.device)

    def checks(self, x: torch.Tensor, pos: torch.Tensor, mask_id: int) -> list:
        """One token test per row, for a sampler that asks about only the tokens it may draw
        (a nucleus rarely needs more than a few): ``None`` where everything is allowed, the
        token id where it is the only one (the pads after a molecule's end), otherwise a
        function ``token id -> bool`` that agrees with :meth:`__call__`."""
        D = x.shape[1]
        rows, out = x.tolist(), []
        for b, p in enumerate(pos.tolist()):
            row = rows[b]
            prefix = row[:p]
            if mask_id in prefix:
                out.append(None)
                continue
            s = self._cached_state(tuple(prefix))
            # fixed tokens further right (a template) must not be cut off by an early end
            fixed_right = any(t != mask_id and t != self.pad for t in row[p + 1:])
            if s.dead and not fixed_right:
                out.append(None)
            elif s.ended and not fixed_right:
                out.append(self.pad)
            else:
                out.append(self._check(s, D - p - 1, fixed_right))
        return out

    def _check(self, s: GrammarState, budget: int, no_pad: bool):
        return lambda i: not (no_pad and i == self.pad) and self.allows(s, i, budget)


def _cornered(s: GrammarState) -> bool:
    """The block may not end here (a ring digit is open, or its piece must still join another
    through a label) and only the current atom can carry it on, with one bond or none to
    spare: the states where a token allowed on its own may leave nothing to follow."""
    return (not s.ended and not s.dead and s.prev in _AFTER_ATOM and s.cur >= 0
            and (bool(s.rings) or (bool(s.labels) and not s.component_has_open_label(s.block)))
            and s.free(s.cur) <= 1 and not any(s.free(b) >= 1 for b in s.stack))


def _tree_path(tree_parent: list, a: int, b: int) -> set:
    """The bonds ``(i < j)`` between atoms ``a`` and ``b`` of one block along the bonds each
    atom was written with: closing a ring from ``a`` to ``b`` puts exactly these (and the
    closing bond) on a ring, since every other bond is on a ring already or on no path."""
    up: dict = {}
    v, depth = a, 0
    while v >= 0:
        up[v] = depth
        v, depth = tree_parent[v], depth + 1
    path = set()
    v = b
    while v not in up:
        w = tree_parent[v]
        path.add((min(v, w), max(v, w)))
        v = w
    meet = v
    v = a
    while v != meet:
        w = tree_parent[v]
        path.add((min(v, w), max(v, w)))
        v = w
    return path


def _may_join_a_ring(s: GrammarState) -> set:
    """Atoms a later ring closure could still put on a ring.

    New atoms attach to the current atom or to an open branch point (an *anchor*, if it has a
    bond to spare), so a new ring runs through the string's tree between two anchors (or
    twice through one with two bonds to spare), or from an open ring digit's atom to an anchor.
    """
    def up(a: int) -> list:
        path = []
        while a >= 0:
            path.append(a)
            a = s.tree_parent[a]
        return path

    spine = up(s.cur)
    where = {a: i for i, a in enumerate(spine)}
    anchors = [where[a] for a in (s.cur, *s.stack) if a in where and s.free(a) >= 1]
    out: set = set()
    if len(set(anchors)) >= 2:
        out.update(spine[min(anchors): max(anchors) + 1])
    out.update(spine[i] for i in anchors if s.free(spine[i]) >= 2)
    if not anchors:
        return out
    for r, _ in s.rings.values():
        a = r
        while a >= 0 and a not in where:
            out.add(a)
            a = s.tree_parent[a]
        if a >= 0:
            lo, hi = min(where[a], *anchors), max(where[a], *anchors)
            out.update(spine[lo: hi + 1])
    return out


def _components(starts, adj: dict):
    """Connected pieces of ``adj`` reached from ``starts`` (each once)."""
    seen: set = set()
    for a in starts:
        if a in seen:
            continue
        comp, todo = [], [a]
        seen.add(a)
        while todo:
            v = todo.pop()
            comp.append(v)
            for w in adj[v]:
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        yield comp


#: How much of a molecule the sampler steers, strongest first.  ``full``: the syntax and
#: aromatic rings RDKit can kekulise; ``syntax``: brackets, ring digits, labels and valences
#: only, so a ring that cannot be kekulised fails the validity check and is drawn again (exact
#: rejection: those molecules keep the model's own conditionals instead of being bent at the
#: closing digit); ``off``: the model alone.
CONSTRAINT_MODES = ("full", "syntax", "off")


def constraint_for(tokenizer, mode: str) -> BlockGrammar | None:
    """The sampling constraint of one of :data:`CONSTRAINT_MODES` (``None`` for ``off`` and for
    tokenizers without a syntax, like SELFIES).

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in CONSTRAINT_MODES:
        raise ValueError(f"constraint must be one of {', '.join(CONSTRAINT_MODES)}; got {mode!r}")
    return None if mode == "off" else grammar_for(tokenizer, kekule=mode == "full")


def grammar_for(tokenizer, kekule: bool = True) -> BlockGrammar | None:
    """A fresh syntax constraint for a SMILES or fragment-block tokenizer (``None`` for SELFIES,
    where every string is already a molecule); ``kekule=False`` leaves aromatic rings to the
    model."""
    if tokenizer is None or getattr(tokenizer, "kind", None) not in ("safe", "smiles"):
        return None
    return BlockGrammar.for_tokenizer(tokenizer, kekule=kekule)
