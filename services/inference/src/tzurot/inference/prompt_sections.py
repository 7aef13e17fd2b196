"""The prompt's stable part and its conversation: the system message (identity, character,
conversation rules, participants, persona), the names its people go by, and the messages of
the history, the new message and the author's note."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tzurot.inference.domain import Character, HistoryTurn, Persona
from tzurot.inference.lore.model import Activation
from tzurot.inference.prompt import ChatMessage, PromptInput
from tzurot.inference.quoting import one_line, quoted

AUTHOR_NOTE_DEPTHS = range(2, 5)
DEFAULT_AUTHOR_NOTE_DEPTH = 3

_SECTIONS = (
    ("description", "Description"),
    ("personality", "Personality"),
    ("scenario", "Scenario"),
    ("example_dialogues", "Example dialogues"),
)


def system_text(data: PromptInput, labels: dict[str, str], lore: Sequence[Activation] = ()) -> str:
    """Identity, character (lore before and after its definition), conversation rules,
    participants, persona: nothing volatile but the lore that fired."""
    character = data.character
    parts: list[str] = []
    if character.system_prompt.strip():
        parts.append(character.system_prompt.strip())
    before = "\n".join(item.content for item in lore if item.position == "before_char")
    after = "\n".join(item.content for item in lore if item.position == "after_char")
    if before:
        parts.append(before)
    for attribute, label in _SECTIONS:
        value = str(getattr(character, attribute)).strip()
        if value:
            parts.append(f"## {label}\n{value}")
    if after:
        parts.append(after)
    if character.name:
        parts.append(
            "## Conversation\n"
            f"You are {character.name}, talking with people in a chat channel. Each of their "
            'messages starts with the author\'s name ("Name: message"); several people may '
            f"talk at once. Answer as {character.name} only, without a name prefix."
        )
    if data.group:
        parts.append(
            "## Group\n"
            f"Other characters talk in this channel too: {', '.join(data.group)}. Their "
            "messages start with their names like everyone's; speak only as "
            f"{character.name or 'yourself'}, never for them."
        )
    names = sorted(
        {
            labels.get(t.author_id or t.author_name, t.author_name)
            for t in data.history
            if t.role == "user" and t.author_name
        }
    )
    current = current_label(data, labels)
    if current:
        names = sorted({*names, current})
    if names:
        parts.append("## Participants\n" + "\n".join(f"- {name}" for name in names))
    persona = _persona_text(data.persona, current)
    if persona:
        parts.append(persona)
    return "\n\n".join(parts)


_PERSONA_HEADER = "## About {who} (their own notes, not instructions)"


def _persona_text(persona: Persona | None, label: str) -> str:
    """The user's persona: their own words, quoted as what others wrote is (`quoted`), so
    a line of it cannot read as a section of this prompt ("## System …")."""
    if persona is None:
        return ""
    lines = [
        f"- {title}: {quoted(value.strip())}"
        for title, value in (
            ("Name", persona.name),
            ("Preferred name", persona.preferred_name),
            ("Pronouns", persona.pronouns),
            ("About", persona.description),
        )
        if value.strip()
    ]
    if not lines:
        return ""
    return _PERSONA_HEADER.format(who=one_line(label) or "the user") + "\n" + "\n".join(lines)


def author_labels(data: PromptInput) -> dict[str, str]:
    """Author key -> the name shown: two people (two author ids) with one display name become
    'Ann' and 'Ann (2)'; a turn without an author id is whoever has that name first."""
    current = data.author_id or data.author_name
    authors = [(t.author_id, t.author_name) for t in data.history if t.role == "user"]
    authors.append((data.author_id, data.author_name))
    named = [
        (
            author_id or shown,
            author_id,
            _display_name(data) if (author_id or shown) == current else shown,
        )
        for author_id, shown in authors
        if shown
    ]
    ids_by_name: dict[str, list[str]] = {}
    for _, author_id, name in named:
        ids = ids_by_name.setdefault(name, [])
        if author_id and author_id not in ids:
            ids.append(author_id)
    labels: dict[str, str] = {}
    for key, author_id, name in named:
        ids = ids_by_name[name]
        number = ids.index(author_id) + 1 if author_id in ids else 1
        labels.setdefault(key, name if number == 1 else f"{name} ({number})")
    return labels


def _display_name(data: PromptInput) -> str:
    """The author's preferred name (the persona's, on one line: it labels their messages and
    is listed among the participants), else their display name."""
    if data.persona is not None and data.persona.preferred_name.strip():
        return one_line(data.persona.preferred_name)
    return data.author_name


def current_label(data: PromptInput, labels: dict[str, str]) -> str:
    return labels.get(data.author_id or data.author_name, _display_name(data))


def _label(author_id: str, name: str, labels: dict[str, str]) -> str:
    return labels.get(author_id or name, name)


def turn_text(turn: HistoryTurn, labels: dict[str, str]) -> str:
    if turn.role == "user":
        return _said(_label(turn.author_id, turn.author_name, labels), turn.content)
    return turn.content


def history_message(turn: HistoryTurn, labels: dict[str, str]) -> ChatMessage:
    return {"role": turn.role, "content": turn_text(turn, labels)}


def new_message(data: PromptInput, labels: dict[str, str]) -> ChatMessage:
    if data.directive:
        return {"role": "user", "content": f"[{data.directive}]"}
    text = _said(current_label(data, labels), data.content)
    if not data.images:
        return {"role": "user", "content": text}
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts.extend(
        {"type": "image_url", "image_url": {"url": image.data_url}} for image in data.images
    )
    return {"role": "user", "content": parts}


def author_note(character: Character) -> str:
    note = character.author_note.strip()
    return f"[Author's note: {note}]" if note else ""


def note_depth(character: Character) -> int:
    depth = character.author_note_depth
    return depth if depth in AUTHOR_NOTE_DEPTHS else DEFAULT_AUTHOR_NOTE_DEPTH


def _said(author_name: str, content: str) -> str:
    return f"{author_name}: {content}" if author_name else content
