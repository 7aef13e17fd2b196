"""Token counts from the shipped encodings: exact ids, no network, safe for unknown models."""

import math
import socket
from pathlib import Path

import pytest

from tzurot.inference import tokens
from tzurot.inference.tokens import (
    SHA256,
    UNKNOWN_MODEL_FACTOR,
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
    load_encoding.cache_clear()
    try:
        assert TokenCounter("gpt-4o").count("hello world") == 2
        assert TokenCounter("gpt-4").count("hello world") == 2
    finally:
        load_encoding.cache_clear()
    assert list(tmp_path.iterdir()) == []


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
