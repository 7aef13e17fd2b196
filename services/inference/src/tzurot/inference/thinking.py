"""Keeps a model's thinking out of its answer, while streaming and on the whole text.

Models think inside tags (`<think>`, `<thinking>`, `<ant_thinking>`, `<reasoning>`,
`<thought>`, `<reflection>`, `<scratchpad>`) or in a separate reasoning field of the stream.
Neither may reach the user or the history; both are kept apart for "view reasoning".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAGS = ("think", "thinking", "ant_thinking", "reasoning", "thought", "reflection", "scratchpad")
_NAMES = "|".join(sorted(TAGS, key=len, reverse=True))
_OPEN = re.compile(rf"<({_NAMES})(?:\s[^<>]*)?>", re.IGNORECASE)
_CLOSE_ANY = re.compile(rf"</({_NAMES})\s*>", re.IGNORECASE)
_PARTIAL_OPEN = re.compile(r"<[A-Za-z_]*(?:\s[^<>]*)?\Z")
_MAX_HELD = 256
"""The longest tail held back as a possible opening tag (attributes included)."""


def _could_open(tail: str) -> bool:
    if not _PARTIAL_OPEN.fullmatch(tail) or len(tail) > _MAX_HELD:
        return False
    name = re.split(r"\s", tail[1:], maxsplit=1)[0].lower()
    if " " in tail or "\t" in tail or "\n" in tail:
        return name in TAGS
    return any(tag.startswith(name) for tag in TAGS)


@dataclass
class ThinkingFilter:
    """Feed the answer's pieces; get back only what the user may see, in order."""

    reasoning: list[str] = field(default_factory=list)
    _inside: str | None = None
    _held: str = ""

    def feed(self, text: str) -> str:
        buffer = self._held + text
        self._held = ""
        visible: list[str] = []
        while buffer:
            if self._inside is None:
                opened = _OPEN.search(buffer)
                if opened is None:
                    cut = buffer.rfind("<")
                    if cut >= 0 and _could_open(buffer[cut:]):
                        visible.append(buffer[:cut])
                        self._held = buffer[cut:]
                    else:
                        visible.append(buffer)
                    break
                visible.append(buffer[: opened.start()])
                self._inside = opened.group(1).lower()
                buffer = buffer[opened.end() :]
            else:
                closed = re.search(rf"</{self._inside}\s*>", buffer, re.IGNORECASE)
                if closed is None:
                    self._held = buffer
                    break
                self.reasoning.append(buffer[: closed.start()])
                self._inside = None
                buffer = buffer[closed.end() :]
        return "".join(visible)

    def finish(self) -> str:
        """What is left: held text is visible; an unclosed thought stays reasoning."""
        held, self._held = self._held, ""
        if self._inside is not None:
            self.reasoning.append(held)
            self._inside = None
            return ""
        return held


def split_thinking(text: str) -> tuple[str, str]:
    """(visible answer, reasoning) of a whole answer.

    Also handles a closing tag without its opening one (templates that open `<think>` in
    the prompt): everything before it was thinking.
    """
    thinking = ThinkingFilter()
    visible = thinking.feed(text) + thinking.finish()
    orphans = list(_CLOSE_ANY.finditer(visible))
    if orphans:
        last = orphans[-1]
        thinking.reasoning.insert(0, visible[: last.start()])
        visible = visible[last.end() :]
    reasoning = "\n\n".join(part.strip() for part in thinking.reasoning if part.strip())
    return visible.strip(), reasoning
