"""Fragment order as a token operation: reshuffle encoded fragment-block strings without RDKit.

:func:`mam_core.chem.safe.encode` writes every block before it shuffles them, and numbers the cut
labels (``%10, %11, ...``) only afterwards, by first appearance.  So permuting the dot-separated
blocks of an encoded string and renumbering its labels gives exactly the string ``encode``
would have written for that order.  Training uses it to show the model a fresh fragment order in
every epoch from one encoded copy of the data, on machines that have no RDKit (a GPU box) and
without the cost of encoding again.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np

__all__ = ["BlockTokens", "shuffle_block_order", "shuffled_copies"]


class BlockTokens:
    """The token ids block shuffling needs: the dot, the pad and the cut labels in order.

    Built from a vocabulary's token list (``tokens[i]`` is id ``i``), so it works from the plain
    dictionary stored with prepared data, with no tokenizer object.
    """

    def __init__(self, tokens: Sequence[str], pad: str = "<pad>"):
        tokens = list(tokens)
        if "." not in tokens or pad not in tokens:
            raise ValueError("not a fragment-block vocabulary: it needs '.' and the pad token")
        self.dot = tokens.index(".")
        self.pad = tokens.index(pad)
        labels = sorted((t for t in tokens if t.startswith("%")), key=lambda t: int(t[1:]))
        self.labels = np.array([tokens.index(t) for t in labels], dtype=np.int64)
        self.is_label = np.zeros(len(tokens), dtype=bool)
        self.is_label[self.labels] = True


def _shuffle_row(row: np.ndarray, bt: BlockTokens, rng: np.random.Generator) -> np.ndarray:
    n = int(np.argmax(row == bt.pad)) if (row == bt.pad).any() else row.shape[0]
    body = row[:n]
    cuts = np.flatnonzero(body == bt.dot)
    if cuts.size == 0:
        return row
    blocks = np.split(body, cuts)  # every block but the first starts with its dot
    blocks = [blocks[0]] + [b[1:] for b in blocks[1:]]
    order = rng.permutation(len(blocks))
    out = row.copy()
    pos = 0
    for k, b in enumerate(order):
        if k:
            out[pos] = bt.dot
            pos += 1
        out[pos:pos + len(blocks[b])] = blocks[b]
        pos += len(blocks[b])
    # renumber the labels by first appearance
    mapping: dict[int, int] = {}
    for i in np.flatnonzero(bt.is_label[out[:n]]):
        old = int(out[i])
        if old not in mapping:
            mapping[old] = int(bt.labels[len(mapping)])
        out[i] = mapping[old]
    return out


def shuffle_block_order(ids: np.ndarray, bt: BlockTokens, seed: int) -> np.ndarray:
    """Every row of ``ids`` (``(N, D)`` fragment-block strings) with its blocks in a random order.

    Pads stay at the end and lengths are unchanged; the same ``seed`` gives the same rows.
    """
    ids = np.asarray(ids)
    rng = np.random.default_rng(seed)
    return np.stack([_shuffle_row(r, bt, rng) for r in ids]) if len(ids) else ids.copy()


def _chunk(payload):
    ids, tokens, seed = payload
    return shuffle_block_order(ids, BlockTokens(tokens), seed)


def shuffled_copies(ids: np.ndarray, tokens: Sequence[str], copies: int, seed: int = 0,
                    jobs: int = 1, chunk: int = 50_000) -> np.ndarray:
    """``copies`` reshuffled versions of ``ids`` stacked (``(copies·N, D)``), in ``jobs``
    processes; deterministic for a given ``seed`` whatever ``jobs`` is."""
    ids = np.asarray(ids)
    payloads = [(ids[i:i + chunk], list(tokens), seed * 1_000_003 + c * 10_007 + i)
                for c in range(copies) for i in range(0, len(ids), chunk)]
    if jobs <= 1:
        parts = [_chunk(p) for p in payloads]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            parts = list(pool.map(_chunk, payloads))
    return np.concatenate(parts) if parts else ids[:0]
