"""Vendors' errors as the fake provider sends them: OpenAI's `{"error": {message, type, param,
code}}` bodies, its 429s (a rate limit with `Retry-After` and `retry-after-ms`, or
`insufficient_quota`), OpenRouter's 402 (no credit), moderation 403 and context-length 400, and
the faults a test injects, which answer with them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

INSUFFICIENT_QUOTA = "insufficient_quota"
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
"""OpenAI's words for a key whose account has no credit or budget left (HTTP 429)."""


@dataclass
class Fault:
    status: int
    remaining: int
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None
    path: str | None = None
    body: dict[str, Any] | None = None
    """The whole error body, as a vendor sends it (OpenRouter's moderation error)."""

    def response(self) -> web.Response:
        """The error as the vendor sends it; a 429 as OpenAI does, unless told otherwise."""
        if self.body is not None:
            return web.json_response(self.body, status=self.status)
        limited = self.status == 429
        if limited and self.code == INSUFFICIENT_QUOTA:
            response = quota_exceeded("openai")
        else:
            default = rate_limited(self.retry_after) if limited else f"injected fault {self.status}"
            response = error_body(
                self.status,
                self.message or default,
                self.code or ("rate_limit_exceeded" if limited else f"http_{self.status}"),
                "requests" if limited else "server_error",
                self.param,
            )
        if self.retry_after is not None:  # HTTP's Retry-After is whole seconds; the exact
            # delay goes in retry-after-ms, as OpenAI and Azure send it
            response.headers["Retry-After"] = str(math.ceil(self.retry_after))
            response.headers["retry-after-ms"] = str(round(self.retry_after * 1000))
        return response


def rate_limited(retry_after: float | None) -> str:
    """OpenAI's wording of a 429 (its numbers made up)."""
    wait = "a moment" if retry_after is None else f"{retry_after:g}s"
    return (
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
        f"Please try again in {wait}. Visit https://example.invalid/rate-limits to learn more."
    )


def quota_exceeded(shape: str) -> web.Response:
    """A key with no credit left, as `shape`'s vendor refuses it: OpenAI's 429
    `insufficient_quota`, or OpenRouter's 402."""
    if shape == "openai":
        return error_body(429, QUOTA_MESSAGE, INSUFFICIENT_QUOTA, INSUFFICIENT_QUOTA)
    return error_body(
        402,
        "Insufficient credits. Add more using https://example.invalid/credits",
        "402",
        "invalid_request_error",
    )


MODERATION_MESSAGE = "Your chosen model requires moderation and your input was flagged"
"""OpenRouter's documented meaning of its 403 (openrouter.ai/docs/errors)."""


def moderation_error(reasons: Iterable[str], flagged_input: str, model: str) -> dict[str, Any]:
    """OpenRouter's 403 body when a moderated model's input was flagged: `code` the status
    as a number, `metadata` its ModerationErrorMetadata (`reasons`, `flagged_input` of at
    most 100 characters, cut in the middle with "..."), with `provider_name` and
    `model_slug`."""
    if len(flagged_input) > 100:
        flagged_input = flagged_input[:48] + "..." + flagged_input[-49:]
    metadata = {
        "reasons": list(reasons),
        "flagged_input": flagged_input,
        "provider_name": "fake",
        "model_slug": model,
    }
    return {"error": {"code": 403, "message": MODERATION_MESSAGE, "metadata": metadata}}


def context_length_error(shape: str, limit: int, asked: int) -> web.Response:
    """A prompt longer than the model's window: OpenAI's 400 (`context_length_exceeded`,
    type `invalid_request_error`, param `messages`) or OpenRouter's (numeric `code` 400,
    "This endpoint's maximum context length is …")."""
    if shape == "openrouter":
        message = (
            f"This endpoint's maximum context length is {limit} tokens. However, you "
            f"requested about {asked} tokens. Please reduce the length of either one, or "
            'use the "middle-out" transform to compress your prompt automatically.'
        )
        return web.json_response({"error": {"code": 400, "message": message}}, status=400)
    message = (
        f"This model's maximum context length is {limit} tokens. However, your messages "
        f"resulted in {asked} tokens. Please reduce the length of the messages."
    )
    return error_body(400, message, "context_length_exceeded", "invalid_request_error", "messages")


def error_body(
    status: int, message: str, code: str, kind: str, param: str | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status
    )
