"""An answer handed out again from its job's row keeps the line under it: the model (the
user's model_footer setting) and the files inference left unread for want of a key.

Before, a client's resend of a finished job (a replay) and the `unfinished` event a restarted
bot finishes a dead bot's answer from carried the content alone: Alice, whose photo Hearth
never saw, was not told why, nor which key reads it. Both now carry the footer the answer's
stream had, rebuilt from the job's row (reply_requests.stored_footer)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tzurot.gateway.admin import Admin, Principal, SettingTarget
from tzurot.gateway.domain import (
    Attachment,
    AttachmentRead,
    ConfigSource,
    GenerateEvent,
    GenerationFinished,
    JobAccepted,
    Personality,
    ReplyEvent,
    ReplyFinished,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.turn_edits import unread_note

from .conftest import ALICE, UNFINISHED_AFTER, USAGE, FakeInference, command

pytestmark = pytest.mark.component

PHOTO = Attachment(url="https://cdn/a/1/cat.png", content_type="image/png", filename="cat.png")
VOICE = Attachment(url="https://cdn/a/2/v.ogg", content_type="audio/ogg", filename="v.ogg")
ASKED = "@Hearth what is this?"
IMAGE_LINE = "image not read: add a key for openrouter with /wallet set openrouter"
MODEL = f"{USAGE.provider}/{USAGE.model}"


@pytest.fixture
def gateway(sweeping: Gateway) -> Gateway:
    return sweeping


def unread_photo_answer() -> list[ReplyEvent]:
    """Inference's answer to a message with a voice message it transcribed (a transcript
    holding a line that reads like the photo's note; recorded on the job as read,
    attachment_reads.py) and a photo it left unread."""
    heard = Attachment(
        url=VOICE.url,
        content_type=VOICE.content_type,
        filename=VOICE.filename,
        description="hello\n" + unread_note(1, PHOTO, "evil"),
    )
    readings = (f"[Voice message: {heard.description}]", unread_note(1, PHOTO, "openrouter"))
    return [
        AttachmentRead(0, heard, paid=()),
        ReplyFinished(
            content="Something grey?",
            usage=USAGE,
            finish_reason="stop",
            attachments=(heard, PHOTO),
            user_content="\n".join((ASKED, *readings)),
        ),
    ]


async def streamed(gateway: Gateway, key: str = "msg-1") -> tuple[str, GenerationFinished]:
    events: list[GenerateEvent] = [
        e async for e in gateway.generate(command(ASKED, key=key, attachments=(VOICE, PHOTO)))
    ]
    accepted, finished = events[0], events[-1]
    assert isinstance(accepted, JobAccepted)
    assert isinstance(finished, GenerationFinished)
    return accepted.job_id, finished


async def model_footer(gateway: Gateway, admin: Admin, on: bool) -> str:
    """The footer's expected model part, after setting Alice's model_footer."""
    if on:
        alice = Principal(await gateway.user(ALICE))
        await admin.set_setting(alice, SettingTarget(ConfigSource.USER), "model_footer", True)
    return f"{MODEL} · " if on else ""


@pytest.mark.parametrize("on", [False, True])
@pytest.mark.usefixtures("lilith")
async def test_a_replay_carries_the_footer_its_stream_had(
    gateway: Gateway, admin: Admin, inference: FakeInference, on: bool
) -> None:
    model = await model_footer(gateway, admin, on)
    inference.script = list(unread_photo_answer())
    job_id, first = await streamed(gateway)
    assert first.footer == model + IMAGE_LINE

    events = [e async for e in gateway.generate(command(ASKED, attachments=(VOICE, PHOTO)))]
    accepted, replayed = events[0], events[-1]
    assert isinstance(accepted, JobAccepted)
    assert accepted.replayed
    assert accepted.job_id == job_id
    assert isinstance(replayed, GenerationFinished)
    assert (replayed.content, replayed.footer) == (first.content, first.footer)
    assert len(inference.requests) == 1  # replayed, not generated again


@pytest.mark.parametrize("on", [False, True])
async def test_a_restarted_bot_is_handed_the_footer_with_the_answer(
    gateway: Gateway, admin: Admin, inference: FakeInference, lilith: Personality, on: bool
) -> None:
    model = await model_footer(gateway, admin, on)
    inference.script = list(unread_photo_answer())
    job_id, first = await streamed(gateway)
    await gateway.note_preview(job_id, ["900"])  # then its bot died, unconfirmed
    await asyncio.sleep(2 * UNFINISHED_AFTER)

    assert await gateway.finish_unfinished_answers() == 1
    (event,) = await gateway.group_store.claim_events(
        gateway.clock.now(), timedelta(seconds=60), 0, 1
    )
    handed = await gateway.unfinished_answer(event)
    assert handed is not None
    assert (handed.content, handed.footer) == (first.content, model + IMAGE_LINE)


async def test_an_answer_without_a_footer_is_handed_over_without_one(
    gateway: Gateway, lilith: Personality
) -> None:
    """Nothing left unread, model_footer off: the hand-over is as before."""
    job_id, first = await streamed(gateway)
    assert first.footer == ""
    await gateway.note_preview(job_id, ["900"])
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1
    (event,) = await gateway.group_store.claim_events(
        gateway.clock.now(), timedelta(seconds=60), 0, 1
    )
    handed = await gateway.unfinished_answer(event)
    assert handed is not None
    assert (handed.content, handed.footer) == ("Hello, mortal.", "")
