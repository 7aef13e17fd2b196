"""ElevenLabs' answers read: its refusals as typed errors, and a malformed body told apart.

Refusals name the provider and never quote a key: 401 → FailedPrecondition INVALID_API_KEY
(but a 401 `missing_permissions`, a key scoped without what this call needs, is
KEY_MISSING_PERMISSION: the key works for the rest; its metadata's `permission` names what it
lacks; and a 401 `detected_unusual_activity`, ElevenLabs turning off a free account's use from
servers and VPNs, is PROVIDER_FREE_TIER_BLOCKED: the key is good, the account needs a paid
plan), a free account asking for a paid plan's feature (402 `paid_plan_required`: Instant Voice
Cloning, a Voice Library voice) → FailedPrecondition PROVIDER_PAID_PLAN_REQUIRED, quota →
RESOURCE_EXHAUSTED PROVIDER_QUOTA_EXCEEDED, a full voice list → FailedPrecondition
VOICE_LIMIT_REACHED, an unknown voice → FailedPrecondition VOICE_NOT_FOUND, 5xx → UNAVAILABLE.
ElevenLabs' two 429s that are neither quota nor the key's fault, `too_many_concurrent_requests`
(the account's plan allows 2 to 15 requests in flight) and `system_busy` (its own load), are
told apart (`is_busy`): they come before it took the text, so the caller may ask again. A body
that is not the JSON object ElevenLabs sends (a proxy's page, a list) is a malformed answer: an
error is classified by its status alone, a success → UNAVAILABLE (`malformed_answer`).
"""

from __future__ import annotations

import re
from typing import Any

import httpx2 as httpx

from tzurot.inference.speech_types import ELEVENLABS
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

VOICE_NOT_FOUND = "VOICE_NOT_FOUND"
KEY_MISSING_PERMISSION = "KEY_MISSING_PERMISSION"
"""A key restricted without the permission a call needs: it works for the rest."""
PAID_PLAN_REQUIRED = "PROVIDER_PAID_PLAN_REQUIRED"
"""A free account asked for what needs a paid plan: the key works for the rest."""
BUSY_CODES = frozenset({"too_many_concurrent_requests", "system_busy"})
"""ElevenLabs' 429s for requests in flight beyond the plan's, and for its own load: nothing
was taken, so speaking again shortly may succeed."""
PAID_PLAN_CODES = frozenset({"paid_plan_required", "can_not_use_instant_voice_cloning"})
"""ElevenLabs' codes for it: 402 `paid_plan_required` (type and legacy status
`payment_required`; "Free users cannot use library voices via the API"), and the code older
accounts were refused Instant Voice Cloning with ("Your subscription has no access to use
instant voice cloning, please upgrade.")."""


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object; None when it is not JSON or not an object."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return None
    return body if isinstance(body, dict) else None


def malformed_answer() -> Unavailable:
    return Unavailable("elevenlabs sent a malformed answer", metadata={"provider": ELEVENLABS})


def elevenlabs_error(response: httpx.Response) -> TzurotError:  # noqa: PLR0911  # one per vendor refusal
    status = response.status_code
    detail = (json_object(response) or {}).get("detail")
    code = _error_code(detail)
    meta = {"provider": ELEVENLABS}
    if code == "missing_permissions":
        permission = _missing_permission(detail)
        if permission:  # the word alone, for the bot's own sentence (a spoken answer's notice)
            meta["permission"] = permission
        lacks = f"the `{permission}` permission" if permission else "a permission"
        return FailedPrecondition(
            f"your elevenlabs key lacks {lacks} this needs; allow it for the key in "
            "ElevenLabs, or store a key that has it with /wallet set elevenlabs",
            reason=KEY_MISSING_PERMISSION,
            metadata=meta,
        )
    if code == "detected_unusual_activity":
        # A free account ElevenLabs turned off for traffic it reads as abuse (servers, VPNs:
        # ours is a server). The key is good: neither refused as invalid nor made inactive.
        return FailedPrecondition(
            "elevenlabs has turned off free-tier use of this account for requests like ours "
            "(it reports unusual activity, as it does for servers and VPNs); any paid "
            "ElevenLabs plan lifts it",
            reason="PROVIDER_FREE_TIER_BLOCKED",
            metadata=meta,
        )
    if code in PAID_PLAN_CODES or (status == 402 and code != "quota_exceeded"):
        # A free account asking for a paid plan's feature (Instant Voice Cloning, a Voice
        # Library voice): the key is good, the account's plan is not enough.
        return FailedPrecondition(
            "elevenlabs needs a paid plan for this: a free ElevenLabs account may not clone "
            "voices (Instant Voice Cloning) nor speak in the Voice Library's voices; upgrade "
            "the account in ElevenLabs, or store a key of a paid account with "
            "/wallet set elevenlabs",
            reason=PAID_PLAN_REQUIRED,
            metadata=meta,
        )
    if status == 401 and code != "quota_exceeded":
        return FailedPrecondition(
            "elevenlabs refused the API key; set a working one with /wallet set elevenlabs",
            reason="INVALID_API_KEY",
            metadata=meta,
        )
    if code == "quota_exceeded":
        return ResourceExhausted(
            "the elevenlabs account has no characters left this month",
            reason="PROVIDER_QUOTA_EXCEEDED",
            metadata=meta,
        )
    if code == "too_many_concurrent_requests":
        return ResourceExhausted(
            "the elevenlabs account is already making as many voice messages at once as its "
            "plan allows; try again shortly",
            retry_after_seconds=5.0,
            reason="PROVIDER_RATE_LIMITED",
            metadata=meta,
        )
    if status == 429:
        return ResourceExhausted(
            "elevenlabs is rate limiting this key; try again shortly",
            retry_after_seconds=5.0,
            reason="PROVIDER_RATE_LIMITED",
            metadata=meta,
        )
    if code == "voice_limit_reached":
        return FailedPrecondition(
            "the elevenlabs account holds as many custom voices as its plan allows; "
            "remove one in ElevenLabs first",
            reason="VOICE_LIMIT_REACHED",
            metadata=meta,
        )
    if code == "voice_not_found" or status == 404:
        return FailedPrecondition(
            "elevenlabs has no such voice in this key's account (a cloned voice can be used "
            "only with a key of the ElevenLabs account that cloned it)",
            reason=VOICE_NOT_FOUND,
            metadata=meta,
        )
    if status >= 500:
        return Unavailable(f"elevenlabs failed (HTTP {status})", metadata=meta)
    what = code or f"HTTP {status}"
    return InvalidArgument("voice", f"elevenlabs refused the request ({what})", metadata=meta)


_ERROR_CODE = re.compile(r"[a-z_]{1,48}")
"""An ElevenLabs refusal's `code` as we may quote it (theirs are lower snake case)."""
_PERMISSION = re.compile(r"\bpermission ([a-z][a-z0-9_]{0,39})\b")


def _error_code(detail: object) -> str:
    """The refusal's code: ElevenLabs' `code`, or its legacy `status` (its Errors page:
    "a legacy field that is no longer used, instead use the `code` property"; today's
    refusals carry both, alike, and older ones `status` alone)."""
    if not isinstance(detail, dict):
        return ""
    for field in ("code", "status"):
        value = detail.get(field)
        # Only a plain identifier is quoted: a refusal's text can echo the key
        # (provider_errors.py's rule).
        if isinstance(value, str) and _ERROR_CODE.fullmatch(value):
            return value
    return ""


def _missing_permission(detail: object) -> str:
    """The permission a scoped key lacks, as ElevenLabs names it ("voices_write"), "" when
    its message names none; only that word of its message is quoted, never the rest."""
    message = detail.get("message") if isinstance(detail, dict) else None
    found = _PERMISSION.search(message) if isinstance(message, str) else None
    return found.group(1) if found else ""


def is_busy(response: httpx.Response) -> bool:
    """A 429 of ElevenLabs' load or of the plan's requests in flight (never a quota)."""
    detail = (json_object(response) or {}).get("detail")
    return response.status_code == 429 and _error_code(detail) in BUSY_CODES
