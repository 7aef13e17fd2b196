"""Proto <-> domain mappings: roles, attachments, timestamps."""

from datetime import UTC, datetime

from tzurot.memory import convert
from tzurot.memory.domain import Attachment, Role, StoredTurn
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem


def test_roles_map_both_ways() -> None:
    assert convert.role_name(common.ROLE_USER) == "user"
    assert convert.role_name(common.ROLE_ASSISTANT) == "assistant"
    assert convert.role_name(common.ROLE_SYSTEM) == "system"
    assert convert.role_name(common.ROLE_UNSPECIFIED) == "unspecified"


def test_new_turn_ignores_the_place_fields() -> None:
    message = common.Turn(
        id="ignored",
        role=common.ROLE_USER,
        author_id="1",
        author_name="Alice",
        content="hi",
        message_ids=["10", "11"],
        channel_id="ignored",
        attachments=[common.Attachment(url="u", filename="f", size_bytes=3)],
    )
    turn = convert.new_turn(message)
    assert turn.role == "user"
    assert turn.message_ids == ("10", "11")
    assert turn.attachments == (Attachment(url="u", filename="f", size_bytes=3),)


def test_stored_turn_to_proto() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    stored = StoredTurn(
        id="t1",
        job_id="j",
        position=1,
        channel_id="c",
        personality_id="p",
        user_id="u",
        role=Role.ASSISTANT,
        author_id="",
        author_name="Lilith",
        content="answer",
        message_ids=("1", "2"),
        attachments=(Attachment(url="u", description="d"),),
        created_at=at,
    )
    message = convert.turn(stored)
    assert message.role == common.ROLE_ASSISTANT
    assert (message.id, message.job_id, message.channel_id, message.personality_id) == (
        "t1",
        "j",
        "c",
        "p",
    )
    assert list(message.message_ids) == ["1", "2"]
    assert message.attachments[0].description == "d"
    assert message.created_at.ToDatetime(tzinfo=UTC) == at


def test_optional_datetime() -> None:
    assert convert.optional_datetime(mem.GetHistoryRequest(), "before") is None
    at = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)
    request = mem.GetHistoryRequest(before=convert.timestamp(at))
    assert convert.optional_datetime(request, "before") == at
