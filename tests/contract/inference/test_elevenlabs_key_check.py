"""ValidateKey for ElevenLabs over real mTLS gRPC, against the fake ElevenLabs.

ElevenLabs proves a key by its voice list, which a key restricted to text to speech may not
read: ElevenLabs authenticates it, then answers 401 `missing_permissions` naming `voices_read`.
That key works (it speaks), so the check answers it as restricted, naming what it lacks; a key
ElevenLabs does not know (401 `invalid_api_key`) is refused as INVALID_API_KEY. Both for a new
key (wallet set) and for the user's stored one (wallet test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from tzurot.inference.app import InferenceApp, start_inference
from tzurot.inference.config import InferenceSettings
from tzurot.runtime.errors import from_rpc_error
from tzurot.testing.channels import channels_to
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY, FakeElevenLabs
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

from .conftest import Backends

pytestmark = pytest.mark.contract

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    Stub = inf_grpc.InferenceServiceAsyncStub

TTS_ONLY = "sk_elevenlabs_plantedTTSonly5Hj2Qw9"
REVOKED = "sk_elevenlabs_plantedREVOKED3Zx4Cv7"
USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"


@pytest.fixture
async def eleven() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs() as fake:
        fake.add_key(TTS_ONLY, permissions=["text_to_speech"])
        yield fake


@pytest.fixture
async def stub(pki: Path, backends: Backends, eleven: FakeElevenLabs) -> AsyncIterator[Stub]:
    """Inference wired to the fake ElevenLabs, called as gateway."""
    settings = InferenceSettings.model_validate(
        {
            "listen": "127.0.0.1:0",
            "tls_dir": pki / "inference",
            "memory_addr": f"127.0.0.1:{backends.memory_port}",
            "keyvault_addr": f"127.0.0.1:{backends.vault_port}",
            "elevenlabs_url": eleven.base_url,
            "grace_seconds": 0.5,
        }
    )
    app: InferenceApp = await start_inference(settings)
    try:
        async with channels_to("inference", pki) as open_channel:
            yield inf_grpc.InferenceServiceStub(open_channel(app.port, "gateway"))
    finally:
        await app.stop()


def new_key(key: str) -> inf.ValidateKeyRequest:
    return inf.ValidateKeyRequest(provider="elevenlabs", api_key=key)


def stored_key() -> inf.ValidateKeyRequest:
    return inf.ValidateKeyRequest(provider="elevenlabs", user_id=USER)


async def test_a_key_restricted_to_text_to_speech_is_valid_and_limited(
    stub: Stub, backends: Backends, eleven: FakeElevenLabs
) -> None:
    backends.vault.keys[USER, "elevenlabs"] = TTS_ONLY
    for request in (new_key(TTS_ONLY), stored_key()):
        reply = await stub.ValidateKey(request)
        assert reply.HasField("restriction")
        assert list(reply.restriction.missing_permissions) == ["voices_read"]
        assert reply.model_count == 0  # it may not list voices
    assert [(c.path, c.key_valid, c.missing_permission) for c in eleven.calls] == [
        ("/v1/voices", True, "voices_read"),
        ("/v1/voices", True, "voices_read"),
    ]


async def test_an_unrestricted_key_has_no_restriction(stub: Stub) -> None:
    reply = await stub.ValidateKey(new_key(DEFAULT_ELEVENLABS_KEY))
    assert not reply.HasField("restriction")
    assert reply.model_count == 2  # the account's voices (the fake's two default ones)


async def test_a_key_elevenlabs_does_not_know_is_refused(
    stub: Stub, backends: Backends, eleven: FakeElevenLabs
) -> None:
    backends.vault.keys[USER, "elevenlabs"] = REVOKED
    refusals = []
    for request, whose in ((new_key(REVOKED), {}), (stored_key(), {"key_source": "user"})):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ValidateKey(request)
        err = from_rpc_error(caught.value)
        assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INVALID_API_KEY")
        assert err.metadata == {"provider": "elevenlabs", **whose}
        refusals.append(f"{caught.value.details()} {caught.value.trailing_metadata()!r}")
    assert [c.key_valid for c in eleven.calls] == [False, False]
    assert not any(REVOKED[-12:] in said for said in refusals)
