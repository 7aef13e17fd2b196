"""A voice id is one segment of ElevenLabs' URL path (review 158 M1): a personality owner's
"../../v1/sound-generation#" must not aim the listener's key at another endpoint."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.inference.speech import ElevenLabsClient, VoiceSpec


@pytest.mark.parametrize(
    ("voice_id", "segment"),
    [
        ("21m00Tcm4TlvDq8ikWAM", "21m00Tcm4TlvDq8ikWAM"),
        ("../../v1/sound-generation#", "..%2F..%2Fv1%2Fsound-generation%23"),
        (
            "../../v1/voices/abc/settings/edit?x=",
            "..%2F..%2Fv1%2Fvoices%2Fabc%2Fsettings%2Fedit%3Fx%3D",
        ),
        ("..", "%2E%2E"),
    ],
)
async def test_the_voice_id_stays_in_its_path_segment(voice_id: str, segment: str) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"detail": {"status": "voice_not_found"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = ElevenLabsClient(http, "https://api.elevenlabs.io")
        with pytest.raises(Exception):  # noqa: B017, PT011 - the 404's mapping is not the point
            async for _ in client.synthesize(
                SecretStr("listener-key"), VoiceSpec("elevenlabs", voice_id), "hello"
            ):
                pass
    assert seen
    assert seen[0].split("?")[0] == f"/v1/text-to-speech/{segment}/stream"
