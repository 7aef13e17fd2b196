"""Scrubbing secrets from log output: known values plus the shapes of common credentials.

Patterns: OpenAI-style `sk-…` (including OpenRouter `sk-or-v1-…` and Anthropic
`sk-ant-…`), ElevenLabs `sk_…`, Brave `BSA…`, Groq `gsk_…`, xAI `xai-…`, Google `AIza…`,
`Bearer <token>`, a value after a key header's or an `api_key` assignment's name, and Discord
bot tokens.
Exact known values (the service's own secrets) are replaced first, longest first.

Every log line passes through here (each string value), so the common case is made cheap:
a few substring tests (`_patterns_for`) decide which patterns run, usually none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from structlog.typing import EventDict, WrappedLogger

REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 4
"""Known secrets shorter than this are not redacted: it would shred every log line."""

_KEY_CHARS = r"[A-Za-z0-9_\-]"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Unambiguous vendor prefixes match anywhere, even glued to other text.
    (re.compile(rf"sk-or-v1-{_KEY_CHARS}+"), REDACTED),
    (re.compile(rf"sk-ant-{_KEY_CHARS}+"), REDACTED),
    (re.compile(r"AIza[0-9A-Za-z_\-]{35}"), REDACTED),
    # Generic shapes need a word start so `task-…` or `risk_…` survive.
    (re.compile(rf"(?<![A-Za-z0-9])sk-{_KEY_CHARS}{{16,}}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])sk_[A-Za-z0-9]{20,}"), REDACTED),
    # Brave Search, Groq and xAI keys (wallet or TZUROT_PROVIDERS providers).
    (re.compile(rf"(?<![A-Za-z0-9])BSA{_KEY_CHARS}{{20,}}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])gsk_[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])xai-[A-Za-z0-9]{20,}"), REDACTED),
    # A key in a header or an assignment, whatever its shape (ElevenLabs' legacy hex keys):
    # `xi-api-key: v`, `'X-Subscription-Token': 'v'`, `api_key=v`.
    (
        re.compile(
            r"((?i:xi-api-key|x-subscription-token|x-api-key|api[-_]?key)['\"]?\s*[:=]\s*['\"]?)"
            r"[^\s'\",;}]{8,}"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"\b((?i:bearer))\s+[^\s'\",;}]{8,}"), rf"\1 {REDACTED}"),
    (re.compile(r"(?<![\w\-])[MNO][\w\-]{23,}\.[\w\-]{6,7}\.[\w\-]{27,}"), REDACTED),
)
_DOTLESS_I, _LONG_S = "\u0131", "\u017f"
"""The two letters `str.lower()` leaves as they are and the patterns' (?i) matches as i and
s (`ap\u0131_key=...`): the marker test reads them as those letters too."""
_DISCORD_TOKEN = _PATTERNS[-1:]
_DISCORD_TOKEN_CHARS = 1 + 23 + 1 + 6 + 1 + 27
"""The shortest text the Discord token's pattern can match."""


_MARKERS = (
    "sk-",
    "sk_",
    "aiza",
    "bsa",
    "xai-",
    "bearer",
    "api-key",
    "api_key",
    "apikey",
    "x-subscription-token",
)
"""Lower-case text every pattern but the Discord token's needs (gsk_ holds sk_): text holding
none of them, and fewer than two dots, matches no pattern."""


def _patterns_for(text: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """The patterns that could match `text`, decided by substring tests far cheaper than the
    patterns (the eleven cost ~15 us a string, most of a log line's redaction): none for
    most text; only the Discord token's for long text with two dots and no marker (a gRPC
    method's name, `/tzurot.v1.MemoryService/…`, has two dots and is in every access line)."""
    lowered = text.lower()
    if _DOTLESS_I in lowered or _LONG_S in lowered:  # the patterns' (?i) reads i and s
        lowered = lowered.replace(_DOTLESS_I, "i").replace(_LONG_S, "s")
    for marker in _MARKERS:
        if marker in lowered:
            return _PATTERNS
    if len(text) >= _DISCORD_TOKEN_CHARS and text.count(".") >= 2:  # a token's three parts
        return _DISCORD_TOKEN
    return ()


def _known(secrets: Iterable[str]) -> tuple[str, ...]:
    """The secrets worth replacing, longest first (a secret inside another goes after it)."""
    return tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True))


def _redact(text: str, known: tuple[str, ...]) -> str:
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _patterns_for(text):
        text = pattern.sub(replacement, text)
    return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secrets and credential-shaped substrings replaced."""
    return _redact(text, _known(secrets))


_CLEAN_MAX_CHARS = 200
_CLEAN_MAX_TEXTS = 4096
"""The redactor remembers up to this many short texts it left unchanged (then forgets them
all and starts again)."""


class Redactor:
    """A structlog processor redacting every value of the event dict, recursively.

    Most of a log line's strings recur (event names, methods, status codes, callers, a
    turn's request id): a short text whose redaction changed nothing is remembered and
    returned as it is the next time. Only unchanged texts are remembered, so a text holding
    a secret is redacted every time it is logged."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = _known(secrets)
        self._clean: set[str] = set()

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        scrub, clean = self._scrub, self._clean
        return {
            key: value if type(value) is str and value in clean else scrub(value)
            for key, value in event.items()
        }

    def _text(self, text: str) -> str:
        if text in self._clean:
            return text
        redacted = _redact(text, self._secrets)
        if redacted == text and len(text) <= _CLEAN_MAX_CHARS:
            if len(self._clean) >= _CLEAN_MAX_TEXTS:
                self._clean.clear()
            self._clean.add(text)
        return redacted

    def _scrub(self, value: object) -> object:
        kind = type(value)
        if kind is str:  # most values: checked before any isinstance
            return self._text(value)  # type: ignore[arg-type]  # a str
        if value is None or kind is int or kind is float or kind is bool:
            return value
        return self._scrub_other(value)

    def _scrub_other(self, value: object) -> object:
        if isinstance(value, str):
            return _redact(value, self._secrets)
        if isinstance(value, int | float):
            return value
        if isinstance(value, Mapping):
            return {
                (_redact(k, self._secrets) if isinstance(k, str) else k): self._scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self._scrub(item) for item in value]
        # Renderers would fall back to repr(); redact that instead of trusting the object.
        return _redact(repr(value), self._secrets)
