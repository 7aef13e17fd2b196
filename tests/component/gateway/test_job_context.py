"""A job's context: the user's turn as the prompt saw it reaches history; Inspect's report."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tzurot.gateway.admin import Admin, Principal, SettingTarget
from tzurot.gateway.domain import (
    Actor,
    Attachment,
    ConfigSource,
    GenerateEvent,
    HistoryTurn,
    JobAccepted,
    Personality,
    PromptReport,
    ReplyChunk,
    ReplyFinished,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore

from .conftest import ALICE, USAGE, FakeInference, FakeMemory, command

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")

VOICE = Attachment(
    url="https://cdn.example/voice.ogg",
    content_type="audio/ogg",
    filename="voice-message.ogg",
    size_bytes=2048,
)
TRANSCRIBED = Attachment(
    url=VOICE.url,
    content_type=VOICE.content_type,
    filename=VOICE.filename,
    size_bytes=VOICE.size_bytes,
    description="Hello, Lilith. How are you?",
)
REPORT = PromptReport(
    prompt_tokens_estimate=812,
    history_turns=4,
    memory_ids=("mem-1", "mem-2"),
    referenced_message_ids=("ref-1",),
    key_source="user",
)


def finished_with_context(reasoning: str = "") -> list[ReplyChunk | ReplyFinished]:
    return [
        ReplyChunk("I am well."),
        ReplyFinished(
            content="I am well.",
            usage=USAGE,
            finish_reason="stop",
            reasoning=reasoning,
            report=REPORT,
            attachments=(TRANSCRIBED,),
            user_content="[Voice message: Hello, Lilith. How are you?]",
        ),
    ]


async def job_id_of(stream: AsyncIterator[GenerateEvent]) -> str:
    events = [event async for event in stream]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    return accepted.job_id


async def test_history_keeps_the_transcript_and_descriptions_not_the_raw_request(
    gateway: Gateway, inference: FakeInference, memory: FakeMemory, lilith: Personality
) -> None:
    inference.script = list(finished_with_context())
    job_id = await job_id_of(gateway.generate(command("", attachments=(VOICE,))))

    await gateway.confirm_delivery(job_id, ["answer-1"])

    [exchange] = memory.exchanges
    user_turn, assistant_turn = exchange.turns
    assert user_turn == HistoryTurn(
        "user",
        "100000000000000001",
        "Alice",
        "[Voice message: Hello, Lilith. How are you?]",
        ("msg-1",),
        (VOICE,),  # the transcript is in the content once, not again on the attachment
    )
    assert assistant_turn.content == "I am well."
    # The memories in the prompt are reported as used (memory reinforces them if kept).
    assert exchange.used_memory_ids == ("mem-1", "mem-2")


async def test_without_a_user_content_history_keeps_the_request(
    gateway: Gateway, inference: FakeInference, memory: FakeMemory, lilith: Personality
) -> None:
    job_id = await job_id_of(gateway.generate(command("Hello Lilith")))
    await gateway.confirm_delivery(job_id, ["answer-1"])
    [exchange] = memory.exchanges
    assert exchange.turns[0].content == "Hello Lilith"
    assert exchange.turns[0].attachments == ()


@pytest.mark.parametrize(
    ("shown", "kept"),
    # The request's show_reasoning only shows it: only the user's keep_reasoning keeps it.
    [(False, False), (True, False), (False, True), (True, True)],
)
@pytest.mark.usefixtures("lilith")
async def test_the_report_for_its_user_and_reasoning_only_when_kept(  # noqa: PLR0917  # parametrized
    gateway: Gateway,
    admin: Admin,
    inference: FakeInference,
    store: GatewayStore,
    shown: bool,
    kept: bool,
) -> None:
    if kept:
        alice = Principal(await gateway.user(ALICE))
        await admin.set_setting(alice, SettingTarget(ConfigSource.USER), "keep_reasoning", True)
    inference.script = list(finished_with_context(reasoning="keep it short"))
    job_id = await job_id_of(gateway.generate(command(show_reasoning=shown)))
    job = await gateway.job_status(job_id=job_id)

    context = await gateway.job_context(job, ALICE)
    assert context is not None
    assert context.report == REPORT
    assert context.reasoning == ("keep it short" if kept else "")

    assert await gateway.job_context(job, BOB) is None
    await store.upsert_user(BOB, superuser=True)
    boss = await gateway.job_context(job, BOB)
    assert boss is not None
    assert boss.report == REPORT
