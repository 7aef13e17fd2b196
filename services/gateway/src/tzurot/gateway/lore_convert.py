"""proto <-> domain for character cards and lorebooks (convert.py's part for issue 20)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.gateway.cards.lore_numbers import INT32_MAX, clamp, int32, timed
from tzurot.gateway.cards.lorebooks import LoreEntry
from tzurot.gateway.lore import (
    LoreActivation,
    LoreContext,
    LoreState,
    Scope,
    StoredLorebook,
    TimedEffect,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf

_LOGIC = {
    "AND_ANY": common.LORE_LOGIC_UNSPECIFIED,
    "NOT_ALL": common.LORE_LOGIC_NOT_ALL,
    "NOT_ANY": common.LORE_LOGIC_NOT_ANY,
    "AND_ALL": common.LORE_LOGIC_AND_ALL,
}
_POSITION = {
    "before_char": common.LORE_POSITION_UNSPECIFIED,
    "after_char": common.LORE_POSITION_AFTER_CHAR,
    "at_depth": common.LORE_POSITION_AT_DEPTH,
}
_ROLE = {"system": common.ROLE_SYSTEM, "user": common.ROLE_USER, "assistant": common.ROLE_ASSISTANT}
SCOPE_PROTO: dict[Scope, common.LoreScope.ValueType] = {
    "personality": common.LORE_SCOPE_PERSONALITY,
    "channel": common.LORE_SCOPE_CHANNEL,
    "global": common.LORE_SCOPE_GLOBAL,
}
SCOPE_NAME: dict[int, Scope] = {number: name for name, number in SCOPE_PROTO.items()}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def struct(data: Mapping[str, Any]) -> Struct:
    message = Struct()
    if data:
        json_format.ParseDict(dict(data), message)
    return message


def from_struct(message: Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


# ---- personality card fields ----


def character_card(card: Mapping[str, Any]) -> common.CharacterCard:
    return common.CharacterCard(
        nickname=str(card.get("nickname") or ""),
        first_message=str(card.get("first_mes") or ""),
        alternate_greetings=[str(g) for g in card.get("alternate_greetings") or ()],
        group_only_greetings=[str(g) for g in card.get("group_only_greetings") or ()],
        creator_notes=str(card.get("creator_notes") or ""),
        creator_notes_multilingual={
            str(k): str(v) for k, v in (card.get("creator_notes_multilingual") or {}).items()
        },
        tags=[str(tag) for tag in card.get("tags") or ()],
        creator=str(card.get("creator") or ""),
        character_version=str(card.get("character_version") or ""),
        extensions=struct(card.get("extensions") or {}),
        assets=[
            common.CardAsset(
                type=str(a.get("type", "")),
                uri=str(a.get("uri", "")),
                name=str(a.get("name", "")),
                ext=str(a.get("ext", "")),
            )
            for a in card.get("assets") or ()
        ],
        source=[str(s) for s in card.get("source") or ()],
        # clamped: a card stored before import bounded its dates still converts
        creation_date=clamp(int(card.get("creation_date") or 0), _INT64_MIN, _INT64_MAX),
        modification_date=clamp(int(card.get("modification_date") or 0), _INT64_MIN, _INT64_MAX),
        unknown_fields=struct(card.get("unknown_fields") or {}),
        unknown_card_fields=struct(card.get("card_unknown_fields") or {}),
    )


# ---- lorebooks ----


def lore_entry(entry: LoreEntry) -> common.LoreEntry:
    """The entry as a proto; its numbers clamped into their fields (import bounds them, see
    `lore_numbers`, but a book stored before that may hold larger ones)."""
    message = common.LoreEntry(
        uid=entry.uid,
        keys=entry.keys,
        secondary_keys=entry.secondary_keys,
        logic=_LOGIC[entry.logic],
        content=entry.content,
        comment=entry.comment,
        name=entry.name,
        constant=entry.constant,
        disabled=not entry.enabled,
        order=int32(entry.order),
        position=_POSITION[entry.position],
        depth=int32(entry.depth),
        role=_ROLE[entry.role],
        skip_probability=not entry.use_probability,
        use_regex=entry.use_regex,
        sticky=timed(entry.sticky),
        cooldown=timed(entry.cooldown),
        delay=timed(entry.delay),
        exclude_recursion=entry.exclude_recursion,
        prevent_recursion=entry.prevent_recursion,
        delay_until_recursion=timed(entry.delay_until_recursion),
        extensions=struct(entry.extensions),
    )
    if entry.priority is not None:
        message.priority = int32(entry.priority)
    if entry.probability != 100:
        message.probability = entry.probability
    if entry.case_sensitive is not None:
        message.case_sensitive = entry.case_sensitive
    if entry.match_whole_words is not None:
        message.match_whole_words = entry.match_whole_words
    if entry.scan_depth is not None:
        message.scan_depth = int32(entry.scan_depth)
    return message


def lorebook(stored: StoredLorebook, *, with_entries: bool = True) -> common.Lorebook:
    book = stored.book
    message = common.Lorebook(
        id=stored.id,
        name=book.name,
        description=book.description,
        recursive_scanning=book.recursive_scanning,
        entries=[lore_entry(e) for e in book.entries] if with_entries else [],
        extensions=struct(book.extensions),
        owner_user_id=stored.owner_user_id or "",
        attachments=[
            common.LorebookAttachment(scope=SCOPE_PROTO[scope], target=target)
            for scope, target in stored.attachments
        ],
        entry_count=len(book.entries),
    )
    if book.scan_depth is not None:
        message.scan_depth = book.scan_depth
    if book.token_budget is not None:
        message.token_budget = min(book.token_budget, INT32_MAX)
    for name in ("created_at", "updated_at"):
        when = getattr(stored, name)
        if when is not None:
            stamp = Timestamp()
            stamp.FromDatetime(when)
            getattr(message, name).CopyFrom(stamp)
    return message


def lore_context(context: LoreContext) -> inf.LoreContext:
    return inf.LoreContext(
        lorebooks=[
            inf.ScopedLorebook(scope=SCOPE_PROTO[scope], lorebook=lorebook(stored))
            for scope, stored in context.books
        ],
        state=common.LoreState(
            message_count=context.state.message_count,
            effects=[
                common.LoreTimedEffect(
                    lorebook_id=e.lorebook_id,
                    entry_uid=e.entry_uid,
                    kind=e.kind,
                    start=e.start,
                    end=e.end,
                    protected=e.protected,
                )
                for e in context.state.effects
            ],
        ),
    )


def lore_state(message: common.LoreState) -> LoreState:
    return LoreState(
        message_count=message.message_count,
        effects=tuple(
            TimedEffect(e.lorebook_id, e.entry_uid, e.kind, e.start, e.end, e.protected)
            for e in message.effects
        ),
    )


def lore_activation(message: common.LoreActivation) -> LoreActivation:
    return LoreActivation(
        lorebook_id=message.lorebook_id,
        lorebook_name=message.lorebook_name,
        entry_uid=message.entry_uid,
        entry_label=message.entry_label,
        reason=message.reason,
        dropped=message.dropped,
        tokens=message.tokens,
    )


def lore_activation_proto(activation: LoreActivation) -> common.LoreActivation:
    return common.LoreActivation(**vars(activation))
