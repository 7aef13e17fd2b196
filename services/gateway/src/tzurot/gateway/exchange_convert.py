"""A delivered exchange's turns as memory's StoreExchange takes them."""

from __future__ import annotations

from collections.abc import Sequence

from tzurot.gateway import domain as d
from tzurot.gateway.message_convert import attachment_proto
from tzurot.v1 import common_pb2 as common

TURN_ROLES = {"user": common.ROLE_USER, "assistant": common.ROLE_ASSISTANT}


def exchange_turns(
    turns: Sequence[d.HistoryTurn], *, job_id: str, conversation_id: str, personality_id: str
) -> list[common.Turn]:
    """The turns of one delivered exchange, as memory's StoreExchange takes them."""
    return [
        common.Turn(
            role=TURN_ROLES[turn.role],
            author_id=turn.author_id,
            author_name=turn.author_name,
            content=turn.content,
            message_ids=list(turn.message_ids),
            personality_id=personality_id,
            channel_id=conversation_id,
            job_id=job_id,
            attachments=[attachment_proto(a) for a in turn.attachments],
        )
        for turn in turns
    ]
