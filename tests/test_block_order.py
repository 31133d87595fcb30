"""Token-level fragment reordering against the RDKit encoder it stands in for."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mam_core.chem import safe
from mam_core.chem.block_order import BlockTokens, shuffle_block_order, shuffled_copies
from mam_core.chem.moses import load_moses
from mam_core.chem.training_data import fragment_block_dataset


@pytest.fixture(scope="module")
def encoded():
    smiles = load_moses("train", limit=150)
    tok, ids = fragment_block_dataset(smiles, copies=1, seed=3)
    return smiles, tok, ids.numpy()


def _text(tok, row) -> str:
    return "".join(tok.vocab.tokens[i] for i in row if i != tok.pad_id)


def test_reordered_rows_are_exactly_strings_the_encoder_writes(encoded):
    smiles, tok, ids = encoded
    bt = BlockTokens(tok.vocab.tokens)
    out = shuffle_block_order(ids, bt, seed=0)
    changed = 0
    for s, row, new in zip(smiles, ids, out):
        n_blocks = _text(tok, row).count(".") + 1
        if n_blocks > 4:  # enumerate the encoder's orders only where that is cheap
            continue
        rng = random.Random(1)
        writable = {safe.encode(s, rng=rng) for _ in range(200)}
        assert _text(tok, new) in writable, s
        assert (new == tok.pad_id).sum() == (row == tok.pad_id).sum()
        changed += _text(tok, new) != _text(tok, row)
    assert changed > 20  # most multi-block molecules got a new order


def test_labels_are_renumbered_by_first_appearance(encoded):
    _, tok, ids = encoded
    out = shuffle_block_order(ids, BlockTokens(tok.vocab.tokens), seed=5)
    for row in out:
        labels = [tok.vocab.tokens[i] for i in row if tok.vocab.tokens[i].startswith("%")]
        first = list(dict.fromkeys(labels))
        assert first == [f"%{10 + k}" for k in range(len(first))]


def test_copies_are_deterministic_whatever_the_worker_count(encoded):
    _, tok, ids = encoded
    one = shuffled_copies(ids, tok.vocab.tokens, copies=2, seed=7, jobs=1, chunk=40)
    two = shuffled_copies(ids, tok.vocab.tokens, copies=2, seed=7, jobs=2, chunk=40)
    assert one.shape == (2 * len(ids), ids.shape[1])
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one[: len(ids)], one[len(ids):])


def test_vocabulary_without_blocks_is_refused():
    with pytest.raises(ValueError, match="fragment-block"):
        BlockTokens(["C", "c", "[nop]"], pad="[nop]")
