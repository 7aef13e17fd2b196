"""A failed provider call as a typed error: by HTTP status, the provider's error code, or the
error event inside a stream. The message names the provider and never repeats the
provider's own text (error bodies can echo part of the key); a connection that failed
before the request was sent is `NotSent`, one whose body the client could not hand to its
socket whole (the write stalled, or the connection was reset while it was still writing) is
`NotReceived`, a timeout once it was is `NoAnswerInTime` (all UNAVAILABLE)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import httpx2
import openai

from tzurot.inference.retries import NoAnswerInTime, NotReceived, NotSent
from tzurot.inference.sse import ErrorEvent, StreamCutShort
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

_PROVIDER_CODE = re.compile(r"[a-z_]{1,48}")
_CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})
_KEY_REFUSAL_CODES = frozenset({"invalid_api_key", "authentication_error"})
"""A 403 body's `code` or `type` that says the key itself was refused (a 401 always is)."""
_CONTEXT_TOO_LONG_CODES = frozenset({"context_length_exceeded"})  # OpenAI
_QUOTA_CODES = frozenset({"insufficient_quota"})
"""A 429's `code` (or `type`) that says the key's account has no credit or budget left
(OpenAI: "You exceeded your current quota, please check your plan and billing details"):
a quota refusal as a 402 is, never a rate limit to wait out."""
_CONTEXT_TOO_LONG = re.compile(
    r"maximum context length"  # OpenAI, OpenRouter, vLLM, Mistral
    r"|prompt is too long"  # Anthropic
    r"|exceeds the available context size"  # llama.cpp's server
    r"|exceeds the maximum number of tokens allowed",  # Gemini
    re.IGNORECASE,
)
"""A 400's wording for a prompt longer than the model's window (only looked at, never
repeated)."""


def content_filtered(provider: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{provider} refused to answer: its content filter blocked this conversation",
        reason="CONTENT_FILTERED",
        metadata={"provider": provider},
    )


def content_flagged(provider: str) -> FailedPrecondition:
    """OpenRouter's 403: the model requires moderation and the input was flagged."""
    return FailedPrecondition(
        f"{provider} refused the request: its moderation flagged this conversation "
        "(HTTP 403); rephrase it or choose another model",
        reason="CONTENT_FILTERED",
        metadata={"provider": provider, "status": "403"},
    )


def context_too_long(provider: str, model: str, code: str) -> InvalidArgument:
    """A 400 for a prompt longer than the model's window: the config's context_window is
    larger than the model's."""
    detail = f", {code}" if code else ""
    what = f"{provider}'s model {model!r}" if model else provider
    return InvalidArgument(
        "config.context_window",
        f"the conversation is longer than {what} accepts (HTTP 400{detail}); "
        "lower context_window in this personality's LLM config",
        reason="CONTEXT_TOO_LONG",
        metadata={
            "provider": provider,
            "status": "400",
            **({"model": model} if model else {}),
            **({"provider_code": code} if code else {}),
        },
    )


def invalid_api_key(provider: str, status: int) -> FailedPrecondition:
    # S608: "update … set" reads as SQL to the linter; this is a message for the user.
    message = (
        f"{provider} rejected the API key (HTTP {status}); update it with /wallet set {provider}"  # noqa: S608
    )
    return FailedPrecondition(message, reason="INVALID_API_KEY", metadata={"provider": provider})


def provider_error(
    exc: openai.OpenAIError, provider: str, *, model: str = "", upload_cut_short: bool = False
) -> TzurotError:
    """The typed error for a failed provider call. Never copies the provider's message.
    `upload_cut_short`: the caller saw the request's body start and not all of it handed to
    the socket (httpcore hides a write error mid-upload behind the read that follows, which
    may even find an error status: uploads.py)."""
    if isinstance(exc, openai.APIStatusError):
        err = _status_error(exc, provider, model)
        if upload_cut_short and type(err) is Unavailable:  # a 5xx before the whole file
            return NotReceived(err.message, reason=err.reason, metadata=err.metadata)
        return err
    if isinstance(exc, ErrorEvent):
        return _event_error(exc, provider, model)
    kind = Unavailable
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        timeout = isinstance(exc, openai.APITimeoutError)
        what = "did not answer in time" if timeout else "is unreachable"
        if _never_sent(exc):
            kind = NotSent
        elif upload_cut_short or isinstance(exc.__cause__, _NOT_RECEIVED):
            kind = NotReceived
        elif timeout:
            kind = NoAnswerInTime
    elif isinstance(exc, StreamCutShort):
        what = "dropped the answer before finishing it"
    else:  # a malformed answer
        what = "failed while answering"
    return kind(
        f"{provider} {what}; try again later",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": provider},
    )


def time_limit_passed(provider: str, *, started: bool, sent: bool) -> Unavailable:
    """A call its caller's time limit cut (not the client's own timeout): NoAnswerInTime once
    its body went out whole (`sent`: the provider may be at work), NotReceived while the
    body was still going out (`started`), else NotSent."""
    kind: type[Unavailable] = NoAnswerInTime if sent else NotReceived if started else NotSent
    return kind(
        f"{provider} did not answer in time; try again later",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": provider},
    )


_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
_NOT_RECEIVED = (
    httpx2.WriteTimeout,
    httpx2.WriteError,
    httpx2.ProxyError,
    httpx2.LocalProtocolError,
    httpx2.UnsupportedProtocol,
)
"""Failures while (or before) the request was written: it never reached the provider whole."""


def _never_sent(exc: openai.APIConnectionError) -> bool:
    """Whether the connection failed before the request was written (the SDK raises from
    httpx2's error): no connection made, or none free in the pool."""
    return isinstance(exc.__cause__, _NOT_SENT)


def _status_error(exc: openai.APIStatusError, provider: str, model: str) -> TzurotError:
    """A 401 is a refused key; a 403 only when its body says the key was refused (OpenAI's
    403 is an unsupported region, Anthropic's a permission the key lacks, OpenRouter's its
    moderation flagging the input: none makes the key invalid)."""
    status, code = exc.status_code, exc.code
    if status == 403 and _moderation_flagged(exc.body):
        return content_flagged(provider)
    if status == 403 and (code in _KEY_REFUSAL_CODES or exc.type in _KEY_REFUSAL_CODES):
        return invalid_api_key(provider, status)
    if status == 400 and (
        code in _CONTEXT_TOO_LONG_CODES or _CONTEXT_TOO_LONG.search(str(exc.message))
    ):
        shown = code if isinstance(code, str) and _PROVIDER_CODE.fullmatch(code) else ""
        return context_too_long(provider, model, shown)
    if code is None and isinstance(exc.type, str) and exc.type in _QUOTA_CODES:
        code = exc.type  # the type alone says so
    retry_after = retry_after_seconds(exc.response.headers)
    return _classified(status, code, provider, model, retry_after=retry_after)


def _moderation_flagged(body: object) -> bool:
    """OpenRouter's moderation error: `metadata` with `reasons` or `flagged_input`."""
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return isinstance(metadata, dict) and ("reasons" in metadata or "flagged_input" in metadata)


def _event_error(exc: ErrorEvent, provider: str, model: str) -> TzurotError:
    """An error event inside a 200 stream, classified by its `code` as the same HTTP status
    would be (OpenRouter sends the upstream's status there: 402, 429…); a code that is no
    HTTP error status (or none), or one the table calls unavailable, is the provider
    failing while answering. The key was accepted before the stream began: a 401/403 there
    is the upstream's, never the user's key refused."""
    if _moderation_flagged(exc.body):
        return content_filtered(provider)
    code = exc.body.get("code") if isinstance(exc.body, dict) else None
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    upstream_refusal = code in (401, 403)  # the upstream's key or access: unavailable
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        classified = _classified(code, None, provider, model, retry_after=None)
        if not (upstream_refusal or isinstance(classified, Unavailable)):
            return classified
    if isinstance(code, str) and code in _CONTENT_FILTER_CODES:
        return content_filtered(provider)
    return Unavailable(
        f"{provider} failed while answering; try again later",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": provider},
    )


def _classified(  # noqa: PLR0911  # one outcome per kind of refusal
    status: int, code: object, provider: str, model: str, *, retry_after: float | None
) -> TzurotError:
    """The typed error for an HTTP error status and the provider's error code."""
    meta = {"provider": provider}
    if status == 401:
        return invalid_api_key(provider, status)
    if isinstance(code, str) and code in _CONTENT_FILTER_CODES:
        return content_filtered(provider)
    if status == 402 or (status == 429 and isinstance(code, str) and code in _QUOTA_CODES):
        # No credit left: waiting does not help, adding credit does (no Retry-After kept).
        detail = f"HTTP {status}" if status == 402 else f"HTTP {status}, {code}"
        return ResourceExhausted(
            f"{provider} refused the request: no credits or quota left on this key ({detail}); "
            f"add credit to the {provider} account",
            reason="PROVIDER_QUOTA_EXCEEDED",
            metadata=meta,
        )
    if status == 429:
        return ResourceExhausted(
            f"{provider} is rate limiting requests (HTTP 429); try again later",
            retry_after_seconds=retry_after,
            reason="PROVIDER_RATE_LIMITED",
            metadata=meta,
        )
    if status == 404 and model:
        return InvalidArgument(
            "model",
            f"{provider} has no model {model!r} (HTTP 404)",
            reason="MODEL_NOT_FOUND",
            metadata={**meta, "model": model},
        )
    if status in (408, 409) or status >= 500:
        # The status (and a Retry-After: an overload's) tells a refusal from a failure that
        # may follow the work: transcription_cut_off.py estimates only the latter.
        after = {} if retry_after is None else {"retry_after": f"{retry_after:g}"}
        return Unavailable(
            f"{provider} is unavailable (HTTP {status}); try again later",
            reason="PROVIDER_UNAVAILABLE",
            metadata={**meta, "status": str(status), **after},
        )
    # Only the provider's error code, and only when it is a plain identifier.
    shown = code if isinstance(code, str) and _PROVIDER_CODE.fullmatch(code) else ""
    detail = f", {shown}" if shown else ""
    return InvalidArgument(
        "config",
        f"{provider} rejected the request (HTTP {status}{detail})",
        reason="PROVIDER_REJECTED_REQUEST",
        metadata={**meta, "status": str(status), **({"provider_code": shown} if shown else {})},
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The provider's Retry-After (or retry-after-ms) in seconds, when it sent one."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / divisor
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return None
