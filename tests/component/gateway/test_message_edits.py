"""EditMessage: the author's edit changes what they typed in the user turn; what inference
read of the message's files (an image's description, a voice message's transcript) stays."""

from __future__ import annotations

import dataclasses

import pytest

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import (
    Actor,
    Attachment,
    JobAccepted,
    ReplyChunk,
    ReplyFinished,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import InvalidArgument, PermissionDenied

from .conftest import ALICE, USAGE, FakeInference, FakeMemory, command, seed

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
CAT = Attachment(
    url="https://cdn.example/cat.png",
    content_type="image/png",
    filename="cat.png",
    size_bytes=2048,
    description="a grey cat asleep on a red sofa",
)
SEEN = "[Image cat.png: a grey cat asleep on a red sofa]"


def reading(user_content: str) -> tuple[ReplyChunk, ReplyFinished]:
    """An answer whose prompt saw the user's turn as `user_content`."""
    return (
        ReplyChunk("A fine cat."),
        ReplyFinished(
            content="A fine cat.",
            usage=USAGE,
            finish_reason="stop",
            attachments=(CAT,),
            user_content=user_content,
        ),
    )


async def delivered(gateway: Gateway, content: str, *, personality: str = "lilith") -> str:
    cmd = command(content, key=f"msg-1:{personality}", personality=personality)
    cmd = dataclasses.replace(cmd, message_ids=("msg-1",), attachments=(CAT,))
    events = [event async for event in gateway.generate(cmd)]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    await gateway.confirm_delivery(accepted.job_id, [f"answer-{personality}"])
    return accepted.job_id


def user_turns(memory: FakeMemory) -> list[str]:
    return [t.content for e in memory.exchanges for t in e.turns if t.role == "user"]


@pytest.mark.usefixtures("lilith")
async def test_an_edit_keeps_the_images_description(
    gateway: Gateway, admin: Admin, inference: FakeInference, memory: FakeMemory
) -> None:
    inference.script = list(reading(f"my cat is called Tom\n{SEEN}"))
    await delivered(gateway, "my cat is called Tom")
    alice = Principal(await gateway.user(ALICE))

    await admin.edit_message(alice, "msg-1", "my cat is called Felix")
    assert user_turns(memory) == [f"my cat is called Felix\n{SEEN}"]
    await admin.edit_message(alice, "msg-1", "my cat is called Felix, really")  # again
    assert user_turns(memory) == [f"my cat is called Felix, really\n{SEEN}"]


@pytest.mark.usefixtures("lilith")
async def test_an_emptied_text_leaves_the_description_and_nothing_is_refused(
    gateway: Gateway, admin: Admin, inference: FakeInference, memory: FakeMemory
) -> None:
    inference.script = list(reading(f"my cat\n{SEEN}"))
    await delivered(gateway, "my cat")
    alice = Principal(await gateway.user(ALICE))

    await admin.edit_message(alice, "msg-1", "")
    assert user_turns(memory) == [SEEN]


@pytest.mark.usefixtures("lilith")
async def test_an_edit_leaving_nothing_is_refused(
    gateway: Gateway, admin: Admin, memory: FakeMemory
) -> None:
    events = [event async for event in gateway.generate(command("hello"))]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    await gateway.confirm_delivery(accepted.job_id, ["answer-1"])
    alice = Principal(await gateway.user(ALICE))

    with pytest.raises(InvalidArgument) as empty:
        await admin.edit_message(alice, "msg-1", "  ")
    assert empty.value.field == "content"
    await admin.edit_message(alice, "msg-1", "hello there")  # no file: the text alone
    assert user_turns(memory) == ["hello there"]


@pytest.mark.usefixtures("lilith")
async def test_only_the_author_edits(
    gateway: Gateway, admin: Admin, inference: FakeInference, memory: FakeMemory
) -> None:
    inference.script = list(reading(f"my cat\n{SEEN}"))
    await delivered(gateway, "my cat")
    with pytest.raises(PermissionDenied) as denied:
        await admin.edit_message(Principal(await gateway.user(BOB)), "msg-1", "his cat")
    assert denied.value.reason == "NOT_AUTHOR"
    assert user_turns(memory) == [f"my cat\n{SEEN}"]


@pytest.mark.usefixtures("lilith")
async def test_a_message_two_personalities_answered_edits_the_newest_turn_with_its_reading(
    gateway: Gateway,
    admin: Admin,
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
) -> None:
    """Each exchange's reading is its own (a description read again): the edited turn keeps
    the one its own job saw."""
    await store.import_personality(seed("sage"), owner_user_id=None)
    inference.script = list(reading(f"my cat\n{SEEN}"))
    await delivered(gateway, "my cat", personality="lilith")
    inference.script = list(reading("my cat\n[Image cat.png: a cat on a sofa]"))
    await delivered(gateway, "my cat", personality="sage")

    await admin.edit_message(Principal(await gateway.user(ALICE)), "msg-1", "our cat")
    assert user_turns(memory) == [f"my cat\n{SEEN}", "our cat\n[Image cat.png: a cat on a sofa]"]
