"""Token counts from offline encodings: exact for OpenAI models, a safe estimate otherwise.

tiktoken downloads its encoding files on first use, which a pod without internet cannot do.
The files ship in this package (`encodings/*.tiktoken.gz`, the exact bytes OpenAI publishes,
checked against tiktoken's own SHA-256) and the `Encoding` is built from them here, so
nothing is ever fetched. Models of other vendors have their own tokenizers; for them the
o200k count is inflated by `UNKNOWN_MODEL_FACTOR` (a budget that overestimates is safe, one
that underestimates overflows the context window).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import math
import threading
from functools import cache
from importlib import resources

import tiktoken

MEMO_SIZE = 8192
"""Token counts remembered per encoding (a turn re-counts its whole history and system prompt,
each text about twice; most of it was counted on the previous turn)."""
UNKNOWN_MODEL_FACTOR = 1.25
"""Claude, Gemini, Llama… count up to ~20% more tokens than o200k on English and code."""
MESSAGE_OVERHEAD_TOKENS = 4
"""Per chat message: role and separators (OpenAI's documented 3, plus one for safety)."""

_PATTERNS = {
    "cl100k_base": "|".join(
        [
            r"""'(?i:[sdmt]|ll|ve|re)""",
            r"""[^\r\n\p{L}\p{N}]?+\p{L}++""",
            r"""\p{N}{1,3}+""",
            r""" ?[^\s\p{L}\p{N}]++[\r\n]*+""",
            r"""\s++$""",
            r"""\s*[\r\n]""",
            r"""\s+(?!\S)""",
            r"""\s""",
        ]
    ),
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
_SPECIAL = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}
SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
"""tiktoken's expected hashes of the uncompressed files (tiktoken_ext.openai_public)."""

_CL100K_PREFIXES = ("gpt-4-", "gpt-4:", "gpt-3.5", "text-embedding-3", "text-embedding-ada")


def encoding_file_bytes(name: str) -> bytes:
    """The shipped, uncompressed .tiktoken file; ValueError when its hash is wrong."""
    packed = resources.files("tzurot.inference").joinpath(f"encodings/{name}.tiktoken.gz")
    data = gzip.decompress(packed.read_bytes())
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise ValueError(f"the shipped {name} encoding file is corrupt")
    return data


_BUILDING = threading.Lock()


def load_encoding(name: str) -> tiktoken.Encoding:
    """The encoding, built once per process (~1 s): a caller that asks while another thread
    builds it (the start-up warm-up) waits for that one instead of building it again."""
    with _BUILDING:
        return _build_encoding(name)


@cache  # immutable and ~1 s to build: once per process
def _build_encoding(name: str) -> tiktoken.Encoding:
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in encoding_file_bytes(name).splitlines() if line)
    }
    return tiktoken.Encoding(
        name, pat_str=_PATTERNS[name], mergeable_ranks=ranks, special_tokens=_SPECIAL[name]
    )


def encoding_name_for(model: str) -> tuple[str, bool]:
    """(encoding, exact): which encoding counts `model`'s tokens, and whether it is its own."""
    bare = model.rsplit("/", 1)[-1].lower()
    vendor = model.split("/", 1)[0].lower() if "/" in model else "openai"
    if vendor != "openai":
        return "o200k_base", False
    if bare == "gpt-4" or bare.startswith(_CL100K_PREFIXES):
        return "cl100k_base", True
    if bare.startswith(("gpt-", "o1", "o3", "o4", "chatgpt-", "codex")):
        return "o200k_base", True
    return "o200k_base", False


class CountMemo:
    """Token counts of recent texts, keyed by the text's hash and length (never the text:
    no conversation is kept here). A collision would only misjudge a budget by one text.
    Shared by the event loop and worker threads (lore runs in one): evicting and adding hold
    a lock, or two threads evicting the same oldest text would raise KeyError."""

    def __init__(self, encoding: tiktoken.Encoding, size: int = MEMO_SIZE) -> None:
        self._encoding = encoding
        self._size = size
        self._counts: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._counts)

    def count(self, text: str) -> int:
        key = (hash(text), len(text))
        tokens = self._counts.get(key)
        if tokens is None:
            tokens = len(self._encoding.encode(text, disallowed_special=()))
            with self._lock:
                if len(self._counts) >= self._size:
                    del self._counts[next(iter(self._counts))]  # the oldest
                self._counts[key] = tokens
        return tokens


@cache
def count_memo(name: str) -> CountMemo:
    return CountMemo(load_encoding(name))


class TokenCounter:
    """Counts tokens the way `model` does, or safely above it when its tokenizer is unknown."""

    def __init__(self, model: str) -> None:
        name, self.exact = encoding_name_for(model)
        self._memo = count_memo(name)
        self.encoding_name = name

    def count(self, text: str) -> int:
        if not text:
            return 0
        tokens = self._memo.count(text)
        return tokens if self.exact else math.ceil(tokens * UNKNOWN_MODEL_FACTOR)

    def count_message(self, text: str) -> int:
        """A chat message: its text and the role/separator overhead."""
        return self.count(text) + MESSAGE_OVERHEAD_TOKENS
