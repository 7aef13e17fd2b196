"""A client's message and what it carries, both ways: common.proto's actor, location,
attachments and referenced messages, gateway's GenerateRequest, and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.gateway import domain as d
from tzurot.runtime.timestamps import to_timestamp
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    return to_timestamp(value)


def actor(msg: common.Actor) -> d.Actor:
    return d.Actor(platform_user_id=msg.user_id, display_name=msg.display_name or msg.user_id)


def location(msg: common.Location) -> d.Location:
    return d.Location(
        guild_id=msg.guild_id,
        channel_id=msg.channel_id,
        thread_id=msg.thread_id,
        nsfw_channel=msg.nsfw_channel,
    )


def attachment(msg: common.Attachment) -> d.Attachment:
    return d.Attachment(
        url=msg.url,
        content_type=msg.content_type,
        filename=msg.filename,
        size_bytes=msg.size_bytes,
        description=msg.description,
    )


def referenced_message(msg: common.ReferencedMessage) -> d.ReferencedMessage:
    return d.ReferencedMessage(
        message_id=msg.message_id,
        author_id=msg.author_id,
        author_name=msg.author_name,
        content=msg.content,
        created_at=msg.created_at.ToDatetime(tzinfo=UTC) if msg.HasField("created_at") else None,
        attachments=tuple(attachment(a) for a in msg.attachments),
        depth=msg.depth,
    )


def generate_command(req: gw.GenerateRequest) -> d.GenerateCommand:
    return d.GenerateCommand(
        actor=actor(req.actor),
        location=location(req.location),
        personality=req.personality,
        content=req.content,
        idempotency_key=req.idempotency_key,
        message_ids=tuple(req.message_ids),
        references=tuple(referenced_message(r) for r in req.references),
        attachments=tuple(attachment(a) for a in req.attachments),
        # include_reasoning: an older client's name for it (it no longer keeps anything).
        show_reasoning=req.show_reasoning or req.include_reasoning,
        mentions=tuple(
            d.Mention(kind=m.kind, id=m.id, name=m.name, description=m.description)
            for m in req.mentions[:MAX_MENTIONS]
        ),
        turn_id=req.turn_id,
        round_id=req.round_id,
        replaces_job_id=req.replaces_job_id.strip(),
    )


MAX_MENTIONS = 20


def attachment_proto(a: d.Attachment) -> common.Attachment:
    return common.Attachment(
        url=a.url,
        content_type=a.content_type,
        filename=a.filename,
        size_bytes=a.size_bytes,
        description=a.description,
    )


def referenced_message_proto(m: d.ReferencedMessage) -> common.ReferencedMessage:
    return common.ReferencedMessage(
        message_id=m.message_id,
        author_id=m.author_id,
        author_name=m.author_name,
        content=m.content,
        created_at=timestamp(m.created_at),
        attachments=[attachment_proto(a) for a in m.attachments],
        depth=m.depth,
    )
