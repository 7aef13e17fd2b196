"""The settings cascade: hardcoded → global → personality → channel → user → user-personality.

Each level may set any known key; the most specific level that sets a key wins, and the
resolved value says which level that was (for /inspect and /model show).

In a thread (or forum post) the channel level is the thread's own values over its parent
channel's: a key the thread does not set comes from the parent, so a moderator's
`voice_mode=off` on a channel holds in every thread under it (`stored_levels`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tzurot.gateway.domain import Attachment, ConfigSource, Location
from tzurot.runtime.errors import InvalidArgument, quoted

Json = bool | int | float | str


@dataclass(frozen=True)
class SettingSpec:
    default: Json
    check: Callable[[Any], Json]
    help: str
    allowed: str = ""  # the values it takes, in words
    choices: tuple[str, ...] = ()  # every value, when there are few (autocomplete)
    scopes: frozenset[ConfigSource] | None = None
    """The levels it may be set at (None: every one). A setting about what a user is shown
    of their own answers is theirs alone: no owner or channel may turn it on for them."""


YOURS_ALONE = frozenset({ConfigSource.USER, ConfigSource.USER_PERSONALITY})


def _whole(default: int, low: int, high: int, help_: str) -> SettingSpec:
    return SettingSpec(default, _int(low, high), help_, f"a whole number from {low} to {high}")


def _fraction(default: float, low: float, high: float, help_: str) -> SettingSpec:
    return SettingSpec(default, _float(low, high), help_, f"a number from {low} to {high}")


def _flag(default: bool, help_: str) -> SettingSpec:
    return SettingSpec(default, _bool, help_, "true or false", ("true", "false"))


def _one_of(default: str, options: tuple[str, ...], help_: str) -> SettingSpec:
    return SettingSpec(default, _choice(*options), help_, f"one of {', '.join(options)}", options)


def _int(low: int, high: int) -> Callable[[Any], Json]:
    def check(value: Any) -> Json:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError("a whole number")
        if not low <= value <= high:
            raise ValueError(f"between {low} and {high}")
        return int(value)

    return check


def _float(low: float, high: float) -> Callable[[Any], Json]:
    def check(value: Any) -> Json:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("a number")
        if not low <= value <= high:
            raise ValueError(f"between {low} and {high}")
        return float(value)

    return check


def _bool(value: Any) -> Json:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _choice(*options: str) -> Callable[[Any], Json]:
    def check(value: Any) -> Json:
        if value not in options:
            raise ValueError(f"one of {', '.join(options)}")
        return str(value)

    return check


MAX_HISTORY_MESSAGES = "max_history_messages"
MAX_IMAGES = "max_images"
MAX_AUDIO = "max_audio"
MEMORY_THRESHOLD = "memory_threshold"
MEMORY_LIMIT = "memory_limit"
MODEL_FOOTER = "model_footer"
KEEP_REASONING = "keep_reasoning"
SHOW_REASONING = "show_reasoning"
VOICE_MODE = "voice_mode"
VOICE_MAX_CHARACTERS = "voice_max_characters"
GROUP_MAX_SPEAKERS = "group_max_speakers"
GROUP_CHAIN_CAP = "group_chain_cap"
GROUP_CHAIN_COOLDOWN_SECONDS = "group_chain_cooldown_seconds"

SPECS: Mapping[str, SettingSpec] = {
    MAX_HISTORY_MESSAGES: _whole(50, 1, 100, "history turns put in a prompt"),
    MAX_IMAGES: _whole(10, 0, 10, "images of a message described for the model"),
    MAX_AUDIO: _whole(3, 0, 10, "voice messages and audio files transcribed"),
    MEMORY_THRESHOLD: _fraction(0.5, 0.0, 1.0, "least relevance of a recalled memory"),
    MEMORY_LIMIT: _whole(20, 0, 100, "most memories recalled per message"),
    MODEL_FOOTER: _flag(False, "show the answering model under each answer"),
    # Yours alone, both: the reasoning may restate your memories and the personality's
    # prompt, so no owner, channel or superuser may keep it (readable by superusers in
    # Inspect) nor post it under everyone's answers.
    KEEP_REASONING: replace(
        _flag(False, "keep the model's reasoning for Inspect (yours and superusers' to read)"),
        scopes=YOURS_ALONE,
    ),
    SHOW_REASONING: replace(
        _flag(
            False,
            "show the model's reasoning as a spoiler under answers to you (never in history)",
        ),
        scopes=YOURS_ALONE,
    ),
    VOICE_MODE: _one_of(
        "auto",
        ("off", "auto", "always"),
        "answer with voice: off; auto (the personality's frequency); always. A channel set "
        "to off forbids voice there",
    ),
    VOICE_MAX_CHARACTERS: _whole(
        1000, 1, 10_000, "most characters of one answer spoken (the operator's cap applies)"
    ),
    GROUP_MAX_SPEAKERS: _whole(
        2, 1, 10, "group channels: most personalities answering one message"
    ),
    GROUP_CHAIN_CAP: _whole(
        2, 0, 10, "group channels: most replies of personalities to each other in a row"
    ),
    GROUP_CHAIN_COOLDOWN_SECONDS: _whole(
        10, 0, 3600, "group channels: seconds before a personality answers another"
    ),
}

SCOPES = (
    ConfigSource.GLOBAL,
    ConfigSource.PERSONALITY,
    ConfigSource.CHANNEL,
    ConfigSource.USER,
    ConfigSource.USER_PERSONALITY,
)
"""Levels stored in `core.settings`, lowest precedence first (HARDCODED lives in code)."""


@dataclass(frozen=True)
class ResolvedSetting:
    key: str
    value: Json
    source: ConfigSource


def check_scope(key: str, scope: ConfigSource) -> None:
    """InvalidArgument when `key` may not be set (or reset) at `scope`."""
    spec = SPECS.get(key)
    if spec is not None and spec.scopes is not None and scope not in spec.scopes:
        raise InvalidArgument(
            "scope",
            f"{quoted(key)} is set by each user for themselves (for you, or for you toward "
            "a personality), not for a personality, a channel or everyone",
        )


def set_at(setting: ResolvedSetting) -> bool:
    """Whether a resolved setting's value comes from a level it may be set at (a value stored
    at another level before its spec said so is not applied: its default is)."""
    spec = SPECS.get(setting.key)
    return spec is None or spec.scopes is None or setting.source in spec.scopes


def validate(key: str, value: Any) -> Json:
    """The value, normalized; InvalidArgument naming the key when it is unknown or wrong."""
    spec = SPECS.get(key)
    if spec is None:
        raise InvalidArgument("key", f"unknown setting {quoted(key)}; known: {', '.join(SPECS)}")
    try:
        return spec.check(value)
    except ValueError as exc:
        raise InvalidArgument("value", f"{key} must be {exc}") from None


def channel_ids(where: Location | None) -> dict[str, str]:
    """The ids naming the channel level at `where` (none without a place): the conversation
    (the thread, or the channel) and, in a thread, its parent channel."""
    if where is None:
        return {}
    return {
        "channel_id": where.conversation_id,
        "parent_channel_id": where.channel_id if where.thread_id else "",
    }


def stored_levels(
    rows: Iterable[Sequence[Any]], conversation_id: str
) -> dict[ConfigSource, dict[str, Any]]:
    """Stored values by level, from rows (scope, scope_id, key, value) of every level that
    applies in `conversation_id`. A channel row of another id is the parent channel's: it
    holds where the thread itself sets nothing for that key."""
    levels: dict[ConfigSource, dict[str, Any]] = {}
    parent: dict[str, Any] = {}
    for scope, scope_id, key, value in rows:
        level = ConfigSource(scope)
        if level is ConfigSource.CHANNEL and scope_id != conversation_id:
            parent[key] = value
        else:
            levels.setdefault(level, {})[key] = value
    if parent:
        levels[ConfigSource.CHANNEL] = {**parent, **levels.get(ConfigSource.CHANNEL, {})}
    return levels


def resolve(
    levels: Mapping[ConfigSource, Mapping[str, Any]],
    hardcoded: Mapping[str, Json] | None = None,
) -> dict[str, ResolvedSetting]:
    """Every known key resolved through the cascade. Invalid stored values are skipped."""
    resolved: dict[str, ResolvedSetting] = {}
    for key, spec in SPECS.items():
        default = (hardcoded or {}).get(key, spec.default)
        current = ResolvedSetting(key, default, ConfigSource.HARDCODED)
        for scope in SCOPES:
            values = levels.get(scope, {})
            if key in values:
                try:
                    current = ResolvedSetting(key, spec.check(values[key]), scope)
                except ValueError:
                    continue  # a value stored before its rule tightened: ignore, fall back
        resolved[key] = current
    return resolved


def limit_attachments(
    attachments: Sequence[Attachment], *, max_images: int, max_audio: int
) -> tuple[Attachment, ...]:
    """The first `max_images` images and the first `max_audio` audio files, in order; other
    files are not counted against either (inference judges them)."""
    kept: list[Attachment] = []
    seen = {"image": 0, "audio": 0}
    limits = {"image": max_images, "audio": max_audio}
    for attachment in attachments:
        kind = attachment.content_type.split(";", 1)[0].strip().lower().split("/", 1)[0]
        if kind in seen:
            if seen[kind] >= limits[kind]:
                continue
            seen[kind] += 1
        kept.append(attachment)
    return tuple(kept)
