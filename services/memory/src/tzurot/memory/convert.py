"""Proto <-> domain mappings for MemoryService: turns, memories, modes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.memory.domain import (
    Attachment,
    MemoryMode,
    NewTurn,
    ReplyContext,
    ReplyContextQuery,
    Role,
    StoredMemory,
    StoredTurn,
)
from tzurot.runtime.timestamps import to_datetime, to_timestamp
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

_ROLE_TO_PROTO = {
    Role.USER: common.ROLE_USER,
    Role.ASSISTANT: common.ROLE_ASSISTANT,
    Role.SYSTEM: common.ROLE_SYSTEM,
}
_ROLE_FROM_PROTO = {value: role.value for role, value in _ROLE_TO_PROTO.items()}


def timestamp(value: datetime) -> Timestamp:
    return to_timestamp(value)


def optional_datetime(message: Message, field: str) -> datetime | None:
    """The Timestamp field `field` of `message` as an aware UTC datetime; None when unset."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return to_datetime(stamp)


def role_name(role: common.Role.ValueType) -> str:
    """The domain name of a proto role; "unspecified" for anything validation must refuse."""
    return _ROLE_FROM_PROTO.get(role, "unspecified")


def attachment(message: common.Attachment) -> Attachment:
    return Attachment(
        url=message.url,
        content_type=message.content_type,
        filename=message.filename,
        size_bytes=message.size_bytes,
        description=message.description,
    )


def new_turn(message: common.Turn) -> NewTurn:
    """A turn to store. Its id, created_at and place fields are ignored: the exchange's win."""
    return NewTurn(
        role=role_name(message.role),
        content=message.content,
        author_id=message.author_id,
        author_name=message.author_name,
        message_ids=tuple(message.message_ids),
        attachments=tuple(attachment(a) for a in message.attachments),
    )


def turn(stored: StoredTurn) -> common.Turn:
    return _build_turn(common.Turn, stored)


def turns(stored: list[StoredTurn]) -> list[common.Turn]:
    return [turn(item) for item in stored]


def add_turns(
    field: RepeatedCompositeFieldContainer[common.Turn], stored: list[StoredTurn]
) -> None:
    """Appends the turns to a reply's repeated `turns` field, each built in place (a Turn
    built apart and handed to the reply's constructor is copied once more)."""
    for item in stored:
        _build_turn(field.add, item)


def _build_turn(make: Callable[..., common.Turn], stored: StoredTurn) -> common.Turn:
    """`make` (a constructor, or a repeated field's `add`) called with the turn's fields."""
    message = make(
        id=stored.id,
        role=_ROLE_TO_PROTO[stored.role],
        author_id=stored.author_id,
        author_name=stored.author_name,
        content=stored.content,
        message_ids=stored.message_ids,
        created_at=timestamp(stored.created_at),
        personality_id=stored.personality_id,
        channel_id=stored.channel_id,
        job_id=stored.job_id,
    )
    for a in stored.attachments:  # most turns have none: no list built for them
        message.attachments.add(
            url=a.url,
            content_type=a.content_type,
            filename=a.filename,
            size_bytes=a.size_bytes,
            description=a.description,
        )
    return message


_SECTOR_TO_PROTO = {
    "episodic": common.MEMORY_SECTOR_EPISODIC,
    "semantic": common.MEMORY_SECTOR_SEMANTIC,
    "procedural": common.MEMORY_SECTOR_PROCEDURAL,
    "emotional": common.MEMORY_SECTOR_EMOTIONAL,
    "reflective": common.MEMORY_SECTOR_REFLECTIVE,
}
_SECTOR_FROM_PROTO = {value: name for name, value in _SECTOR_TO_PROTO.items()}


def sector_name(sector: common.MemorySector.ValueType) -> str:
    """The domain sector name; "" (classify from the text) for UNSPECIFIED or unknown."""
    return _SECTOR_FROM_PROTO.get(sector, "")


def sector(name: str) -> common.MemorySector.ValueType:
    return _SECTOR_TO_PROTO.get(name, common.MEMORY_SECTOR_UNSPECIFIED)


def memory(stored: StoredMemory) -> common.Memory:
    return _build_memory(common.Memory, stored)


def _build_memory(make: Callable[..., common.Memory], stored: StoredMemory) -> common.Memory:
    """`make` (a constructor, or a repeated field's `add`) called with the memory's fields."""
    return make(
        id=stored.id,
        personality_id=stored.personality_id,
        user_id=stored.user_id,
        text=stored.text,
        sector=sector(stored.sector),
        salience=stored.salience,
        created_at=timestamp(stored.created_at),
        last_accessed_at=timestamp(stored.last_accessed_at),
        source_turn_ids=stored.source_turn_ids,
        score=stored.score,
        tags=stored.tags,
        superseded_by=stored.superseded_by,
    )


def memory_mode(mode: MemoryMode) -> mem.MemoryMode:
    message = mem.MemoryMode()
    if mode.incognito_until is not None:
        message.incognito_until.CopyFrom(timestamp(mode.incognito_until))
    if mode.fresh_since is not None:
        message.fresh_since.CopyFrom(timestamp(mode.fresh_since))
    return message


def reply_context_query(request: mem.GetReplyContextRequest) -> ReplyContextQuery:
    return ReplyContextQuery(
        channel_id=request.channel_id,
        personality_id=request.personality_id,
        history_limit=request.history_limit,
        user_id=request.user_id,
        query=request.query,
        memory_limit=request.memory_limit,
        threshold=request.threshold,
        whole_channel=request.whole_channel,
        query_author=request.query_author,
    )


def reply_context(found: ReplyContext) -> mem.GetReplyContextResponse:
    """The reply built in place: each turn and memory added to its repeated field."""
    reply = mem.GetReplyContextResponse(memories_unavailable=found.memories_unavailable)
    add_turns(reply.turns, found.turns)
    for item in found.memories:
        _build_memory(reply.memories.add, item)
    return reply
