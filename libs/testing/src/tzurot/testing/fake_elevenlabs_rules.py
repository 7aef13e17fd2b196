"""The fake ElevenLabs' rules, as the vendor documents and shows them: the refusals' shape, the
models and what each takes, the output formats, the voice settings' ranges, the permissions a
key can be restricted to, and what a free plan may not do.

Kept apart from the server (tzurot.testing.fake_elevenlabs) so each stays one job: this module
is plain data and the refusals' bodies, no server.

Refusals carry `{"detail": {"type", "code", "status", "message", "request_id"}}` (ElevenLabs'
Errors page: `code` is what clients should read; `status` "a legacy field that is no longer
used", sent all the same, alike to `code` in most refusals); malformed requests are FastAPI's
422 with a `detail` list. A free plan's account is refused what needs a paid one with 402
`paid_plan_required` (type and legacy status `payment_required`), the shape ElevenLabs answers a
free account asking for a paid feature (a Voice Library voice: "Free users cannot use library
voices via the API"); Instant Voice Cloning is such a feature (its pricing: from the Starter
plan). Older accounts saw a code of its own for that, `can_not_use_instant_voice_cloning`
("Your subscription has no access to use instant voice cloning, please upgrade."): the status
code of either is not documented; 402 is what the paid-plan refusal is seen with.

Each plan has its own limit on requests in flight at once (help.elevenlabs.io article
19571824571921, "API - Error Code 429": Free 2, Starter 3, Creator 5, Pro 10, Scale 15,
Business 15); one more is refused 429 `too_many_concurrent_requests`, and ElevenLabs under
load refuses with 429 `system_busy` (the article's two 429 answers besides the quota's).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web

MAX_CLONE_FILES = 25
MAX_CLONE_FILE_BYTES = 10 * 1024 * 1024
MODEL_TEXT_LIMITS = {
    "eleven_v3": 5_000,
    "eleven_multilingual_v2": 10_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
    "eleven_turbo_v2": 30_000,
}
"""The text-to-speech models ElevenLabs documents (elevenlabs.io/docs/overview/models), with
the characters one request may carry; any other model id is 400 `model_not_found`."""
OUTPUT_FORMAT = re.compile(
    r"^(mp3_(22050_32|44100_(32|64|96|128|192))|pcm_(16000|22050|24000|44100))$"
)
PERMISSIONS = frozenset(
    {
        "text_to_speech", "speech_to_speech", "speech_to_text", "models_read", "models_write",
        "voices_read", "voices_write", "speech_history_read", "speech_history_write",
        "sound_generation", "audio_isolation", "voice_generation", "dubbing_read",
        "dubbing_write", "pronunciation_dictionaries_read", "pronunciation_dictionaries_write",
        "user_read", "user_write", "projects_read", "projects_write", "audio_native_read",
        "audio_native_write", "workspace_read", "workspace_write", "forced_alignment",
        "convai_read", "convai_write", "music_generation",
    }
)  # fmt: skip
"""Permissions an ElevenLabs API key can be restricted to (the `permissions` its API key
endpoints take); a key restricted to another is refused, as the vendor refuses to make it."""
TEXT_TO_SPEECH, VOICES_READ, VOICES_WRITE = "text_to_speech", "voices_read", "voices_write"
FREE, PAID = "free", "paid"
PLAN_CONCURRENCY = {
    FREE: 2,
    "starter": 3,
    "creator": 5,
    "pro": 10,
    "scale": 15,
    "business": 15,
    PAID: 3,
}
"""The requests each plan may have in flight at once; "paid" (a paid plan, unnamed) is held
to the least a paid plan allows, Starter's."""
PLANS = tuple(PLAN_CONCURRENCY)
"""An account's plan: free, a paid one by name, or "paid" (any paid one)."""


def refusal(
    status: int, code: str, message: str, *, kind: str = "", legacy: str = ""
) -> web.Response:
    """A refusal as ElevenLabs' Errors page shows one: its `type` (when the vendor's is known),
    `code` (what clients should read), the legacy `status` (alike to `code` unless given), the
    message and a request id."""
    body: dict[str, Any] = {"code": code, "status": legacy or code, "message": message}
    if kind:
        body["type"] = kind
    body["request_id"] = uuid.uuid4().hex
    return web.json_response({"detail": body}, status=status)


def invalid(loc: list[str], msg: str) -> web.Response:
    """FastAPI's 422 body, which ElevenLabs returns for a malformed request."""
    return web.json_response(
        {"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}, status=422
    )


def missing_permission(permission: str) -> web.Response:
    """A known key restricted without the permission the endpoint needs (the vendor's words)."""
    return refusal(
        401,
        "missing_permissions",
        f"The API key you used is missing the permission {permission} to execute this operation.",
    )


def paid_plan_required(feature: str) -> web.Response:
    """A free plan's account asking for what only a paid plan has."""
    return refusal(
        402,
        "paid_plan_required",
        f"Free users cannot use {feature} via the API. Please upgrade your subscription to use it.",
        kind="payment_required",
        legacy="payment_required",
    )


def too_many_concurrent_requests(limit: int) -> web.Response:
    """One request more in flight than the account's plan allows."""
    return refusal(
        429,
        "too_many_concurrent_requests",
        f"Too many concurrent requests. Your subscription allows {limit} concurrent requests; "
        "wait for one to finish, or upgrade your subscription.",
    )


def system_busy() -> web.Response:
    """ElevenLabs refusing for its own load, not the account's."""
    return refusal(
        429,
        "system_busy",
        "Our services are experiencing high levels of traffic and your request could not be "
        "processed. Please try again shortly.",
    )


def voice_not_found(voice_id: str) -> web.Response:
    return refusal(404, "voice_not_found", f"A voice with voice_id {voice_id} was not found.")


def check_voice_settings(settings: Any) -> web.Response | None:
    """The 422 for `voice_settings` out of their documented ranges; None when they are fine."""
    if settings is None:
        return None
    if not isinstance(settings, dict):
        return invalid(["body", "voice_settings"], "an object is required")
    ranges = {
        "stability": (0.0, 1.0),
        "similarity_boost": (0.0, 1.0),
        "style": (0.0, 1.0),
        "speed": (0.7, 1.2),
    }
    for name, (low, high) in ranges.items():
        value = settings.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            return invalid(
                ["body", "voice_settings", name], f"must be a number from {low} to {high}"
            )
    return None
