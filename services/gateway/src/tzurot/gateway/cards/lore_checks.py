"""What every imported lorebook is checked for, whatever its format: keys within their limits
(per entry, regex keys per book, no regex key inference would refuse to compile), its size
(the same however the file spells it out), and each entry's uid a distinct number, the
importer told of every uid renumbered.

A regex key is read as inference reads it (`tzurot.runtime.regex_guard.key_pattern`) and
measured by the same guard inference compiles with: a key it would refuse (too long, a group's
repeat count too large, expanding too far) would match nothing, silently, on every message,
so it is dropped from its entry (a primary or secondary key, or one of a leading
`@@additional_keys`/`@@exclude_keys` line) and the importer is told, naming the entry and the
key; the rest of the book is imported. A regex that does not parse is let through: it matches
nothing in SillyTavern either, and costs nothing.
"""

from __future__ import annotations

import json
from typing import Any

from tzurot.gateway.cards.lore_model import Lorebook, LoreEntry
from tzurot.gateway.cards.lore_numbers import numeric_uid, unique_uids
from tzurot.runtime import regex_guard
from tzurot.runtime.errors import InvalidArgument

MAX_LOREBOOK_BYTES = 4 * 1024 * 1024
"""A lorebook's size (`book_bytes`: its text), the same measure on import and re-import."""
MAX_KEYS_PER_ENTRY = 100
"""Keys of one entry: primary, secondary, `@@additional_keys` and `@@exclude_keys` together
(SillyTavern books seldom pass a few dozen)."""
MAX_REGEX_KEYS = 1000
"""Regex keys of one lorebook (`/pattern/flags`, or any key of a `use_regex` entry): each is
searched on every message. Inference also bounds their time per message."""
MAX_UID_WARNINGS = 10
"""Renumbered uids told one by one; past these, only how many more."""
MAX_KEY_WARNINGS = 10
"""Regex keys dropped told one by one; past these, only how many more."""
_KEY_DECORATORS = ("additional_keys", "exclude_keys")


def entry_label(entry: LoreEntry) -> str:
    """How messages name an entry: its uid as the file has it, and its comment or name."""
    title = entry.comment or entry.name
    return f"entry {entry.uid[:40]!r}" + (f" ({title[:60]})" if title else "")


def _is_regex_key(key: str) -> bool:
    """Inference's rule for a `/pattern/flags` key (lore/matching), without its exception for
    an unescaped slash inside: counts a few more, never fewer."""
    key = key.strip()
    body = key.rstrip("gimsuy")
    return key.startswith("/") and len(body) >= 3 and body.endswith("/")  # at least "/x/"


def _decorator_keys(content: str) -> list[str]:
    """The keys of an entry's leading `@@additional_keys` / `@@exclude_keys` lines."""
    keys: list[str] = []
    for line in content.split("\n"):
        if not line.startswith("@@"):
            break
        name, _, value = line.lstrip("@").partition(" ")
        if name.strip() in _KEY_DECORATORS:
            keys += [key.strip() for key in value.split(",") if key.strip()]
    return keys


def _costly_keys(entry: LoreEntry, keys: list[str]) -> dict[str, str]:
    """The entry's keys `regex_guard` would refuse to compile (stripped), each with why."""
    costly: dict[str, str] = {}
    for key in keys:
        why = regex_guard.key_refusal(key.strip(), force=entry.use_regex)
        if why is not None:
            costly[key.strip()] = why
    return costly


def _without_decorator_keys(content: str, dropped: set[str]) -> str:
    """The content with `dropped` taken out of its leading `@@additional_keys` /
    `@@exclude_keys` lines (a line left with no key goes too)."""
    lines = content.split("\n")
    kept_lines: list[str] = []
    for index, line in enumerate(lines):
        if not line.startswith("@@"):
            return "\n".join(kept_lines + lines[index:])
        name, _, value = line.lstrip("@").partition(" ")
        keys = [key.strip() for key in value.split(",") if key.strip()]
        if name.strip() not in _KEY_DECORATORS or not any(key in dropped for key in keys):
            kept_lines.append(line)
            continue
        kept = [key for key in keys if key not in dropped]
        if kept:
            kept_lines.append(
                f"{line[: len(line) - len(line.lstrip('@'))]}{name} {', '.join(kept)}"
            )
    return "\n".join(kept_lines)


def _drop_costly_keys(entry: LoreEntry, keys: list[str], label: str) -> list[str]:
    """Takes out of the entry every key `regex_guard` would refuse (inference would never
    match it); what the importer is told of each."""
    costly = _costly_keys(entry, keys)
    if not costly:
        return []
    entry.keys = [key for key in entry.keys if key.strip() not in costly]
    entry.secondary_keys = [key for key in entry.secondary_keys if key.strip() not in costly]
    entry.content = _without_decorator_keys(entry.content, set(costly))
    told = []
    for key, why in costly.items():
        shown = key if len(key) <= 40 else key[:40] + "…"
        told.append(
            f"lorebook: {label}: dropped the regex key {shown!r}, which would never match "
            f"({why}; a regex key may be at most {regex_guard.MAX_PATTERN_CHARS} characters, "
            f"a group repeat at most {regex_guard.MAX_REPEAT_COUNT} times, and expand to at "
            f"most {regex_guard.MAX_PATTERN_NODES} nodes); simplify it or use plain text keys"
        )
    return told


def check_key_limits(book: Lorebook, warnings: list[str] | None = None) -> Lorebook:
    """The book without the regex keys inference would refuse to compile (each dropped told
    in `warnings`: the first `MAX_KEY_WARNINGS`, then how many more), or InvalidArgument
    naming the first entry over `MAX_KEYS_PER_ENTRY`, or the one whose regex keys take the
    book past `MAX_REGEX_KEYS`."""
    regex_keys = 0
    dropped: list[str] = []
    for index, entry in enumerate(book.entries):
        keys = [*entry.keys, *entry.secondary_keys, *_decorator_keys(entry.content)]
        label = entry_label(entry)
        if len(keys) > MAX_KEYS_PER_ENTRY:
            raise InvalidArgument(
                f"entries.{index}.keys",
                f"lorebook: {label} has {len(keys)} keys; an entry may have at most "
                f"{MAX_KEYS_PER_ENTRY} (primary, secondary and decorator keys together)",
                reason="TOO_MANY_KEYS",
            )
        told = _drop_costly_keys(entry, keys, label)
        if told:
            dropped += told
            keys = [*entry.keys, *entry.secondary_keys, *_decorator_keys(entry.content)]
        regex_keys += sum(1 for key in keys if entry.use_regex or _is_regex_key(key))
        if regex_keys > MAX_REGEX_KEYS:
            raise InvalidArgument(
                f"entries.{index}.keys",
                f"lorebook: {label} takes the book past {MAX_REGEX_KEYS} regex keys "
                "(/pattern/ keys, and every key of a use_regex entry); a lorebook may have "
                f"at most {MAX_REGEX_KEYS}",
                reason="TOO_MANY_REGEX_KEYS",
            )
    if warnings is not None:
        warnings += dropped[:MAX_KEY_WARNINGS]
        if len(dropped) > MAX_KEY_WARNINGS:
            warnings.append(
                f"lorebook: {len(dropped) - MAX_KEY_WARNINGS} more regex keys dropped (they "
                "would never match)"
            )
    return book


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def book_bytes(book: Lorebook) -> int:
    """The book's size as the same number whatever file it came in: the UTF-8 bytes of its
    text (name, description, each entry's keys, content, comment and name) and of its
    extensions as compact JSON. That text was in the file imported, whose field names,
    numbers and punctuation are not counted, so a book that came in a file within
    `MAX_LOREBOOK_BYTES` is within it; and an export (which spells out SillyTavern's fields,
    indented) of a book measures the same when imported again."""
    size = len(book.name.encode()) + len(book.description.encode())
    size += _json_bytes(book.extensions) if book.extensions else 0
    for entry in book.entries:
        texts = [*entry.keys, *entry.secondary_keys, entry.content, entry.comment, entry.name]
        size += sum(len(text.encode()) for text in texts)
        size += _json_bytes(entry.extensions) if entry.extensions else 0
    return size


def check_size(book: Lorebook, field: str = "document", what: str = "the lorebook") -> Lorebook:
    """The book, or InvalidArgument when `book_bytes` is over `MAX_LOREBOOK_BYTES`."""
    size = book_bytes(book)
    if size > MAX_LOREBOOK_BYTES:
        raise InvalidArgument(
            field,
            f"{what} holds {size} bytes of text (keys, contents, comments and extensions); "
            f"a lorebook may be at most {MAX_LOREBOOK_BYTES} bytes",
            reason="TOO_LARGE",
        )
    return book


def with_unique_uids(book: Lorebook, warnings: list[str] | None = None) -> Lorebook:
    """The book checked (`check_key_limits`, its errors and the keys it drops naming uids
    as the file has them), then each entry's uid a distinct number
    (`lore_numbers.unique_uids`); every uid renumbered (repeated, or not a number) is told in
    `warnings`: the entry, the old uid, the new one."""
    check_key_limits(book, warnings)
    uids = unique_uids(entry.uid for entry in book.entries)
    told: list[str] = []
    for entry, uid in zip(book.entries, uids, strict=True):
        old = numeric_uid(entry.uid)
        if old is None or str(old) != uid:
            why = "repeats an earlier entry's uid" if old is not None else "had no numeric uid"
            told.append(
                f"lorebook: {entry_label(entry)} {why}; renumbered {entry.uid[:40]!r} → {uid}"
            )
        entry.uid = uid
    if warnings is not None:
        warnings += told[:MAX_UID_WARNINGS]
        if len(told) > MAX_UID_WARNINGS:
            warnings.append(
                f"lorebook: {len(told) - MAX_UID_WARNINGS} more entries renumbered (a repeated "
                "uid, or none that is a number)"
            )
    return book
