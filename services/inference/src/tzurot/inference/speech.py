"""Speech providers: ElevenLabs (its own API) and OpenAI-compatible `/audio/speech`.

ElevenLabs is spoken to with httpx (five endpoints: text-to-speech streaming, the voice list
that proves a key, Instant Voice Cloning, the paged search of the account's own clones (v2,
which ElevenLabs' reference lists in place of the deprecated v1 list), deleting a voice);
OpenAI, Kokoro-FastAPI and openedai-speech through the `openai` client. Each answers `Accepted`
the moment the provider took the text (it bills the characters from then on, whatever becomes
of the audio), then provider audio (MP3) as it streams. Refusals become typed errors that name
the provider and never quote a key: 401 → FailedPrecondition INVALID_API_KEY (but a 401
`missing_permissions`, a key scoped without what this call needs, is KEY_MISSING_PERMISSION:
the key works for the rest; its metadata's `permission` names what it lacks; and a 401
`detected_unusual_activity`, ElevenLabs turning off a free account's use from servers and
VPNs, is PROVIDER_FREE_TIER_BLOCKED: the key is good, the account needs a paid plan), a free
account asking for a paid plan's feature (402 `paid_plan_required`: Instant Voice Cloning, a
Voice Library voice) → FailedPrecondition PROVIDER_PAID_PLAN_REQUIRED, quota →
RESOURCE_EXHAUSTED PROVIDER_QUOTA_EXCEEDED, a full voice list → FailedPrecondition
VOICE_LIMIT_REACHED, an unknown voice → FailedPrecondition VOICE_NOT_FOUND, unreachable or
5xx → UNAVAILABLE. ElevenLabs' two 429s that are neither quota nor the key's fault,
`too_many_concurrent_requests` (the account's plan allows 2 to 15 requests in flight: two
personalities speaking at once on a Free or Starter key reach it) and `system_busy` (its own
load), come before it took the text, so nothing is billed: speaking asks again after a short
backoff (BUSY_RETRIES times, BUSY_BACKOFF_SECONDS doubling) before the last one is told as
RESOURCE_EXHAUSTED PROVIDER_RATE_LIMITED; a quota is never asked again. A body that is not the
JSON object
ElevenLabs sends (a proxy's page, a list) is a malformed answer: an error is classified by its
status alone, a success → UNAVAILABLE.

Proving a new key (`check_key`, the wallet's set and test) lists the account's voices, which is
free. ElevenLabs lets a key be restricted to some endpoints ("Restrict key"; its API reference's
Authentication page: "Scope restriction: … limiting which API endpoints the key can access"),
and every read that could prove a key needs a permission of its own — a text-to-speech-only key
is answered 401 `missing_permissions` by `GET /v1/voices` (`voices_read`), `GET /v1/models`
(`models_read`) and `GET /v1/user` (`user_read`) alike, as keys in the wild show it; its API
reference names no endpoint a key may call without one, and speaking to prove a key would bill
it. ElevenLabs checks the key before the permission: an unknown key is 401 `invalid_api_key`
on every endpoint, a known one lacking the permission 401 `missing_permissions`, "The API key
you used is missing the permission <p> to execute this operation." So that refusal proves the
key authenticated: it is a working, restricted key (`KeyCheck.restricted`, with the permission
named), never an invalid one; any other 401 is (but `detected_unusual_activity`, above).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import openai
from pydantic import SecretStr

from tzurot.inference.llm import provider_error
from tzurot.inference.providers import Provider
from tzurot.inference.retries import RetryPolicy
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

ELEVENLABS = "elevenlabs"
DEFAULT_ELEVENLABS_URL = "https://api.elevenlabs.io"
DEFAULT_ELEVENLABS_MODEL = "eleven_multilingual_v2"
DEFAULT_ELEVENLABS_VOICE = "EXAVITQu4vr4xnSDxMaL"
"""Sarah, one of ElevenLabs' default voices: every account has them (its "Default Voices"
page: "made available to all ElevenLabs users by default"), unlike a clone, which only the
account that cloned it may use. It speaks when the personality's voice is not the key's."""
VOICE_NOT_FOUND = "VOICE_NOT_FOUND"
DEFAULT_SPEECH_MODEL = "tts-1"
ELEVENLABS_OUTPUT = "mp3_44100_128"
"""MP3 is open to every plan (PCM 44.1 kHz needs Pro); it is transcoded to Opus anyway."""
KEY_MISSING_PERMISSION = "KEY_MISSING_PERMISSION"
"""A key restricted without the permission a call needs: it works for the rest."""
PAID_PLAN_REQUIRED = "PROVIDER_PAID_PLAN_REQUIRED"
"""A free account asked for what needs a paid plan: the key works for the rest."""
BUSY_CODES = frozenset({"too_many_concurrent_requests", "system_busy"})
"""ElevenLabs' 429s for requests in flight beyond the plan's, and for its own load: nothing
was taken, so speaking again shortly may succeed."""
BUSY_RETRIES = 3
BUSY_BACKOFF_SECONDS = 1.0
"""The first wait before speaking again after a busy 429 (then doubled: 1, 2, 4 s); a long
text's speech takes seconds, so a slot comes free within them."""
PAID_PLAN_CODES = frozenset({"paid_plan_required", "can_not_use_instant_voice_cloning"})
"""ElevenLabs' codes for it: 402 `paid_plan_required` (type and legacy status
`payment_required`; "Free users cannot use library voices via the API"), and the code older
accounts were refused Instant Voice Cloning with ("Your subscription has no access to use
instant voice cloning, please upgrade.")."""


@dataclass(frozen=True)
class VoiceSpec:
    provider: str
    voice_id: str
    model: str = ""
    stability: float | None = None
    similarity_boost: float | None = None
    style: float | None = None
    speed: float | None = None


@dataclass(frozen=True)
class Accepted:
    """The provider took the text (a 2xx answer): the characters are billed from here on."""

    model: str


@dataclass(frozen=True)
class Sample:
    filename: str
    data: bytes


@dataclass(frozen=True)
class ClonedVoice:
    """A voice cloned into the key's account, as its list shows it."""

    voice_id: str
    description: str


@dataclass(frozen=True)
class KeyCheck:
    """What proving a key found: the voices it lists, or that ElevenLabs authenticated it but
    refused the list for a permission the key is restricted without (`missing`: the
    permissions its refusal named, in ElevenLabs' words; empty when it named none)."""

    voices: int = 0
    restricted: bool = False
    missing: tuple[str, ...] = ()


CLONES_PAGE_SIZE = 100
"""The most voices one page of `GET /v2/voices` holds."""
MAX_CLONE_PAGES = 50
"""Pages read at most (5,000 voices: more than any plan holds): a list that never ends stops."""


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object; None when it is not JSON or not an object."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return None
    return body if isinstance(body, dict) else None


def _malformed() -> Unavailable:
    return Unavailable("elevenlabs sent a malformed answer", metadata={"provider": ELEVENLABS})


def _elevenlabs_error(response: httpx.Response) -> TzurotError:  # noqa: PLR0911  # one per vendor refusal
    status = response.status_code
    detail = (_json_object(response) or {}).get("detail")
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
        # Only a plain identifier is quoted: a refusal's text can echo the key (llm.py's rule).
        if isinstance(value, str) and _ERROR_CODE.fullmatch(value):
            return value
    return ""


def _missing_permission(detail: object) -> str:
    """The permission a scoped key lacks, as ElevenLabs names it ("voices_write"), "" when
    its message names none; only that word of its message is quoted, never the rest."""
    message = detail.get("message") if isinstance(detail, dict) else None
    found = _PERMISSION.search(message) if isinstance(message, str) else None
    return found.group(1) if found else ""


def _busy(response: httpx.Response) -> bool:
    """A 429 of ElevenLabs' load or of the plan's requests in flight (never a quota)."""
    detail = (_json_object(response) or {}).get("detail")
    return response.status_code == 429 and _error_code(detail) in BUSY_CODES


class ElevenLabsClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str = DEFAULT_ELEVENLABS_URL,
        *,
        busy_retries: int = BUSY_RETRIES,
        busy_backoff: float = BUSY_BACKOFF_SECONDS,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._busy_retries, self._busy_backoff = busy_retries, busy_backoff

    async def count_voices(self, api_key: SecretStr) -> int:
        """How many voices the key sees: a free call that proves the key."""
        response = await self._send("GET", "/v1/voices", api_key)
        body = _json_object(response)
        if body is None:
            raise _malformed()
        voices = body.get("voices")
        return len(voices) if isinstance(voices, list) else 0

    async def check_key(self, api_key: SecretStr) -> KeyCheck:
        """Proves a key by listing its voices; a key restricted without `voices_read` is
        authenticated all the same (the module's docstring says why), so it is a restricted
        KeyCheck, not a refusal. Any other refusal is raised as `count_voices` raises it."""
        try:
            return KeyCheck(voices=await self.count_voices(api_key))
        except FailedPrecondition as exc:
            if exc.reason != KEY_MISSING_PERMISSION:
                raise
            permission = exc.metadata.get("permission", "")
            return KeyCheck(restricted=True, missing=(permission,) if permission else ())

    async def synthesize(
        self, api_key: SecretStr, voice: VoiceSpec, text: str
    ) -> AsyncIterator[Accepted | bytes]:
        model = voice.model or DEFAULT_ELEVENLABS_MODEL
        settings = {
            name: value
            for name, value in (
                ("stability", voice.stability),
                ("similarity_boost", voice.similarity_boost),
                ("style", voice.style),
                ("speed", voice.speed),
            )
            if value is not None
        }
        body: dict[str, Any] = {"text": text, "model_id": model}
        if settings:
            body["voice_settings"] = settings
        response = await self._speech_response(api_key, voice.voice_id, body)
        try:
            yield Accepted(model)
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.HTTPError:
            raise Unavailable(
                "elevenlabs broke off the audio", metadata={"provider": ELEVENLABS}
            ) from None
        finally:
            await response.aclose()

    async def _speech_response(
        self, api_key: SecretStr, voice_id: str, body: dict[str, Any]
    ) -> httpx.Response:
        """The accepted (2xx) streaming response, asked again after a busy 429 as the
        module's docstring says; any other refusal raised."""
        attempt = 0
        while True:
            request = self._http.build_request(
                "POST",
                # Quoted whole: an id like "../../v1/sound-generation#" must stay one path
                # segment, not aim the listener's key at another endpoint (review 158 M1).
                f"{self._base}/v1/text-to-speech/{_segment(voice_id)}/stream",
                params={"output_format": ELEVENLABS_OUTPUT},
                json=body,
                headers={"xi-api-key": api_key.get_secret_value()},
            )
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError:
                raise Unavailable(
                    "elevenlabs could not be reached", metadata={"provider": ELEVENLABS}
                ) from None
            if response.status_code < 400:
                return response
            try:
                await response.aread()
            except httpx.HTTPError:
                raise Unavailable(
                    "elevenlabs broke off its answer", metadata={"provider": ELEVENLABS}
                ) from None
            finally:
                await response.aclose()
            if attempt >= self._busy_retries or not _busy(response):
                raise _elevenlabs_error(response)
            await asyncio.sleep(self._busy_backoff * 2.0**attempt)
            attempt += 1

    async def clone(
        self, api_key: SecretStr, name: str, description: str, samples: Sequence[Sample]
    ) -> str:
        files = [
            ("files", (sample.filename, sample.data, "application/octet-stream"))
            for sample in samples
        ]
        data = {"name": name, "description": description, "remove_background_noise": "false"}
        response = await self._send("POST", "/v1/voices/add", api_key, data=data, files=files)
        voice_id = (_json_object(response) or {}).get("voice_id")
        if not isinstance(voice_id, str) or not voice_id:
            raise Unavailable("elevenlabs returned no voice id", metadata={"provider": ELEVENLABS})
        return voice_id

    async def cloned_voices(self, api_key: SecretStr) -> list[ClonedVoice]:
        """The voices cloned into the key's account (its own, not the default ones), every
        page of them."""
        found: list[ClonedVoice] = []
        token: str | None = None
        for _ in range(MAX_CLONE_PAGES):
            params = {
                "voice_type": "personal",
                "category": "cloned",
                "page_size": str(CLONES_PAGE_SIZE),
                "include_total_count": "false",
            }
            if token is not None:
                params["next_page_token"] = token
            body = _json_object(await self._send("GET", "/v2/voices", api_key, params=params))
            voices = None if body is None else body.get("voices")
            if body is None or not isinstance(voices, list):
                raise _malformed()
            found += [
                ClonedVoice(voice["voice_id"], str(voice.get("description") or ""))
                for voice in voices
                if isinstance(voice, dict)
                and isinstance(voice.get("voice_id"), str)
                and voice.get("category") == "cloned"
            ]
            token = body.get("next_page_token")
            if body.get("has_more") is not True or not isinstance(token, str) or not token:
                break
        return found

    async def delete_voice(self, api_key: SecretStr, voice_id: str) -> bool:
        """Deletes a voice of the key's account; False when ElevenLabs no longer knows it."""
        try:
            await self._send("DELETE", f"/v1/voices/{quote(voice_id, safe='')}", api_key)
        except FailedPrecondition as exc:
            if exc.reason == VOICE_NOT_FOUND:
                return False
            raise
        return True

    async def _send(
        self, method: str, path: str, api_key: SecretStr, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method,
                f"{self._base}{path}",
                headers={"xi-api-key": api_key.get_secret_value()},
                **kwargs,
            )
        except httpx.HTTPError:
            raise Unavailable(
                "elevenlabs could not be reached", metadata={"provider": ELEVENLABS}
            ) from None
        if response.status_code >= 400:
            raise _elevenlabs_error(response)
        return response


class OpenAISpeechClient:
    """`POST {base}/audio/speech` through the openai client (MP3 back), without the SDK's
    retries: asked again only as retries.py allows, never once the provider took the text
    (`max_retries`: its budget for a connection that failed before sending)."""

    def __init__(self, http: httpx.AsyncClient, *, max_retries: int = 2) -> None:
        self._http = http
        self._retry = RetryPolicy(failures=max_retries)

    async def synthesize(
        self, provider: Provider, api_key: SecretStr, voice: VoiceSpec, text: str
    ) -> AsyncIterator[Accepted | bytes]:
        client = openai.AsyncOpenAI(
            base_url=provider.base_url,
            api_key=api_key.get_secret_value(),
            max_retries=0,
            http_client=self._http,
        )
        extra: dict[str, Any] = {} if voice.speed is None else {"speed": voice.speed}
        model = voice.model or DEFAULT_SPEECH_MODEL
        retries, accepted = self._retry.retries(), False
        while True:
            try:
                async with client.audio.speech.with_streaming_response.create(
                    model=model,
                    voice=voice.voice_id,
                    input=text,
                    response_format="mp3",
                    **extra,
                ) as response:
                    accepted = True
                    yield Accepted(model)  # a 2xx: the openai client raised on anything else
                    async for chunk in response.iter_bytes():
                        yield chunk
                return
            except openai.OpenAIError as exc:
                err = provider_error(exc, provider.name, model=voice.model)
            except httpx.HTTPError:  # the body broke off after the 2xx
                raise Unavailable(
                    f"{provider.name} broke off the audio", metadata={"provider": provider.name}
                ) from None
            wait = retries.wait(err, began=accepted, resendable=False)
            if wait is None:
                raise err from None
            await asyncio.sleep(wait)


def _segment(voice_id: str) -> str:
    """`voice_id` as one URL path segment: every reserved character quoted, and "." or ".."
    (which quoting keeps, and a client resolves as a relative path) quoted too."""
    quoted = quote(voice_id, safe="")
    return quoted.replace(".", "%2E") if quoted.strip(".") == "" else quoted
