"""The tokenizer protocol: :class:`MolTokenizer` turns SMILES into fixed-length id sequences
``(D,)`` over a :class:`~mam_core.core.vocab.Vocabulary` and back.

Subclasses (:mod:`.selfies`, :mod:`.smiles`, :mod:`.safe`) only say how a canonical SMILES
becomes tokens and how tokens become a SMILES; canonicalisation, padding, error messages,
batching (optionally over worker processes) and persistence live here so they behave alike.
Input SMILES are canonicalised with RDKit before tokenising (``canonicalize=True``, the default),
so one molecule always maps to one token sequence whatever spelling the user typed. RDKit's own
logging is silenced only inside these calls, never globally at import.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from rdkit import Chem

from ...core.vocab import MASK_TOKEN, Vocabulary
from ..rdkit_utils import mol_from_smiles, quiet_rdkit
from .errors import (
    DecodingError,
    InvalidSmilesError,
    SequenceTooLongError,
    TokenizationError,
    UnknownMoleculeTokenError,
)

__all__ = ["EncodedBatch", "MolTokenizer", "SpelledBatch", "clear_encoding_memo"]

logger = logging.getLogger(__name__)

#: recently encoded molecules remembered per tokenizer (a pasted library is encoded for
#: several tables in a row)
_MEMO_SIZE = 20_000
_MEMO: OrderedDict[tuple[str, str], list[str] | TokenizationError] = OrderedDict()
_MEMO_LOCK = threading.Lock()
#: smallest share worth sending to a worker process
_MIN_POOL_CHUNK = 128


def clear_encoding_memo() -> None:
    """Forget remembered encodings (benchmarks that time encoding itself call this)."""
    with _MEMO_LOCK:
        _MEMO.clear()


# --------------------------------------------------------------------------------- results
@dataclass
class EncodedBatch:
    """Result of a lenient batch encoding (molecules that fail are skipped, not fatal).

    Attributes:
        ids: ``(N, D)`` int64 ids of the molecules that encoded, in input order.
        kept: input indices of those N molecules (``ids[j]`` encodes ``smiles[kept[j]]``).
        errors: ``(input index, message)`` for every skipped molecule.
    """

    ids: torch.Tensor  # (N, D)
    kept: list[int]
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def n_dropped(self) -> int:
        return len(self.errors)


@dataclass
class SpelledBatch:
    """Molecules encoded in several of the spellings the model writes them in
    (:meth:`MolTokenizer.encode_spellings`).

    Attributes:
        ids: ``(R, D)`` int64, every scored spelling of every kept molecule.
        group: ``(R,)`` long, which kept molecule (``0..N-1``) each row spells.
        count: ``(N,)`` long, how many spellings each kept molecule has in all.
        kept: input indices of the N molecules that encoded, in input order.
        errors: ``(input index, message)`` for every skipped molecule.
    """

    ids: torch.Tensor
    group: torch.Tensor
    count: torch.Tensor
    kept: list[int]
    errors: list[tuple[int, str]] = field(default_factory=list)


def _tokens_chunk(payload: tuple[dict, list[str]]) -> list[list[str] | TokenizationError]:
    """Worker for multi-process tokenisation (module level so it pickles)."""
    from . import tokenizer_from_dict

    spec, chunk = payload
    tok = tokenizer_from_dict(spec)
    return tok._tokenize_many(chunk)


# --------------------------------------------------------------------------------- base class
class MolTokenizer(ABC):
    """Common protocol of molecule tokenizers: SMILES <-> ``(D,)`` ids over a :class:`Vocabulary`.

    Subclasses define how a canonical SMILES becomes tokens (:meth:`_smiles_to_tokens`) and how
    tokens become a SMILES (:meth:`_tokens_to_smiles`); everything else (canonicalisation,
    padding, error messages, batching, persistence) lives here so the two behave identically.

    Args:
        vocab: the vocabulary; its pad token must be the subclass's pad token.
        D: fixed sequence length (molecules are padded to it).
        canonicalize: canonicalise input SMILES with RDKit before tokenising (recommended; the
            vocabulary and D were measured on canonical SMILES).
    """

    kind: ClassVar[str] = ""
    pad_token: ClassVar[str] = ""

    def __init__(self, vocab: Vocabulary, D: int, canonicalize: bool = True) -> None:  # noqa: N803
        if not isinstance(vocab, Vocabulary):
            raise TypeError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
        if vocab.pad_token != self.pad_token:
            raise ValueError(
                f"a {self.kind} vocabulary must use pad token {self.pad_token!r}, "
                f"got {vocab.pad_token!r}"
            )
        if isinstance(D, bool) or not isinstance(D, int) or D < 1:
            raise ValueError(f"D must be a positive integer, got {D!r}")
        self.vocab = vocab
        self.D = D
        self.canonicalize = bool(canonicalize)
        #: Counts from :meth:`build`/:meth:`fit_encode` (None when loaded from a dict).
        self.build_stats: dict[str, int] | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def K(self) -> int:  # noqa: N802 - paper's name
        """Number of real tokens (pad included, mask excluded)."""
        return self.vocab.K

    @property
    def mask_id(self) -> int:
        """The mask id (== K)."""
        return self.vocab.mask_id

    @property
    def pad_id(self) -> int:
        """Id of the pad token."""
        return int(self.vocab.pad_id)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(K={self.K}, D={self.D}, vocab={self.vocab.name!r})"

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _smiles_to_tokens(self, smiles: str) -> list[str]:
        """Tokens of one (already canonicalised and RDKit-valid) SMILES; raise TokenizationError."""

    @abstractmethod
    def _tokens_to_smiles(self, tokens: list[str]) -> str:
        """SMILES of a token list (pads already removed for SMILES; kept for SELFIES)."""

    def _context(self) -> contextlib.AbstractContextManager:
        """Extra state needed around (de)tokenisation (SELFIES constraints); none by default."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ tokenising
    def _prepare(self, smiles: str) -> str:
        """Validate with RDKit and canonicalise (when enabled); raise InvalidSmilesError."""
        if not isinstance(smiles, str):
            raise InvalidSmilesError(
                repr(smiles), f"expected a SMILES string, got {type(smiles).__name__}"
            )
        text = smiles.strip()
        if not text:
            raise InvalidSmilesError(smiles, "empty SMILES")
        mol = mol_from_smiles(text)
        if mol is None:
            raise InvalidSmilesError(smiles, "RDKit cannot parse it")
        return Chem.MolToSmiles(mol) if self.canonicalize else text

    def _tokenize_one(self, smiles: str) -> list[str]:
        prepared = self._prepare(smiles)
        try:
            return self._smiles_to_tokens(prepared)
        except TokenizationError as err:
            if err.smiles != smiles:  # report what the user typed, not the canonical form
                raise type(err)(smiles, err.reason) from None
            raise

    def _tokenize_many(self, smiles: Iterable[str]) -> list[list[str] | TokenizationError]:
        """Tokenise many molecules under one logging/constraints context; errors returned."""
        out: list[list[str] | TokenizationError] = []
        with quiet_rdkit(), self._context():
            for s in smiles:
                try:
                    out.append(self._tokenize_one(s))
                except TokenizationError as err:
                    out.append(err)
        return out

    @staticmethod
    def _as_list(smiles: Iterable[str]) -> list[str]:
        """Materialise an iterable of SMILES once (generators must not be consumed twice)."""
        if isinstance(smiles, str):
            raise TypeError("expected a list of SMILES, got a single string")
        return list(smiles)

    def _tokenize_all(
        self,
        smiles: Sequence[str],
        n_jobs: int = 1,
        progress: bool = False,
        pool: Executor | None = None,
    ) -> list[list[str] | TokenizationError]:
        """Tokenise a list: molecules seen recently come from a small memo (the app encodes the
        same pasted list for several tables); the rest in this process, over ``n_jobs`` new
        processes, or in a warm ``pool`` (see :mod:`mam_core.chem.encoding_pool`)."""
        smiles = self._as_list(smiles)
        key = self._memo_key()
        with _MEMO_LOCK:
            out = [_MEMO.get((key, s)) if isinstance(s, str) else None for s in smiles]
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            fresh = self._tokenize_uncached([smiles[i] for i in todo], n_jobs, progress, pool)
            for i, r in zip(todo, fresh, strict=True):
                out[i] = r
            if len(todo) <= _MEMO_SIZE:
                with _MEMO_LOCK:
                    for i in todo:
                        if isinstance(smiles[i], str):
                            _MEMO[(key, smiles[i])] = out[i]
                    while len(_MEMO) > _MEMO_SIZE:
                        _MEMO.popitem(last=False)
        return out

    def _memo_key(self) -> str:
        """What makes two tokenizers encode alike (the memo is shared by equal tokenizers:
        :func:`~mam_core.chem.molecules.tokenizer_of` makes a new one per call)."""
        key = self.__dict__.get("_memo_key_cache")
        if key is None:
            key = json.dumps(self.to_dict(), sort_keys=True)
            self.__dict__["_memo_key_cache"] = key
        return key

    def _tokenize_uncached(
        self, smiles: list[str], n_jobs: int, progress: bool, pool: Executor | None
    ) -> list[list[str] | TokenizationError]:
        n_jobs = max(1, int(n_jobs))
        if pool is not None and not progress and len(smiles) >= 2 * _MIN_POOL_CHUNK:
            pooled = self._tokenize_in_pool(smiles, pool)
            if pooled is not None:
                return pooled
        chunk = 2_000
        chunks = [smiles[i : i + chunk] for i in range(0, len(smiles), chunk)]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(smiles), desc=f"tokenising ({self.kind})", unit="mol")
        out: list[list[str] | TokenizationError] = []
        try:
            if n_jobs == 1 or len(chunks) <= 1:
                for c in chunks:
                    out.extend(self._tokenize_many(c))
                    if bar is not None:
                        bar.update(len(c))
            else:
                spec = self.to_dict()
                with ProcessPoolExecutor(max_workers=n_jobs) as new_pool:
                    for c, res in zip(
                        chunks,
                        new_pool.map(_tokens_chunk, [(spec, c) for c in chunks]),
                        strict=True,
                    ):
                        out.extend(res)
                        if bar is not None:
                            bar.update(len(c))
        finally:
            if bar is not None:
                bar.close()
        return out

    def _tokenize_in_pool(
        self, smiles: list[str], pool: Executor
    ) -> list[list[str] | TokenizationError] | None:
        """Up to eight chunks shared among the pool's workers; ``None`` if the pool broke (a
        worker died), so the caller encodes here instead and nothing is lost."""
        from .. import encoding_pool

        size = max(_MIN_POOL_CHUNK, -(-len(smiles) // 8))
        chunks = [smiles[i : i + size] for i in range(0, len(smiles), size)]
        spec = self.to_dict()
        try:
            parts = list(pool.map(_tokens_chunk, [(spec, c) for c in chunks]))
        except BrokenExecutor as err:
            logger.warning("encoding pool failed (%s); encoding in this process", err)
            encoding_pool.discard(pool)
            return None
        return [r for part in parts for r in part]

    def tokenize(self, smiles: str) -> list[str]:
        """Token strings of one molecule (canonicalised first; no padding, no vocabulary check).

        Raises:
            InvalidSmilesError: RDKit cannot parse it, or it is empty.
            SelfiesEncodingError: (SELFIES) the encoder rejects it.
            TokenizationError: (SMILES) characters the tokeniser does not recognise.
        """
        with quiet_rdkit(), self._context():
            return self._tokenize_one(smiles)

    def _tokens_to_ids(self, smiles: str, tokens: Sequence[str]) -> list[int]:
        if len(tokens) > self.D:
            raise SequenceTooLongError(smiles, len(tokens), self.D)
        ids = []
        for t in tokens:
            if t not in self.vocab or t == self.pad_token:
                raise UnknownMoleculeTokenError(smiles, t, self.vocab.name)
            ids.append(self.vocab.id_of(t))
        return ids + [self.pad_id] * (self.D - len(ids))

    def encode(self, smiles: str) -> list[int]:
        """Ids of one molecule, padded to length D.

        Raises:
            TokenizationError: invalid SMILES, unencodable, unknown token (named), or longer than
                D (its length is given); every message names the molecule.
        """
        return self._tokens_to_ids(smiles, self.tokenize(smiles))

    def encode_batch(
        self,
        smiles: Sequence[str],
        n_jobs: int = 1,
        progress: bool = False,
        pool: Executor | None = None,
    ) -> torch.Tensor:
        """Ids of many molecules as a ``(B, D)`` int64 tensor; the first failure raises.

        Args:
            smiles: B SMILES strings.
            n_jobs: worker processes (RDKit + SELFIES cost ~0.7 ms per molecule on one core).
            progress: show a tqdm bar (for big datasets in scripts/CLI).
            pool: a warm worker pool (:mod:`mam_core.chem.encoding_pool`) to use instead.

        Raises:
            TokenizationError: for the first molecule (in input order) that cannot be encoded.
        """
        smiles = self._as_list(smiles)
        rows = []
        for s, toks in zip(smiles, self._tokenize_all(smiles, n_jobs, progress, pool),
                           strict=True):
            if isinstance(toks, TokenizationError):
                raise toks
            rows.append(self._tokens_to_ids(s, toks))
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), self.D)  # (B, D)

    def encode_filtered(
        self,
        smiles: Sequence[str],
        n_jobs: int = 1,
        progress: bool = False,
        pool: Executor | None = None,
    ) -> EncodedBatch:
        """Like :meth:`encode_batch` but skips molecules that fail, reporting which and why.

        Use it for datasets: e.g. a test set can hold a few molecules longer than the D measured
        on the training set.
        """
        smiles = self._as_list(smiles)
        rows, kept, errors = [], [], []
        for i, (s, toks) in enumerate(
            zip(smiles, self._tokenize_all(smiles, n_jobs, progress, pool), strict=True)
        ):
            try:
                if isinstance(toks, TokenizationError):
                    raise toks
                rows.append(self._tokens_to_ids(s, toks))
                kept.append(i)
            except TokenizationError as err:
                errors.append((i, str(err)))
        if errors:
            logger.info(
                "encode_filtered: skipped %d of %d molecules", len(errors), len(kept) + len(errors)
            )
        ids = torch.tensor(rows, dtype=torch.long).reshape(len(rows), self.D)  # (N, D)
        return EncodedBatch(ids=ids, kept=kept, errors=errors)

    #: ``True`` where :meth:`spellings` gives a molecule more than one string.
    many_spellings: ClassVar[bool] = False

    def spellings(self, tokens: list[str], k: int,
                  rng: random.Random) -> tuple[list[list[str]], int]:
        """Up to ``k`` token lists that write the same molecule as ``tokens`` the way the model
        was trained to write molecules, drawn uniformly without replacement, and how many there
        are in all.  One here: canonical SMILES and SELFIES write a molecule one way."""
        return [tokens], 1

    def spelling_count(self, tokens: list[str]) -> int:
        """How many strings write the molecule of ``tokens`` (see :meth:`spellings`)."""
        return 1

    def encode_spellings(self, smiles: Sequence[str], k: int, seed: int = 0,
                         pool: Executor | None = None) -> SpelledBatch:
        """Like :meth:`encode_filtered`, each molecule in up to ``k`` of its spellings
        (:meth:`spellings`): the rows whose probabilities add up to the molecule's
        (:func:`mam_core.core.likelihood.log_sum_over_spellings`).  Reproducible for a
        ``seed``."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        smiles = self._as_list(smiles)
        rng = random.Random(seed)
        rows, group, count, kept, errors = [], [], [], [], []
        for i, (s, toks) in enumerate(
            zip(smiles, self._tokenize_all(smiles, 1, False, pool), strict=True)
        ):
            try:
                if isinstance(toks, TokenizationError):
                    raise toks
                variants, n = self.spellings(toks, k, rng)
                ids = [self._tokens_to_ids(s, v) for v in variants]
            except TokenizationError as err:
                errors.append((i, str(err)))
                continue
            rows.extend(ids)
            group.extend([len(kept)] * len(ids))
            count.append(n)
            kept.append(i)
        return SpelledBatch(ids=torch.tensor(rows, dtype=torch.long).reshape(len(rows), self.D),
                            group=torch.tensor(group, dtype=torch.long),
                            count=torch.tensor(count, dtype=torch.long), kept=kept,
                            errors=errors)

    # ------------------------------------------------------------------ decoding
    def _ids_list(self, ids: Any) -> list[int]:
        if torch.is_tensor(ids):
            if ids.dim() != 1:
                raise DecodingError(
                    f"decode expects one sequence (D,), got shape {tuple(ids.shape)}"
                )
            if ids.is_floating_point():
                raise DecodingError(f"decode expects integer ids, got dtype {ids.dtype}")
            ids = ids.tolist()
        ids = [int(i) for i in ids]
        for pos, i in enumerate(ids):
            if i == self.mask_id:
                raise DecodingError(
                    f"position {pos} holds the mask id {self.mask_id} ({MASK_TOKEN}); "
                    "sample or fill every masked position before decoding"
                )
            if not 0 <= i < self.K:
                raise DecodingError(
                    f"position {pos} holds id {i}, outside 0..{self.K - 1} (K={self.K})"
                )
        return ids

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """SMILES of one id sequence (a ``(D,)`` tensor or a list of ints).

        Raises:
            DecodingError: a mask id, an id out of range, or a tensor that is not 1-D.
        """
        tokens = [self.vocab.tokens[i] for i in self._ids_list(ids)]
        with quiet_rdkit(), self._context():
            return self._tokens_to_smiles(tokens)

    def decode_batch(self, ids: torch.Tensor | Sequence[Sequence[int]]) -> list[str]:
        """SMILES of each row of a ``(B, D)`` id tensor (or a list of id lists)."""
        if torch.is_tensor(ids):
            if ids.dim() != 2:
                raise DecodingError(
                    f"decode_batch expects (B, D) ids, got shape {tuple(ids.shape)}"
                )
            rows = ids.tolist()
        else:
            rows = [list(r) for r in ids]
        token_rows = [[self.vocab.tokens[i] for i in self._ids_list(r)] for r in rows]
        with quiet_rdkit(), self._context():
            return [self._tokens_to_smiles(t) for t in token_rows]

    # ------------------------------------------------------------------ building
    @classmethod
    def _extra_init(cls, kwargs: dict) -> dict:
        """Subclass-specific constructor arguments accepted by build (e.g. SELFIES constraints)."""
        if kwargs:
            raise TypeError(f"unexpected arguments for {cls.__name__}: {sorted(kwargs)}")
        return {}

    @classmethod
    def fit_encode(
        cls,
        smiles_list: Sequence[str],
        max_length: int | None = None,
        name: str | None = None,
        drop_long: bool = False,
        drop_invalid: bool = False,
        canonicalize: bool = True,
        n_jobs: int = 1,
        progress: bool = False,
        **kwargs: Any,
    ) -> tuple[MolTokenizer, EncodedBatch]:
        """Build a tokenizer from data and encode that data in the same pass.

        Tokenising is the expensive part (~0.7 ms per molecule for SELFIES), so building the
        vocabulary and encoding the training set share one tokenisation.

        Args:
            smiles_list: training SMILES.
            max_length: D; defaults to the longest tokenised molecule kept.
            name: vocabulary name stored in checkpoints (defaults to the tokenizer kind).
            drop_long: when ``max_length`` is given, drop molecules longer than it instead of
                raising :class:`SequenceTooLongError`.
            drop_invalid: drop molecules that cannot be tokenised instead of raising.
            canonicalize: canonicalise inputs with RDKit first (recommended).
            n_jobs: worker processes for tokenisation.
            progress: show a tqdm bar.
            **kwargs: subclass options (``constraints`` for SELFIES).

        Returns:
            The tokenizer (with ``build_stats``: n_input, n_kept, n_invalid, n_too_long,
            longest) and the encoded kept molecules.
        """
        extra = cls._extra_init(dict(kwargs))
        if isinstance(smiles_list, str):
            raise TypeError("expected a list of SMILES, got a single string")
        smiles_list = list(smiles_list)
        if not smiles_list:
            raise ValueError("cannot build a vocabulary from an empty list of molecules")
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise ValueError(f"max_length must be a positive integer or None, got {max_length!r}")
        # A throw-away instance carries the tokenisation settings (and pickles to workers).
        probe = cls(
            Vocabulary((cls.pad_token, "_"), cls.pad_token, "probe"), 1, canonicalize, **extra
        )
        results = probe._tokenize_all(smiles_list, n_jobs, progress)

        kept: list[int] = []
        token_lists: list[list[str]] = []
        errors: list[tuple[int, str]] = []
        n_invalid = n_long = 0
        for i, (s, toks) in enumerate(zip(smiles_list, results, strict=True)):
            if isinstance(toks, TokenizationError):
                if not drop_invalid:
                    raise toks
                n_invalid += 1
                errors.append((i, str(toks)))
                continue
            if max_length is not None and len(toks) > max_length:
                err = SequenceTooLongError(s, len(toks), max_length)
                if not drop_long:
                    raise err
                n_long += 1
                errors.append((i, str(err)))
                continue
            kept.append(i)
            token_lists.append(toks)
        if not token_lists:
            raise ValueError(
                f"no molecule could be tokenised ({n_invalid} invalid, {n_long} too long)"
            )

        longest = max(len(t) for t in token_lists)
        D = max_length if max_length is not None else longest  # noqa: N806
        alphabet = set().union(*token_lists)
        alphabet.discard(cls.pad_token)
        vocab = Vocabulary(
            tuple(sorted(alphabet)) + (cls.pad_token,), cls.pad_token, name or cls.kind
        )
        tok = cls(vocab, D, canonicalize, **extra)
        tok.build_stats = {
            "n_input": len(smiles_list),
            "n_kept": len(kept),
            "n_invalid": n_invalid,
            "n_too_long": n_long,
            "longest": longest,
        }
        if n_invalid or n_long:
            logger.info(
                "%s vocabulary: dropped %d invalid and %d too-long of %d molecules",
                cls.kind,
                n_invalid,
                n_long,
                len(smiles_list),
            )
        ids = torch.tensor(
            [tok._tokens_to_ids(smiles_list[i], t) for i, t in zip(kept, token_lists, strict=True)],
            dtype=torch.long,
        ).reshape(len(kept), D)  # (N, D)
        return tok, EncodedBatch(ids=ids, kept=kept, errors=errors)

    @classmethod
    def build(
        cls,
        smiles_list: Sequence[str],
        max_length: int | None = None,
        name: str | None = None,
        drop_long: bool = False,
        drop_invalid: bool = False,
        canonicalize: bool = True,
        n_jobs: int = 1,
        progress: bool = False,
        **kwargs: Any,
    ) -> MolTokenizer:
        """Vocabulary (sorted tokens + pad) and D from data; see :meth:`fit_encode` for args.

        The counts of dropped molecules are in ``tokenizer.build_stats``.
        """
        tok, _ = cls.fit_encode(
            smiles_list,
            max_length,
            name,
            drop_long,
            drop_invalid,
            canonicalize,
            n_jobs,
            progress,
            **kwargs,
        )
        return tok

    # ------------------------------------------------------------------ persistence
    def _extra_dict(self) -> dict:
        return {}

    def to_dict(self) -> dict:
        """JSON-serialisable description: kind, vocabulary, D, canonicalize (+ SELFIES preset)."""
        return {
            "kind": self.kind,
            "vocab": self.vocab.to_dict(),
            "D": self.D,
            "canonicalize": self.canonicalize,
            **self._extra_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> MolTokenizer:
        """Rebuild from :meth:`to_dict`; on the base class it dispatches on ``d["kind"]``."""
        if not isinstance(d, dict):
            raise ValueError(f"tokenizer spec must be a dict, got {type(d).__name__}")
        from . import get_tokenizer

        kind = d.get("kind")
        target = get_tokenizer(kind) if cls is MolTokenizer else cls
        if kind != target.kind:
            raise ValueError(f"spec is for a {kind!r} tokenizer, not {target.kind!r}")
        allowed = {"kind", "vocab", "D", "canonicalize"} | set(target._extra_keys())
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(f"unknown {kind} tokenizer keys: {sorted(unknown)}")
        missing = {"vocab", "D"} - set(d)
        if missing:
            raise ValueError(f"{kind} tokenizer spec lacks keys: {sorted(missing)}")
        extra = {k: d[k] for k in target._extra_keys() if k in d}
        return target(
            Vocabulary.from_dict(d["vocab"]),
            int(d["D"]),
            bool(d.get("canonicalize", True)),
            **extra,
        )

    @classmethod
    def _extra_keys(cls) -> tuple[str, ...]:
        return ()
