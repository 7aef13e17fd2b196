"""The server bootstrap over real mTLS on loopback: identity, authz, errors, deadlines, health."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tzurot.runtime.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    StartupError,
    TzurotError,
    from_rpc_error,
)
from tzurot.runtime.identity import bind_call, current_request_id
from tzurot.runtime.server import RunningServer, ServiceRegistration
from tzurot.runtime.tls import channel_credentials, load_tls

StartServer = Callable[..., Awaitable[RunningServer]]
if TYPE_CHECKING:  # generic only in the stubs
    UnaryUnary = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
    UnaryStream = grpc.aio.UnaryStreamMultiCallable[bytes, bytes]
    StreamUnary = grpc.aio.StreamUnaryMultiCallable[bytes, bytes]
    StreamStream = grpc.aio.StreamStreamMultiCallable[bytes, bytes]
ChannelTo = Callable[..., grpc.aio.Channel]

WHOAMI = "/test.v1.Probe/Whoami"
FAIL = "/test.v1.Probe/Fail"
SLEEP = "/test.v1.Probe/Sleep"
COUNT = "/test.v1.Probe/Count"
SUM = "/test.v1.Probe/Sum"
ECHO_ALL = "/test.v1.Probe/EchoAll"


def unary_unary(channel: grpc.aio.Channel, method: str) -> UnaryUnary:
    return channel.unary_unary(method)


def unary_stream(channel: grpc.aio.Channel, method: str) -> UnaryStream:
    return channel.unary_stream(method)


def stream_unary(channel: grpc.aio.Channel, method: str) -> StreamUnary:
    return channel.stream_unary(method)


def stream_stream(channel: grpc.aio.Channel, method: str) -> StreamStream:
    return channel.stream_stream(method)


async def drain(responses: AsyncIterable[bytes], into: list[bytes] | None = None) -> list[bytes]:
    """Collects a response stream (into `into`, so a test sees what came before an error)."""
    received = [] if into is None else into
    async for response in responses:
        received.append(response)
    return received


async def whoami(channel: grpc.aio.Channel, **kwargs: Any) -> list[str]:
    reply: bytes = await unary_unary(channel, WHOAMI)(b"", **kwargs)
    return reply.decode().split("|")


async def _requests(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


# ---- identity over mTLS ----


async def test_server_sees_the_client_identity_from_its_certificate(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server()
    caller, request_id, _ = await whoami(channel_to(running, identity="bot"))
    assert caller == "bot"
    assert len(request_id) == 32


async def test_request_id_is_propagated_from_the_calling_context(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server()
    channel = channel_to(running)
    with bind_call("gateway", "req-42"):
        _, request_id, _ = await whoami(channel)
    assert request_id == "req-42"


async def test_client_without_certificate_is_refused(start_server: StartServer, pki: Path) -> None:
    running = await start_server()
    credentials = grpc.ssl_channel_credentials(root_certificates=load_tls(pki / "bot").ca)
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{running.port}",
        credentials,
        options=[("grpc.ssl_target_name_override", "gateway")],
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unary_unary(channel, WHOAMI)(b"", timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_client_with_certificate_from_another_ca_is_refused(
    start_server: StartServer, pki: Path, foreign_pki: Path
) -> None:
    running = await start_server()
    own, foreign = load_tls(pki / "bot"), load_tls(foreign_pki / "bot")
    # Trusts the real server, but presents a certificate our CA did not sign.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=own.ca, private_key=foreign.key, certificate_chain=foreign.cert
    )
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{running.port}",
        credentials,
        options=[("grpc.ssl_target_name_override", "gateway")],
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unary_unary(channel, WHOAMI)(b"", timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_client_refuses_a_server_with_another_identity(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server(identity="inference")
    channel = channel_to(running, server_identity="keyvault")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await whoami(channel)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    # The same server is fine when the client expects the identity it presents.
    caller, _, _ = await whoami(channel_to(running, server_identity="inference"))
    assert caller == "bot"


# ---- authorization ----

KEYVAULT_POLICY = {WHOAMI: frozenset({"inference"}), SUM: frozenset({"gateway"})}


@pytest.mark.parametrize(
    ("caller", "method", "allowed"),
    [
        ("inference", WHOAMI, True),
        ("gateway", WHOAMI, False),
        ("bot", WHOAMI, False),
        ("gateway", SUM, True),
        ("inference", SUM, False),
        # Not in the policy: default_allowed decides.
        ("gateway", FAIL, True),
        ("inference", FAIL, True),
        ("bot", FAIL, False),
    ],
)
async def test_authorization_matrix(
    start_server: StartServer, channel_to: ChannelTo, caller: str, method: str, allowed: bool
) -> None:
    running = await start_server(
        identity="keyvault",
        authorization=KEYVAULT_POLICY,
        default_allowed=frozenset({"gateway", "inference"}),
    )
    channel = channel_to(running, identity=caller, server_identity="keyvault")
    code, details = await _outcome(channel, method)
    if allowed:
        # Past authorization: Sum succeeds, Whoami succeeds, Fail("invalid") is the servicer's.
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)
    else:
        assert code is grpc.StatusCode.PERMISSION_DENIED
        assert details == f"caller {caller!r} may not call {method}"


async def _outcome(channel: grpc.aio.Channel, method: str) -> tuple[grpc.StatusCode, str]:
    try:
        if method == SUM:
            await stream_unary(channel, method)(_requests(b"1"))
        else:
            await unary_unary(channel, method)(b"invalid")
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def test_health_and_reflection_are_open_to_any_authenticated_peer(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server(default_allowed=frozenset({"nobody"}))
    channel = channel_to(running, identity="cli")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await whoami(channel)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "test.v1.Probe"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(
        _requests_of(reflection_pb2.ServerReflectionRequest(list_services=""))
    )
    services = [
        service.name
        async for response in responses
        for service in response.list_services_response.service
    ]
    assert {"test.v1.Probe", "grpc.health.v1.Health"} <= set(services)


async def _requests_of(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def test_policy_naming_an_unregistered_service_is_a_startup_error(
    start_server: StartServer,
) -> None:
    with pytest.raises(StartupError, match=r"unregistered methods: /test\.v1\.Prob/Whoami$"):
        await start_server(authorization={"/test.v1.Prob/Whoami": frozenset({"bot"})})


# ---- errors ----


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("not_found", NotFound("no personality named 'x'", reason="PERSONALITY_NOT_FOUND")),
        ("invalid", InvalidArgument("content", "the message is empty")),
        (
            "exhausted",
            ResourceExhausted("slow down", retry_after_seconds=1.5, reason="RATE_LIMITED"),
        ),
    ],
)
async def test_typed_error_round_trips_with_its_details(
    start_server: StartServer, channel_to: ChannelTo, kind: str, expected: TzurotError
) -> None:
    running = await start_server()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary_unary(channel_to(running), FAIL)(kind.encode())
    decoded = from_rpc_error(caught.value)
    assert type(decoded) is type(expected)
    assert (decoded.code, decoded.reason, decoded.message) == (
        expected.code,
        expected.reason,
        expected.message,
    )
    if isinstance(decoded, NotFound):
        assert decoded.metadata == {"name": "x"}
    if isinstance(decoded, InvalidArgument):
        assert decoded.field == "content"
    if isinstance(decoded, ResourceExhausted):
        assert decoded.retry_after_seconds == 1.5


async def test_plain_abort_decodes_from_code_and_details(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary_unary(channel_to(running), FAIL)(b"abort")
    decoded = from_rpc_error(caught.value)
    assert decoded.code is grpc.StatusCode.ALREADY_EXISTS
    assert decoded.message == "plain abort"
    assert decoded.reason == "ALREADY_EXISTS"


async def test_unexpected_exception_is_internal_without_its_text(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server()
    channel = channel_to(running)
    with bind_call(None, "req-boom"), pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary_unary(channel, FAIL)(b"boom")
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error (request id req-boom)"
    assert "hunter2" not in str(caught.value.trailing_metadata())
    assert isinstance(from_rpc_error(caught.value), Internal)


async def test_server_streaming_yields_then_fails_with_typed_error(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server()
    received: list[bytes] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(unary_stream(channel_to(running), COUNT)(b"2"), received)
    assert received == [b"0|bot", b"1|bot"]
    decoded = from_rpc_error(caught.value)
    assert isinstance(decoded, NotFound)
    assert decoded.reason == "RAN_OUT"


async def test_client_streaming_and_bidi_carry_identity_and_map_errors(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server()
    channel = channel_to(running)
    assert await stream_unary(channel, SUM)(_requests(b"1", b"2", b"3")) == b"6|bot"
    replies = await drain(stream_stream(channel, ECHO_ALL)(_requests(b"a", b"b")))
    assert replies == [b"a|bot", b"b|bot"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(stream_stream(channel, ECHO_ALL)(_requests(b"a", b"boom")))
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert "hunter2" not in (caught.value.details() or "")


# ---- deadlines ----


async def test_client_applies_its_default_deadline(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server()
    _, _, remaining = await whoami(channel_to(running, default_timeout=7.0))
    assert 0 < float(remaining) <= 7.0
    _, _, explicit = await whoami(channel_to(running, default_timeout=7.0), timeout=60.0)
    assert 7.0 < float(explicit) <= 60.0


async def test_default_deadline_ends_a_hanging_call(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary_unary(channel_to(running, default_timeout=0.2), SLEEP)(b"")
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_server_caps_calls_that_came_without_a_deadline(
    start_server: StartServer, pki: Path
) -> None:
    running = await start_server(max_request_seconds=0.2)
    # A raw channel: no interceptor adds a deadline.
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{running.port}",
        channel_credentials(load_tls(pki / "bot")),
        options=[("grpc.ssl_target_name_override", "gateway")],
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unary_unary(channel, SLEEP)(b"")
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        decoded = from_rpc_error(caught.value)
        assert isinstance(decoded, DeadlineExceeded)
        assert decoded.reason == "SERVER_TIME_LIMIT"
        # Calls that finish in time are unaffected by the cap.
        reply = await unary_unary(channel, WHOAMI)(b"")
        assert reply.decode().split("|")[0] == "bot"


# ---- retries ----


class Flaky:
    """A server-streaming service that fails with UNAVAILABLE before or after a reply."""

    def __init__(self, failures: int, *, after_first: bool = False) -> None:
        self.failures = failures
        self.after_first = after_first
        self.attempts = 0

    async def stream(
        self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        self.attempts += 1
        if self.after_first:
            yield b"first"
        if self.attempts <= self.failures:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        yield b"done"

    def registration(self) -> ServiceRegistration:
        handler = grpc.method_handlers_generic_handler(
            "test.v1.Flaky", {"Stream": grpc.unary_stream_rpc_method_handler(self.stream)}
        )
        return ServiceRegistration(
            "test.v1.Flaky", lambda server: server.add_generic_rpc_handlers([handler])
        )


async def test_streaming_call_is_retried_on_unavailable_before_the_first_reply(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    flaky = Flaky(failures=2)
    running = await start_server(registrations=[flaky.registration()])
    channel = channel_to(running, retry_service="test.v1.Flaky", max_attempts=3)
    replies = await drain(unary_stream(channel, "/test.v1.Flaky/Stream")(b""))
    assert replies == [b"done"]
    assert flaky.attempts == 3


async def test_retries_stop_at_max_attempts(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    flaky = Flaky(failures=5)
    running = await start_server(registrations=[flaky.registration()])
    channel = channel_to(running, retry_service="test.v1.Flaky", max_attempts=2)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(unary_stream(channel, "/test.v1.Flaky/Stream")(b""))
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert flaky.attempts == 2


async def test_streaming_call_is_not_retried_after_a_reply_arrived(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    flaky = Flaky(failures=1, after_first=True)
    running = await start_server(registrations=[flaky.registration()])
    channel = channel_to(running, retry_service="test.v1.Flaky", max_attempts=3)
    received: list[bytes] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(unary_stream(channel, "/test.v1.Flaky/Stream")(b""), received)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert received == [b"first"]
    assert flaky.attempts == 1


async def test_without_retry_service_unavailable_is_not_retried(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    flaky = Flaky(failures=1)
    running = await start_server(registrations=[flaky.registration()])
    with pytest.raises(grpc.aio.AioRpcError):
        await drain(unary_stream(channel_to(running), "/test.v1.Flaky/Stream")(b""))
    assert flaky.attempts == 1


# ---- health and shutdown ----


class Gate:
    """A unary service whose calls wait until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    async def wait(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        self.entered.set()
        await self.open.wait()
        return b"finished"

    def registration(self) -> ServiceRegistration:
        handler = grpc.method_handlers_generic_handler(
            "test.v1.Gate", {"Wait": grpc.unary_unary_rpc_method_handler(self.wait)}
        )
        return ServiceRegistration(
            "test.v1.Gate", lambda server: server.add_generic_rpc_handlers([handler])
        )


async def test_graceful_stop_reports_not_serving_and_finishes_in_flight_calls(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    gate = Gate()
    running = await start_server(registrations=[gate.registration()], health_listen="127.0.0.1:0")
    assert running.health_port is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.health_port}") as plain:
        probe = health_pb2_grpc.HealthStub(plain)
        before = await probe.Check(health_pb2.HealthCheckRequest(service="test.v1.Gate"))
        assert before.status == health_pb2.HealthCheckResponse.SERVING

        in_flight = asyncio.ensure_future(
            unary_unary(channel_to(running), "/test.v1.Gate/Wait")(b"")
        )
        await gate.entered.wait()
        watch = probe.Watch(health_pb2.HealthCheckRequest(service=""))
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.ensure_future(running.stop(30.0))
        change = await watch.read()
        assert change.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        during = await probe.Check(health_pb2.HealthCheckRequest(service="test.v1.Gate"))
        assert during.status == health_pb2.HealthCheckResponse.NOT_SERVING
        gate.open.set()
        assert await in_flight == b"finished"
        await stopping


async def test_plaintext_health_port_serves_nothing_else(
    start_server: StartServer,
) -> None:
    running = await start_server(health_listen="127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.health_port}") as plain:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unary_unary(plain, WHOAMI)(b"", timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_missing_tls_dir_is_a_one_line_startup_error(
    start_server: StartServer, tmp_path: Path
) -> None:
    from tzurot.runtime.config import ServiceSettings
    from tzurot.runtime.server import create_server

    with pytest.raises(StartupError) as caught:
        await create_server(
            service="gateway",
            settings=ServiceSettings(tls_dir=tmp_path / "nope"),
            registrations=[],
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        f"TLS CA certificate not found: {tmp_path / 'nope' / 'ca.crt'} (run `tzurot certs`)"
    )


async def test_port_in_use_is_a_startup_error(start_server: StartServer) -> None:
    running = await start_server()
    with pytest.raises(StartupError, match="cannot listen on"):
        await start_server(listen=f"127.0.0.1:{running.port}")


async def test_a_request_id_the_caller_sends_is_kept_and_other_metadata_gets_one(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    running = await start_server()
    channel = channel_to(running)
    _, mine, _ = await whoami(channel, metadata=(("x-request-id", "req-mine"),))
    _, added, _ = await whoami(channel, metadata=grpc.aio.Metadata(("x-other", "1")))
    assert mine == "req-mine"
    assert len(added) == 32


async def test_streaming_calls_carry_the_request_id_and_no_default_deadline(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    async def where(request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield f"{current_request_id()}|{context.time_remaining()}".encode()

    handler = grpc.method_handlers_generic_handler(
        "test.v1.Where", {"Stream": grpc.unary_stream_rpc_method_handler(where)}
    )
    running = await start_server(
        registrations=[
            ServiceRegistration("test.v1.Where", lambda s: s.add_generic_rpc_handlers([handler]))
        ]
    )
    channel = channel_to(running, default_timeout=5.0)
    with bind_call(None, "req-stream"):
        (reply,) = await drain(unary_stream(channel, "/test.v1.Where/Stream")(b""))
    assert reply.decode() == "req-stream|None"


async def test_registered_method_handlers_run_inside_the_call_pipeline(
    start_server: StartServer, channel_to: ChannelTo
) -> None:
    """Generated `add_*_to_server` register their methods this way too: identity, request id
    and the authorization policy apply to them as to generic handlers."""
    from tzurot.runtime.identity import current_caller

    async def who(request: bytes, context: Any) -> bytes:
        return f"{current_caller()}|{current_request_id()}".encode()

    registration = ServiceRegistration(
        "test.v1.Registered",
        lambda s: s.add_registered_method_handlers(
            "test.v1.Registered", {"Who": grpc.unary_unary_rpc_method_handler(who)}
        ),
    )
    running = await start_server(
        registrations=[registration], authorization={"/test.v1.Registered/Who": frozenset({"bot"})}
    )
    with bind_call(None, "req-reg"):
        reply = await unary_unary(channel_to(running), "/test.v1.Registered/Who")(b"")
    assert reply == b"bot|req-reg"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await unary_unary(channel_to(running, identity="cli"), "/test.v1.Registered/Who")(b"")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


# ---- logging ----


@pytest.mark.usefixtures("restore_logging")
async def test_calls_are_access_logged_and_failures_logged_redacted(
    start_server: StartServer, channel_to: ChannelTo, capsys: pytest.CaptureFixture[str]
) -> None:
    from tzurot.runtime.logging import configure_logging

    configure_logging("gateway", level="INFO", fmt="json")
    running = await start_server()
    channel = channel_to(running)
    with bind_call(None, "req-log"):
        await whoami(channel)
        with pytest.raises(grpc.aio.AioRpcError):
            await unary_unary(channel, FAIL)(b"boom")
    events = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    served = [e for e in events if e["event"] == "rpc.served"]
    assert [(e["method"], e["code"], e["caller"], e["request_id"]) for e in served] == [
        (WHOAMI, "OK", "bot", "req-log"),
        (FAIL, "INTERNAL", "bot", "req-log"),
    ]
    assert all(isinstance(e["duration_ms"], float) for e in served)
    (failure,) = [e for e in events if e["event"] == "rpc.unexpected_error"]
    assert failure["request_id"] == "req-log"
    assert "RuntimeError" in failure["exception"]
    assert "sk-or-v1-" not in json.dumps(events)


@pytest.mark.usefixtures("restore_logging")
async def test_denied_call_is_logged_as_a_refusal(
    start_server: StartServer, channel_to: ChannelTo, capsys: pytest.CaptureFixture[str]
) -> None:
    from tzurot.runtime.logging import configure_logging

    configure_logging("keyvault", level="INFO", fmt="json")
    running = await start_server(
        identity="keyvault", authorization={WHOAMI: frozenset({"inference"})}
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await whoami(channel_to(running, server_identity="keyvault"))
    # The server writes its access line after the client already has the refusal.
    events: list[dict[str, Any]] = []
    for _ in range(100):
        err = capsys.readouterr().err
        events += [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        if any(e["event"] == "rpc.served" for e in events):
            break
        await asyncio.sleep(0.02)
    denied = [e for e in events if e["event"] == "authz.denied"]
    assert [(e["caller"], e["method"], e["level"]) for e in denied] == [("bot", WHOAMI, "warning")]
    served = [e for e in events if e["event"] == "rpc.served"]
    assert [e["code"] for e in served] == ["PERMISSION_DENIED"]


async def test_a_method_not_overridden_answers_unimplemented(tmp_path: Path) -> None:
    """The generated base raises NotImplementedError; callers see UNIMPLEMENTED, not INTERNAL."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from tzurot.runtime.client import secure_channel
    from tzurot.runtime.config import ServiceSettings
    from tzurot.runtime.server import ServiceRegistration, create_server
    from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki, load_tls
    from tzurot.v1 import memory_pb2, memory_pb2_grpc

    generate_dev_pki(tmp_path, SERVICE_IDENTITIES)
    running = await create_server(
        service="memory",
        settings=ServiceSettings(listen="127.0.0.1:0", tls_dir=tmp_path / "memory"),
        registrations=[
            ServiceRegistration(
                "tzurot.v1.MemoryService",
                lambda server: memory_pb2_grpc.add_MemoryServiceServicer_to_server(
                    memory_pb2_grpc.MemoryServiceServicer(),  # type: ignore[abstract]
                    server,
                ),
            )
        ],
        authorization={},
        default_allowed=frozenset({"gateway"}),
    )
    await running.start()
    try:
        async with secure_channel(
            f"127.0.0.1:{running.port}",
            load_tls(tmp_path / "gateway"),
            server_identity="memory",
            default_timeout=5.0,
        ) as channel:
            stub = memory_pb2_grpc.MemoryServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CountMemories(memory_pb2.CountMemoriesRequest())
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop(0)
