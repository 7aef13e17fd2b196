"""proto <-> lore model (what gateway sends, what goes back in the reply)."""

from __future__ import annotations

from typing import Any, get_args

from google.protobuf import json_format, struct_pb2

from tzurot.inference.lore.model import (
    Activation,
    Book,
    EffectKind,
    Entry,
    LoreState,
    TimedEffect,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf

_LOGIC = {
    common.LORE_LOGIC_UNSPECIFIED: "AND_ANY",
    common.LORE_LOGIC_NOT_ALL: "NOT_ALL",
    common.LORE_LOGIC_NOT_ANY: "NOT_ANY",
    common.LORE_LOGIC_AND_ALL: "AND_ALL",
}
_POSITION = {
    common.LORE_POSITION_UNSPECIFIED: "before_char",
    common.LORE_POSITION_AFTER_CHAR: "after_char",
    common.LORE_POSITION_AT_DEPTH: "at_depth",
}
_ROLE = {common.ROLE_USER: "user", common.ROLE_ASSISTANT: "assistant"}
_SCOPE = {
    common.LORE_SCOPE_CHANNEL: "channel",
    common.LORE_SCOPE_PERSONALITY: "personality",
    common.LORE_SCOPE_GLOBAL: "global",
}
_KINDS = set(get_args(EffectKind))


def entry(msg: common.LoreEntry) -> Entry:
    return Entry(
        uid=msg.uid,
        keys=tuple(msg.keys),
        secondary_keys=tuple(msg.secondary_keys),
        logic=_LOGIC.get(msg.logic, "AND_ANY"),  # type: ignore[arg-type]
        content=msg.content,
        comment=msg.comment or msg.name,
        constant=msg.constant,
        enabled=not msg.disabled,
        order=msg.order,
        priority=msg.priority if msg.HasField("priority") else None,
        position=_POSITION.get(msg.position, "before_char"),  # type: ignore[arg-type]
        depth=max(0, msg.depth),
        role=_ROLE.get(msg.role, "system"),  # type: ignore[arg-type]
        probability=min(100, max(0, msg.probability)) if msg.HasField("probability") else 100,
        use_probability=not msg.skip_probability,
        case_sensitive=msg.case_sensitive if msg.HasField("case_sensitive") else None,
        match_whole_words=msg.match_whole_words if msg.HasField("match_whole_words") else None,
        use_regex=msg.use_regex,
        scan_depth=msg.scan_depth if msg.HasField("scan_depth") else None,
        sticky=max(0, msg.sticky),
        cooldown=max(0, msg.cooldown),
        delay=max(0, msg.delay),
        exclude_recursion=msg.exclude_recursion,
        prevent_recursion=msg.prevent_recursion,
        delay_until_recursion=max(0, msg.delay_until_recursion),
        **_group_fields(msg.extensions),
    )


def _group_fields(extensions: struct_pb2.Struct) -> dict[str, Any]:
    """Inclusion-group fields as SillyTavern keeps them: snake_case in a card entry's
    extensions, camelCase in a world info entry."""
    ext = json_format.MessageToDict(extensions)

    def value(snake: str, camel: str) -> Any:
        return ext.get(snake, ext.get(camel))

    names = str(value("group", "group") or "")
    weight = value("group_weight", "groupWeight")
    try:
        weight_value = abs(int(float(weight))) if weight is not None else 100
    except (TypeError, ValueError):
        weight_value = 100
    return {
        "group": tuple(n.strip() for n in names.split(",") if n.strip()),
        "group_override": bool(value("group_override", "groupOverride")),
        "group_weight": weight_value,
        "use_group_scoring": bool(value("use_group_scoring", "useGroupScoring")),
    }


def books(msg: inf.LoreContext) -> tuple[Book, ...]:
    return tuple(
        Book(
            id=scoped.lorebook.id,
            name=scoped.lorebook.name,
            entries=tuple(entry(e) for e in scoped.lorebook.entries),
            scan_depth=scoped.lorebook.scan_depth
            if scoped.lorebook.HasField("scan_depth")
            else None,
            token_budget=(
                scoped.lorebook.token_budget if scoped.lorebook.HasField("token_budget") else None
            ),
            recursive_scanning=scoped.lorebook.recursive_scanning,
            scope=_SCOPE.get(scoped.scope, "personality"),
        )
        for scoped in msg.lorebooks
    )


def state(msg: common.LoreState) -> tuple[int, LoreState]:
    effects = tuple(
        TimedEffect(e.lorebook_id, e.entry_uid, e.kind, e.start, e.end, e.protected)  # type: ignore[arg-type]
        for e in msg.effects
        if e.kind in _KINDS
    )
    return msg.message_count, LoreState(effects=effects)


def state_proto(message_count: int, lore: LoreState) -> common.LoreState:
    return common.LoreState(
        message_count=message_count,
        effects=[
            common.LoreTimedEffect(
                lorebook_id=e.book_id,
                entry_uid=e.uid,
                kind=e.kind,
                start=e.start,
                end=e.end,
                protected=e.protected,
            )
            for e in lore.effects
        ],
    )


def activation_proto(item: Activation, *, dropped: bool) -> common.LoreActivation:
    return common.LoreActivation(
        lorebook_id=item.book_id,
        lorebook_name=item.book_name,
        entry_uid=item.entry.uid,
        entry_label=item.entry.comment or item.entry.uid,
        reason=item.reason,
        dropped=dropped,
        tokens=item.tokens,
    )
