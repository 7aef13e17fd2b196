"""Facts from delivered exchanges (memory formation): the prompt and the answer's parsing.

Pure code: `extraction_messages` writes the request, `parse_facts` reads the model's JSON
answer ({"facts": [{"text": ..., "supersedes": [ids]}]}), tolerating a code fence or text
around it, and keeps only what it can trust: non-empty texts of bounded length, and only
ids of known facts (a model inventing an id supersedes nothing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tzurot.inference.prompt import ChatMessage

MAX_FACTS = 32
MAX_FACT_CHARS = 500
MAX_TRANSCRIPT_CHARS = 24_000

INSTRUCTIONS = """You maintain a list of durable facts about {user} and their relationship \
with {personality}, from their conversations. A fact is one short, self-contained sentence \
that names {user} (not "I" or "you") and stays true beyond the moment: where they live or \
work, people and pets in their life, plans, preferences, important events (with their date \
when the conversation gives it). Ignore small talk, passing moods and anything {personality} \
says about itself.

Known facts (id: text):
{known}

Extract only facts that are new or changed in the conversation below. When a new fact \
contradicts or replaces a known one (they moved, changed job, a plan was cancelled), list the \
known fact's id in "supersedes". Do not repeat a known fact that is unchanged.

Answer with JSON only, no prose: {{"facts": [{{"text": "...", "supersedes": ["id", ...]}}]}}; \
{{"facts": []}} when there is nothing to keep."""


@dataclass(frozen=True)
class SaidTurn:
    """One turn of the conversation as the extractor sees it."""

    author: str
    text: str
    when: datetime | None = None


@dataclass(frozen=True)
class KnownFact:
    id: str
    text: str


@dataclass(frozen=True)
class ExtractedFact:
    text: str
    supersedes: tuple[str, ...] = ()


def extraction_messages(
    user: str, personality: str, turns: Sequence[SaidTurn], known: Sequence[KnownFact]
) -> list[ChatMessage]:
    listed = "\n".join(f"{fact.id}: {fact.text}" for fact in known) or "(none)"
    lines = []
    for turn in turns:
        stamp = f"[{turn.when:%d %B %Y}] " if turn.when is not None else ""
        lines.append(f"{stamp}{turn.author}: {turn.text}")
    # The newest lines matter most: a long batch keeps its end.
    transcript = "\n".join(lines)[-MAX_TRANSCRIPT_CHARS:]
    return [
        {
            "role": "system",
            "content": INSTRUCTIONS.format(user=user, personality=personality, known=listed),
        },
        {"role": "user", "content": f"Conversation:\n{transcript}"},
    ]


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_facts(answer: str, known_ids: set[str]) -> list[ExtractedFact]:
    """The facts of the model's answer; [] when it holds no readable JSON."""
    found = _OBJECT.search(answer)
    if found is None:
        return []
    try:
        data = json.loads(found.group(0))
    except ValueError:
        return []
    items = data.get("facts") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    facts = []
    for item in items[:MAX_FACTS]:
        if not isinstance(item, dict):
            continue
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            continue
        raw = item.get("supersedes") or []
        ids = raw if isinstance(raw, list) else []
        supersedes = tuple(dict.fromkeys(i for i in ids if isinstance(i, str) and i in known_ids))
        facts.append(ExtractedFact(" ".join(text.split())[:MAX_FACT_CHARS], supersedes))
    return facts
