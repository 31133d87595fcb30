"""The fragment-block syntax constraint: it accepts every training string, and whatever it lets
through is one molecule RDKit reads (checked by enumerating every string of a tiny vocabulary)."""

import itertools
import random

import pytest
import torch
from rdkit import Chem, rdBase

from mam_core.chem import safe
from mam_core.chem.grammar import (
    BlockGrammar,
    GrammarState,
    constraint_for,
    grammar_for,
    max_valence,
)
from mam_core.chem.moses import load_moses
from mam_core.chem.tokenizers import SafeTokenizer, SelfiesTokenizer, SmilesTokenizer

rdBase.DisableLog("rdApp.*")


def _ids(g: BlockGrammar, tokens: list[str]) -> list[int]:
    return [g.tokens.index(t) for t in tokens]


def _walk(g: BlockGrammar, ids: list[int], D: int) -> int | None:
    """First position whose token the constraint refuses, or None when all are allowed."""
    s = GrammarState()
    for p, i in enumerate(ids):
        if not g.allowed_in(s, budget=D - p - 1)[i]:
            return p
        g.step(s, i)
    return None


@pytest.fixture(scope="module")
def safe_tok():
    smiles = load_moses("train")[:300]
    return SafeTokenizer.build(smiles, max_length=72, drop_long=True)


def test_every_shuffled_training_string_is_allowed_token_by_token(safe_tok):
    g = grammar_for(safe_tok)
    rng = random.Random(0)
    checked = 0
    for smi in load_moses("test")[:150]:
        for _ in range(2):
            try:
                text = safe.encode(smi, rng=rng)
            except safe.SafeEncodingError:
                continue
            toks = safe_tok.regex_tokens(text)
            if len(toks) >= safe_tok.D or any(t not in safe_tok.vocab.tokens for t in toks):
                continue
            ids = _ids(g, toks) + [g.pad] * (safe_tok.D - len(toks))
            assert _walk(g, ids, safe_tok.D) is None, text
            assert g.is_complete(ids), text
            checked += 1
    assert checked > 200


def _tokens(text: str) -> list[str]:
    return SmilesTokenizer.regex_tokens(text)


def test_refuses_what_rdkit_refuses():
    toks = ["C", "O", "N", "(", ")", "=", "1", "%10", "%11", ".", "<pad>"]
    g = BlockGrammar(toks, "<pad>")
    cases = {
        "C1CC": False,  # ring left open
        "C(C": False,  # branch left open
        "C%10.C": False,  # label left open, second block not joined
        "C%10.C%10": True,
        "C%11.C%11": False,  # labels are numbered by first appearance
        "CC.C": False,  # a block with no label can never be joined
        "C11": False,  # a ring bond from an atom to itself
        "C1C1": False,  # a ring bond between atoms already bonded
        "O=O=C": False,  # oxygen makes two bonds
        "C%10.N%10%11.O%11": True,
        "C%10%11.N%10%11": False,  # two labels joining the same two blocks
        "C1CC(=O)N1": True,
        # a label's bond order counts at both atoms (regression: it counted as one)
        "C=%10(O)O.C%10": True,
        "C=%10(O)(O)O.C%10": False,
        "C=%10.OO%10": False,
        "C=%10.O%10": True,
    }
    for text, ok in cases.items():
        assert g.is_complete(_ids(g, _tokens(text))) is ok, text
        if ok:
            mol = Chem.MolFromSmiles(text)
            assert mol is not None and len(Chem.GetMolFrags(mol)) == 1, text


def test_enumeration_whatever_the_constraint_lets_through_is_one_molecule():
    """Every string of length 6 over a tiny vocabulary that the constraint lets through,
    token by token, is one connected molecule RDKit reads, and following it never dead-ends."""
    toks = ["C", "O", "(", ")", "=", "1", "%10", ".", "<pad>"]
    g = BlockGrammar(toks, "<pad>")
    D = 6
    completed = []

    def extend(prefix: list[int], s: GrammarState):
        if len(prefix) == D:
            assert g.is_complete(prefix)
            text = "".join(toks[i] for i in prefix if i != g.pad)
            mol = Chem.MolFromSmiles(text)
            assert mol is not None and len(Chem.GetMolFrags(mol)) == 1, text
            completed.append(text)
            return
        allowed = g.allowed_in(s, budget=D - len(prefix) - 1)
        assert any(allowed), "".join(toks[i] for i in prefix)  # never a dead end
        for i in range(len(toks)):
            if allowed[i]:
                nxt = s.copy()
                g.step(nxt, i)
                extend(prefix + [i], nxt)

    extend([], GrammarState())
    assert "C%10.C%10" in completed and "C1CC1" in completed and "C(=O)O" in completed
    assert len(completed) > 100


def test_enumeration_every_plain_smiles_molecule_is_let_through():
    """Without dots and labels, the constraint refuses nothing RDKit reads as one molecule."""
    toks = ["C", "O", "(", ")", "=", "1", "<pad>"]
    g = BlockGrammar(toks, "<pad>")
    D = 6
    for length in range(1, D + 1):
        for body in itertools.product(range(len(toks) - 1), repeat=length):
            ids = list(body) + [g.pad] * (D - length)
            text = "".join(toks[i] for i in body)
            mol = Chem.MolFromSmiles(text)
            rdkit_ok = mol is not None and len(Chem.GetMolFrags(mol)) == 1
            assert rdkit_ok == (_walk(g, ids, D) is None), text


def _enumerate_let_through(g: BlockGrammar, D: int) -> list[str]:
    """Every string of length ``D`` the constraint lets through, token by token (dead ends,
    which the sampler leaves to the model, are skipped)."""
    out = []

    def extend(prefix: list[int], s: GrammarState):
        if len(prefix) == D:
            if g.is_complete(prefix):
                out.append("".join(g.tokens[i] for i in prefix if i != g.pad))
            return
        allowed = g.allowed_in(s, budget=D - len(prefix) - 1)
        for i in range(g.K):
            if allowed[i]:
                nxt = s.copy()
                g.step(nxt, i)
                extend(prefix + [i], nxt)

    extend([], GrammarState())
    return out


def test_enumeration_aromatic_rings_let_through_can_be_kekulised():
    """Aromatic rings: whatever the constraint lets through RDKit can kekulise (``c1cccc1``,
    ``c1ccnc1`` or a carbon with four aromatic bonds are refused at the closing digit)."""
    g = BlockGrammar(["c", "n", "[nH]", "C", "1", "2", "<pad>"], "<pad>")
    completed = _enumerate_let_through(g, 8)
    for text in completed:
        mol = Chem.MolFromSmiles(text)
        assert mol is not None and len(Chem.GetMolFrags(mol)) == 1, text
    assert {"c1ccccc1", "c1ccc[nH]1", "c1ccccn1", "c1cccn1C"} <= set(completed)
    assert len(completed) > 1000


@pytest.mark.parametrize("toks", [["c", "n", "C", "=", "1", "2"], ["c", "n", "o", "C", "1", "2"]])
def test_enumeration_every_aromatic_molecule_is_let_through(toks):
    """The aromaticity check refuses nothing RDKit reads (every string up to 7 tokens)."""
    g = BlockGrammar(toks + ["<pad>"], "<pad>")
    D, n_valid = 7, 0
    for length in range(1, D + 1):
        for body in itertools.product(range(len(toks)), repeat=length):
            text = "".join(toks[i] for i in body)
            if "c" not in text and "n" not in text:
                continue
            mol = Chem.MolFromSmiles(text)
            if mol is None or len(Chem.GetMolFrags(mol)) != 1:
                continue
            n_valid += 1
            assert _walk(g, list(body) + [g.pad] * (D - length), D) is None, text
    assert n_valid > 1000


def test_kekule_cases_agree_with_rdkit():
    toks = ["c", "n", "o", "s", "[nH]", "C", "N", "O", "Br", "Cl", "(", ")", "=", "-", "1",
            "2", "3", "<pad>"]
    g = BlockGrammar(toks, "<pad>")
    for text in ["c1ccscc1", "c1ccsc1", "c1cccoc1", "c1ccc2c(c1)cc[nH]2", "c1ccccc1c",
                 "Cn1cccc1", "O=c1cc[nH]cc1", "c1cc(=O)ccc1", "c1cccc1", "c1ccnc1", "c1cccn1C",
                 "c1cn(cc1)C", "c1ccc2c(c1)ccn2", "Cc1ccc(C)(C)cc1", "c12ccccc1(C)cccc2",
                 "c12ccccc1cccc2", "c1ccc(cc1)-c1ccccc1",
                 # a bond between aromatic atoms on no ring never carries the ring double
                 # bond: it cannot lend the 2H-indole on its left the one it lacks (sampled
                 # from a model), yet it still asks one of the atom on its right
                 "c1ccc2cc(C)nc2c1c1ccc(C)cc12CCCC2", "c1ccc2c(C)ncc2c1c2C(C)(C)C2",
                 "Cc1ccc(c2cccc3[nH]ccc23)cc1", "c1ccc(cc1)c1cc2CCCc2cc1", "c1ccccc1c1CCCC1",
                 "c1ccccc1-c1CCCC1", "Brc1co([nH]Nn1(c3N1s(nnC13Cl)))"]:
        ids = _ids(g, _tokens(text)) + [g.pad]
        assert g.is_complete(ids) == (Chem.MolFromSmiles(text) is not None), text


def test_ring_bonds_follow_rdkit_on_random_smiles_of_test_molecules():
    """The automaton's ring bonds (kept up to date at each ring closure) are RDKit's, for
    random SMILES of test molecules (rings closed in every order) and rings opened in a branch
    that has ended."""
    rdBase.SeedRandomNumberGenerator(0)
    mols = [Chem.MolFromSmiles(s) for s in load_moses("test")[:60]]
    texts = [Chem.MolToSmiles(m, doRandom=True, canonical=False) for m in mols for _ in range(2)]
    # RDKit closes a ring on a descendant of the atom that opened it; a model need not
    texts += ["CC(C1)CC1", "C(C1)C(CC2)CC1C2", "c1cc(C2)ccc1CC2", "CC(C1)(C2)CC12"]
    toks = sorted({t for text in texts for t in _tokens(text)}) + ["<pad>"]
    g = BlockGrammar(toks, "<pad>")
    n_ring = 0
    for text in texts:
        s = g.state_of(_ids(g, _tokens(text)))
        mol = Chem.MolFromSmiles(text)
        want = {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx())))
                for b in mol.GetBonds() if b.IsInRing()}
        assert set(s.ring_bonds) == want, text
        n_ring += len(want)
    assert n_ring > 500


def test_a_ring_closure_on_a_full_aromatic_carbon_is_checked_at_once():
    """A carbon closing its third aromatic bond has no bond left to change: the check treats
    it as settled (regression: ``c1ccc2ccccc2`` then ``1``, nine aromatic carbons, was let
    through and left nothing to follow)."""
    g = BlockGrammar(["c", "n", "C", "1", "2", "<pad>"], "<pad>")
    D = 16
    for text in ["c1ccc2ccccc2c1", "c1cc2ccccc2cc1", "Cc1ccc2ccccc2c1", "c1cc2cccc2n1"]:
        assert Chem.MolFromSmiles(text) is not None
        assert _walk(g, _ids(g, _tokens(text)) + [g.pad] * (D - len(_tokens(text))), D) is None
    text = "c1ccc2ccccc21"
    assert Chem.MolFromSmiles(text) is None
    assert _walk(g, _ids(g, _tokens(text)), D) == len(_tokens(text)) - 1


@pytest.mark.parametrize("text", [
    # an aromatic ring closed, then a label on its last atom: the label's block still has open
    # labels of its own, so this piece must join the rest through an atom that is now full
    "c1cc%10cc%11c1.CN%12.O=C%12%13.CN%14%15.Cc1ccccc1%13",
    "C%10C%11.CO%10.Cc1nnn2ccccc2c2c1%11",
    "O=C%10%11.Cc1cc(C)n2c(=O)c%12c2c(C)cc12",
])
def test_no_token_is_allowed_that_leaves_nothing_to_follow(text):
    """Strings sampled from a model that the constraint once let into a dead end (no token
    allowed after the last one, and the sampler had to fall back to unconstrained draws): the
    last token is refused now."""
    toks = ["C", "N", "O", "c", "n", "(", ")", "=", "1", "2",
            *(f"%{k}" for k in range(10, 18)), ".", "<pad>"]
    g = BlockGrammar(toks, "<pad>")
    D = 64
    ids = _ids(g, _tokens(text))
    before = g.state_of(ids[:-1])
    assert not g.allowed_in(before, budget=D - len(ids))[ids[-1]]
    after = g.state_of(ids)
    assert not any(g.allowed_in(after, budget=D - len(ids) - 1))  # it was a dead end
    assert any(g.allowed_in(before, budget=D - len(ids)))  # and there is another way on


def test_near_the_end_a_token_is_allowed_only_if_the_string_can_still_finish():
    """The length bound looks one token ahead; near the last position that let a model write
    itself into a string it could not finish in time (sampled: three rings open, three
    positions left).  A short search refuses the token that starts the dead end and keeps
    others."""
    toks = ["C", "N", "O", "c", "o", "(", ")", "=", "1", "2", "3",
            *(f"%{k}" for k in range(10, 18)), ".", "<pad>"]
    text = ("C %10 %11 . O = c 1 c c c 2 c c c c c 2 o c 2 c 1 = N C ( = O ) C C C C C N 1 N "
            "%11 O C C 1 = C C 1 = N C 1 C 1 = N C N 1 C C").split()
    D = 64
    g = BlockGrammar(toks, "<pad>")
    ids = _ids(g, text)
    refused = _walk(g, ids, D)
    assert refused is not None and refused < len(ids)
    assert any(g.allowed_in(g.state_of(ids[:refused]), budget=D - refused - 1))
    g.search_slack = -D  # the one-token look alone lets the whole string through, to a dead end
    assert _walk(g, ids, D) is None
    assert not any(g.allowed_in(g.state_of(ids), budget=D - len(ids) - 1))


@pytest.mark.slow
def test_random_smiles_of_training_molecules_are_allowed():
    """RDKit's random SMILES write rings, branches and aromatic systems in every order."""
    rdBase.SeedRandomNumberGenerator(0)
    mols = [Chem.MolFromSmiles(s) for s in load_moses("test")[:80]]
    variants = [Chem.MolToSmiles(m, doRandom=True, canonical=False) for m in mols for _ in range(2)]
    tok = SmilesTokenizer.build(variants, max_length=80, drop_long=True)
    g = grammar_for(tok)
    for text in variants:
        toks = tok.regex_tokens(text)
        if len(toks) >= tok.D:
            continue
        ids = _ids(g, toks) + [g.pad] * (tok.D - len(toks))
        assert _walk(g, ids, tok.D) is None, text


def test_valences():
    assert max_valence("C") == 4 and max_valence("O") == 2 and max_valence("F") == 1
    assert max_valence("[nH]") == 2 and max_valence("[N+]") == 4 and max_valence("[O-]") == 1
    assert max_valence("[C@@H]") == 3
    assert max_valence("[Xx]") == 8


def test_grammar_for_kinds(safe_tok):
    assert grammar_for(safe_tok) is not None
    assert grammar_for(SmilesTokenizer.build(["CCO", "c1ccccc1"])) is not None
    assert grammar_for(SelfiesTokenizer.build(["CCO"])) is None


def test_sampling_with_the_constraint_gives_complete_strings(safe_tok):
    """An untrained model writes noise; under the constraint, left to right, many strings are
    complete and every complete one is a molecule RDKit reads (aromatic dead ends, where the
    sampler falls back to the model, remain for a model this bad), against none without it."""
    from mam_core import MaM, NetworkConfig

    torch.manual_seed(0)
    net = NetworkConfig(D=safe_tok.D, K=safe_tok.K, d_model=16, n_layers=1, n_heads=2)
    model = MaM(net, safe_tok.vocab)
    g = grammar_for(safe_tok)
    x = model.sample(48, order="l2r", seed=0, constraint=g)
    complete = [row for row in x.tolist() if g.is_complete(row)]
    assert len(complete) >= 10
    for row in complete:
        text = "".join(g.tokens[i] for i in row if i != g.pad)
        assert safe.decode(text) is not None, text
    free = model.sample(48, order="l2r", seed=0)
    assert sum(g.is_complete(row) for row in free.tolist()) <= 2


def test_token_by_token_checks_agree_with_the_mask(safe_tok):
    """The sampler's token-by-token hook (``checks``) answers as the full mask does, for rows
    with prefixes of training strings, templates with fixed tokens further right, ended
    molecules (the pad forced) and rows whose left context is still masked."""
    g = grammar_for(safe_tok)
    D, mask = safe_tok.D, safe_tok.K
    rng = random.Random(0)
    rows, pos = [], []
    for text in safe_tok.encode_batch(load_moses("train")[:40]).tolist():
        for p in sorted(rng.sample(range(D), 4)):
            row = list(text[:p]) + [mask] * (D - p)
            if rng.random() < 0.3:  # a fixed token further right, as in a template
                q = rng.randrange(p, D)
                row[q] = text[q]
            if rng.random() < 0.1 and p > 2:
                row[1] = mask  # left context not known yet
            rows.append(row)
            pos.append(p)
        end = text.index(safe_tok.pad_id) if safe_tok.pad_id in text else D
        if end < D - 2:  # an ended molecule with an atom fixed further right: no pad there
            rows.append(list(text[:end + 1]) + [mask] * (D - end - 2) + [g.tokens.index("C")])
            pos.append(end + 1)
    x, pos_t = torch.tensor(rows), torch.tensor(pos)
    full = g(x, pos_t, mask)
    kinds = set()
    for b, (row, p) in enumerate(zip(rows, pos)):  # the mask, from allowed_in directly
        want = [True] * g.K
        if mask not in row[:p]:
            want = g.allowed_in(g.state_of(row[:p]), budget=D - p - 1)
            if any(t not in (mask, g.pad) for t in row[p + 1:]):
                want[g.pad] = False
            want = want if any(want) else [True] * g.K
        assert full[b].tolist() == want, (row, p)
    for b, check in enumerate(g.checks(x, pos_t, mask)):
        if check is None:
            kinds.add("all")
            want = [True] * g.K
        elif isinstance(check, int):
            kinds.add("forced")
            want = [i == check for i in range(g.K)]
        else:
            kinds.add("test")
            want = [check(i) for i in range(g.K)]
            if not any(want):
                want = [True] * g.K
        assert full[b].tolist() == want, (rows[b], pos[b])
    assert kinds == {"all", "forced", "test"}


def test_constraint_modes_steer_rings_only_when_full(safe_tok):
    """``syntax`` keeps every syntax rule but lets a ring RDKit cannot kekulise close (the
    validity check then draws the molecule again); ``full`` refuses it at the closing digit."""
    full, syntax = constraint_for(safe_tok, "full"), constraint_for(safe_tok, "syntax")
    assert constraint_for(safe_tok, "off") is None
    assert constraint_for(SelfiesTokenizer.build(["CCO"]), "full") is None
    five = _ids(full, safe_tok.regex_tokens("c1cccc1")) + [full.pad]
    assert _walk(full, five, 20) == len(five) - 1  # ending it (an exocyclic "=O" could save it)
    assert _walk(syntax, five, 20) is None
    unclosed = _ids(full, safe_tok.regex_tokens("C(C")) + [full.pad]
    assert _walk(syntax, unclosed, 20) == 3  # the branch must close before the end
    with pytest.raises(ValueError, match="full, syntax, off"):
        constraint_for(safe_tok, "strict")
