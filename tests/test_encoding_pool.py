"""The warm encoding pool and the encoding memo give exactly the encodings of one process."""

from __future__ import annotations

import os

import pytest

from mam_core.chem import encoding_pool
from mam_core.chem.moses import load_moses
from mam_core.chem.tokenizers import SafeTokenizer, clear_encoding_memo
from mam_core.chem.tokenizers import base as tokenizer_base


@pytest.fixture(scope="module")
def library():
    """Training molecules to build the tokenizer, and a library with rows it cannot encode."""
    train = load_moses("train", limit=2000)
    test = load_moses("test", limit=400)
    bad = ["not-a-molecule", "", "C" * 80, "[U]CC", "c1ccccc1[Se]C"]
    return train, test[:200] + bad + test[200:]


def _fresh(train) -> SafeTokenizer:
    tok = SafeTokenizer.build(train, max_length=64)
    clear_encoding_memo()
    return tok


def _as_text(batch):
    return batch.ids.tolist(), batch.kept, batch.errors


def test_pool_encodes_exactly_as_one_process_keeps_order_and_reasons(library):
    train, lib = library
    serial = _as_text(_fresh(train).encode_filtered(lib))
    assert serial[2], "the library must hold rows that cannot be encoded"
    pool = encoding_pool.start(2)
    try:
        assert pool is not None and encoding_pool.pool_for(len(lib)) is pool
        assert encoding_pool.pool_for(encoding_pool.MIN_MOLECULES - 1) is None
        pooled = _as_text(_fresh(train).encode_filtered(lib, pool=pool))
    finally:
        encoding_pool.shutdown()
    assert pooled == serial
    assert encoding_pool.running() is None


def test_a_broken_pool_falls_back_to_this_process_and_is_remade(library):
    train, lib = library
    serial = _as_text(_fresh(train).encode_filtered(lib))
    pool = encoding_pool.start(2)
    try:
        # a worker dies: the batch is encoded here, and the dead pool is no longer handed out
        pool.submit(os._exit, 1)
        assert _as_text(_fresh(train).encode_filtered(lib, pool=pool)) == serial
        assert encoding_pool.running() is None
        thread = encoding_pool.start_in_background(2)
        thread.join(timeout=60)
        assert encoding_pool.running() not in (None, pool)
        assert encoding_pool.start_in_background(2) is None  # one pool per process
    finally:
        encoding_pool.shutdown()
    assert _as_text(_fresh(train).encode_filtered(lib, pool=_Broken())) == serial


class _Broken:
    """An executor whose workers died (what a killed worker process looks like)."""

    _max_workers = 2

    def map(self, *args, **kwargs):
        from concurrent.futures.process import BrokenProcessPool

        raise BrokenProcessPool("a worker died")


def test_memo_returns_the_same_encodings_and_is_keyed_by_tokenizer(library):
    train, lib = library
    tok = _fresh(train)
    first = _as_text(tok.encode_filtered(lib))
    assert len(tokenizer_base._MEMO) == len(set(lib))
    again = SafeTokenizer.from_dict(tok.to_dict())  # what tokenizer_of makes on every call
    assert _as_text(again.encode_filtered(lib)) == first
    assert len(tokenizer_base._MEMO) == len(set(lib))  # all hits: nothing new stored
    # a tokenizer with another length is another key: its own encodings (and length errors)
    short = SafeTokenizer.from_dict({**tok.to_dict(), "D": 40})
    ids, kept, errors = _as_text(short.encode_filtered(lib))
    assert len(kept) < len(first[1]) and all(len(r) == 40 for r in ids)
    assert any("longer than" in m or "tokens" in m for _, m in errors)
