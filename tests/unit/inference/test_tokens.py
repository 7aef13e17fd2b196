"""Token counts from the shipped encodings: exact ids, no network, safe for unknown models."""

import concurrent.futures
import math
import socket
from pathlib import Path

import pytest

from tzurot.inference import tokens
from tzurot.inference.tokens import (
    SHA256,
    UNKNOWN_MODEL_FACTOR,
    CountMemo,
    TokenCounter,
    encoding_file_bytes,
    encoding_name_for,
    load_encoding,
)

SAMPLE = "Lilith: [2025-06-03 14:05] Well, well. 🎃 naïve"


def test_shipped_files_match_tiktokens_hashes() -> None:
    for name in SHA256:
        assert encoding_file_bytes(name)  # raises when the hash differs


def test_known_token_ids() -> None:
    """The ids OpenAI's tokenizer gives (cross-checked once against an independent tokenizer)."""
    assert load_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert load_encoding("o200k_base").encode("hello world") == [24912, 2375]
    assert len(load_encoding("o200k_base").encode(SAMPLE)) == 23
    assert len(load_encoding("cl100k_base").encode(SAMPLE)) == 25


def test_loading_uses_no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache: nothing to find
    tokens._build_encoding.cache_clear()
    try:
        assert TokenCounter("gpt-4o").count("hello world") == 2
        assert TokenCounter("gpt-4").count("hello world") == 2
    finally:
        tokens._build_encoding.cache_clear()
    assert list(tmp_path.iterdir()) == []


def test_callers_during_a_build_wait_for_it_instead_of_building_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Start-up builds the encoding in a thread; a reply asking for it meanwhile waits."""
    reads: list[str] = []
    real_read = tokens.encoding_file_bytes

    def counted(name: str) -> bytes:
        reads.append(name)
        return real_read(name)

    monkeypatch.setattr(tokens, "encoding_file_bytes", counted)
    tokens._build_encoding.cache_clear()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            built = list(pool.map(load_encoding, ["cl100k_base"] * 4))
    finally:
        tokens._build_encoding.cache_clear()
    assert reads == ["cl100k_base"]
    assert all(encoding is built[0] for encoding in built)


@pytest.mark.parametrize(
    ("model", "encoding", "exact"),
    [
        ("gpt-4o", "o200k_base", True),
        ("openai/gpt-4o-mini", "o200k_base", True),
        ("o3-mini", "o200k_base", True),
        ("gpt-5", "o200k_base", True),
        ("gpt-4", "cl100k_base", True),
        ("gpt-4-turbo", "cl100k_base", True),
        ("openai/gpt-3.5-turbo", "cl100k_base", True),
        ("anthropic/claude-sonnet-4.5", "o200k_base", False),
        ("claude-opus-4", "o200k_base", False),
        ("llama3.2", "o200k_base", False),
    ],
)
def test_encoding_per_model(model: str, encoding: str, exact: bool) -> None:
    assert encoding_name_for(model) == (encoding, exact)


def test_unknown_models_are_counted_safely_above() -> None:
    exact = TokenCounter("gpt-4o").count(SAMPLE)
    assert TokenCounter("mistral/unknown").count(SAMPLE) == math.ceil(exact * UNKNOWN_MODEL_FACTOR)
    assert TokenCounter("x").count("") == 0
    assert TokenCounter("gpt-4o").count_message("hello world") == 2 + tokens.MESSAGE_OVERHEAD_TOKENS


def test_special_token_text_is_counted_as_text() -> None:
    assert TokenCounter("gpt-4o").count("<|endoftext|>") > 1


class CountingEncoding:
    """The real encoding, counting how often it is asked."""

    def __init__(self, name: str) -> None:
        self.inner = load_encoding(name)
        self.calls = 0

    def encode(self, text: str, **kwargs: object) -> list[int]:
        self.calls += 1
        return self.inner.encode(text, disallowed_special=())


def test_a_text_counted_again_is_not_encoded_again() -> None:
    encoding = CountingEncoding("o200k_base")
    memo = CountMemo(encoding, size=100)  # type: ignore[arg-type]  # a spy with encode()
    history = [f"turn {n}: {SAMPLE}" for n in range(10)]
    first = [memo.count(text) for text in history]
    again = [memo.count(text) for text in history]
    assert first == again == [len(encoding.inner.encode(text)) for text in history]
    assert encoding.calls == 10


def test_the_memo_keeps_the_newest_counts_within_its_size() -> None:
    encoding = CountingEncoding("o200k_base")
    memo = CountMemo(encoding, size=3)  # type: ignore[arg-type]
    for text in ("a", "b", "c", "d"):
        memo.count(text)
    assert len(memo) == 3
    memo.count("d")
    assert encoding.calls == 4
    memo.count("a")  # the oldest went first
    assert encoding.calls == 5


def test_counters_of_one_encoding_share_a_memo_that_keeps_no_text() -> None:
    first, second = TokenCounter("openai/gpt-4o"), TokenCounter("openai/o3-mini")
    assert first.count(SAMPLE) == second.count(SAMPLE) == 23
    assert tokens.count_memo("o200k_base") is tokens.count_memo("o200k_base")
    assert SAMPLE not in repr(vars(tokens.count_memo("o200k_base")))
