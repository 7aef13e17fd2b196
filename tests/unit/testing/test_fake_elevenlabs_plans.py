"""The fake ElevenLabs refuses a free plan's account what ElevenLabs keeps for paid plans:
Instant Voice Cloning answers 402 `paid_plan_required` (type and legacy status
`payment_required`), nothing made; the same account still speaks and lists voices. A key
restricted without the endpoint's permission is refused 401 `missing_permissions`, as the
vendor answers it (not 403). Inference reads the paid-plan refusal as a clear
PROVIDER_PAID_PLAN_REQUIRED, also in the older code ElevenLabs sent for cloning."""

import json
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.audio import encode_tone
from tzurot.inference.speech import PAID_PLAN_REQUIRED, ElevenLabsClient, Sample
from tzurot.runtime.errors import FailedPrecondition
from tzurot.testing.fake_elevenlabs import FakeElevenLabs

FREE, PAID = "sk_free_key", "sk_paid_key"
SARAH = "EXAVITQu4vr4xnSDxMaL"


@pytest.fixture
async def fake() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(valid_keys=()) as eleven:
        eleven.add_key(FREE, plan="free")
        eleven.add_key(PAID)
        yield eleven


@pytest.fixture
async def http(fake: FakeElevenLabs) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        yield client


async def clone(http: httpx.AsyncClient, key: str) -> httpx.Response:
    return await http.post(
        "/v1/voices/add",
        headers={"xi-api-key": key},
        data={"name": "Nova"},
        files=[("files", ("a.mp3", encode_tone(1.0), "audio/mpeg"))],
    )


async def test_a_free_account_is_refused_instant_voice_cloning_as_elevenlabs_refuses_it(
    fake: FakeElevenLabs, http: httpx.AsyncClient
) -> None:
    refused = await clone(http, FREE)
    assert refused.status_code == 402
    detail = refused.json()["detail"]
    assert detail["type"] == detail["status"] == "payment_required"
    assert detail["code"] == "paid_plan_required"
    assert "upgrade your subscription" in detail["message"]
    assert detail["request_id"]
    assert fake.cloned_voices(FREE) == []  # nothing made, no slot taken
    # The account works for the rest: it speaks, and lists its voices.
    spoken = await http.post(
        f"/v1/text-to-speech/{SARAH}/stream",
        headers={"xi-api-key": FREE},
        json={"text": "hello", "model_id": "eleven_multilingual_v2"},
    )
    assert spoken.status_code == 200
    assert (await http.get("/v1/voices", headers={"xi-api-key": FREE})).status_code == 200
    # A paid account clones.
    made = await clone(http, PAID)
    assert made.status_code == 200
    assert [v.voice_id for v in fake.cloned_voices(PAID)] == [made.json()["voice_id"]]


async def test_an_invalid_key_is_refused_before_its_plan_and_a_plan_must_exist(
    fake: FakeElevenLabs, http: httpx.AsyncClient
) -> None:
    assert (await clone(http, "sk_unknown")).json()["detail"]["code"] == "invalid_api_key"
    with pytest.raises(ValueError, match="no plan"):
        fake.add_key("sk_other", plan="creator-pro-max")


async def test_a_key_lacking_the_permission_is_401_missing_permissions_not_403(
    fake: FakeElevenLabs, http: httpx.AsyncClient
) -> None:
    fake.add_key("sk_tts_only", permissions=["text_to_speech"])
    refused = await clone(http, "sk_tts_only")
    assert refused.status_code == 401
    assert refused.json()["detail"]["code"] == "missing_permissions"
    assert "missing the permission voices_write" in refused.json()["detail"]["message"]


async def test_inference_tells_a_free_account_it_needs_a_paid_plan(fake: FakeElevenLabs) -> None:
    async with httpx.AsyncClient() as http:
        client = ElevenLabsClient(http, fake.base_url)
        with pytest.raises(FailedPrecondition) as refused:
            await client.clone(SecretStr(FREE), "Nova", "", [Sample("a.mp3", encode_tone(1.0))])
    assert refused.value.reason == PAID_PLAN_REQUIRED
    assert "needs a paid plan" in refused.value.message
    assert "/wallet set elevenlabs" in refused.value.message
    assert FREE not in refused.value.message


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"status": "can_not_use_instant_voice_cloning", "message": "please upgrade."}),
        (402, {"code": "paid_plan_required", "status": "payment_required"}),
        (402, {"message": "no code"}),
    ],
)
async def test_every_form_of_the_paid_plan_refusal_reads_alike(
    status: int, body: dict[str, str]
) -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps({"detail": body}).encode())

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        with pytest.raises(FailedPrecondition) as refused:
            await ElevenLabsClient(http, "http://eleven").clone(
                SecretStr(PAID), "Nova", "", [Sample("a.mp3", b"ID3")]
            )
    assert refused.value.reason == PAID_PLAN_REQUIRED
