"""The planted-key test: a full conversation with a distinctive key, then look everywhere.

Every log line of every service (they share this process and one logging pipeline at
DEBUG), every table of the database (the `vault` ciphertext included) and every RPC payload
the servers saw, recorded by an interceptor: the key appears only in the four payloads that
must carry it (SetWalletKey, ValidateKey and PutKey requests; the Decrypt response).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
import structlog
from google.protobuf import text_format
from google.protobuf.message import Message

from tzurot.audio import encode_tone, probe
from tzurot.db.engine import create_engine
from tzurot.runtime.logging import configure_logging
from tzurot.testing.e2e import ECHO_SEED, Harness, actor, converse, request
from tzurot.testing.fake_elevenlabs import FakeElevenLabs
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.mesh import in_process_mesh
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

pytestmark = pytest.mark.e2e

# Not shaped like any vendor key: only its true absence (not the redactor) passes.
PLANTED = "plantedWALLETkeyQ7f3e9c1a5b2d4e6f8"
ALLOWED = {
    ("/tzurot.v1.GatewayService/SetWalletKey", "request"),
    ("/tzurot.v1.InferenceService/ValidateKey", "request"),
    ("/tzurot.v1.KeyVaultService/PutKey", "request"),
    ("/tzurot.v1.KeyVaultService/Decrypt", "response"),
}


class PayloadRecorder(grpc.aio.ServerInterceptor):
    """Records every request and response message each server handles, as text."""

    def __init__(self) -> None:
        self.payloads: list[tuple[str, str, str]] = []

    def _record(self, method: str, direction: str, message: Message) -> None:
        self.payloads.append((method, direction, text_format.MessageToString(message)))

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Any = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return None
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def record_unary(request: Message, context: Any) -> Message:
                self._record(method, "request", request)
                response: Message = await unary(request, context)
                self._record(method, "response", response)
                return response

            return handler._replace(unary_unary=record_unary)
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            async def record_stream(request: Message, context: Any) -> AsyncIterator[Message]:
                self._record(method, "request", request)
                async for response in stream(request, context):
                    self._record(method, "response", response)
                    yield response

            return handler._replace(unary_stream=record_stream)
        return handler


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> PayloadRecorder:
    """Adds the recorder to every gRPC server the services create."""
    recording = PayloadRecorder()
    make_server = grpc.aio.server

    def server(**kwargs: Any) -> grpc.aio.Server:
        kwargs["interceptors"] = [*kwargs.get("interceptors", ()), recording]
        return make_server(**kwargs)

    monkeypatch.setattr(grpc.aio, "server", server)
    return recording


@pytest.fixture
def all_logs() -> Iterator[None]:
    """Every service's logs at DEBUG as JSON on stderr (they all run in this process)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("mesh", level="DEBUG", fmt="json")
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


async def tables_holding(database_url: str, text: str) -> list[str]:
    """`schema.table.column` of every user-table column whose value contains `text`."""
    engine = create_engine(database_url)
    found: list[str] = []
    try:
        async with engine.connect() as conn:
            columns = (
                await conn.execute(
                    sa.text(
                        "SELECT table_schema, table_name, column_name, data_type "
                        "FROM information_schema.columns c JOIN information_schema.tables t "
                        "USING (table_schema, table_name) WHERE t.table_type = 'BASE TABLE' "
                        "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
                    )
                )
            ).all()
            for schema, table, column, data_type in columns:
                target = f'"{schema}"."{table}"'
                if data_type == "bytea":
                    condition = f"position(convert_to(:t, 'UTF8') in \"{column}\") > 0"
                else:
                    condition = f'position(:t in "{column}"::text) > 0'
                hits = await conn.scalar(
                    sa.text(f"SELECT count(*) FROM {target} WHERE {condition}"),  # noqa: S608
                    {"t": text},
                )
                if hits:
                    found.append(f"{schema}.{table}.{column}")
            assert len(columns) > 20  # the scan did see every service's tables
    finally:
        await engine.dispose()
    return found


async def usage_rows(database_url: str) -> list[tuple[str, str, str, bool, bool]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT provider, model, request_type, input_tokens > 0, "
                    "output_tokens > 0 AND user_id IS NOT NULL FROM core.usage_log ORDER BY id"
                )
            )
            return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
    finally:
        await engine.dispose()


async def test_the_planted_key_appears_nowhere(
    fresh_database: DatabaseFactory,
    tmp_path: Path,
    recorder: PayloadRecorder,
    all_logs: None,
    capfd: pytest.CaptureFixture[str],
) -> None:
    database_url = fresh_database()
    failures: list[str] = []
    async with (
        FakeProvider(valid_keys={PLANTED}) as provider,
        in_process_mesh(database_url, tmp_path, provider) as mesh,
    ):
        cli = await mesh.gateway_stub("cli")
        await cli.ImportPersonality(
            gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=ECHO_SEED)
        )
        h = Harness(mesh, provider, await mesh.gateway_stub("bot"), cli)
        set_reply = await h.bot.SetWalletKey(
            gw.SetWalletKeyRequest(actor=actor(), provider="openrouter", api_key=PLANTED)
        )
        assert set_reply.key.hint == PLANTED[-4:]
        await converse(h, request("hello, remember the word teapot"))
        await converse(h, request("what was the word?"))
        listed = await h.bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor()))
        assert [k.provider for k in listed.keys] == ["openrouter"]
        tested = await h.bot.TestWalletKey(
            gw.TestWalletKeyRequest(actor=actor(), provider="openrouter")
        )
        assert tested.valid
        # Failure paths: a wrong-format key, a key the provider refuses, a revoked key.
        for bad in (PLANTED + " x", PLANTED + "y"):
            try:
                await h.bot.SetWalletKey(
                    gw.SetWalletKeyRequest(actor=actor("bob"), provider="openrouter", api_key=bad)
                )
            except grpc.aio.AioRpcError as exc:
                failures.append(f"{exc.details()} {exc.trailing_metadata()}")
        provider.valid_keys.clear()
        try:
            await converse(h, request("are you there?"))
        except grpc.aio.AioRpcError as exc:
            failures.append(f"{exc.details()} {exc.trailing_metadata()}")
        tested = await h.bot.TestWalletKey(
            gw.TestWalletKeyRequest(actor=actor(), provider="openrouter")
        )
        assert (tested.valid, tested.detail) == (False, "the key was rejected by openrouter")
        # A rotation re-encrypts the stored key; its ciphertext must still hide it.
        vault = kv_grpc.KeyVaultServiceStub(await mesh.channel("cli", "keyvault"))
        async for _ in vault.RewrapKeys(kv.RewrapKeysRequest()):
            pass
        assert (
            await usage_rows(database_url) == [("openrouter", "fake/echo", "chat", True, True)] * 2
        )  # every generation was recorded; the failed third one was not
        assert await tables_holding(database_url, PLANTED[-4:]) == ["vault.api_keys.hint"]
        assert await tables_holding(database_url, PLANTED) == []
        assert await tables_holding(database_url, PLANTED[:12]) == []

    assert len(failures) == 3
    for failure in failures:
        assert PLANTED[:12] not in failure

    out, err = capfd.readouterr()
    logs = out + err
    assert "rpc.served" in logs or "job.streamed" in logs  # the logs were captured
    assert logs.count("\n") > 50
    for fragment in (PLANTED, PLANTED[:12], PLANTED[-12:]):
        assert fragment not in logs

    carried = {(m, d) for m, d, text in recorder.payloads if PLANTED in text}
    assert carried == ALLOWED  # in exactly the four payloads that must carry it
    methods = {m for m, _, _ in recorder.payloads}
    seen = {"/tzurot.v1.MemoryService/GetReplyContext", "/tzurot.v1.GatewayService/Generate"}
    assert seen <= methods
    for method, direction, text in recorder.payloads:
        if (method, direction) not in ALLOWED:
            assert PLANTED[:12] not in text, (method, direction)


PLANTED_VOICE = "plantedVOICEkeyZ2b8d0f4a6c1e3g5h7"
VOICE_ALLOWED = ALLOWED


async def test_the_planted_elevenlabs_key_appears_nowhere(
    fresh_database: DatabaseFactory,
    tmp_path: Path,
    recorder: PayloadRecorder,
    all_logs: None,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The ElevenLabs key: validated before it is stored, then used for speech and cloning."""
    database_url = fresh_database()
    failures: list[str] = []
    async with (
        FakeProvider() as provider,
        FakeElevenLabs(valid_keys=(PLANTED_VOICE,)) as eleven,
        in_process_mesh(
            database_url, tmp_path, provider, inference={"elevenlabs_url": eleven.base_url}
        ) as mesh,
    ):
        bot = await mesh.gateway_stub("bot")
        set_reply = await bot.SetWalletKey(
            gw.SetWalletKeyRequest(actor=actor(), provider="elevenlabs", api_key=PLANTED_VOICE)
        )
        assert set_reply.key.hint == PLANTED_VOICE[-4:]
        tested = await bot.TestWalletKey(
            gw.TestWalletKeyRequest(actor=actor(), provider="elevenlabs")
        )
        assert tested.valid
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await bot.SetWalletKey(
                gw.SetWalletKeyRequest(
                    actor=actor("bob"), provider="elevenlabs", api_key=PLANTED_VOICE + "x"
                )
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        failures.append(f"{refused.value.details()} {refused.value.trailing_metadata()}")
        # Inference fetches the key from keyvault for speech and for cloning.
        user_id = (await bot.GetUser(gw.GetUserRequest(actor=actor()))).user.id
        inference = inf_grpc.InferenceServiceStub(await mesh.channel("gateway", "inference"))
        voice = common.VoiceConfig(provider="elevenlabs", voice_id="21m00Tcm4TlvDq8ikWAM")
        audio = b""
        async for event in inference.SynthesizeSpeech(
            inf.SynthesizeSpeechRequest(user_id=user_id, voice=voice, text="Hello, teapot.")
        ):
            audio += event.chunk.data
        assert probe(audio).codec == "opus"

        async def parts() -> AsyncIterator[inf.CloneVoiceRequest]:
            yield inf.CloneVoiceRequest(header=inf.CloneVoiceHeader(user_id=user_id, name="Echo"))
            yield inf.CloneVoiceRequest(
                sample=inf.CloneVoiceSample(filename="a.mp3", data=encode_tone(1.0))
            )

        cloned = await inference.CloneVoice(parts())
        assert cloned.voice_id in eleven.voices
        assert [c.key_valid for c in eleven.calls] == [True, True, False, True, True]
        assert await tables_holding(database_url, PLANTED_VOICE[-4:]) == ["vault.api_keys.hint"]
        assert await tables_holding(database_url, PLANTED_VOICE[:12]) == []

    for failure in failures:
        assert PLANTED_VOICE[:12] not in failure
    out, err = capfd.readouterr()
    logs = out + err
    assert logs.count("\n") > 20
    for fragment in (PLANTED_VOICE, PLANTED_VOICE[:12], PLANTED_VOICE[-12:]):
        assert fragment not in logs
    carried = {(m, d) for m, d, text in recorder.payloads if PLANTED_VOICE in text}
    assert carried == VOICE_ALLOWED
