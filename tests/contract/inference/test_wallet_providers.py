"""The wallet's side of inference over real mTLS gRPC: ListProviders (the providers a user may
hold a key for, as this inference is configured) and ValidateKey for Brave Search, against
the fake Brave (no free check: a new key is sent nowhere, a stored one spends one search)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from tzurot.inference.app import InferenceApp, start_inference
from tzurot.inference.config import InferenceSettings
from tzurot.inference.providers import DEFAULT_PROVIDERS
from tzurot.runtime.errors import from_rpc_error
from tzurot.testing.channels import channels_to
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_web import FakeBrave
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

from .conftest import Backends

pytestmark = pytest.mark.contract

BRAVE_KEY = "BSAplantedBraveKey0q7f3e9c1"
REFUSED_KEY = "BSArefusedBraveKey5Hj2Qw9Zx"
USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
REFUSED_USER = "7d2c1b0a-1111-4222-8333-944455556666"

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    Stub = inf_grpc.InferenceServiceAsyncStub

Start = Callable[..., Awaitable[InferenceApp]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys=set()) as provider:
        yield provider


@pytest.fixture
async def brave() -> AsyncIterator[FakeBrave]:
    async with FakeBrave({BRAVE_KEY}) as server:
        yield server


@pytest.fixture
async def start(
    pki: Path, backends: Backends, fake: FakeProvider, brave: FakeBrave
) -> AsyncIterator[Start]:
    """Inference with the operator's provider "groq" (TZUROT_PROVIDERS) and Brave at the fake."""
    apps: list[InferenceApp] = []

    async def run(**overrides: object) -> InferenceApp:
        fields: dict[str, object] = {
            "listen": "127.0.0.1:0",
            "tls_dir": pki / "inference",
            "memory_addr": f"127.0.0.1:{backends.memory_port}",
            "keyvault_addr": f"127.0.0.1:{backends.vault_port}",
            "providers": {"groq": fake.base_url},
            "brave_url": brave.base_url,
            "grace_seconds": 0.5,
            **overrides,
        }
        app = await start_inference(InferenceSettings.model_validate(fields))
        apps.append(app)
        return app

    try:
        yield run
    finally:
        for app in apps:
            await app.stop()


@pytest.fixture
async def connect(pki: Path) -> AsyncIterator[Callable[[InferenceApp, str], Stub]]:
    async with channels_to("inference", pki) as open_channel:
        yield lambda app, identity: inf_grpc.InferenceServiceStub(open_channel(app.port, identity))


@pytest.mark.parametrize(
    ("backend", "with_brave"), [("brave", True), ("", False), ("searxng", False)]
)
async def test_the_providers_are_the_registrys_with_voice_and_the_search_engine(
    start: Start,
    connect: Callable[[InferenceApp, str], Stub],
    backend: str,
    with_brave: bool,
) -> None:
    extra = {"searxng_url": "http://127.0.0.1:9/"} if backend == "searxng" else {}
    app = await start(search_backend=backend, **extra)
    listed = await connect(app, "gateway").ListProviders(inf.ListProvidersRequest())
    expected = {*DEFAULT_PROVIDERS, "groq", "elevenlabs"} | ({"brave"} if with_brave else set())
    assert list(listed.providers) == sorted(expected)


async def test_the_speech_providers_are_the_built_in_ones_and_those_the_operator_declared(
    start: Start, connect: Callable[[InferenceApp, str], Stub], fake: FakeProvider
) -> None:
    """ListProvidersResponse.speech_providers: what a voice may name. `groq` (a base URL, as
    before) is listed for the wallet but does not speak; `my-tts` is declared a speech server."""
    speech_server = {"base_url": fake.base_url, "speech": True, "keyless": True}
    app = await start(providers={"groq": fake.base_url, "my-tts": speech_server})
    listed = await connect(app, "gateway").ListProviders(inf.ListProvidersRequest())
    assert {"groq", "my-tts"} <= set(listed.providers)
    assert list(listed.speech_providers) == [
        "elevenlabs", "kokoro", "my-tts", "openai", "openedai-speech",
    ]  # fmt: skip
    assert listed.speech_providers_listed


@pytest.mark.parametrize("identity", ["bot", "cli", "memory", "keyvault", "inference"])
async def test_only_gateway_may_list_the_providers(
    start: Start, connect: Callable[[InferenceApp, str], Stub], identity: str
) -> None:
    app = await start()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await connect(app, identity).ListProviders(inf.ListProvidersRequest())
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_new_brave_key_is_stored_unchecked_and_a_stored_one_spends_a_search(
    start: Start,
    connect: Callable[[InferenceApp, str], Stub],
    backends: Backends,
    brave: FakeBrave,
) -> None:
    backends.vault.keys[USER, "brave"] = BRAVE_KEY
    backends.vault.keys[REFUSED_USER, "brave"] = REFUSED_KEY
    app = await start(search_backend="brave")
    stub = connect(app, "gateway")

    for key in (BRAVE_KEY, REFUSED_KEY):  # neither is tried: Brave has no free check
        new = await stub.ValidateKey(inf.ValidateKeyRequest(provider="brave", api_key=key))
        assert (new.unchecked, new.billed_requests) == (True, 0)
    assert brave.requests == []

    stored = await stub.ValidateKey(inf.ValidateKeyRequest(provider="brave", user_id=USER))
    assert (stored.unchecked, stored.billed_requests) == (False, 1)
    [request] = brave.requests
    assert "count=1" in request
    assert brave.billed == 1

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ValidateKey(inf.ValidateKeyRequest(provider="brave", user_id=REFUSED_USER))
    err = from_rpc_error(caught.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INVALID_API_KEY")
    assert err.metadata.get("provider") == "brave"
    said = f"{caught.value.details()} {caught.value.trailing_metadata()!r}"
    assert REFUSED_KEY[:10] not in said
    assert "subscription token is invalid" not in said.lower()  # Brave's text, never quoted
