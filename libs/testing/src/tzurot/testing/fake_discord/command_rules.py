"""Discord's rules for one application command, as the fake enforces them on registration.

Written from discord-api-docs `interactions/application-commands`: "Application Command
Naming" (the name regex, lowercase for `CHAT_INPUT`), the command, option and choice
structures (lengths, at most 25 options and 25 choices, which fields each option type takes,
`autocomplete` never with `choices`, required options first, unique option names), the Slash
Commands warning (8000 characters per command, the longest localization of each field
counted), "Subcommands and Subcommand Groups" (the only nesting: group → subcommand) and
"Localization" (localized option names distinct); from `resources/channel` "Channel Types"
(what `channel_types` holds); and from `reference`: "Error Messages" (50035 with an `errors`
tree keyed by field path, `_errors` at each leaf), "Locales" and "File Type Filtering" (each
of `file_types` a group name or a dot-prefixed extension). The docs give the rules and the
error shape but not every inner error code: the codes are Discord's where its answers are on
record (BASE_TYPE_*, APPLICATION_COMMAND_INVALID_NAME, APPLICATION_COMMAND_TOO_LARGE,
MODEL_TYPE_CONVERT, ENUM_TYPE_COERCE), else named after the rule. What Discord registers
unchecked is registered here too: a `min_*` above its `max_*` (discord-api-docs issue 5149),
two choices of one name or value. The rules of a scope (unique names, how many commands,
creates a day) are `application_commands`'.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from tzurot.testing.fake_discord.rules import error
from tzurot.testing.fake_discord.wire import Json

CHAT_INPUT, USER, MESSAGE, PRIMARY_ENTRY_POINT = 1, 2, 3, 4
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER_OPTION = 1, 2, 3, 4, 5, 6
CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 7, 8, 9, 10, 11
OPTION_TYPES = frozenset(range(SUB_COMMAND, ATTACHMENT + 1))
NESTING = frozenset({SUB_COMMAND, SUB_COMMAND_GROUP})
NAME_LIMIT = 32
DESCRIPTION_LIMIT = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
CHOICE_LIMIT = 100  # a choice's name, and its value when a string
LENGTH_BOUND = 6000  # min_length 0..6000, max_length 1..6000
MAX_FILE_TYPES = 10
# resources/channel "Channel Types" (16: GUILD_MEDIA, which discord.py sends for a forum).
CHANNEL_TYPES = frozenset({0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16})
FILE_TYPE_GROUPS = frozenset({"image", "video", "audio"})  # reference "File Type Filtering"
COMMAND_SIZE_LIMIT = 8000
INTEGER_BOUND = 2**53 - 1  # INTEGER: any integer between -2^53+1 and 2^53-1
NUMBER_BOUND = 2**53  # NUMBER: any double between -2^53 and 2^53
MAX_COMMANDS = {CHAT_INPUT: 100, USER: 15, MESSAGE: 15, PRIMARY_ENTRY_POINT: 1}
LOCALES = frozenset({
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl",
    "no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi",
    "th", "zh-CN", "ja", "zh-TW", "ko",
})  # fmt: skip
# Which option types take each field ("Valid Option Types").
_FIELD_TYPES = {
    "choices": {STRING, INTEGER, NUMBER},
    "autocomplete": {STRING, INTEGER, NUMBER},
    "options": NESTING,
    "channel_types": {CHANNEL},
    "min_value": {INTEGER, NUMBER},
    "max_value": {INTEGER, NUMBER},
    "min_length": {STRING},
    "max_length": {STRING},
    "file_types": {ATTACHMENT},
}
# The scripts the name regex names besides letters and numbers (`\p{sc=Deva}`, `\p{sc=Thai}`:
# their vowel signs are marks, not letters), as Unicode's Scripts.txt ranges.
_SCRIPT_RANGES = (
    (0x0900, 0x0950), (0x0955, 0x0963), (0x0966, 0x097F), (0xA8E0, 0xA8FF),
    (0x11B00, 0x11B09), (0x0E01, 0x0E3A), (0x0E40, 0x0E5B),
)  # fmt: skip

Path = tuple[str | int, ...]
_NOT_A_DICT = ("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")


class FormErrors:
    """Discord's `errors` tree: each refused field's path, with `_errors` at its end."""

    def __init__(self) -> None:
        self.tree: Json = {}

    def add(self, path: Path, code: str, message: str) -> None:
        node = self.tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def __bool__(self) -> bool:
        return bool(self.tree)

    def body(self) -> Json:
        return error(50035, "Invalid Form Body", **self.tree)


def valid_chat_input_name(name: str) -> bool:
    """`^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`, and lowercase where a letter has a
    lowercase form."""
    return 1 <= len(name) <= NAME_LIMIT and all(
        (c in "-_'" or unicodedata.category(c)[0] in "LN" or _in_scripts(c)) and c.lower() == c
        for c in name
    )


def _in_scripts(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in _SCRIPT_RANGES)


def _text(errors: FormErrors, path: Path, value: object, low: int, high: int) -> None:
    if value is None:
        errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
    elif not isinstance(value, str):
        errors.add(path, "BASE_TYPE_STRING", "Could not interpret value as string.")
    elif not low <= len(value) <= high:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def _name(errors: FormErrors, path: Path, value: object, *, chat_input: bool) -> None:
    """1-32 characters; a slash command's or an option's also by the regex, in lowercase."""
    _text(errors, path, value, 1, NAME_LIMIT)
    if (
        chat_input
        and isinstance(value, str)
        and 1 <= len(value) <= NAME_LIMIT
        and not valid_chat_input_name(value)
    ):
        errors.add(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def _localized(
    errors: FormErrors, path: Path, values: object, check: Callable[[Path, object], None]
) -> None:
    """A localization dictionary: keys among Discord's locales, values checked as the field."""
    if values is None:
        return
    if not isinstance(values, dict):
        errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    for locale, value in values.items():
        if locale not in LOCALES:
            errors.add((*path, locale), "LOCALE_INVALID", f"Invalid locale {locale!r}.")
        else:
            check((*path, locale), value)


def _names_and_descriptions(errors: FormErrors, path: Path, item: Json, *, chat: bool) -> None:
    """`name`, `description` and their localizations, as a slash command or an option has them."""
    _name(errors, (*path, "name"), item.get("name"), chat_input=chat)
    _localized(
        errors,
        (*path, "name_localizations"),
        item.get("name_localizations"),
        lambda p, v: _name(errors, p, v, chat_input=chat),
    )
    _text(errors, (*path, "description"), item.get("description"), 1, DESCRIPTION_LIMIT)
    _localized(
        errors,
        (*path, "description_localizations"),
        item.get("description_localizations"),
        lambda p, v: _text(errors, p, v, 1, DESCRIPTION_LIMIT),
    )


def command_errors(errors: FormErrors, path: Path, command: object, *, guild: bool) -> None:
    """Every rule one command breaks, added to `errors` under `path`."""
    if not isinstance(command, dict):
        errors.add(path, *_NOT_A_DICT)
        return
    kinds = (
        {CHAT_INPUT, USER, MESSAGE} if guild else {CHAT_INPUT, USER, MESSAGE, PRIMARY_ENTRY_POINT}
    )
    kind = command.get("type", CHAT_INPUT)
    if kind not in kinds:  # no PRIMARY_ENTRY_POINT guild command
        errors.add((*path, "type"), "BASE_TYPE_CHOICES", f"Value must be one of {kinds}.")
        return
    if kind == CHAT_INPUT:
        _names_and_descriptions(errors, path, command, chat=True)
        _options(errors, (*path, "options"), command.get("options"), parent=None)
        if command_size(command) > COMMAND_SIZE_LIMIT:
            errors.add(
                path,
                "APPLICATION_COMMAND_TOO_LARGE",
                f"Command exceeds maximum size ({COMMAND_SIZE_LIMIT})",
            )
        return
    _name(errors, (*path, "name"), command.get("name"), chat_input=False)
    _localized(
        errors,
        (*path, "name_localizations"),
        command.get("name_localizations"),
        lambda p, v: _name(errors, p, v, chat_input=False),
    )
    if kind in (USER, MESSAGE) and command.get("description"):
        errors.add(
            (*path, "description"),
            "APPLICATION_COMMAND_DESCRIPTION_INVALID",
            "Description must be empty for USER and MESSAGE commands",
        )
    if command.get("options"):
        errors.add(
            (*path, "options"),
            "APPLICATION_COMMAND_OPTIONS_INVALID",
            "Options can only be set for CHAT_INPUT commands",
        )


def _options(errors: FormErrors, path: Path, options: object, *, parent: int | None) -> None:
    """An options array: of a command (`parent` None), a subcommand group or a subcommand."""
    if options is None:
        return
    if not isinstance(options, list):
        errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if len(options) > MAX_OPTIONS:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")
    items = [o for o in options if isinstance(o, dict)]
    nesting = [o.get("type") in NESTING for o in items]
    if parent is None and any(nesting) and not all(nesting):
        errors.add(
            path,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-command and sub-command group option types are mutually exclusive to all "
            "other types",
        )
    for index, option in enumerate(options):
        _option(errors, (*path, index), option, parent=parent)
    plain = [o for o in items if o.get("type") not in NESTING]
    required = [bool(o.get("required")) for o in plain]
    if any(later and not earlier for earlier, later in itertools.pairwise(required)):
        errors.add(
            path,
            "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
            "Required options must be placed before non-required options",
        )
    _unique_names(errors, path, options)


def _unique_names(errors: FormErrors, path: Path, options: list[Any]) -> None:
    """Names unique within the array; a localized name distinct from the others' default names
    and from their names in the same locale."""
    defaults: dict[str, int] = {}
    for index, option in enumerate(options):
        name = option.get("name") if isinstance(option, dict) else None
        if isinstance(name, str):
            if name in defaults:
                errors.add(
                    (*path, index, "name"),
                    "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                    f"Option name {name} is already used in these options",
                )
            defaults.setdefault(name, index)
    localized: dict[tuple[str, str], int] = {}
    for index, option in enumerate(options):
        names = option.get("name_localizations") if isinstance(option, dict) else None
        if not isinstance(names, dict):
            continue
        for locale, name in names.items():
            if not isinstance(name, str) or name == option.get("name"):
                continue  # a localization equal to the default is ignored
            if defaults.get(name, index) != index or (locale, name) in localized:
                errors.add(
                    (*path, index, "name_localizations", locale),
                    "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                    f"Option name {name} is already used in these options",
                )
            localized.setdefault((locale, name), index)


def _option(errors: FormErrors, path: Path, option: object, *, parent: int | None) -> None:
    if not isinstance(option, dict):
        errors.add(path, *_NOT_A_DICT)
        return
    kind = option.get("type")
    allowed = _allowed_types(parent)
    if kind not in allowed:
        errors.add((*path, "type"), "BASE_TYPE_CHOICES", f"Value must be one of {allowed}.")
        return
    _names_and_descriptions(errors, path, option, chat=True)
    for field, types in _FIELD_TYPES.items():
        if kind not in types and _is_set(option.get(field)):
            errors.add(
                (*path, field),
                "APPLICATION_COMMAND_OPTION_FIELD_INVALID",
                f"{field} cannot be configured for this type of option",
            )
    if kind in NESTING:
        if option.get("required"):
            errors.add(
                (*path, "required"),
                "APPLICATION_COMMAND_REQUIRED_INVALID",
                "Required cannot be configured for this type of option",
            )
        _options(errors, (*path, "options"), option.get("options"), parent=kind)
        return
    _choices(errors, path, option, kind)
    _bounds(errors, path, option, kind)
    if kind == CHANNEL:
        _channel_types(errors, (*path, "channel_types"), option.get("channel_types"))
    if kind == ATTACHMENT:
        _file_types(errors, (*path, "file_types"), option.get("file_types"))


def _channel_types(errors: FormErrors, path: Path, values: object) -> None:
    """Channel type numbers (a string of one counts, as Discord reads int fields)."""
    if values is None:
        return
    if not isinstance(values, list):
        errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
        return
    for index, value in enumerate(values):
        if _as_int(value) not in CHANNEL_TYPES:
            errors.add(
                (*path, index), "ENUM_TYPE_COERCE", f'Value "{value}" is not a valid enum value.'
            )


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _file_types(errors: FormErrors, path: Path, values: object) -> None:
    """At most 10, each a group name or a dot-prefixed extension (any case)."""
    if values is None:
        return
    if not isinstance(values, list):
        errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if len(values) > MAX_FILE_TYPES:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILE_TYPES} or fewer in length.")
    for index, value in enumerate(values):
        if not isinstance(value, str):
            errors.add((*path, index), "BASE_TYPE_STRING", "Could not interpret value as string.")
        elif value not in FILE_TYPE_GROUPS and not _extension(value):
            errors.add(
                (*path, index),
                "APPLICATION_COMMAND_OPTION_FILE_TYPE_INVALID",
                f"File type {value!r} is not one of {sorted(FILE_TYPE_GROUPS)} or an extension "
                "such as .pdf",
            )


def _extension(value: str) -> bool:
    """A dot, then the extension: no spaces, at least one character."""
    return value.startswith(".") and len(value) > 1 and not any(c.isspace() for c in value)


def _is_set(value: object) -> bool:
    """A field given a value: not absent, null, false or an empty list (0 is a value)."""
    return not (value is None or value is False or (isinstance(value, list) and not value))


def _allowed_types(parent: int | None) -> set[int]:
    """The nesting Discord supports: command → group → subcommand → options, or command →
    subcommand → options, or command → options."""
    if parent == SUB_COMMAND_GROUP:
        return {SUB_COMMAND}
    if parent == SUB_COMMAND:
        return set(OPTION_TYPES - NESTING)
    return set(OPTION_TYPES)


def _choices(errors: FormErrors, path: Path, option: Json, kind: int) -> None:
    choices = option.get("choices")
    if not isinstance(choices, list) or kind not in _FIELD_TYPES["choices"]:
        return
    if len(choices) > MAX_CHOICES:
        errors.add(
            (*path, "choices"),
            "BASE_TYPE_MAX_LENGTH",
            f"Must be {MAX_CHOICES} or fewer in length.",
        )
    if choices and option.get("autocomplete"):
        errors.add(
            (*path, "autocomplete"),
            "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
            "Autocomplete cannot be set for options with choices",
        )
    for index, choice in enumerate(choices):
        at = (*path, "choices", index)
        if not isinstance(choice, dict):
            errors.add(at, *_NOT_A_DICT)
            continue
        _text(errors, (*at, "name"), choice.get("name"), 1, CHOICE_LIMIT)
        _localized(
            errors,
            (*at, "name_localizations"),
            choice.get("name_localizations"),
            lambda p, v: _text(errors, p, v, 1, CHOICE_LIMIT),
        )
        _value(errors, (*at, "value"), choice.get("value"), kind)


def _value(errors: FormErrors, path: Path, value: object, kind: int) -> None:
    """A choice's value: of the option's type, a string up to 100 characters."""
    if kind == STRING:
        _text(errors, path, value, 0, CHOICE_LIMIT)
    elif not _number_of(kind, value):
        errors.add(path, "NUMBER_TYPE_COERCE", f"Value {value!r} is not a valid number.")


def _number_of(kind: int, value: object) -> bool:
    """An INTEGER option's integer or a NUMBER option's double, within the type's range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind == INTEGER:
        return isinstance(value, int) and -INTEGER_BOUND <= value <= INTEGER_BOUND
    return -NUMBER_BOUND <= value <= NUMBER_BOUND


def _bounds(errors: FormErrors, path: Path, option: Json, kind: int) -> None:
    """min_value/max_value of the option's type; min_length 0..6000, max_length 1..6000."""
    if kind in _FIELD_TYPES["min_value"]:
        for field in ("min_value", "max_value"):
            value = option.get(field)
            if value is not None and not _number_of(kind, value):
                errors.add(
                    (*path, field), "NUMBER_TYPE_COERCE", f"Value {value!r} is not valid here."
                )
    if kind in _FIELD_TYPES["min_length"]:
        for field, low in (("min_length", 0), ("max_length", 1)):
            value = option.get(field)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                errors.add((*path, field), "NUMBER_TYPE_COERCE", f"Value {value!r} is not int.")
            elif not low <= value <= LENGTH_BOUND:
                errors.add(
                    (*path, field),
                    "NUMBER_TYPE_OUT_OF_RANGE",
                    f"Value should be greater than or equal to {low} and less than or equal "
                    f"to {LENGTH_BOUND}.",
                )


def _longest(value: object, localizations: object) -> int:
    """A field's size: the longest of its value and its localizations."""
    texts: list[object] = [value]
    if isinstance(localizations, dict):
        texts.extend(localizations.values())
    return max((len(t) for t in texts if isinstance(t, str)), default=0)


def command_size(item: Json) -> int:
    """The characters Discord counts against 8000: names, descriptions, choice names and values,
    of the command, its options (subcommands and groups included) and their choices."""
    size = _longest(item.get("name"), item.get("name_localizations"))
    size += _longest(item.get("description"), item.get("description_localizations"))
    for choice in _dicts(item.get("choices")):
        size += _longest(choice.get("name"), choice.get("name_localizations"))
        value = choice.get("value")
        size += len(value) if isinstance(value, str) else len(str(value))
    return size + sum(command_size(option) for option in _dicts(item.get("options")))


def _dicts(items: object) -> Iterable[Json]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
