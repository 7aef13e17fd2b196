"""ElevenLabs over httpx: speaking, proving a key, cloning, listing and deleting clones.

Five endpoints: text-to-speech streaming, the voice list that proves a key, Instant Voice
Cloning, the paged search of the account's own clones (v2, which ElevenLabs' reference lists in
place of the deprecated v1 list), deleting a voice. Speaking answers `Accepted` the moment
ElevenLabs took the text (it bills the characters from then on, whatever becomes of the
audio), then its audio (MP3) as it streams. Refusals are typed errors (elevenlabs_errors);
unreachable → UNAVAILABLE. A busy 429 (`too_many_concurrent_requests`: two personalities
speaking at once on a Free or Starter key reach it; `system_busy`) comes before the text was
taken, so nothing is billed: speaking asks again after a short backoff (BUSY_RETRIES times,
BUSY_BACKOFF_SECONDS doubling) before the last one is told as RESOURCE_EXHAUSTED
PROVIDER_RATE_LIMITED; a quota is never asked again.

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
named), never an invalid one; any other 401 is (but `detected_unusual_activity`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
from pydantic import SecretStr

from tzurot.inference.elevenlabs_errors import (
    KEY_MISSING_PERMISSION,
    VOICE_NOT_FOUND,
    elevenlabs_error,
    is_busy,
    json_object,
    malformed_answer,
)
from tzurot.inference.speech_types import ELEVENLABS, Accepted, Sample, VoiceSpec
from tzurot.runtime.errors import FailedPrecondition, Unavailable

DEFAULT_ELEVENLABS_URL = "https://api.elevenlabs.io"
DEFAULT_ELEVENLABS_MODEL = "eleven_multilingual_v2"
DEFAULT_ELEVENLABS_VOICE = "EXAVITQu4vr4xnSDxMaL"
"""Sarah, one of ElevenLabs' default voices: every account has them (its "Default Voices"
page: "made available to all ElevenLabs users by default"), unlike a clone, which only the
account that cloned it may use. It speaks when the personality's voice is not the key's."""
ELEVENLABS_OUTPUT = "mp3_44100_128"
"""MP3 is open to every plan (PCM 44.1 kHz needs Pro); it is transcoded to Opus anyway."""
BUSY_RETRIES = 3
BUSY_BACKOFF_SECONDS = 1.0
"""The first wait before speaking again after a busy 429 (then doubled: 1, 2, 4 s); a long
text's speech takes seconds, so a slot comes free within them."""


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
        body = json_object(response)
        if body is None:
            raise malformed_answer()
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
            if attempt >= self._busy_retries or not is_busy(response):
                raise elevenlabs_error(response)
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
        voice_id = (json_object(response) or {}).get("voice_id")
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
            body = json_object(await self._send("GET", "/v2/voices", api_key, params=params))
            voices = None if body is None else body.get("voices")
            if body is None or not isinstance(voices, list):
                raise malformed_answer()
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
            raise elevenlabs_error(response)
        return response


def _segment(voice_id: str) -> str:
    """`voice_id` as one URL path segment: every reserved character quoted, and "." or ".."
    (which quoting keeps, and a client resolves as a relative path) quoted too."""
    quoted = quote(voice_id, safe="")
    return quoted.replace(".", "%2E") if quoted.strip(".") == "" else quoted
