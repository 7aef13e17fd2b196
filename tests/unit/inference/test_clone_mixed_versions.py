"""A clone during a rollout (or a rollback) deletes no voice in use, whichever of gateway and
inference is older.

An inference from before CloneVoiceHeader.keep_voice_ids reads `personality_id` and
`keep_voice_id` alone: given a personality id it deletes every clone marked for it but that one
voice. Gateway (2a4f53b) sent `personality_id` with every clone and `keep_voice_id` only when
one voice was kept, so such an inference deleted the personality's voice and a clone reused by
hand for another. Gateway now sends the personality in `mark_personality_id` only (it sweeps the
lost clones itself): an older inference sees no personality and deletes nothing, a newer one
marks the clone with it and deletes nothing either.

Gateway's real client (GrpcInference) talks over gRPC to inference's real servicer, or to one
that reads the header as the older inference did; ElevenLabs is the fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
import httpx2 as httpx
from pydantic import SecretStr

from tzurot.audio import encode_tone
from tzurot.gateway.clients import GrpcInference
from tzurot.inference.clone_marks import read_mark
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.server import InferenceServicer
from tzurot.inference.speech import ElevenLabsClient, OpenAISpeechClient, Sample
from tzurot.inference.voice import VoiceService
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY, FakeElevenLabs
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

WREN = "0b6c5f0e-2a49-4d5c-9a8e-1f2e3d4c5b6a"
TONE = encode_tone(1.0)


class Vault:
    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        return SecretStr(DEFAULT_ELEVENLABS_KEY)


class OlderInference(InferenceServicer):
    """CloneVoice as an inference from before keep_voice_ids read its header (0c911d2)."""

    async def CloneVoice(
        self, request_iterator: AsyncIterator[inf.CloneVoiceRequest], context: object
    ) -> inf.CloneVoiceResponse:
        header = inf.CloneVoiceHeader()
        samples = []
        async for part in request_iterator:
            if part.WhichOneof("part") == "header":
                header = part.header
            else:
                samples.append(Sample(part.sample.filename, part.sample.data))
        voice_id = await self._voices().clone(
            header.user_id, header.name, header.description, samples,
            personality_id=header.personality_id, keep_voice_id=header.keep_voice_id,
        )  # fmt: skip
        return inf.CloneVoiceResponse(voice_id=voice_id)


@dataclass
class Mesh:
    eleven: FakeElevenLabs
    voice: VoiceService
    gateway: GrpcInference


@asynccontextmanager
async def mesh(servicer: type[InferenceServicer]) -> AsyncIterator[Mesh]:
    async with FakeElevenLabs() as eleven, httpx.AsyncClient(timeout=30) as http:
        voice = VoiceService(
            providers=ProviderRegistry({}),
            keys=KeyResolver(Vault()),
            elevenlabs=ElevenLabsClient(http, eleven.base_url),
            speech=OpenAISpeechClient(http, max_retries=0),
        )
        server = grpc.aio.server()
        inf_grpc.add_InferenceServiceServicer_to_server(servicer(None, voice), server)  # type: ignore[arg-type]  # no answers asked for here
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield Mesh(eleven, voice, GrpcInference(channel, generate_timeout=30))
        finally:
            await server.stop(None)


async def marked_for_wren(m: Mesh) -> dict[str, str]:
    """Three clones marked for Wren, as earlier clones left them: Wren's voice now, one reused
    by hand as Heron's voice, one whose answer was lost."""
    made: dict[str, str] = {}
    for name in ("current", "reused_on_heron", "lost"):
        made[name] = await m.voice.clone(
            "u1", "Wren", "", [Sample("a.mp3", TONE)], personality_id=WREN,
            keep_voice_ids=tuple(made.values()),
        )  # fmt: skip
    return made


async def test_an_older_inference_deletes_no_voice_for_the_gateway_now() -> None:
    async with mesh(OlderInference) as m:
        before = await marked_for_wren(m)
        new = await m.gateway.clone_voice(
            "u1", "Wren", "Tzurot personality wren", [("a.mp3", TONE)], personality_id=WREN
        )
    assert m.eleven.delete_calls() == []  # before: current, reused_on_heron and lost
    assert {v.voice_id for v in m.eleven.cloned_voices()} == {*before.values(), new}


async def test_inference_now_marks_the_clone_for_the_personality_and_deletes_nothing() -> None:
    async with mesh(InferenceServicer) as m:
        before = await marked_for_wren(m)
        new = await m.gateway.clone_voice(
            "u1", "Wren", "Tzurot personality wren", [("a.mp3", TONE)], personality_id=WREN
        )
        assert sorted(await m.gateway.marked_clones("u1", WREN)) == sorted([*before.values(), new])
    assert m.eleven.delete_calls() == []  # gateway sweeps the lost one, under its locks
    mark = read_mark(m.eleven.voices[new].description)
    assert mark is not None
    assert mark.personality_id == WREN


async def test_a_gateway_of_the_keep_list_release_is_still_honoured() -> None:
    """2a4f53b's gateway: personality_id with every voice in use in keep_voice_ids."""
    async with mesh(InferenceServicer) as m:
        before = await marked_for_wren(m)
        header = inf.CloneVoiceHeader(
            user_id="u1", name="Wren", personality_id=WREN,
            keep_voice_ids=[before["current"], before["reused_on_heron"]],
        )  # fmt: skip
        stub = m.gateway._stub
        reply = await stub.CloneVoice(
            iter(
                [
                    inf.CloneVoiceRequest(header=header),
                    inf.CloneVoiceRequest(sample=inf.CloneVoiceSample(filename="a", data=TONE)),
                ]
            )
        )
    assert [c.path for c in m.eleven.delete_calls()] == [f"/v1/voices/{before['lost']}"]
    assert {v.voice_id for v in m.eleven.cloned_voices()} == {
        before["current"], before["reused_on_heron"], reply.voice_id,
    }  # fmt: skip
