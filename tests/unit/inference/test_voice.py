"""Inference's voice use-cases against the fake vendors: the user's key, the transcoding."""

import base64
from typing import Literal

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.audio import encode_tone, probe
from tzurot.inference import voice as voice_module
from tzurot.inference.clone_marks import read_mark
from tzurot.inference.config import InferenceSettings
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.speech import (
    DEFAULT_ELEVENLABS_VOICE,
    ElevenLabsClient,
    KeyCheck,
    OpenAISpeechClient,
    Sample,
    VoiceSpec,
)
from tzurot.inference.voice import SpeechBilled, SpeechResult, VoiceService
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY, FakeElevenLabs
from tzurot.testing.fake_provider import FakeProvider

RACHEL = "21m00Tcm4TlvDq8ikWAM"


def vendor_client() -> httpx.AsyncClient:
    """A client with inference's own timeout (provider_timeout_seconds' default), not httpx's
    5 s: the fake encodes a long text's audio before it answers, which a loaded machine took
    longer than 5 s to do (the client gave up: "elevenlabs could not be reached")."""
    return httpx.AsyncClient(
        timeout=InferenceSettings.model_fields["provider_timeout_seconds"].default
    )


class Vault:
    def __init__(self, keys: dict[tuple[str, str], str]) -> None:
        self.keys = keys

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        key = self.keys.get((user_id, provider))
        return SecretStr(key) if key else None


def service(
    http: httpx.AsyncClient, eleven: FakeElevenLabs, provider: FakeProvider, vault: Vault
) -> VoiceService:
    return VoiceService(
        providers=ProviderRegistry({"openai": provider.base_url, "kokoro": provider.base_url}),
        keys=KeyResolver(vault),
        elevenlabs=ElevenLabsClient(http, eleven.base_url),
        speech=OpenAISpeechClient(http, max_retries=0),
    )


async def collect(
    voice: VoiceService, user: str, spec: VoiceSpec, text: str
) -> tuple[bytes, SpeechResult]:
    audio, result = bytearray(), None
    async for event in voice.synthesize(user, spec, text):
        if isinstance(event, bytes):
            audio += event
        elif isinstance(event, SpeechResult):
            result = event
    assert result is not None
    return bytes(audio), result


async def test_speaks_with_the_users_elevenlabs_key_as_a_voice_message() -> None:
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        text = "I am speaking to you now, in my own voice."
        audio, result = await collect(
            voice, "u1", VoiceSpec("elevenlabs", "21m00Tcm4TlvDq8ikWAM"), text
        )
        with pytest.raises(FailedPrecondition) as none:
            await collect(voice, "u2", VoiceSpec("elevenlabs", "21m00Tcm4TlvDq8ikWAM"), text)
    info = probe(audio)
    assert (info.container, info.codec, info.channels) == ("ogg", "opus", 1)
    assert result.content_type == "audio/ogg"
    assert result.size_bytes == len(audio)
    assert result.characters == len(text)
    assert result.duration_secs == pytest.approx(len(text) / 15, abs=0.2)
    assert 0 < len(base64.b64decode(result.waveform)) <= 256
    assert none.value.reason == "NO_API_KEY"


async def test_a_local_speech_server_needs_no_key() -> None:
    async with (
        FakeElevenLabs() as eleven,
        FakeProvider(require_key=False) as provider,
        vendor_client() as http,
    ):
        voice = service(http, eleven, provider, Vault({}))
        audio, result = await collect(
            voice, "u1", VoiceSpec("kokoro", "af_bella", model="kokoro"), "hello"
        )
    assert probe(audio).codec == "opus"
    assert result.characters == 5


async def test_clone_uses_the_users_key_and_checks_its_input() -> None:
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        voice_id = await voice.clone("u1", "Lilith", "", [Sample("a.mp3", encode_tone(1.0))])
        assert eleven.voices[voice_id].name == "Lilith"
        with pytest.raises(InvalidArgument):
            await voice.clone("u1", "Lilith", "", [])
        with pytest.raises(FailedPrecondition):
            await voice.clone("u2", "Lilith", "", [Sample("a.mp3", encode_tone(1.0))])


P1, P2 = "personality-1", "personality-2"
TONE = Sample("a.mp3", encode_tone(0.5))


async def test_a_clone_whose_answer_is_lost_is_found_by_its_mark() -> None:
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        eleven.clone_fault = "drop"  # made, then the connection closes with no answer
        voice_id = await voice.clone(
            "u1", "Nova", "Tzurot personality nova", [TONE], personality_id=P1
        )
    (made,) = eleven.cloned_voices()
    assert voice_id == made.voice_id
    mark = read_mark(made.description)
    assert mark is not None
    assert mark.personality_id == P1
    assert made.description.startswith("Tzurot personality nova [tzurot-clone")


async def test_a_refusal_is_no_lost_answer_and_an_answer_lost_before_a_voice_is_told() -> None:
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        eleven.voice_limit = 0
        with pytest.raises(FailedPrecondition) as full:
            await voice.clone("u1", "Nova", "", [TONE])
        assert full.value.reason == "VOICE_LIMIT_REACHED"
        assert eleven.search_calls() == []  # no personality, no clean-up; a refusal: no lookup
        gone = VoiceService(
            providers=ProviderRegistry({}),
            keys=KeyResolver(vault),
            elevenlabs=ElevenLabsClient(http, "http://127.0.0.1:9"),  # nothing listens there
            speech=OpenAISpeechClient(http, max_retries=0),
        )
        with pytest.raises(Unavailable):
            await gone.clone("u1", "Nova", "", [TONE], personality_id=P1)
        with pytest.raises(InvalidArgument):
            await voice.clone("u1", "Nova", "", [TONE], personality_id="p1]; drop")


async def test_a_clone_first_deletes_the_lost_clones_of_its_personality_and_nothing_else() -> None:
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        client = ElevenLabsClient(http, eleven.base_url)
        key = SecretStr(DEFAULT_ELEVENLABS_KEY)
        kept = await voice.clone("u1", "Nova", "", [TONE], personality_id=P1)
        # Made while `kept` is her voice, and never stored (gateway died, or its answer was lost).
        lost = await voice.clone("u1", "Nova", "", [TONE], personality_id=P1, keep_voice_id=kept)
        other = await voice.clone("u1", "Wren", "", [TONE], personality_id=P2)
        unowned = await voice.clone("u1", "Old", "", [TONE])  # an older gateway named none
        own = await client.clone(key, "My voice", "Tzurot personality nova", [TONE])
        # Her plan is full: the lost clone holds the slot the new one needs.
        eleven.voice_limit = len(eleven.cloned_voices())
        new = await voice.clone("u1", "Nova", "", [TONE], personality_id=P1, keep_voice_id=kept)
    assert {v.voice_id for v in eleven.cloned_voices()} == {kept, other, unowned, own, new}
    assert lost not in eleven.voices
    assert RACHEL in eleven.voices


async def until_failure(
    voice: VoiceService, spec: VoiceSpec, text: str
) -> tuple[list[object], Exception | None]:
    """The events of one synthesis for user u1, and the error it ended with."""
    events: list[object] = []
    try:
        async for event in voice.synthesize("u1", spec, text):
            events.append(event)
    except Exception as exc:  # the caller asserts which
        return events, exc
    return events, None


@pytest.mark.parametrize(
    ("fault", "message"),
    [("garbage", "could not be decoded"), ("break", "broke off the audio")],
)
async def test_what_the_vendor_bills_is_told_before_audio_that_fails_after(
    fault: Literal["garbage", "break"], message: str
) -> None:
    """The vendor accepted 1800 characters (and charges them); the audio is then useless.
    SpeechBilled comes first, with the model that was used, then the failure."""
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    text = "Words to be spoken. " * 90
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        eleven.audio_fault = fault
        voice = service(http, eleven, provider, vault)
        events, failed = await until_failure(voice, VoiceSpec("elevenlabs", RACHEL), text)
    assert isinstance(failed, Unavailable)
    assert message in failed.message
    assert events == [SpeechBilled("elevenlabs", "eleven_multilingual_v2", 1800)]
    assert eleven.characters_used == 1800  # what the vendor charged


async def test_a_speech_longer_than_a_voice_message_can_be_is_refused_after_its_bill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past `MAX_VOICE_MESSAGE_SECONDS` (Discord's 10 MiB at 32 kbps) the conversion stops
    at the limit, holding no more samples than that, and says why; the bill came first. (The
    backstop: the estimate made before the speech is set aside, as for a text it misjudged.)"""
    monkeypatch.setattr(voice_module, "MAX_VOICE_MESSAGE_SECONDS", 0.5)
    monkeypatch.setattr(voice_module, "clearly_longer_than", lambda *_: None)
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    text = "Words to be spoken. " * 90
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        events, failed = await until_failure(voice, VoiceSpec("elevenlabs", RACHEL), text)
    assert isinstance(failed, FailedPrecondition)
    assert failed.reason == "SPEECH_TOO_LONG"
    assert "longer than a voice message can be" in failed.message
    assert events == [SpeechBilled("elevenlabs", "eleven_multilingual_v2", 1800)]


async def test_the_billed_model_is_the_one_used_and_a_refusal_bills_nothing() -> None:
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with (
        FakeElevenLabs() as eleven,
        FakeProvider(require_key=False) as provider,
        vendor_client() as http,
    ):
        voice = service(http, eleven, provider, vault)
        spoken = [e async for e in voice.synthesize("u1", VoiceSpec("kokoro", "af_bella"), "hi")]
        assert spoken[0] == SpeechBilled("kokoro", "tts-1", 2)  # the default model, named
        assert isinstance(spoken[-1], SpeechResult)
        # A model ElevenLabs does not have: refused, and not charged.
        spec = VoiceSpec("elevenlabs", RACHEL, model="eleven_imaginary_v9")
        refused, error = await until_failure(voice, spec, "hi")
    assert isinstance(error, InvalidArgument)
    assert refused == []
    assert eleven.characters_used == 0


async def test_a_voice_the_keys_account_lacks_is_spoken_by_the_default_voice() -> None:
    """Another account's clone (ElevenLabs: 404 `voice_not_found`, nothing billed) is spoken
    in ElevenLabs' default voice with the same key and model, and the result says so."""
    vault = Vault({("u1", "elevenlabs"): "sk_bob", ("u2", "elevenlabs"): "sk_alice"})
    async with (
        FakeElevenLabs(valid_keys=("sk_bob", "sk_alice")) as eleven,
        FakeProvider() as provider,
        vendor_client() as http,
    ):
        voice = service(http, eleven, provider, vault)
        hers = await voice.clone("u2", "Ivy", "", [Sample("a.mp3", encode_tone(1.0))])
        spec = VoiceSpec("elevenlabs", hers, model="eleven_flash_v2", stability=0.3)
        bobs = [e async for e in voice.synthesize("u1", spec, "hello")]
        alices = [e async for e in voice.synthesize("u2", spec, "hello")]
    assert bobs[0] == SpeechBilled("elevenlabs", "eleven_flash_v2", 5)
    assert isinstance(bobs[-1], SpeechResult)
    assert bobs[-1].stand_in_voice
    assert isinstance(alices[-1], SpeechResult)
    assert not alices[-1].stand_in_voice
    spoken = [(c.path.split("/")[3], c.body) for c in eleven.tts_calls()]
    body = {"text": "hello", "model_id": "eleven_flash_v2", "voice_settings": {"stability": 0.3}}
    assert spoken == [(hers, body), (DEFAULT_ELEVENLABS_VOICE, body), (hers, body)]
    assert eleven.characters_used == 10  # the refusal billed nothing


def elevenlabs_answering(status: int, content: bytes) -> ElevenLabsClient:
    """An ElevenLabs whose every answer is this status and body (a proxy's, not the vendor's)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"content-type": "application/json"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return ElevenLabsClient(http, "http://elevenlabs.test")


@pytest.mark.parametrize("content", [b'["upstream down"]', b'"Bad Gateway"', b"7", b"[" * 50_000])
async def test_an_error_body_that_is_no_json_object_is_classified_by_status(content: bytes) -> None:
    with pytest.raises(Unavailable) as caught:
        await elevenlabs_answering(502, content).count_voices(SecretStr("k"))
    assert caught.value.message == "elevenlabs failed (HTTP 502)"
    with pytest.raises(FailedPrecondition) as refused:
        await elevenlabs_answering(401, content).count_voices(SecretStr("k"))
    assert refused.value.reason == "INVALID_API_KEY"


@pytest.mark.parametrize("content", [b'["a voice"]', b"null", b"not json"])
async def test_a_success_body_that_is_no_json_object_is_a_malformed_answer(content: bytes) -> None:
    with pytest.raises(Unavailable) as caught:
        await elevenlabs_answering(200, content).count_voices(SecretStr("k"))
    assert caught.value.message == "elevenlabs sent a malformed answer"
    with pytest.raises(Unavailable):
        await elevenlabs_answering(200, content).clone(
            SecretStr("k"), "Lilith", "", [Sample("a.mp3", b"ID3")]
        )


# ---- whose key a refusal was for: gateway marks only the user's stored key inactive ----

REVOKED = "sk_elevenlabs_revoked"


async def test_every_elevenlabs_call_refused_for_the_users_key_says_it_was_hers() -> None:
    """Her stored key was revoked at ElevenLabs (401 `invalid_api_key`): speech, clone,
    delete and the wallet's check each say the refused key was the user's."""
    vault = Vault({("u1", "elevenlabs"): REVOKED})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        _, spoken = await until_failure(voice, VoiceSpec("elevenlabs", RACHEL), "hello")
        refusals: list[Exception] = [] if spoken is None else [spoken]
        for call in (
            voice.clone("u1", "Nova", "", [TONE], personality_id=P1),
            voice.delete_voice("u1", RACHEL),
            voice.check_stored_key("u1"),
        ):
            with pytest.raises(FailedPrecondition) as refused:
                await call
            refusals.append(refused.value)
    assert len(refusals) == 4
    for err in refusals:
        assert isinstance(err, FailedPrecondition)
        assert err.reason == "INVALID_API_KEY"
        assert err.metadata == {"provider": "elevenlabs", "key_source": "user"}
        assert "/wallet set elevenlabs" in err.message
    assert all(not call.key_valid for call in eleven.calls)


async def test_an_openai_compatible_speech_refusal_names_whose_key_it_was() -> None:
    """OpenAI refuses her stored key: "user". A local speech server (no key of hers, a
    placeholder) refusing is "none": nothing of her wallet to mark."""
    vault = Vault({("u1", "openai"): "sk-revoked"})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        _, hers = await until_failure(voice, VoiceSpec("openai", "nova"), "hello")
        _, local = await until_failure(voice, VoiceSpec("kokoro", "af_bella"), "hello")
    assert isinstance(hers, FailedPrecondition)
    assert (hers.reason, hers.metadata.get("key_source")) == ("INVALID_API_KEY", "user")
    assert hers.metadata["provider"] == "openai"
    assert isinstance(local, FailedPrecondition)
    assert (local.reason, local.metadata.get("key_source")) == ("INVALID_API_KEY", "none")


async def test_refusals_that_are_not_about_the_key_name_no_key() -> None:
    """Out of characters (429 `quota_exceeded`), a full plan (400 `voice_limit_reached`):
    the key works, so no refusal of it is reported."""
    vault = Vault({("u1", "elevenlabs"): DEFAULT_ELEVENLABS_KEY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        eleven.character_quota, eleven.voice_limit = 0, 0
        _, quota = await until_failure(voice, VoiceSpec("elevenlabs", RACHEL), "hello")
        with pytest.raises(FailedPrecondition) as full:
            await voice.clone("u1", "Nova", "", [TONE])
    assert isinstance(quota, ResourceExhausted)
    assert quota.reason == "PROVIDER_QUOTA_EXCEEDED"
    assert full.value.reason == "VOICE_LIMIT_REACHED"
    assert "key_source" not in quota.metadata
    assert "key_source" not in full.value.metadata


def elevenlabs_refusing(status: int, body: dict[str, object]) -> VoiceService:
    """A voice service whose ElevenLabs answers every request with this status and body."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return VoiceService(
        providers=ProviderRegistry({}),
        keys=KeyResolver(Vault({("u1", "elevenlabs"): "sk_elevenlabs_scoped"})),
        elevenlabs=ElevenLabsClient(http, "http://elevenlabs.test"),
        speech=OpenAISpeechClient(http, max_retries=0),
    )


MISSING_VOICES_WRITE: dict[str, object] = {
    "detail": {
        "status": "missing_permissions",
        "message": "The API key you used is missing the permission voices_write to execute "
        "this operation.",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason"),
    [
        (401, MISSING_VOICES_WRITE, FailedPrecondition, "KEY_MISSING_PERMISSION"),
        (401, {"detail": {"status": "quota_exceeded", "message": "quota"}}, ResourceExhausted,
         "PROVIDER_QUOTA_EXCEEDED"),
        (429, {"detail": {"status": "too_many_concurrent_requests", "message": "busy"}},
         ResourceExhausted, "PROVIDER_RATE_LIMITED"),
        (500, {"detail": {"status": "internal_error", "message": "oops"}}, Unavailable,
         "UNAVAILABLE"),
        (503, {"detail": "Service Unavailable"}, Unavailable, "UNAVAILABLE"),
    ],
)  # fmt: skip
async def test_a_refusal_for_another_reason_than_the_key_is_no_invalid_key(
    status: int, body: dict[str, object], kind: type[Exception], reason: str
) -> None:
    """A 401 for a permission a scoped key lacks, ElevenLabs' quota (some accounts see it as
    a 401), its rate limit and its failures: the key is not called invalid, so gateway does
    not mark it inactive."""
    voice = elevenlabs_refusing(status, body)
    _, spoken = await until_failure(voice, VoiceSpec("elevenlabs", RACHEL), "hello")
    with pytest.raises(kind) as cloned:
        await voice.clone("u1", "Nova", "", [TONE])
    for err in (spoken, cloned.value):
        assert isinstance(err, kind)
        assert isinstance(err, TzurotError)
        assert err.reason == reason
        assert "key_source" not in err.metadata


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"detail": {"code": "missing_permissions", "message": "missing the permission x"}},
         "KEY_MISSING_PERMISSION"),
        ({"detail": {"code": "invalid_api_key", "message": "Invalid API key"}}, "INVALID_API_KEY"),
        ({"detail": {"code": "quota_exceeded", "message": "quota"}}, "PROVIDER_QUOTA_EXCEEDED"),
        # `code` wins where both are sent and differ (`status` is the legacy field).
        ({"detail": {"code": "quota_exceeded", "status": "invalid_api_key", "message": "q"}},
         "PROVIDER_QUOTA_EXCEEDED"),
    ],
)  # fmt: skip
async def test_a_refusal_is_read_by_its_code_the_legacy_status_aside(
    body: dict[str, object], reason: str
) -> None:
    """ElevenLabs' Errors page: clients read `code`; `status` is a legacy field "no longer
    used". A refusal without `status` is classified as one with it."""
    with pytest.raises(TzurotError) as refused:
        await elevenlabs_refusing(401, body).clone("u1", "Nova", "", [TONE])
    assert refused.value.reason == reason


async def test_a_missing_permission_names_only_the_permission() -> None:
    voice = elevenlabs_refusing(401, MISSING_VOICES_WRITE)
    with pytest.raises(FailedPrecondition) as refused:
        await voice.clone("u1", "Nova", "", [TONE])
    assert "lacks the `voices_write` permission" in refused.value.message
    assert "execute this operation" not in refused.value.message  # the vendor's text is not
    # The word alone, for the bot's own notice under an answer spoken automatically.
    assert refused.value.metadata == {"provider": "elevenlabs", "permission": "voices_write"}
    odd = elevenlabs_refusing(401, {"detail": {"status": "missing_permissions", "message": 7}})
    with pytest.raises(FailedPrecondition) as vague:
        await odd.clone("u1", "Nova", "", [TONE])
    assert "lacks a permission this needs" in vague.value.message
    assert "permission" not in vague.value.metadata
    # The wallet's check: a restricted key, its permission unnamed.
    assert await odd.check_stored_key("u1") == KeyCheck(restricted=True)


# ---- proving a key: a restricted key works, an unknown one does not ----

TTS_ONLY = "sk_elevenlabs_tts_only"


async def test_a_key_restricted_to_text_to_speech_is_proven_restricted_and_speaks() -> None:
    """ElevenLabs refuses a text-to-speech-only key its voice list (401 `missing_permissions`,
    `voices_read`) after authenticating it: the check says the key works, restricted without
    `voices_read`, for a new key and for the stored one; and it speaks."""
    vault = Vault({("u1", "elevenlabs"): TTS_ONLY})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        eleven.add_key(TTS_ONLY, permissions=["text_to_speech"])
        voice = service(http, eleven, provider, vault)
        new = await voice.check_key(SecretStr(TTS_ONLY))
        stored = await voice.check_stored_key("u1")
        _, spoken = await collect(voice, "u1", VoiceSpec("elevenlabs", RACHEL), "hello")
        full = await voice.check_key(SecretStr(DEFAULT_ELEVENLABS_KEY))
    assert new == stored == KeyCheck(restricted=True, missing=("voices_read",))
    assert spoken.characters == 5
    assert full == KeyCheck(voices=2)  # unrestricted: the account's voices, nothing missing
    assert [(c.path, c.missing_permission) for c in eleven.calls_with(TTS_ONLY)] == [
        ("/v1/voices", "voices_read"),
        ("/v1/voices", "voices_read"),
        (f"/v1/text-to-speech/{RACHEL}/stream", ""),
    ]


async def test_a_key_elevenlabs_does_not_authenticate_is_refused() -> None:
    """401 `invalid_api_key`: INVALID_API_KEY for a new key, the user's for a stored one."""
    vault = Vault({("u1", "elevenlabs"): REVOKED})
    async with FakeElevenLabs() as eleven, FakeProvider() as provider, vendor_client() as http:
        voice = service(http, eleven, provider, vault)
        with pytest.raises(FailedPrecondition) as new:
            await voice.check_key(SecretStr(REVOKED))
        with pytest.raises(FailedPrecondition) as stored:
            await voice.check_stored_key("u1")
    assert new.value.reason == stored.value.reason == "INVALID_API_KEY"
    assert new.value.metadata == {"provider": "elevenlabs"}
    assert stored.value.metadata == {"provider": "elevenlabs", "key_source": "user"}
    assert REVOKED not in str(new.value) + str(stored.value)


async def test_a_free_account_elevenlabs_turned_off_is_said_so_not_a_bad_key() -> None:
    """ElevenLabs' 401 `detected_unusual_activity` (a free account's use from servers and
    VPNs turned off, as bodies in the wild show it): the key is good, so it is not refused as
    invalid (nor made inactive by gateway); the user is told a paid plan lifts it."""
    body: dict[str, object] = {
        "detail": {
            "status": "detected_unusual_activity",
            "message": "Unusual activity detected. Free Tier usage disabled.",
        }
    }
    voice = elevenlabs_refusing(401, body)
    with pytest.raises(FailedPrecondition) as checked:
        await voice.check_stored_key("u1")
    _, spoken = await until_failure(voice, VoiceSpec("elevenlabs", RACHEL), "hello")
    for err in (checked.value, spoken):
        assert isinstance(err, FailedPrecondition)
        assert err.reason == "PROVIDER_FREE_TIER_BLOCKED"
        assert "paid ElevenLabs plan" in err.message
        assert "key_source" not in err.metadata  # not the key: gateway keeps it active


@pytest.mark.parametrize(
    "body",
    [
        {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
        {"detail": "Unauthorized"},
        {"detail": {"message": "The API key you used is missing the permission voices_read"}},
    ],
)
async def test_any_other_401_is_no_restricted_key(body: dict[str, object]) -> None:
    """Only ElevenLabs' `missing_permissions` status proves a key it authenticated; any other
    401 (whatever its words) is a refused key, never stored."""
    with pytest.raises(FailedPrecondition) as refused:
        await elevenlabs_refusing(401, body).check_stored_key("u1")
    assert refused.value.reason == "INVALID_API_KEY"


@pytest.mark.parametrize("field", ["code", "status"])
async def test_a_refusal_code_that_is_no_identifier_is_not_quoted(field: str) -> None:
    """A proxy's (or the vendor's) refusal whose code echoes the key it was sent: only an
    identifier is quoted; else the refusal is told by its HTTP status."""
    key = "0123456789abcdef0123456789abcdef"  # a legacy ElevenLabs key's shape

    def answer(request: httpx.Request) -> httpx.Response:
        echoed = f"invalid_header_value: {request.headers['xi-api-key']}"
        return httpx.Response(400, json={"detail": {field: echoed, "message": "x"}})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    client = ElevenLabsClient(http, "http://elevenlabs.test")
    calls = (
        lambda: client.check_key(SecretStr(key)),
        lambda: client.clone(SecretStr(key), "n", "d", []),
    )
    for call in calls:
        with pytest.raises(InvalidArgument) as refused:
            await call()
        assert refused.value.message == "elevenlabs refused the request (HTTP 400)"
        assert key not in str(refused.value.metadata)
