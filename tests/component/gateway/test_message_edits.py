"""EditMessage: the author's edit changes what they typed in every user turn posted as the
message; what inference read of the message's files (an image's description, a voice
message's transcript) stays, unless the edit took the file off the message."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import (
    Actor,
    Attachment,
    AttachmentRead,
    JobAccepted,
    ReplyChunk,
    ReplyEvent,
    ReplyFinished,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.turn_edits import MessageEdit
from tzurot.runtime.errors import InvalidArgument, PermissionDenied, TzurotError, Unavailable

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

    await admin.edit_message(alice, "msg-1", MessageEdit("my cat is called Felix"))
    assert user_turns(memory) == [f"my cat is called Felix\n{SEEN}"]
    await admin.edit_message(alice, "msg-1", MessageEdit("my cat is called Felix, really"))  # again
    assert user_turns(memory) == [f"my cat is called Felix, really\n{SEEN}"]


@pytest.mark.usefixtures("lilith")
async def test_an_emptied_text_leaves_the_description_and_nothing_is_refused(
    gateway: Gateway, admin: Admin, inference: FakeInference, memory: FakeMemory
) -> None:
    inference.script = list(reading(f"my cat\n{SEEN}"))
    await delivered(gateway, "my cat")
    alice = Principal(await gateway.user(ALICE))

    await admin.edit_message(alice, "msg-1", MessageEdit(""))
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
        await admin.edit_message(alice, "msg-1", MessageEdit("  "))
    assert empty.value.field == "content"
    await admin.edit_message(alice, "msg-1", MessageEdit("hello there"))  # no file: the text alone
    assert user_turns(memory) == ["hello there"]


@pytest.mark.usefixtures("lilith")
async def test_only_the_author_edits(
    gateway: Gateway, admin: Admin, inference: FakeInference, memory: FakeMemory
) -> None:
    inference.script = list(reading(f"my cat\n{SEEN}"))
    await delivered(gateway, "my cat")
    with pytest.raises(PermissionDenied) as denied:
        await admin.edit_message(
            Principal(await gateway.user(BOB)), "msg-1", MessageEdit("his cat")
        )
    assert denied.value.reason == "NOT_AUTHOR"
    assert user_turns(memory) == [f"my cat\n{SEEN}"]


@pytest.mark.usefixtures("lilith")
async def test_a_message_two_personalities_answered_edits_both_turns_with_their_readings(
    gateway: Gateway,
    admin: Admin,
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
) -> None:
    """Each exchange's reading is its own (a description read again): each turn keeps the one
    its own job saw. In a group channel the prompt shows the oldest copy of the message:
    every copy is edited, so it shows the edit."""
    await store.import_personality(seed("sage"), owner_user_id=None)
    inference.script = list(reading(f"my cat\n{SEEN}"))
    await delivered(gateway, "my cat", personality="lilith")
    inference.script = list(reading("my cat\n[Image cat.png: a cat on a sofa]"))
    await delivered(gateway, "my cat", personality="sage")

    await admin.edit_message(Principal(await gateway.user(ALICE)), "msg-1", MessageEdit("our cat"))
    assert user_turns(memory) == [f"our cat\n{SEEN}", "our cat\n[Image cat.png: a cat on a sofa]"]


@pytest.mark.usefixtures("lilith")
async def test_a_turn_the_edit_would_empty_names_its_files_not_the_removed_text(
    gateway: Gateway,
    admin: Admin,
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
) -> None:
    """Sage's job read nothing (a model with vision saw the image): emptied, its turn names
    the image, keeping none of the text the user removed; Lilith's keeps its image's
    description. The image taken off too, Sage's turn says its text was removed."""
    await store.import_personality(seed("sage"), owner_user_id=None)
    inference.script = list(reading(f"my cat\n{SEEN}"))
    await delivered(gateway, "my cat", personality="lilith")
    inference.script = list(reading("my cat"))
    await delivered(gateway, "my cat", personality="sage")
    alice = Principal(await gateway.user(ALICE))

    await admin.edit_message(alice, "msg-1", MessageEdit(""))
    assert user_turns(memory) == [SEEN, "[Image cat.png]"]
    await admin.edit_message(alice, "msg-1", MessageEdit("", files=[CAT.url]))
    assert user_turns(memory) == [SEEN, "[Image cat.png]"]


@pytest.mark.usefixtures("lilith")
async def test_an_image_seen_by_a_vision_model_alone_is_named_when_the_text_goes(
    gateway: Gateway, admin: Admin, inference: FakeInference, memory: FakeMemory
) -> None:
    """Once refused (every turn empty), leaving the removed text in history."""
    inference.script = list(reading("my secret"))
    await delivered(gateway, "my secret")
    await admin.edit_message(Principal(await gateway.user(ALICE)), "msg-1", MessageEdit(""))
    assert user_turns(memory) == ["[Image cat.png]"]


@pytest.mark.usefixtures("lilith")
async def test_a_regeneration_key_claimed_again_asks_and_keeps_the_new_text(
    gateway: Gateway,
    admin: Admin,
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
) -> None:
    """A job failed retryably is claimed again under its key (an older bot's 🔄 after an
    edit): its row keeps what this attempt asks, so a later edit still finds the readings."""
    inference.script = []
    inference.error = Unavailable("inference is restarting")
    first = command("my cat is called Tom", key="msg-1:lilith#regen1")
    first = dataclasses.replace(first, message_ids=("msg-1",), attachments=(CAT,))
    with contextlib.suppress(TzurotError):
        _ = [event async for event in gateway.generate(first)]
    inference.error = None
    inference.script = list(reading(f"my cat is called Felix\n{SEEN}"))
    again = dataclasses.replace(first, content="my cat is called Felix")
    events = [event async for event in gateway.generate(again)]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    await gateway.confirm_delivery(accepted.job_id, ["answer-lilith"])
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.request_content == "my cat is called Felix"

    edit = MessageEdit("my cat is Felix", files=[CAT.url])
    await admin.edit_message(Principal(await gateway.user(ALICE)), "msg-1", edit)
    assert user_turns(memory) == [f"my cat is Felix\n{SEEN}"]


def read_by_a_helper() -> list[ReplyEvent]:
    """An answer whose image a helper model described (the job keeps what it read)."""
    described = dataclasses.replace(CAT, description="a grey cat asleep on a red sofa")
    return [AttachmentRead(0, described, (USAGE,)), *reading(f"my cat is called Tom\n{SEEN}")]


@pytest.mark.usefixtures("lilith")
async def test_a_file_the_edit_took_off_leaves_its_reading(
    gateway: Gateway, admin: Admin, inference: FakeInference, memory: FakeMemory
) -> None:
    inference.script = read_by_a_helper()
    await delivered(gateway, "my cat is called Tom")
    alice = Principal(await gateway.user(ALICE))

    shown = MessageEdit("my cat is called Felix", files=[f"{CAT.url}?ex=1234"])  # re-signed
    await admin.edit_message(alice, "msg-1", shown)
    assert user_turns(memory) == [f"my cat is called Felix\n{SEEN}"]
    await admin.edit_message(alice, "msg-1", MessageEdit("I have no cat", files=[]))
    assert user_turns(memory) == ["I have no cat"]


@pytest.mark.usefixtures("lilith")
async def test_readings_not_made_by_file_stay_whatever_the_files(
    gateway: Gateway, admin: Admin, inference: FakeInference, memory: FakeMemory
) -> None:
    """No reading kept on the job (an older gateway's): which file a line reads cannot be
    told, so none is dropped."""
    inference.script = list(reading(f"my cat is called Tom\n{SEEN}"))
    await delivered(gateway, "my cat is called Tom")

    edit = MessageEdit("I have no cat", files=[])
    await admin.edit_message(Principal(await gateway.user(ALICE)), "msg-1", edit)
    assert user_turns(memory) == [f"I have no cat\n{SEEN}"]
