"""The fake ElevenLabs keeps each key's account apart, as ElevenLabs does: an Instant Voice
Clone belongs to the account that made it, so another account neither lists, speaks with nor
deletes it (404 `voice_not_found`, as for a voice that does not exist), and each account has
its own voice slots. The default voices are every account's. Also: the models it takes are
the ones ElevenLabs documents, with their character limits."""

from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest

from tzurot.audio import encode_tone
from tzurot.testing.fake_elevenlabs import MODEL_TEXT_LIMITS, FakeElevenLabs

ALICE, BOB, ALICE_2 = "sk_alice_key", "sk_bob_key", "sk_alice_second_key"
SARAH = "EXAVITQu4vr4xnSDxMaL"


@pytest.fixture
async def fake() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(valid_keys=(ALICE, BOB)) as eleven:
        yield eleven


@pytest.fixture
async def http(fake: FakeElevenLabs) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        yield client


async def clone(http: httpx.AsyncClient, key: str, name: str = "Nova") -> httpx.Response:
    return await http.post(
        "/v1/voices/add",
        headers={"xi-api-key": key},
        data={"name": name},
        files=[("files", ("a.mp3", encode_tone(1.0), "audio/mpeg"))],
    )


async def speak(
    http: httpx.AsyncClient, key: str, voice_id: str, model: str = "eleven_multilingual_v2"
) -> httpx.Response:
    return await http.post(
        f"/v1/text-to-speech/{voice_id}/stream",
        headers={"xi-api-key": key},
        json={"text": "hello", "model_id": model},
    )


def voice_not_found(response: httpx.Response, voice_id: str) -> bool:
    detail = response.json()["detail"]
    return (
        response.status_code == 404
        and detail["code"] == detail["status"] == "voice_not_found"
        and detail["message"] == f"A voice with voice_id {voice_id} was not found."
        and bool(detail["request_id"])
    )


async def test_another_account_does_not_list_the_clone(
    fake: FakeElevenLabs, http: httpx.AsyncClient
) -> None:
    voice_id = (await clone(http, ALICE)).json()["voice_id"]
    query = {"voice_type": "personal", "category": "cloned"}
    bobs = await http.get("/v2/voices", headers={"xi-api-key": BOB}, params=query)
    alices = await http.get("/v2/voices", headers={"xi-api-key": ALICE}, params=query)
    bob_all = await http.get("/v1/voices", headers={"xi-api-key": BOB})
    assert bobs.json()["voices"] == []
    assert bobs.json()["total_count"] == 0
    assert [v["voice_id"] for v in alices.json()["voices"]] == [voice_id]
    assert voice_id not in {v["voice_id"] for v in bob_all.json()["voices"]}
    assert SARAH in {v["voice_id"] for v in bob_all.json()["voices"]}  # defaults: everyone's
    assert [v.voice_id for v in fake.cloned_voices(BOB)] == []
    assert [v.voice_id for v in fake.cloned_voices(ALICE)] == [voice_id]


async def test_another_account_cannot_speak_with_the_clone(
    fake: FakeElevenLabs, http: httpx.AsyncClient
) -> None:
    voice_id = (await clone(http, ALICE)).json()["voice_id"]
    refused = await speak(http, BOB, voice_id)
    assert voice_not_found(refused, voice_id)
    assert fake.characters_used == 0  # refused before anything is billed
    assert (await speak(http, ALICE, voice_id)).status_code == 200
    assert (await speak(http, BOB, SARAH)).status_code == 200  # a default voice: anyone's


async def test_another_account_cannot_delete_the_clone(
    fake: FakeElevenLabs, http: httpx.AsyncClient
) -> None:
    voice_id = (await clone(http, ALICE)).json()["voice_id"]
    refused = await http.delete(f"/v1/voices/{voice_id}", headers={"xi-api-key": BOB})
    assert voice_not_found(refused, voice_id)
    assert voice_id in fake.voices
    deleted = await http.delete(f"/v1/voices/{voice_id}", headers={"xi-api-key": ALICE})
    assert deleted.json() == {"status": "ok"}
    assert voice_id not in fake.voices


async def test_voice_slots_are_each_accounts_own(
    fake: FakeElevenLabs, http: httpx.AsyncClient
) -> None:
    fake.voice_limit = 1
    assert (await clone(http, ALICE)).status_code == 200
    assert (await clone(http, BOB)).status_code == 200  # Alice's full account is not Bob's
    full = await clone(http, ALICE, "Second")
    assert full.status_code == 400
    assert full.json()["detail"]["code"] == "voice_limit_reached"
    assert len(fake.cloned_voices(ALICE)) == len(fake.cloned_voices(BOB)) == 1


async def test_keys_of_one_account_share_its_voices_and_slots(
    fake: FakeElevenLabs, http: httpx.AsyncClient
) -> None:
    fake.add_key(ALICE, account="alice")
    fake.add_key(ALICE_2, account="alice")
    fake.voice_limit = 1
    voice_id = (await clone(http, ALICE)).json()["voice_id"]
    assert (await speak(http, ALICE_2, voice_id)).status_code == 200
    assert (await clone(http, ALICE_2)).json()["detail"]["code"] == "voice_limit_reached"


@pytest.mark.parametrize(
    ("model", "limit"),
    [
        ("eleven_v3", 5_000),
        ("eleven_multilingual_v2", 10_000),
        ("eleven_flash_v2_5", 40_000),
        ("eleven_turbo_v2_5", 40_000),
        ("eleven_flash_v2", 30_000),
        ("eleven_turbo_v2", 30_000),
    ],
)
async def test_the_documented_models_speak_up_to_their_limit(
    http: httpx.AsyncClient, model: str, limit: int
) -> None:
    assert MODEL_TEXT_LIMITS[model] == limit
    assert (await speak(http, ALICE, SARAH, model)).status_code == 200
    over = await http.post(
        f"/v1/text-to-speech/{SARAH}/stream",
        headers={"xi-api-key": ALICE},
        json={"text": "a" * (limit + 1), "model_id": model},
    )
    assert over.status_code == 400
    assert over.json()["detail"]["code"] == "max_character_limit_exceeded"


async def test_a_model_elevenlabs_does_not_document_is_not_found(
    http: httpx.AsyncClient,
) -> None:
    assert set(MODEL_TEXT_LIMITS) == {
        "eleven_v3",
        "eleven_multilingual_v2",
        "eleven_flash_v2_5",
        "eleven_turbo_v2_5",
        "eleven_flash_v2",
        "eleven_turbo_v2",
    }
    refused = await speak(http, ALICE, SARAH, "eleven_imaginary_v9")
    assert refused.status_code == 400
    assert refused.json()["detail"]["code"] == "model_not_found"
