"""The fake ElevenLabs and the fake OpenAI speech endpoint: their answers and refusals,
through inference's real clients (httpx for ElevenLabs, the openai client for speech)."""

import json
import re
from typing import Any

import httpx2 as httpx
import openai
import pytest
from pydantic import SecretStr

from tzurot.audio import encode_tone, probe
from tzurot.inference.providers import Provider
from tzurot.inference.speech import (
    Accepted,
    ClonedVoice,
    ElevenLabsClient,
    OpenAISpeechClient,
    Sample,
    VoiceSpec,
)
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from tzurot.testing.fake_elevenlabs import (
    DEFAULT_ELEVENLABS_KEY,
    MAX_CLONE_FILE_BYTES,
    MAX_CLONE_FILES,
    FakeElevenLabs,
)
from tzurot.testing.fake_provider import DEFAULT_KEY, FakeProvider

KEY = SecretStr(DEFAULT_ELEVENLABS_KEY)
RACHEL = VoiceSpec("elevenlabs", "21m00Tcm4TlvDq8ikWAM", stability=0.4, speed=1.1)


async def speak(client: ElevenLabsClient, text: str, voice: VoiceSpec = RACHEL) -> bytes:
    events = [event async for event in client.synthesize(KEY, voice, text)]
    assert events[0] == Accepted("eleven_multilingual_v2" if not voice.model else voice.model)
    return b"".join(e for e in events if isinstance(e, bytes))


async def test_tts_streams_real_mp3_growing_with_the_text() -> None:
    async with FakeElevenLabs() as fake, httpx.AsyncClient() as http:
        client = ElevenLabsClient(http, fake.base_url)
        audio = await speak(client, "Hello there, this is a test of the voice." * 2)
    info = probe(audio)
    assert info.container == "mp3"
    assert info.duration_secs > 4
    call = fake.tts_calls()[0]
    assert call.key_valid
    assert call.query["output_format"] == "mp3_44100_128"
    assert call.body["voice_settings"] == {"stability": 0.4, "speed": 1.1}
    assert fake.characters_used == 82


async def test_tts_refusals_are_typed_and_never_quote_the_key() -> None:
    async with FakeElevenLabs() as fake, httpx.AsyncClient() as http:
        client = ElevenLabsClient(http, fake.base_url)
        with pytest.raises(FailedPrecondition) as bad_key:
            _ = [c async for c in client.synthesize(SecretStr("sk_wrong_123"), RACHEL, "hi")]
        assert bad_key.value.reason == "INVALID_API_KEY"
        assert "sk_wrong" not in str(bad_key.value)
        with pytest.raises(FailedPrecondition) as unknown:
            await speak(client, "hi", VoiceSpec("elevenlabs", "nope"))
        assert unknown.value.reason == "VOICE_NOT_FOUND"
        with pytest.raises(InvalidArgument):  # speed outside 0.7-1.2: FastAPI's 422
            await speak(client, "hi", VoiceSpec("elevenlabs", "21m00Tcm4TlvDq8ikWAM", speed=2.0))
        with pytest.raises(InvalidArgument):
            await speak(client, "x" * 10_001)  # over multilingual v2's limit
        fake.character_quota = 10
        with pytest.raises(ResourceExhausted) as quota:
            await speak(client, "more than ten characters")
        assert quota.value.reason == "PROVIDER_QUOTA_EXCEEDED"


async def test_voices_list_proves_a_key() -> None:
    async with FakeElevenLabs() as fake, httpx.AsyncClient() as http:
        client = ElevenLabsClient(http, fake.base_url)
        assert await client.count_voices(KEY) == 2
        with pytest.raises(FailedPrecondition):
            await client.count_voices(SecretStr("bad"))


async def test_instant_voice_clone_adds_a_voice_that_then_speaks() -> None:
    samples = [Sample("a.mp3", encode_tone(1.0)), Sample("b.wav", encode_tone(1.0, fmt="wav"))]
    async with FakeElevenLabs() as fake, httpx.AsyncClient() as http:
        client = ElevenLabsClient(http, fake.base_url)
        voice_id = await client.clone(KEY, "Lilith", "a test voice", samples)
        assert fake.voices[voice_id].sample_count == 2
        assert probe(await speak(client, "cloned", VoiceSpec("elevenlabs", voice_id)))
        assert fake.clone_calls()[0].body["files"] == [
            ("a.mp3", len(samples[0].data)),
            ("b.wav", len(samples[1].data)),
        ]


async def test_clone_refusals() -> None:
    good = Sample("a.mp3", encode_tone(0.5))
    async with FakeElevenLabs() as fake, httpx.AsyncClient(timeout=60) as http:
        client = ElevenLabsClient(http, fake.base_url)
        with pytest.raises(FailedPrecondition) as bad_key:
            await client.clone(SecretStr("bad"), "x", "", [good])
        assert bad_key.value.reason == "INVALID_API_KEY"
        with pytest.raises(InvalidArgument, match="invalid_audio"):
            await client.clone(KEY, "x", "", [Sample("fake.mp3", b"not audio at all" * 100)])
        with pytest.raises(InvalidArgument, match="too_many_files"):
            await client.clone(KEY, "x", "", [good] * (MAX_CLONE_FILES + 1))
        with pytest.raises(InvalidArgument, match="file_too_large"):
            await client.clone(
                KEY, "x", "", [Sample("big.wav", b"\0" * (MAX_CLONE_FILE_BYTES + 1))]
            )
        fake.voice_limit = 0
        with pytest.raises(FailedPrecondition) as full:
            await client.clone(KEY, "x", "", [good])
        assert full.value.reason == "VOICE_LIMIT_REACHED"
        fake.voice_limit, fake.character_quota = 10, 0
        with pytest.raises(ResourceExhausted) as quota:
            await client.clone(KEY, "x", "", [good])
        assert quota.value.reason == "PROVIDER_QUOTA_EXCEEDED"
        assert not [v for v in fake.voices.values() if v.category == "cloned"]


async def test_a_dropped_clone_answer_leaves_the_voice_made() -> None:
    async with FakeElevenLabs() as fake, httpx.AsyncClient(timeout=60) as http:
        client = ElevenLabsClient(http, fake.base_url)
        fake.clone_fault = "drop"
        with pytest.raises(Unavailable):
            await client.clone(
                KEY, "Lilith", "lost on the way", [Sample("a.mp3", encode_tone(0.5))]
            )
        fake.clone_fault = None
        (made,) = fake.cloned_voices()
        assert await client.cloned_voices(KEY) == [ClonedVoice(made.voice_id, "lost on the way")]


async def test_the_v2_voice_search_pages_the_accounts_clones_as_the_vendor_does() -> None:
    good = Sample("a.mp3", encode_tone(0.5))
    headers = {"xi-api-key": DEFAULT_ELEVENLABS_KEY}
    async with FakeElevenLabs() as fake, httpx.AsyncClient(timeout=60) as http:
        client = ElevenLabsClient(http, fake.base_url)
        made = [await client.clone(KEY, f"Voice {n}", f"number {n}", [good]) for n in range(3)]
        raw = await http.post(
            f"{fake.base_url}/v1/voices/add",
            headers=headers,
            data={"name": "Labelled", "labels": json.dumps({"accent": "British"})},
            files=[("files", ("a.mp3", good.data, "audio/mpeg"))],
        )
        labelled = raw.json()["voice_id"]
        url = f"{fake.base_url}/v2/voices"
        query = {"voice_type": "personal", "category": "cloned", "page_size": "3"}
        first = (await http.get(url, headers=headers, params=query)).json()
        assert (first["has_more"], first["total_count"], len(first["voices"])) == (True, 4, 3)
        second = (
            await http.get(
                url, headers=headers, params={**query, "next_page_token": first["next_page_token"]}
            )
        ).json()
        assert (second["has_more"], second["next_page_token"]) == (False, None)
        listed = first["voices"] + second["voices"]
        assert {v["voice_id"] for v in listed} == {*made, labelled}
        for voice in listed:  # VoiceResponseModel's required fields
            assert {
                "voice_id", "name", "category", "labels",
                "available_for_tiers", "high_quality_base_model_ids",
            } <= voice.keys()  # fmt: skip
            assert voice["category"] == "cloned"
        by_id = {v["voice_id"]: v for v in listed}
        assert by_id[labelled]["labels"] == {"accent": "British"}
        assert by_id[made[1]]["description"] == "number 1"
        default = (await http.get(url, headers=headers, params={"voice_type": "default"})).json()
        assert {v["voice_id"] for v in default["voices"]} == {
            "21m00Tcm4TlvDq8ikWAM",
            "EXAVITQu4vr4xnSDxMaL",
        }
        found = (await http.get(url, headers=headers, params={"search": "NUMBER 2"})).json()
        assert [v["voice_id"] for v in found["voices"]] == [made[2]]
        assert await client.delete_voice(KEY, made[0])
        assert {v.voice_id for v in await client.cloned_voices(KEY)} == {
            made[1],
            made[2],
            labelled,
        }
    assert fake.search_calls()[-1].query == {
        "voice_type": "personal",
        "category": "cloned",
        "page_size": "100",
        "include_total_count": "false",
    }


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ({"page_size": "101"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "many"}, "query"),
        ({"next_page_token": "not-issued"}, "query"),
        ({"voice_type": "mine"}, "voice_type"),
        ({"category": "stolen"}, "category"),
        ({"sort": "age"}, "sort"),
    ],
)
async def test_the_v2_voice_search_refuses_what_the_vendor_refuses(
    query: dict[str, str], where: str
) -> None:
    async with FakeElevenLabs() as fake, httpx.AsyncClient() as http:
        url = f"{fake.base_url}/v2/voices"
        refused = await http.get(url, headers={"xi-api-key": DEFAULT_ELEVENLABS_KEY}, params=query)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"][-1] == where
        denied = await http.get(url)
        assert denied.status_code == 401
        assert denied.json()["detail"]["status"] == "invalid_api_key"
        with pytest.raises(FailedPrecondition) as bad_key:
            await ElevenLabsClient(http, fake.base_url).cloned_voices(SecretStr("sk_wrong_123"))
        assert bad_key.value.reason == "INVALID_API_KEY"
        assert "sk_wrong" not in str(bad_key.value)


@pytest.mark.parametrize("labels", ["not json", '["accent"]', '{"age": 40}'])
async def test_clone_labels_must_be_a_serialized_object_of_strings(labels: str) -> None:
    async with FakeElevenLabs() as fake, httpx.AsyncClient(timeout=60) as http:
        refused = await http.post(
            f"{fake.base_url}/v1/voices/add",
            headers={"xi-api-key": DEFAULT_ELEVENLABS_KEY},
            data={"name": "Lilith", "labels": labels},
            files=[("files", ("a.mp3", encode_tone(0.5), "audio/mpeg"))],
        )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "labels"]
    assert fake.cloned_voices() == []


async def test_deleting_a_clone_frees_its_slot_and_is_refused_as_the_vendor_refuses() -> None:
    good = Sample("a.mp3", encode_tone(0.5))
    async with FakeElevenLabs() as fake, httpx.AsyncClient(timeout=60) as http:
        client = ElevenLabsClient(http, fake.base_url)
        fake.voice_limit = 1
        first = await client.clone(KEY, "Lilith", "", [good])
        with pytest.raises(FailedPrecondition) as full:
            await client.clone(KEY, "Lilith", "", [good])
        assert full.value.reason == "VOICE_LIMIT_REACHED"
        with pytest.raises(FailedPrecondition) as bad_key:
            await client.delete_voice(SecretStr("sk_wrong_123"), first)
        assert bad_key.value.reason == "INVALID_API_KEY"
        assert first in fake.voices  # a bad key deletes nothing
        assert await client.delete_voice(KEY, first) is True
        assert first not in fake.voices
        second = await client.clone(KEY, "Lilith", "", [good])  # the slot is free again
        # Gone already, never there, or one of the default voices: the vendor's 404.
        assert await client.delete_voice(KEY, first) is False
        assert await client.delete_voice(KEY, "no-such-voice") is False
        assert await client.delete_voice(KEY, "21m00Tcm4TlvDq8ikWAM") is False
        assert "21m00Tcm4TlvDq8ikWAM" in fake.voices
        raw = await http.delete(
            f"{fake.base_url}/v1/voices/{second}", headers={"xi-api-key": DEFAULT_ELEVENLABS_KEY}
        )
        assert (raw.status_code, raw.json()) == (200, {"status": "ok"})
        raw = await http.delete(
            f"{fake.base_url}/v1/voices/{second}", headers={"xi-api-key": DEFAULT_ELEVENLABS_KEY}
        )
        assert raw.status_code == 404
        assert raw.json()["detail"]["status"] == "voice_not_found"
        denied = await http.delete(f"{fake.base_url}/v1/voices/{second}")
        assert denied.status_code == 401
    assert [c.key_valid for c in fake.delete_calls()] == [False] + [True] * 6 + [False]
    assert fake.cloned_voices() == []


def missing(permission: str) -> dict[str, object]:
    """ElevenLabs' body for a restricted key lacking `permission` (its 401), its request id
    aside (`without_request_id`)."""
    return {
        "detail": {
            "code": "missing_permissions",
            "status": "missing_permissions",
            "message": f"The API key you used is missing the permission {permission} to "
            "execute this operation.",
        }
    }


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    """An error body without its request id (a fresh one per refusal, as ElevenLabs')."""
    request_id = body["detail"].pop("request_id")
    assert isinstance(request_id, str)
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    return body


async def test_a_restricted_key_is_refused_what_its_permissions_do_not_allow() -> None:
    """As ElevenLabs answers a key made with "Restrict key": each endpoint needs its
    permission (text-to-speech `text_to_speech`, listing voices `voices_read`, cloning and
    deleting `voices_write`), refused with a 401 `missing_permissions` naming it; an invalid
    key is still `invalid_api_key` (checked first); nothing is done for a refused call."""
    speaker, reader = "sk_elevenlabs_tts_only", "sk_elevenlabs_read_only"
    sample = ("files", ("a.mp3", encode_tone(0.5), "audio/mpeg"))
    async with FakeElevenLabs() as fake, httpx.AsyncClient(timeout=60) as http:
        fake.add_key(speaker, permissions=["text_to_speech"])
        fake.add_key(reader, permissions={"voices_read"})
        base = fake.base_url

        def key(value: str) -> dict[str, str]:
            return {"xi-api-key": value}

        spoken = await http.post(
            f"{base}/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream",
            headers=key(speaker),
            json={"text": "hello"},
        )
        assert spoken.status_code == 200
        assert probe(spoken.content).container == "mp3"
        refused = {
            "GET /v1/voices": await http.get(f"{base}/v1/voices", headers=key(speaker)),
            "GET /v2/voices": await http.get(f"{base}/v2/voices", headers=key(speaker)),
            "TTS": await http.post(
                f"{base}/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream",
                headers=key(reader),
                json={"text": "hello"},
            ),
            "clone": await http.post(
                f"{base}/v1/voices/add",
                headers=key(reader),
                data={"name": "Lilith"},
                files=[sample],
            ),
        }
        made = await http.post(
            f"{base}/v1/voices/add",
            headers=key(DEFAULT_ELEVENLABS_KEY),
            data={"name": "Lilith"},
            files=[sample],
        )
        voice_id = made.json()["voice_id"]
        refused["delete"] = await http.delete(f"{base}/v1/voices/{voice_id}", headers=key(reader))
        listed = await http.get(f"{base}/v1/voices", headers=key(reader))
        invalid = await http.get(f"{base}/v1/voices", headers=key("sk_wrong_123"))
        with pytest.raises(ValueError, match="no permission voices_delete"):
            fake.add_key("sk_other", permissions=["voices_read", "voices_delete"])
    assert {what: (r.status_code, without_request_id(r.json())) for what, r in refused.items()} == {
        "GET /v1/voices": (401, missing("voices_read")),
        "GET /v2/voices": (401, missing("voices_read")),
        "TTS": (401, missing("text_to_speech")),
        "clone": (401, missing("voices_write")),
        "delete": (401, missing("voices_write")),
    }
    assert listed.status_code == 200
    assert (invalid.status_code, invalid.json()["detail"]["status"]) == (401, "invalid_api_key")
    assert [v.voice_id for v in fake.cloned_voices()] == [voice_id]  # one made, none deleted
    assert fake.characters_used == 5  # the refused speech billed nothing
    assert [(c.key_valid, c.missing_permission) for c in fake.calls] == [
        (True, ""),
        (True, "voices_read"),
        (True, "voices_read"),
        (True, "text_to_speech"),
        (True, "voices_write"),
        (True, ""),
        (True, "voices_write"),
        (True, ""),
        (False, ""),
    ]
    assert "sk_elevenlabs_tts_only" not in repr(fake.calls)  # never the key itself
    assert "sk_other" not in fake.valid_keys


async def test_inferences_client_reads_a_missing_permission_as_such_not_as_a_bad_key() -> None:
    scoped = SecretStr("sk_elevenlabs_read_only")
    async with FakeElevenLabs() as fake, httpx.AsyncClient(timeout=60) as http:
        fake.add_key(scoped.get_secret_value(), permissions=["voices_read"])
        client = ElevenLabsClient(http, fake.base_url)
        assert await client.count_voices(scoped) == 2  # the key works
        with pytest.raises(FailedPrecondition) as cloned:
            await client.clone(scoped, "x", "", [Sample("a.mp3", encode_tone(0.5))])
        with pytest.raises(FailedPrecondition) as spoken:
            _ = [c async for c in client.synthesize(scoped, RACHEL, "hi")]
    assert cloned.value.reason == spoken.value.reason == "KEY_MISSING_PERMISSION"
    assert "lacks the `voices_write` permission" in cloned.value.message
    assert "lacks the `text_to_speech` permission" in spoken.value.message
    assert "sk_elevenlabs" not in str(cloned.value) + str(spoken.value)


async def test_openai_speech_answers_real_audio_in_the_asked_format() -> None:
    async with FakeProvider() as fake, httpx.AsyncClient() as http:
        client = OpenAISpeechClient(http, max_retries=0)
        provider = Provider("openai", fake.base_url)
        events = [
            c
            async for c in client.synthesize(
                provider, SecretStr(DEFAULT_KEY), VoiceSpec("openai", "alloy"), "hello world"
            )
        ]
        assert events[0] == Accepted("tts-1")  # the default model, named as billed
        audio = b"".join(e for e in events if isinstance(e, bytes))
        assert probe(audio).container == "mp3"
        assert fake.speech_requests()[0].body == {
            "model": "tts-1",
            "voice": "alloy",
            "input": "hello world",
            "response_format": "mp3",
        }
        async with openai.AsyncOpenAI(
            base_url=fake.base_url, api_key=DEFAULT_KEY, max_retries=0
        ) as api:
            wav = await api.audio.speech.create(
                model="tts-1", voice="nova", input="hi", response_format="wav"
            )
        assert probe(wav.content).container == "wav"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"voice": "alloy", "input": "hi"}, "model"),
        ({"model": "tts-1", "voice": "alloy", "input": "x" * 4097}, "4096"),
        ({"model": "tts-1", "voice": "darth", "input": "hi"}, "darth"),
        ({"model": "tts-1", "voice": "alloy", "input": "hi", "response_format": "midi"}, "midi"),
        ({"model": "tts-1", "voice": "alloy", "input": "hi", "speed": 9}, "speed"),
    ],
)
async def test_openai_speech_refusals(body: dict[str, object], message: str) -> None:
    async with FakeProvider() as fake, httpx.AsyncClient() as http:
        answer = await http.post(
            f"{fake.base_url}/audio/speech",
            json=body,
            headers={"Authorization": f"Bearer {DEFAULT_KEY}"},
        )
        assert answer.status_code == 400
        assert message in answer.json()["error"]["message"]
        denied = await http.post(
            f"{fake.base_url}/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": "hi"},
            headers={"Authorization": "Bearer sk-wrong"},
        )
        assert denied.status_code == 401
