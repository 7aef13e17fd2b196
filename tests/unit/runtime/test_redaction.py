"""redact(): the credential shapes and known secrets it must scrub, and what it leaves alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tzurot.runtime.redaction import (
    _CLEAN_MAX_CHARS,
    _CLEAN_MAX_TEXTS,
    _PATTERNS,
    REDACTED,
    Redactor,
    _patterns_for,
    redact,
)

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB"


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-AbCdEf0123456789ghijKLMNopqrstuv",
        "sk-" + "a1B2" * 12,
        "sk-or-v1-" + "0123456789abcdef" * 4,
        "sk-ant-api03-" + "x" * 40 + "-AA",
        "sk_" + "0123456789abcdef" * 3,
        "AIza" + "SyA-1234567890abcdefghijklmnopqrst_",
        "BSA" + "q1w2e3r4t5y6u7i8o9p0AbCd",  # Brave Search
        "gsk_" + "A1b2" * 13,  # Groq
        "xai-" + "B3c4" * 20,  # xAI
        DISCORD_TOKEN,
    ],
)
def test_credential_shapes_are_redacted(secret: str) -> None:
    text = f"calling provider with key={secret}, retrying"
    redacted = redact(text)
    assert secret not in redacted
    assert redacted.startswith("calling provider with key=")
    assert redacted.endswith(", retrying")
    assert REDACTED in redacted


def test_bearer_token_keeps_the_scheme() -> None:
    assert redact("Authorization: Bearer abc.DEF-123_xyz/+=") == f"Authorization: Bearer {REDACTED}"
    assert redact("authorization: bearer abcdefgh1234") == f"authorization: bearer {REDACTED}"


def test_a_bearer_token_of_any_characters_is_redacted_whole() -> None:
    assert redact("Bearer abcdefgh:ijklmnop!") == f"Bearer {REDACTED}"


LEGACY_ELEVENLABS_KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"xi-api-key: {LEGACY_ELEVENLABS_KEY}", f"xi-api-key: {REDACTED}"),
        (f"{{'xi-api-key': '{LEGACY_ELEVENLABS_KEY}'}}", f"{{'xi-api-key': '{REDACTED}'}}"),
        ("X-Subscription-Token: tok3n-of-any-shape", f"X-Subscription-Token: {REDACTED}"),
        (f'"x-api-key": "{LEGACY_ELEVENLABS_KEY}", next', f'"x-api-key": "{REDACTED}", next'),
        (f"api_key={LEGACY_ELEVENLABS_KEY};", f"api_key={REDACTED};"),
    ],
)
def test_a_key_after_its_header_or_name_is_redacted_whatever_its_shape(
    text: str, expected: str
) -> None:
    """A key of no known shape (ElevenLabs' legacy hex keys) where a header or an assignment
    names it."""
    assert redact(text) == expected


_QUICK_CHECK_ALPHABET = "skSK-_aiAIzZbBeErRxXpPyY.:=' 0123456789MNOtTgGcCnN\u0131\u017f\u212a"
"""Marker letters, and the three `re`'s (?i) folds that `str.lower()` may not (dotless i,
long s, the Kelvin sign)."""


@given(st.text(alphabet=_QUICK_CHECK_ALPHABET, max_size=120))
def test_text_the_quick_check_passes_over_matches_no_pattern_it_left_out(text: str) -> None:
    """`_patterns_for` only saves work: no pattern it leaves out matches."""
    chosen = _patterns_for(text)
    assert not any(pattern.search(text) for pattern, _ in _PATTERNS if (pattern, _) not in chosen)


@pytest.mark.parametrize(
    ("text", "patterns"),
    [
        ("sK-or-v1-" + "a" * 30, len(_PATTERNS)),
        ("XI-API-KEY: abcdefgh1234", len(_PATTERNS)),
        ("x.y.z" + "M" * 30 + ".abcdefg." + "z" * 30, 1),
        (DISCORD_TOKEN, 1),
        ("/tzurot.v1.MemoryService/GetReplyContext", 0),
        ("an ordinary sentence. With dots. And more.", 0),
    ],
)
def test_the_quick_check_runs_the_patterns_text_may_match(text: str, patterns: int) -> None:
    """A gRPC method's name (two dots, in every access line) runs no pattern; text long
    enough for a Discord token with two dots runs that one only."""
    assert len(_patterns_for(text)) == patterns


@pytest.mark.parametrize(
    "text", ["ap\u0131_key=0123456789abcdef", "x-\u017fubscription-token: 0123456789abcdef"]
)
def test_a_key_name_spelled_with_letters_the_patterns_fold_is_redacted(text: str) -> None:
    """The header pattern's (?i) reads dotless i (U+0131) as i and long s (U+017F) as s;
    str.lower() does not."""
    assert "0123456789abcdef" not in redact(text)


def test_a_discord_token_in_an_access_line_is_redacted() -> None:
    assert redact(f"/tzurot.v1.X/Y {DISCORD_TOKEN}") == f"/tzurot.v1.X/Y {REDACTED}"


def test_vendor_prefixes_are_caught_even_glued_to_text() -> None:
    key = "sk-or-v1-" + "f" * 64
    assert key not in redact(f"xx{key}yy")


def test_known_secrets_are_replaced_longest_first() -> None:
    text = "url=postgres://app:pa55word!@db/tzurot pw=pa55word!"
    redacted = redact(text, ["pa55word!", "postgres://app:pa55word!@db/tzurot"])
    assert redacted == f"url={REDACTED} pw={REDACTED}"


def test_tiny_and_empty_known_secrets_are_ignored() -> None:
    assert redact("a b c", ["", "a"]) == "a b c"


@pytest.mark.parametrize(
    "text",
    [
        "task-assessment-for-the-whole-project-today",
        "the risk_management_of_it_all_and_then_more",
        "sk-short",
        "Bearer",
        "model=gpt-4o-mini tokens=1234 latency_ms=56.7",
        "an ordinary sentence. With dots. And more.",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


@given(
    prefix=st.text(),
    suffix=st.text(),
    body=st.text(alphabet=ALNUM, min_size=20, max_size=64),
)
def test_planted_openrouter_key_never_survives(prefix: str, suffix: str, body: str) -> None:
    key = f"sk-or-v1-{body}"
    assert key not in redact(prefix + key + suffix)


@given(
    prefix=st.text(),
    suffix=st.text(),
    # Lowercase and digits: a secret made of the marker's own letters could reappear in it.
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=40),
)
def test_planted_known_secret_never_survives(prefix: str, suffix: str, secret: str) -> None:
    assert secret not in redact(prefix + secret + suffix, [secret])


@given(st.text())
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def _logged(redactor: Redactor, value: object) -> object:
    return redactor(None, "info", {"value": value})["value"]


def test_a_text_holding_a_secret_is_redacted_every_time_it_is_logged() -> None:
    """The redactor remembers texts it left unchanged: never one it redacted."""
    redactor = Redactor(["hunter2-pass"])
    key = "sk-or-v1-" + "0123456789abcdef" * 4
    for text in (f"key {key}", "db hunter2-pass", "rpc.served"):
        for _ in range(3):
            assert _logged(redactor, text) == redact(text, ["hunter2-pass"])
            assert _logged(redactor, {"nested": [text]}) == {
                "nested": [redact(text, ["hunter2-pass"])]
            }
    assert key not in str(_logged(redactor, f"key {key}"))


def test_the_redactor_remembers_a_bounded_number_of_short_clean_texts() -> None:
    redactor = Redactor()
    for number in range(3 * _CLEAN_MAX_TEXTS):
        _logged(redactor, f"request {number}")
    assert 0 < len(redactor._clean) <= _CLEAN_MAX_TEXTS
    long_text = "x" * (_CLEAN_MAX_CHARS + 1)
    assert _logged(redactor, long_text) == long_text
    assert long_text not in redactor._clean


@given(
    texts=st.lists(st.text(), min_size=1, max_size=5),
    body=st.text(alphabet=ALNUM, min_size=20, max_size=40),
)
def test_the_redactor_redacts_each_text_as_redact_does_first_time_or_again(
    texts: list[str], body: str
) -> None:
    secret = body[:8]
    redactor = Redactor([secret])
    planted = [*texts, f"sk-or-v1-{body}", f"x{secret}y", *texts]
    for text in planted * 2:
        assert _logged(redactor, text) == redact(text, [secret])
