"""ListProvidersResponse.keyless_providers over real mTLS gRPC: the providers that take no
key, as this inference's registry says them (the built-in local servers and the operator's
`TZUROT_PROVIDERS` declarations). Before the field the gateway could not know an operator's
local chat server was keyless, and counted a user without a key talking to it as a guest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tzurot.inference.app import start_inference
from tzurot.inference.config import InferenceSettings
from tzurot.testing.channels import channels_to
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

from .conftest import Backends

pytestmark = pytest.mark.contract

SERVER = "http://10.0.0.7:8080/v1"
"""A local server of the operator's; never called here."""
DECLARED = {
    "groq": SERVER,  # a base URL alone: the user's key pays, as before
    "my-llm": {"base_url": SERVER, "keyless": True},  # the operator's local chat server
    "kokoro": {"base_url": SERVER, "speech": True, "keyless": False},  # behind a keyed proxy
}

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    Stub = inf_grpc.InferenceServiceAsyncStub


async def listed(pki: Path, backends: Backends, **fields: Any) -> inf.ListProvidersResponse:
    """Inference's ListProviders, as the gateway asks it, with `fields` as its settings."""
    app = await start_inference(
        InferenceSettings.model_validate(
            {
                "listen": "127.0.0.1:0",
                "tls_dir": pki / "inference",
                "memory_addr": f"127.0.0.1:{backends.memory_port}",
                "keyvault_addr": f"127.0.0.1:{backends.vault_port}",
                "providers": DECLARED,
                "grace_seconds": 0.5,
                **fields,
            }
        )
    )
    try:
        async with channels_to("inference", pki) as open_channel:
            stub: Stub = inf_grpc.InferenceServiceStub(open_channel(app.port, "gateway"))
            reply: inf.ListProvidersResponse = await stub.ListProviders(inf.ListProvidersRequest())
            return reply
    finally:
        await app.stop()


@pytest.fixture
async def quiet_backends(backends: Backends) -> AsyncIterator[Backends]:
    yield backends
    assert backends.vault.calls == []  # listing asks keyvault nothing


async def test_the_keyless_providers_are_the_local_servers_and_those_declared_so(
    pki: Path, quiet_backends: Backends
) -> None:
    reply = await listed(pki, quiet_backends)
    assert reply.keyless_providers_listed
    assert list(reply.keyless_providers) == [
        "lmstudio", "my-llm", "ollama", "openedai-speech", "vllm",
    ]  # fmt: skip
    assert {"groq", "my-llm", "kokoro"} <= set(reply.providers)  # kokoro listed, keyed


async def test_in_a_pod_only_the_local_servers_given_an_address_are_keyless(
    pki: Path, quiet_backends: Backends
) -> None:
    """`TZUROT_LOOPBACK_PROVIDERS=false`: a local server left at inference's loopback is not
    listed, so it is not said keyless either."""
    reply = await listed(pki, quiet_backends, loopback_providers=False)
    assert reply.keyless_providers_listed
    assert list(reply.keyless_providers) == ["my-llm"]
    assert set(reply.keyless_providers) <= set(reply.providers)
