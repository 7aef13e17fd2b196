"""ValidateKey checks a new key's shape for every provider, ElevenLabs' included, before any
HTTP call: a key with CR/LF or another control character would otherwise reach the HTTP
client, whose refusal of the header value is logged with the value whole at DEBUG."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, cast

import httpx2 as httpx
import pytest
import structlog

from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.server import InferenceServicer
from tzurot.inference.speech import ELEVENLABS, ElevenLabsClient
from tzurot.inference.voice import VoiceService
from tzurot.runtime.errors import InvalidArgument, TzurotError
from tzurot.runtime.logging import configure_logging
from tzurot.v1 import inference_pb2 as inf

LEAK = "LEAKME0123456789"
BAD_KEYS = [
    f"{LEAK}\nabcdef0123456789",
    f"{LEAK}\r\nabcdef0123456789",
    f"{LEAK}\x00abcdef0123456789",
    f"{LEAK} abcdef0123456789",
]


class _Refusing(BaseHTTPRequestHandler):
    """ElevenLabs refusing any key (never reached when the key is refused first)."""

    def do_GET(self) -> None:
        body = json.dumps({"detail": {"status": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def elevenlabs_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def debug_logs() -> Iterator[None]:
    """inference's logging pipeline at DEBUG (httpcore's traces included), then restored."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = sys.excepthook, threading.excepthook
    configure_logging("inference", level="DEBUG", fmt="json")
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        sys.excepthook, threading.excepthook = hooks
        structlog.reset_defaults()


@pytest.fixture
async def servicer(elevenlabs_url: str) -> AsyncIterator[InferenceServicer]:
    async with httpx.AsyncClient() as http:
        voice = VoiceService(
            providers=ProviderRegistry(),
            keys=cast(Any, None),  # a new key is checked as given: no stored key is read
            elevenlabs=ElevenLabsClient(http, elevenlabs_url),
            speech=cast(Any, None),
        )
        yield InferenceServicer(cast(Any, LlmNeverCalled()), voice)


class LlmNeverCalled:
    """The LLM providers' use-case: the servicer checks the key before handing it over."""

    async def validate_key(self, *args: Any, **kwargs: Any) -> int:
        raise AssertionError("a key refused for its shape reached the LLM provider's check")


@pytest.mark.usefixtures("debug_logs")
@pytest.mark.parametrize("provider", [ELEVENLABS, "openrouter"])
@pytest.mark.parametrize("key", BAD_KEYS, ids=["lf", "crlf", "nul", "space"])
async def test_a_new_key_with_control_characters_is_refused_before_any_call(
    servicer: InferenceServicer, capfd: pytest.CaptureFixture[str], provider: str, key: str
) -> None:
    request = inf.ValidateKeyRequest(provider=provider, api_key=key)
    with pytest.raises(TzurotError) as caught:
        await servicer.ValidateKey(request, cast(Any, None))
    out, err = capfd.readouterr()
    assert LEAK not in out + err
    assert "Illegal header value" not in out + err
    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.field == "api_key"
    assert LEAK not in f"{caught.value!r} {caught.value} {caught.value.metadata}"
