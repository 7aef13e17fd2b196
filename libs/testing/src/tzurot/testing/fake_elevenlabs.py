"""A local ElevenLabs, faked at the HTTP level from the vendor's API reference.

Serves what Tzurot uses: `POST /v1/text-to-speech/{voice_id}/stream` (chunked real audio:
MP3 for `mp3_*` output formats, raw signed 16-bit mono PCM for `pcm_*`), `GET /v1/voices`,
`GET /v2/voices` (the paged search: `voice_type`, `category`, `search`, `sort`,
`page_size` ≤ 100, `next_page_token`; answers `voices`, `has_more`, `total_count`,
`next_page_token`), `POST /v1/voices/add` (Instant Voice Cloning, multipart: `name`, `files`,
`description`, `labels` as a serialized JSON object of strings) and
`DELETE /v1/voices/{voice_id}` (200 `{"status": "ok"}`, the voice gone from every list and its
slot free).

Each key is an account of its own (`add_key(key, account=...)` gives several keys one account),
as at ElevenLabs, where an Instant Voice Clone belongs to the account that made it: only that
account lists it, speaks with it and deletes it; every other account is answered 404
`voice_not_found`, as for a voice that does not exist. The default (premade) voices are every
account's. `voice_limit` is each account's own slot count (its plan's). Voices are listed
in the vendor's VoiceResponseModel shape (the voices, their shape and the search's rules:
tzurot.testing.fake_elevenlabs_voices).

As strict as the vendor (its rules and refusals' shape: tzurot.testing.fake_elevenlabs_rules):
the key travels in `xi-api-key` (401 `invalid_api_key` otherwise); a key restricted to some
permissions (`add_key(key, permissions=...)`, as ElevenLabs' "Restrict key" makes one) is
refused an endpoint needing another with 401 `missing_permissions` naming it (text-to-speech
needs `text_to_speech`, listing voices `voices_read`, cloning or deleting one `voices_write`); a
free plan's account (`add_key(key, plan="free")`) is refused Instant Voice Cloning with 402
`paid_plan_required`; text-to-speech requests beyond the plan's in flight at once (Free 2,
Starter 3, Creator 5, Pro 10, Scale and Business 15; "paid", the default, as Starter) are 429
`too_many_concurrent_requests`, counted per account from the request's acceptance to the audio's
last byte; `system_busy_next(n)` answers the next n 429 `system_busy`; bodies and the search's
query are validated (422), an undocumented model is 400 `model_not_found`, a text longer than
its model takes 400 `max_character_limit_exceeded`, a character quota 429 `quota_exceeded`, a
full slot list (the calling account's) 400 `voice_limit_reached`, an unknown voice or another
account's (to speak with; to delete, also a default one) 404 `voice_not_found`, and cloning
refuses samples that are too many, too large or not audio.
Every request is recorded (never the key itself: whether it was valid, a short digest of it
so a test can tell which key a call used, and the permission a restricted one lacked).

Faults a real vendor shows now and then, set on the instance: `audio_fault` "garbage" (a 200
whose body is not audio) or "break" (the stream ends after its first chunk); `audio_gate`, an
event the audio waits for after its first chunk (a speech held mid-stream, already billed);
`clone_gate`, an event every clone waits for before it answers (one clone held in flight);
`clone_fault` "drop" (the voice is made, then the connection closes with no answer: the
answer lost on its way, as a timeout or a dropped connection loses it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from aiohttp import BodyPartReader, web

from tzurot.audio import AudioError, encode_tone, probe
from tzurot.testing.fake_elevenlabs_rules import (
    FREE,
    MAX_CLONE_FILE_BYTES,
    MAX_CLONE_FILES,
    MODEL_TEXT_LIMITS,
    OUTPUT_FORMAT,
    PAID,
    PERMISSIONS,
    PLAN_CONCURRENCY,
    PLANS,
    TEXT_TO_SPEECH,
    VOICES_READ,
    VOICES_WRITE,
    check_voice_settings,
    invalid,
    missing_permission,
    paid_plan_required,
    refusal,
    system_busy,
    too_many_concurrent_requests,
    voice_not_found,
)
from tzurot.testing.fake_elevenlabs_voices import (
    FakeVoice,
    QueryError,
    parse_labels,
    search_voices,
)

__all__ = [
    "DEFAULT_ELEVENLABS_KEY",
    "MAX_CLONE_FILES",
    "MAX_CLONE_FILE_BYTES",
    "MODEL_TEXT_LIMITS",
    "PERMISSIONS",
    "PREMADE_VOICES",
    "FakeElevenLabs",
    "RecordedCall",
    "key_digest",
]

DEFAULT_ELEVENLABS_KEY = "sk_elevenlabs_test_valid"
PREMADE_VOICES = {"21m00Tcm4TlvDq8ikWAM": "Rachel", "EXAVITQu4vr4xnSDxMaL": "Sarah"}
_CHARS_PER_SECOND = 15.0
_STREAM_CHUNK = 4096


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    key_valid: bool
    body: dict[str, Any]
    query: dict[str, str] = field(default_factory=dict)
    missing_permission: str = ""
    """The permission a restricted key lacked for this call (refused); empty otherwise."""
    key_digest: str = ""
    """`key_digest` of the key sent (empty: none), to tell which key a call used."""


def key_digest(key: str) -> str:
    """A short digest of a key (SHA-256, 12 hex digits): which key a recorded call used,
    without the key itself being kept."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class FakeElevenLabs:
    """Run with `async with FakeElevenLabs() as fake:`; `base_url` is the API root (no /v1).

    `character_quota` is what may still be synthesised (None: no limit; one pool for every
    key); `voice_limit` is how many custom voices each account may hold; `latency` delays the
    first audio byte, like the vendor's time to first byte.
    """

    def __init__(
        self,
        valid_keys: tuple[str, ...] = (DEFAULT_ELEVENLABS_KEY,),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.valid_keys = set(valid_keys)
        self.key_accounts: dict[str, str] = {}
        """Keys sharing an account (`add_key(account=...)`); any other key is its own."""
        self.key_permissions: dict[str, frozenset[str]] = {}
        """The restricted keys' permissions (a valid key not here has every one)."""
        self.account_plans: dict[str, str] = {}
        """Each account's plan (`add_key(plan=...)`); an account not here has a paid one."""
        self.host, self.port = host, port
        self.character_quota: int | None = None
        self.characters_used = 0
        self.voice_limit = 10
        self.latency = 0.0
        self.audio_fault: Literal["garbage", "break"] | None = None
        self.audio_gate: asyncio.Event | None = None
        self.clone_gate: asyncio.Event | None = None
        self.clone_fault: Literal["drop"] | None = None
        self.voices: dict[str, FakeVoice] = {
            vid: FakeVoice(vid, name, "premade") for vid, name in PREMADE_VOICES.items()
        }
        self.calls: list[RecordedCall] = []
        self.in_flight: dict[str, int] = {}
        """Text-to-speech requests each account has in flight now."""
        self.peak_in_flight = 0
        """The most any account had in flight at once."""
        self._busy = 0
        self.tts_seconds: list[float] = []
        """How long each answered text-to-speech request took here (its own latency)."""
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=(MAX_CLONE_FILES + 2) * MAX_CLONE_FILE_BYTES)
        app.router.add_post("/v1/text-to-speech/{voice_id}/stream", self._tts)
        app.router.add_post("/v1/text-to-speech/{voice_id}", self._tts)
        app.router.add_get("/v1/voices", self._list_voices)
        app.router.add_get("/v2/voices", self._search_voices)
        app.router.add_post("/v1/voices/add", self._add_voice)
        app.router.add_delete("/v1/voices/{voice_id}", self._delete_voice)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeElevenLabs:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def add_key(
        self,
        key: str,
        *,
        permissions: Iterable[str] | None = None,
        account: str = "",
        plan: str = "",
    ) -> None:
        """Makes `key` valid: with every permission, or restricted to `permissions` (an
        endpoint needing another answers 401 `missing_permissions`); of its own account, or
        of `account` (the keys given one account share its voices and slots); `plan` sets the
        account's ("free": no Instant Voice Cloning; unset, a paid one). ValueError for a
        permission or plan ElevenLabs does not have."""
        if plan and plan not in PLANS:
            raise ValueError(f"no plan {plan}: {', '.join(PLANS)}")
        if account:
            self.key_accounts[key] = account
        if plan:
            self.account_plans[self.account_of(key)] = plan
        if permissions is None:
            self.key_permissions.pop(key, None)
        else:
            scoped = frozenset(permissions)
            unknown = sorted(scoped - PERMISSIONS)
            if unknown:
                raise ValueError(f"ElevenLabs has no permission {', '.join(unknown)}")
            self.key_permissions[key] = scoped
        self.valid_keys.add(key)

    def system_busy_next(self, times: int = 1) -> None:
        """The next `times` text-to-speech requests (of valid keys) answer 429 `system_busy`."""
        self._busy += times

    # -- inspection ------------------------------------------------------------------------

    def calls_with(self, key: str) -> list[RecordedCall]:
        """The calls that sent `key`."""
        return [c for c in self.calls if c.key_digest == key_digest(key)]

    def tts_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if c.path.startswith("/v1/text-to-speech/")]

    def clone_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if c.path == "/v1/voices/add"]

    def delete_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == "DELETE"]

    def search_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if c.path == "/v2/voices"]

    def account_of(self, key: str) -> str:
        """The account `key` belongs to: the one `add_key` named, else its own."""
        return self.key_accounts.get(key) or key_digest(key)

    def plan_of(self, key: str) -> str:
        """The plan of `key`'s account: "free", or "paid" (any paid plan)."""
        return self.account_plans.get(self.account_of(key), PAID)

    def cloned_voices(self, key: str | None = None) -> list[FakeVoice]:
        """The custom voices of the account of `key` (each one holds a slot of its
        `voice_limit`); without a key, every account's."""
        account = None if key is None else self.account_of(key)
        return [
            v
            for v in self.voices.values()
            if v.category == "cloned" and (account is None or v.account == account)
        ]

    def _visible(self, request: web.Request) -> list[FakeVoice]:
        """The voices the calling key's account has: the default ones and its own."""
        account = self.account_of(request.headers.get("xi-api-key", ""))
        return [v for v in self.voices.values() if v.visible_to(account)]

    def _voice_of(self, request: web.Request, voice_id: str) -> FakeVoice | None:
        """The voice, if the calling key's account has it (another account's is unknown)."""
        voice = self.voices.get(voice_id)
        account = self.account_of(request.headers.get("xi-api-key", ""))
        return voice if voice is not None and voice.visible_to(account) else None

    # -- handlers --------------------------------------------------------------------------

    def _record(
        self, request: web.Request, body: dict[str, Any], needs: str
    ) -> tuple[RecordedCall, web.Response | None]:
        """Records the call; the refusal of its key, if any: invalid, else restricted without
        the permission the endpoint `needs` (in that order, as the vendor checks)."""
        key = request.headers.get("xi-api-key", "")
        valid = key in self.valid_keys
        allowed = self.key_permissions.get(key)
        missing = needs if valid and allowed is not None and needs not in allowed else ""
        call = RecordedCall(
            request.method,
            request.path,
            valid,
            body,
            dict(request.query),
            missing,
            key_digest(key) if key else "",
        )
        self.calls.append(call)
        if not valid:
            return call, refusal(401, "invalid_api_key", "Invalid API key")
        if missing:
            return call, missing_permission(missing)
        return call, None

    async def _list_voices(self, request: web.Request) -> web.StreamResponse:
        _, refused = self._record(request, {}, VOICES_READ)
        if refused:
            return refused
        return web.json_response({"voices": [v.listed() for v in self._visible(request)]})

    async def _search_voices(self, request: web.Request) -> web.StreamResponse:
        _, refused = self._record(request, {}, VOICES_READ)
        if refused:
            return refused
        page = search_voices(self._visible(request), request.query)
        if isinstance(page, QueryError):
            return invalid(page.loc, page.msg)
        return web.json_response(page)

    async def _tts(self, request: web.Request) -> web.StreamResponse:  # noqa: PLR0911, PLR0912  # one answer per vendor rule
        started = time.perf_counter()
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
        _, refused = self._record(request, body if isinstance(body, dict) else {}, TEXT_TO_SPEECH)
        if refused:
            return refused
        if not isinstance(body, dict):
            return invalid(["body"], "a JSON object is required")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return invalid(["body", "text"], "field required")
        model = str(body.get("model_id") or "eleven_multilingual_v2")
        if model not in MODEL_TEXT_LIMITS:
            return refusal(400, "model_not_found", f"A model with model ID {model} does not exist")
        if len(text) > MODEL_TEXT_LIMITS[model]:
            return refusal(
                400,
                "max_character_limit_exceeded",
                f"Text is {len(text)} characters; {model} takes at most "
                f"{MODEL_TEXT_LIMITS[model]}.",
            )
        settings_error = check_voice_settings(body.get("voice_settings"))
        if settings_error is not None:
            return settings_error
        output_format = request.query.get("output_format", "mp3_44100_128")
        if not OUTPUT_FORMAT.match(output_format):
            return invalid(["query", "output_format"], f"unknown output format {output_format}")
        voice_id = request.match_info["voice_id"]
        if self._voice_of(request, voice_id) is None:
            return voice_not_found(voice_id)
        if self._busy > 0:
            self._busy -= 1
            return system_busy()
        account = self.account_of(request.headers.get("xi-api-key", ""))
        allowed = PLAN_CONCURRENCY[self.plan_of(request.headers.get("xi-api-key", ""))]
        if self.in_flight.get(account, 0) >= allowed:
            return too_many_concurrent_requests(allowed)
        self.in_flight[account] = self.in_flight.get(account, 0) + 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight[account])
        try:
            response = await self._speak(request, text, output_format)
        finally:
            self.in_flight[account] -= 1
        if response.status == 200:
            self.tts_seconds.append(time.perf_counter() - started)
        return response

    async def _speak(
        self, request: web.Request, text: str, output_format: str
    ) -> web.StreamResponse:
        """An accepted request's answer: the quota's refusal, or the audio streamed."""
        if (
            self.character_quota is not None
            and len(text) > self.character_quota - self.characters_used
        ):
            left = max(0, self.character_quota - self.characters_used)
            return refusal(
                429,
                "quota_exceeded",
                f"This request exceeds your quota. You have {left} credits remaining, "
                f"while {len(text)} credits are required for this request.",
            )
        self.characters_used += len(text)
        codec, rate = output_format.split("_")[:2]
        seconds = max(0.5, len(text) / _CHARS_PER_SECOND)
        audio = await asyncio.to_thread(encode_tone, seconds, fmt=codec, rate=int(rate))
        response = web.StreamResponse(
            headers={
                "Content-Type": "audio/mpeg" if codec == "mp3" else "application/octet-stream",
                "character-cost": str(len(text)),
                "request-id": uuid.uuid4().hex,
            }
        )
        if self.latency:
            await asyncio.sleep(self.latency)
        await self._stream(request, response, audio)
        return response

    async def _stream(
        self, request: web.Request, response: web.StreamResponse, audio: bytes
    ) -> None:
        """The audio, chunked, as the vendor streams it (or as `audio_fault` spoils it)."""
        if self.audio_fault == "garbage":
            audio = b"<html>upstream error</html>" * 200
        await response.prepare(request)
        for start in range(0, len(audio), _STREAM_CHUNK):
            await response.write(audio[start : start + _STREAM_CHUNK])
            if self.audio_fault == "break" and request.transport is not None:
                request.transport.close()  # mid-stream: the chunked body never ends
                return
            if self.audio_gate is not None:
                await self.audio_gate.wait()
        await response.write_eof()

    async def _add_voice(self, request: web.Request) -> web.StreamResponse:  # noqa: PLR0911, PLR0912  # one answer per vendor rule
        if not request.content_type.startswith("multipart/"):
            self._record(request, {}, VOICES_WRITE)
            return invalid(["body"], "multipart/form-data is required")
        fields: dict[str, str] = {}
        files: list[tuple[str, bytes]] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            data = await part.read()
            if part.name == "files" and part.filename is not None:
                files.append((part.filename, bytes(data)))
            else:
                fields[part.name] = bytes(data).decode()
        body = {**fields, "files": [(name, len(data)) for name, data in files]}
        _, refused = self._record(request, body, VOICES_WRITE)
        if refused:
            return refused
        if not fields.get("name", "").strip():
            return invalid(["body", "name"], "field required")
        labels = parse_labels(fields.get("labels"))
        if labels is None:
            return invalid(["body", "labels"], "a serialized JSON object of strings")
        if not files:
            return invalid(["body", "files"], "field required")
        if len(files) > MAX_CLONE_FILES:
            return refusal(
                400, "too_many_files", f"At most {MAX_CLONE_FILES} samples can be uploaded."
            )
        for name, data in files:
            if len(data) > MAX_CLONE_FILE_BYTES:
                return refusal(
                    400, "file_too_large", f"{name} is larger than {MAX_CLONE_FILE_BYTES} bytes."
                )
            try:
                await asyncio.to_thread(probe, data)
            except AudioError:
                return refusal(400, "invalid_audio", f"{name} is not a valid audio file.")
        key = request.headers.get("xi-api-key", "")
        if self.plan_of(key) == FREE:
            return paid_plan_required("instant voice cloning")
        if self.clone_gate is not None:
            await self.clone_gate.wait()
        custom = len(self.cloned_voices(key))
        if custom >= self.voice_limit:
            return refusal(
                400,
                "voice_limit_reached",
                f"You have reached your maximum amount of custom voices ({self.voice_limit}).",
            )
        if self.character_quota is not None and self.characters_used >= self.character_quota:
            return refusal(429, "quota_exceeded", "This request exceeds your quota.")
        voice_id = uuid.uuid4().hex[:20]
        self.voices[voice_id] = FakeVoice(
            voice_id,
            fields["name"],
            "cloned",
            len(files),
            description=fields.get("description", ""),
            labels=labels,
            created_at_unix=int(time.time()),
            account=self.account_of(key),
        )
        if self.clone_fault == "drop" and request.transport is not None:
            request.transport.close()  # made, but the answer never leaves
            raise asyncio.CancelledError
        return web.json_response({"voice_id": voice_id, "requires_verification": False})

    async def _delete_voice(self, request: web.Request) -> web.StreamResponse:
        _, refused = self._record(request, {}, VOICES_WRITE)
        if refused:
            return refused
        voice_id = request.match_info["voice_id"]
        voice = self._voice_of(request, voice_id)
        if voice is None or voice.category == "premade":  # the default voices are no one's
            return voice_not_found(voice_id)
        del self.voices[voice_id]
        return web.json_response({"status": "ok"})
