"""Proto <-> domain mappings: roles, attachments, timestamps."""

from datetime import UTC, datetime

from tzurot.memory import convert
from tzurot.memory.domain import Attachment, ReplyContext, Role, StoredMemory, StoredTurn
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


_AT = datetime(2025, 1, 2, 3, 4, 5, 600_001, tzinfo=UTC)


def _stored(turn_id: str, role: Role, attachments: tuple[Attachment, ...] = ()) -> StoredTurn:
    return StoredTurn(
        id=turn_id,
        job_id=f"job-{turn_id}",
        position=0,
        channel_id="chan",
        personality_id="persona",
        user_id="u",
        role=role,
        author_id=f"author-{turn_id}",
        author_name=f"name-{turn_id}",
        content=f"content of {turn_id}",
        message_ids=(f"m-{turn_id}", "m2") if attachments else (),
        attachments=attachments,
        created_at=_AT,
    )


def _golden_turn(turn_id: str, role: common.Role.ValueType, **rest: object) -> common.Turn:
    """A Turn set field by field: what `convert.turn` must build."""
    message = common.Turn()
    message.id = turn_id
    message.role = role
    message.author_id = f"author-{turn_id}"
    message.author_name = f"name-{turn_id}"
    message.content = f"content of {turn_id}"
    message.created_at.seconds = 1_735_787_045
    message.created_at.nanos = 600_001_000
    message.personality_id = "persona"
    message.channel_id = "chan"
    message.job_id = f"job-{turn_id}"
    for name, value in rest.items():
        getattr(message, name).extend(value)
    return message


_ATTACHMENTS = (
    Attachment(url="https://a/1", content_type="image/png", filename="1.png", size_bytes=7),
    Attachment(url="https://a/2", description="a cat"),
)
_GOLDEN_ATTACHMENTS = [
    common.Attachment(url="https://a/1", content_type="image/png", filename="1.png", size_bytes=7),
    common.Attachment(url="https://a/2", description="a cat"),
]


def test_reply_context_to_proto_golden() -> None:
    """Every field of every turn and memory, against a reply set field by field (the reply
    is built in place: each turn and memory added to its repeated field)."""
    found = ReplyContext(
        turns=[
            _stored("t1", Role.USER, _ATTACHMENTS),
            _stored("t2", Role.ASSISTANT),
            _stored("t3", Role.SYSTEM),
        ],
        memories=[
            StoredMemory(
                id="m1",
                personality_id="persona",
                user_id="u",
                text="likes tea",
                sector="semantic",
                salience=0.75,
                created_at=_AT,
                last_accessed_at=datetime(2025, 2, 1, tzinfo=UTC),
                source_turn_ids=("t1", "t2"),
                score=0.5,
                tags=("lore_research",),
                superseded_by="m0",
                context="never sent",
            ),
        ],
        memories_unavailable=True,
    )
    golden = mem.GetReplyContextResponse()
    golden.turns.append(
        _golden_turn(
            "t1", common.ROLE_USER, message_ids=["m-t1", "m2"], attachments=_GOLDEN_ATTACHMENTS
        )
    )
    golden.turns.append(_golden_turn("t2", common.ROLE_ASSISTANT))
    golden.turns.append(_golden_turn("t3", common.ROLE_SYSTEM))
    memory = golden.memories.add()
    memory.id = "m1"
    memory.personality_id = "persona"
    memory.user_id = "u"
    memory.text = "likes tea"
    memory.sector = common.MEMORY_SECTOR_SEMANTIC
    memory.salience = 0.75
    memory.created_at.CopyFrom(golden.turns[0].created_at)
    memory.last_accessed_at.seconds = 1_738_368_000
    memory.source_turn_ids.extend(["t1", "t2"])
    memory.score = 0.5
    memory.tags.append("lore_research")
    memory.superseded_by = "m0"
    golden.memories_unavailable = True

    reply = convert.reply_context(found)

    assert reply == golden
    assert reply.SerializeToString(deterministic=True) == golden.SerializeToString(
        deterministic=True
    )
    assert [convert.turn(turn) for turn in found.turns] == list(golden.turns)
    assert convert.turns(found.turns) == list(golden.turns)
    assert convert.memory(found.memories[0]) == golden.memories[0]


def test_an_empty_reply_context() -> None:
    assert convert.reply_context(ReplyContext([], [])) == mem.GetReplyContextResponse()
