"""What Discord's client lets a user send as a slash command: the command the app registered.

The client enforces the registered options, so Discord never delivers an interaction that
breaks them; a test asking the fake for one gets `InvalidSlashCommand` instead (it is the
test's input that is wrong). Written from discord-api-docs `interactions/application-commands`:
"Application Command Option Structure" (`required`, `min_length`/`max_length`,
`min_value`/`max_value`, `channel_types`, `file_types`), "Option Type" (each type's values:
INTEGER within ±(2^53-1), NUMBER within ±2^53; MENTIONABLE a user or a role), "Option Choice
Structure" ("If you specify `choices` for an option, they are the only valid values"),
"Subcommands and Subcommand Groups" (a command with subcommands is unusable without one) and
"Autocomplete" (sent only for an `autocomplete` option, focused; required options may be
missing; partial data "as long as that input passes client-side validation", so a filled
option that fails the checks below is left out of the interaction, not refused). The focused
value is the raw text typed, a string even for an INTEGER or NUMBER option ("" or "e" too:
discord-api-docs issues #4338 and #4956, discord-api-types #1175), held to no bound; a focused
string may be shorter than `min_length` but not longer than `max_length` (the client stops the
typing there). A STRING without `max_length` takes at most 6000 characters (the largest
`max_length`). A value of another type than the option's is the test's mistake: refused, even
during an autocomplete. Reference "File Type Filtering" gives the groups `file_types` names.
Typed text is sent trimmed: the client strips a slash command's input as it parses it (issue
#4480, Discord's reply: "commands may 'strip it' ... due to parsing of user input", which is why
a STRING option, unlike a modal's text input, cannot be only spaces). A STRING left empty or
blank is therefore unfilled: a required one cannot be sent (#7278: not even with `min_length`
0), an optional one is left out, and so is any during an autocomplete, which sends only the
options "the user has already filled" besides the focused one (whose raw text, spaces and ""
included, is sent as typed). Not documented, so chosen strict: the characters trimmed are
JavaScript's `String.prototype.trim` ones, and `min_length`/`max_length` count the trimmed text.
A choice's value is picked, not typed, and is sent as registered.
A fake made with `validate_slash_options=False` (the fake's own unit tests) checks nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tzurot.testing.fake_discord.command_rules import (
    ATTACHMENT,
    BOOLEAN,
    CHANNEL,
    CHAT_INPUT,
    INTEGER,
    INTEGER_BOUND,
    LENGTH_BOUND,
    MENTIONABLE,
    MESSAGE,
    NESTING,
    NUMBER,
    NUMBER_BOUND,
    ROLE,
    STRING,
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    USER,
    USER_OPTION,
)
from tzurot.testing.fake_discord.wire import Json

_KIND_NAMES = {CHAT_INPUT: "slash command", USER: "user command", MESSAGE: "message command"}
# Reference "File Type Filtering": the extensions each group matches.
FILE_GROUPS = {
    "image": {".png", ".gif", ".jpg", ".jpeg", ".jfif", ".webp", ".avif"},
    "video": {".mp4", ".mov", ".qt", ".webm"},
    "audio": {".mp3", ".m4a", ".wav", ".ogg", ".opus", ".flac"},
}
# What the client trims from typed text: JavaScript's `String.prototype.trim` (WhiteSpace and
# LineTerminator of ECMA-262: the Unicode Zs characters, tab, vertical tab, form feed, BOM,
# line and paragraph separators, CR and LF).
CLIENT_TRIMS = "".join(
    [
        "\t\n\v\f\r \xa0\u1680",
        *map(chr, range(0x2000, 0x200B)),
        "\u2028\u2029\u202f\u205f\u3000\ufeff",
    ]
)
_BLANK = "the client trims typed text and sends no required option left empty"
# What a test passes that is sent by id and resolved in the interaction's data.
RESOLVED_KINDS = frozenset({"attachment", "user", "channel", "role"})
# receiving-and-responding "Resolved Data Structure": what a partial channel there holds
# (`permissions`, the invoking member's in it, is added by the fake).
PARTIAL_CHANNEL_FIELDS = frozenset({
    "id", "name", "type", "last_message_id", "last_pin_timestamp", "nsfw", "parent_id",
    "guild_id", "flags", "rate_limit_per_user", "topic", "position", "thread_metadata",
})  # fmt: skip
# What a test passes for each option type (`value_kind`).
_TAKES = {
    STRING: {"string"},
    INTEGER: {"integer"},
    BOOLEAN: {"boolean"},
    USER_OPTION: {"user"},
    CHANNEL: {"channel"},
    ROLE: {"role"},
    MENTIONABLE: {"user", "role"},
    NUMBER: {"integer", "number"},
    ATTACHMENT: {"attachment"},
}
_TYPE_NAMES = {
    STRING: "STRING",
    INTEGER: "INTEGER",
    BOOLEAN: "BOOLEAN",
    USER_OPTION: "USER",
    CHANNEL: "CHANNEL",
    ROLE: "ROLE",
    MENTIONABLE: "MENTIONABLE",
    NUMBER: "NUMBER",
    ATTACHMENT: "ATTACHMENT",
}
# The type the fake sends for each kind of value when it validates nothing.
_INFERRED = {
    "attachment": ATTACHMENT,
    "user": USER_OPTION,
    "channel": CHANNEL,
    "role": ROLE,
    "boolean": BOOLEAN,
    "integer": INTEGER,
    "number": NUMBER,
    "string": STRING,
}


# How `value_kind` tells them apart: a mapping by the key only it has, else by Python type
# (bool before int: it is one).
_MAPPING_KINDS = (
    ("filename", "attachment"),
    ("username", "user"),
    ("type", "channel"),
    ("permissions", "role"),
)
_PLAIN_KINDS = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


class InvalidSlashCommand(ValueError):
    """Discord's client would not send this slash command: the registered one does not take it."""


@dataclass(frozen=True)
class Invocation:
    """A slash command as the client sends it: the registered command (None when the fake
    validates nothing), the scope it is registered in (a guild's id, None for global), the
    group and subcommand with their types, and the options sent with their types (typed text
    trimmed, blank ones left out; during an autocomplete, also the filled ones the client's
    checks fail)."""

    command: Json | None
    guild_id: str | None
    path: list[tuple[str, int]]
    types: dict[str, int]
    values: dict[str, Any]


def value_kind(value: Any) -> str:
    """What a test passed: an attachment (`upload`), a user (`make_user`), a channel, a role
    (`add_role`), or a plain value."""
    if isinstance(value, Mapping):
        return next((kind for key, kind in _MAPPING_KINDS if key in value), "object")
    return next((kind for t, kind in _PLAIN_KINDS if isinstance(value, t)), type(value).__name__)


def registered_command(
    synced: Mapping[str, Sequence[Json]],
    guild_id: str | None,
    name: str,
    *,
    kind: int = CHAT_INPUT,
) -> tuple[Json, str | None] | None:
    """The command `name` of type `kind` (a slash command unless told) a user in `guild_id`
    can run (the guild's, else the global one; in a DM, `guild_id` None, only a global one)
    and its scope."""
    for scope in ([guild_id] if guild_id else []) + ["global"]:
        for command in synced.get(scope, ()):
            if command.get("type", CHAT_INPUT) == kind and command.get("name") == name:
                return command, None if scope == "global" else scope
    return None


def not_registered(name: str, guild_id: str | None, *, kind: int = CHAT_INPUT) -> str:
    """What InvalidSlashCommand says of a command `name` not registered where it was run."""
    shown = f"/{name}" if kind == CHAT_INPUT else name
    where = "for this guild" if guild_id else "globally (a DM offers only global commands)"
    return f"{shown} is not a {_KIND_NAMES.get(kind, 'command')} registered {where}"


def invocation(
    synced: Mapping[str, Sequence[Json]],
    guild_id: str | None,
    name: str,
    *,
    subcommand: Sequence[str],
    given: Mapping[str, Any],
    focused: str | None,
    validate: bool = True,
) -> Invocation:
    """The slash command the client sends for `/name subcommand… given…` (an autocomplete
    when `focused`), typed by the registered command; InvalidSlashCommand, every problem
    named, when the client would not send it. Without `validate`, any command as given, its
    types told by the values."""
    if not validate:
        path = [(s, SUB_COMMAND if s == subcommand[-1] else SUB_COMMAND_GROUP) for s in subcommand]
        types = {k: _INFERRED.get(value_kind(v), STRING) for k, v in given.items()}
        return Invocation(None, None, path, types, dict(given))
    found = registered_command(synced, guild_id, name)
    if found is None:
        raise InvalidSlashCommand(not_registered(name, guild_id))
    command, scope = found
    shown = " ".join(["/" + name, *subcommand])
    path, options = _walk(command, subcommand, shown)
    problems, values = _option_problems(options, given, focused)
    if problems:
        raise InvalidSlashCommand(f"{shown}: " + "; ".join(problems))
    declared = {o["name"]: int(o["type"]) for o in options}
    return Invocation(command, scope, path, {k: declared[k] for k in values}, values)


def _walk(
    command: Json, subcommand: Sequence[str], shown: str
) -> tuple[list[tuple[str, int]], list[Json]]:
    """The group and subcommand named, and the options of the one run: a command or group
    with subcommands runs only one of them."""
    path: list[tuple[str, int]] = []
    options: list[Json] = list(command.get("options") or [])
    for name in subcommand:
        nested = {o["name"]: o for o in options if o.get("type") in NESTING}
        if name not in nested:
            where = " ".join(["/" + command["name"], *(p for p, _ in path)])
            have = sorted(nested) or "none"
            raise InvalidSlashCommand(
                f"{where} has no subcommand or group {name!r} (it has {have})"
            )
        path.append((name, int(nested[name]["type"])))
        options = list(nested[name].get("options") or [])
    waiting = sorted(o["name"] for o in options if o.get("type") in NESTING)
    if waiting:
        raise InvalidSlashCommand(f"{shown} is not runnable by itself: choose one of {waiting}")
    return path, options


def _option_problems(
    options: list[Json], given: Mapping[str, Any], focused: str | None
) -> tuple[list[str], dict[str, Any]]:
    """What the client refuses to send, and the options it sends as it sends them (typed text
    trimmed; without those left blank, and during an autocomplete those its checks fail)."""
    declared = {o["name"]: o for o in options}
    problems = [
        f"no option {k!r} (it has {sorted(declared) or 'none'})" for k in given if k not in declared
    ]
    if focused is None:
        problems += [
            f"required option {o['name']!r} missing"
            for o in options
            if o.get("required") and o["name"] not in given
        ]
    elif focused not in given:
        problems.append(f"the focused option {focused!r} is not among the options given")
    elif focused in declared and not declared[focused].get("autocomplete"):
        problems.append(f"option {focused!r} has no autocomplete: Discord sends none for it")
    sent: dict[str, Any] = {}
    for name, value in given.items():
        if name not in declared:
            continue
        option, typing = declared[name], name == focused
        wrong = _type_problem(option, value, focused=typing)
        text = not wrong and not typing and int(option["type"]) == STRING
        if text and not value.strip(CLIENT_TRIMS):
            if focused is None and option.get("required"):
                problems.append(f"required option {name!r} is empty: {_BLANK}")
            continue  # left empty: not sent
        as_sent = value.strip(CLIENT_TRIMS) if text and not option.get("choices") else value
        found = [wrong] if wrong else _value_problems(option, as_sent, focused=typing)
        if not found:
            sent[name] = as_sent
        elif wrong or focused is None or typing:
            problems += [f"option {name!r} {p}" for p in found]
    return problems, sent


def _type_problem(option: Json, value: Any, *, focused: bool) -> str | None:
    kind, option_type = value_kind(value), int(option["type"])
    if focused and option_type in (INTEGER, NUMBER):
        typed = kind == "string"
        return None if typed else f"is being typed: the client sends a string, not {value!r}"
    if kind not in _TAKES[option_type]:
        return f"is {_TYPE_NAMES[option_type]}, not {kind} {value!r}"[:200]
    return None


def _value_problems(option: Json, value: Any, *, focused: bool) -> list[str]:
    """What the client's checks refuse in a value of the option's type."""
    option_type = int(option["type"])
    if focused and option_type in (INTEGER, NUMBER):
        return []  # the raw text typed
    if option_type == STRING:
        return _length_problems(option, value, focused=focused) + (
            [] if focused else _choice_problems(option, value)
        )
    if option_type in (INTEGER, NUMBER):
        return _number_problems(option, value)
    if option_type == CHANNEL:
        allowed = option.get("channel_types")
        if allowed and int(value["type"]) not in {int(t) for t in allowed}:
            return [f"takes channel types {allowed}, not {value['type']}"]
    if option_type == ATTACHMENT:
        return _file_type_problems(option, str(value["filename"]))
    return []


def _length_problems(option: Json, value: str, *, focused: bool) -> list[str]:
    low, high = option.get("min_length"), option.get("max_length")
    if high is not None and len(value) > high:
        return [f"is {len(value)} characters, more than its max_length {high}"]
    if len(value) > LENGTH_BOUND:
        return [f"is {len(value)} characters, more than the {LENGTH_BOUND} a STRING takes"]
    if low is not None and len(value) < low and not focused:
        return [f"is {len(value)} characters, fewer than its min_length {low}"]
    return []


def _number_problems(option: Json, value: int | float) -> list[str]:
    integer = int(option["type"]) == INTEGER
    bound = INTEGER_BOUND if integer else NUMBER_BOUND
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > bound:
        return [f"is {value}, outside ±{bound}"]
    low, high = option.get("min_value"), option.get("max_value")
    if low is not None and value < low:
        return [f"is {value}, below its min_value {low}"]
    if high is not None and value > high:
        return [f"is {value}, above its max_value {high}"]
    return _choice_problems(option, value)


def _choice_problems(option: Json, value: object) -> list[str]:
    choices = option.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        return [f"is {value!r}, not one of its choices {[c['value'] for c in choices]}"]
    return []


def _file_type_problems(option: Json, filename: str) -> list[str]:
    wanted = option.get("file_types")
    if not wanted:
        return []
    extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    allowed = set().union(*(FILE_GROUPS.get(t, {t.lower()}) for t in wanted))
    if extension not in allowed:
        return [f"takes file types {wanted}, not {filename!r}"]
    return []
