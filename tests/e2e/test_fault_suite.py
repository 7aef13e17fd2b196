"""Kill -9 each service in the middle of a streamed answer (issue #14's fault suite).

One `tzurot up` runs the mesh and the bot as real, supervised processes, against a fake
Discord and a slow fake provider in this process. For each of keyvault, memory, inference,
gateway and the bot: Alice asks Lilith for a story, the answer starts streaming into Discord,
the service is SIGKILLed, `tzurot up` restarts it. Then every message is answered exactly once,
whole, in the message that began showing it, and a last question shows the history: each turn
exactly once. The bot's half-posted answer is finished by the restarted bot (the gateway's
`unfinished` event). An answer cut short by the gateway's or inference's death is asked for
again by the bot (the same request: the gateway takes the same job up again, once its lease
ran out when the gateway itself died), and streams into the message that showed the first;
these two used to end "try again" in Lilith's voice.

Every wait is for an observable state (a log line, a job status, a message), never a fixed
sleep; answers stream for a few seconds only, long enough for each kill to land mid-stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.testing.fake_discord import FakeDiscord, Json
from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.mesh_ports import check_ports, on_free_ports_async
from tzurot.testing.processes import child_pid, wait_serving
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

pytestmark = pytest.mark.e2e

SEED = """name: Lilith
system_prompt: You are Lilith.
llm: {provider: openrouter, model: fake/lilith}
error_message: "*Lilith's candle gutters.*"
public: true
"""
WORDS = 60  # streamed 0.1 s apart: an answer takes ~6 s, so a kill lands mid-stream
GRPC_SERVICES = ("gateway", "inference", "memory", "keyvault")
READY_WITHIN = 300.0


def story_words(question: str) -> list[str]:
    """Words of its own for each question: answers that shared them would be near-repeats of
    the last replies, which inference holds back whole and asks again (no stream to kill)."""
    return [hashlib.sha256(f"{question}:{i}".encode()).hexdigest()[:5] for i in range(WORDS)]


def story(body: dict[str, Any]) -> str:
    """Names the question it answers, then enough words to stream for a while."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    last = str(users[-1].get("content", "")) if users else ""
    question = last.split()[-1]
    return f"On {question}: " + " ".join(story_words(question))


@dataclass
class Up:
    process: asyncio.subprocess.Process
    base_port: int
    data: Path
    discord: FakeDiscord
    provider: FakeProvider
    channel: Json
    alice: Json
    gateway: gw_grpc.GatewayServiceAsyncStub

    def pid(self, service: str) -> int | None:
        return child_pid(self.process.pid, service)

    def addr(self, service: str) -> str:
        return f"127.0.0.1:{self.base_port + GRPC_SERVICES.index(service)}"


@pytest.fixture(scope="module")
async def up(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Up]:
    data = tmp_path_factory.mktemp("fault")
    seeds = data / "seeds"
    seeds.mkdir()
    (seeds / "lilith.yaml").write_text(SEED)
    async with (
        FakeProvider(reply=story, require_key=False, any_model=True, chunk_delay=0.1) as fake,
        FakeDiscord() as discord,
    ):
        discord.identify_window = 0.3
        guild = discord.add_guild("Fault Server")
        channel = discord.add_channel(guild, "general")
        alice = discord.make_user("alice")
        providers = {p: fake.base_url for p in ("openrouter", "openai")}
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")},
            "TZUROT_LOG_FORMAT": "json",
            "TZUROT_PROVIDERS": json.dumps(providers),
            "TZUROT_SYSTEM_KEYS": json.dumps(dict.fromkeys(providers, "sk-fault-system")),
            "TZUROT_FREE_MODELS": json.dumps(["*"]),
            "TZUROT_DEMO_ALL_FREE": "true",
            "TZUROT_RATE_USER_CAPACITY": "0",
            "TZUROT_RATE_CHANNEL_CAPACITY": "0",
            "TZUROT_GUEST_USER_PER_DAY": "1000",
            "TZUROT_GRACE_SECONDS": "1",
            "TZUROT_DISCORD_TOKEN": discord.token,
            "TZUROT_DISCORD_API_BASE": discord.api_base,
            "TZUROT_IDENTIFY_DELAY_SECONDS": "0.3",
            "TZUROT_GUILD_READY_TIMEOUT_SECONDS": "0.05",
            "TZUROT_PLURALKIT_ENABLED": "false",
            # The bot's answer abandoned by its death is handed over 1 s after its job ended.
            "TZUROT_UNFINISHED_AFTER_SECONDS": "1",
            # A killed gateway's job is failed (orphaned) 6 s after its last heartbeat, not 20.
            "TZUROT_JOB_LEASE_SECONDS": "6",
            "TZUROT_DEV_GUILD_ID": str(guild["id"]),
        }
        process, base = await _started(data, seeds, env)
        try:
            certs = data / "certs"
            assert process.returncode is None, (data / "up.log").read_text()[-3000:]
            async with secure_channel(
                f"127.0.0.1:{base}",
                load_tls(certs / "cli"),
                server_identity="gateway",
                default_timeout=30.0,
            ) as channel_to_gateway:
                stub = gw_grpc.GatewayServiceStub(channel_to_gateway)
                # No wait for the bot's channel to the gateway: a message met while it is still
                # connecting waits for it (wait_for_ready), it does not fail.
                await discord.wait_until(lambda: discord.sessions, within=READY_WITHIN)
                yield Up(process, base, data, discord, fake, channel, alice, stub)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _started(
    data: Path, seeds: Path, env: dict[str, str]
) -> tuple[asyncio.subprocess.Process, int]:
    """`tzurot up` on four free ports, up (every service healthy, the seeds imported: the
    banner printed) or exited; on other ports if one was taken before it bound it."""

    async def start(base: int) -> tuple[asyncio.subprocess.Process, int]:
        with (data / "up.log").open("w") as log:  # the child writes to its own copy
            process = await asyncio.create_subprocess_exec(  # our interpreter, no shell
                sys.executable, "-m", "tzurot.cli", "up", "--data-dir", str(data),
                "--base-port", str(base), "--seeds", str(seeds),
                env=env, stdout=log, stderr=log,
            )  # fmt: skip
        await _wait_for(
            lambda: process.returncode is not None or "Try: " in (data / "up.log").read_text(),
            READY_WITHIN,
        )
        if process.returncode is not None:
            check_ports((data / "up.log").read_text())
        return process, base

    return await on_free_ports_async(start)


async def _wait_for(predicate: Any, within: float) -> Any:
    deadline = time.monotonic() + within
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        await asyncio.sleep(0.1)
    return result


@dataclass
class Turn:
    question: str
    said: Posted
    killed: str
    job: gw.Job
    answers: list[Posted]


async def job_of(up: Up, said: Posted, within: float = 120.0, *, until: Any = None) -> gw.Job:
    """The job of Lilith's answer to `said`, once `until(job)` holds (default: it is
    delivered, or failed: a poller's end. One the gateway is generating again, its bot having
    died, reads queued until then, never failed: store/retries.py)."""
    key = f"{said.id}:lilith"
    deadline = time.monotonic() + within
    done = until or (
        lambda job: job.status in (common.JOB_STATUS_DELIVERED, common.JOB_STATUS_FAILED)
    )
    job = None
    while True:
        try:
            job = (await up.gateway.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))).job
            if done(job):
                return job
        except grpc.aio.AioRpcError as exc:  # not sent yet, or the gateway is restarting
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                raise
        if time.monotonic() > deadline:
            last = "never found" if job is None else f"{job.status} {job.error}"
            raise TimeoutError(f"job {key} did not get there within {within} s: {last}")
        await asyncio.sleep(0.2)


def provider_asked(up: Up, question: str) -> bool:
    """Whether the fake provider has received the chat call that answers `question`."""
    calls = up.provider.chat_requests()
    return any(question in json.dumps(call.body.get("messages", [])) for call in calls)


def asked_times(up: Up, question: str) -> int:
    """How many chat calls the fake provider received that answer `question`."""
    calls = 0
    for call in up.provider.chat_requests():
        users = [m for m in call.body.get("messages", []) if m.get("role") == "user"]
        calls += bool(users) and question in str(users[-1].get("content", ""))
    return calls


def answers_to(up: Up, said: Posted) -> list[Posted]:
    return [m for m in up.discord.webhook_messages(up.channel) if m.id > said.id]


async def recovered(up: Up, service: str, old: int) -> None:
    """`tzurot up` restarted `service` and it serves again."""
    await _wait_for(lambda: (up.pid(service) or old) != old, READY_WITHIN)
    if service == "bot":
        await up.discord.wait_until(lambda: up.discord.sessions, within=READY_WITHIN)
        return
    certs = up.data / "certs"
    await wait_serving(up.addr(service), service, certs, READY_WITHIN)
    if service == "memory":
        # The gateway's channel to memory may sit in reconnect backoff for a moment more.
        await asyncio.sleep(1.0)


async def ask_and_kill(up: Up, question: str, service: str) -> Turn:
    said = await up.discord.say(up.channel, up.alice, f"@Lilith {question}")
    if service == "bot":
        # The answer is streaming into Discord: a webhook message exists, not yet whole, and
        # the gateway knows it shows the answer (NoteAnswerPreview).
        await up.discord.wait_until(lambda: answers_to(up, said), within=READY_WITHIN)
        job = await job_of(
            up,
            said,
            READY_WITHIN,
            until=lambda job: job.preview_message_ids or job.status == common.JOB_STATUS_DELIVERED,
        )
        assert job.preview_message_ids, "delivered before the gateway knew of its preview"
    else:
        # The provider has begun the answer (WORDS x 0.25 s of stream): the kill lands while
        # it is generated, whatever lag a loaded machine gives the bot's preview.
        await up.discord.wait_until(lambda: provider_asked(up, question), within=READY_WITHIN)
    old = up.pid(service)
    assert old is not None, f"no {service} process"
    os.kill(old, signal.SIGKILL)
    await recovered(up, service, old)
    # Delivered in the end: a failure met on the way (the orphan the gateway's death left,
    # failed at its lease's end) is taken up again by the bot's retry.
    job = await job_of(up, said, 120, until=lambda job: job.status == common.JOB_STATUS_DELIVERED)
    return Turn(question, said, service, job, answers_to(up, said))


async def test_kill_each_service_mid_answer_then_every_message_is_answered_once_whole(
    up: Up,
) -> None:
    warm = await up.discord.say(up.channel, up.alice, "@Lilith warm-up")
    assert (await job_of(up, warm, 120)).status == common.JOB_STATUS_DELIVERED

    turns = []
    for service in ("keyvault", "memory", "inference", "gateway", "bot"):
        turns.append(await ask_and_kill(up, f"story-{service}", service))
    assert up.process.returncode is None  # the mesh never gave up

    final = await up.discord.say(up.channel, up.alice, "@Lilith story-final")
    assert (await job_of(up, final)).status == common.JOB_STATUS_DELIVERED

    for turn in turns:
        # Answered exactly once, whole, in the one message that began showing it.
        (whole,) = [m.content for m in turn.answers]
        assert f"On {turn.question}:" in whole, (turn.killed, whole)
        assert whole.rstrip().endswith(story_words(turn.question)[-1]), (turn.killed, whole)
        assert "try again" not in whole
        assert [str(m.id) for m in turn.answers] == list(turn.job.delivered_message_ids)
    bot_turn = turns[-1]  # finished by the restarted bot, in the message the dead one began
    assert list(bot_turn.job.delivered_message_ids) == list(bot_turn.job.preview_message_ids)
    # The bot asked again for the answers the gateway's and inference's deaths cut short.
    for killed in ("gateway", "inference"):
        (turn,) = [t for t in turns if t.killed == killed]
        assert turn.job.attempts >= 2, (killed, turn.job.attempts)
        assert asked_times(up, turn.question) >= 2, killed

    # History, as the last prompt saw it: every delivered turn once, no failed one.
    last_prompt = json.dumps(up.provider.chat_requests()[-1].body["messages"])
    for turn in turns:
        assert last_prompt.count(f"On {turn.question}:") == 1, turn.killed
        assert last_prompt.count(turn.question) == 2, turn.killed
