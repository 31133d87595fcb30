"""Fragment blocks, attachment-point fragments and the design guarantee.

The guarantee is tested with a scripted sampler (it writes chosen completions into the masked
positions), so every branch (matched, invalid, fragment missing, resampled) is exercised
deterministically; the real models are exercised by the benchmark."""

from __future__ import annotations

import random

import pytest
import torch
from rdkit import Chem

from mam_core import MaM, NetworkConfig
from mam_core.chem import safe
from mam_core.chem.fragments import FragmentError, fragment_blocks, match_atoms, parse_fragment
from mam_core.chem.training_data import fragment_block_dataset
from mam_core.chem.molecules import attach_tokenizer
from mam_core.chem.moses import load_moses
from mam_core.chem.tokenizers import SafeTokenizer, get_tokenizer, tokenizer_from_dict
from mam_core.workflows.generate import STATUS_OK, generate_molecules


def canon(s: str) -> str:
    return Chem.MolToSmiles(Chem.MolFromSmiles(s))


# ----------------------------------------------------------------------------- fragment blocks
@pytest.fixture(scope="module")
def moses_200():
    return load_moses("train", limit=200)


def test_blocks_round_trip_on_moses(moses_200):
    rng = random.Random(0)
    for s in moses_200:
        text = safe.encode(s)
        assert safe.decode(text) == canon(s)
        shuffled = safe.encode(s, rng=rng)
        assert safe.decode(shuffled) == canon(s)
        assert sorted(shuffled.split(".")) != [] and len(shuffled) == len(text)


def test_labels_are_two_digit_and_numbered_by_first_appearance():
    text = safe.encode("COc1ccc(C(=O)NCc2ccccc2)cc1", rng=random.Random(3))
    labels = [t for t in safe._TOKEN.findall(text) if t.startswith("%")]
    first = list(dict.fromkeys(labels))
    assert first == [f"%{10 + i}" for i in range(len(first))]
    assert all(labels.count(lab) == 2 for lab in first)  # every cut bond closed exactly once
    assert "." in text


def test_molecule_without_cut_bonds_is_one_block():
    assert safe.encode("c1ccccc1") == "c1ccccc1"


def test_decode_refuses_disconnected_or_open_labels():
    assert safe.decode("CC%10.CC") is None  # label never closed
    assert safe.decode("CC.CC") is None  # two molecules
    assert safe.decode("") is None
    assert safe.decode("CC%10.O%10") == "CCO"


def test_encode_errors_are_clear():
    with pytest.raises(safe.SafeEncodingError, match="cannot parse"):
        safe.encode("not a molecule")
    with pytest.raises(safe.SafeEncodingError, match="attachment points"):
        safe.encode("[*]c1ccccc1")


def test_safe_tokenizer_round_trip_and_persistence(moses_200):
    tok, ids = fragment_block_dataset(moses_200, copies=2, seed=0, max_length=64)
    assert get_tokenizer("safe") is SafeTokenizer
    assert ids.shape[0] == 2 * len(moses_200) and ids.shape[1] == 64
    assert {"%10", ".", "<pad>"} <= set(tok.vocab.tokens)
    decoded = tok.decode_batch(ids)
    assert decoded[0::2] == [canon(s)
                             for s in moses_200]  # both shuffles of a molecule decode to it
    assert decoded[1::2] == [canon(s) for s in moses_200]
    again = tokenizer_from_dict(tok.to_dict())
    assert isinstance(again,
                      SafeTokenizer) and again.encode(moses_200[0]) == tok.encode(moses_200[0])
    assert tok.decode(tok.encode(moses_200[1])) == canon(moses_200[1])


def test_shuffles_are_reproducible_whatever_the_worker_count(moses_200):
    one = safe.fragment_order_variants(moses_200[:50], copies=2, seed=7, n_jobs=1)
    assert one == safe.fragment_order_variants(moses_200[:50], copies=2, seed=7, n_jobs=1)
    assert one != safe.fragment_order_variants(moses_200[:50], copies=2, seed=8, n_jobs=1)


# ----------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "text, task, n_att, stereo",
    [
        ("[*]c1ccc(F)cc1", "motif extension", 1, False),
        ("[1*]c1ccc([2*])nc1", "scaffold decoration", 2, False),
        ("*c1ccccc1*", "scaffold decoration", 2, False),
        ("[*]c1ccccc1.[*]N1CCOCC1", "linker design", 2, False),
        ("c1ccc2[nH]ccc2c1", "superstructure", 0, False),
        ("[*]n1ccnc1", "motif extension", 1, False),
        ("[*]C[N+](C)(C)C", "motif extension", 1, False),
        ("[*]C(=O)[O-]", "motif extension", 1, False),
        ("C[C@H](N[*])C(=O)O", "motif extension", 1, True),
        ("F/C=C/[*]", "motif extension", 1, True),
    ],
)
def test_parse_fragment(text, task, n_att, stereo):
    spec = parse_fragment(text)
    assert (spec.task, spec.n_attachments, spec.has_stereo) == (task, n_att, stereo)
    assert all(a.GetAtomicNum() != 0 for a in spec.query.GetAtoms())


def test_query_of_aromatic_nitrogen_gets_its_hydrogen():
    assert parse_fragment("[*]n1ccnc1").query_smiles == "c1c[nH]cn1"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("C1CC", "cannot read"),
        ("hello", "cannot read"),
        ("[*][*]", "only of attachment points"),
        ("C.C.C", "3 dot-separated pieces"),
        ("c1ccccc1.[*]C", "attachment point on each piece"),
        ("[*]=CC", "single bond"),
        ("C C", "no spaces"),
    ],
)
def test_parse_fragment_rejects_junk_with_a_clear_message(text, message):
    with pytest.raises(FragmentError, match=message):
        parse_fragment(text)


def test_fragment_blocks_leave_one_open_label_per_attachment_point():
    for text in ("[*]c1ccc(NC(C)=O)cc1", "[1*]c1ccc([2*])nc1", "[*]c1ccccc1.[*]N1CCOCC1"):
        spec = parse_fragment(text)
        blocks = fragment_blocks(spec)
        assert len(blocks.open_labels) == spec.n_attachments
        assert blocks.model_text.endswith(".")
        # closing every open label with a methyl gives the fragment with methyls at its points
        closed = blocks.model_text + ".".join(f"C{lab}" for lab in blocks.open_labels)
        with_methyls = text.replace("[1*]", "C").replace("[2*]", "C").replace("[*]", "C")
        assert canon(closed) == canon(with_methyls)


def test_superstructure_grows_from_random_hydrogen_bearing_atoms():
    spec = parse_fragment("c1ccc2[nH]ccc2c1")
    texts = {fragment_blocks(spec, random.Random(s)).model_text for s in range(20)}
    assert len(texts) > 3
    for s in range(20):
        b = fragment_blocks(spec, random.Random(s))
        assert 1 <= len(b.open_labels) <= 3


@pytest.mark.parametrize("text", ["C[C@H](N[*])C(=O)O", "C[C@@H](N[*])C(=O)O", "F/C=C/[*]",
                                  "[*]C[C@@H]1CC[C@H](C)CC1", "[*][C@@](F)(Cl)C"])
def test_stereo_is_written_back_faithfully(text):
    blocks = fragment_blocks(parse_fragment(text))
    assert blocks.stereo_kept
    closed = blocks.stereo_text + ".".join(f"C{lab}" for lab in blocks.open_labels)
    assert canon(closed) == canon(text.replace("[*]", "C"))
    assert "@" not in blocks.model_text and "/" not in blocks.model_text


def test_match_atoms():
    spec = parse_fragment("[*]c1ccc(F)cc1")
    assert match_atoms("Cc1ccc(F)cc1", spec) is not None
    assert match_atoms("Cc1ccccc1", spec) is None
    assert match_atoms("not smiles", spec) is None


# ----------------------------------------------------------------------------- the guarantee
@pytest.fixture(scope="module")
def safe_model(moses_200):
    tok, _ = fragment_block_dataset(moses_200, copies=1, seed=0, max_length=64)
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    return model, tok


class ScriptedSampler:
    """Fills masked positions with the tokens of scripted completions, one per call and row."""

    def __init__(self, model, tok, completions):
        self.model, self.tok, self.completions, self.calls = model, tok, list(completions), 0

    def __call__(self, n, order="random", template=None, **kw):
        out = template.clone() if template is not None else self.model.empty(n)
        for r in range(n):
            text = self.completions.pop(0)
            toks = [self.tok.vocab.id_of(t) for t in self.tok.regex_tokens(text)]
            free = (out[r] == self.model.mask_id).nonzero().flatten().tolist()
            ids = toks + [self.tok.pad_id] * (len(free) - len(toks))
            out[r, free] = torch.tensor(ids)
        self.calls += 1
        return out


def test_guarantee_every_ok_row_matches_and_failures_are_marked(safe_model, monkeypatch):
    model, tok = safe_model
    frag = "[*]c1ccc(F)cc1"  # its block: Fc1ccc%10cc1.
    script = ["CC%10", "CC%11", "OC(=O)C%10", "CCC", "CC%11", "CC%11", "CC%11", "CC%11"]
    sampler = ScriptedSampler(model, tok, script)
    monkeypatch.setattr(model, "sample", sampler)
    table = generate_molecules(model, 4, fragment=frag, seed=0, max_rounds=3)
    assert list(table["status"][:3]) == [STATUS_OK, "invalid molecule", STATUS_OK]
    assert table["SMILES"][0] == canon("CCc1ccc(F)cc1")
    assert table["SMILES"][2] == canon("OC(=O)Cc1ccc(F)cc1")
    spec = parse_fragment(frag)
    for smi, status, atoms in zip(table["SMILES"], table["status"], table["matched_atoms"]):
        if status == STATUS_OK:
            assert match_atoms(smi, spec) is not None and len(atoms) == spec.query.GetNumAtoms()
    # resampled, still failing
    assert table["status"][1] == "invalid molecule" and table["rounds"][1] == 3
    assert sampler.calls == 3
    s = table.attrs["summary"]
    assert s["requested"] == 4 and s["matched"] == 2 + (table["status"][3] == STATUS_OK)
    assert table.attrs["task"] == "motif extension"


def test_repeated_molecules_are_drawn_again_first_round_counted(safe_model, monkeypatch):
    model, tok = safe_model
    frag = "[*]c1ccc(F)cc1"
    # round 1: rows 0 and 1 write the same molecule, row 2 another; round 2 redraws row 1 only
    sampler = ScriptedSampler(model, tok, ["CC%10", "CC%10", "OC%10", "CCC%10"])
    monkeypatch.setattr(model, "sample", sampler)
    table = generate_molecules(model, 3, fragment=frag, seed=0, max_rounds=3)
    assert sampler.calls == 2 and list(table["rounds"]) == [1, 2, 1]
    assert table["SMILES"][1] == canon("CCCc1ccc(F)cc1") and not table["duplicate"].any()
    s = table.attrs["summary"]
    assert s["unique"] == 3 and s["first_round"] == {"valid": 3, "matched": 3, "unique": 2}

    # repeats left after the last round stay ok, marked; distinct=False keeps the first draw
    for distinct, calls in ((True, 1), (False, 1)):
        sampler = ScriptedSampler(model, tok, ["CC%10", "CC%10"])
        monkeypatch.setattr(model, "sample", sampler)
        table = generate_molecules(model, 2, fragment=frag, seed=0, max_rounds=1, distinct=distinct)
        assert sampler.calls == calls and list(table["status"]) == [STATUS_OK, STATUS_OK]
        assert list(table["duplicate"]) == [False, True]
        assert table.attrs["summary"]["unique"] == 1
    sampler = ScriptedSampler(model, tok, ["CC%10", "CC%10"])
    monkeypatch.setattr(model, "sample", sampler)
    table = generate_molecules(model, 2, fragment=frag, seed=0, max_rounds=3, distinct=False)
    assert sampler.calls == 1 and list(table["rounds"]) == [1, 1]


def test_linker_design_returns_molecules_with_both_pieces(safe_model, monkeypatch):
    model, tok = safe_model
    frag = "[*]c1ccccc1.[*]N1CCOCC1"
    sampler = ScriptedSampler(model, tok, ["O=C%11C%10"])
    monkeypatch.setattr(model, "sample", sampler)
    table = generate_molecules(model, 1, fragment=frag, seed=0, max_rounds=1)
    assert table["status"][0] == STATUS_OK
    assert table["SMILES"][0] == canon("O=C(Cc1ccccc1)N1CCOCC1")
    spec = parse_fragment(frag)
    assert spec.task == "linker design" and match_atoms(table["SMILES"][0], spec)


def test_stereo_fragment_comes_back_with_its_stereo(safe_model, monkeypatch):
    model, tok = safe_model
    sampler = ScriptedSampler(model, tok, ["CC%11"])
    monkeypatch.setattr(model, "sample", sampler)
    table = generate_molecules(model, 1, fragment="C[C@H](N[*])C(=O)O", seed=0, max_rounds=1)
    assert table["status"][0] == STATUS_OK
    assert table["SMILES"][0] == canon("C[C@H](NCC)C(=O)O")
    assert any("kept" in n for n in table.attrs["notices"])


def test_unknown_element_is_refused_with_the_token_named(safe_model):
    model, _ = safe_model
    with pytest.raises(FragmentError, match="'\\[Si\\]'|Si"):
        generate_molecules(model, 2, fragment="[*][Si](C)(C)C")


def test_selfies_model_refuses_linker_and_says_so():
    from mam_core.chem.tokenizers import SelfiesTokenizer

    tok = SelfiesTokenizer.build(load_moses("train", limit=100))
    model = MaM(NetworkConfig(D=tok.D, K=tok.K, d_model=16, n_layers=1, n_heads=2), tok.vocab)
    attach_tokenizer(model, tok)
    with pytest.raises(FragmentError, match="fragment-block model"):
        generate_molecules(model, 2, fragment="[*]c1ccccc1.[*]N1CCOCC1")
    table = generate_molecules(model, 4, fragment="C[C@H](N[*])C(=O)O", seed=0)
    assert any("Stereo" in n and "removed" in n for n in table.attrs["notices"])
    spec = parse_fragment("C[C@H](N[*])C(=O)O")
    ok = table[table["status"] == STATUS_OK]
    assert all(match_atoms(s, spec) for s in ok["SMILES"])


def test_constraint_mode_reaches_the_sampler_and_failed_rings_are_drawn_again(safe_model,
                                                                              monkeypatch):
    """``grammar`` picks the constraint (``auto``: the model's stored choice); under ``syntax``
    a ring RDKit cannot kekulise fails the validity check and its row is drawn again."""
    from mam_core.workflows.generate import SAMPLING_KEY, constraint_mode

    model, tok = safe_model
    seen = []
    sampler = ScriptedSampler(model, tok, ["c1cccc1", "CCO", "c1ccccc1"] * 3)

    def recording(n, **kw):
        seen.append(kw["constraint"])
        return sampler(n, **kw)

    monkeypatch.setattr(model, "sample", recording)
    monkeypatch.setitem(model.metadata, SAMPLING_KEY, {"constraint": "syntax"})
    table = generate_molecules(model, 2, seed=0, max_rounds=2)
    assert [g.kekule for g in seen] == [False, False]
    assert list(table["status"]) == [STATUS_OK, STATUS_OK] and list(table["rounds"]) == [2, 1]
    assert table["SMILES"][0] == canon("c1ccccc1")
    for grammar, kekule in ((True, True), ("full", True), ("syntax", False)):
        seen.clear()
        generate_molecules(model, 1, seed=0, max_rounds=1, grammar=grammar)
        assert seen[0].kekule is kekule
    seen.clear()
    generate_molecules(model, 1, seed=0, max_rounds=1, grammar=False)
    assert seen == [None]
    monkeypatch.setitem(model.metadata, SAMPLING_KEY, {"constraint": "bogus"})
    assert constraint_mode(model, "auto") == "full"
    with pytest.raises(ValueError, match="auto, full, syntax, off"):
        constraint_mode(model, "strict")
